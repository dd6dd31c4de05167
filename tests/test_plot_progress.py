"""Plots of parameters and gradients; progress bars only when asked or on a terminal."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs


def test_histograms_of_values_and_gradients(backend, tmp_path):
    model = specs.mlp().build(backend)
    up.initialize(model, up.init.Normal(0, 0.1), seed=0)
    fig = up.plot.histograms(model)
    assert [ax.get_title() for ax in fig.axes] == [
        "0.weight (8, 4)",
        "0.bias (8,)",
        "2.weight (1, 8)",
        "2.bias (1,)",
    ]
    heights = sum(patch.get_height() for patch in fig.axes[0].patches)
    assert heights == 32  # every element of the (8, 4) weight is counted once
    with pytest.raises(up.UnsupportedError, match="no gradient yet"):
        up.plot.histograms(model, grads=True)
    grads = up.gradients(model, np.ones((2, 4), "float32"))
    from unified_params.plot import _series

    for path, shape, values in _series(up.wrap(model), None, grads=True):  # canonical, as shown
        assert shape == values.shape == grads[path].shape and np.array_equal(values, grads[path]), path
    fig = up.plot.histograms(model, where="*.bias", grads=True)
    assert len(fig.axes) == 2
    fig.savefig(tmp_path / "grads.png")
    assert (tmp_path / "grads.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_puts_backends_side_by_side(backends):
    models = {}
    for backend in backends:
        models[backend] = specs.mlp().build(backend)
        up.initialize(models[backend], up.init.Normal(), seed=1)
    fig = up.plot.compare(models)
    assert len(fig.axes) == 4 * len(backends)
    first = [p.get_height() for p in fig.axes[0].patches]
    for row in range(1, len(backends)):  # identical seeded values: identical histograms
        assert [p.get_height() for p in fig.axes[4 * row].patches] == first


def test_progress_bar_only_when_asked(backend, tmp_path, capsys):
    model = specs.mlp().build(backend)
    up.save(model, tmp_path / "quiet.safetensors")
    assert capsys.readouterr().err == ""  # small work, not a terminal: silent
    up.save(model, tmp_path / "loud.safetensors", progress=True)
    up.load(model, tmp_path / "loud.safetensors", progress=True)
    up.port(model, specs.mlp().build(backend), progress=True)
    err = capsys.readouterr().err
    assert "saving loud.safetensors" in err and "loading loud.safetensors" in err and "porting to" in err
