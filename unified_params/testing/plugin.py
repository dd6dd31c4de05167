"""The pytest plugin: one test, run on every backend.

Installed with the package (entry point ``pytest11``), so any project's tests
get, with no configuration:

- ``backend``: a fixture parametrised over the backends requested, by the
  name models report (``"torch"``, ``"keras"``, ...; the test id is the target,
  ``keras-jax`` for Keras on JAX). Requested by ``--up-backends torch,keras``,
  else ``UP_TEST_BACKENDS``, else the ini option ``up_backends``, else every
  installed backend. A requested backend that cannot be imported **fails**
  its tests; it is never skipped.
- ``build``: builds an `unified_params.spec` model on the current backend:
  ``build(up.spec.Sequential(up.spec.Linear(4, 2)))``.
- ``backends``: every requested backend at once (cross-backend checks).
- ``@pytest.mark.skip_backend("paddle", reason="...")``: skip a case on some
  backends (names or targets), with the reason shown in the report.

Example test file:

    import numpy as np
    import unified_params as up
    from unified_params.testing import assert_same_params

    def test_initialise_is_the_same_everywhere(build):
        net = up.spec.Sequential(up.spec.Linear(4, 2))
        model = build(net)
        up.initialize(model, up.init.Normal(), seed=0)
        reference = net.build("torch")
        up.initialize(reference, up.init.Normal(), seed=0)
        assert_same_params(model, reference)

Frameworks are imported in the registry's safe order (paddle before
tensorflow), and each Keras engine a target names is chosen before Keras is
imported; one process runs one Keras engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from .._core.errors import UnsupportedError
from ..backends import registry

ENVIRONMENT = "UP_TEST_BACKENDS"
MARKER = "skip_backend"


@dataclass
class Selection:
    """The backends a run exercises, and why any cannot run."""

    #: Targets requested, in order (``keras-jax`` names Keras on JAX).
    requested: tuple[str, ...]
    #: Whether they were asked for (an option, the environment or the ini
    #: file), rather than found installed.
    explicit: bool
    #: Target -> why it cannot run in this process.
    missing: dict[str, str] = field(default_factory=dict)
    #: Targets that are no registered backend.
    unknown: list[str] = field(default_factory=list)

    @property
    def frameworks(self) -> dict[str, str]:
        """Target -> the name its models report (``keras-jax`` -> ``keras``)."""
        return {t: registry.split_target(t)[0] for t in self.requested if t not in self.unknown}

    def failure(self, target: str) -> str | None:
        """Why a requested target cannot run, or None."""
        if target in self.unknown:
            return (
                f"{ENVIRONMENT} (or --up-backends) names an unknown backend {target!r}; expected some "
                f"of {registry.targets()}"
            )
        if target in self.missing:
            return f"backend {target!r} was requested but cannot be imported: {self.missing[target]}"
        return None


_selection: Selection | None = None


def selection() -> Selection:
    """The run's backends (decided when pytest starts, before any test imports a framework)."""
    if _selection is None:
        return choose(None, None)
    return _selection


def choose(option: str | None, ini: str | None) -> Selection:
    """Decide the backends and prepare the process for them (Keras engines,
    import order); records why a requested one cannot run.

    Examples:
        >>> choose("torch", None).requested
        ('torch',)
    """
    text = option or os.environ.get(ENVIRONMENT) or ini
    if text:
        requested = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
        explicit = True
    else:
        requested = tuple(b for b in registry.names() if registry.installed(b))
        explicit = False
    found = Selection(requested, explicit, unknown=[t for t in requested if t not in registry.targets()])
    frameworks = found.frameworks
    for target in frameworks:
        try:
            registry.use_target(target)  # KERAS_BACKEND=jax for keras-jax, before keras is imported
        except (UnsupportedError, ValueError) as err:
            found.missing[target] = str(err)
    from ..backends.importing import import_framework

    for name in registry.import_order():  # paddle before tensorflow: the reverse order segfaults
        for target in [t for t, f in frameworks.items() if f == name and t not in found.missing]:
            try:
                import_framework(name)
                if registry.engine(name) != registry.split_target(target)[1]:
                    found.missing[target] = f"{name} runs on {registry.engine(name)} in this process"
            except (ImportError, UnsupportedError) as err:
                found.missing[target] = str(err)
    return found


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("unified-params")
    group.addoption(
        "--up-backends",
        default=None,
        help=f"comma-separated backends for the `backend` fixture, of {','.join(registry.targets())} "
        f"(default: ${ENVIRONMENT}, the ini option up_backends, else every installed one)",
    )
    parser.addini("up_backends", "backends for the `backend` fixture (comma-separated)", default="")


@pytest.hookimpl(trylast=True)  # after a conftest's own pytest_configure, which may set the option
def pytest_configure(config: pytest.Config) -> None:
    global _selection
    config.addinivalue_line(
        "markers", f"{MARKER}(*backends, reason): skip the test on these backends (names or targets)"
    )
    _selection = choose(config.getoption("--up-backends"), config.getini("up_backends") or None)


def pytest_report_header(config: pytest.Config) -> str:
    chosen = selection()
    how = "requested" if chosen.explicit else "installed"
    return (
        f"unified-params backends ({how}): {', '.join(chosen.requested) or 'none'}; "
        f"missing: {sorted(chosen.missing) or 'none'}"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        targets = list(selection().requested)
        metafunc.parametrize("backend", targets, ids=targets, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Each requested backend in turn, by the name models report (``keras`` for
    ``keras-jax``); a requested one that cannot be imported fails, never skips."""
    target = request.param
    failure = selection().failure(target)
    if failure:
        pytest.fail(failure)
    name = selection().frameworks[target]
    for mark in request.node.iter_markers(MARKER):
        if target in mark.args or name in mark.args:
            pytest.skip(f"not on {target}: {mark.kwargs.get('reason', 'no reason given')}")
    return name


@pytest.fixture
def build(backend: str) -> Callable[..., Any]:
    """``build(spec, input_shape=None)``: the spec's model, built on the current backend."""

    def make(spec: Any, input_shape: tuple[int | None, ...] | None = None) -> Any:
        return spec.build(backend, input_shape)

    return make


@pytest.fixture
def backends() -> tuple[str, ...]:
    """Every requested backend at once (by the names models report)."""
    chosen = selection()
    failures = [f for t in chosen.requested if (f := chosen.failure(t))]
    if failures:
        pytest.fail("; ".join(failures))
    return tuple(dict.fromkeys(chosen.frameworks.values()))
