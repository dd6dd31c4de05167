"""What torch and paddle write alike: both keep layers in dicts and take the
chapter's models in the same shape; each module says what differs."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from . import Native

TEXTBOOK = {
    "mlp": {"params": ["0.weight", "0.bias", "2.weight", "2.bias"], "count": 49},
    "rgnet": {"first": "0.block 0.0.weight", "count": 309, "path_bias": "0.block 1.0.bias"},
    "shared": {"a": "2.weight", "b": "4.weight", "children": 7, "unique_layers": 6, "count": 121},
}


class DictNative(Native):
    """`Native` for a torch-like framework; subclasses set `nn` and the spellings."""

    textbook = TEXTBOOK
    reorderable = True  # a layer's variables live in the framework's own (ordered) dict
    linear_type = "Linear"
    kernel_name = "weight"
    #: The framework's ``nn`` module, its layer base and list classes.
    nn: Any
    base: ClassVar[str]
    listing: ClassVar[str]
    #: Class names of the 1-D and 3-D convolutions.
    convs: ClassVar[dict[int, str]]
    #: Class names of the 2-D max and average poolings.
    pools: ClassVar[tuple[str, str]]
    #: The native name of a PReLU's parameter.
    prelu_name: ClassVar[str]
    #: Class names of the recurrent layers, by kind, and how they are told to
    #: run both ways (batch first), or to take time first.
    recurrent: ClassVar[dict[str, str]]
    both_ways: ClassVar[dict[str, Any]]
    time_first: ClassVar[dict[str, Any]]
    #: How a Linear is made without a bias.
    no_bias: ClassVar[dict[str, Any]]

    def mlp(self) -> Any:
        nn = self.nn
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def rgnet(self) -> Any:
        nn = self.nn

        def block1():
            return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())

        def block2():
            net = nn.Sequential()
            for i in range(4):
                self.add_child(net, f"block {i}", block1())
            return net

        return nn.Sequential(block2(), nn.Linear(4, 1))

    def shared_mlp(self) -> Any:
        nn = self.nn
        shared = nn.Linear(8, 8)
        return nn.Sequential(
            nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1)
        )

    def shared_dense(self) -> Any:
        nn = self.nn
        shared = nn.Linear(4, 4)
        return nn.Sequential(nn.Flatten(), shared, shared, nn.Linear(4, 1))

    def subclassed(self) -> Any:
        nn, listing = self.nn, getattr(self.nn, self.listing)

        class Net(getattr(nn, self.base)):
            def __init__(self):
                super().__init__()
                self.encoder = nn.Linear(4, 6)
                self.blocks = listing([nn.Linear(6, 6), nn.Linear(6, 6)])
                self.head = nn.Linear(6, 2)

        return Net()

    def wrapper_holding_kernel(self, width: int) -> Any:
        nn = self.nn

        class Wrapper(getattr(nn, self.base)):
            def __init__(self):
                super().__init__()
                self.layer = nn.Linear(4, width)
                self.w = self.layer.weight

            def forward(self, x):
                return self.layer(x)

        return nn.Sequential(Wrapper())

    def sibling_holding_kernel(self, width: int) -> Any:
        nn = self.nn
        layer = nn.Linear(4, width)

        class Holder(getattr(nn, self.base)):
            def __init__(self):
                super().__init__()
                self.w = layer.weight

            def forward(self, x):
                return x

        return nn.Sequential(layer, Holder())

    def embedding_in_a_linear(self) -> Any:
        nn, no_bias = self.nn, self.no_bias

        class LM(getattr(nn, self.base)):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(4, 4)
                self.head = nn.Linear(4, 4, **no_bias)
                self.head.weight = self.emb.weight

            def forward(self, x):
                return self.head(self.emb(x))

        return LM()

    def two_attributes(self) -> Any:
        nn = self.nn

        class Net(getattr(nn, self.base)):
            def __init__(self):
                super().__init__()
                self.first = nn.Linear(6, 6)
                self.second = nn.Linear(6, 6)

            def forward(self, x):
                return self.second(self.first(x))

        return Net()

    def conv(self, dims: int) -> Any:
        return getattr(self.nn, self.convs[dims])(2, 5, 3)

    def flatten_in_forward(self) -> Any:
        nn, flat = self.nn, self.flat

        class Net(getattr(nn, self.base)):
            def __init__(self, conv):
                super().__init__()
                self.conv, self.fc = conv(3, 4, 3), nn.Linear(64, 2)

            def forward(self, x):
                return self.fc(flat(nn.functional.relu(self.conv(x))))

        return Net(getattr(nn, self.convs[2]))

    def pools_in_code(self) -> Any:
        nn = self.nn

        class Net(getattr(nn, self.base)):
            def forward(self, x):
                return nn.functional.interpolate(nn.functional.max_pool2d(x, 2), scale_factor=2)

        return Net()

    def weightless_layers(self) -> list[Any]:
        return [getattr(self.nn, name)(2) for name in self.pools] + [self.nn.Upsample(scale_factor=2)]

    def prelu(self) -> tuple[Any, str]:
        return self.nn.PReLU(), self.prelu_name

    def time_major_lstm(self, input_size: int, hidden: int) -> Any | None:
        return self.nn.LSTM(input_size, hidden, **self.time_first)

    def recurrent_stack(self, kind: str, input_size: int, hidden: int) -> Any | None:
        return getattr(self.nn, self.recurrent[kind])(input_size, hidden, num_layers=2, **self.both_ways)

    def named_params(self, model: Any) -> list[tuple[str, tuple[int, ...]]]:
        seen, out = set(), []
        for name, tensor in model.state_dict(keep_vars=True).items():
            if id(tensor) not in seen:  # state_dict lists every alias of a shared tensor
                seen.add(id(tensor))
                out.append((name, tuple(int(d) for d in tensor.shape)))
        return out

    def native_ties(self, model: Any) -> list[tuple[str, ...]] | None:
        groups: dict[int, list[str]] = {}
        for name, tensor in model.state_dict(keep_vars=True).items():  # every alias of a shared tensor
            if ".cell." not in name and "num_batches" not in name:  # paddle RNNs alias weights in cells
                groups.setdefault(id(tensor), []).append(name)
        return [tuple(g) for g in groups.values() if len(g) > 1]

    def values(self, model: Any) -> list[np.ndarray]:
        return [self.to_numpy(t) for t in model.state_dict().values()]

    def count(self, model: Any) -> int:
        named = model.named_parameters()
        return sum(int(np.prod(p.shape)) for n, p in named if not n.endswith(("_mean", "_variance")))

    def variable_count(self, model: Any) -> int:
        return len(list(model.parameters()))

    def optimizer_params(self, model: Any) -> list[Any]:
        return list(model.parameters())

    def layer(self, model: Any, position: int) -> Any:
        return model[position]

    def forward(self, model: Any, x: np.ndarray, channels: bool | None = None) -> np.ndarray:
        model.eval()
        with self.no_grad():
            out = model(self.tensor(x))
        return self.to_numpy(out[0] if isinstance(out, (tuple, list)) else out)

    def sum_backward(self, model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        model(self.tensor(x)).sum().backward()
        return {n: self.to_numpy(p.grad) for n, p in model.named_parameters() if p.grad is not None}

    # -- what differs between torch and paddle -----------------------------------
    def tensor(self, x: np.ndarray) -> Any:
        raise NotImplementedError

    def no_grad(self) -> Any:
        raise NotImplementedError

    def flat(self, x: Any) -> Any:
        """The framework's flatten of all axes but the batch axis."""
        raise NotImplementedError

    def add_child(self, parent: Any, name: str, child: Any) -> None:
        raise NotImplementedError

    def reorder_variables(self, layer: Any) -> None:
        params = layer._parameters  # both frameworks' own dict, in place
        first = next(iter(params))
        if hasattr(params, "move_to_end"):  # paddle's OrderedDict: only its linked order moves
            params.move_to_end(first)
        else:
            params[first] = params.pop(first)
