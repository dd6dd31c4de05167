"""peft's LoRA layers, read as low-rank updates (`unified_params._core.low_rank`),
and its wrappers of layers trained whole, read as what they compute with.

peft (checked against 0.21.2) replaces each targeted layer of a torch model
by a wrapper that keeps the layer as ``base_layer`` and, per adapter name,
the factors beside it: ``lora_A[name]`` and ``lora_B[name]`` (a Linear's
``(rank, in)`` and ``(out, rank)`` Linears; a convolution's kernel-sized and
pointwise convolutions), or an Embedding's ``lora_embedding_A[name]``
``(rank, num)`` and ``lora_embedding_B[name]`` ``(dim, rank)``. Its forward
adds ``scaling[name] * lora_B @ lora_A`` to the base layer's weight for each
active adapter (for an Embedding, that product's transpose), unless the
adapters are disabled or already merged into the weight. A new adapter
starts with ``lora_B`` at zero (an Embedding's ``lora_embedding_A``).

Once any adapter is merged, a call runs the base layer alone; a disabled
layer's call takes merged adapters out of the weight first (such a layer is
reported with no update).

DoRA (``use_dora=True``) keeps per adapter a magnitude vector in
``lora_magnitude_vector[name].weight``, one value per output (an
Embedding's: per embedding dimension). Each active adapter in turn scales
each output row of what the layer computes with so far, plus its update, by
``m / ||W + scaling * lora_B @ lora_A||`` of that row, ``W`` the base layer's
stored weight: the order of ``active_adapters`` counts. ``merge_and_unload``
merges in that order too.

Read here: the vanilla form and DoRA, of peft's own LoRA Linear, Embedding
and convolutions (not the tuners built on them: AdaLoRA's SVD form, LoRA
over quantized layers). A transformers ``Conv1D`` base layer (GPT-2's) keeps its weight
``(in, out)``: its update is the product's transpose (``fan_in_fan_out``).
A layer with another LoRA variant, DoRA while peft
caches its norms (``peft.tuners.lora.dora.ENABLE_DORA_CACHING``, which a
write would leave stale), a LoRA bias, ``fan_in_fan_out`` on another base
layer, a grouped convolution or a base layer of another
type is reported with no update: its factors then stay layers of their own,
which a port refuses to pair, naming ``merge_and_unload``. peft is never
imported here: a model holds its layers only once peft is loaded.

A layer named in ``modules_to_save`` (a classifier head trained whole) is
wrapped in a ``ModulesToSaveWrapper`` that keeps the ``original_module``
and, per adapter name, a trained copy in ``modules_to_save[name]``. It runs
the first active adapter's copy, or the original when adapters are
disabled, none is active or an active one has no copy: the others are idle
(`Adapter.idle`).
"""

from __future__ import annotations

import sys
from typing import Any

from torch import nn

from ..._core.low_rank import LowRank
from .zoo_layers import CONV1D

#: The base layers whose update is their weight plus ``lora_B @ lora_A``,
#: each factor read as a matrix.
_MATRIX_BASES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def low_rank(module: Any) -> tuple[LowRank, ...]:
    """The updates a peft LoRA layer adds to its base layer's weight; ``()``
    for any other module, and for a LoRA layer of a form not read here.

    Examples:
        >>> low_rank(nn.Linear(4, 2))
        ()
    """
    lora = sys.modules.get("peft.tuners.lora.layer")
    if lora is None or type(module) not in (
        lora.Linear,
        lora.Embedding,
        lora.Conv1d,
        lora.Conv2d,
        lora.Conv3d,
    ):
        return ()  # not a LoRA layer, or another tuner's built on it (AdaLoRA's SVD form, quantized bases)
    base = module.base_layer
    embedding = type(base) is nn.Embedding
    # transformers' Conv1D keeps its weight (in, out): peft adds its update transposed (fan_in_fan_out)
    in_out = (type(base).__module__, type(base).__name__) == CONV1D
    if not (embedding or in_out or type(base) in _MATRIX_BASES) or getattr(base, "groups", 1) != 1:
        return ()
    if getattr(module, "fan_in_fan_out", False) != in_out or any(getattr(module, "lora_bias", {}).values()):
        return ()
    names = list(module.lora_embedding_A if embedding else module.lora_A)
    dora = _dora(module, names)
    if dora is None:
        return ()  # another variant of LoRA, or DoRA with its norms cached
    if not embedding and any(set(module.lora_B[name].weight.shape[2:]) - {1} for name in names):
        return ()  # a lora_B that is not pointwise: not one product of the two
    if module.merged_adapters and module.disable_adapters:
        return ()  # its next call takes the merged updates out of the weight again
    # What a call adds: nothing while disabled or once an adapter is merged (the
    # base layer alone runs then), else each active adapter's update in turn.
    applied = [] if module.disable_adapters or module.merged_adapters else list(module.active_adapters)
    if any(name in dora and not module.scaling[name] for name in applied):
        return ()  # a DoRA update that scales the weight but adds nothing: not read here
    out = []
    for name in sorted(names, key=lambda n: applied.index(n) if n in applied else len(applied)):
        scale = float(module.scaling[name]) if name in applied else 0.0
        magnitude = f"lora_magnitude_vector.{name}.weight" if name in dora else ""
        if embedding:  # (dim, rank) @ (rank, num), transposed: the (num, dim) table's update
            out.append(LowRank("base_layer.weight", f"lora_embedding_B.{name}",
                               f"lora_embedding_A.{name}", scale, zeroed="b", transposed=True,
                               magnitude=magnitude))  # fmt: skip
        else:  # (out, rank) @ (rank, in, ...): the weight's update (a Conv1D's (in, out): its transpose)
            out.append(LowRank("base_layer.weight", f"lora_B.{name}.weight", f"lora_A.{name}.weight", scale,
                               zeroed="a", transposed=in_out, magnitude=magnitude))  # fmt: skip
    return tuple(out)


def _dora(module: Any, names: list[str]) -> set[str] | None:
    """The adapters of ``names`` that are DoRA's (a magnitude vector beside
    the factors); ``None`` when one is another variant, or peft caches DoRA's
    norms (``ENABLE_DORA_CACHING``), which a write would leave stale."""
    variants = getattr(module, "lora_variant", None)
    if variants is None:  # before peft 0.15, DoRA's flag `use_dora`: not read here
        return None if any(getattr(module, "use_dora", {}).get(name) for name in names) else set()
    if not any(name in variants for name in names):
        return set()
    kinds = sys.modules.get("peft.tuners.lora.variants")
    dora = sys.modules.get("peft.tuners.lora.dora")
    if kinds is None or dora is None or getattr(dora, "ENABLE_DORA_CACHING", True):
        return None
    ours = tuple(
        getattr(kinds, name, None)
        for name in ("DoraLinearVariant", "DoraEmbeddingVariant", "DoraConv1dVariant",
                     "DoraConv2dVariant", "DoraConv3dVariant")
    )  # fmt: skip
    found = {name for name in names if name in variants}
    return found if all(type(variants[name]) in ours for name in found) else None


def idle(module: Any) -> tuple[str, ...]:
    """The children of a peft ``ModulesToSaveWrapper`` it does not run now:
    the original layer while a trained copy runs, the other copies; ``()``
    for any other module.

    Examples:
        >>> idle(nn.Linear(4, 2))
        ()
    """
    other = sys.modules.get("peft.utils.other")
    if other is None or not isinstance(module, other.ModulesToSaveWrapper):
        return ()
    copies = list(module.modules_to_save)
    active = module.active_adapters
    original = module.disable_adapters or not active or any(name not in copies for name in active)
    running = "original_module" if original else f"modules_to_save.{active[0]}"
    return tuple(
        key for key in ("original_module", *(f"modules_to_save.{n}" for n in copies)) if key != running
    )
