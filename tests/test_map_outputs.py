"""Generators: a Linear whose outputs are reshaped into a map, then a
transposed convolution.

A model whose input is no map but whose output is one gives that map
channels first on every backend, as torch does, and takes image targets
channels first. Before, ``m(x)`` on a Keras generator gave ``(batch, H, W,
C)`` where torch's gives ``(batch, C, H, W)``: the output was moved back only
where the input's channels had been moved.

The Linear's weight rows, its bias and a normalisation of its features run
``(C, H, W)`` on torch and ``(H, W, C)`` where the map is held channels last:
a Keras graph records the reshape (canonical, nothing to declare); elsewhere
``unflatten=`` declares it, and undeclared a port is refused."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs

X = np.random.default_rng(0).standard_normal((2, 8)).astype("float32")


def _keras_generator():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(36),
        keras.layers.Reshape((3, 3, 4)),
        keras.layers.Conv2DTranspose(2, 3),
    ])  # fmt: skip


def _native_out(model, x) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(model(x)))


def test_a_keras_generator_gives_its_map_channels_first():
    needs("keras")
    model = _keras_generator()
    out = up.wrap(model)(X)
    assert out.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(out, np.moveaxis(_native_out(model, X), -1, 1), rtol=1e-6)


def test_a_keras_generator_takes_its_image_targets_channels_first():
    """Targets equal to the outputs give no gradient; moved the wrong way (or
    not at all) they would."""
    needs("keras")
    model = _keras_generator()
    m = up.wrap(model)
    target = m(X)
    grads = up.gradients(model, X, loss="mse", targets=target)
    assert set(grads) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert max(float(np.abs(g).max()) for g in grads.values()) < 1e-6
    off = up.gradients(model, X, loss="mse", targets=target + 1)
    assert max(float(np.abs(g).max()) for g in off.values()) > 1e-3


def test_a_map_reshaped_into_a_sequence_after_the_last_convolution_stays_as_it_is():
    """A patch embedding (a convolution, then its map reshaped to (patches,
    features)) gives (batch, patches, features) in Keras and in torch alike."""
    needs("keras")
    import keras

    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(6, 4, strides=4), keras.layers.Reshape((4, 6))]
    )
    images = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype("float32")
    out = up.wrap(model)(images)
    np.testing.assert_allclose(out, _native_out(model, np.moveaxis(images, 1, -1)), rtol=1e-6)
    assert out.shape == (2, 4, 6)


def test_a_torch_generator_is_left_as_it_gives_its_map():
    needs("torch")
    import torch

    net = torch.nn.Sequential(
        torch.nn.Linear(8, 36), torch.nn.Unflatten(1, (4, 3, 3)), torch.nn.ConvTranspose2d(4, 2, 3)
    )
    with torch.no_grad():
        want = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(up.wrap(net)(X), want, rtol=1e-6)


# -- a Linear's outputs made a map: its weight's rows, its bias and a norm of them ---------


def _torch_dcgan(norm: bool = True):
    """A DCGAN generator's head, as torch's tutorial builds it: Linear, BatchNorm1d of its
    features, then the features unflattened to (C, H, W) for a transposed convolution."""
    import torch

    torch.manual_seed(0)
    layers = [torch.nn.Linear(8, 36, bias=not norm)]
    if norm:
        layers.append(torch.nn.BatchNorm1d(36))
    layers += [torch.nn.LeakyReLU(0.3), torch.nn.Unflatten(1, (4, 3, 3)), torch.nn.ConvTranspose2d(4, 2, 3)]
    net = torch.nn.Sequential(*layers)
    if norm:
        with torch.no_grad():  # statistics of their own, so a wrong order shows
            for value, low, high in ((net[1].running_mean, -1, 1), (net[1].running_var, 0.5, 2),
                                     (net[1].weight, 0.5, 2), (net[1].bias, -1, 1)):  # fmt: skip
                value.uniform_(low, high)
    return net.eval()


def _keras_dcgan(norm: bool = True):
    """The same head as Keras' DCGAN tutorial builds it: Dense, BatchNormalization,
    LeakyReLU, Reshape to (H, W, C), Conv2DTranspose."""
    import keras

    L = keras.layers
    layers = [keras.Input((8,)), L.Dense(36, use_bias=not norm)]
    if norm:
        layers.append(L.BatchNormalization(epsilon=1e-5, momentum=0.9))
    return keras.Sequential([*layers, L.LeakyReLU(0.3), L.Reshape((3, 3, 4)), L.Conv2DTranspose(2, 3)])


def test_a_keras_generator_records_its_reshape_and_ports_with_nothing_declared(tmp_path):
    """Before, torch's generator went into Keras' with nothing said while the
    outputs differed (0.34 here): the Dense's rows and the norm's values were
    copied in (C, H, W) order into a model that reshapes them (H, W, C)."""
    needs("torch")
    needs("keras")
    import torch

    for norm in (True, False):
        source, keras_model = _torch_dcgan(norm), _keras_dcgan(norm)
        assert up.port(source, keras_model, check_input=X).max_abs_diff < 1e-6
        state, keras_state = up.state_dict(source), up.state_dict(keras_model)
        for key, value in state.items():  # canonical on both sides: torch's order
            if key.endswith("num_batches_tracked"):
                continue  # torch's alone
            np.testing.assert_allclose(keras_state[key], value, rtol=1e-6, err_msg=key)
        back = _torch_dcgan(norm)
        for p in back.parameters():
            torch.nn.init.zeros_(p)
        assert up.port(keras_model, back, check_input=X).max_abs_diff < 1e-6
        up.save(keras_model, tmp_path / "k.safetensors")
        loaded = _torch_dcgan(norm)
        up.load(loaded, tmp_path / "k.safetensors")
        np.testing.assert_allclose(up.wrap(loaded)(X), up.wrap(source)(X), rtol=1e-5, atol=1e-6)


def _paddle_nhwc_generator():
    import paddle

    class Generator(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc = paddle.nn.Linear(8, 36)
            self.up = paddle.nn.Conv2DTranspose(4, 2, 3, data_format="NHWC")

        def forward(self, z):
            return self.up(self.fc(z).reshape([-1, 3, 3, 4]))

    paddle.seed(2)
    return Generator()


def _torch_generator():
    import torch

    class Generator(torch.nn.Module):  # named as paddle's, so a file's keys fit both
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 36)
            self.up = torch.nn.ConvTranspose2d(4, 2, 3)

        def forward(self, z):
            return self.up(self.fc(z).view(-1, 4, 3, 3))

    torch.manual_seed(3)
    return Generator().eval()


def test_a_reshape_no_graph_records_is_refused_unless_declared(tmp_path):
    """paddle's transposed convolution built NHWC after a Linear, the reshape in
    the forward method: before, torch's weights went in with nothing said."""
    needs("torch")
    needs("paddle")
    source, nhwc = _torch_generator(), _paddle_nhwc_generator()
    before = up.state_dict(nhwc)
    with pytest.raises(up.PortError, match=r"unflatten=\{'fc': \(4, H, W\)\}") as err:
        up.port(source, nhwc)
    assert "may give a map of 4 channels at 9 positions" in str(err.value)
    assert all(np.array_equal(v, before[k]) for k, v in up.state_dict(nhwc).items())
    report = up.port(source, nhwc, unflatten={"fc": (4, 3, 3)}, check_input=X)
    assert report.max_abs_diff < 1e-6 and "outputs reordered as a 4-channel map" in report.notes[0]
    assert up.port(nhwc, _torch_generator(), unflatten={"fc": (4, 3, 3)}, check_input=X).max_abs_diff < 1e-6
    with pytest.raises(up.PortError, match="output differs from the source"):  # left to the check
        up.port(source, _paddle_nhwc_generator(), check_input=X)
    # A file keeps its writer's order, and a load refuses the other one.
    up.save(source, tmp_path / "t.safetensors")
    with pytest.raises(up.CheckpointError, match="holds its outputs in its framework's own"):
        up.load(_paddle_nhwc_generator(), tmp_path / "t.safetensors")
    up.save(nhwc, tmp_path / "p.safetensors")
    with pytest.raises(up.CheckpointError, match=r"the file \(written by paddle\) in \(H, W, C\) order"):
        up.load(_torch_generator(), tmp_path / "p.safetensors")
    with pytest.raises(up.CheckpointError, match=r"the state \(written by paddle\) in \(H, W, C\) order"):
        up.load_state_dict(_torch_generator(), up.state_dict(nhwc))  # an in-memory state says it too
    assert up.load_state_dict(_paddle_nhwc_generator(), up.state_dict(nhwc)).ok
    again = _paddle_nhwc_generator()
    assert up.load(again, tmp_path / "p.safetensors").ok
    np.testing.assert_allclose(up.wrap(again)(X), up.wrap(nhwc)(X), rtol=1e-6)


def test_a_flax_generator_is_refused_unless_declared():
    needs("torch")
    needs("flax")
    from flax import nnx

    class Generator(nnx.Module):
        def __init__(self, rngs):
            self.fc = nnx.Linear(8, 36, rngs=rngs)
            self.up = nnx.ConvTranspose(4, 2, (3, 3), padding="VALID", rngs=rngs)

        def __call__(self, z):
            return self.up(self.fc(z).reshape(-1, 3, 3, 4))

    source, nnx_model = _torch_generator(), Generator(nnx.Rngs(0))
    with pytest.raises(up.PortError, match="does not record how it reshapes them"):
        up.port(source, nnx_model)
    assert up.port(source, nnx_model, unflatten={"fc": (4, 3, 3)}, check_input=X).max_abs_diff < 1e-6


def test_a_subclassed_keras_generator_records_no_reshape_and_is_refused_unless_declared():
    """A reshape inside ``call``: no graph records it, so the Dense keeps
    Keras' (H, W, C) order of its outputs, as an NNX module's."""
    needs("torch")
    needs("keras")
    import keras

    class Generator(keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = keras.layers.Dense(36)
            self.up = keras.layers.Conv2DTranspose(2, 3)

        def call(self, z):
            return self.up(keras.ops.reshape(self.fc(z), (-1, 3, 3, 4)))

    subclassed = Generator()
    subclassed(X)  # built by a call, which records no graph
    with pytest.raises(up.PortError, match=r"unflatten=\{'fc': \(4, H, W\)\}"):
        up.port(_torch_generator(), subclassed)
    report = up.port(_torch_generator(), subclassed, unflatten={"fc": (4, 3, 3)}, check_input=X)
    assert report.max_abs_diff < 1e-6
