"""Keras 3 adapter: ``keras.layers.Layer`` models (Sequential, functional, subclassed).

Keras stores Dense kernels ``(in, out)``, conv kernels channels-last
(``HWIO``), names BatchNorm variables ``gamma/beta/moving_mean/
moving_variance``, keeps recurrent variables on an inner ``cell`` layer, and
orders GRU gates ``z, r, h``. A Keras variable has no ``.grad``: gradients
live in a :class:`~unified_params._core.grads.GradStore`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras.src.models.functional import Functional

from .._core.errors import NotBuiltError, received
from .._core.grads import GradStore
from .._core.initializers import Ones, Orthogonal, Uniform, UnitForgetBias, XavierUniform, Zeros
from .._core.layouts import Leaf
from ._base import Adapter, NativeVariable, assign_slice_by_copy, kind_from_table

L = keras.layers
_KINDS: dict[type, str] = {
    L.Dense: "linear",
    L.Conv1D: "conv1d",
    L.Conv2D: "conv2d",
    L.Conv3D: "conv3d",
    L.BatchNormalization: "batchnorm",
    L.LayerNormalization: "layernorm",
    L.Embedding: "embedding",
    L.LSTM: "lstm",
    L.GRU: "gru",
    L.ReLU: "relu",
    L.Flatten: "flatten",
    keras.Sequential: "container",
    Functional: "container",
}
# Keras' own bookkeeping attributes that hold tracked layers.
_INTERNAL = frozenset({"_layers", "_tracked", "_functional", "_operations"})
_BIAS = Leaf("bias")
_KERNEL = {
    n: Leaf("weight", axes)
    for n, axes in {
        "linear": ("in", "out"),
        "conv1d": ("k0", "in", "out"),
        "conv2d": ("k0", "k1", "in", "out"),
        "conv3d": ("k0", "k1", "k2", "in", "out"),
    }.items()
}
_NORM = {"gamma": Leaf("weight"), "beta": Leaf("bias")}


def _recurrent(gates: str | None) -> dict[str, Leaf]:
    return {
        "kernel": Leaf("weight_ih_l0", ("in", "gates"), gates),
        "recurrent_kernel": Leaf("weight_hh_l0", ("hidden", "gates"), gates),
        # One bias (= b_ih + b_hh) for LSTM; GRU with reset_after keeps both, stacked.
        "bias": Leaf("bias", {1: ("gates",), 2: ("stack", "gates")}, gates),
    }


_GLOROT = {"weight": XavierUniform(), "bias": Zeros()}
_ONES_ZEROS = {"weight": Ones(), "bias": Zeros()}


class KerasAdapter(Adapter):
    name = "keras"
    DEFAULT_INIT = {
        **{kind: _GLOROT for kind in _KERNEL},
        "batchnorm": _ONES_ZEROS,
        "layernorm": _ONES_ZEROS,
        "embedding": {"weight": Uniform(-0.05, 0.05)},
        "lstm": {"weight_ih": XavierUniform(), "weight_hh": Orthogonal(), "bias": UnitForgetBias()},
        "gru": {"weight_ih": XavierUniform(), "weight_hh": Orthogonal(), "bias": Zeros()},
    }
    LEAVES = {
        **{kind: {"kernel": leaf, "bias": _BIAS} for kind, leaf in _KERNEL.items()},
        "batchnorm": {**_NORM, "moving_mean": Leaf("running_mean"), "moving_variance": Leaf("running_var")},
        "layernorm": _NORM,
        "embedding": {"embeddings": Leaf("weight")},
        "lstm": _recurrent(None),
        "gru": _recurrent("zrn"),
    }

    def __init__(self) -> None:
        self.grads = GradStore()

    def type_name(self, module: Any) -> str:
        return (
            type(module).__name__
            if isinstance(module, L.Layer)
            else type(module).__name__.lower().removeprefix("tracked")
        )

    def kind(self, module: Any) -> str:
        if not isinstance(module, L.Layer):
            return "container"  # a list or dict of layers held by a subclassed model
        return kind_from_table(type(module), _KINDS)

    def children(self, module: Any) -> list[tuple[str, Any]]:
        if isinstance(module, (list, tuple)):
            return [(str(i), c) for i, c in enumerate(module) if _is_layer_or_group(c)]
        if isinstance(module, dict):
            return [(str(k), c) for k, c in module.items() if _is_layer_or_group(c)]
        if isinstance(module, (keras.Sequential, Functional)):
            return [(str(i), layer) for i, layer in enumerate(module.layers)]
        if isinstance(module, L.RNN):
            return []  # the cell's variables are the layer's own
        return _attribute_children(module)

    def variables(self, module: Any) -> list[NativeVariable]:
        if not isinstance(module, L.Layer) or isinstance(module, (keras.Sequential, Functional)):
            return []  # containers own no variables, built or not
        owner = module.cell if isinstance(module, L.RNN) else module
        if not module.built and type(module).build is not L.Layer.build:
            raise NotBuiltError(
                f"Keras layer {module.name!r} ({type(module).__name__}) is not built, so its "
                "variables do not exist yet. Expected a built model: call it once on an input "
                "(model(x)) or call model.build(input_shape) first. " + received(built=False)
            )
        own = [(v.name, v, False) for v in owner._trainable_variables]
        return own + [(v.name, v, True) for v in owner._non_trainable_variables]

    def shape(self, var: Any) -> tuple[int, ...]:
        return tuple(int(d) for d in var.shape)

    def dtype(self, var: Any) -> str:
        return str(var.dtype)

    def trainable(self, var: Any) -> bool:
        return bool(var.trainable)

    def set_trainable(self, var: Any, flag: bool) -> None:
        var.trainable = flag

    def to_numpy(self, var: Any) -> np.ndarray:
        return var.numpy()  # already an owned, writeable copy on the TF backend

    def assign(self, var: Any, value: np.ndarray) -> None:
        var.assign(value)

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        assign_slice_by_copy(self, var, index, value)

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        return False  # no writable view of the variable's memory: assign() copies

    def grad(self, var: Any) -> np.ndarray | None:
        return self.grads.get(var)


def _is_layer_or_group(value: Any) -> bool:
    if isinstance(value, L.Layer):
        return True
    if isinstance(value, (list, tuple)):
        return any(_is_layer_or_group(v) for v in value)
    if isinstance(value, dict):
        return any(_is_layer_or_group(v) for v in value.values())
    return False


def _attribute_children(layer: Any) -> list[tuple[str, Any]]:
    """Sublayers of a subclassed layer, keyed by the attribute that holds them."""
    tracked = {id(x) for x in getattr(layer, "_layers", ())}
    out, covered = [], set()
    for key, value in vars(layer).items():
        if key in _INTERNAL or key.startswith("_self_") or not _is_layer_or_group(value):
            continue
        found = _layer_ids(value)
        if found and found <= tracked:
            out.append((key, value))
            covered |= found
    # Layers Keras tracks but no attribute names (rare): keyed by layer name.
    out += [(x.name, x) for x in getattr(layer, "_layers", ()) if id(x) not in covered]
    return out


def _layer_ids(value: Any) -> set[int]:
    if isinstance(value, L.Layer):
        return {id(value)}
    items = value.values() if isinstance(value, dict) else value
    return set().union(*(_layer_ids(v) for v in items if _is_layer_or_group(v))) if items else set()


ADAPTER = KerasAdapter()
