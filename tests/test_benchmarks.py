"""The benchmark suite runs end to end (at tiny sizes: this checks the scripts, times nothing)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import EVERY_BACKEND

ROOT = Path(__file__).resolve().parents[1]


def test_make_bench_writes_every_case_to_the_page(tmp_path):
    if not EVERY_BACKEND:
        import pytest

        pytest.skip("the benchmarks compare every framework; UP_TEST_BACKENDS names fewer")
    page = tmp_path / "benchmarks.md"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "run_all.py"),
        "--tiny",
        "--scales",
        "1,4",
        "--page",
        str(page),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    text = page.read_text()
    for operation in (
        "import unified_params",
        "collect-all, first call",
        "collect-all, repeated",
        "random path look-ups",
        "seeded initialize",
        "save a checkpoint",
        "save, durable (fsync) a checkpoint",
        "load a checkpoint",
        "port Embedding",
        "port Embedding(4096, 16) layers (vs checking, then copying)",
        "port Linear",
        "transposing copy, numpy tiles",
        "transposing copy, torch copy_",
        "transposing copy, torch copy_, one core",
        "transposing copy, paddle.transpose",
        "transposing copy, tf.transpose",
        "save a checkpoint (vs transposing)",
        "sharded save",
        "sharded load",
    ):
        assert f"| {operation}" in text, operation
    for backend in (
        "torch",
        "keras",
        "paddle",
        "torch -> paddle",
        "torch -> keras",
        "keras -> torch",
        "torch FSDP2, 2 ranks",
        "flax",
        "keras-jax",
        "keras-torch",
    ):
        assert f"| {backend} |" in text, backend
    assert "## Scaling" in text and "growth 4x/1x" in text
    assert "frameworks loaded: none" in text
    assert re.search(r"- memory at the start: [\d.]+ GiB available of [\d.]+ GiB, [\d.]+ GiB in tmpfs", text)
