"""The pytest plugin, as another project uses it: a test project in a
temporary folder (the worked example of docs/testing.md, verbatim), run by
pytester in a subprocess, installing nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import needs

pytest_plugins = ["pytester"]
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "testing.md"


def _examples() -> list[str]:
    """The Python blocks of the guide."""
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)


@pytest.fixture
def project(pytester, monkeypatch):
    needs("torch")
    needs("paddle")
    monkeypatch.delenv("UP_TEST_BACKENDS", raising=False)
    worked, random = _examples()
    pytester.makepyfile(
        test_my_models=worked, test_random=random.replace("max_examples=20", "max_examples=3")
    )
    return pytester


def test_the_guide_example_runs_on_each_requested_backend(project):
    result = project.runpytest_subprocess("--up-backends", "torch,paddle", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=9, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*unified-params backends (requested): torch, paddle*",
            "*SKIPPED*not on paddle: how a case is skipped, and why*",
        ]
    )
    passed = project.runpytest_subprocess("--up-backends", "torch", "-v", "-p", "no:cacheprovider")
    passed.stdout.fnmatch_lines(["*test_weights_survive_a_file_and_a_state?torch? PASSED*"])


def test_a_requested_backend_that_is_missing_fails(project):
    result = project.runpytest_subprocess("--up-backends", "torch,nosuchframework", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) + outcomes.get("failed", 0) >= 5 and outcomes.get("passed") == 5
    result.stdout.fnmatch_lines(["*unknown backend 'nosuchframework'*"])


def test_without_a_request_every_installed_backend_runs(project):
    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "-k", "the_backend_fixture", "--collect-only"
    )
    ids = result.stdout.str()
    for backend in ("torch", "keras", "paddle", "flax"):
        assert f"test_the_backend_fixture_names_the_framework[{backend}]>" in ids, ids
    result.stdout.fnmatch_lines(["*unified-params backends (installed)*"])
