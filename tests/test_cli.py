"""The demo: the chapter's calls agree on every requested backend."""

from __future__ import annotations

import io
import subprocess
import sys

from tests.conftest import REQUESTED
from unified_params import cli


def test_demo_agrees_on_requested_backends():
    out = io.StringIO()
    assert cli.demo(list(REQUESTED), out=out) is True
    text = out.getvalue()
    assert f"15/15 results agree across {', '.join(REQUESTED)}" in text
    assert "[DIFFERS]" not in text
    assert text.count("Total params: 121") == len(REQUESTED)


def test_console_entry_point_runs_demo_for_a_subset():
    result = subprocess.run(
        [sys.executable, "-m", "unified_params", "demo", "--backends", REQUESTED[0]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "15/15 results agree" in result.stdout
