"""Keras 3 adapter: ``keras.layers.Layer`` models (Sequential, functional, subclassed).

Keras stores Dense kernels ``(in, out)``, conv kernels channels-last
(``HWIO``), names BatchNorm variables ``gamma/beta/moving_mean/
moving_variance``, keeps recurrent variables on an inner ``cell`` layer, and
orders GRU gates ``z, r, h``. A Keras variable has no ``.grad``: gradients
live in a `GradStore`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sized
from operator import attrgetter
from typing import Any

import keras
import numpy as np
from keras.src.models.functional import Functional

from .._core.errors import NotBuiltError, UnsupportedError, received
from .._core.grad_store import GradStore
from .._core.gradients import Backward, reduce_loss
from .._core.initializers import Ones, Orthogonal, Uniform, UnitForgetBias, XavierUniform, Zeros
from .._core.layouts import ALIGNMENT, Leaf, aligned_empty, contiguous
from .._core.state import Merge, Part
from ._base import Adapter, KindTable, NativeVariable, assign_slice_by_copy

L = keras.layers
_KINDS: dict[type, str] = {
    L.Dense: "linear",
    L.Conv1D: "conv1d",
    L.Conv2D: "conv2d",
    L.Conv3D: "conv3d",
    L.DepthwiseConv2D: "conv2d",
    L.SeparableConv2D: "separable_conv2d",
    L.Conv1DTranspose: "conv_transpose1d",
    L.Conv2DTranspose: "conv_transpose2d",
    L.MultiHeadAttention: "mha",
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
_KIND = KindTable(_KINDS)
_ROLE_ORDER = (
    (list, "list"), (tuple, "list"), (dict, "dict"), (keras.Sequential, "sequential"),
    (Functional, "functional"), (L.RNN, "rnn"),
)  # fmt: skip
# containers() of a built layer without sublayers (Keras locks its state once built).
_BUILT_LEAF = attrgetter("_trainable_variables", "_non_trainable_variables")
# What a class is to the walk, decided once per class: "list", "dict" (groups of
# layers a subclassed model holds), "sequential", "functional", "rnn", "layer".
_ROLES: dict[type, str] = {}


def _role(cls: type) -> str:
    role = _ROLES.get(cls)
    if role is None:
        role = next(
            (name for base, name in _ROLE_ORDER if issubclass(cls, base)),
            "layer",
        )
        _ROLES[cls] = role
    return role


#: Attribute on a layer naming the slots whose variable was swapped by a tie:
#: a Keras variable's own name is frozen at creation.
_SLOT_NAMES = "_unified_params_slots"
#: Attribute on a Sequential naming its children (``up.spec`` named children):
#: ``(key, id(layer))`` per position. A position whose layer is no longer the
#: one named is keyed by its position again.
_CHILD_KEYS = "_unified_params_keys"
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
_TRANSPOSED = {
    "conv_transpose1d": Leaf("weight", ("k0", "out", "in")),
    "conv_transpose2d": Leaf("weight", ("k0", "k1", "out", "in")),
}
# A depthwise kernel (kH, kW, C, M) is torch's grouped conv weight (C*M, 1, kH, kW).
_DEPTHWISE = Leaf("weight", ("k0", "k1", "in", "mult"), canonical_axes=(("in", "mult"), "1", "k0", "k1"))
# Attention projections: EinsumDense kernels (E, heads, head_dim) and (heads, head_dim, E).
_PROJECTION = Leaf("proj", ("in", "heads", "hd"), canonical_axes=(("heads", "hd"), "in"))
_PROJECTION_BIAS = Leaf("proj_bias", ("heads", "hd"), canonical_axes=(("heads", "hd"),))
_OUTPUT = Leaf("out", ("heads", "hd", "out"), canonical_axes=("out", ("heads", "hd")))
_DENSES = {"_query_dense": 0, "_key_dense": 1, "_value_dense": 2}


def _recurrent(gates: str | None) -> dict[str, Leaf]:
    return {
        "kernel": Leaf("weight_ih_l0", ("in", "gates"), gates),
        "recurrent_kernel": Leaf("weight_hh_l0", ("hidden", "gates"), gates),
        # One bias (= b_ih + b_hh) for LSTM; GRU with reset_after keeps both, stacked.
        "bias": Leaf("bias", {1: ("gates",), 2: ("stack", "gates")}, gates),
    }


_GLOROT = {"weight": XavierUniform(), "bias": Zeros()}
_ONES_ZEROS = {"weight": Ones(), "bias": Zeros()}


_BIASES = ("bias_ih_l0", "bias_hh_l0")


class KerasAdapter(Adapter):
    name = "keras"
    CHANNELS_LAST = True
    MERGES = {"lstm": {"bias": Merge(_BIASES, "sum")}, "gru": {"bias": Merge(_BIASES, "stack")}}
    GATHERS = {
        "mha": {
            **{f"{d}.kernel": Part("in_proj_weight", i, _PROJECTION) for d, i in _DENSES.items()},
            **{f"{d}.bias": Part("in_proj_bias", i, _PROJECTION_BIAS) for d, i in _DENSES.items()},
            "_output_dense.kernel": Part("out_proj.weight", 0, _OUTPUT),
            "_output_dense.bias": Part("out_proj.bias", 0),
        }
    }
    DEFAULT_INIT = {
        **{kind: _GLOROT for kind in (*_KERNEL, *_TRANSPOSED)},
        "separable_conv2d": {
            "depthwise_weight": XavierUniform(),
            "pointwise_weight": XavierUniform(),
            "bias": Zeros(),
        },
        "batchnorm": _ONES_ZEROS,
        "layernorm": _ONES_ZEROS,
        "embedding": {"weight": Uniform(-0.05, 0.05)},
        "lstm": {"weight_ih": XavierUniform(), "weight_hh": Orthogonal(), "bias": UnitForgetBias()},
        "gru": {"weight_ih": XavierUniform(), "weight_hh": Orthogonal(), "bias": Zeros()},
    }
    LEAVES = {
        **{kind: {"kernel": leaf, "bias": _BIAS} for kind, leaf in _KERNEL.items()},
        **{kind: {"kernel": leaf, "bias": _BIAS} for kind, leaf in _TRANSPOSED.items()},
        "batchnorm": {**_NORM, "moving_mean": Leaf("running_mean"), "moving_variance": Leaf("running_var")},
        "layernorm": _NORM,
        "embedding": {"embeddings": Leaf("weight")},
        "conv2d": {"kernel": _KERNEL["conv2d"], "bias": _BIAS, "depthwise_kernel": _DEPTHWISE},
        "separable_conv2d": {
            "depthwise_kernel": Leaf(
                "depthwise_weight",
                ("k0", "k1", "in", "mult"),
                canonical_axes=(("in", "mult"), "1", "k0", "k1"),
            ),
            "pointwise_kernel": Leaf("pointwise_weight", ("k0", "k1", "in", "out")),
            "bias": _BIAS,
        },
        "lstm": _recurrent(None),
        "gru": _recurrent("zrn"),
    }

    def __init__(self) -> None:
        self.grads = GradStore()

    def unwrap(self, model: Any) -> Any:
        return model  # no wrapper types to see through

    def type_name(self, module: Any) -> str:
        return (
            type(module).__name__
            if isinstance(module, L.Layer)
            else type(module).__name__.lower().removeprefix("tracked")
        )

    def kind(self, module: Any) -> str:
        if not isinstance(module, L.Layer):
            return "container"  # a list or dict of layers held by a subclassed model
        return _KIND(type(module))

    def children(self, module: Any) -> list[tuple[str, Any]]:
        role = _role(type(module))
        if role == "layer":
            # A layer's sublayers are the attributes holding layers Keras tracks.
            return _attribute_children(module) if module.__dict__.get("_layers") else []
        if role == "list":
            return [(str(i), c) for i, c in enumerate(module) if _is_layer_or_group(c)]
        if role == "dict":
            return [(str(k), c) for k, c in module.items() if _is_layer_or_group(c)]
        if role == "rnn":
            return []  # the cell's variables are the layer's own
        if role == "sequential" and _CHILD_KEYS in module.__dict__:
            return _named_children(module)
        return [(str(i), layer) for i, layer in enumerate(module.layers)]

    def child(self, module: Any, key: str) -> Any | None:
        role = _ROLES.get(type(module)) or _role(type(module))
        if role == "sequential" and key.isdigit() and _CHILD_KEYS not in module.__dict__:
            layers = module._layers  # `layers` would copy the list on every step
            position = int(key) + (1 if layers and isinstance(layers[0], L.InputLayer) else 0)
            return layers[position] if position < len(layers) else None
        if role == "functional" and key.isdigit():
            layers = module.layers
            return layers[int(key)] if int(key) < len(layers) else None
        if role != "layer":
            return next((c for k, c in self.children(module) if k == key), None)
        if not module.__dict__.get("_layers"):
            return None  # a layer without sublayers: the key names a variable, if anything
        value = vars(module).get(key)
        if value is not None and key not in _INTERNAL and _is_layer_or_group(value):
            return value
        return next((c for k, c in _attribute_children(module) if k == key), None)

    def containers(self, module: Any) -> tuple[Sized, ...]:
        role = _ROLES.get(type(module)) or _role(type(module))
        if role == "layer" and not module._layers:  # most layers: just their variables
            if module.built:  # Keras locks a built layer's state: no sublayer can appear
                return (module._trainable_variables, module._non_trainable_variables)
            return (module._layers, module._trainable_variables, module._non_trainable_variables)
        if role == "list":
            return (module,)  # a group of layers: its own members
        if role == "dict":
            return (module, module.values())
        if role == "functional":
            return (module._operations,)
        owner = module.cell if role == "rnn" else module
        # Sublayers are found by the attribute that holds them: watch the attributes too.
        attributes = vars(module)
        own = (module._layers, owner._trainable_variables, owner._non_trainable_variables)
        return (*own, attributes, attributes.values())

    def container_getter(self, module: Any) -> Callable[[Any], tuple[Sized, ...]]:
        if (
            (_ROLES.get(type(module)) or _role(type(module))) == "layer"
            and module.built
            and not module._layers
        ):
            return _BUILT_LEAF  # what containers() gives it, without a Python call
        return self.containers

    def variables(self, module: Any) -> list[NativeVariable]:
        role = _role(type(module))
        if role not in ("layer", "rnn"):
            return []  # containers own no variables, built or not
        owner = module.cell if role == "rnn" else module
        if not module.built and type(module).build is not L.Layer.build:
            raise NotBuiltError(
                f"Keras layer {module.name!r} ({type(module).__name__}) is not built, so its "
                "variables do not exist yet. Expected a built model: call it once on an input "
                "(model(x)) or call model.build(input_shape) first. " + received(built=False)
            )
        slots = _slot_names(owner)
        if not slots:
            own = [(v.name, v, "param") for v in owner._trainable_variables]
            frozen = owner._non_trainable_variables
            return own + [(v.name, v, "buffer") for v in frozen] if frozen else own
        own = [(slots.get(id(v)) or v.name, v, "param") for v in owner._trainable_variables]
        return own + [(slots.get(id(v)) or v.name, v, "buffer") for v in owner._non_trainable_variables]

    def after_write(self, module: Any) -> None:
        # What Keras' own weight loading does after setting a layer's variables: layers
        # that cache values derived from their state (Normalization's mean and variance)
        # rebuild the cache, else their outputs would still use the old values.
        finalize = getattr(module, "finalize_state", None)
        if callable(finalize) and getattr(module, "built", True):
            finalize()

    def input_rank(self, model: Any) -> int | None:
        try:  # a functional model, or a built Sequential: its declared inputs
            inputs = model.inputs if isinstance(model, (Functional, keras.Sequential)) else None
        except (AttributeError, ValueError):
            inputs = None
        if inputs:
            return len(inputs[0].shape)
        config = model.get_build_config() if getattr(model, "built", False) else None
        shape = (config or {}).get("input_shape")
        if isinstance(shape, (list, tuple)) and shape and not isinstance(shape[0], (list, tuple)):
            return len(shape)
        return None

    def holds(self, module: Any, native_name: str, var: Any) -> bool:
        owner = module.cell if _ROLES.get(type(module)) == "rnn" else module
        for v in owner._trainable_variables:
            if v is var:
                break
        else:
            if not any(v is var for v in owner._non_trainable_variables):
                return False
        slots = _slot_names(owner) or {}
        return (slots.get(id(var)) or var.name) == native_name  # a Keras variable's name never changes

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

    def view(self, var: Any) -> np.ndarray:
        import tensorflow as tf

        try:  # the variable's current buffer, read through DLPack
            return np.from_dlpack(tf.convert_to_tensor(var.value))
        except (TypeError, RuntimeError, BufferError, AttributeError):
            return var.numpy()

    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        import tensorflow as tf

        tensor: Any = value
        if value.dtype in (np.float32, np.float64) and value.nbytes >= 1 << 20:
            # A copy we own, 64-byte aligned as TF's kernels require, handed over
            # through DLPack (TF's own conversion would copy twice); a copy made
            # for this call already is handed over as it is.
            if not (owned and value.ctypes.data % ALIGNMENT == 0):
                value = contiguous(value, out=aligned_empty(value.shape, value.dtype))
            tensor = tf.experimental.dlpack.from_dlpack(value.__dlpack__())
        var.assign(tensor)

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        assign_slice_by_copy(self, var, index, value)

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        return False  # TF buffers are immutable to numpy: assign() copies

    def grad(self, var: Any) -> np.ndarray | None:
        return self.grads.get(var)

    def hyperparameters(self, module: Any) -> dict[str, float]:
        out = {}
        if isinstance(getattr(module, "epsilon", None), float):
            out["eps"] = module.epsilon
        if isinstance(module, L.BatchNormalization):
            out["momentum"] = 1.0 - module.momentum  # Keras keeps 1 - torch's momentum
        if isinstance(module, L.DepthwiseConv2D) and module.built:
            out["groups"] = float(module.kernel.shape[2])  # one group per input channel
        elif isinstance(getattr(module, "groups", None), int):
            out["groups"] = float(module.groups)
        return out

    def forward(self, model: Any, inputs: np.ndarray, training: bool) -> Any:
        return np.asarray(model(inputs, training=training))

    def set_child(self, parent: Any, key: str, child: Any) -> None:
        if isinstance(parent, (list, dict)):
            parent[int(key) if isinstance(parent, list) else key] = child
        elif isinstance(parent, keras.Sequential):
            keys = [k for k, _ in self.children(parent)]
            _replace_in_sequential(parent, keys.index(key), child)
            if _CHILD_KEYS in parent.__dict__:
                declare_keys(parent, keys)
        elif isinstance(parent, Functional):
            raise UnsupportedError(
                "A layer-level tie inside a Keras functional model would rewire its graph. Expected a "
                "Sequential or subclassed model, or a parameter-level tie (up.tie on parameter paths). "
                + received(parent=parent.name, key=key)
            )
        else:
            _replace_attribute(parent, key, child)

    def copy_layer(self, layer: Any) -> Any:
        config = layer.get_config()
        config.pop("name", None)  # a fresh, unique name
        new = type(layer).from_config(config)
        new.build_from_config(layer.get_build_config())
        for mine, theirs in zip(new.weights, layer.weights, strict=True):
            mine.assign(theirs)
        return new

    def set_variable(self, module: Any, native_name: str, var: Any) -> None:
        # Keras refuses new state after build ("cannot add new elements of state"); the
        # layer's tracker can still swap one tracked variable for another in place.
        owner = module.cell if isinstance(module, L.RNN) else module
        names = _slot_names(owner) or {}
        slots = owner.__dict__.get(_SLOT_NAMES, {})
        old = next(
            v
            for v in owner._trainable_variables + owner._non_trainable_variables
            if (names.get(id(v)) or v.name) == native_name
        )
        tracker = owner._tracker
        store = (
            "trainable_variables"
            if tracker.is_in_store("trainable_variables", old)
            else "non_trainable_variables"
        )
        # Keras' own replace_tracked_value finds `old` with list.index, which compares a
        # variable with `==` (elementwise) and fails for any but the first variable of
        # the store: replace by identity instead (keras 3.15 tracking.Tracker).
        members = tracker.config[store][1]
        members[next(i for i, v in enumerate(members) if v is old)] = var
        tracker.stored_ids[store].discard(id(old))
        tracker.stored_ids[store].add(id(var))
        for attr, value in list(vars(owner).items()):
            if value is old:
                object.__setattr__(owner, attr, var)  # the layer's own attribute, untracked
        slots = {k: n for k, n in slots.items() if k != id(old)}
        slots[id(var)] = native_name
        object.__setattr__(owner, _SLOT_NAMES, slots)

    def copy_variable(self, var: Any) -> Any:
        return keras.Variable(var.numpy(), dtype=var.dtype, trainable=var.trainable, name=var.name)

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        import tensorflow as tf

        t = None if request.targets is None else tf.convert_to_tensor(request.targets)
        with tf.GradientTape() as tape:
            out = model(tf.convert_to_tensor(request.inputs), training=request.training)
            value = reduce_loss(out, request.loss, t, keras.ops.sum, keras.ops.mean)
        out_grads = []
        for var, grad in zip(variables, tape.gradient(value, variables), strict=True):
            if grad is None:
                self.grads.clear(var)
                out_grads.append(None)
                continue
            array = tf.convert_to_tensor(grad).numpy()  # embeddings give IndexedSlices
            self.grads.put(var, array)
            out_grads.append(array)
        return out_grads


def declare_keys(model: Any, keys: list[str]) -> None:
    """Key the children of a Keras Sequential by name (``up.spec`` named children).

    Keras keeps no names for a Sequential's positions, only each layer's
    own name; the keys are kept on the model, each with the layer it names.
    """
    layers = model.layers
    if len(keys) != len(layers):
        raise UnsupportedError(
            f"{len(keys)} keys for a Sequential of {len(layers)} layers. Expected one key per layer. "
            + received(keys=keys)
        )
    object.__setattr__(model, _CHILD_KEYS, tuple((k, id(x)) for k, x in zip(keys, layers, strict=True)))


def _named_children(model: Any) -> list[tuple[str, Any]]:
    declared = model.__dict__[_CHILD_KEYS]
    out = []
    for i, layer in enumerate(model.layers):
        named = i < len(declared) and declared[i][1] == id(layer)
        out.append((declared[i][0] if named else str(i), layer))
    return out


def _slot_names(owner: Any) -> dict[int, str] | None:
    """Names of the slots whose variable is not named after them, by the
    variable's id: tied ones, a depthwise kernel (its own layout), and
    variables Keras named itself (``add_weight()`` without a name)."""
    slots = owner.__dict__.get(_SLOT_NAMES)
    if isinstance(owner, L.DepthwiseConv2D):
        slots = {id(owner.kernel): "depthwise_kernel", **(slots or {})}
    unnamed = _unnamed(owner)
    if unnamed:
        slots = {**unnamed, **(slots or {})}
    return slots


#: A name Keras gives a variable created without one: a process-wide counter.
_AUTO_NAME = re.compile(r"variable(_\d+)?")


def _unnamed(owner: Any) -> dict[int, str] | None:
    """Structural names for variables Keras named itself ("variable_17", from a
    process-wide counter): the attribute of the layer that holds the variable
    (LayerScale's ``gamma``), else ``variable_<k>``, its position among the
    layer's variables. The same in every process and every instance."""
    variables = [*owner._trainable_variables, *owner._non_trainable_variables]
    auto = [v for v in variables if v.name.startswith("variable") and _AUTO_NAME.fullmatch(v.name)]
    if not auto:
        return None
    attributes = {
        id(v): k for k, v in vars(owner).items() if not k.startswith("_") and isinstance(v, keras.Variable)
    }
    position = {id(v): k for k, v in enumerate(variables)}  # by identity: == is elementwise here
    return {id(v): attributes.get(id(v)) or f"variable_{position[id(v)]}" for v in auto}


def _replace_in_sequential(model: Any, index: int, layer: Any) -> None:
    """Swap the layer at a position of a Sequential through its public pop/add."""
    tail = [model.pop(rebuild=False) for _ in range(len(model.layers) - index)][::-1]
    tail[0] = layer
    for item in tail:
        model.add(item, rebuild=False)
    model._maybe_rebuild()


def _replace_attribute(parent: Any, key: str, child: Any) -> None:
    """Point an attribute of a subclassed layer at another layer, dropping the old one
    from Keras' tracking when nothing else holds it."""
    old = getattr(parent, key)
    tracker = parent._tracker
    was_locked = tracker.locked
    tracker.unlock()
    try:
        setattr(parent, key, child)
        if not any(v is old for v in vars(parent).values()):
            tracker.untrack(old)
    finally:
        if was_locked:
            tracker.lock()


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
