"""Low-rank updates (LoRA): a leaf a layer adds ``scale * a @ b`` to on each call.

Keras 3's ``enable_lora`` (Dense, EinsumDense, Embedding, convolutions) keeps
the factors beside the kernel; Flax NNX's ``LoRALinear`` keeps them in a
child ``lora``, and ``nnx.LoRA(..., base_module=layer)`` beside the layer it
wraps; peft's LoRA layers (torch) keep one pair per adapter in child
modules beside the ``base_layer`` they wrap, ``lora_B @ lora_A``. Each adapter
reports its layers' updates (`Adapter.low_rank`); this module holds what a
port does with them, the same on every backend:

- The factors do not pair with anything: a layer with an update pairs with
  a layer without one by its other leaves.
- A source layer's updates are merged into its leaf (``leaf + scale * a @ b``
  for each, in the framework's own layout, then made canonical): the
  destination computes what the source computes, as Keras' own
  ``save_weights`` and peft's ``merge_and_unload`` merge them. An update
  with a magnitude (peft's DoRA) also scales each row of the product's
  shape: by ``m / ||leaf + scale * a @ b||``, the norm of that row of the
  stored leaf with this update alone (`merged`).
- A destination layer's update is reset: its leaf gets the source's value and
  the factor its framework starts at zero gets zeros again (Keras' and Flax's
  ``b``, peft's ``lora_B``), the other kept, so it computes the source's
  outputs and its update trains on from zero (standard LoRA initialisation).
  A magnitude gets the norms of the new leaf's rows, as peft starts DoRA's
  (`reset_magnitude`): each row is scaled by one.

The factors stay parameters of their own everywhere else: ``params``,
``save`` and ``load`` keep them, as the frameworks' own state dicts do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
        a: Where the ``(..., rank)`` factor is, a path within it (axes of
            size one may follow the rank: a pointwise convolution's kernel).
        b: Where the ``(rank, ...)`` factor is. The product of the two,
            each read as a matrix, is the leaf's shape in the framework's
            own layout (its transpose with ``transposed``).
        scale: What the product is multiplied by (Keras: ``lora_alpha /
            lora_rank``); 0 for an update the layer does not add now (an
            inactive adapter, or one already merged into the leaf).
        zeroed: The factor a new update starts at zero, ``"a"`` or ``"b"``:
            the one a reset writes zeros to.
        transposed: The product is the leaf's transpose (peft's Embedding).
        magnitude: Where a magnitude vector is, one value per row of the
            product (peft's DoRA: ``lora_magnitude_vector.<adapter>.weight``);
            ``""`` for none. The layer then computes with each row of
            ``leaf + scale * a @ b`` times ``m / ||leaf + scale * a @ b||``
            (the stored leaf's row with this update alone).

    Examples:
        >>> LowRank("kernel", "lora_kernel_a", "lora_kernel_b", 2.0).zeroed
        'b'
    """

    leaf: str
    a: str
    b: str
    scale: float
    zeroed: str = "b"
    transposed: bool = False
    magnitude: str = ""


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
        starts_at_zero: As `LowRank.zeroed`: ``"a"`` or ``"b"``.
        transposed: As `LowRank.transposed`.
        magnitude: The magnitude vector's key (`LowRank.magnitude`), ``""``
            for none.

    Examples:
        >>> Update("0", "0.kernel", "0.lora_kernel_a", "0.lora_kernel_b", 1.0).zeroed
        '0.lora_kernel_b'
    """

    layer: str
    leaf: str
    a: str
    b: str
    scale: float
    starts_at_zero: str = "b"
    transposed: bool = False
    magnitude: str = ""

    @property
    def zeroed(self) -> str:
        """The key of the factor a reset writes zeros to."""
        return self.b if self.starts_at_zero == "b" else self.a

    @property
    def kept(self) -> str:
        """The key of the factor a reset keeps."""
        return self.a if self.starts_at_zero == "b" else self.b


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
            params = [_param(module, path) for path in (update.leaf, update.a, update.b)]
            layer, leaf, a, b = (
                relative(path, model.path) or ""
                for path in (params[0].module.path, *(p.path for p in params))
            )
            magnitude = update.magnitude and relative(_param(module, update.magnitude).path, model.path)
            out.append(
                Update(layer, leaf, a, b, update.scale, update.zeroed, update.transposed, magnitude or "")
            )
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
        for factor in _factors_of(update):
            holder = factor.rpartition(".")[0]
            if holder != update.layer:
                out[holder] = update.layer
    return out


def merged(model: Module, found: Sequence[Update]) -> np.ndarray:
    """The canonical value of the leaf ``found`` update (all the same leaf of
    ``model``), each update merged in: what its layer computes with, as a
    layer without an update keeps it.

    Examples:
        >>> import keras
        >>> dense = keras.layers.Dense(2)
        >>> dense.build((None, 3))
        >>> dense.enable_lora(1)
        >>> _ = dense.lora_kernel_b.assign([[1.0, 2.0]])
        >>> from unified_params import wrap
        >>> m = wrap(dense)
        >>> value = merged(m, updates(m))
        >>> bool(np.allclose(value, np.asarray(dense.kernel).T))
        True
    """
    leaf = _param(model, found[0].leaf)
    base = leaf.numpy("native")
    compute = np.promote_types(base.dtype, np.float32)
    stored = base.astype(compute)  # a copy: the updates are added to it in place
    value = stored.copy() if any(u.magnitude and u.scale for u in found) else stored  # DoRA reads it after
    for update in found:
        if update.scale == 0:
            continue
        a, b = (_param(model, key).numpy("native").astype(compute) for key in (update.a, update.b))
        rank = b.shape[0]  # each factor as a matrix: (rows, rank) @ (rank, columns)
        step = update.scale * np.matmul(a.reshape(-1, rank), b.reshape(rank, -1))
        if not update.magnitude:
            value += _as_leaf(step, update, base.shape)
            continue
        # The rows' norms of the stored leaf with this update alone; the rows of what
        # the layer computes with so far, with this update, scaled by them.
        norms = np.linalg.norm(_rows(stored, update, len(step)) + step, axis=1)
        m = _param(model, update.magnitude).numpy("native").astype(compute).reshape(-1)
        value = _as_leaf((m / norms)[:, None] * (_rows(value, update, len(step)) + step), update, base.shape)
    return np.ascontiguousarray(leaf.layout.to_canonical(value.astype(base.dtype)))


def reset_magnitude(model: Module, update: Update, value: np.ndarray, *, native: bool = False) -> np.ndarray:
    """The magnitude ``update`` of ``model`` starts at when its leaf holds
    ``value`` (canonical; in its framework's layout with ``native``): the norm
    of each row of the product's shape, so that the update, its zeroed factor
    at zero, scales each row by one. In the magnitude's own shape (peft's
    ``(out,)``; a convolution's ``(1, out, 1, ...)``).

    Examples:
        >>> import torch
        >>> from unified_params import wrap
        >>> m = wrap(torch.nn.Linear(2, 2))
        >>> u = Update("", "weight", "weight", "weight", 1.0, "a", magnitude="bias")
        >>> reset_magnitude(m, u, np.array([[3.0, 4.0], [0.0, 1.0]]))
        array([5., 1.])
    """
    leaf, magnitude = _param(model, update.leaf), _param(model, update.magnitude)
    shape = model.adapter.shape(leaf.native)  # the framework's own, without reading the values
    held = np.asarray(value, np.float64)
    held = held if native else leaf.layout.to_native(held, shape)
    rows = shape[-1] if update.transposed else shape[0]
    norms = np.linalg.norm(_rows(held, update, rows), axis=1)
    return norms.reshape(model.adapter.shape(magnitude.native))


def _rows(value: np.ndarray, update: Update, rows: int) -> np.ndarray:
    """A leaf in its framework's layout as the product's ``rows`` rows."""
    return value.T if update.transposed else value.reshape(rows, -1)


def _as_leaf(rows: np.ndarray, update: Update, shape: tuple[int, ...]) -> np.ndarray:
    """The product's rows laid out as the leaf of ``shape`` (`_rows`'s inverse)."""
    return (rows.T if update.transposed else rows).reshape(shape)


#: A path of a LoRA factor, or of the module holding one, by the names the
#: frameworks give them: Keras' ``lora_kernel_a``, Flax's ``lora_b``, peft's
#: ``lora_A.<adapter>``, ``lora_embedding_B.<adapter>`` and DoRA's
#: ``lora_magnitude_vector.<adapter>``.
_FACTOR = re.compile(r"(^|\.)lora(_[a-z]+)?_[abAB]\b|(^|\.)lora_magnitude_vector(\.|$)")


def looks_like_factor(path: str) -> bool:
    """Whether ``path`` names what looks like a LoRA factor or its holder.

    Examples:
        >>> [looks_like_factor(p) for p in ("0.lora_kernel_a", "0.lora_A.default.weight", "0.kernel")]
        [True, True, False]
    """
    return _FACTOR.search(path) is not None


def factors(found: list[Update]) -> set[str]:
    """The paths of every factor of ``found`` (a magnitude vector with them)."""
    return {path for update in found for path in _factors_of(update)}


def _factors_of(update: Update) -> tuple[str, ...]:
    """``update``'s factors' keys, its magnitude's with them."""
    return (update.a, update.b, update.magnitude) if update.magnitude else (update.a, update.b)
