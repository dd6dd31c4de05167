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

Read here: the vanilla form only, of peft's own LoRA Linear, Embedding and
convolutions (not the tuners built on them: AdaLoRA's SVD form, LoRA over
quantized layers). A layer with a LoRA variant (DoRA and others), a LoRA
bias, ``fan_in_fan_out`` weights (transformers' Conv1D), a grouped
convolution or a base layer of another type is reported with no update:
its factors then stay layers of their own, which a port refuses to pair,
naming ``merge_and_unload``. peft is never imported here: a model
holds its layers only once peft is loaded.

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
    if not (embedding or type(base) in _MATRIX_BASES) or getattr(base, "groups", 1) != 1:
        return ()
    if getattr(module, "fan_in_fan_out", False) or any(getattr(module, "lora_bias", {}).values()):
        return ()
    names = list(module.lora_embedding_A if embedding else module.lora_A)
    variants = getattr(module, "lora_variant", {})  # DoRA and others (peft 0.15 on); before, DoRA's flag
    if any(name in variants or getattr(module, "use_dora", {}).get(name) for name in names):
        return ()
    if not embedding and any(set(module.lora_B[name].weight.shape[2:]) - {1} for name in names):
        return ()  # a lora_B that is not pointwise: not one product of the two
    applied = () if module.disable_adapters else set(module.active_adapters) - set(module.merged_adapters)
    out = []
    for name in names:
        scale = float(module.scaling[name]) if name in applied else 0.0
        if embedding:  # (dim, rank) @ (rank, num), transposed: the (num, dim) table's update
            out.append(LowRank("base_layer.weight", f"lora_embedding_B.{name}",
                               f"lora_embedding_A.{name}", scale, zeroed="b", transposed=True))  # fmt: skip
        else:  # (out, rank) @ (rank, in, ...): the weight's update
            out.append(LowRank("base_layer.weight", f"lora_B.{name}.weight", f"lora_A.{name}.weight", scale,
                               zeroed="a"))  # fmt: skip
    return tuple(out)


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
