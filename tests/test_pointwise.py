"""A Linear paired with a pointwise convolution, and Keras operations in a
functional graph.

keras.applications' MobileNets end in ``1 x 1`` convolutions on the pooled map
where torchvision's and paddle.vision's end in Linears; a Linear over each
position's channels (torchvision's ConvNeXt) is a pointwise convolution.
A Linear's weight ``(out, in)`` is such a convolution's ``(out, in, 1, 1)``,
and with a kernel of ones, stride 1, no padding and one group, both compute
the same. Before, every such pair was refused as of other kinds ("kinds
linear and conv2d"); now it pairs by shape, the port reshapes the weight and
checks the convolution, and refuses one that is not pointwise before anything
is written.

A functional Keras model records ``x + 3.0`` on a layer's output as an
operation that is no layer (keras.applications' MobileNetV3 hard-sigmoid);
before, any port of such a model failed inside the library
(``AttributeError: 'Add' object has no attribute 'weights'``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs, snapshot

X = np.random.default_rng(0).standard_normal((2, 3, 7, 7)).astype("float32")


def _torch_head(linear_in: int = 4):
    """Conv2d(3, 4, 3), ReLU, pooled to 1 x 1, flattened, Linear(4, 5)."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(linear_in, 5),
    ).eval()


def _keras_head(**pointwise):
    """keras.applications' head: Conv2D, ReLU, pooled keeping a 1 x 1 map, a
    Conv2D of kernel 1 (``pointwise`` settings), flattened."""
    import keras

    L = keras.layers
    inputs = keras.Input((7, 7, 3))
    x = L.ReLU()(L.Conv2D(4, 3)(inputs))
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Conv2D(5, 1, **pointwise)(x)
    return keras.Model(inputs, L.Flatten()(x))


def test_a_linear_ports_into_a_pointwise_convolution_and_back():
    needs("torch")
    needs("keras")
    src, dst = _torch_head(), _keras_head()
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff < 1e-5
    assert ("4", "4", "linear") in report.pairs  # (Keras keys the functional model's layers by position)
    assert any(line.startswith("4.weight -> 4.weight: (5, 4) as (5, 4, 1, 1)") for line in report.conversions)
    np.testing.assert_array_equal(
        up.wrap(dst)["4.weight"].numpy()[:, :, 0, 0], up.wrap(src)["4.weight"].numpy()
    )

    back = _torch_head()
    up.wrap(back)["4.weight"].set(np.zeros((5, 4), "float32"))
    report = up.port(dst, back, check_input=X)
    assert report.max_abs_diff < 1e-5
    np.testing.assert_array_equal(up.wrap(back)["4.weight"].numpy(), up.wrap(src)["4.weight"].numpy())


def test_a_paddle_linear_ports_into_a_torch_pointwise_convolution():
    """Paddle keeps a Linear's weight (in, out): canonical first, then reshaped."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    paddle.seed(0)
    src = paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 4, 3), paddle.nn.ReLU(), paddle.nn.AdaptiveAvgPool2D(1), paddle.nn.Flatten(),
        paddle.nn.Linear(4, 5),
    )  # fmt: skip
    src.eval()
    dst = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Conv2d(4, 5, 1),
        torch.nn.Flatten(),
    ).eval()  # fmt: skip
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff < 1e-5
    np.testing.assert_array_equal(dst[3].weight.detach().numpy()[:, :, 0, 0], src[4].weight.numpy().T)


def test_a_linear_over_each_positions_channels_is_a_pointwise_convolution():
    """torchvision's ConvNeXt form: a Linear on a channels-last map, at every position."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    class PerPosition(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.mix = torch.nn.Linear(4, 6)

        def forward(self, x):
            return self.mix(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    torch.manual_seed(0)
    src = PerPosition().eval()
    dst = keras.Sequential([keras.Input((7, 7, 3)), keras.layers.Conv2D(4, 3), keras.layers.Conv2D(6, 1)])
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff < 1e-5


@pytest.mark.parametrize(
    "settings, said",
    [
        ({"strides": 2}, "stride 2, 2"),
        ({"padding": "same", "kernel_size": 1, "dilation_rate": 2}, None),  # pointwise all the same
    ],
)
def test_only_a_pointwise_convolution_pairs_with_a_linear(settings, said):
    needs("torch")
    needs("keras")
    src, dst = _torch_head(), _keras_head(**{k: v for k, v in settings.items() if k != "kernel_size"})
    if said is None:
        assert up.port(src, dst, check_input=X).max_abs_diff < 1e-5
        return
    before = snapshot(dst)
    with pytest.raises(up.PortError, match=rf"is no pointwise convolution \(kernel 1, 1, {said}"):
        up.port(src, dst)
    after = snapshot(dst)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_a_grouped_pointwise_convolution_is_refused():
    """Conv2D(4, 1, groups=2) on four channels holds (4, 2, 1, 1), a Linear(2, 4)'s
    shape, and computes something else."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(2, 4))
    dst = keras.Sequential(
        [keras.Input((7, 7, 3)), keras.layers.Conv2D(4, 3), keras.layers.Conv2D(4, 1, groups=2)]
    )
    with pytest.raises(up.PortError, match="is no pointwise convolution .*2 groups"):
        up.port(src, dst)


def test_a_functional_keras_model_with_operations_on_a_layers_output_ports():
    needs("keras")
    import keras

    def hard_sigmoid_model():
        inputs = keras.Input((7, 7, 3))
        x = keras.layers.Conv2D(4, 3)(inputs)
        x = keras.layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)  # keras.applications' MobileNetV3
        return keras.Model(inputs, keras.layers.Conv2D(2, 1)(x))

    src, dst = hard_sigmoid_model(), hard_sigmoid_model()
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff == 0.0


def test_a_flax_pointwise_convolution_pairs_with_a_torch_linear():
    needs("torch")
    needs("flax")
    import jax.numpy as jnp
    from flax import nnx

    class Head(nnx.Module):
        def __init__(self, strides: int = 1):
            rngs = nnx.Rngs(0)
            self.conv = nnx.Conv(3, 4, (3, 3), padding="VALID", rngs=rngs)
            self.fc = nnx.Conv(4, 5, (1, 1), strides=strides, rngs=rngs)

        def __call__(self, x):
            x = jnp.mean(nnx.relu(self.conv(x)), axis=(1, 2), keepdims=True)
            return self.fc(x).reshape(x.shape[0], -1)

    src, dst = _torch_head(), Head()
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff < 1e-5
    assert "4.weight -> fc.weight: (5, 4) as (5, 4, 1, 1); flax axes (3, 2, 0, 1)" in report.conversions
    assert up.port(dst, _torch_head(), check_input=X).max_abs_diff < 1e-5
    with pytest.raises(
        up.PortError, match=r"flax Conv 'fc' .* no pointwise convolution \(kernel 1, 1, stride 2, 2"
    ):
        up.port(src, Head(strides=2))


def test_the_port_says_it_takes_the_linear_to_act_on_the_channels():
    """No layer shows which axis a Linear acts on: the report says what the
    port assumed, a port without a check input warns, and one with a check
    input does not."""
    needs("torch")
    needs("keras")
    src, dst = _torch_head(), _keras_head()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checked port does not warn
        report = up.port(src, dst, check_input=X)
    (note,) = [n for n in report.notes if n.startswith("Linears paired with pointwise convolutions")]
    assert "4 -> 4. The port takes each Linear to act on the channels" in note
    assert note.endswith("the outputs on check_input test it.")
    with pytest.warns(UserWarning, match=r"Linears paired with .* pass check_input=x to verify it\.$"):
        report = up.port(src, _keras_head())
    assert any("pass check_input=x to verify it" in n for n in report.notes)


def test_a_linear_over_the_width_of_a_map_is_refused_by_the_check():
    """What the note warns of: a torch Linear over the last axis of a
    channels-first map (its width) pairs by shape with a pointwise Keras
    convolution, which mixes channels; the check refuses it and restores."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    torch.manual_seed(0)
    src = torch.nn.Sequential(
        torch.nn.Conv2d(3, 5, 3), torch.nn.Linear(5, 5), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    ).eval()  # fmt: skip
    L = keras.layers
    dst = keras.Sequential(
        [keras.Input((7, 7, 3)), L.Conv2D(5, 3), L.Conv2D(5, 1), L.GlobalAveragePooling2D()]
    )
    before = snapshot(dst)
    with pytest.warns(UserWarning, match="Linears paired with pointwise convolutions: 1 -> 1"):
        up.port(src, dst)  # shapes alone allow it: the warning is all there is to see
    after_unchecked = snapshot(dst)
    assert not all(np.array_equal(before[k], after_unchecked[k]) for k in before)
    with pytest.raises(up.PortError, match="output differs from the source's"):
        up.port(src, dst, check_input=X)
    assert all(np.array_equal(after_unchecked[k], v) for k, v in snapshot(dst).items())


def test_a_bias_on_one_side_of_a_linear_and_a_pointwise_convolution():
    """As for two layers of one kind (`absent`): a bias the source lacks is
    set to zeros, one the destination lacks is left out when it holds zeros,
    and refused otherwise before anything is written."""
    needs("torch")
    needs("keras")
    import torch

    src = _torch_head()
    src[4] = torch.nn.Linear(4, 5, bias=False)
    dst = _keras_head()
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff < 1e-5
    assert "4: bias set to zeros (torch's '4' has none)" in report.absent
    np.testing.assert_array_equal(up.wrap(dst)["4.bias"].numpy(), np.zeros(5, "float32"))

    back = _torch_head()
    back[4] = torch.nn.Linear(4, 5, bias=False)
    report = up.port(dst, back, check_input=X)  # its bias holds zeros: left out
    assert any(line.startswith("4: bias is all zeros, left out") for line in report.absent)

    up.wrap(dst)["4.bias"].set(np.full(5, 0.5, "float32"))
    before = snapshot(back)
    with pytest.raises(up.PortError, match="bias"):
        up.port(dst, back)
    assert all(np.array_equal(before[k], v) for k, v in snapshot(back).items())


def test_a_linear_and_a_wider_kernel_are_refused_with_the_shape_wanted():
    needs("torch")
    needs("keras")
    import keras
    import torch

    src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4, 5))
    dst = keras.Sequential([keras.Input((7, 7, 3)), keras.layers.Conv2D(4, 3), keras.layers.Conv2D(5, 3)])
    with pytest.raises(
        up.PortError,
        match=r"kinds linear and conv2d \(a Linear's weight \(5, 4\) pairs only with a pointwise "
        r"convolution's \(5, 4, 1, 1\), not \(5, 4, 3, 3\)\)",
    ):
        up.port(src, dst)
