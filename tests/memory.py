"""Measuring the Python heap a call holds at its peak, safely.

Python 3.11's ``tracemalloc.stop()`` races with a thread that allocates
meanwhile (cpython gh-128679, fixed upstream in 3.12 and 3.13 only): a
framework's own threads can crash the process it runs in (both CI crashes
whose case was known were in a case that stopped tracing). So tracing starts
once in a process and is never stopped, and a test of the main run, whose
process must not trace everything after it, measures in a process of its
own. A measurement is a module-level function of a test module, registered
with `@measured`; the first test that asks for a result (`result`) runs every
registered measurement, once, in one process for the whole run (each process
imports the frameworks again, some seconds).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

_ROOT = Path(__file__).resolve().parents[1]


class Heap(NamedTuple):
    """Bytes a call allocated on the Python heap: at its peak, and still held
    after it (what the call left in place, such as arrays a framework keeps as
    its memory); and what the call returned. Blocks allocated before the call
    and freed during it count for neither."""

    peak: int
    kept: int
    value: Any


def traced(call: Callable[[], Any]) -> Heap:
    """What ``call`` allocated, at its peak and after it.

    Starts tracing the first time and never stops it; between calls it forgets
    the traces instead (``clear_traces`` frees nothing a thread may be using),
    so call it only in a process of its own (the run's tracing process, see
    `result`; a distributed worker): a process that traces runs every
    allocation slower.
    """
    if tracemalloc.is_tracing():
        tracemalloc.clear_traces()
    else:
        tracemalloc.start()
    value = call()
    kept, peak = tracemalloc.get_traced_memory()
    return Heap(peak, kept, value)


def measured(function: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """Register ``function(backends)``, a measurement with a JSON result, to run
    in the run's tracing process (`result`)."""
    _MEASUREMENTS[_qualified(function)] = function
    return function


def result(function: Callable[[list[str]], Any], backends: Sequence[str]) -> Any:
    """What the registered ``function`` answered for these backends (names as
    models report them), measured in the run's tracing process."""
    return _results(tuple(backends))[_qualified(function)]


#: Every registered measurement, by "module:function".
_MEASUREMENTS: dict[str, Callable[[list[str]], Any]] = {}


@functools.cache
def _results(backends: tuple[str, ...]) -> dict[str, Any]:
    """Runs every registered measurement in one fresh Python process (the same
    environment: a Keras engine chosen for this run holds there too)."""
    names = sorted(_MEASUREMENTS)
    run = subprocess.run(
        [sys.executable, "-m", "tests.memory", json.dumps(list(backends)), *names],
        capture_output=True, text=True, timeout=900, cwd=_ROOT, env=dict(os.environ),
    )  # fmt: skip
    if run.returncode != 0 or not run.stdout.strip():
        raise AssertionError(f"the tracing process failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def _qualified(function: Callable[..., Any]) -> str:
    return f"{function.__module__}:{function.__qualname__}"


def _main(backends: str, *names: str) -> None:
    from unified_params.backends.importing import import_frameworks

    chosen = json.loads(backends)
    import_frameworks(chosen)  # paddle before tensorflow
    results = {}
    for name in names:
        module, function = name.split(":")
        results[name] = getattr(importlib.import_module(module), function)(chosen)
    print(json.dumps(results))


if __name__ == "__main__":
    _main(*sys.argv[1:])
