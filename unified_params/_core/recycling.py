"""Memory for fresh copies, used again once everything holding it lets it go.

A write that hands a framework a fresh copy of each value (TensorFlow's
variables adopt the tensor they are assigned) makes the variable let its old
memory go, and the next value needs new memory. New memory costs the first
touch of every page: on an AVX2 VM, copying 8 x 64 MiB into new memory took
585-637 ms, into memory used before 79-104 ms. Within `scope` (one write of
many values), memory that `aligned_empty` handed out comes back here when its
last holder lets it go, and serves the next request of the same size. The
memory kept waiting is at most the largest request of the scope (peak memory
stays within one tensor of a plain write), and is freed when the outermost
scope ends. Outside a scope, memory comes from numpy and goes back to it as
usual.

Blocks of `MAPPED_FROM` bytes or more are mapped directly, in ordinary
pages. numpy asks the kernel for huge pages, which are faster to touch where
free memory is in large pieces but can stall while the kernel gathers them:
for 16 x 64 MiB first written into a Keras model, 9.6-11.5x memcpy's time in
numpy's memory against 5.1-5.6x in mapped memory (and 5.2-6.8x in
TensorFlow's own). Smaller blocks come from numpy, whose allocator (glibc's)
keeps blocks up to 32 MiB that were freed and hands them out again, already
touched, to later requests of the process.

Memory comes back only when nothing holds it any more: no tensor, no array,
no view. So a value once handed out is never written again while anyone can
read it.
"""

from __future__ import annotations

import math
import mmap
import threading
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from .nesting import Nesting

#: Alignment, in bytes, of the arrays `aligned_empty` makes (TensorFlow's and
#: Eigen's kernels assume 64; AVX-512 loads are fastest there).
ALIGNMENT = 64
#: Smaller requests are not worth keeping: numpy's allocator reuses small blocks.
RECYCLE_FROM = 1 << 20
#: From this size, blocks are mapped directly (glibc maps larger ones itself and
#: unmaps them when freed, so keeping them in its heap is no option).
MAPPED_FROM = 32 << 20

_lock = threading.RLock()  # re-entrant: a block let go inside the lock (a collection) takes it again
_largest = 0  # the largest request of the open scopes, in bytes: the most memory kept waiting
_kept = 0  # bytes waiting in `_free`
_free: dict[int, list[np.ndarray]] = {}  # size of the raw block -> blocks nothing holds


def _forget() -> None:
    """As the last scope closes: let numpy free every block kept waiting."""
    global _largest, _kept
    _free.clear()
    _largest = _kept = 0


_scopes = Nesting(closed=_forget, lock=_lock)  # scopes open, over all threads


def scope() -> AbstractContextManager[None]:
    """Within it, large arrays from `aligned_empty` are reused once let go.

    Examples:
        >>> with scope():
        ...     a = aligned_empty((1024, 1024), np.float32)
        ...     where = a.ctypes.data
        ...     del a  # let go: its memory waits for the next request of its size
        ...     aligned_empty((1024, 1024), np.float32).ctypes.data == where
        True
    """
    return _scopes.scope()


def aligned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte
    boundary; within a `scope`, in memory let go earlier when there is some.

    Examples:
        >>> aligned_empty((3, 5), np.float32).ctypes.data % ALIGNMENT
        0
    """
    global _largest, _kept
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    size = nbytes + ALIGNMENT
    raw: np.ndarray | None = None
    base: Any = None
    if _scopes.depth and nbytes >= RECYCLE_FROM:
        with _lock:
            _largest = max(_largest, size)
            waiting = _free.get(size)
            if waiting:
                raw = waiting.pop()
                _kept -= size
        if raw is None:
            raw = _mapped(size)
        base = np.asarray(_Block(raw))
    else:
        base = raw = np.empty(size, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return base[start : start + nbytes].view(dtype).reshape(shape)


def touch_pages(array: np.ndarray) -> np.ndarray:
    """``array`` (C-contiguous), once every page of its memory exists: one byte
    of each is written (new memory's pages are made on their first touch).

    Examples:
        >>> a = touch_pages(aligned_empty((1024, 1024), np.float32))
        >>> a.shape
        (1024, 1024)
    """
    raw = array.reshape(-1).view(np.uint8)
    raw[:: mmap.PAGESIZE] = 0
    return array


def _mapped(size: int) -> np.ndarray:
    """``size`` bytes of new memory for a block: newly mapped and page-aligned
    from `MAPPED_FROM` bytes (where the system has private anonymous mappings),
    else numpy's."""
    if size < MAPPED_FROM or not hasattr(mmap, "MAP_PRIVATE"):
        return np.empty(size, dtype=np.uint8)
    return np.frombuffer(mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS), np.uint8)


class _Block:
    """A raw block presented to numpy, which returns to `_free` when the last
    array over it is gone, if a scope is open and room is left."""

    __slots__ = ("raw",)

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw

    @property
    def __array_interface__(self) -> dict[str, Any]:
        return {
            "shape": self.raw.shape,
            "typestr": "|u1",
            "data": (self.raw.ctypes.data, False),
            "version": 3,
        }

    def __del__(self) -> None:
        global _kept
        scopes = _scopes  # None while the interpreter shuts down
        if scopes is None or not scopes.depth:  # no scope: numpy frees it
            return
        size = self.raw.nbytes
        with _lock:
            if scopes.depth and _kept + size <= _largest:
                _free.setdefault(size, []).append(self.raw)
                _kept += size


def active() -> bool:
    """Whether a scope is open (in any thread).

    Examples:
        >>> with scope():
        ...     active()
        True
    """
    return _scopes.depth > 0


def waiting_bytes() -> int:
    """Bytes let go and kept for the next request (0 outside a scope).

    Examples:
        >>> waiting_bytes()
        0
    """
    return _kept
