"""torch's sharded parameters (DTensor, as ``fully_shard`` makes them), for the core.

A DTensor reports its global shape; each rank holds one block (``to_local()``).
Reading the whole value is an all-gather (``full_tensor()``); writes go to the
block, through the core's box arithmetic
(`unified_params._core.sharding`). Placements other than ``Shard(d)`` and
``Replicate()`` (a pending reduction, a strided shard) are refused: their
blocks are not boxes of the global tensor.
"""

from __future__ import annotations

from typing import Any

import torch

from ..._core.errors import UnsupportedError, received
from ..._core.sharding import Sharding
from . import internals

SUPPORTED = "DTensor parameters placed with Shard(dim) and Replicate() (torch's fully_shard)"


def is_sharded(var: Any) -> bool:
    """Whether ``var`` is a DTensor (without importing torch.distributed)."""
    cls = internals.dtensor_type()
    return cls is not None and isinstance(var, cls)


def sharding(var: Any) -> Sharding | None:
    """This rank's block of a DTensor, or None for an ordinary tensor.

    Raises:
        UnsupportedError: A placement whose block is not a box.
    """
    if not is_sharded(var):
        return None
    from torch.distributed.tensor import Replicate, Shard

    placements = tuple(var.placements)
    odd = [p for p in placements if type(p) not in (Shard, Replicate)]
    if odd:
        raise UnsupportedError(
            f"A DTensor placed as {placements} holds values that are not one box of the global "
            f"tensor on each rank ({odd[0]}). Expected {SUPPORTED}; redistribute it first "
            "(dtensor.redistribute(mesh, [Shard(0)])). " + received(placements=str(placements))
        )
    coordinate = var.device_mesh.get_coordinate()
    if coordinate is None:  # this rank is outside the parameter's mesh: it holds nothing
        zeros = (0,) * var.ndim
        return Sharding(placements, zeros, zeros, False)
    offsets, sizes = internals.local_chunk(var)
    first_replica = all(c == 0 for c, p in zip(coordinate, placements, strict=True) if type(p) is Replicate)
    return Sharding(placements, offsets, sizes, first_replica)


def gathered(tensor: Any) -> Any:
    """The whole value of a DTensor (an all-gather), or the tensor itself."""
    return tensor.full_tensor() if is_sharded(tensor) else tensor


def local_tensor(var: Any) -> torch.Tensor:
    """This rank's block, sharing the parameter's memory."""
    return var.to_local()


class WorldGroup:
    """The default process group of torch.distributed, as the core's `Group`."""

    @property
    def rank(self) -> int:
        import torch.distributed as dist

        return dist.get_rank()

    def broadcast(self, value: Any) -> Any:
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, value)
        return out
