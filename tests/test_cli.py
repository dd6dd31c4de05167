"""The demo: the chapter's calls agree on every requested backend."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from tests.conftest import REQUESTED
from unified_params import cli


def test_demo_agrees_on_requested_backends():
    out = io.StringIO()
    assert cli.demo(list(REQUESTED), out=out) is True
    text = out.getvalue()
    agree = re.search(r"(\d+)/(\d+) results agree across (.*) \(", text)
    assert agree and agree.group(1) == agree.group(2) and int(agree.group(1)) >= 20
    assert agree.group(3) == ", ".join(REQUESTED)
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
    assert re.search(r"(\d+)/\1 results agree", result.stdout)
