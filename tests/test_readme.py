"""The README's example runs as written."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from tests.conftest import REQUESTED

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    if set(REQUESTED) != {"torch", "keras", "paddle"}:
        pytest.skip("the example uses all three backends; UP_TEST_BACKENDS names fewer")
    code = re.search(r"## Ten lines\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for backend in ("torch", "keras", "paddle"):
        line = next(x for x in lines if x.startswith(backend + " "))
        assert "['0.weight', '0.bias', '2.weight', '2.bias'] 49" in line
    assert "Total params: 49" in result.stdout
