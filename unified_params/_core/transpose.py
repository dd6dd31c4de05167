"""The bulk copies behind saves, loads and ports, each with the fastest kernel
this process already has: the strided copy of a transposing one (`copy`,
`transposed`) and the plain copy of a large array (`flat_copy`).

A Linear kernel is ``(out, in)`` in the canonical layout and ``(in, out)`` in
Keras, paddle and Flax, so saves, loads and ports copy it through a transposed
view. The kernels at hand, measured on this project's 2-core VMs (float32,
``out`` preallocated, best of 7, time over memcpy's for the same bytes; the
``transposing copy`` rows of docs/benchmarks.md measure them again on each run):

| kernel | 2048 x 2048 | 4096 x 4096 |
|---|---|---|
| numpy, 64 x 512 tiles on the cores (`tiled`) | 6.0-10.9x | 4.6-6.5x |
| torch ``copy_`` from the view, in 2048 x 64 tiles (`torch_copy`) | 1.8-2.1x | 1.3-1.5x |
| torch ``out.copy_(a.t())``, the whole view at once | 4.0-7.5x | 3.2-4.9x |
| ``tf.transpose`` over DLPack, then a copy into ``out`` (`tf_transpose`) | 2.9-7.6x | 2.3-3.3x |
| ``paddle.transpose`` over DLPack, then a copy into ``out`` | 25-33x | 11-20x |

So, among the frameworks already imported (none is ever imported for this:
torch's import alone takes a second): torch's kernel (any strides and dtype,
in place), else TensorFlow's where the array suits it (aligned, writable,
the transpose of contiguous memory, from `TF_SMALLEST` elements), else the
tiles; paddle's transpose is slower than the tiles and is never used. Which
is faster depends on the machine (on an AVX2 VM, TensorFlow's kernel took
88 ms for 4096 x 4096 and torch's, whole, 39 ms; on the AVX-512 VMs
TensorFlow's beat torch's whole copy), so where both take a large array,
the process times each on its first copies and keeps the faster (`Race`).
Measured through whole ports of 16 Linear(4096, 4096) layers (1 GiB) in one
process, best of 2: torch -> keras 0.905 s with the tiles, 0.592 s with
torch's whole copy, 0.484 s with TensorFlow's kernel; torch -> paddle 0.646
s, 0.428 s, 0.346 s; keras -> torch 0.661 s, 0.511 s, 0.502 s. With torch's
copy in tiles (best of 3, another run): torch -> paddle 0.349 s, torch ->
keras 0.376 s, keras -> torch 0.350 s.

Where the copy may be fresh memory (a Keras variable adopts the buffer it is
handed), `transposed` keeps TensorFlow's result itself: 8.2 ms for a 4096 x
4096 float32 kernel, against 19.1 ms for TensorFlow's kernel copied into
preallocated memory (torch -> keras port of the 16 layers above: 0.26 s,
from 0.35 s). TensorFlow's kernel reads a read-only source (a Keras
variable's value) through `writable_alias`. Contiguous copies of
`PARALLEL_BYTES` or more go through `flat_copy`, on all cores.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .recycling import ALIGNMENT, aligned_empty, touch_pages

#: The numpy kernel copies bands of BAND rows (one per thread), each in blocks of
#: TILE_ROWS x TILE_COLS: a block reads TILE_ROWS contiguous values from each of
#: TILE_COLS source rows, so both sides stay in cache. Measured on a 4096 x 4096
#: float32 kernel: 1.8x faster than square 512 x 512 tiles.
BAND, TILE_ROWS, TILE_COLS = 512, 64, 512
#: Same-size integer types: a copy moves bits, so any dtype goes as one of these.
_BITS = {1: np.uint8, 2: np.int16, 4: np.int32, 8: np.int64}

Kernel = Callable[[np.ndarray, np.ndarray], None]
#: Below this many elements TensorFlow's op dispatch (about 0.2 ms) costs more
#: than the tiles' whole copy (measured at 256 x 256: 0.21 ms against 0.07 ms).
TF_SMALLEST = 512 * 512
#: What TensorFlow's kernel takes (numpy exports these through DLPack).
_TF_DTYPES = tuple(np.dtype(t) for t in ("float32", "float64", "float16", "int32", "int64", "int8", "uint8"))


def copy(array: np.ndarray, out: np.ndarray) -> None:
    """Copy a strided 2-D ``array`` into the C-contiguous ``out`` (same shape
    and dtype) with the fastest kernel in the process that takes it.

    Examples:
        >>> a = np.arange(6.0).reshape(2, 3)
        >>> out = np.empty((3, 2))
        >>> copy(a.T, out)
        >>> out.tolist()
        [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    """
    takers = [kernel for kernel, takes in _loaded() if takes(array)]
    if not takers:
        tiled(array, out)
    elif len(takers) == 1 or array.size < RACE_FROM:
        takers[0](array, out)
    else:
        _INTO.run(takers, array.size, lambda kernel: kernel(array, out))


def fastest() -> Kernel:
    """The kernel `copy` tries first in this process now: once the frameworks'
    kernels have been timed on large copies (`Race`), the faster; before, torch's
    once torch is imported, else TensorFlow's once TensorFlow is, else the tiles.

    Examples:
        >>> fastest().__name__ in ("torch_copy", "tf_transpose", "tiled")
        True
    """
    loaded = [kernel for kernel, _ in _loaded()]
    return _INTO.winner(loaded) or next(iter(loaded), tiled)


#: From this many elements (4 MiB of float32) a copy that two frameworks' kernels
#: take is timed (`Race`); below, set-up costs blur the kernels' speeds.
RACE_FROM = 1 << 20
#: Copies timed per kernel before the faster is kept (the least of them counts).
SAMPLES = 2


class Race:
    """Picks the faster of several kernels on this machine by timing the work itself.

    Which kernel is the fastest depends on the machine, not only on the
    frameworks loaded: for a 4096 x 4096 float32 kernel, TensorFlow's transpose
    (its result kept) took 8.2 ms and torch's whole copy 19.6 ms on an AVX-512 VM of
    this project, and 74 ms against 39 ms on an AVX2 one. So
    the first large copies of a process go to each kernel in turn, `SAMPLES`
    of them each, timed per element (no extra copy and no extra memory), and
    later ones to the kernel whose best time was the least. Each copy is
    right whichever kernel makes it; only the speed is at stake.

    Examples:
        >>> race = Race()
        >>> def slow(): time.sleep(0.002)
        >>> def fast(): pass
        >>> for _ in range(6):
        ...     race.run([slow, fast], 1, lambda kernel: kernel())
        >>> race.winner([slow, fast]).__name__
        'fast'
    """

    def __init__(self) -> None:
        self._best: dict[Callable[..., Any], list[float]] = {}
        self._lock = threading.Lock()

    def run(
        self,
        kernels: list[Any],
        size: int,
        call: Callable[[Any], None],
        before: Callable[[Any], None] | None = None,
    ) -> None:
        """Call ``call`` with one of ``kernels`` (a copy of ``size`` elements);
        ``before(kernel)``, when given, runs untimed ahead of a timed call: what
        the kernel needs that is not its own work."""
        with self._lock:
            untimed = [k for k in kernels if len(self._best.get(k, ())) < SAMPLES]
            kernel = untimed[0] if untimed else min(kernels, key=lambda k: min(self._best[k]))
        if not untimed:
            call(kernel)
            return
        if before is not None:
            before(kernel)
        start = time.perf_counter()
        call(kernel)
        elapsed = (time.perf_counter() - start) / size
        with self._lock:
            self._best.setdefault(kernel, []).append(elapsed)

    def winner(self, kernels: list[Any]) -> Any | None:
        """The fastest of ``kernels`` once each was timed enough, else None."""
        with self._lock:
            if not kernels or any(len(self._best.get(k, ())) < SAMPLES for k in kernels):
                return None
            return min(kernels, key=lambda k: min(self._best[k]))


_INTO = Race()  # copies into memory given (`copy`)
_FRESH = Race()  # copies that may be fresh memory (`transposed`)
_ALONGSIDE = Race()  # the same, made beside other work on the cores (`transposed(alongside=True)`)


def _loaded() -> list[tuple[Kernel, Callable[[np.ndarray], bool]]]:
    """The kernels of the frameworks imported already, fastest first (measured: see above)."""
    found: list[tuple[Kernel, Callable[[np.ndarray], bool]]] = []
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "from_numpy"):
        found.append((torch_copy, _torch_takes))
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "transpose"):
        found.append((tf_transpose, _tf_takes))
    return found


def tiled(array: np.ndarray, out: np.ndarray) -> None:
    """numpy's kernel: the copy in cache-sized tiles, bands of rows in parallel.

    Examples:
        >>> out = np.empty((3, 2), "float32")
        >>> tiled(np.arange(6, dtype="float32").reshape(2, 3).T, out)
        >>> out[2].tolist()
        [2.0, 5.0]
    """
    from .parallel import run_all

    rows, cols = array.shape

    def band(first: int) -> None:
        last = min(first + BAND, rows)
        for col in range(0, cols, TILE_COLS):
            for row in range(first, last, TILE_ROWS):
                end = min(row + TILE_ROWS, last)
                out[row:end, col : col + TILE_COLS] = array[row:end, col : col + TILE_COLS]

    run_all(band, range(0, rows, BAND))


#: torch's copy of a large 2-D strided view goes in tiles of ``out`` of at most
#: TORCH_TILE_ROWS rows and at least TORCH_TILE_COLS columns, TORCH_TILE elements
#: each. Whole, torch 2.13 copies a transposed view of contiguous memory on one
#: core (its blocked transpose, from 360 x 360 elements); a tile is copied by its
#: element-wise kernel, on all cores above 32,768 elements (`ONE_CORE_TILE`, its
#: grain), and a tile's rows of the source (each TORCH_TILE_COLS values of one
#: source row) stay in cache. Measured on a 2-core AVX-512 VM (best of 7,
#: float32, into preallocated memory; whole / in 2048 x 64 tiles / TensorFlow's
#: kernel into ``out``): 2048 x 2048 4.6 / 2.0 / 6.7 ms, 4096 x 4096 60 / 16 /
#: 30 ms, 4096 x 11008 165 / 78 / 77 ms and its transpose 144 / 42 / 65 ms;
#: 1024 x 128 and 512 x 256 tiles took up to 1.5x as long, tiles of 32,768
#: elements (one core) 2-3x; int16 and int64 bits tile alike (4096 x 4096:
#: 41 / 16 ms, 65 / 38 ms).
TORCH_TILE_ROWS, TORCH_TILE_COLS, TORCH_TILE = 2048, 64, 1 << 17
#: Elements of a tile torch copies on one core (512 x 64): `torch_copy_one_core`.
ONE_CORE_TILE = 1 << 15


def torch_copy(array: np.ndarray, out: np.ndarray) -> None:
    """torch's kernel, on the arrays' own memory (no tensor is allocated):
    ``Tensor.copy_`` from a tensor over the strided view, as bits of a
    same-size integer type (so bfloat16, float16 and bool copy exactly); a
    large 2-D view in tiles (`TORCH_TILE_ROWS`), each on all cores.

    Examples:
        >>> import torch
        >>> out = np.empty((3, 2), "float32")
        >>> torch_copy(np.arange(6, dtype="float32").reshape(2, 3).T, out)
        >>> out[2].tolist()
        [2.0, 5.0]
    """
    _torch_tiles(array, out, TORCH_TILE)


def torch_copy_one_core(array: np.ndarray, out: np.ndarray) -> None:
    """`torch_copy` on one core, in tiles of `ONE_CORE_TILE` elements: for a
    copy made beside other work (a save's writes), which keeps the other cores.
    In a save of 64 Linear(2048, 2048) layers (1 GiB to tmpfs, median of six
    rounds, the copies on a helper thread beside the writes), paddle's took
    690 ms with this kernel, 888 ms with `torch_copy`'s tiles on both cores,
    1,042 ms with torch's whole-view copy and 855 ms with TensorFlow's kernel;
    Keras' 770, 1,032, 1,056 and 898 ms.

    Examples:
        >>> import torch
        >>> out = np.empty((3, 2), "float32")
        >>> torch_copy_one_core(np.arange(6, dtype="float32").reshape(2, 3).T, out)
        >>> out[2].tolist()
        [2.0, 5.0]
    """
    _torch_tiles(array, out, ONE_CORE_TILE)


def _torch_tiles(array: np.ndarray, out: np.ndarray, tile: int) -> None:
    """``out`` copied from ``array`` by torch; a 2-D strided view of more than
    ``tile`` elements in tiles of about ``tile`` elements each, at most
    `TORCH_TILE_ROWS` rows and at least `TORCH_TILE_COLS` columns of ``out``."""
    import torch

    bits = _BITS[array.dtype.itemsize]
    with warnings.catch_warnings():  # a read-only source is only read
        warnings.simplefilter("ignore", UserWarning)
        source = torch.from_numpy(array.view(bits))
    target = torch.from_numpy(out.view(bits))
    if array.ndim != 2 or array.size <= tile or array.flags.c_contiguous:
        target.copy_(source)
        return
    rows, cols = array.shape
    down = min(rows, TORCH_TILE_ROWS, max(1, tile // TORCH_TILE_COLS))
    across = max(TORCH_TILE_COLS, tile // down)
    for row in range(0, rows, down):
        for col in range(0, cols, across):
            target[row : row + down, col : col + across].copy_(source[row : row + down, col : col + across])


def tf_transpose(array: np.ndarray, out: np.ndarray) -> None:
    """TensorFlow's kernel: ``tf.transpose`` of a tensor over the untransposed
    array (DLPack, no copy), its result copied into ``out``. Only for a
    transposed view of a 64-byte aligned C-contiguous array (TF's kernels
    abort the process on unaligned memory).

    Examples:
        >>> import paddle, tensorflow
        >>> from unified_params._core.layouts import aligned_empty
        >>> a = aligned_empty((2, 3), np.float32)
        >>> a[...] = np.arange(6).reshape(2, 3)
        >>> out = np.empty((3, 2), np.float32)
        >>> tf_transpose(a.T, out)  # called directly: `copy` uses it from TF_SMALLEST elements
        >>> out[2].tolist()
        [2.0, 5.0]
    """
    flat_copy(_tf_transposed(array), out)


def transposed(array: np.ndarray, *, alongside: bool = False) -> np.ndarray:
    """A fresh, C-contiguous, 64-byte aligned copy of a strided 2-D ``array``:
    where TensorFlow's kernel takes it, its result itself (TensorFlow's memory,
    held by no one else), so the copy into ``out`` that `tf_transpose` makes
    is saved; where torch's takes it too, whichever of the two is faster on
    this machine (`Race`). A new block's first touch (its page faults) is a
    cost of the memory, not of the kernel: within a write of many values the
    memory comes back from the value before (`recycling`), so torch's copy is
    timed into memory whose pages exist (TensorFlow's result, from its own
    allocator, is timed as it comes). Timed with the faults, torch's copy lost
    to TensorFlow's on an AVX2 VM and every port of 16 Linear(4096, 4096)
    layers into Keras took 1.00-1.48 s; with torch's copy, the first took
    1.15-1.47 s and each one after 565-654 ms.

    ``alongside``: the copy is made on a helper thread while other work runs
    (a save's file writes). Beside that work the kernels' speeds differ from
    their speeds alone, and which wins depends on the machine, so such copies
    are raced apart from the others, and torch's copy there runs on one core
    (`torch_copy_one_core`), leaving the others to that work. On an AVX2 VM,
    64 transposes of a 2048 x 2048 float32 kernel beside 1 GiB of writes to
    tmpfs took 1217 and 956 ms with TensorFlow's kernel, 760 and 702 ms with
    torch's (the writes alone 567-791 ms). On an AVX-512 VM with a 260 MiB L3, in a Keras save of 64
    Linear(2048, 2048) layers to tmpfs, TensorFlow's result took 7.5-11.0 ms
    per kernel beside the writes and torch's copy 10.9-12.3 ms; the save took
    414-472 ms with TensorFlow's kernel and 585-676 ms with torch's (the
    writes alone 369-386 ms); over six rounds after saves of smaller models,
    median 384 ms against 567 ms (the writes alone 381 ms). Single rounds of
    either save took up to 2.1 s there, and of the writes alone up to 1.7 s:
    read a save's time against the writes', over several rounds. (Those
    figures are of torch's whole-view copy, on one core too; its one-core
    tiles beat it beside the writes: see `torch_copy_one_core`.)

    Examples:
        >>> transposed(np.arange(6.0).reshape(2, 3).T).tolist()
        [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    """
    race, torch_fresh = (_ALONGSIDE, _torch_one_core_fresh) if alongside else (_FRESH, _torch_fresh)
    torch_takes = "torch" in sys.modules and _torch_takes(array)
    found: list[np.ndarray | None] = []
    if "tensorflow" not in sys.modules or not _tf_takes(array):
        found.append(torch_fresh(array) if alongside and torch_takes else _into_fresh(array))
    elif array.size < RACE_FROM or not torch_takes:
        found.append(_tf_kept(array))
    else:
        # Memory for torch's copy whose pages exist: the race times kernels, not first touches.
        ready: list[np.ndarray] = []

        def before(make: Any) -> None:
            if make is torch_fresh:
                ready.append(touch_pages(aligned_empty(array.shape, array.dtype)))

        race.run([_tf_kept, torch_fresh], array.size, lambda make: found.append(make(array, *ready)), before)
    return _into_fresh(array) if found[0] is None else found[0]  # None: TF's result unaligned


def _tf_kept(array: np.ndarray) -> np.ndarray | None:
    """TensorFlow's transposed result itself, if it is 64-byte aligned."""
    result = _tf_transposed(array)
    return writable_alias(result) if result.ctypes.data % ALIGNMENT == 0 else None


def _fresh_by(kernel: Kernel) -> Callable[..., np.ndarray]:
    """A copy into fresh aligned memory (or ``out``, when given) by ``kernel``
    (one function per kernel: `Race` keys)."""

    def fresh(array: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = aligned_empty(array.shape, array.dtype) if out is None else out
        kernel(array, out)
        return out

    return fresh


def _tf_transposed(array: np.ndarray) -> np.ndarray:
    """``tf.transpose`` over the memory of ``array.T``, as a read-only array on TensorFlow's result."""
    import tensorflow as tf

    source = tf.experimental.dlpack.from_dlpack(writable_alias(array.T).__dlpack__())
    return np.from_dlpack(tf.transpose(source))


def writable_alias(array: np.ndarray) -> np.ndarray:
    """``array`` itself when writable, else a writable alias of its memory.

    numpy's DLPack export refuses a read-only array (a Keras variable's value
    read through DLPack is one), and arrays on TensorFlow's results come
    read-only. The alias is for memory nothing writes through it: a source
    TensorFlow's kernel only reads, or a result no one else holds.

    Examples:
        >>> a = np.arange(3.0)
        >>> a.flags.writeable = False
        >>> alias = writable_alias(a)
        >>> alias.flags.writeable, np.shares_memory(alias, a)
        (True, True)
    """
    if array.flags.writeable:
        return array
    return np.asarray(_Alias(array))


class _Alias:
    """Presents an array's memory through the array interface, marked writable;
    keeps the array (and so its memory) alive."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.__array_interface__ = {
            "shape": array.shape,
            "typestr": array.dtype.str,
            "descr": array.dtype.descr,
            "data": (array.ctypes.data, False),
            "strides": array.strides,
            "version": 3,
        }


def _tf_takes(array: np.ndarray) -> bool:
    """Whether `tf_transpose` may read this view (see its conditions)."""
    base = array.T
    return (
        array.size >= TF_SMALLEST
        and base.flags.c_contiguous
        and base.ctypes.data % 64 == 0
        and array.dtype in _TF_DTYPES
    )


#: From this many bytes a contiguous copy goes through `flat_copy`'s parallel
#: kernel; below, numpy's one-thread copy is done before a second thread starts.
PARALLEL_BYTES = 4 << 20


def flat_copy(array: np.ndarray, out: np.ndarray) -> None:
    """Copy a C-contiguous ``array`` into ``out`` (same shape and dtype) on all cores.

    ``np.copyto`` uses one core, and one core does not saturate this
    machine's memory: measured over 16 arrays of 64 MiB (float32, 2 cores,
    ``out`` preallocated), torch's ``copy_`` (two threads) takes 0.75x
    ``np.copyto``'s time and numpy in two bands on the library's pool 0.83x.
    So torch's when torch is imported already, else the bands.

    Examples:
        >>> out = np.empty(6, "float32")
        >>> flat_copy(np.arange(6, dtype="float32"), out)
        >>> out.tolist()
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    if array.nbytes < PARALLEL_BYTES or not array.flags.c_contiguous or not out.flags.c_contiguous:
        np.copyto(out, array)
        return
    torch = sys.modules.get("torch")
    source, target = array.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8)
    if torch is not None and hasattr(torch, "from_numpy"):
        torch_copy(source, target)  # the same kernel, on contiguous bytes
        return
    from .parallel import run_all, workers

    step = -(-source.size // workers())

    def band(first: int) -> None:
        np.copyto(target[first : first + step], source[first : first + step])

    run_all(band, range(0, source.size, step))


def _torch_takes(array: np.ndarray) -> bool:
    """Whether ``torch.from_numpy`` reads this view (no negative strides, a plain dtype)."""
    return (
        array.dtype.itemsize in _BITS
        and array.dtype.kind in "biufV"
        and all(s >= 0 for s in array.strides)
        and array.dtype.names is None
    )


_into_fresh = _fresh_by(copy)  # by whichever kernel `copy` picks
_torch_fresh = _fresh_by(torch_copy)  # what `_tf_kept` races
_torch_one_core_fresh = _fresh_by(torch_copy_one_core)  # what it races beside other work
