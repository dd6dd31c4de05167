"""torch.distributed.checkpoint (DCP) folders, converted to and from safetensors.

A DCP folder (``.metadata`` plus ``*.distcp`` files, as ``dcp.save`` writes it
from one or many ranks) is read one tensor at a time: each tensor is loaded
whole, whatever shards it was saved in, by a one-tensor ``dcp.load``, so a
conversion holds one tensor in memory. Writing plans with shape-only (meta)
tensors and reads each tensor from the safetensors file only when DCP's
writer asks for its data (`SavePlanner.resolve_data`), so a conversion the
other way streams too. Both run in one process (``no_dist=True``), also from
inside a distributed job.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..._core.errors import CheckpointError, received
from ..._core.formats import Tensor
from ..._core.layouts import contiguous
from .adapter import tensor_from_numpy, tensor_to_numpy

METADATA = ".metadata"


class DCPFormat:
    """The ``dcp`` checkpoint format (`unified_params.convert`)."""

    name = "dcp"
    title = "torch.distributed.checkpoint folder"

    def recognizes(self, path: Path) -> bool:
        """Whether ``path`` is a DCP folder (it holds a ``.metadata`` file)."""
        return path.is_dir() and (path / METADATA).is_file()

    def tensors(self, path: Path) -> tuple[list[Tensor], list[str]]:
        """The folder's tensors, each read on demand; and the names of entries
        that are not tensors (counters, optimiser settings), which are left out."""
        from torch.distributed.checkpoint import FileSystemReader
        from torch.distributed.checkpoint.metadata import TensorStorageMetadata

        if not self.recognizes(path):
            raise CheckpointError(
                f"{str(path)!r} is no torch.distributed.checkpoint folder (no {METADATA} file in it). "
                "Expected the folder dcp.save wrote. " + received(path=str(path))
            )
        with _quiet():
            metadata = FileSystemReader(str(path)).read_metadata()
        found, skipped = [], []
        for name, info in metadata.state_dict_metadata.items():
            if not isinstance(info, TensorStorageMetadata):
                skipped.append(name)
                continue
            dtype = str(info.properties.dtype).removeprefix("torch.")
            found.append(Tensor(name, tuple(info.size), dtype, _loader(path, name, tuple(info.size), info)))
        return found, skipped

    def write(self, path: Path, tensors: list[Tensor]) -> None:
        """Write ``tensors`` as a DCP folder (a ``.distcp`` file per tensor), reading each
        only when DCP writes it."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint import DefaultSavePlanner, FileSystemWriter

        by_name = {t.name: t for t in tensors}

        class Streaming(DefaultSavePlanner):
            def resolve_data(self, write_item: Any) -> Any:
                tensor = by_name[write_item.index.fqn]
                return tensor_from_numpy(contiguous(np.asarray(tensor.fetch())))

        shapes = {t.name: torch.empty(t.shape, dtype=_torch_dtype(t.dtype), device="meta") for t in tensors}
        # One file per tensor: torch 2.13's writer keeps every tensor of a file alive until the
        # file is done, so one file per tensor is what holds one tensor at a time.
        writer = FileSystemWriter(str(path), single_file_per_rank=False, thread_count=1, overwrite=True)
        with _quiet():
            dcp.save(shapes, storage_writer=writer, planner=Streaming(), no_dist=True)


def _loader(path: Path, name: str, shape: tuple[int, ...], info: Any) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import torch.distributed.checkpoint as dcp

        out = {name: torch.empty(shape, dtype=info.properties.dtype)}
        with _quiet():
            dcp.load(out, checkpoint_id=str(path), no_dist=True)
        return tensor_to_numpy(out[name])

    return load


def _torch_dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise CheckpointError(f"torch has no dtype {name!r}. " + received(dtype=name))
    return dtype


@contextmanager
def _quiet() -> Iterator[None]:
    """DCP warns that it runs in one process: here that is the intent."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*assuming the intent is to", category=UserWarning)
        yield


FORMAT = DCPFormat()
