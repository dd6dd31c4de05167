"""Process-wide scopes that nest and overlap across threads.

Some settings hold for as long as any caller needs them: the collector paused
while a walk allocates (`gc_pause`), freed memory kept for the next copy
(`recycling`). Each caller opens a scope; the first to open switches the
setting on, the last to close switches it off, whichever threads they run on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager


class Nesting:
    """How many scopes of one kind are open, over all threads.

    Args:
        opened: Called as the first scope opens.
        closed: Called as the last scope closes.
        lock: Held while the count changes and while ``opened`` and
            ``closed`` run: the lock that guards the state they change, if
            other code takes it too; else one of its own.

    Examples:
        >>> events = []
        >>> nesting = Nesting(lambda: events.append("on"), lambda: events.append("off"))
        >>> with nesting.scope():
        ...     with nesting.scope():
        ...         nesting.depth
        2
        >>> events
        ['on', 'off']
    """

    def __init__(
        self,
        opened: Callable[[], None] | None = None,
        closed: Callable[[], None] | None = None,
        lock: AbstractContextManager[object] | None = None,
    ) -> None:
        self._lock = threading.Lock() if lock is None else lock
        self._opened = opened
        self._closed = closed
        #: Scopes open now, over all threads.
        self.depth = 0

    @contextmanager
    def scope(self) -> Iterator[None]:
        """One scope: open for the block, closed when it ends or raises."""
        with self._lock:
            if not self.depth and self._opened is not None:
                self._opened()
            self.depth += 1
        try:
            yield
        finally:
            with self._lock:
                self.depth -= 1
                if not self.depth and self._closed is not None:
                    self._closed()
