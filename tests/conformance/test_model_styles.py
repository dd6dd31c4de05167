"""Subclassed and functional models, other layer kinds, and the summary."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs
from tests.conftest import needs
from tests.native import for_backend


def subclassed(backend: str):
    """A model with attribute children, a list of blocks and a head, natively."""
    return for_backend(backend).subclassed()


def test_subclassed_models_have_the_same_paths(backend, native):
    m = up.wrap(subclassed(backend))
    children = ["encoder", "blocks", "head"]
    params = [
        "encoder.weight", "encoder.bias",
        "blocks.0.weight", "blocks.0.bias",
        "blocks.1.weight", "blocks.1.bias",
        "head.weight", "head.bias",
    ]  # fmt: skip
    if native.sorted_listing:  # NNX orders attributes by name: the same paths, blocks first
        children = sorted(children)
        params = params[2:6] + params[:2] + params[6:]
    assert [c.path for c in m.children()] == children
    assert m["blocks"].kind == "container" and len(m["blocks"]) == 2
    assert list(m.params()) == params
    assert m["blocks.1.weight"].shape == (6, 6)
    assert m[children.index("blocks")][0].path == "blocks.0"
    assert m.count() == 30 + 42 + 42 + 14


def test_keras_functional_model():
    needs("keras")
    import keras

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    m = up.wrap(model)
    assert [c.type_name for c in m.children()] == ["InputLayer", "Dense", "Dense"]
    assert m.kind == "container"
    assert list(m.params()) == ["1.weight", "1.bias", "2.weight", "2.bias"]
    assert m.count() == model.count_params() == 49


@pytest.mark.parametrize("dims", [1, 3])
def test_conv1d_and_conv3d_canonical_layout(backend, dims, native):
    m = up.wrap(native.conv(dims))
    assert m.kind == f"conv{dims}d"
    weight = m["weight"]
    assert weight.shape == (5, 2) + (3,) * dims
    value = np.random.default_rng(dims).standard_normal(weight.shape).astype("float32")
    weight.set(value, layout="canonical")
    np.testing.assert_array_equal(weight.numpy("canonical"), value)
    weight[4, 1] = 7  # one output, one input channel: a whole kernel
    value[4, 1] = 7
    np.testing.assert_array_equal(weight.numpy("canonical"), value)


def test_other_layers_keep_native_names(backend, native):
    layer, native_name = native.prelu()
    m = up.wrap(layer)
    assert m.kind == "other"
    (p,) = m.params().values()
    assert p.name == p.native_name == native_name and p.kind == "param"
    assert p.shape == p.shape


def test_summary_marks_shared_rows_and_dedups_totals(backends):
    texts = {}
    for backend in backends:
        text = up.summary(specs.shared().build(backend))
        rows = text.splitlines()
        shared_row = next(r for r in rows if r.startswith("4 "))
        assert "shared with 2" in shared_row and "(72)" in shared_row
        assert "Total params: 121  (trainable: 121, non-trainable: 0)" in text
        assert "Shared: 2 parameters reached at more than one path" in text
        texts[backend] = [r for r in rows if r.startswith("Total") or r.startswith("Buffers")]
    assert len({tuple(t) for t in texts.values()}) == 1


def test_summary_counts_buffers_apart(backend, native):
    text = up.summary(specs.cnn().build(backend))
    assert "Total params: 170" in text
    buffers = native.cnn_buffers  # torch also tracks num_batches_tracked
    assert f"Buffers: {buffers} tensors, {8 + (buffers - 2)} elements" in text
