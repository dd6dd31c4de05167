"""Low-rank updates (LoRA): a leaf a layer adds ``scale * a @ b`` to on each call.

Keras 3's ``enable_lora`` (Dense, EinsumDense, Embedding, convolutions) keeps
the factors beside the kernel; Flax NNX's ``LoRALinear`` keeps them in a
child ``lora``, and ``nnx.LoRA(..., base_module=layer)`` beside the layer it
wraps. Each adapter reports its layers' updates (`Adapter.low_rank`); this
module holds what a port does with them, the same on every backend:

- The factors do not pair with anything: a layer with an update pairs with
  a layer without one by its other leaves.
- A source layer's update is merged into its leaf (``leaf + scale * a @ b``,
  in the framework's own layout, then made canonical): the destination
  computes what the source computes, as Keras' own ``save_weights`` merges it.
- A destination layer's update is reset: its leaf gets the source's value and
  its ``b`` factor zeros, its ``a`` factor kept, so it computes the source's
  outputs and its update trains on from zero (standard LoRA initialisation).

The factors stay parameters of their own everywhere else: ``params``,
``save`` and ``load`` keep them, as the frameworks' own state dicts do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .paths import relative

if TYPE_CHECKING:
    from .view import Module, Param


@dataclass(frozen=True)
class LowRank:
    """One low-rank update, as an adapter reports it for a layer.

    Attributes:
        leaf: Where the updated leaf is, a path within the reporting layer
            (``"kernel"``; ``"base_module.kernel"`` for a wrapper's).
        a: Where the ``(..., in, rank)`` factor is, a path within it.
        b: Where the ``(rank, out)`` factor is.
        scale: What the product is multiplied by (Keras: ``lora_alpha / lora_rank``).

    Examples:
        >>> LowRank("kernel", "lora_kernel_a", "lora_kernel_b", 2.0).scale
        2.0
    """

    leaf: str
    a: str
    b: str
    scale: float


@dataclass(frozen=True)
class Update:
    """A low-rank update with its parameters' keys in a model (`updates`):
    canonical paths relative to the model, as ``model.params()`` keys them.

    Attributes:
        layer: The path of the layer that holds the updated leaf.
        leaf: The updated leaf's key (``"0.weight"``).
        a: The ``a`` factor's key.
        b: The ``b`` factor's key.
        scale: As `LowRank.scale`.
    """

    layer: str
    leaf: str
    a: str
    b: str
    scale: float


def updates(model: Module, modules: list[Module] | None = None) -> list[Update]:
    """Every low-rank update in ``model`` (whose ``modules()`` may be passed).

    Examples:
        >>> import keras
        >>> dense = keras.layers.Dense(2)
        >>> dense.build((None, 3))
        >>> dense.enable_lora(1)
        >>> from unified_params import wrap
        >>> [(u.layer, u.leaf, u.a) for u in updates(wrap(dense))]
        [('', 'weight', 'lora_kernel_a')]
    """
    out = []
    for module in model.modules() if modules is None else modules:
        for update in model.adapter.low_rank(module.native):
            leaf, a, b = (_param(module, path) for path in (update.leaf, update.a, update.b))
            layer, *keys = (
                relative(path, model.path) or "" for path in (leaf.module.path, leaf.path, a.path, b.path)
            )
            out.append(Update(layer, keys[0], keys[1], keys[2], update.scale))
    return out


def _param(module: Module, path: str) -> Param:
    from .view import Param

    found = module[path]
    assert isinstance(found, Param)  # an adapter reports paths of variables
    return found


def holders(found: list[Update]) -> dict[str, str]:
    """The modules that keep an update's factors apart from its layer (Flax
    NNX's ``lora`` child; a wrapper around the layer), each with the layer's
    path: their variables are the layer's for pairing.

    Examples:
        >>> holders([Update("0", "0.kernel", "0.lora.lora_a", "0.lora.lora_b", 1.0)])
        {'0.lora': '0'}
    """
    out = {}
    for update in found:
        for factor in (update.a, update.b):
            holder = factor.rpartition(".")[0]
            if holder != update.layer:
                out[holder] = update.layer
    return out


def merged(leaf: Param, a: Param, b: Param, scale: float) -> np.ndarray:
    """``leaf``'s canonical value with the update merged in: what its layer
    computes with, as a layer without an update keeps it.

    Examples:
        >>> import keras
        >>> dense = keras.layers.Dense(2)
        >>> dense.build((None, 3))
        >>> dense.enable_lora(1)
        >>> _ = dense.lora_kernel_b.assign([[1.0, 2.0]])
        >>> from unified_params import wrap
        >>> m = wrap(dense)
        >>> value = merged(m["weight"], m["lora_kernel_a"], m["lora_kernel_b"], 1.0)
        >>> bool(np.allclose(value, np.asarray(dense.kernel).T))
        True
    """
    base = leaf.numpy("native")
    compute = np.promote_types(base.dtype, np.float32)
    product = np.matmul(a.numpy("native").astype(compute), b.numpy("native").astype(compute))
    value = (base.astype(compute) + scale * product).astype(base.dtype)
    return np.ascontiguousarray(leaf.layout.to_canonical(value))


def factors(found: list[Update]) -> set[str]:
    """The paths of every factor of ``found``."""
    return {path for update in found for path in (update.a, update.b)}
