"""``unified-params demo``: the textbook chapter, cell by cell, on every backend.

Each cell of `unified_params.cli.chapter` is printed once, as code, and
run on every requested backend; its output is printed once when every backend
printed the same text, else once per backend, marked ``DIFFERS``. The docs
page ``docs/chapter.md`` shows the same cells, seed and numbers.

Frameworks are imported paddle first (tensorflow-then-paddle segfaults).
"""

from __future__ import annotations

import sys
import warnings
import zlib
from collections.abc import Sequence
from typing import Any

from ..backends.importing import import_frameworks
from . import chapter

_RULE = "─" * 88


def demo(
    backends: Sequence[str],
    out: Any = sys.stdout,
    plot: str | None = None,
    labels: Sequence[str] | None = None,
) -> bool:
    """Run the chapter on each backend and print every cell once.

    Returns True when every cell printed the same text on every backend.
    With ``plot``, also saves histograms of the chapter's seeded MLP, one
    row per backend. ``labels``: how to name the backends in the output
    (``keras-jax`` for Keras on JAX); default their names.

    Examples:
        >>> import io
        >>> buffer = io.StringIO()
        >>> demo(["torch"], out=buffer)
        True
        >>> buffer.getvalue().splitlines()[-1]
        '15/15 cells print the same on torch.'
    """
    warnings.filterwarnings("ignore", message="No ccache found")
    import_frameworks(backends)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outputs = {backend: chapter.run(backend) for backend in backends}
    names = ", ".join(labels or backends)
    print(f"unified-params demo: the textbook chapter, one code on {names}", file=out)
    same = 0
    for k, cell in enumerate(chapter.CELLS):
        if cell.title:
            heading = cell.title.splitlines()[-1].lstrip("# ")
            print(f"\n{_RULE}\n{heading}\n{_RULE}", file=out)
        print(_prompted(cell.code), file=out)
        texts = {backend: outputs[backend][k] for backend in backends}
        if len(set(texts.values())) == 1:
            same += 1
            print(next(iter(texts.values())), file=out)
            continue
        for label, text in zip(labels or backends, texts.values(), strict=True):
            print(f"[{label}, DIFFERS]\n{text}", file=out)
    print(f"\n{_RULE}\nEach cell's output, as a checksum per backend\n{_RULE}", file=out)
    print(_table(outputs, labels or backends), file=out)
    if plot:
        _plot(backends, plot)
        print(f"\nparameter histograms written to {plot}", file=out)
    print(f"\n{same}/{len(chapter.CELLS)} cells print the same on {names}.", file=out)
    return same == len(chapter.CELLS)


def _table(outputs: dict[str, list[str]], labels: Sequence[str]) -> str:
    """One row per cell, one column per backend: the CRC-32 of what the cell
    printed there, so agreement shows as equal columns.

    Examples:
        >>> print(_table({"a": ["x", "y"], "b": ["x", "z"]}, ["a", "b"]).replace(" ", "."))
        cell........a.........b
        forward.....8cdc1683..8cdc1683
        state_dict..fbdb2615..62d277af.DIFFERS
    """
    keys = [cell.key for cell in chapter.CELLS][: len(next(iter(outputs.values())))]
    width = max(len(k) for k in ["cell", *keys]) + 2
    columns = [max(8, len(label)) + 2 for label in labels]
    header = "cell".ljust(width) + "".join(label.ljust(w) for label, w in zip(labels, columns, strict=True))
    rows = [header.rstrip()]
    for k, key in enumerate(keys):
        sums = [f"{zlib.crc32(texts[k].encode()):08x}" for texts in outputs.values()]
        mark = "" if len(set(sums)) == 1 else " DIFFERS"
        row = key.ljust(width) + "".join(x.ljust(w) for x, w in zip(sums, columns, strict=True))
        rows.append(row.rstrip() + mark)
    return "\n".join(rows)


def _prompted(code: str) -> str:
    r"""Code as typed at a Python prompt: ``>>>`` starts a statement, ``...`` goes on.

    Examples:
        >>> _prompted("f(\n    1)\n\ng()").splitlines()
        ['>>> f(', '...     1)', '...', '>>> g()']
    """
    lines = []
    for line in code.splitlines():
        goes_on = not line.strip() or line[0].isspace() or line[0] in ")]}"
        lines.append(("... " if goes_on else ">>> ") + line if line.strip() else "...")
    return "\n".join(lines)


def _plot(backends: Sequence[str], path: str) -> None:
    from .. import init, plot, spec

    S = spec
    models = {}
    for name in backends:
        models[name] = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 1)).build(name)
        init.initialize(models[name], init.Uniform(-0.5, 0.5), seed=0)  # the chapter's values
    plot.compare(models).savefig(path)
