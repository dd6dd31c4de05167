"""Shared test set-up: the project's suite runs on the package's own pytest
plugin (`unified_params.testing.plugin`: the ``backend``, ``build`` and
``backends`` fixtures, ``--up-backends``), plus the ``native`` fixture.

``UP_TEST_BACKENDS`` (comma separated registry targets) says which backends
the run must exercise; here the default is every registered backend on its
default engine, requested (the plugin's own default, for other projects, is
every installed one), so a backend that cannot be imported fails the run: it
is never skipped. ``UP_TEST_BACKENDS=keras-jax`` runs Keras on JAX.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.native import Native, for_backend
from unified_params.backends import registry
from unified_params.testing import plugin

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The fixture modules import their framework, and a plugin registers a fake backend:
# they load through the tests that use them, never by doctest collection.
collect_ignore_glob = ["native/*.py", "plugins/*.py", "distributed/*.py"]

# Property-based tests: 200 examples per property in CI, many more with `make fuzz`.
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, suppress_health_check=_SLOW
)
settings.register_profile("fuzz", max_examples=2000, deadline=None, suppress_health_check=_SLOW)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Every target the registry knows (``keras-jax`` included).
ALL = registry.targets()


def pytest_configure(config):
    """The project's suite requests every registered backend unless told otherwise."""
    if not config.getoption("--up-backends") and not os.environ.get(plugin.ENVIRONMENT):
        config.option.up_backends = ",".join(registry.names())


def __getattr__(name: str):
    """The run's backends, known once pytest has started (the plugin decides them)."""
    chosen = plugin.selection()
    if name == "REQUESTED":  # targets, in order
        return chosen.requested
    if name == "MISSING":  # target -> why it cannot run
        return chosen.missing
    if name == "FRAMEWORKS":  # target -> the name its models report
        return chosen.frameworks
    if name == "NAMES":  # the requested backends by the name models report, each once
        return tuple(dict.fromkeys(chosen.frameworks.values()))
    if name == "EVERY_BACKEND":  # the run covers every registered backend (default engines)
        return set(chosen.requested) == set(registry.names())
    raise AttributeError(name)


@pytest.fixture
def native(backend) -> Native:
    """The fixture module of the backend under test (`tests.native`)."""
    return for_backend(backend)


def needs_target(target: str) -> None:
    """Inside a test for one framework on one engine (``keras`` is Keras on
    TensorFlow): skip when that target was not requested, fail when missing."""
    chosen = plugin.selection()
    if target not in chosen.frameworks:
        pytest.skip(f"backend {target!r} not requested in UP_TEST_BACKENDS")
    failure = chosen.failure(target)
    if failure:
        pytest.fail(failure)


def needs(name: str) -> None:
    """Inside a test for one framework: skip when it was not requested, fail when missing."""
    chosen = plugin.selection()
    targets = [t for t, f in chosen.frameworks.items() if f == name]
    if not targets:
        pytest.skip(f"backend {name!r} not requested in UP_TEST_BACKENDS")
    for target in targets:
        failure = chosen.failure(target)
        if failure:
            pytest.fail(failure)


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
