"""Flax NNX, natively: the conformance suite's fixture (see `tests.native`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from unified_params import spec as S

from . import Native
from ._dicts import TEXTBOOK

_RNGS = nnx.Rngs(0)


def _path(parts: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in parts)


class FlaxNative(Native):
    textbook = {
        **TEXTBOOK,
        # An nnx.Sequential keys its layers by position only: no named blocks.
        "rgnet": {"first": "0.0.0.weight", "count": 309, "path_bias": "0.1.0.bias"},
    }
    linear_type = "Linear"
    kernel_name = "kernel"
    converts_axes = ("cnn", "norm")
    depthwise = ((3, 3, 1, 6), "kernel")
    native_grad_slot = False  # an NNX variable has no gradient slot: nnx.grad returns them
    summed_biases = frozenset({"rnn", "lstm"})  # a SimpleCell and an OptimizedLSTMCell keep one bias
    refused_layers = {S.GRU: "no recurrent bias inside the reset gate"}
    sorted_listing = True  # NNX lists a module's attributes by name (nnx.state, nnx.grad)

    def mlp(self) -> Any:
        return nnx.Sequential(nnx.Linear(4, 8, rngs=_RNGS), nnx.relu, nnx.Linear(8, 1, rngs=_RNGS))

    def valueless_mlp(self) -> Any:
        return nnx.eval_shape(
            lambda: nnx.Sequential(
                nnx.Linear(4, 8, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(8, 1, rngs=nnx.Rngs(1))
            )
        )

    def rgnet(self) -> Any:
        def block1():
            return nnx.Sequential(
                nnx.Linear(4, 8, rngs=_RNGS), nnx.relu, nnx.Linear(8, 4, rngs=_RNGS), nnx.relu
            )

        return nnx.Sequential(nnx.Sequential(*[block1() for _ in range(4)]), nnx.Linear(4, 1, rngs=_RNGS))

    def shared_mlp(self) -> Any:
        shared = nnx.Linear(8, 8, rngs=_RNGS)
        return nnx.Sequential(
            nnx.Linear(4, 8, rngs=_RNGS),
            nnx.relu,
            shared,
            nnx.relu,
            shared,
            nnx.relu,
            nnx.Linear(8, 1, rngs=_RNGS),
        )

    def shared_dense(self) -> Any:
        from unified_params.backends.flax.tables import flatten

        shared = nnx.Linear(4, 4, rngs=_RNGS)
        return nnx.Sequential(flatten, shared, shared, nnx.Linear(4, 1, rngs=_RNGS))

    def subclassed(self) -> Any:
        class Net(nnx.Module):
            def __init__(self):
                self.encoder = nnx.Linear(4, 6, rngs=_RNGS)
                self.blocks = nnx.List([nnx.Linear(6, 6, rngs=_RNGS), nnx.Linear(6, 6, rngs=_RNGS)])
                self.head = nnx.Linear(6, 2, rngs=_RNGS)

            def __call__(self, x):
                x = self.encoder(x)
                for block in self.blocks:
                    x = block(x)
                return self.head(x)

        return Net()

    def wrapper_holding_kernel(self, width: int) -> Any:
        class Wrapper(nnx.Module):
            def __init__(self):
                self.layer = nnx.Linear(4, width, rngs=_RNGS)
                self.w = self.layer.kernel

            def __call__(self, x):
                return self.layer(x)

        return nnx.Sequential(Wrapper())

    def sibling_holding_kernel(self, width: int) -> Any:
        layer = nnx.Linear(4, width, rngs=_RNGS)

        class Holder(nnx.Module):
            def __init__(self):
                self.w = layer.kernel

            def __call__(self, x):
                return x

        return nnx.Sequential(layer, Holder())

    def embedding_in_a_linear(self) -> Any:
        class LM(nnx.Module):
            def __init__(self):
                self.emb = nnx.Embed(4, 4, rngs=_RNGS)
                self.head = nnx.Linear(4, 4, use_bias=False, rngs=_RNGS)
                self.head.kernel = self.emb.embedding

            def __call__(self, x):
                return self.head(self.emb(x))

        return LM()

    def two_attributes(self) -> Any:
        class Net(nnx.Module):
            def __init__(self):
                self.first = nnx.Linear(6, 6, rngs=_RNGS)
                self.second = nnx.Linear(6, 6, rngs=_RNGS)

            def __call__(self, x):
                return self.second(self.first(x))

        return Net()

    def conv(self, dims: int) -> Any:
        return nnx.Conv(2, 5, (3,) * dims, padding="VALID", rngs=_RNGS)

    def flatten_in_forward(self) -> Any:
        class Net(nnx.Module):
            def __init__(self):
                self.conv = nnx.Conv(3, 4, (3, 3), padding="VALID", rngs=_RNGS)
                self.fc = nnx.Linear(64, 2, rngs=_RNGS)

            def __call__(self, x):
                return self.fc(jnp.reshape(nnx.relu(self.conv(x)), (x.shape[0], -1)))

        return Net()

    def pools_in_code(self) -> Any:
        class Own(nnx.Module):
            def __call__(self, x):
                return jax.image.resize(nnx.max_pool(x, (2, 2), (2, 2)), (1, 8, 8, 3), "nearest")

        return Own()

    def weightless_layers(self) -> list[Any]:
        return []  # NNX pools and resizes with functions

    def recurrent_stack(self, kind: str, input_size: int, hidden: int) -> Any | None:
        cell = {"rnn": nnx.SimpleCell, "lstm": nnx.OptimizedLSTMCell}.get(kind)
        if cell is None:
            return None  # NNX's GRUCell is no torch GRU (see refused_layers)

        def both(size: int) -> Any:
            return nnx.Bidirectional(
                nnx.RNN(cell(size, hidden, rngs=_RNGS)), nnx.RNN(cell(size, hidden, rngs=_RNGS))
            )

        return nnx.Sequential(both(input_size), both(2 * hidden))

    def prelu(self) -> tuple[Any, str]:
        class PReLU(nnx.Module):  # NNX has no PReLU layer: a user's own, as NNX code writes one
            def __init__(self):
                self.alpha = nnx.Param(jnp.full((1,), 0.25))

            def __call__(self, x):
                return jnp.where(x >= 0, x, self.alpha[...] * x)

        return PReLU(), "alpha"

    def typed(self, dtype: str) -> Any:
        return nnx.Sequential(nnx.Linear(4, 3, param_dtype=getattr(jnp, dtype), rngs=_RNGS), nnx.relu)

    def forward(self, model: Any, x: np.ndarray, channels: bool | None = None) -> np.ndarray:
        model.eval()
        # NNX takes images channels-last: the input's axis 1 moves last, the output's back.
        if x.ndim == 4 if channels is None else channels:
            out = np.asarray(model(jnp.asarray(np.moveaxis(x, 1, -1))))
            return np.moveaxis(out, -1, 1) if out.ndim == x.ndim else out
        return np.asarray(model(jnp.asarray(x)))

    def attention(self, layer: Any, x: np.ndarray) -> np.ndarray:
        return np.asarray(layer(jnp.asarray(x), deterministic=True))

    def _state(self, model: Any) -> list[tuple[tuple[Any, ...], Any]]:
        return list(nnx.to_flat_state(nnx.state(model, nnx.Param, nnx.BatchStat)))

    def named_params(self, model: Any) -> list[tuple[str, tuple[int, ...]]]:
        return [(_path(p), tuple(v.shape)) for p, v in self._listing(model)]

    def _listing(self, model: Any) -> list[tuple[tuple[Any, ...], Any]]:
        # NNX's own listing: sorted by path (a shared variable at its first path).
        return [(p, v) for p, v in nnx.iter_graph(model) if isinstance(v, (nnx.Param, nnx.BatchStat))]

    def values(self, model: Any) -> list[np.ndarray]:
        return [np.asarray(v.get_value()) for _, v in self._listing(model)]

    def count(self, model: Any) -> int:
        return sum(int(np.prod(v.shape)) for _, v in self._listing(model) if isinstance(v, nnx.Param))

    def optimizer_params(self, model: Any) -> list[Any]:
        return [v for _, v in self._listing(model) if isinstance(v, nnx.Param)]

    def layer(self, model: Any, position: int) -> Any:
        return model.layers[position]

    def with_lora(self, model: Any, position: int, rank: int) -> Any:
        plain = model.layers[position]
        lora = nnx.LoRALinear(plain.in_features, plain.out_features, lora_rank=rank, rngs=_RNGS)
        lora.kernel[...], lora.bias[...] = plain.kernel[...], plain.bias[...]
        lora.lora.lora_b[...] = jnp.asarray(np.random.default_rng(1).standard_normal(lora.lora.lora_b.shape))
        model.layers[position] = lora
        return model

    def sum_backward(self, model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        grads = nnx.grad(lambda m: m(jnp.asarray(x)).sum())(model)
        return {_path(p): np.asarray(g.get_value()) for p, g in nnx.to_flat_state(grads)}

    def seed(self, value: int) -> None:
        global _RNGS
        _RNGS = nnx.Rngs(value)

    def add_variable(self, layer: Any, name: str) -> None:
        setattr(layer, name, nnx.Param(jnp.zeros(3)))

    def replace_last_layer(self, model: Any) -> None:
        model.layers[2] = nnx.Linear(8, 3, rngs=_RNGS)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        if isinstance(tensor, nnx.Variable):
            tensor = tensor.get_value()
        return np.asarray(jax.device_get(tensor))


NATIVE = FlaxNative()
