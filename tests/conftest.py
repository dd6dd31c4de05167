"""Shared test set-up: frameworks imported in a safe order, the ``backend`` fixture.

``UP_TEST_BACKENDS`` (comma separated, default all three) says which backends
the run must exercise. A requested backend that cannot be imported fails the
run: it is never skipped.
"""

from __future__ import annotations

import importlib
import os

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Property-based tests: 200 examples per property in CI, many more with `make fuzz`.
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, suppress_health_check=_SLOW
)
settings.register_profile("fuzz", max_examples=2000, deadline=None, suppress_health_check=_SLOW)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ALL = ("torch", "keras", "paddle")
REQUESTED = tuple(
    b.strip() for b in os.environ.get("UP_TEST_BACKENDS", ",".join(ALL)).split(",") if b.strip()
)
MISSING: dict[str, str] = {}

# paddle must be imported before tensorflow (the reverse order segfaults).
for _name in ("paddle", "torch", "keras"):
    if _name in REQUESTED:
        try:
            importlib.import_module(_name)
        except ImportError as err:  # reported as a failure by the fixture and a test
            MISSING[_name] = str(err)


def pytest_report_header(config):
    return f"unified-params backends requested: {', '.join(REQUESTED)}; missing: {sorted(MISSING) or 'none'}"


@pytest.fixture(params=REQUESTED)
def backend(request) -> str:
    """Each requested backend in turn; a missing one fails, never skips."""
    name = request.param
    if name not in ALL:
        pytest.fail(f"UP_TEST_BACKENDS names an unknown backend {name!r}; expected some of {ALL}")
    if name in MISSING:
        pytest.fail(f"backend {name!r} was requested but cannot be imported: {MISSING[name]}")
    return name


@pytest.fixture
def backends() -> tuple[str, ...]:
    """All requested backends at once, for cross-backend equality checks."""
    if MISSING:
        pytest.fail(f"requested backends cannot be imported: {MISSING}")
    return REQUESTED


def needs(name: str) -> None:
    """Inside a test for one framework: skip when it was not requested, fail when missing."""
    if name not in REQUESTED:
        pytest.skip(f"backend {name!r} not requested in UP_TEST_BACKENDS")
    if name in MISSING:
        pytest.fail(f"backend {name!r} was requested but cannot be imported: {MISSING[name]}")


def snapshot(model) -> dict:
    """Every parameter's native value, to prove a failed call changed nothing."""
    import unified_params as up

    return {path: p.numpy() for path, p in up.wrap(model).params().items()}


def assert_unchanged(before: dict, model) -> None:
    import numpy as np

    after = snapshot(model)
    assert list(after) == list(before)
    for path, value in before.items():
        np.testing.assert_array_equal(after[path], value, err_msg=path)
