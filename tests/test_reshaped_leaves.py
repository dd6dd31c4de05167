"""Leaves of layers of a kind the library does not know that two frameworks (or
two zoos) shape apart only by axes of size one.

A per-channel scale is ``(C, 1, 1)`` where it multiplies a channels-first map
(torchvision's ConvNeXt ``layer_scale``) and ``(C,)`` where it multiplies a
channels-last one (Keras' ``LayerScale``) or where the layer reshapes it
(timm's ``gamma``); a PReLU's slopes are ``(C,)`` in torch and ``(1, 1, C)`` in
Keras with ``shared_axes=[1, 2]``. Before, a port between such layers was
refused ("gamma is (4, 1, 1) in the source, (4,) in the destination"), so
ConvNeXt could not move between torchvision and keras.applications at all.
Now the values move in order, reshaped, a block's own scale paired after the
layers it holds; the port says what it assumed, warns without a check input
and verifies with one. Leaves whose sizes differ stay
refused, and a kind the library knows is never reshaped.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs

X = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
SCALES = np.array([0.5, -1.5, 2.0, 0.25], dtype="float32")
ASSUMED = "differ only by axes of size one"


def _torch_scaled(shape: tuple[int, ...] = (4, 1, 1), first: bool = False):
    """Sequential(Block): a conv whose output a scale of ``shape`` multiplies,
    held by the block as torchvision's CNBlock holds its ``layer_scale``
    (``first``: a conv of 4 channels whose input the scale multiplies)."""
    import torch

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(4 if first else 3, 4, 3, padding=1)
            self.gamma = torch.nn.Parameter(torch.ones(shape))

        def forward(self, x):
            scale = self.gamma.reshape(1, 4, 1, 1)
            return self.conv(x * scale) if first else self.conv(x) * scale

    torch.manual_seed(0)
    net = torch.nn.Sequential(Block())
    with torch.no_grad():
        net[0].gamma.copy_(torch.from_numpy(SCALES).reshape(shape))
    return net.eval()


def _keras_scaled(size: int = 4, along: tuple[int, ...] = (4,), width: int = 6, name: str = "gamma"):
    """Sequential(Conv2D, Scale): Keras' form, the scale ``(size,)`` after the
    conv, applied reshaped as ``along`` (``(4,)``: over the channels)."""
    import keras

    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            setattr(self, name, self.add_weight(shape=(size,), initializer="ones"))

        def call(self, x):
            return x * keras.ops.reshape(getattr(self, name), along)

    return keras.Sequential([keras.Input((6, width, 3)), keras.layers.Conv2D(4, 3, padding="same"), Scale()])


def test_a_channels_first_scale_ports_into_a_channels_last_one_and_back():
    needs("torch")
    needs("keras")
    src, dst = _torch_scaled(), _keras_scaled()
    report = up.port(src, dst, mapping={"0": "1"}, check_input=X)
    assert report.max_abs_diff < 1e-5
    np.testing.assert_array_equal(up.wrap(dst)["1.gamma"].numpy(), SCALES)
    assert any("'0.gamma' (4, 1, 1) as '1.gamma' (4,)" in note for note in report.notes)
    assert any("the outputs on check_input test it" in note for note in report.notes)

    back = _torch_scaled()
    up.wrap(back)["0.gamma"].set(np.zeros((4, 1, 1), "float32"))
    report = up.port(dst, back, mapping={"1": "0"}, check_input=X)
    assert report.max_abs_diff < 1e-5
    np.testing.assert_array_equal(up.wrap(back)["0.gamma"].numpy(), SCALES.reshape(4, 1, 1))


def test_without_a_check_input_the_port_warns_what_it_assumed():
    needs("torch")
    needs("keras")
    src, dst = _torch_scaled(), _keras_scaled()
    with pytest.warns(UserWarning, match=ASSUMED) as caught:
        report = up.port(src, dst, mapping={"0": "1"})
    assert any("pass check_input=x to verify it" in str(w.message) for w in caught)
    assert any(ASSUMED in note for note in report.notes)
    np.testing.assert_array_equal(up.wrap(dst)["1.gamma"].numpy(), SCALES)
    np.testing.assert_allclose(up.forward(dst, X), up.forward(src, X), atol=1e-5)


def test_a_scale_applied_along_another_axis_fails_the_check_and_nothing_changes():
    """The port cannot see which axis a layer of its own applies a scale along:
    a Keras layer that scales a map's width, not its channels, pairs by shape,
    and the check input refuses it."""
    needs("torch")
    needs("keras")
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 4)).astype("float32")
    src, dst = _torch_scaled(), _keras_scaled(along=(1, 4, 1), width=4)
    before = up.wrap(dst)["1.gamma"].numpy().copy()
    with pytest.raises(up.PortError, match="output differs") as caught:
        up.port(src, dst, mapping={"0": "1"}, check_input=x)
    assert any(ASSUMED in note for note in caught.value.report.notes)
    np.testing.assert_array_equal(up.wrap(dst)["1.gamma"].numpy(), before)


def test_two_torch_zoos_scale_forms_pair_by_a_leaf_rename():
    needs("torch")
    src, dst = _torch_scaled((4, 1, 1)), _torch_scaled((4,))
    up.wrap(dst)["0.gamma"].set(np.ones(4, "float32"))
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff == 0.0
    np.testing.assert_array_equal(up.wrap(dst)["0.gamma"].numpy(), SCALES)


def test_a_torch_prelu_ports_into_keras_per_channel_slopes():
    needs("torch")
    needs("keras")
    import keras
    import torch

    torch.manual_seed(0)
    src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.PReLU(4)).eval()
    with torch.no_grad():
        src[1].weight.copy_(torch.from_numpy(SCALES))
    dst = keras.Sequential(
        [keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3), keras.layers.PReLU(shared_axes=[1, 2])]
    )
    report = up.port(src, dst, leaves={"weight": "alpha"}, check_input=X)
    assert report.max_abs_diff < 1e-5
    assert up.wrap(dst)["1.alpha"].shape == (1, 1, 4)


def test_slopes_of_another_size_stay_refused():
    needs("torch")
    needs("keras")
    import keras
    import torch

    src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.PReLU(4))
    dst = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3), keras.layers.PReLU()])
    before = up.wrap(dst)["1.alpha"].numpy().copy()
    with pytest.raises(up.PortError, match=r"alpha is \(4,\) in the source, \(4, 4, 4\) in the destination"):
        up.port(src, dst, leaves={"weight": "alpha"})
    np.testing.assert_array_equal(up.wrap(dst)["1.alpha"].numpy(), before)


def test_the_same_sizes_in_other_axes_stay_refused():
    needs("torch")
    src, dst = _torch_scaled((4, 1, 1)), _torch_scaled((2, 2))
    with pytest.raises(
        up.PortError, match=r"gamma is \(4, 1, 1\) in the source, \(2, 2\) in the destination"
    ):
        up.port(src, dst)


def test_a_kind_the_library_knows_is_never_reshaped():
    from unified_params._core.pairing import reshaped
    from unified_params._core.port import Layer

    for kind in ("linear", "batchnorm", "conv2d"):
        a = Layer("a", kind, "A", [("weight", (4, 1))], [])
        b = Layer("b", kind, "B", [("weight", (4,))], [])
        assert reshaped(a, b) == {}
    a = Layer("a", "other", "A", [("gamma", (4, 1, 1)), ("beta", (4,))], [])
    assert reshaped(a, Layer("b", "other", "B", [("gamma", (4,)), ("beta", (4,))], [])) == {"gamma": (4,)}
    assert reshaped(a, Layer("b", "other", "B", [("gamma", (4,))], [])) == {}  # a leaf one side lacks


def test_no_warning_where_the_shapes_agree():
    needs("torch")
    src, dst = _torch_scaled(), _torch_scaled()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = up.port(src, dst)
    assert not any(ASSUMED in note for note in report.notes)


def test_leaf_rules_rename_only_the_leaves_of_a_kind_the_library_does_not_know():
    """``leaves={"weight": "_weight"}`` names a torch PReLU's slopes as paddle's; the
    convolution before it, a kind the library knows, keeps its canonical ``weight``
    (before, the rule renamed it too, and the port refused the convolution)."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    torch.manual_seed(0)
    src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.PReLU()).eval()
    with torch.no_grad():
        src[1].weight.fill_(0.75)
    dst = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.PReLU())
    report = up.port(src, dst, leaves={"weight": "_weight"}, check_input=X)
    assert report.pairs == [("0", "0", "conv2d"), ("1", "1", "other")]
    assert report.max_abs_diff < 1e-5
    assert float(dst[1]._weight.numpy()[0]) == 0.75


def test_a_scale_a_block_holds_pairs_after_its_layers_in_order():
    """Torch lists a block's own scale before its layers, Keras' graph the layer
    that holds it after them. Before, the first pair was refused in order, and
    the message named the mapping that pairs them (a ConvNeXt needs one per
    block); now the port pairs the block's own leaves after its layers where
    that pairs every layer, says so, and warns without a check input."""
    needs("torch")
    needs("keras")
    report = up.port(_torch_scaled(), dst := _keras_scaled(), check_input=X)
    assert report.pairs == [("0.conv", "0", "conv2d"), ("0", "1", "other")]
    assert report.max_abs_diff < 1e-5
    np.testing.assert_array_equal(up.wrap(dst)["1.gamma"].numpy(), SCALES)
    moved = "Own leaves paired after the layers they hold: '0' (Block) -> '1' (Scale)"
    assert any(moved in note and "the outputs on check_input test it" in note for note in report.notes)
    with pytest.warns(UserWarning, match=re.escape(moved)):
        up.port(_torch_scaled(), _keras_scaled())
    back = up.port(dst, _torch_scaled((4,)), check_input=X)  # and back: the destination's block moves
    assert back.pairs == [("0", "0.conv", "conv2d"), ("1", "0", "other")] and back.max_abs_diff < 1e-5
    assert any("'1' (Scale) -> '0' (Block)" in note for note in back.notes)


def test_a_block_that_applies_its_scale_first_is_caught_by_the_check():
    """Where the block's own leaves act before its layers, pairing them after
    is wrong: the outputs on check_input show it, and the destination is restored."""
    needs("torch")
    needs("keras")
    import keras

    src = _torch_scaled(first=True)
    dst = _keras_scaled()
    dst = keras.Sequential(
        [keras.Input((6, 6, 4)), keras.layers.Conv2D(4, 3, padding="same"), dst.layers[-1]]
    )
    before = [np.array(v) for v in dst.weights]
    x = np.random.default_rng(1).standard_normal((2, 4, 6, 6)).astype("float32")
    with pytest.raises(up.PortError, match="The ported model's output differs from the source's"):
        up.port(src, dst, check_input=x)
    assert all(np.array_equal(a, np.array(v)) for a, v in zip(before, dst.weights, strict=True))


def test_a_refusal_in_order_says_where_a_scale_listed_first_may_pair():
    """Where the scale's leaves go by other names, pairing it after the block's
    layers does not pair every layer: the refusal names the leaves rule that
    does, and the mapping that pins the pairs."""
    needs("torch")
    needs("keras")
    with pytest.raises(up.PortError) as caught:
        up.port(_torch_scaled(), _keras_scaled(name="scale"))
    said = str(caught.value)
    assert "'1' (Scale) holds as many values as '0', 1 layer on" in said
    assert "Pass leaves={'gamma': 'scale'} to name their leaves alike: the port then pairs" in said
    assert "or pass mapping={'0': '1', ...} as well to pin such pairs" in said
    report = up.port(_torch_scaled(), _keras_scaled(name="scale"), leaves={"gamma": "scale"}, check_input=X)
    assert report.max_abs_diff < 1e-5
