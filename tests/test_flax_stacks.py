"""A stack of layers in Flax NNX (``nnx.vmap`` over a layer's constructor, the
layers a scan runs) reads as torch's ``nn.ModuleList`` of those layers: one
layer per index of the leading axis, each variable a slice of the stacked one.
Reads, writes, rules, gradients, files and ports act on one layer's slice;
what one layer cannot have alone (a trainable flag, a setting, a tie) is
refused."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs

pytestmark = pytest.mark.usefixtures("_flax")

LAYERS = 3


@pytest.fixture
def _flax():
    needs("flax")


def nnx_model(seed: int = 0, width: int = 4, layers: int = LAYERS):
    """Blocks (Linear, relu, LayerNorm) stacked by nnx.vmap and run by nnx.scan, then a head."""
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(width, width, rngs=rngs)
            self.norm = nnx.LayerNorm(width, epsilon=1e-5, rngs=rngs)

        def __call__(self, x):
            return self.norm(nnx.relu(self.lin(x)))

    class Model(nnx.Module):
        def __init__(self, rngs):
            @nnx.split_rngs(splits=layers)
            @nnx.vmap(in_axes=(0,), out_axes=0)
            def stack(rngs):
                return Block(rngs)

            self.blocks = stack(rngs)
            self.head = nnx.Linear(width, 2, rngs=rngs)

        def __call__(self, x):
            @nnx.scan(in_axes=(0, nnx.Carry), out_axes=nnx.Carry)
            def run(block, x):
                return block(x)

            return self.head(run(self.blocks, x))

    return Model(nnx.Rngs(seed))


def torch_model(seed: int = 0, width: int = 4, eps: tuple[float, ...] = (1e-5,) * LAYERS):
    """The same network in torch: an nn.ModuleList of blocks, each with its own variables."""
    import torch

    class Block(torch.nn.Module):
        def __init__(self, eps):
            super().__init__()
            self.lin = torch.nn.Linear(width, width)
            self.norm = torch.nn.LayerNorm(width, eps=eps)

        def forward(self, x):
            return self.norm(torch.relu(self.lin(x)))

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(e) for e in eps])
            self.head = torch.nn.Linear(width, 2)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    torch.manual_seed(seed)
    model = Model()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)  # norms' scales and biases other than ones and zeros
    return model


def stacked(var) -> np.ndarray:
    return np.array(var.get_value())


def test_a_stack_lists_one_layer_per_index_in_the_canonical_layout():
    model = nnx_model()
    view = up.wrap(model)
    params = view.params()
    expected = [f"blocks.{i}.{leaf}" for i in range(LAYERS) for leaf in
                ("lin.weight", "lin.bias", "norm.weight", "norm.bias")] + ["head.weight", "head.bias"]  # fmt: skip
    assert list(params) == expected
    kernels = stacked(model.blocks.lin.kernel)  # (layers, in, out)
    assert kernels.shape == (LAYERS, 4, 4)
    for i in range(LAYERS):
        p = params[f"blocks.{i}.lin.weight"]
        assert p.shape == (4, 4) and p.native_name == "kernel"
        np.testing.assert_array_equal(p.numpy(), kernels[i].T)  # canonical (out, in)
        np.testing.assert_array_equal(p.numpy(layout="native"), kernels[i])
        np.testing.assert_array_equal(
            params[f"blocks.{i}.norm.weight"].numpy(), stacked(model.blocks.norm.scale)[i]
        )
    assert up.ties(model) == []
    tree = up.summary(model)
    assert re.search(r"^blocks\s+Stack\s+84$", tree, re.M)  # 3 blocks of 20 + 8
    assert re.search(r"^  2\s+Block\s+28$", tree, re.M)
    assert "Total params: 94 " in tree and tree.count("LayerNorm") == LAYERS


def test_a_write_replaces_one_layers_slice_only():
    model = nnx_model()
    before = stacked(model.blocks.lin.kernel)
    view = up.wrap(model)
    new = np.arange(16, dtype=np.float32).reshape(4, 4)
    view["blocks.1.lin.weight"].set(new)
    view["blocks.2.lin.weight"][0, 3] = -7.0
    after = stacked(model.blocks.lin.kernel)
    np.testing.assert_array_equal(after[1], new.T)
    assert after[2][3, 0] == -7.0  # canonical [out 0, in 3] is native [in 3, out 0]
    np.testing.assert_array_equal(np.delete(after[2].ravel(), 12), np.delete(before[2].ravel(), 12))
    np.testing.assert_array_equal(after[0], before[0])
    assert after.dtype == before.dtype


def test_a_rule_initializes_each_layer_with_its_own_fans():
    """XavierUniform on Linear(4, 64) layers: each slice's bound is sqrt(6 / (4 + 64)), its own fans."""
    from flax import nnx

    @nnx.split_rngs(splits=LAYERS)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def stack(rngs):
        return nnx.Linear(4, 64, rngs=rngs)

    model = stack(nnx.Rngs(0))
    up.initialize(model, up.init.XavierUniform(), where="*.weight", seed=0)
    kernels = stacked(model.kernel)
    assert kernels.shape == (LAYERS, 4, 64)
    bound = np.sqrt(6 / (4 + 64))
    for i in range(LAYERS):
        assert 0.9 * bound < np.abs(kernels[i]).max() <= bound
    assert not np.array_equal(kernels[0], kernels[1])  # each layer drawn on its own


def test_gradients_are_each_layers_slice_of_the_stacked_gradient():
    import jax
    from flax import nnx

    model = nnx_model()
    x = np.random.RandomState(0).rand(5, 4).astype(np.float32)
    grads = up.gradients(model, x)

    def loss(m):
        return m(jax.numpy.asarray(x)).sum()

    direct = nnx.grad(loss)(model)
    kernel = np.array(direct["blocks"]["lin"]["kernel"].get_value())
    for i in range(LAYERS):
        np.testing.assert_allclose(grads[f"blocks.{i}.lin.weight"], kernel[i].T, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(up.wrap(model)["blocks.1.lin.weight"].grad, kernel[1].T, rtol=1e-6, atol=1e-7)


def test_a_layer_of_a_stack_runs_alone_and_the_stack_itself_is_refused():
    model = nnx_model()
    view = up.wrap(model)
    x = np.random.RandomState(1).rand(2, 4).astype(np.float32)
    kernel = stacked(model.blocks.lin.kernel)[1]
    bias = stacked(model.blocks.lin.bias)[1]
    h = np.maximum(x @ kernel + bias, 0)
    mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    scale, shift = stacked(model.blocks.norm.scale)[1], stacked(model.blocks.norm.bias)[1]
    np.testing.assert_allclose(up.forward(view["blocks.1"], x), (h - mean) / np.sqrt(var + 1e-5) * scale + shift,
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    with pytest.raises(up.UnsupportedError, match="runs only through the code that scans it"):
        up.forward(view["blocks"], x)
    assert up.forward(model, x).shape == (2, 2)


def test_a_save_writes_one_entry_per_layer_and_torch_loads_it(tmp_path):
    model = nnx_model(seed=2)
    path = os.fspath(tmp_path / "stack.safetensors")
    up.save(model, path)
    other = nnx_model(seed=5)
    up.load(other, path)
    for leaf in ("lin.kernel", "lin.bias", "norm.scale", "norm.bias"):
        layer, name = leaf.split(".")
        a = stacked(getattr(getattr(model.blocks, layer), name))
        np.testing.assert_array_equal(stacked(getattr(getattr(other.blocks, layer), name)), a)
    needs("torch")
    import torch

    net = torch_model(seed=9)
    up.load(net, path)
    x = np.random.RandomState(2).rand(3, 4).astype(np.float32)
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, up.forward(model, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        net.blocks[2].lin.weight.detach().numpy(), stacked(model.blocks.lin.kernel)[2].T
    )


def test_ports_between_a_torch_module_list_and_an_nnx_stack_agree_both_ways():
    needs("torch")
    import torch

    x = np.random.RandomState(3).rand(5, 4).astype(np.float32)
    source = torch_model(seed=1)
    model = nnx_model(seed=4)
    report = up.port(source, model, check_input=x)
    assert report.max_abs_diff < 1e-5
    np.testing.assert_array_equal(
        stacked(model.blocks.lin.kernel)[1], source.blocks[1].lin.weight.detach().numpy().T
    )
    back = torch_model(seed=7)
    report = up.port(model, back, check_input=x)
    assert report.max_abs_diff < 1e-5
    for a, b in zip(back.parameters(), source.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_aligning_a_stacks_shared_setting_is_refused_when_its_sources_differ():
    """The stack's layers share one epsilon: sources of one epsilon align it for
    every layer; sources of several are refused, and the stack keeps its own."""
    needs("torch")
    x = np.random.RandomState(4).rand(5, 4).astype(np.float32)
    model = nnx_model()
    model.blocks.norm.epsilon = 1e-6
    report = up.port(torch_model(eps=(1e-3,) * LAYERS), model, check_input=x, align="hyperparameters")
    assert model.blocks.norm.epsilon == pytest.approx(1e-3)
    assert len([a for a in report.aligned if "eps" in a]) == LAYERS
    model.blocks.norm.epsilon = 1e-6
    kernel = stacked(model.blocks.lin.kernel)
    with pytest.raises(up.PortError, match=r"Cannot align blocks\.\d\.norm's eps .* share their settings"):
        up.port(torch_model(eps=(1e-3, 1e-3, 1e-4)), model, check_input=x, align="hyperparameters")
    assert model.blocks.norm.epsilon == 1e-6
    np.testing.assert_array_equal(stacked(model.blocks.lin.kernel), kernel)


def test_what_one_layer_of_a_stack_cannot_have_alone_is_refused():
    model = nnx_model()
    view = up.wrap(model)
    p = view["blocks.1.lin.weight"]
    p.trainable = True  # what it has already: nothing to change
    with pytest.raises(up.UnsupportedError, match="cannot have its own trainable flag"):
        p.trainable = False
    assert view["blocks.0.lin.weight"].trainable
    model.blocks.lin.kernel.set_metadata(trainable=False)  # the stack's variable: every layer's
    assert [view[f"blocks.{i}.lin.weight"].trainable for i in range(LAYERS)] == [False] * LAYERS
    x = np.random.RandomState(5).rand(2, 4).astype(np.float32)
    grads = up.gradients(model, x)
    assert "blocks.0.lin.weight" not in grads and "blocks.0.lin.bias" in grads
    with pytest.raises(up.UnsupportedError, match="A layer of a stack"):
        up.tie(model, "blocks.0.lin.weight", "blocks.1.lin.weight")
    with pytest.raises(up.UnsupportedError, match="A layer of a stack"):
        up.tie(model, "blocks.0.lin", "blocks.1.lin")
    from flax import nnx

    model.extra = nnx.Linear(4, 4, rngs=nnx.Rngs(2))  # a layer of its own, put in a stack's place
    with pytest.raises(up.UnsupportedError, match="A layer of a stack"):
        up.tie(model, "extra", "blocks.1.lin")
    assert up.ties(model) == []


def test_a_model_that_is_a_stack_lists_its_layers_at_the_top():
    from flax import nnx

    @nnx.split_rngs(splits=LAYERS)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def stack(rngs):
        return nnx.Conv(2, 5, kernel_size=(3, 3), rngs=rngs)

    model = stack(nnx.Rngs(0))
    params = up.wrap(model).params()
    assert list(params) == [f"{i}.{leaf}" for i in range(LAYERS) for leaf in ("weight", "bias")]
    kernel = stacked(model.kernel)  # (layers, kh, kw, in, out)
    np.testing.assert_array_equal(params["2.weight"].numpy(), kernel[2].transpose(3, 2, 0, 1))


def test_a_module_whose_variables_do_not_share_one_leading_size_is_refused_by_its_layout():
    """No stack: a Linear whose kernel has one axis more than declared, beside a
    variable of another leading size, is refused as before, with the reason."""
    from flax import nnx

    layer = nnx.Linear(4, 4, rngs=nnx.Rngs(0))
    layer.kernel = nnx.Param(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(up.ShapeError, match=r"a stack of layers.*nnx\.vmap.*every variable in it"):
        up.summary(layer)


def _stacked(make, layers: int = LAYERS):
    """``make(rngs)`` made ``layers`` times by nnx.vmap: one module, every variable stacked."""
    from flax import nnx

    @nnx.split_rngs(splits=layers)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def stack(rngs):
        return make(rngs)

    return stack(nnx.Rngs(0))


def test_a_model_whose_one_attribute_is_the_stack_lists_the_stack_at_that_attribute():
    """Every variable of such a model is stacked too: the stack is the first
    module down that holds more than one child."""
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(4, 4, rngs=rngs)
            self.norm = nnx.LayerNorm(4, rngs=rngs)

    class Wrapper(nnx.Module):
        def __init__(self, blocks):
            self.blocks = blocks

    class Model(nnx.Module):
        def __init__(self):
            self.encoder = Wrapper(_stacked(Block))

    model = Model()
    names = list(up.wrap(model).params())
    assert names[:4] == [
        f"encoder.blocks.0.{leaf}" for leaf in ("lin.weight", "lin.bias", "norm.weight", "norm.bias")
    ]
    assert len(names) == 4 * LAYERS and names[-1] == f"encoder.blocks.{LAYERS - 1}.norm.bias"


def test_a_block_of_one_layer_lists_as_that_layers_stack():
    """The ambiguity its variables cannot settle: a block holding one Linear is
    stacked as a whole as much as the Linear is; the Linear is the stack."""
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(4, 4, rngs=rngs)

    class Model(nnx.Module):
        def __init__(self):
            self.blocks = _stacked(Block)
            self.head = nnx.Linear(4, 2, rngs=nnx.Rngs(1))

    model = Model()
    assert list(up.wrap(model).params())[:2] == ["blocks.lin.0.weight", "blocks.lin.0.bias"]
    np.testing.assert_array_equal(
        up.wrap(model)["blocks.lin.2.weight"].numpy(), stacked(model.blocks.lin.kernel)[2].T
    )


def test_a_port_reads_the_code_of_a_module_inside_a_stacks_layers():
    """A block's own module that pools in its __call__ (no pooling layer shows
    it) is read through the stack's layers: the port says the pooling layers
    were not compared, naming it."""
    needs("torch")
    from flax import nnx

    class Pooled(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(4, 4, rngs=rngs)

        def __call__(self, x):
            return nnx.avg_pool(self.lin(x)[..., None], window_shape=(1,))[..., 0]

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.mlp = Pooled(rngs)
            self.norm = nnx.LayerNorm(4, epsilon=1e-5, rngs=rngs)

    class Model(nnx.Module):
        def __init__(self):
            self.blocks = _stacked(Block)
            self.head = nnx.Linear(4, 2, rngs=nnx.Rngs(1))

    report = up.port(torch_model(), Model())
    said = [n for n in report.notes if "may pool" in n]
    assert said and "blocks.0.mlp (Pooled, flax)" in said[0]


def test_a_stack_replaced_natively_between_calls_is_read_anew():
    from flax import nnx

    model = nnx_model()
    view = up.wrap(model)
    assert len(view.params()) == 4 * LAYERS + 2
    model.blocks = nnx_model(seed=3, layers=5).blocks  # five layers now
    params = view.params()
    assert len(params) == 4 * 5 + 2 and "blocks.4.norm.bias" in params
    np.testing.assert_array_equal(view["blocks.4.lin.weight"].numpy(), stacked(model.blocks.lin.kernel)[4].T)
    model.blocks = nnx.List([nnx.Linear(4, 4, rngs=nnx.Rngs(0))])  # a list of one plain layer
    assert list(view.params())[:2] == ["blocks.0.weight", "blocks.0.bias"]


def test_a_port_from_a_paddle_layer_list_fills_each_layer_of_the_stack():
    needs("paddle")
    import paddle

    class Block(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.lin = paddle.nn.Linear(4, 4)
            self.norm = paddle.nn.LayerNorm(4, epsilon=1e-5)

        def forward(self, x):
            return self.norm(paddle.nn.functional.relu(self.lin(x)))

    class Model(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.blocks = paddle.nn.LayerList([Block() for _ in range(LAYERS)])
            self.head = paddle.nn.Linear(4, 2)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    paddle.seed(0)
    source = Model()
    x = np.random.RandomState(6).rand(5, 4).astype(np.float32)
    model = nnx_model(seed=8)
    report = up.port(source, model, check_input=x)
    assert report.max_abs_diff < 1e-5
    np.testing.assert_array_equal(
        stacked(model.blocks.lin.kernel)[2], source.blocks[2].lin.weight.numpy()
    )  # (in, out) both


def test_a_stack_of_convolution_blocks_ports_with_its_running_statistics():
    """Channels-last kernels and BatchNorm statistics, each layer's from its slice."""
    needs("torch")
    import torch
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 3, kernel_size=(3, 3), padding=1, rngs=rngs)
            self.norm = nnx.BatchNorm(3, momentum=0.9, epsilon=1e-5, rngs=rngs)

        def __call__(self, x):
            return nnx.relu(self.norm(self.conv(x)))

    class Model(nnx.Module):
        def __init__(self):
            self.blocks = _stacked(Block)
            self.head = nnx.Linear(3, 2, rngs=nnx.Rngs(1))

        def __call__(self, x):
            @nnx.scan(in_axes=(0, nnx.Carry), out_axes=nnx.Carry)
            def run(block, x):
                return block(x)

            return self.head(run(self.blocks, x).mean(axis=(1, 2)))

    def torch_blocks():
        blocks = torch.nn.ModuleList(
            [
                torch.nn.Sequential(
                    torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.BatchNorm2d(3), torch.nn.ReLU()
                )
                for _ in range(LAYERS)
            ]  # fmt: skip
        )
        return torch.nn.Sequential(
            *blocks, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2)
        )

    torch.manual_seed(0)
    source = torch_blocks().eval()
    with torch.no_grad():
        for block in source[:LAYERS]:
            block[1].running_mean.uniform_(-0.5, 0.5)
            block[1].running_var.uniform_(0.5, 2)
    x = np.random.RandomState(7).rand(2, 3, 8, 8).astype(np.float32)
    model = Model()
    assert up.port(source, model, check_input=x).max_abs_diff < 1e-5
    means = stacked(model.blocks.norm.mean)
    for i in range(LAYERS):
        np.testing.assert_array_equal(means[i], source[i][1].running_mean.numpy())
    back = torch_blocks().eval()
    assert up.port(model, back, check_input=x).max_abs_diff < 1e-5
    torch.testing.assert_close(back[2][0].weight, source[2][0].weight, rtol=0, atol=0)


def test_a_stack_of_transformer_blocks_ports_from_torch_and_back():
    """What a scan over layers mostly runs: attention, a norm and a Linear per
    block; torch's packed attention projections go to each layer's query, key
    and value slices and come back."""
    needs("torch")
    import torch
    from flax import nnx

    width, heads = 8, 2

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.attn = nnx.MultiHeadAttention(num_heads=heads, in_features=width, decode=False, rngs=rngs)
            self.ln = nnx.LayerNorm(width, epsilon=1e-5, rngs=rngs)
            self.mlp = nnx.Linear(width, width, rngs=rngs)

        def __call__(self, x):
            x = self.ln(x + self.attn(x))
            return x + self.mlp(x)

    class Model(nnx.Module):
        def __init__(self):
            self.blocks = _stacked(Block)

        def __call__(self, x):
            @nnx.scan(in_axes=(0, nnx.Carry), out_axes=nnx.Carry)
            def run(block, x):
                return block(x)

            return run(self.blocks, x)

    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(width, heads, batch_first=True)
            self.ln = torch.nn.LayerNorm(width)
            self.mlp = torch.nn.Linear(width, width)

        def forward(self, x):
            x = self.ln(x + self.attn(x, x, x, need_weights=False)[0])
            return x + self.mlp(x)

    def torch_stack():
        blocks = torch.nn.Sequential(*[TorchBlock() for _ in range(LAYERS)]).eval()
        with torch.no_grad():
            for p in blocks.parameters():
                p.normal_(0, 0.3)
        return blocks

    torch.manual_seed(0)
    source = torch_stack()
    x = np.random.RandomState(8).rand(2, 5, width).astype(np.float32)
    model = Model()
    assert up.port(source, model, check_input=x).max_abs_diff < 1e-5
    query = np.asarray(model.blocks.attn.query.kernel.get_value())  # (layers, in, heads, head_dim)
    packed = source[1].attn.in_proj_weight.detach().numpy()  # (3 * width, width): query rows first
    np.testing.assert_allclose(query[1].reshape(width, width), packed[:width].T)
    back = torch_stack()
    assert up.port(model, back, check_input=x).max_abs_diff < 1e-5
    torch.testing.assert_close(back[2].attn.in_proj_weight, source[2].attn.in_proj_weight, rtol=0, atol=0)


def test_a_stack_at_two_positions_is_one_stack_counted_once():
    """As nnx.find_duplicates sees it: one module at 'again' and 'blocks'."""
    from flax import nnx

    model = nnx_model()
    model.again = model.blocks
    assert nnx.find_duplicates(model) == [[("again",), ("blocks",)]]
    assert up.ties(model)[0] == ("again.0.lin.weight", "blocks.0.lin.weight")
    assert len(up.ties(model)) == 4 * LAYERS
    tree = up.summary(model)
    assert "Total params: 94 " in tree and "Shared: 12 parameters" in tree
    view = up.wrap(model)
    assert len(view.params()) == 4 * LAYERS + 2  # each layer's slice once
    view["again.1.lin.weight"].set(np.ones((4, 4), np.float32))
    np.testing.assert_array_equal(view["blocks.1.lin.weight"].numpy(), np.ones((4, 4)))
