"""What every benchmark shares: timing, memory, result rows and the command line.

Each script times this library's call and a native baseline in the same
process, at three sizes (1x, 4x, 16x of the work), and prints one row per
measurement. With ``--json FILE`` it also appends its rows to ``FILE`` for
``run_all.py``, which writes the table in docs/benchmarks.md.

Memory is the peak *anonymous* resident memory above the level before the
call (``RssAnon``): what the call allocates. Pages of a file mapped for
reading are page cache, shared and reclaimable, and are not counted. It is
sampled in a round of its own, never while a call is timed: a thread reading
``/proc/self/status`` every millisecond made a 1 GiB Keras save take a median
825 ms instead of 384 ms here (six rounds each), and a plain write of the
same bytes 393 ms instead of 381 ms.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

SCALES = (1, 4, 16)


@dataclass
class Row:
    """One measurement: this library against a native baseline on one case."""

    operation: str
    backend: str
    scale: int
    size: str
    ours: float  # seconds
    native: float | None  # seconds, same run
    baseline: str  # what the native time measures
    peak: int | None  # bytes of extra memory at the peak of our call; None: not sampled
    target: str  # the target, or "" where it does not apply at this size
    met: bool | None  # None where no target applies
    native_peak: int | None = None  # the same for the native call

    @property
    def ratio(self) -> float | None:
        """Our time over the native time (lower is better)."""
        return None if not self.native else self.ours / self.native


def anon_rss() -> int:
    """Anonymous resident memory of this process, in bytes (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def measure(
    fn: Callable[[], Any], repeat: int = 3, before: Callable[[], Any] | None = None
) -> tuple[float, int]:
    """Best wall time over ``repeat`` runs, and the peak extra memory of one more.

    Memory is sampled every millisecond from a helper thread while ``fn`` runs
    once more, untimed. ``before`` runs, untimed, ahead of each run
    (``os.sync``: each save then starts with no dirty pages left by the one before).
    """
    return in_turn({"": fn}, repeat, before)[""]


def in_turn(
    calls: dict[str, Callable[[], Any]], repeat: int = 3, before: Callable[[], Any] | None = None
) -> dict[str, tuple[float, int]]:
    """`measure` for several calls, run in turn: each round runs every call once.

    A call and its baseline then share the machine's slow and fast spells (on
    a shared VM the same copy takes up to 1.5x longer from one minute to the
    next), instead of one of them getting all of a spell. Memory is sampled in
    one more round, untimed (see the module's docstring).
    """
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, fn in calls.items():
            if before is not None:
                before()
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    peaks = {}
    for name, fn in calls.items():
        if before is not None:
            before()
        peaks[name] = _peak(fn)
    return {name: (best[name], peaks[name]) for name in calls}


def _peak(fn: Callable[[], Any]) -> int:
    """One run's peak extra anonymous memory (the run is not timed)."""
    base, peak, stop = anon_rss(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], anon_rss())
            time.sleep(0.001)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    fn()
    stop.set()
    watcher.join()
    return max(peak[0], anon_rss()) - base


def best_times(calls: dict[str, Callable[[], Any]], repeat: int = 7) -> dict[str, float]:
    """Best wall time of each call over ``repeat`` rounds that run every call
    once, in turn (see `in_turn`), for calls too short to sample memory."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def best_time(fn: Callable[[], Any], repeat: int = 7) -> float:
    """Best wall time over ``repeat`` runs, for calls too short to sample memory."""
    return best_times({"": fn}, repeat)[""]


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def seconds(t: float) -> str:
    return f"{t * 1e3:,.2f} ms" if t < 1 else f"{t:,.2f} s"


def arguments(description: str) -> argparse.Namespace:
    """The options every benchmark script takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--scales", default=",".join(map(str, SCALES)), help="sizes to run, e.g. 1,4")
    parser.add_argument("--json", help="append the rows to this file (JSON lines)")
    parser.add_argument("--tiny", action="store_true", help="a very small run that only checks the script")
    parser.add_argument("--folder", help="where files are written (checkpoint benchmark)")
    args = parser.parse_args()
    args.scales = [int(s) for s in args.scales.split(",")]
    return args


def emit(rows: list[Row], args: argparse.Namespace) -> None:
    """Print the rows as a table and, with ``--json``, append them to the file."""
    print(table(rows), flush=True)
    if args.json:
        with open(args.json, "a") as f:
            for row in rows:
                f.write(json.dumps(asdict(row)) + "\n")


def table(rows: list[Row]) -> str:
    """A Markdown table: operation, backend, size, ours, native, ratio, memory, target."""
    head = (
        "| operation | backend | size | unified-params | native | ratio | peak extra (native) "
        "| target | met |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        native = "-" if r.native is None else seconds(r.native)
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        target = r.target or ("(scaling)" if r.met is None else "")
        peak = "-" if r.peak is None else mib(r.peak)
        if r.native_peak is not None:
            peak += f" ({mib(r.native_peak)})"
        lines.append(
            f"| {r.operation} | {r.backend} | {r.size} | {seconds(r.ours)} | {native} | {ratio} | "
            f"{peak} | {target} | {met} |"
        )
    return "\n".join(lines)
