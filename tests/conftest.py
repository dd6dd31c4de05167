"""Shared test set-up: frameworks imported in a safe order, the ``backend`` and
``native`` fixtures.

``UP_TEST_BACKENDS`` (comma separated registry targets; default every backend
on its default engine) says which backends the run must exercise:
``UP_TEST_BACKENDS=keras-jax`` runs Keras on JAX. A requested backend that
cannot be imported fails the run: it is never skipped.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.native import Native, for_backend
from unified_params._core.errors import UnsupportedError
from unified_params.backends import registry
from unified_params.backends.importing import import_framework

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The fixture modules import their framework, and a plugin registers a fake backend:
# they load through the tests that use them, never by doctest collection.
collect_ignore_glob = ["native/*.py", "plugins/*.py"]

# Property-based tests: 200 examples per property in CI, many more with `make fuzz`.
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, suppress_health_check=_SLOW
)
settings.register_profile("fuzz", max_examples=2000, deadline=None, suppress_health_check=_SLOW)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Backends and engines come from the registry: a registered backend is parametrised
# with no edit here. The default is each backend on its default engine (one process
# runs one Keras engine: `keras-jax` and `keras-torch` run in processes of their own).
ALL = registry.targets()
REQUESTED = tuple(
    b.strip() for b in os.environ.get("UP_TEST_BACKENDS", ",".join(registry.names())).split(",") if b.strip()
)
MISSING: dict[str, str] = {}
UNKNOWN = [b for b in REQUESTED if b not in ALL]
#: The frameworks the requested targets run on (``keras-jax`` -> ``keras``).
FRAMEWORKS = {t: registry.split_target(t)[0] for t in REQUESTED if t in ALL}
#: The requested backends by the name models report, each once.
NAMES = tuple(dict.fromkeys(FRAMEWORKS.values()))
#: Whether the run covers every registered backend (on its default engine).
EVERY_BACKEND = set(REQUESTED) == set(registry.names())
for _target in FRAMEWORKS:
    try:
        registry.use_target(_target)  # KERAS_BACKEND=jax for keras-jax, before keras is imported
    except (UnsupportedError, ValueError) as err:
        MISSING[_target] = str(err)

# In the registry's import order: paddle before tensorflow (the reverse order segfaults).
for _name in registry.import_order():
    for _target in [t for t, f in FRAMEWORKS.items() if f == _name and t not in MISSING]:
        try:
            import_framework(_name)
            if registry.engine(_name) != registry.split_target(_target)[1]:
                MISSING[_target] = f"{_name} runs on {registry.engine(_name)} in this process"
        except (ImportError, UnsupportedError) as err:  # reported as a failure by the fixture and a test
            MISSING[_target] = str(err)


def pytest_report_header(config):
    return f"unified-params backends requested: {', '.join(REQUESTED)}; missing: {sorted(MISSING) or 'none'}"


@pytest.fixture(params=REQUESTED)
def backend(request) -> str:
    """Each requested backend in turn, by the name models report (``keras`` for
    ``keras-jax``); a missing one fails, never skips."""
    target = request.param
    if target in UNKNOWN:
        pytest.fail(f"UP_TEST_BACKENDS names an unknown backend {target!r}; expected some of {ALL}")
    if target in MISSING:
        pytest.fail(f"backend {target!r} was requested but cannot be imported: {MISSING[target]}")
    return FRAMEWORKS[target]


@pytest.fixture
def native(backend) -> Native:
    """The fixture module of the backend under test (`tests.native`)."""
    return for_backend(backend)


@pytest.fixture
def backends() -> tuple[str, ...]:
    """All requested backends at once, for cross-backend equality checks."""
    if MISSING or UNKNOWN:
        pytest.fail(f"requested backends cannot be imported: {MISSING or UNKNOWN}")
    return tuple(FRAMEWORKS.values())


def needs_target(target: str) -> None:
    """Inside a test for one framework on one engine (``keras`` is Keras on
    TensorFlow): skip when that target was not requested, fail when missing."""
    if target not in FRAMEWORKS:
        pytest.skip(f"backend {target!r} not requested in UP_TEST_BACKENDS")
    if target in MISSING:
        pytest.fail(f"backend {target!r} was requested but cannot be imported: {MISSING[target]}")


def needs(name: str) -> None:
    """Inside a test for one framework: skip when it was not requested, fail when missing."""
    targets = [t for t, f in FRAMEWORKS.items() if f == name]
    if not targets:
        pytest.skip(f"backend {name!r} not requested in UP_TEST_BACKENDS")
    missing = [t for t in targets if t in MISSING]
    if missing:
        pytest.fail(f"backend {missing[0]!r} was requested but cannot be imported: {MISSING[missing[0]]}")


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
