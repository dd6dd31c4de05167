"""Read leases: proof that no other process writes a file while it is read.

A load that reads a file twice (once to check every value, once to write
it: straight into a parameter's memory, or into memory the value before let
go) is only as safe as the file is still: bytes
changed between the two reads would reach the model unchecked. On Linux, a
*read lease* (``fcntl(F_SETLEASE, F_RDLCK)``) gives that proof. While it is
held, another process that opens the file for writing or truncates it is
held by the kernel, and the holder is sent a signal; the writer goes on
once the lease is released, or once ``/proc/sys/fs/lease-break-time``
seconds (45 by default) have passed. A lease is refused when someone has the
file open for writing already, to a user who does not own the file, and on
file systems without leases (network ones): then there is no proof, and the
load reads every value into memory of its own before the first write.

The signal is ``SIGURG``, whose default action is to ignore it (the default
``SIGIO`` would end the process): a program that handles ``SIGURG`` itself
sees one more when a writer waits for a load.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not a POSIX system: no leases
    fcntl = None  # type: ignore[assignment]

#: The signal a lease break sends this process (ignored unless handled).
SIGNAL = getattr(signal, "SIGURG", None)
#: Where Linux keeps how long a lease holds a writer back, in seconds.
BREAK_TIME_FILE = Path("/proc/sys/fs/lease-break-time")
#: Taken off the kernel's time, for the difference between its clock and ours.
MARGIN = 1.0


class Lease:
    """A read lease held on an open file descriptor.

    Examples:
        >>> import os, tempfile
        >>> fd, name = tempfile.mkstemp()
        >>> os.close(fd)
        >>> fd = os.open(name, os.O_RDONLY)
        >>> lease = take(fd)
        >>> lease is None or lease.unchanged()
        True
        >>> if lease is not None:
        ...     lease.release()
        >>> os.close(fd)
    """

    def __init__(self, fd: int, break_time: float) -> None:
        self._fd = fd
        self._since = time.monotonic()
        self._break_time = break_time

    def unchanged(self) -> bool:
        """Whether no other process can have written the file since the lease was taken.

        A writer held back only for as long as the kernel holds it: past the
        break time, a lease a writer asked to break is gone.
        """
        assert fcntl is not None  # a Lease exists only where fcntl does
        try:
            if fcntl.fcntl(self._fd, fcntl.F_GETLEASE) == fcntl.F_RDLCK:
                return True  # no writer has asked
        except OSError:
            return False
        return time.monotonic() - self._since < self._break_time - MARGIN

    def release(self) -> None:
        """Let go of the lease: a writer held back goes on now."""
        assert fcntl is not None
        try:
            fcntl.fcntl(self._fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        except OSError:
            pass  # the descriptor is closed already, which released it


def take(fd: int) -> Lease | None:
    """A read lease on ``fd`` (opened read-only), or ``None`` where none can be
    had: the system has no leases, someone has the file open for writing, the
    user does not own it, or its file system does not lease.

    Examples:
        >>> take(-1) is None
        True
    """
    if fcntl is None or SIGNAL is None or not hasattr(fcntl, "F_SETLEASE"):
        return None
    break_time = _break_time()
    if break_time <= MARGIN:
        return None  # writers are let go at once: a lease proves nothing
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, SIGNAL)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except (OSError, ValueError):  # ValueError: not a descriptor at all
        return None
    return Lease(fd, break_time)


def _break_time() -> float:
    """How long the kernel holds a writer back for a lease, in seconds (0 if unknown)."""
    try:
        return float(BREAK_TIME_FILE.read_text())
    except (OSError, ValueError):
        return 0.0
