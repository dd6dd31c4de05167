"""Run the bad-input catalogue on every backend: error class, a three-part
message, and every parameter unchanged."""

from __future__ import annotations

import pytest

import unified_params as up
from tests.conftest import assert_unchanged, snapshot
from tests.reliability.catalogue import CASES


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 40
    assert {c.area for c in CASES} == {"access", "set", "init", "tie", "gradients", "save", "load", "port"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.area}:{c.mistake}")
def test_mistake(backend, case, tmp_path):
    model = case.model(backend)
    up.initialize(model, up.init.Normal(0, 0.5), seed=0)
    before = snapshot(model)
    with pytest.raises(case.error) as info:
        case.call(model, tmp_path)
    message = str(info.value)
    assert isinstance(info.value, up.UnifiedParamsError) or case.error is ValueError
    assert "Expected" in message, message  # what was expected
    assert "Received:" in message, message  # what was received
    for word in case.words:
        assert word in message, (word, message)
    assert_unchanged(before, model)
