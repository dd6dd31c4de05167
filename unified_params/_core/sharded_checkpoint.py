"""Saving and loading a model sharded over processes: each process writes and
reads only the blocks it holds.

A save makes one file, byte for byte what the unsharded model saves. Rank 0
creates the temporary file with the header and its full length; every rank
then writes each of its blocks at the block's place (the first replica of a
replicated block; rank 0 for whole tensors); all ranks report, and rank 0
renames the file into place only when every rank succeeded. No rank holds
more than one block at a time and no tensor travels between processes, so
the processes must see one file system (one machine, or a shared folder).

A load reads each rank's block straight from the file (``box_runs`` gives
the byte runs): the extra memory of a rank is its largest block.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import safetensors_io as st
from .errors import CheckpointError, UnsupportedError, received
from .layouts import aligned_empty, contiguous
from .sharding import Group, Sharding, agree, box_runs, group_of
from .state import Slot

if TYPE_CHECKING:
    from .view import Param


@dataclass(frozen=True)
class Block:
    """A sharded tensor's block on this process, and how to read it."""

    sharding: Sharding
    read: Callable[[], np.ndarray]


def blocks(model_slots: list[Slot]) -> tuple[Group | None, dict[str, Block]]:
    """The process group and the blocks of a model's sharded tensors, by
    canonical key; ``(None, {})`` for a model with no sharded parameter.

    Raises:
        UnsupportedError: A sharded parameter stored in another layout or
            split over several entries (no such torch layer exists).
    """
    found: dict[str, Block] = {}
    for slot in model_slots:
        for param in slot.params:
            sharding = param.sharding()
            if sharding is None:
                continue
            if slot.how != "one" or not param.layout.is_identity:
                raise UnsupportedError(
                    f"{param.path!r} is sharded and stored as {slot.how!r} entries in another layout: "
                    "its blocks are not blocks of the file's tensor. Expected sharded parameters in "
                    "the canonical layout. " + received(path=param.path, how=slot.how)
                )
            found[slot.keys[0]] = Block(sharding, _reader(param))
    return group_of(p for slot in model_slots for p in slot.params) if found else None, found


def _reader(param: Param) -> Callable[[], np.ndarray]:
    return lambda: param.adapter.local(param.native)


def write(
    path: Path,
    entries: list[st.Entry],
    metadata: dict[str, str],
    tick: Callable[[int], None] | None,
    durable: bool,
    group: Group,
    parts: dict[str, Block],
) -> None:
    """Write one safetensors file together with the other ranks (see the module doc)."""
    header = st.header_bytes(entries, metadata)
    error: BaseException | None = None
    tmp: Path | None = None
    if group.rank == 0:
        try:
            tmp, fd = st.create_temp(path)
            try:
                os.pwrite(fd, header, 0)
                os.ftruncate(fd, len(header) + st.entries_bytes(entries))
            finally:
                os.close(fd)
        except BaseException as err:  # every rank must hear of it, or they would wait
            error = err
    agree(group, error, f"Saving {str(path)!r}")
    name = Path(group.broadcast(None if tmp is None else str(tmp)))
    try:
        _write_blocks(name, len(header), entries, tick, durable, group.rank, parts)
    except BaseException as err:
        error = err
    try:
        agree(group, error, f"Saving {str(path)!r}")
    except BaseException:
        if group.rank == 0:
            name.unlink(missing_ok=True)
        raise
    if group.rank == 0:
        try:
            st.commit(name, path, durable)
        except BaseException as err:
            error = err
    agree(group, error, f"Saving {str(path)!r}")


def _write_blocks(
    tmp: Path,
    start: int,
    entries: list[st.Entry],
    tick: Callable[[int], None] | None,
    durable: bool,
    rank: int,
    parts: dict[str, Block],
) -> None:
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise CheckpointError(f"Could not open {str(tmp)!r} to write this rank's blocks: {err}") from err
    try:
        offset = start
        for e in entries:
            part = parts.get(e.name)
            if part is None:
                if rank == 0:
                    _pwrite_all(fd, _raw(contiguous(e.fetch()), e), offset)
            elif part.sharding.writer and not part.sharding.empty:
                itemsize = e.nbytes // max(1, int(np.prod(e.shape)))
                block = _raw(contiguous(part.read()), e, part.sharding.local_shape)
                done = 0
                for first, count in box_runs(e.shape, part.sharding.box):
                    _pwrite_all(fd, block[done : done + count * itemsize], offset + first * itemsize)
                    done += count * itemsize
            offset += e.nbytes
            if tick is not None:
                tick(e.nbytes)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def _raw(array: np.ndarray, e: st.Entry, shape: tuple[int, ...] | None = None) -> memoryview:
    """The bytes of a value checked against its entry's dtype and (block) shape."""
    if array.dtype != st.numpy_dtype(e.dtype) or tuple(array.shape) != (shape or e.shape):
        raise CheckpointError(
            f"Tensor {e.name!r} changed while saving: expected {shape or e.shape} {e.dtype}. "
            + received(shape=array.shape, dtype=str(array.dtype))
        )
    return memoryview(array.reshape(-1).view(np.uint8)).cast("B")  # type: ignore[arg-type]


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


def read_block(reader: st.FileReader, info: st.TensorInfo, sharding: Sharding) -> np.ndarray:
    """This process's block of a tensor in a file, reading only its bytes.

    Raises:
        CheckpointError: The file is shorter than its header said.
    """
    out = aligned_empty(sharding.local_shape, info.dtype)
    if not out.size:
        return out
    view = memoryview(out.reshape(-1).view(np.uint8)).cast("B")  # type: ignore[arg-type]
    itemsize = info.dtype.itemsize
    done = 0
    for first, count in box_runs(info.shape, sharding.box):
        reader.read_into(view[done : done + count * itemsize], info.begin + first * itemsize, info.name)
        done += count * itemsize
    return out
