"""Progress bars for long saves, loads and ports.

A bar is shown when asked for (``progress=True``), or by default when the work
is above 100 MB and standard error is an interactive terminal; never in piped
output, and never without tqdm installed (``pip install 'unified-params[cli]'``).
"""

from __future__ import annotations

import sys
from typing import Any

#: Bytes of work above which a bar appears on an interactive terminal.
THRESHOLD = 100 * 10**6


class _Silent:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def bar(total: int, progress: bool | None, description: str) -> Any:
    """A bar counting ``total`` bytes, or a silent stand-in.

    Examples:
        >>> bar(10, None, "saving").update(10)  # small work: silent
    """
    enabled = progress if progress is not None else total >= THRESHOLD and sys.stderr.isatty()
    if not enabled:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Silent()
    return tqdm(total=total, unit="B", unit_scale=True, desc=description, file=sys.stderr, leave=False)
