"""``import unified_params`` in a fresh interpreter: its time and the frameworks it loads.

Target: under 50 ms, no framework loaded. Best of 7 fresh processes, each
timing the import statement alone (interpreter start-up excluded).

    .venv/bin/python benchmarks/bench_import.py [--json rows.jsonl]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))

from harness import Row, arguments, emit  # noqa: E402

FRAMEWORKS = ("torch", "tensorflow", "keras", "paddle")
PROBE = """
import json, sys, time
start = time.perf_counter()
import {module}
elapsed = time.perf_counter() - start
print(json.dumps([elapsed, [m for m in {frameworks!r} if m in sys.modules]]))
"""


def timed_import(module: str, runs: int) -> tuple[float, list[str]]:
    best, loaded = float("inf"), []
    for _ in range(runs):
        code = PROBE.format(module=module, frameworks=FRAMEWORKS)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        elapsed, loaded = json.loads(out.stdout.strip().splitlines()[-1])
        best = min(best, elapsed)
    return best, loaded


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    runs = 2 if args.tiny else 7
    ours, loaded = timed_import("unified_params", runs)
    numpy, _ = timed_import("numpy", runs)
    met = ours < 0.050 and not loaded
    size = "frameworks loaded: " + (", ".join(loaded) or "none")
    row = Row(
        "import unified_params", "-", 1, size, ours, numpy, "import numpy", None, "< 50 ms, none loaded", met
    )
    emit([row], args)


if __name__ == "__main__":
    main()
