"""In a notebook (``_repr_html_``), views and reports show the same on every
backend: canonical shapes, shared layers marked, seeded values and their histogram."""

from __future__ import annotations

import html
import re

import numpy as np

import unified_params as up
from unified_params import spec as S

SHARED = S.Linear(8, 8)
NET = S.Sequential(S.Linear(4, 8), S.ReLU(), SHARED, S.ReLU(), SHARED, S.Linear(8, 1))


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def _model(backend):
    model = NET.build(backend)
    up.initialize(model, up.init.Normal(0, 0.5), seed=0)
    return up.wrap(model)


def test_a_module_shows_canonical_shapes_and_its_shared_layer(backend):
    text = " ".join(_text(_model(backend)._repr_html_()).split())
    assert "weight (8, 4) bias (8,)" in text and "weight (1, 8) bias (1,)" in text
    assert "shared with 2 (72)" in text
    assert "Total params: 121" in text


def test_a_parameter_shows_the_same_values_and_histogram_everywhere(backends):
    shown = set()
    for backend in backends:
        markup = _model(backend)["0.weight"]._repr_html_()
        text = _text(markup)
        assert "'0.weight'" in text and "shape (8, 4)" in text and "float32" in text and backend in text
        shown.add(re.sub(r"\b" + backend + r"\b", "<backend>", text))
    assert len(shown) == 1, shown  # values, range and histogram agree byte for byte


def test_reports_list_what_went_wrong(backend):
    m = _model(backend)
    state = up.state_dict(m)
    state["5.bias"] = np.zeros(3, "float32")
    report = up.load_state_dict(m, state, strict=False)
    text = _text(report._repr_html_())
    assert "not ok" in text and "mismatched" in text and "5.bias" in text
    other = NET.build(backend)
    port = up.port(m, other)
    text = _text(port._repr_html_())
    assert "PortReport" in text and "0 → 0 → linear" in text and "LoadReport · ok" in text
