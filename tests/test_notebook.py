"""The chapter as a notebook (docs/chapter.ipynb), executed with nbclient on
every requested backend: each prints what the stored notebook printed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

from tests.conftest import NAMES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_notebook", DOCS / "gen_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stored():
    return nbformat.read(DOCS / "chapter.ipynb", as_version=4)


def test_the_stored_notebook_holds_the_chapter(stored):
    gen = _generator()
    fresh = gen.notebook()
    assert [c.source for c in stored.cells] == [c.source for c in fresh.cells], "run docs/gen_notebook.py"
    assert stored.cells[1].source.startswith('BACKEND = "torch"')
    assert all(text.strip() for text in gen.printed(stored)[2:]), "every chapter cell prints"
    page = (DOCS / "notebook.md").read_text()
    assert page == gen.page(stored), "docs/notebook.md is stale: run docs/gen_notebook.py"


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_prints_the_same_on(stored, name):
    gen = _generator()
    ran = gen.execute(gen.notebook(), name)
    assert ran.cells[1].source.startswith(f'BACKEND = "{name}"')
    ours, reference = gen.printed(ran), gen.printed(stored)
    for k, (got, want) in enumerate(zip(ours, reference, strict=True)):
        assert got == want, f"code cell {k} on {name}:\n{got}\n--- stored (torch):\n{want}"
