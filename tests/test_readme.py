"""The README's examples run as written, in order, and print the same on every backend."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from tests.conftest import EVERY_BACKEND

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _run_readme() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 4
    result = subprocess.run(
        [sys.executable, "-c", "\n".join(blocks)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def printed():
    if not EVERY_BACKEND:
        pytest.skip("the examples use every backend; UP_TEST_BACKENDS names fewer")
    return _run_readme().splitlines()


def _per_backend(lines: list[str], marker: str, *, without: str = "\0") -> dict[str, str]:
    """Each backend's line holding ``marker`` (and not ``without``), less the backend's name."""
    found = {}
    for backend in ("torch", "keras", "paddle", "flax"):
        line = next(
            (x for x in lines if x.startswith(backend + " ") and marker in x and without not in x), None
        )
        if line is None:
            continue  # an example that runs on fewer backends
        found[backend] = line[len(backend) :]
    return found


def test_ten_lines_print_the_same_after_the_backend_name(printed):
    shown = _per_backend(printed, "0.weight")
    assert len(shown) == 4 and len(set(shown.values())) == 1, shown
    assert " ['0.weight', '0.bias', '2.weight', '2.bias'] (8, 4) 49 [4.826 4.826]" in shown["torch"]
    assert any("Total params: 49" in line for line in printed)


def test_initialisation_examples_run_and_agree(printed):
    assert printed.count("Init weight (8, 4)") == 1 and printed.count("Init weight (1, 8)") == 1
    kaiming = _per_backend(printed, "[", without="0.weight")
    assert len(set(kaiming.values())) == 1 and re.fullmatch(
        r" \[ ?-?0\.\d+ +-?0\.\d+ +-?0\.\d+\]", kaiming["torch"]
    )


def test_tying_and_porting_examples_print_what_their_comments_say(printed):
    assert "[('2.weight', '4.weight')]" in printed
    assert "[('0', '0', 'linear'), ('2', '2', 'linear')] True" in printed
