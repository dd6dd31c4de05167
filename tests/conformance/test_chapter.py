"""The textbook chapter, cell by cell: one unified version, one output on every backend.

Each cell of ``unified_params.cli.chapter`` runs on every requested backend;
its printed output must be byte-identical across them and show what the
chapter shows (names, shapes, counts, the shared layer's ``True``s). The
native code beside each cell (the docs' tabs) runs too, in its framework.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import numpy as np
import pytest

from tests.conftest import MISSING, NAMES, needs_target
from unified_params.cli import chapter

CELL_KEYS = [cell.key for cell in chapter.CELLS]

TRUES = "[ True  True  True  True  True  True  True  True]"
#: What each cell must print, as the chapter shows it (exact lines or patterns).
FACTS: dict[str, list[str]] = {
    "forward": [r"\A\[\[-?\d\.\d{4}\]\n \[ ?-?\d\.\d{4}\]\]\Z"],
    "state_dict": [r"\Aweight \[\[ ?-?\d\.\d+", r"\nbias \[-?\d\.\d+\]\Z"],
    "targeted": [r"\AParam\n", r"^Param '2\.bias', shape \(1,\), float32, containing:$", r"\nTrue\Z"],
    "all_at_once": [
        r"\A\('weight', \(8, 4\)\) \('bias', \(8,\)\)\n"
        r"\('0\.weight', \(8, 4\)\) \('0\.bias', \(8,\)\) \('2\.weight', \(1, 8\)\) \('2\.bias', \(1,\)\)\Z"
    ],
    "by_name": [r"\A\[-?\d\.\d+\]\Z"],
    "nested": [r"\A\[\[-?\d\.\d{4}\]\n \[ ?-?\d\.\d{4}\]\]\Z"],
    "print_nested": [
        r"\ASequential\(\n  \(0\): Sequential\(\n    \(block 0\): Sequential\(\n"
        r"      \(0\): Linear\(in_features=4, out_features=8\)\n      \(1\): ReLU\(\)\n"
        r"      \(2\): Linear\(in_features=8, out_features=4\)\n      \(3\): ReLU\(\)\n    \)\n",
        r"    \(block 3\): Sequential\(",
        r"  \(1\): Linear\(in_features=4, out_features=1\)\n\)\Z",
    ],
    "nested_access": [r"\A0\.block 1\.0\.bias\n\["],
    "init_normal": [r"\A\[ ?-?0\.0\d{3} +-?0\.0\d{3} +-?0\.0\d{3} +-?0\.0\d{3}\] 0\.0\Z"],
    "init_constant": [r"\A\[1\. 1\. 1\. 1\.\] 0\.0\Z"],
    "init_per_layer": [r"\n\[\[42\. 42\. 42\. 42\. 42\. 42\. 42\. 42\.\]\]\Z"],
    "init_custom": [r"\AInit weight \(8, 4\)\nInit weight \(1, 8\)\n\[\["],
    "set_directly": [r"\A\[\[42\. ", r"\n \[ 7\. "],
    "tied": [
        rf"\n{re.escape(TRUES)}\n{re.escape(TRUES)}\n",
        r"\n7 6 121 \[\('2\.weight', '4\.weight'\), \('2\.bias', '4\.bias'\)\]\Z",
    ],
    "tied_gradient": [
        r"\A\['0\.bias', '0\.weight', '2\.bias', '2\.weight', '6\.bias', '6\.weight'\]\n",
        r"\nTrue\Z",
    ],
}


@pytest.fixture(scope="module")
def outputs():
    """Every cell's output on every requested backend (one run per backend)."""
    if MISSING:
        pytest.fail(f"requested backends cannot be imported: {MISSING}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {backend: chapter.run(backend) for backend in NAMES}


def test_every_cell_has_facts():
    assert set(FACTS) == set(CELL_KEYS)


@pytest.mark.parametrize("key", CELL_KEYS)
def test_cell_prints_the_same_on_every_backend(outputs, key):
    k = CELL_KEYS.index(key)
    texts = {backend: out[k] for backend, out in outputs.items()}
    first = next(iter(texts.values()))
    for backend, text in texts.items():
        assert text == first, f"{key}: {backend} printed\n{text}\nbut the first backend printed\n{first}"


@pytest.mark.parametrize("key", CELL_KEYS)
def test_cell_shows_what_the_chapter_shows(outputs, key):
    k = CELL_KEYS.index(key)
    for backend, out in outputs.items():
        for pattern in FACTS[key]:
            assert re.search(pattern, out[k], re.MULTILINE), f"{key} on {backend}: {pattern!r}\n{out[k]}"


def test_custom_init_values_follow_the_chapters_law(outputs):
    """U(5, 10) w.p. 1/4, 0 w.p. 1/2, U(-10, -5) w.p. 1/4: every printed value is 0 or |v| >= 5."""
    text = next(iter(outputs.values()))[CELL_KEYS.index("init_custom")]
    numbers = np.array([float(v) for v in re.findall(r"-?\d+\.\d*", text.split("\n", 2)[2])])
    assert numbers.size == 8 and np.all((numbers == 0) | (np.abs(numbers) >= 5))


@pytest.mark.parametrize("label", list(chapter.FRAMEWORKS))
def test_native_code_of_every_cell_runs(label):
    """The docs' native tabs are real code: run in order, each framework's cells work
    (the Keras tab is Keras on TensorFlow, as the textbook's)."""
    needs_target(chapter.FRAMEWORKS[label])
    space: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cell in chapter.CELLS:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(cell.native[label], f"<{label} {cell.key}>", "exec"), space)  # noqa: S102
    assert "tied" in space and "rgnet" in space


def test_code_lines_fit_the_docs_width():
    """The docs show code without clipping: every line of every tab fits 80 columns."""
    for cell in chapter.CELLS:
        for label, code in [("unified", cell.code), *cell.native.items()]:
            for line in code.splitlines():
                assert len(line) <= 80, (cell.key, label, line)
