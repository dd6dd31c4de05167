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


@pytest.mark.parametrize("source", ["paddle", "flax"])
def test_a_holders_view_saved_from_a_transposing_framework_loads_into_torch_right(source, tmp_path):
    """The holder sits beside the Linear whose square weight it holds, and only
    its view is saved. Before, the paddle file held the weight under ``1.w`` in
    paddle's own ``(in, out)`` layout, said canonical, and torch loaded it
    transposed, with no error. (Keras names it ``kernel``, which torch's
    holder does not have: refused either way.)"""
    needs(source)
    needs("torch")
    src, dst = for_backend(source).sibling_holding_kernel(4), for_backend("torch").sibling_holding_kernel(4)
    up.initialize(src, up.init.Normal(0, 1.0), seed=1)
    up.save(up.wrap(src)[1], tmp_path / "w.safetensors", progress=False)
    up.load(up.wrap(dst)[1], tmp_path / "w.safetensors", progress=False)
    np.testing.assert_array_equal(up.wrap(dst)["0.weight"].numpy(), up.wrap(src)["0.weight"].numpy())


@pytest.mark.parametrize("source", ["paddle", "flax"])
def test_an_embedding_a_linear_holds_transposed_moves_into_torch_as_two_matrices(source, tmp_path):
    """One square variable that paddle's or Flax's Embedding and Linear lay
    out apart: the file holds both canonical matrices. Torch's untied twin
    loads them and computes the same; torch's tied twin, which can hold one
    matrix only, is refused, nothing written (before: the file held one,
    said tied, and the tied twin loaded it with outputs off by 2.2)."""
    needs(source)
    needs("torch")
    import torch

    src = for_backend(source).embedding_in_a_linear()
    up.save(src, tmp_path / "lm.safetensors", progress=False)
    tokens = np.array([[0, 1, 2, 3, 1]])
    tied = for_backend("torch").embedding_in_a_linear()
    before = tied.emb.weight.detach().clone()
    with pytest.raises(up.CheckpointError, match="tied in this model but given different values"):
        up.load(tied, tmp_path / "lm.safetensors", progress=False)
    assert torch.equal(tied.emb.weight.detach(), before)
    untied = for_backend("torch").embedding_in_a_linear()
    untied.head.weight = torch.nn.Parameter(untied.emb.weight.detach().clone())
    up.load(untied, tmp_path / "lm.safetensors", progress=False)
    np.testing.assert_allclose(
        forward("torch", untied, tokens), forward(source, src, tokens), rtol=1e-5, atol=1e-6
    )


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


def _state(net, layout: str = "canonical") -> dict[str, np.ndarray]:
    """``net``'s state without the Dense's kernel, in ``layout``."""
    state = up.state_dict(net, layout=layout)
    return {k: np.asarray(v) for k, v in state.items() if k != "0.layer.weight"}


def test_a_value_keyed_at_the_wrappers_path_is_read_by_the_layout_its_shape_fits():
    """A look-up at the wrapper's path ``0.kernel`` answers with the Dense's
    parameter, canonical; a value keyed there is canonical too, unless only
    Keras' own ``(in, out)`` fits its shape, as files written before such a
    kernel was listed at its layer keyed it."""
    src = spectral(3)
    kernel = np.asarray(src.layers[0].kernel)  # Keras' (in, out): (4, 3)
    assert up.wrap(src)["0.kernel"].shape == (3, 4)
    for value in (kernel, kernel.T):  # as files written before; canonical
        dst = spectral(3)
        report = up.load_state_dict(dst, {**_state(src), "0.kernel": value})
        assert "0.layer.weight" in report.loaded and report.skipped == []
        np.testing.assert_array_equal(forward("keras", dst, X), forward("keras", src, X))
    # Given at both paths, either way: one value, the alias skipped; another value: a conflict.
    for value in (kernel, kernel.T):
        both = {**_state(src), "0.layer.weight": kernel.T, "0.kernel": value}
        assert up.load_state_dict(spectral(3), both).skipped == ["0.kernel"]
    with pytest.raises(up.CheckpointError, match="tied in this model but given different values '0.kernel'"):
        up.load_state_dict(spectral(3), {**both, "0.kernel": kernel.T + 1})


def test_a_square_value_at_the_wrappers_path_is_refused_unless_its_layout_is_said():
    """Square, a value at ``0.kernel`` fits both layouts: the load cannot know
    which, so it refuses, and takes it once the layout is said."""
    src = spectral(4)
    kernel = np.asarray(src.layers[0].kernel)
    with pytest.raises(up.CheckpointError, match="Cannot tell the layout of the value given at '0.kernel'"):
        up.load_state_dict(spectral(4), {**_state(src), "0.kernel": kernel})
    for layout, value in (("canonical", kernel.T), ("native", kernel)):
        dst = spectral(4)
        up.load_state_dict(dst, {**_state(src, layout), "0.kernel": value}, layout=layout)
        np.testing.assert_array_equal(forward("keras", dst, X), forward("keras", src, X))


def test_a_look_up_at_a_wrappers_path_sees_a_native_change():
    """A wrapper's path is looked up in the live model, never from the kept
    index: once the wrapper holds a variable of its own there, a look-up
    answers with it."""
    needs("torch")
    import torch

    net = for_backend("torch").wrapper_holding_kernel(3)
    m = up.wrap(net)
    m.params(), m.params()  # the view keeps its walk
    assert [m["0.w"].path for _ in range(3)] == ["0.layer.weight"] * 3
    net[0].w = torch.nn.Parameter(torch.zeros(3, 4))
    assert [(m["0.w"].path, m["0.w"].native is net[0].w) for _ in range(3)] == [("0.w", True)] * 3
