"""A variable a layer of unknown kind also holds (a wrapper keeping its inner
layer's kernel) is listed where a layer lays it out, on every backend (the
listing itself: ``tests/conformance/test_tying.py``); here, across frameworks
and Keras' own such wrapper, SpectralNormalization.

Listed at the wrapper, it was shown and saved in the framework's own layout as
if canonical: a square paddle or Keras kernel saved so loaded transposed into
a torch model of the same make, with no error.
"""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from tests.frameworks import forward
from tests.native import for_backend

X = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")


@pytest.mark.parametrize("source", ["paddle", "keras", "flax"])
def test_a_square_borrowed_kernel_saved_from_a_transposing_framework_loads_into_torch_right(source, tmp_path):
    """A square kernel: shapes cannot tell a transposed one. Before, a paddle
    file held the kernel under ``0.w`` in paddle's own ``(in, out)`` layout,
    said canonical, and torch loaded it transposed (outputs off by up to 3.3,
    no error); a Keras file keyed it ``0.kernel``, which torch refused."""
    needs(source)
    needs("torch")
    src, dst = for_backend(source).wrapper_holding_kernel(4), for_backend("torch").wrapper_holding_kernel(4)
    up.initialize(src, up.init.Normal(0, 1.0), seed=1)
    up.save(src, tmp_path / "w.safetensors", progress=False)
    up.load(dst, tmp_path / "w.safetensors", progress=False)
    np.testing.assert_allclose(forward("torch", dst, X), forward(source, src, X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "pair", ["paddle>torch", "torch>paddle", "keras>torch", "torch>keras", "flax>paddle"]
)
def test_a_wrapper_model_ports_across_frameworks(pair):
    """The wrapper's hold on the kernel keeps each framework's own layout, so
    it is not compared across frameworks: the kernel moves with its layer.
    Before, every such port was refused ("the source gives it different values
    there", or keys that did not pair)."""
    a, b = pair.split(">")
    needs(a)
    needs(b)
    src, dst = for_backend(a).wrapper_holding_kernel(4), for_backend(b).wrapper_holding_kernel(4)
    up.initialize(src, up.init.Normal(0, 1.0), seed=1)
    report = up.port(src, dst, check_input=X)
    assert [(s, d) for s, d, _ in report.pairs] == [("0.layer", "0.layer")]
    np.testing.assert_allclose(forward(b, dst, X), forward(a, src, X), rtol=1e-5, atol=1e-5)


def spectral(width: int = 4):
    """A real wrapper of that make: Keras' SpectralNormalization around a Dense."""
    needs("keras")
    import keras

    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.SpectralNormalization(keras.layers.Dense(width)),
            keras.layers.Dense(2),
        ]
    )


def test_keras_spectral_normalization_lists_its_kernel_at_the_dense():
    net = spectral(3)
    params = up.wrap(net).params()
    assert list(params) == ["0.vector_u", "0.layer.weight", "0.layer.bias", "1.weight", "1.bias"]
    assert params["0.layer.weight"].shape == (3, 4) and params["0.layer.weight"].aliases == ("0.kernel",)
    # Keras' own path for the variable names the Dense too.
    assert params["0.layer.weight"].native.path.rsplit("/", 2)[-2].startswith("dense")


def test_keras_spectral_normalization_ports_and_round_trips(tmp_path):
    """A port between two such models compared the kernel at its two paths, each
    laid out its own way, and refused ("the source gives it different values")."""
    src, dst = spectral(), spectral()
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff == 0.0
    up.save(src, tmp_path / "sn.safetensors", progress=False)
    again = spectral()
    up.load(again, tmp_path / "sn.safetensors", progress=False)
    np.testing.assert_array_equal(forward("keras", again, X), forward("keras", src, X))


def test_a_state_keyed_at_the_wrappers_path_loads_in_that_paths_layout():
    """A file written before keyed the kernel at ``0.kernel``, in Keras' own
    ``(in, out)``: read as that path lays it out, not as the Dense does."""
    src = spectral()
    sn, head = src.layers[0], src.layers[1]
    state = {
        "0.kernel": np.asarray(sn.kernel),
        "0.vector_u": np.asarray(sn.vector_u),
        "0.layer.bias": np.asarray(sn.layer.bias),
        "1.weight": np.asarray(head.kernel).T,
        "1.bias": np.asarray(head.bias),
    }
    dst = spectral()
    report = up.load_state_dict(dst, state)
    assert "0.layer.weight" in report.loaded
    np.testing.assert_array_equal(forward("keras", dst, X), forward("keras", src, X))
    # Given at both paths, in each path's layout: one value, the alias skipped.
    both = {**state, "0.layer.weight": np.asarray(sn.kernel).T}
    assert up.load_state_dict(spectral(), both).skipped == ["0.kernel"]
    with pytest.raises(up.CheckpointError, match="tied in this model but given different values '0.kernel'"):
        up.load_state_dict(spectral(), {**both, "0.kernel": np.asarray(sn.kernel) + 1})
