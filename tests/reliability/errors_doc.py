"""Render the bad-input catalogue into ``docs/errors.md``.

Each case runs on torch (the canonical backend) to capture its real message.
``test_errors_doc.py`` fails when the committed page differs; regenerate with

    .venv/bin/python -m tests.reliability.errors_doc
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import paddle  # noqa: F401  (paddle before tensorflow, as everywhere in the project)

import unified_params as up
from tests.reliability.catalogue import CASES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
HEADER = """# Errors

Every mistake below raises an error of one hierarchy, `up.UnifiedParamsError`,
whose classes also derive from the builtin you would catch (`KeyError`,
`IndexError`, `ValueError`, `TypeError`). Each message says what happened, what
was expected, and `Received: ...`; after the error, every parameter of the
model is as it was. The table is generated from the test catalogue
(`tests/reliability/catalogue.py`), which runs each case on torch, Keras and
Paddle; the messages shown are torch's.

| area | mistake | error (builtin) | message |
| --- | --- | --- | --- |
"""


def message(case) -> str:
    """The message the case raises on torch, with temporary paths shortened."""
    with tempfile.TemporaryDirectory() as tmp:
        model = case.model("torch")
        try:
            case.call(model, Path(tmp))
        except case.error as err:
            text = str(err).replace(tmp, "<tmp>")
        else:  # pragma: no cover - the catalogue test reports this properly
            raise AssertionError(f"{case.mistake}: nothing was raised")
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"([\\|\[\]*_<>`])", r"\\\1", text)  # shown as written, never read as markdown


def render() -> str:
    rows = []
    for case in CASES:
        bases = [
            b.__name__
            for b in case.error.__mro__[1:]
            if b.__module__ == "builtins" and b not in (Exception, BaseException, object)
        ]
        rows.append(
            f"| {case.area} | {case.mistake} | `{case.error.__name__}` ({', '.join(bases)}) | {message(case)} |"
        )
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text(render())
    print(f"wrote {PAGE} ({len(CASES)} cases)", file=sys.stderr)
    del up
