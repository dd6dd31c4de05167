"""Generated documentation pages are current: regenerated here and compared."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.conftest import needs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_chapter_page_is_generated_from_a_run():
    for name in ("torch", "keras", "paddle"):
        needs(name)
    spec = importlib.util.spec_from_file_location("gen_chapter", DOCS / "gen_chapter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.render()
    assert (DOCS / "chapter.md").read_text() == page, "regenerate with: .venv/bin/python docs/gen_chapter.py"
    assert page.count('=== "keras"') == len(module.CELLS)
    assert "42." in page and "('2.weight', '4.weight')" in page


def test_every_page_in_the_navigation_exists():
    import yaml

    config = yaml.safe_load((DOCS.parent / "mkdocs.yml").read_text())
    pages = [next(iter(entry.values())) for entry in config["nav"]]
    assert all((DOCS / page).exists() for page in pages), pages
    assert {"chapter.md", "api.md", "porting.md", "conformance.md", "benchmarks.md", "errors.md"} <= set(
        pages
    )
