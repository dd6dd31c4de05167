"""Mistakes give clear errors of the one hierarchy, and change nothing."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs, textbook
from tests.conftest import assert_unchanged, needs, snapshot
from tests.native import for_backend


def test_unknown_path_lists_nearest(backend):
    model = specs.mlp().build(backend)
    m = up.wrap(model)
    with pytest.raises(up.PathError) as info:
        m["2.wieght"]
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, up.UnifiedParamsError)
    text = str(err)
    assert "'2.wieght'" in text and "nearest: '2.weight'" in text and "Received: path='2.wieght'" in text
    with pytest.raises(KeyError, match="(Linear|Dense) at '0' has no child or parameter 'block'"):
        m.param("0.block.weight")
    assert "2.wieght" not in m and "2.weight" in m


def test_param_of_a_module_path(backend):
    m = up.wrap(specs.mlp().build(backend))
    with pytest.raises(up.PathError, match="names a module"):
        m.param("0")


def test_position_out_of_range_names_valid_range(backend):
    m = up.wrap(specs.mlp().build(backend))
    with pytest.raises(IndexError, match=r"-3\.\.2") as info:
        m[3]
    assert isinstance(info.value, up.PositionError)
    with pytest.raises(up.PositionError, match="has no children"):
        m[0][0]
    assert m[-1].path == "2"


def test_set_wrong_shape_names_path_and_shapes(backend):
    model = specs.mlp().build(backend)
    before = snapshot(model)
    p = up.wrap(model)["0.weight"]
    with pytest.raises(ValueError) as info:
        p.set(np.zeros((4, 4)), layout="canonical")
    assert isinstance(info.value, up.ShapeError)
    assert "'0.weight'" in str(info.value) and "(4, 4)" in str(info.value) and "(8, 4)" in str(info.value)
    with pytest.raises(up.ShapeError):
        p[0] = np.ones(5)
    assert_unchanged(before, model)


def test_non_numeric_value_is_refused(backend):
    model = specs.mlp().build(backend)
    before = snapshot(model)
    p = up.wrap(model)["0.bias"]
    for bad in ("eight", None, [object()] * 8, {"a": 1}):
        with pytest.raises(TypeError) as info:
            p.set(bad)
        assert isinstance(info.value, up.DTypeError) and "not numeric" in str(info.value)
    with pytest.raises(up.DTypeError):
        p[0] = "x"
    assert_unchanged(before, model)


def test_float_into_integer_buffer_is_refused():
    needs("torch")
    model = specs.cnn().build("torch")
    before = snapshot(model)
    counter = up.wrap(model)["1.num_batches_tracked"]
    assert counter.kind == "buffer" and counter.dtype == "int64"
    with pytest.raises(up.DTypeError, match="int64"):
        counter.set(np.array(1.5))
    counter.set(np.array(3))
    assert int(counter.numpy()) == 3
    before["1.num_batches_tracked"] = np.array(3)
    assert_unchanged(before, model)


def test_index_outside_parameter(backend):
    model = specs.mlp().build(backend)
    before = snapshot(model)
    p = up.wrap(model)["0.weight"]
    with pytest.raises(IndexError) as info:
        p[8, 0] = 1
    assert isinstance(info.value, up.UnifiedParamsError) and "(8, 4)" in str(info.value)
    assert_unchanged(before, model)


def test_unsupported_object_lists_supported():
    for thing in (object(), np.zeros(3), "model"):
        with pytest.raises(TypeError) as info:
            up.wrap(thing)
        assert isinstance(info.value, up.UnsupportedError)
        text = str(info.value)
        assert "torch.nn.Module" in text and "keras.layers.Layer" in text and "paddle.nn.Layer" in text


def test_bad_selector_and_layout(backend):
    m = up.wrap(specs.mlp().build(backend))
    with pytest.raises(up.UnsupportedError, match="selector"):
        m.params(where=42)
    with pytest.raises(ValueError, match="layout"):
        m["0.weight"].numpy(layout="nchw")
    with pytest.raises(up.UnsupportedError):
        m[1.5]


def test_unbuilt_keras_model_says_how_to_build():
    needs("keras")
    net = for_backend("keras").unbuilt_mlp()
    m = up.wrap(net)
    assert len(m) == 3 and m[1].type_name == "Dense"  # structure is readable unbuilt
    with pytest.raises(up.NotBuiltError) as info:
        m.params()
    text = str(info.value)
    assert "At path '1'" in text and "model(x)" in text and "model.build(input_shape)" in text
    with pytest.raises(ValueError):
        m["1.weight"]
    net(textbook.X)
    assert list(m.params()) == ["1.weight", "1.bias", "2.weight", "2.bias"]
