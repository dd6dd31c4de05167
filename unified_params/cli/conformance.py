"""``unified-params conformance``: run the conformance suite, print the matrix.

Rows are the features the suite covers (one test module each), columns the
backends; a cell counts passed, failed and skipped tests (a test skips only
when it needs a backend that was not asked for). Tests that compare all
backends at once fill the "across" column.

The suite is the project's ``tests/conformance`` with its fixtures
(``tests/conftest.py``, ``tests/native``): it ships with a source checkout,
not with the wheel. The command looks for it under the current directory and
beside the package (an editable install), or takes ``--suite``; without one
it says so and exits with code 2.

Each framework runs on one engine per process (Keras picks TensorFlow, JAX
or torch at import), so the targets are split into groups, each run by pytest
in a process of its own; this module is also the pytest plugin that counts
each process's outcomes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from .._core.errors import UnifiedParamsError
from ..backends import registry
from .render import table

FEATURES = {
    "test_chapter": "the chapter, cell by cell: one output everywhere",
    "test_canonical_default": "canonical by default: shapes, writes, forward",
    "test_textbook_native": "textbook models, written natively",
    "test_spec_models": "spec models: paths, shapes, values, outputs",
    "test_model_styles": "subclassed and functional models, summary",
    "test_init_textbook": "initialisation cells, seeded identity",
    "test_init_distributions": "initializer distributions and defaults",
    "test_tying": "tying, untying, summed gradients",
    "test_porting": "canonical state and ports",
    "test_checkpoints": "safetensors checkpoints",
    "test_layer_kinds": "layout rules per layer kind",
    "test_repeated_access": "kept walks, live views, sub-views",
    "test_leaf_reads": "a container's leaves read at once, as one by one",
    "test_notebook_views": "notebook views and reports",
    "test_unbuilt": "unbuilt models, variables without values",
}
OUTCOMES = ("passed", "failed", "skipped")
#: Where a suite process writes its counts (read by the parent).
_OUT = "UP_CONFORMANCE_COUNTS"


class SuiteNotFound(UnifiedParamsError):
    """No conformance suite to run (an installed wheel without a source checkout)."""


def find_suite(given: str | None = None) -> Path:
    """The conformance suite folder: ``given``, else ``tests/conformance`` under
    the current directory or beside the package's source.

    Raises:
        SuiteNotFound: None of them holds the suite.
    """
    here = Path(__file__).resolve().parents[2]
    candidates = (
        [Path(given)] if given else [Path.cwd() / "tests" / "conformance", here / "tests" / "conformance"]
    )
    for folder in candidates:
        if (folder / "test_tying.py").is_file() and (folder.parent / "conftest.py").is_file():
            return folder
    raise SuiteNotFound(
        f"No conformance suite at {', '.join(str(c) for c in candidates)}. The suite is the project's "
        "tests/conformance with its fixtures; it ships with a source checkout, not with the installed "
        "package. Expected a checkout: run the command from its root, or pass --suite "
        "path/to/tests/conformance."
    )


def groups(targets: list[str]) -> list[list[str]]:
    """Split targets so that no process runs one framework on two engines.

    Examples:
        >>> groups(["torch", "keras", "keras-jax", "paddle"])
        [['torch', 'keras', 'paddle'], ['keras-jax']]
    """
    out: list[list[str]] = []
    for target in targets:
        framework = registry.split_target(target)[0]
        home = next((g for g in out if all(registry.split_target(t)[0] != framework for t in g)), None)
        if home is None:
            out.append([target])
        else:
            home.append(target)
    return out


def run(targets: list[str], out: Any, write: str | None = None, suite: str | None = None) -> bool:
    """Run the suite on ``targets`` (one process per group); print (and optionally
    write) the matrix. True when no test failed."""
    folder = find_suite(suite)
    cells: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    ok = True
    for group in groups(targets):
        counts_file = (
            Path(os.environ.get("TMPDIR", "/tmp")) / f"up-conformance-{os.getpid()}-{len(cells)}.json"
        )
        env = {**os.environ, "UP_TEST_BACKENDS": ",".join(group), _OUT: str(counts_file)}
        argv = [sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider", "--no-header"]
        argv += ["-o", "addopts=", "-p", __name__, "--rootdir", str(folder.parents[1])]
        done = subprocess.run(argv, env=env, cwd=folder.parents[1], capture_output=True, text=True)
        try:
            found = json.loads(counts_file.read_text())
        except (OSError, ValueError):
            found = []
            print(done.stdout[-3000:] + done.stderr[-3000:], file=sys.stderr)
        finally:
            counts_file.unlink(missing_ok=True)
        ok = ok and done.returncode == 0
        for module, column, outcome in found:
            cells[(module, column)][outcome] += 1
    columns = [*targets, "across"]
    rows = []
    for module, feature in FEATURES.items():
        row = [feature]
        for column in columns:
            counts = cells.get((module, column), {})
            shown = [f"{counts[o]} {'FAILED' if o == 'failed' else o}" for o in OUTCOMES if counts.get(o)]
            row.append(", ".join(shown) or "-")
        rows.append(row)
    table("conformance: feature x backend", ["feature", *columns], rows, out)
    if write:
        Path(write).write_text(_markdown(columns, rows))
    return ok


def column_of(nodeid: str, targets: list[str]) -> str:
    """The backend column a test id belongs to: a target among its parameters, else "across".

    Examples:
        >>> column_of("t.py::test_x[keras-jax-cnn]", ["keras", "keras-jax"])
        'keras-jax'
        >>> column_of("t.py::test_y[mlp]", ["torch"])
        'across'
    """
    params = nodeid.split("[", 1)[1].rstrip("]") if "[" in nodeid else ""
    for target in sorted(targets, key=len, reverse=True):
        if re.search(rf"(^|-){re.escape(target)}(-|$)", params):
            return target
    return "across"


# -- the pytest plugin each suite process loads (-p unified_params.cli.conformance) --
_seen: list[tuple[str, str, str]] = []


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "call" and report.outcome == "passed":
        return  # setup and teardown count only when they fail or skip
    module = report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
    targets = [t.strip() for t in os.environ.get("UP_TEST_BACKENDS", "").split(",") if t.strip()]
    _seen.append((module, column_of(report.nodeid, targets), report.outcome))


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get(_OUT)
    if path:
        Path(path).write_text(json.dumps(_seen))


def _markdown(columns: list[str], rows: list[list[str]]) -> str:
    lines = [
        "# Conformance matrix",
        "",
        "Generated by `unified-params conformance --write docs/conformance.md`: the conformance",
        "suite (`tests/conformance`) run on each backend, one process per Keras engine; a cell",
        "counts its tests.",
        "",
        "| feature | " + " | ".join(columns) + " |",
        "| --- | " + " | ".join("---" for _ in columns) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
