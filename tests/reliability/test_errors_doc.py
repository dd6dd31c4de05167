"""docs/errors.md is the catalogue, as generated; never edited by hand."""

from __future__ import annotations

from tests.conftest import needs


def test_errors_page_matches_the_catalogue():
    needs("torch")
    from tests.reliability.errors_doc import PAGE, render

    assert PAGE.read_text() == render(), "regenerate with: .venv/bin/python -m tests.reliability.errors_doc"
