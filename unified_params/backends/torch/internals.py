"""Every private PyTorch API this adapter uses, checked against torch 2.13.0.

``tests/test_internals.py`` fails loudly when a newer torch changes one.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from torch import nn

from .._dicts import Slots

#: torch 2.13.0: ``nn.Module`` keeps children in ``_modules``, parameters in
#: ``_parameters``, buffers in ``_buffers`` (all dicts), the names of
#: ``persistent=False`` buffers in the set ``_non_persistent_buffers_set``
#: and the hooks it runs before each call in the dict ``_forward_pre_hooks``.
SLOTS = Slots(
    children="_modules",
    params="_parameters",
    buffers="_buffers",
    transient="_non_persistent_buffers_set",
    pre_hooks="_forward_pre_hooks",
)
#: torch 2.13.0: the pre-hooks ``nn.utils.weight_norm`` and ``nn.utils.spectral_norm``
#: register, each computing the leaf it names as ``name`` (the classes are not exported,
#: and their modules' names are the functions' in ``nn.utils``).
NORM_HOOKS = (
    importlib.import_module("torch.nn.utils.weight_norm").WeightNorm,
    importlib.import_module("torch.nn.utils.spectral_norm").SpectralNorm,
)
#: torch 2.13.0: by make, the weight norm's hook keeps its leaf's axis as ``dim``
#: (``-1``: the whole leaf) and ``g`` with the leaf's other axes of size one; the
#: spectral norm's, the axis it puts first as ``dim``.
LEAF_NORM_HOOKS = {"weight": NORM_HOOKS[0], "spectral": NORM_HOOKS[1]}
#: torch 2.13.0: ``nn.utils.parametrizations.weight_norm`` and ``spectral_norm``
#: register these parametrizations (private), each keeping its axis as ``dim``,
#: and where the layer keeps their variables under ``parametrizations.<leaf>``.
LEAF_NORM_PARAMETRIZATIONS: dict[str, tuple[Any, dict[str, str]]] = {
    "weight": (nn.utils.parametrizations._WeightNorm, {"g": "original0", "v": "original1"}),
    "spectral": (nn.utils.parametrizations._SpectralNorm, {"orig": "original", "u": "0._u", "v": "0._v"}),
}


def pruned_leaves(hooks: dict[Any, Any] | None) -> tuple[str, ...]:
    """The leaves pruning hooks among a module's pre-``hooks`` compute. torch 2.13.0:
    ``nn.utils.prune`` (not imported by ``import torch``: without it, no module is
    pruned) registers a ``BasePruningMethod``, which computes ``<name>`` from
    ``<name>_orig`` and the buffer ``<name>_mask`` and keeps ``<name>`` as ``_tensor_name``."""
    prune = sys.modules.get("torch.nn.utils.prune")
    if prune is None or not hooks:
        return ()
    return tuple(h._tensor_name for h in hooks.values() if isinstance(h, prune.BasePruningMethod))


#: torch 2.13.0: the base of the lazy modules (``LazyLinear``, ``LazyConv2d``, ...),
#: whose parameters take their shape on the module's first call, in a hook the
#: module runs before each call until then (public, though not in ``torch.nn``).
LAZY_MODULE = nn.modules.lazy.LazyModuleMixin
#: torch 2.13.0: the private base class of BatchNorm1d/2d/3d (and SyncBatchNorm's parent).
BATCH_NORM = nn.modules.batchnorm._BatchNorm
#: torch 2.13.0: ``torch.compile`` returns an ``OptimizedModule`` holding the
#: original module as the child ``_orig_mod``.
COMPILED_TYPE = "OptimizedModule"
COMPILED_CHILD = "_orig_mod"


def compiled_original(model: Any) -> Any | None:
    """The module ``torch.compile`` wrapped, or None for any other module."""
    inner = model.__dict__.get(SLOTS.children, {}).get(COMPILED_CHILD)
    return inner if type(model).__name__ == COMPILED_TYPE and isinstance(inner, nn.Module) else None


def dtensor_type() -> type | None:
    """``torch.distributed.tensor.DTensor`` if that module is loaded, else None:
    a DTensor exists only once it is, so nothing is imported to find out."""
    import sys

    module = sys.modules.get("torch.distributed.tensor")
    return getattr(module, "DTensor", None)


def local_chunk(tensor: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(offsets, sizes)`` of this rank's block of a DTensor in the global tensor.

    torch 2.13.0: ``DTensor.__create_chunk_list__()`` (the protocol
    torch.distributed.checkpoint plans with) gives one ``ChunkStorageMetadata``
    with ``offsets`` and ``sizes`` for Shard and Replicate placements.
    """
    [chunk] = tensor.__create_chunk_list__()
    return tuple(chunk.offsets), tuple(chunk.sizes)


def storage_users(tensor: Any) -> int:
    """How many tensors, views and arrays hold ``tensor``'s memory (itself included).

    torch 2.13.0: ``torch._C._storage_Use_Count`` gives the reference count of
    a storage; the ``UntypedStorage`` object asked for it holds one of them,
    which is not counted here. A view (``p[0]``), a ``p.detach()``, a numpy
    array from ``p.numpy()`` each hold one more.
    """
    import torch

    return int(torch._C._storage_Use_Count(tensor.untyped_storage()._cdata)) - 1
