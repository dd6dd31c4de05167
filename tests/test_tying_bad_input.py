"""Tying and gradient mistakes: clear errors, and the model left exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs
from tests.conftest import assert_unchanged, snapshot
from unified_params import spec as S


def _model(backend):
    net = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 2), S.Embedding(3, 8))
    return net.build(backend)


def _structure(model):
    m = up.wrap(model)
    return [id(c.native) for c in m.children()], up.ties(model)


@pytest.mark.parametrize(
    ("src", "dst", "error", "words"),
    [
        ("0.weight", "2.weight", up.TieError, ["'0.weight'", "'2.weight'", "(8, 4)", "(8, 8)"]),
        ("2", "4", up.TieError, ["'2'", "'4'", "weight (8, 8)", "weight (2, 8)"]),
        ("2", "5", up.TieError, ["'2'", "'5'", "differ"]),
        ("2.weight", "2.weight", up.TieError, ["itself"]),
        ("2", "2", up.TieError, ["itself"]),
        ("2.weight", "4", up.TieError, ["parameter", "layer"]),
        ("2", "", up.TieError, ["contains"]),
        ("2.wieght", "4.weight", up.PathError, ["'2.weight'"]),
        ("2.weight", "9.weight", up.PathError, ["9"]),
    ],
)
def test_bad_ties_change_nothing(backend, src, dst, error, words):
    model = _model(backend)
    before, structure = snapshot(model), _structure(model)
    with pytest.raises(error) as info:
        up.tie(model, src, dst)
    for word in words:
        assert word in str(info.value)
    assert_unchanged(before, model)
    assert _structure(model) == structure


def test_tie_error_is_a_value_error(backend):
    with pytest.raises(ValueError):
        up.tie(_model(backend), "0.weight", "2.weight")


def test_untie_of_an_untied_path(backend):
    model = _model(backend)
    before, structure = snapshot(model), _structure(model)
    for path in ("2.weight", "2", "0.bias"):
        with pytest.raises(up.TieError, match="not tied"):
            up.untie(model, path)
    with pytest.raises(up.PathError):
        up.untie(model, "7.weight")
    assert_unchanged(before, model)
    assert _structure(model) == structure


def test_tie_of_different_dtypes():
    from tests.conftest import needs

    needs("torch")
    import torch

    model = _model("torch")
    model[4].weight = torch.nn.Parameter(torch.zeros(2, 8, dtype=torch.float64))
    other = torch.nn.Sequential(torch.nn.Linear(8, 2))
    net = torch.nn.Sequential(model[4], other[0])
    with pytest.raises(up.TieError, match="float64"):
        up.tie(net, "0.weight", "1.weight")


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        (np.ones((2, 5), "float32"), ["(batch, ..., 4)", "(2, 5)"]),
        (np.ones((2,), "float32"), ["(batch, ..., 4)"]),
        ("four", ["not numeric"]),
    ],
)
def test_gradients_with_a_wrong_input(backend, inputs, words):
    model = specs.mlp().build(backend)
    before = snapshot(model)
    grads_before = {k: p.grad for k, p in up.wrap(model).params().items()}
    with pytest.raises(up.UnifiedParamsError) as info:
        up.gradients(model, inputs)
    for word in words:
        assert word in str(info.value)
    assert_unchanged(before, model)
    assert all(p.grad is None for p in up.wrap(model).params().values()) == all(
        g is None for g in grads_before.values()
    )


def test_gradients_input_errors_name_the_expected_shape_for_images_and_sequences(backend):
    with pytest.raises(up.ShapeError, match=r"\(batch, 3, H, W\) channels first"):
        up.gradients(specs.cnn().build(backend), np.ones((2, 6, 7, 3), "float32"))
    with pytest.raises(up.ShapeError, match=r"\(batch, time, 3\)"):
        up.gradients(specs.lstm().build(backend), np.ones((2, 3), "float32"))
    with pytest.raises(up.ShapeError, match="integer indices"):
        up.gradients(specs.embedding().build(backend), np.ones((2, 3), "float32"))


def test_gradients_with_a_bad_loss(backend):
    model = specs.mlp().build(backend)
    x = np.ones((2, 4), "float32")
    with pytest.raises(up.UnsupportedError, match="needs targets"):
        up.gradients(model, x, "mse")
    with pytest.raises(up.UnsupportedError, match="Unknown loss 'l3'"):
        up.gradients(model, x, "l3")
    with pytest.raises(ValueError, match="layout"):
        up.gradients(model, x, layout="nhwc")
    assert all(p.grad is None for p in up.wrap(model).params().values())
