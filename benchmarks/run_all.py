"""Run every benchmark and write docs/benchmarks.md: machine, versions, date, tables.

make bench      # or: .venv/bin/python benchmarks/run_all.py
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE.parent / "docs" / "benchmarks.md"
SCRIPTS = [
    ("Collect-all and path look-ups", "bench_access.py"),
    ("Seeded initialisation of a 102M-parameter torch model", "bench_init.py"),
    ("Porting 1 GiB between frameworks", "bench_port.py"),
]


def _versions() -> str:
    names = ["numpy", "torch", "tensorflow-cpu", "keras", "paddlepaddle", "safetensors"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def main() -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `benchmarks/run_all.py` (`make bench`) from one run; every ratio compares",
        "against a baseline measured in the same run. Not timed tests: shared machines are noisy.",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- versions: {_versions()}",
        "",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    for title, script in SCRIPTS:
        result = subprocess.run([sys.executable, str(HERE / script)], capture_output=True, text=True, env=env)
        output = "\n".join(
            line for line in result.stdout.splitlines() if not line.startswith(("WARNING", "I0000"))
        )
        print(f"== {title}\n{output}", flush=True)
        lines += [f"## {title}", "", "```text", output.strip(), "```", ""]
        if result.returncode:
            lines += [f"(exited with {result.returncode})", ""]
    PAGE.write_text("\n".join(lines))
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
