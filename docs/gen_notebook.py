"""Generate docs/chapter.ipynb (the chapter as a notebook) and docs/notebook.md.

The notebook holds every unified cell of the chapter (``unified_params.cli.chapter``),
after a first cell that picks the backend (``BACKEND = "torch"``); it is
stored executed on torch, with its outputs. ``tests/test_notebook.py``
executes it with nbclient on every backend and checks that each prints what
the stored one printed. The page shows how views and reports look in a
notebook (their ``_repr_html_``, rendered here from a real model) and the
notebook itself, cell by cell, with its outputs.

    .venv/bin/python docs/gen_notebook.py          # rewrite both
    .venv/bin/python docs/gen_notebook.py --check  # fail if either is stale
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")

import nbformat  # noqa: E402

from unified_params.cli import chapter  # noqa: E402

DOCS = Path(__file__).resolve().parent
NOTEBOOK = DOCS / "chapter.ipynb"
PAGE = DOCS / "notebook.md"
TIMEOUT = 600

CHOOSE = 'BACKEND = "torch"  # or "keras", "paddle", "flax": every cell below runs on each'
SETUP = """\
import numpy as np
import unified_params as up
from unified_params.backends.importing import import_framework

backend = BACKEND
import_framework(backend)  # in a safe order: paddle before tensorflow
np.set_printoptions(precision=4, suppress=True, linewidth=64)"""

INTRO = """\
# Parameter management, on any backend

The textbook chapter on parameter management, every cell written once with
`unified_params`. Change `BACKEND` below and run all: each cell prints the same
on PyTorch, Keras 3, PaddlePaddle and JAX (Flax NNX)."""


def notebook() -> Any:
    """The chapter as an unexecuted notebook."""
    cells = [nbformat.v4.new_markdown_cell(INTRO), nbformat.v4.new_code_cell(CHOOSE)]
    cells.append(nbformat.v4.new_code_cell(SETUP))
    for cell in chapter.CELLS:
        text = (cell.title + "\n\n" if cell.title else "") + cell.text
        cells.append(nbformat.v4.new_markdown_cell(text))
        cells.append(nbformat.v4.new_code_cell(cell.code))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for k, c in enumerate(nb.cells):  # stable ids, so an unchanged notebook is an unchanged file
        c["id"] = f"cell-{k}"
    return nb


def execute(nb: Any, backend: str) -> Any:
    """A copy of ``nb`` executed with ``BACKEND`` set to ``backend`` (nbclient, a
    fresh kernel), without what cells wrote to stderr."""
    from nbclient import NotebookClient

    run = nbformat.from_dict(nb)
    run.cells[1].source = CHOOSE.replace('"torch"', f'"{backend}"', 1)
    NotebookClient(run, timeout=TIMEOUT, kernel_name="python3", record_timing=False).execute(cwd=str(DOCS))
    for cell in run.cells:  # a framework's start-up warnings name this machine: not kept
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    return run


def printed(nb: Any) -> list[str]:
    """What each code cell printed (stdout), in order; an error fails loudly."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        text = []
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                raise AssertionError(f"cell {cell.source[:60]!r} failed: {output.ename}: {output.evalue}")
            if output.output_type == "stream" and output.name == "stdout":
                text.append(output.text)
        out.append("".join(text))
    return out


def html_examples() -> str:
    """The ``_repr_html_`` of a module, a parameter and two reports, from a real model."""
    import numpy as np
    import torch  # noqa: F401 (the example's backend)

    import unified_params as up

    S = up.spec
    spec = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 8), S.Linear(8, 1))
    net = spec.build("torch")
    shared = S.Linear(8, 8)
    tied = S.Sequential(S.Linear(4, 8), S.ReLU(), shared, S.ReLU(), shared, S.Linear(8, 1)).build("torch")
    up.initialize(net, up.init.Normal(0, 0.5), seed=0)
    up.initialize(tied, up.init.Normal(0, 0.5), seed=0)
    report = up.load_state_dict(net, up.state_dict(net))
    other = spec.build("torch")
    port = up.port(net, other, check_input=np.ones((2, 4), "float32"))
    parts = [
        "### A model: `m` (or `up.wrap(model)`) as the last line of a cell\n",
        "A shared layer is shown at each position, marked, and counted once:\n",
        up.wrap(tied)._repr_html_(),
        '\n### A parameter: `m["0.weight"]`\n',
        "Shape, dtype and backend, its first values, their range and a histogram:\n",
        up.wrap(net)["0.weight"]._repr_html_(),
        "\n### Reports: `up.load_state_dict(...)` and `up.port(...)`\n",
        report._repr_html_(),
        "",
        port._repr_html_(),
    ]
    return "\n".join(parts) + "\n"


def page(executed: Any) -> str:
    """docs/notebook.md: how to use the library in a notebook, then the notebook."""
    parts = [
        "# Use it in a notebook",
        "",
        "Views and reports show as tables in Jupyter (they define `_repr_html_`), the",
        "same on every backend: canonical shapes, shared layers marked, the first values",
        "and a histogram of a parameter. The chapter itself is a notebook,",
        "[chapter.ipynb](chapter.ipynb): set `BACKEND` in its first cell and run all;",
        "`make test` runs it with nbclient on every backend and checks that each prints",
        "what is shown below. In a notebook, `print(m)` and `print(p)` still give the",
        "plain text the chapter shows.",
        "",
        "## What the views look like",
        "",
        html_examples(),
        "## The chapter notebook",
        "",
        "Run on torch; every backend prints the same.",
        "",
    ]
    for cell in executed.cells:
        if cell.cell_type == "markdown":
            parts += [_demoted(cell.source), ""]
            continue
        parts += ["```python", cell.source, "```", ""]
        shown = "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream")
        if shown.strip():
            parts += ["```text", shown.rstrip(), "```", ""]
    return "\n".join(parts)


def _demoted(markdown: str) -> str:
    """Headings two levels down (the notebook sits under the page's own)."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.splitlines())


def _stored(nb: Any) -> str:
    return nbformat.writes(nb) + "\n"


if __name__ == "__main__":
    executed = execute(notebook(), "torch")
    text, markdown = _stored(executed), page(executed)
    if "--check" in sys.argv:
        stale = [p.name for p, new in ((NOTEBOOK, text), (PAGE, markdown)) if p.read_text() != new]
        sys.exit(f"stale: {', '.join(stale)}: run docs/gen_notebook.py" if stale else 0)
    NOTEBOOK.write_text(text)
    PAGE.write_text(markdown)
    print(f"wrote {NOTEBOOK} and {PAGE}")
