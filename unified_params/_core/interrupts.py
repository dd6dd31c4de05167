"""Ctrl-C during the writes of a load or a port: held until they are done.

Loads and ports validate every value before the first write, so once writing
starts nothing in the values can stop it. An interrupt (SIGINT) that arrives
then is held, the writes finish, and the interrupt is raised after them: the
model holds either its old values or all the new ones, never a mix.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Run the block with SIGINT held; raise it (or call the handler that was
    installed) once the block is done. Outside the main thread, where Python
    delivers no signal, it does nothing.

    Examples:
        >>> import os
        >>> previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's Ctrl-C
        >>> try:
        ...     with interrupts_held():
        ...         os.kill(os.getpid(), signal.SIGINT)
        ...         print("the block finishes")
        ... except KeyboardInterrupt:
        ...     print("then the interrupt")
        the block finishes
        then the interrupt
        >>> _ = signal.signal(signal.SIGINT, previous)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, Any]] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: held.append((number, frame)))
    try:
        yield
    finally:  # a handler installed outside Python reads as None: Python's default then
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
    if held:
        if callable(previous):
            previous(*held[0])
        else:  # SIG_DFL or SIG_IGN set by the program: Python's own default raises
            if previous != signal.SIG_IGN:
                raise KeyboardInterrupt
