"""Plots of parameters and gradients; progress bars only when asked or on a terminal."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs
from unified_params import spec as S


def test_histograms_of_values_and_gradients(backend, tmp_path):
    model = specs.mlp().build(backend)
    up.initialize(model, up.init.Normal(0, 0.1), seed=0)
    fig = up.plot.histograms(model)
    assert fig.get_suptitle() == f"Parameter values of Sequential ({backend})"
    assert [ax.get_title().splitlines()[0] for ax in fig.axes] == [
        "0.weight (8, 4)",
        "0.bias (8,)",
        "2.weight (1, 8)",
        "2.bias (1,)",
    ]
    weight = up.wrap(model)["0.weight"].numpy()
    assert fig.axes[0].get_title().splitlines()[1] == f"mean {weight.mean():.3g}, std {weight.std():.3g}"
    assert all(ax.get_xlabel() == "value" for ax in fig.axes)
    assert [ax.get_ylabel() for ax in fig.axes] == ["count", "count", "count", "one element"]
    heights = sum(patch.get_height() for patch in fig.axes[0].patches)
    assert heights == 32  # every element of the (8, 4) weight is counted once
    # A one-element parameter shows its value, not a lone bar.
    bias = float(up.wrap(model)["2.bias"].numpy()[0])
    assert not fig.axes[3].patches and fig.axes[3].texts[0].get_text() == f"{bias:.4g}"
    with pytest.raises(up.UnsupportedError, match="no gradient yet"):
        up.plot.histograms(model, grads=True)
    grads = up.gradients(model, np.ones((2, 4), "float32"))
    from unified_params.plot import _series

    for path, shape, values in _series(up.wrap(model), None, grads=True):  # canonical, as shown
        assert shape == values.shape == grads[path].shape and np.array_equal(values, grads[path]), path
    fig = up.plot.histograms(model, where="*.bias", grads=True)
    assert len(fig.axes) == 2 and fig.get_suptitle() == f"Gradients of Sequential ({backend})"
    assert fig.axes[0].get_title().startswith("grad 0.bias (8,)") and fig.axes[0].get_xlabel() == "gradient"
    assert fig.axes[0].title.get_color() == up.plot.GRAD_COLOR != up.plot.VALUE_COLOR
    fig.savefig(tmp_path / "grads.png")
    assert (tmp_path / "grads.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_puts_backends_side_by_side(backends):
    models = {}
    for backend in backends:
        models[backend] = specs.mlp().build(backend)
        up.initialize(models[backend], up.init.Normal(), seed=1)
    fig = up.plot.compare(models)
    assert len(fig.axes) == 4 * len(backends)
    assert fig.get_suptitle() == f"Parameter values of {', '.join(backends)}, one row each"
    assert fig.axes[0].get_title().startswith(f"{backends[0]}: 0.weight (8, 4)")
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


def test_twenty_panels_wrap_into_rows_of_five(backend):
    model = S.Sequential(*[S.Linear(3, 3) for _ in range(10)]).build(backend)
    up.initialize(model, up.init.Normal(), seed=0)
    fig = up.plot.histograms(model)
    grid = {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes}
    assert len(fig.axes) == 20 and grid == {(4, 5)}
    width, height = fig.get_size_inches()
    assert width / 5 > 2.5 and height / 4 > 2  # each panel keeps a readable size
