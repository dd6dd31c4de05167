"""A layer built to hold its maps in the other order than its framework's
default: paddle's ``data_format="NHWC"`` (channels last on a channels-first
framework) and Keras' ``data_format="channels_first"`` where no graph records
the flatten. A Linear after such a map flattens it in that layer's order, so
ports, files and inputs follow the layer, not the framework."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs

X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype("float32")
FEATURES = 4 * 6 * 6


def _torch_net():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(FEATURES, 2)
    )
    return net.eval()


def _paddle_net(data_format: str):
    import paddle

    paddle.seed(1)
    net = paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 4, 3, data_format=data_format),
        paddle.nn.ReLU(),
        paddle.nn.Flatten(),
        paddle.nn.Linear(FEATURES, 2),
    )
    net.eval()
    return net


def _torch_out(net) -> np.ndarray:
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(X)).numpy()


def test_a_paddle_model_built_channels_last_flattens_its_map_so():
    """torch into paddle's ``Conv2D(data_format="NHWC")``, Flatten, Linear. Before,
    the port said nothing and the outputs differed (by 0.33 here): the Linear's
    rows were copied in torch's (C, H, W) order into a model that flattens
    (H, W, C). Now it is refused as for a Keras model without a graph; the
    declared map is reordered and verifies, both ways."""
    needs("torch")
    needs("paddle")
    import paddle

    source, nhwc = _torch_net(), _paddle_net("NHWC")
    before = up.state_dict(nhwc)
    with pytest.raises(up.PortError, match=r"Layer '3' of the paddle model may take a flattened map of 4"):
        up.port(source, nhwc)
    assert all(np.array_equal(v, before[k]) for k, v in up.state_dict(nhwc).items())
    report = up.port(source, nhwc, flatten={"3": (4, 6, 6)}, check_input=X)
    assert report.max_abs_diff <= 1e-5 and "(C, H, W) to (H, W, C)" in report.notes[0]
    native = nhwc(paddle.to_tensor(X.transpose(0, 2, 3, 1))).numpy()  # paddle's own call, channels last
    np.testing.assert_allclose(native, _torch_out(source), atol=1e-5)
    back = _torch_net()
    with pytest.raises(up.PortError, match="holds the map channels last"):
        up.port(nhwc, back)
    assert up.port(nhwc, back, flatten={"3": (4, 6, 6)}, check_input=X).max_abs_diff <= 1e-5
    # Channels first, as the framework's default: nothing to declare.
    nchw = _paddle_net("NCHW")
    assert up.port(source, nchw, check_input=X).notes == []


def test_a_paddle_model_built_channels_last_takes_and_gives_images_channels_first():
    """``m(x)`` takes the canonical (N, C, H, W) input on every backend: before, a
    paddle NHWC model got it as it was, and paddle refused it (or, had its
    width equalled its channels, answered wrongly). A map it returns comes back
    channels first."""
    needs("paddle")
    import paddle

    flat = _paddle_net("NHWC")
    expected = flat(paddle.to_tensor(X.transpose(0, 2, 3, 1))).numpy()
    np.testing.assert_allclose(up.forward(flat, X), expected, atol=1e-6)
    conv = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, data_format="NHWC"))
    maps = conv(paddle.to_tensor(X.transpose(0, 2, 3, 1))).numpy()
    np.testing.assert_allclose(up.forward(conv, X), maps.transpose(0, 3, 1, 2), atol=1e-6)


def test_a_file_of_a_paddle_model_built_channels_last_loads_only_where_it_is_ordered_alike(tmp_path):
    needs("torch")
    needs("paddle")
    nhwc = _paddle_net("NHWC")
    path = tmp_path / "nhwc.safetensors"
    up.save(nhwc, path)
    with pytest.raises(up.CheckpointError, match=r"the file \(written by paddle\) in \(H, W, C\) order"):
        up.load(_torch_net(), path)
    with pytest.raises(up.CheckpointError, match=r"the model holds its inputs in torch's \(C, H, W\)"):
        up.load(_paddle_net("NCHW"), path)
    twin = _paddle_net("NHWC")
    assert up.load(twin, path).ok
    np.testing.assert_allclose(up.forward(twin, X), up.forward(nhwc, X), atol=0)
    torch_file = tmp_path / "torch.safetensors"
    up.save(_torch_net(), torch_file)
    with pytest.raises(up.CheckpointError, match=r"its framework's own \(H, W, C\)"):
        up.load(_paddle_net("NHWC"), torch_file)
    assert up.load(_paddle_net("NCHW"), torch_file).ok
    # up.state_dict's dict says its writer as a file does (before, it loaded with nothing said);
    # a plain dict cannot tell, and is taken in torch's order.
    with pytest.raises(up.CheckpointError, match=r"the state \(written by paddle\) in \(H, W, C\) order"):
        up.load_state_dict(_torch_net(), up.state_dict(nhwc))
    assert up.load_state_dict(_paddle_net("NHWC"), up.state_dict(nhwc)).ok
    assert up.load_state_dict(_torch_net(), dict(up.state_dict(_paddle_net("NCHW")))).ok


def test_a_keras_layer_built_channels_first_without_a_graph_flattens_as_torch_does():
    """A subclassed Keras model (no graph records its Flatten) whose convolution
    is built channels first flattens (C, H, W), as torch does: its Dense is
    paired with nothing declared and takes torch's rows as they are. Before,
    the port was refused, and a declared map was reordered into the wrong
    order. Built, not run: TensorFlow runs channels-first convolutions only
    with oneDNN."""
    needs("torch")
    needs("keras")
    import keras

    class Net(keras.Model):
        def __init__(self, data_format: str):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3, data_format=data_format, activation="relu")
            self.flat = keras.layers.Flatten()
            self.fc = keras.layers.Dense(2)

        def build(self, shape):  # each layer built from its input shape, no convolution run
            self.conv.build(shape)
            self.fc.build((None, FEATURES))

        def call(self, x):
            return self.fc(self.flat(self.conv(x)))

    source = _torch_net()
    first = Net("channels_first")
    first.build((None, 3, 8, 8))
    up.port(source, first)
    assert np.array_equal(up.wrap(first)["fc.weight"].numpy(), source[3].weight.detach().numpy())
    up.port(source, first, flatten={"fc": (4, 6, 6)})  # declared: the same order, nothing moved
    assert np.array_equal(up.wrap(first)["fc.weight"].numpy(), source[3].weight.detach().numpy())
    last = Net("channels_last")
    last.build((None, 8, 8, 3))
    with pytest.raises(up.PortError, match="holds the map channels last"):
        up.port(source, last)


@pytest.mark.parametrize("built", ["NHWC norm after an NCHW conv", "NCHW norm after an NHWC conv"])
def test_a_norm_built_in_the_other_layout_than_its_convolution_is_a_difference(built):
    """paddle's ``BatchNorm2D(data_format="NHWC")`` after an ``NCHW`` convolution
    normalises the map's last axis (W), not its channels; with as many channels
    as columns it runs. Before, a port from torch's twin said nothing while the
    outputs differed (by 9.96 here); now it warns, and a check input refuses it."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    conv_format, norm_format = ("NCHW", "NHWC") if built.startswith("NHWC") else ("NHWC", "NCHW")
    source = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    with torch.no_grad():
        source[1].running_mean.uniform_(-1, 1)
        source[1].weight.uniform_(0.5, 1.5)
    destination = paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 4, 3, data_format=conv_format), paddle.nn.BatchNorm2D(4, data_format=norm_format)
    )
    destination.eval()
    axis = (
        "the last axis of a channels-first map"
        if built.startswith("NHWC")
        else "axis 1 of a channels-last map"
    )
    with pytest.warns(UserWarning, match="will not compute what the source does") as caught:
        report = up.port(source, destination)
    line = f"1 -> 1: normalised_axis the map's channels (torch) vs {axis} (paddle)"
    assert report.differences == [line] and line in str(caught[0].message)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    with pytest.raises(up.PortError, match="normalised_axis"):
        up.port(source, destination, check_input=x)
    twin = paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 4, 3, data_format=conv_format), paddle.nn.BatchNorm2D(4, data_format=conv_format)
    )
    twin.eval()
    assert up.port(source, twin, check_input=x).differences == []  # built alike: the channels
