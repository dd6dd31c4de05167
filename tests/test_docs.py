"""Generated documentation pages are current: regenerated here and compared."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.conftest import needs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_chapter_page_is_generated_from_a_run():
    for name in ("torch", "keras", "paddle", "flax"):
        needs(name)
    spec = importlib.util.spec_from_file_location("gen_chapter", DOCS / "gen_chapter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.render()
    assert (DOCS / "chapter.md").read_text() == page, "regenerate with: .venv/bin/python docs/gen_chapter.py"
    # Every cell: the unified version, a native tab per framework, one shared output.
    for tab in (
        '=== "unified"',
        '=== "PyTorch"',
        '=== "Keras 3"',
        '=== "PaddlePaddle"',
        '=== "JAX (Flax NNX)"',
    ):
        assert page.count(tab) == len(module.CELLS), tab
    assert page.count("Output (the same on torch, keras, paddle, flax):") == len(module.CELLS)
    assert "42." in page and "('2.weight', '4.weight')" in page and "(block 0): Sequential(" in page


def test_chapter_generation_refuses_outputs_that_differ(monkeypatch):
    """A cell printing differently on two backends stops the page, never shows one backend's text."""
    for name in ("torch", "keras", "paddle"):
        needs(name)
    spec = importlib.util.spec_from_file_location("gen_chapter", DOCS / "gen_chapter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from unified_params.cli import chapter

    cell = chapter.Cell("backend", "", "differs by design", "print(up.wrap(net).backend)", {})
    monkeypatch.setattr(module, "CELLS", (*chapter.CELLS[:1], cell))
    real_run = chapter.run
    monkeypatch.setattr(module.chapter, "run", lambda backend: real_run(backend, module.CELLS))
    with pytest.raises(module.CellsDiffer, match="'backend' prints differently"):
        module.render()


def test_every_page_in_the_navigation_exists():
    import yaml

    config = yaml.safe_load((DOCS.parent / "mkdocs.yml").read_text())
    pages = [next(iter(entry.values())) for entry in config["nav"]]
    assert all((DOCS / page).exists() for page in pages), pages
    assert {"chapter.md", "api.md", "porting.md", "conformance.md", "benchmarks.md", "errors.md"} <= set(
        pages
    )


def test_the_conformance_page_has_a_row_for_every_module_of_the_suite():
    """A module of the suite without a feature name would run and be left off the page."""
    from unified_params.cli.conformance import FEATURES

    suite = {path.stem for path in (DOCS.parent / "tests" / "conformance").glob("test_*.py")}
    assert suite == set(FEATURES)
    page = (DOCS / "conformance.md").read_text()
    assert all(f"| {feature} |" in page for feature in FEATURES.values())


def test_the_zoo_gallery_page_lists_every_gallery_model_as_it_ran():
    from tests.zoo.models import GALLERY

    page = (DOCS / "porting-gallery.md").read_text()
    for model in GALLERY:
        assert f"| {model.name} | {model.family} |" in page, model.name
    shown = re.search(r"(\d+)/(\d+) models round-trip", page)
    assert shown and shown.group(2) == str(len(GALLERY))


def test_the_porting_gallery_lists_every_pair_as_expected():
    from tests.zoo.pairs import PAIRS

    page = (DOCS / "porting-gallery.md").read_text()
    for pair in PAIRS:
        (sf, sn, _), (df, dn, _) = pair.source, pair.destination
        row = re.search(
            rf"^\| {re.escape(sn)} \({re.escape(sf)}\) \| {re.escape(dn)} \({re.escape(df)}\) "
            rf"\| {pair.size}x{pair.size} \|.*$",
            page,
            re.M,
        )
        assert row, pair.name
        assert f"| {pair.expect}" in row.group(0), pair.name
    verified = sum(p.expect == "verified" for p in PAIRS)
    assert (
        f"{verified} pairs verified, {len(PAIRS) - verified} refused with the reason, 0 not as expected"
        in page
    )


@pytest.mark.parametrize(
    "module", ["unified_params._core.view", "unified_params._core.slices", "unified_params._core.summary"]
)
def test_view_examples_print_the_same_on_every_backend(backend, module):
    """The examples of Module, Param and ParamSlice run with ``m`` on each backend, as printed."""
    import doctest
    import importlib

    import numpy as np

    import unified_params as up

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    finder = doctest.DocTestFinder()
    tests = finder.find(importlib.import_module(module), extraglobs={"np": np, "up": up})
    ran = 0
    for test in tests:
        uses_m = any(re.search(r"\bm\b", example.source) for example in test.examples)
        if not uses_m or any("torch" in example.source for example in test.examples):
            continue  # no `m`, or an example that builds its own torch model
        test.globs["m"] = up.wrap(up.spec.Sequential(up.spec.Linear(4, 8), up.spec.ReLU()).build(backend))
        runner.run(test)
        ran += 1
    assert ran >= 1 and runner.summarize(verbose=False).failed == 0


def test_the_backends_page_lists_the_registry():
    """docs/backends.md's targets and capabilities are the registry's, row by row."""
    from dataclasses import fields

    from unified_params.backends import Capabilities, registry

    text = (Path(__file__).resolve().parents[1] / "docs" / "backends.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if len(cells) == len(fields(Capabilities)) + 1 and cells[0] in registry.targets():
            rows[cells[0]] = [c == "yes" for c in cells[1:]]
    assert list(rows) == list(registry.targets())
    for target, flags in rows.items():
        name, engine = registry.split_target(target)
        entry = registry.get(name)
        caps = entry.engine_capabilities.get(engine or "", entry.capabilities)
        assert flags == [getattr(caps, f.name) for f in fields(Capabilities)], target
