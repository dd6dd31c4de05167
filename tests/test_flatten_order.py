"""A Keras functional or Sequential model records its Flatten: the Dense after a
flattened (H, W, C) map is canonical (torch's (C, H, W) inputs), so ports, state
dicts and files agree with torch's with nothing declared, both ways."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs

X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype("float32")


def _torch_net():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 5, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(45, 6),
        torch.nn.ReLU(),
        torch.nn.Linear(6, 3),
    ).eval()


def _keras_functional(flatten: str):
    import keras

    inputs = keras.Input((8, 8, 3))
    h = keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(5, 3, activation="relu")(inputs))
    h = keras.layers.Flatten()(h) if flatten == "Flatten" else keras.layers.Reshape((-1,))(h)
    h = keras.layers.Dense(6, activation="relu")(keras.layers.Dropout(0.5)(h))
    return keras.Model(inputs, keras.layers.Dense(3)(h))


def _keras_sequential():
    import keras

    return keras.Sequential(
        [
            keras.layers.Conv2D(5, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(3),
        ]
    )


@pytest.mark.parametrize("style", ["functional Flatten", "functional Reshape", "Sequential"])
def test_a_keras_graph_makes_ports_exact_without_a_check_input(style):
    needs("torch")
    needs("keras")
    keras_model = _keras_sequential() if style == "Sequential" else _keras_functional(style.split()[1])
    keras_model(np.zeros((1, 8, 8, 3), "float32"))  # built by a call: the Sequential traces its graph
    torch_model = _torch_net()
    up.initialize(torch_model, up.init.Normal(0, 0.3), seed=4)
    report = up.port(torch_model, keras_model)  # no check input
    assert report.notes == [] and report.pairs[1] == ("5", "4" if style == "Sequential" else "5", "linear")
    np.testing.assert_allclose(up.forward(keras_model, X), up.forward(torch_model, X), atol=1e-5)
    torch_state, keras_state = up.state_dict(torch_model), up.state_dict(keras_model)
    assert [v.tobytes() for v in torch_state.values()] == [v.tobytes() for v in keras_state.values()]

    up.initialize(keras_model, up.init.Normal(0, 0.3), seed=5)  # and back
    back = _torch_net()
    assert up.port(keras_model, back).notes == []
    np.testing.assert_allclose(up.forward(back, X), up.forward(keras_model, X), atol=1e-5)


def test_a_keras_file_of_a_recorded_flatten_loads_into_torch(tmp_path):
    """Same keys on both sides (a spec-like Sequential): the file written from Keras
    loads into torch and gives Keras' outputs."""
    needs("torch")
    needs("keras")
    from unified_params import spec as S

    spec = S.Sequential(S.Conv2d(3, 5, 3), S.ReLU(), S.Flatten(), S.Linear(180, 3))
    keras_model = spec.build("keras", input_shape=(3, 8, 8))
    up.initialize(keras_model, up.init.Normal(0, 0.3), seed=6)
    path = tmp_path / "keras.safetensors"
    up.save(keras_model, path)
    torch_model = spec.build("torch")
    assert up.load(torch_model, path).ok
    np.testing.assert_allclose(up.forward(torch_model, X), up.forward(keras_model, X), atol=1e-5)


def test_a_keras_sequential_of_unknown_spatial_size_records_nothing_and_asks():
    """A Sequential built without its spatial size traces a graph whose Flatten takes a
    map of unknown positions: its Dense keeps Keras' own order, a port to torch
    refuses, and a declared map makes it exact."""
    needs("torch")
    needs("keras")
    from unified_params import spec as S

    spec = S.Sequential(S.Conv2d(3, 5, 3), S.ReLU(), S.Flatten(), S.Linear(180, 3))
    keras_model = spec.build("keras")  # spatial size unknown
    up.forward(keras_model, X)
    torch_model = spec.build("torch")
    up.initialize(torch_model, up.init.Normal(0, 0.3), seed=7)
    with pytest.raises(up.PortError, match=r"'3' of the keras model may take a flattened map of 5 channels"):
        up.port(torch_model, keras_model)
    report = up.port(torch_model, keras_model, flatten={"3": (5, 6, 6)})
    assert report.notes == [
        "3 -> 3: inputs reordered as a 5-channel map at 36 positions ((C, H, W) to (H, W, C)), as declared"
    ]
    np.testing.assert_allclose(up.forward(keras_model, X), up.forward(torch_model, X), atol=1e-5)


def test_a_normalisation_over_flattened_features_is_refused_even_when_declared():
    """Flatten -> BatchNorm -> Dense: the BatchNorm's per-feature values come in the two
    orders too, which only a Linear's layout converts: refused, declared or not."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    t = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.BatchNorm1d(144), torch.nn.Linear(144, 2)
    )
    k = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    for src, dst in ((t, k), (k, t)):
        for flatten in (None, {"3": (4, 6, 6)}):
            with pytest.raises(up.PortError, match=r"normalised per feature at '2'"):
                up.port(src, dst, flatten=flatten)


def test_a_keras_model_built_channels_first_takes_images_as_torch_does():
    """``data_format="channels_first"``: the Keras model takes (C, H, W) images and
    flattens (C, H, W), as torch does. Its kernels are laid out as any Keras
    kernel, so the port is exact; ``m(x)`` and the port's check give it the
    canonical input as it is, not with channels moved last (which a model
    whose channels equal its width would take, and answer wrongly)."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    probe = keras.Sequential(
        [keras.Input((3, 4, 4)), keras.layers.Conv2D(1, 3, data_format="channels_first")]
    )
    try:
        probe(np.zeros((1, 3, 4, 4), "float32"))
    except Exception as err:  # TensorFlow's own limit on this CPU, before any library call
        if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1":
            pytest.fail(f"TensorFlow runs no channels-first convolution here, even with oneDNN: {err}")
        # NCHW needs oneDNN, on by default only on AVX-512 CPUs: run this test again in
        # a process that turns it on (it must be set before TensorFlow is imported).
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "UP_TEST_BACKENDS": "torch,keras"}
        test = f"{__file__}::test_a_keras_model_built_channels_first_takes_images_as_torch_does"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
        return
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 9)).astype("float32")
    source = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 7, 2)
    )
    first = keras.Sequential(
        [
            keras.Input((3, 7, 9)),
            keras.layers.Conv2D(4, 3, data_format="channels_first"),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    report = up.port(source, first, check_input=x)
    assert report.max_abs_diff <= 1e-5 and report.notes == []
    np.testing.assert_allclose(up.wrap(first)(x), source(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
