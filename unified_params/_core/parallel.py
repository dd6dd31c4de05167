"""One small thread pool for the library's bulk numpy work (initialisation
draws, tiled transposes). numpy releases the GIL inside those loops, so two
cores give close to twice the speed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_pool: ThreadPoolExecutor | None = None


def workers() -> int:
    """How many threads bulk work may use."""
    return os.cpu_count() or 1


def run_all(fn: Callable[[Any], None], items: Iterable[Any]) -> None:
    """Call ``fn`` on every item, in parallel when there are several and cores to spare.

    Examples:
        >>> out = []
        >>> run_all(out.append, [1])
        >>> out
        [1]
    """
    items = list(items)
    if len(items) < 2 or workers() < 2:
        for item in items:
            fn(item)
        return
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="unified-params")
    list(_pool.map(fn, items))
