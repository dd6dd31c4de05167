"""Shared benchmark helpers: best-of timing and peak extra RSS, both from one run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident set size of this process, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def measure(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, int]:
    """Best wall time over ``repeat`` runs, and the peak RSS above the start.

    RSS is sampled every millisecond from a helper thread while ``fn`` runs.
    """
    best, peak_extra = float("inf"), 0
    for _ in range(repeat):
        base, peak, stop = rss(), [0], threading.Event()

        def sample(stop: threading.Event = stop, peak: list[int] = peak) -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.001)

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        stop.set()
        watcher.join()
        best = min(best, elapsed)
        peak_extra = max(peak_extra, max(peak[0], rss()) - base)
    return best, peak_extra


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"
