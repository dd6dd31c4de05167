"""Sharded parameters: which block of a global tensor this process holds, and
the rules for reading, writing, drawing and storing only that block.

A sharded parameter (torch's DTensor under ``fully_shard``) has a global
shape, the one every call reports, and on each process one *block* of it: a
box of contiguous ranges, one per axis (``Shard(d)`` cuts axis ``d`` into
``torch.chunk`` pieces; ``Replicate()`` keeps it whole). An adapter describes
the block with a `Sharding`; everything below is framework-free arithmetic on
boxes:

- a write ``p[index] = v`` touches only the part of the index inside the box
  (`local_write`), so every process writes its own block and no process
  writes anything twice;
- a seeded initialisation draws only the stream chunks that overlap the box
  (`fill_box`), bitwise the values an unsharded model gets;
- a save writes each block at its place in the file (`box_runs` gives the
  byte runs), a load reads only the block.

Processes agree through a `Group` the adapter provides (the framework's own
collectives): one rank names the file, all report success before it commits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .errors import UnsupportedError, received


@dataclass(frozen=True)
class Sharding:
    """This process's block of a sharded variable, in the variable's native axes.

    Attributes:
        placements: The framework's own description (torch: ``(Shard(dim=0),)``).
        offsets: Where the block starts, per axis.
        local_shape: The block's shape (zero along an axis when this process
            holds nothing of a tensor smaller than the number of processes).
        writer: Whether this process stores the block when saving: the first
            of the processes that hold the same block (``Replicate()``).

    Examples:
        >>> s = Sharding(("Shard(dim=0)",), (3, 0), (2, 4), True)
        >>> s.box
        (slice(3, 5, None), slice(0, 4, None))
    """

    placements: tuple[Any, ...]
    offsets: tuple[int, ...]
    local_shape: tuple[int, ...]
    writer: bool

    @property
    def box(self) -> tuple[slice, ...]:
        """The block as an index of the global array."""
        return tuple(slice(o, o + n) for o, n in zip(self.offsets, self.local_shape, strict=True))

    @property
    def empty(self) -> bool:
        """Whether this process holds no element."""
        return 0 in self.local_shape


@dataclass(frozen=True)
class Local:
    """A value read for a sharded parameter: only this process's block of it."""

    block: np.ndarray
    sharding: Sharding


class Group(Protocol):
    """The processes that hold a sharded model, through the framework's collectives.

    Every member calls each method in the same order (they are collective).
    """

    @property
    def rank(self) -> int:
        """This process's rank in the group."""
        ...

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (a small picklable object), on every rank."""
        ...

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (a small picklable object), in rank order, on every rank."""
        ...


def group_of(params: Iterable[Any]) -> Group | None:
    """The process group of the first sharded parameter (views) among ``params``,
    or None when none is sharded."""
    for param in params:
        if param.sharding() is not None:
            return param.adapter.group(param.native)
    return None


def agree(group: Group, error: BaseException | None, what: str) -> None:
    """Raise on every rank if any rank failed (``error``), so no rank goes on
    with a half-done collective operation.

    Raises:
        The rank's own error where it failed; elsewhere an `UnsupportedError`
        naming the ranks that failed and why.
    """
    failures = group.gather(None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    bad = [(rank, why) for rank, why in enumerate(failures) if why is not None]
    if bad:
        detail = "; ".join(f"rank {rank}: {why}" for rank, why in bad)
        raise UnsupportedError(f"{what} failed on another rank, so it is abandoned here too: {detail}")


def local_write(
    index: tuple[Any, ...], shape: tuple[int, ...], sharding: Sharding, path: str
) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """The part of a basic index (integers and slices, one per axis) inside this
    process's block: ``(index into the block, index into the value)``, or
    ``None`` when the block holds none of it.

    Raises:
        UnsupportedError: An index array or mask: its selection is not a box.

    Examples:
        >>> s = Sharding((), (3, 0), (2, 4), True)
        >>> local_write((4, slice(None)), (5, 4), s, "w")
        ((1, slice(0, 4, 1)), (slice(0, 4, None),))
        >>> local_write((0, 0), (5, 4), s, "w") is None
        True
    """
    full = _full_index(index, len(shape), path)
    block: list[Any] = []
    value: list[Any] = []
    for item, n, start, size in zip(full, shape, sharding.offsets, sharding.local_shape, strict=True):
        if isinstance(item, int):
            position = item + n if item < 0 else item
            if not start <= position < start + size:
                return None
            block.append(position - start)
            continue
        first, stop, step = item.indices(n)
        picked = range(first, stop, step)
        inside = _inside(picked, start, start + size)
        if inside is None:
            if len(picked):
                return None
            block.append(slice(0, 0))
            value.append(slice(0, 0))
            continue
        lo, hi = inside
        g_lo, g_hi = picked[lo] - start, picked[hi] - start
        block.append(slice(g_lo, g_hi + 1 if step > 0 else (None if g_hi == 0 else g_hi - 1), step))
        value.append(slice(lo, hi + 1))
    return tuple(block), tuple(value)


def _inside(picked: range, lo: int, hi: int) -> tuple[int, int] | None:
    """The first and last positions k with ``lo <= picked[k] < hi`` (they form
    one run: ``picked`` is monotonic), or None."""
    if not len(picked):
        return None
    step = picked.step
    if step > 0:
        first = max(0, -(-(lo - picked.start) // step))
        last = min(len(picked) - 1, (hi - 1 - picked.start) // step)
    else:
        first = max(0, -(-(picked.start - (hi - 1)) // -step))
        last = min(len(picked) - 1, (picked.start - lo) // -step)
    return (first, last) if first <= last else None


def _full_index(index: tuple[Any, ...], ndim: int, path: str) -> list[Any]:
    """The index with ``...`` expanded and missing axes as full slices."""
    items = list(index)
    if any(item is None for item in items) or not all(
        item is Ellipsis or isinstance(item, (slice, int, np.integer)) and not isinstance(item, bool)
        for item in items
    ):
        raise UnsupportedError(
            f"Cannot write {path!r} at an index array, mask or new axis while it is sharded: each "
            "process writes the part of a box of the global tensor it holds. Expected integers and "
            "slices (p[2:4, 0] = v), or the whole value with p.set(value). " + received(index=index)
        )
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (ndim - len(items) + 1)
    items += [slice(None)] * (ndim - len(items))
    return [int(item) if isinstance(item, (int, np.integer)) else item for item in items]


def box_runs(shape: tuple[int, ...], box: tuple[slice, ...]) -> Iterator[tuple[int, int]]:
    """The box's elements in a C-ordered array of ``shape``, as ``(first element,
    count)`` runs, in the order the box's own C-ordered elements come.

    Examples:
        >>> list(box_runs((4, 3), (slice(1, 3), slice(0, 3))))  # whole rows: one run
        [(3, 6)]
        >>> list(box_runs((4, 3), (slice(0, 2), slice(1, 2))))  # a column: one run per row
        [(1, 1), (4, 1)]
    """
    lengths = [b.stop - b.start for b in box]
    if not shape:
        yield 0, 1
        return
    if 0 in lengths:
        return
    # Axes after `cut` are whole, so each index of the axes before it is one run.
    cut = len(shape) - 1
    while cut > 0 and lengths[cut] == shape[cut]:
        cut -= 1
    inner = math.prod(shape[cut + 1 :])
    strides = [math.prod(shape[k + 1 :]) for k in range(len(shape))]
    count = lengths[cut] * inner
    for outer in np.ndindex(*lengths[:cut]):
        first = sum((b.start + i) * s for b, i, s in zip(box, outer, strides, strict=False))
        yield first + box[cut].start * strides[cut], count


def fill_box(
    block: np.ndarray,
    shape: tuple[int, ...],
    box: tuple[slice, ...],
    chunk: int,
    draw: Callable[[int, np.ndarray], None],
) -> None:
    """Fill ``block`` with the box's part of a tensor whose flat C-ordered values
    come in chunks of ``chunk`` elements, chunk ``c`` drawn by ``draw(c, out)``
    from its own stream. Only the chunks that overlap the box are drawn, each
    whole (a stream's values depend on how many are drawn).

    Examples:
        >>> whole = np.arange(12.0).reshape(4, 3)
        >>> def draw(c, out): out[:] = whole.reshape(-1)[c * 5 : c * 5 + out.size]
        >>> block = np.empty((2, 1))
        >>> fill_box(block, (4, 3), (slice(1, 3), slice(2, 3)), 5, draw)
        >>> block.ravel().tolist()
        [5.0, 8.0]
    """
    total = math.prod(shape)
    flat = block.reshape(-1)
    done = 0
    scratch: np.ndarray | None = None
    chunk_of = -1
    for first, count in box_runs(shape, box):
        while count:
            c = first // chunk
            if c != chunk_of:
                size = min(chunk, total - c * chunk)
                if scratch is None or scratch.size < size:
                    scratch = np.empty(min(chunk, total), dtype=block.dtype)
                draw(c, scratch[:size])
                chunk_of = c
            start = first - c * chunk
            n = min(count, chunk - start)
            assert scratch is not None
            flat[done : done + n] = scratch[start : start + n]
            done, first, count = done + n, first + n, count - n
