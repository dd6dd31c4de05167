"""The Keras 3 adapter: ``keras.layers.Layer`` models (Sequential, functional,
subclassed) on any Keras engine.

A Keras variable has no ``.grad``: gradients live in a `GradStore`. Reading,
writing and differentiating go through the engine this process runs
(`unified_params.backends.keras.engines`); Keras' private bookkeeping
through `unified_params.backends.keras.internals`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import replace
from typing import Any, ClassVar

import keras
import numpy as np

from ..._core import activations
from ..._core.errors import NotBuiltError, UnsupportedError, received
from ..._core.flatten import FlatInput
from ..._core.geometry import SAME, Geometry, Pad, Pooling
from ..._core.grad_store import GradStore
from ..._core.gradients import Backward
from ..._core.initializers import Initializer
from ..._core.leaf_norms import StoredNorm
from ..._core.low_rank import LowRank
from ..._core.paths import positions
from ..._core.sharding import Sharding
from ..._core.upsampling import Upsampling
from .._base import (
    Adapter,
    NativeVariable,
    cell_functions,
    epsilon_momentum,
    holds_layer,
    runs_its_own,
    set_epsilon_momentum,
)
from . import graph, internals, kinds, leaves, tables
from .engines import engine_for

L = keras.layers
_MAX_POOLS = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D)
_AVG_POOLS = (L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D)
_UPSAMPLING = (L.UpSampling1D, L.UpSampling2D, L.UpSampling3D)
#: ``UpSampling2D``'s interpolations as `Upsampling` names them (``bicubic``: the
#: engine's); the others (``lanczos3``, ``area``, ...) by their own names.
_INTERPOLATIONS = {"nearest": "nearest", "bilinear": "linear"}
_TRANSPOSED = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_CONV_LAYERS = (
    L.Conv1D, L.Conv2D, L.Conv3D, L.SeparableConv1D, L.SeparableConv2D, L.DepthwiseConv1D, L.DepthwiseConv2D,
    *_TRANSPOSED,
)  # fmt: skip
#: Layers that apply their ``activation`` to their outputs.
_ACTIVATES = (L.Dense, *_CONV_LAYERS)
#: Keras' activation functions by their ``__name__`` (Keras 3.15.1), as
#: `unified_params._core.activations` names them with each function's defaults
#: (``leaky_relu``'s slope 0.2, ``gelu`` exact); ``softmax`` and ``log_softmax``
#: run over the last axis, which `graph.over_channels` checks.
_ACTIVATION_NAMES = {
    "linear": "none", "relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh", "gelu": "gelu",
    "silu": "silu", "hard_sigmoid": "hard_sigmoid", "hard_silu": "hard_swish", "elu": "elu", "selu": "selu",
    "softplus": "softplus", "softsign": "softsign", "mish": "mish", "log_sigmoid": "log_sigmoid",
    "celu": "celu", "hard_tanh": "hard_tanh", "soft_shrink": "soft_shrink", "tanh_shrink": "tanh_shrink",
    "leaky_relu": activations.named("leaky_relu", negative_slope=0.2), "softmax": "softmax",
    "log_softmax": "log_softmax",
}  # fmt: skip
_ROLE_ORDER = (
    (list, "list"), (tuple, "list"), (dict, "dict"), (keras.Sequential, "sequential"),
    (internals.Functional, "functional"), (L.RNN, "rnn"),
)  # fmt: skip
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


_LAYER_BUILD = L.Layer.build
#: Per class: whether it is a layer whose variables are named after their slots
#: (not a group of layers, not an RNN, not a depthwise layer, whose kernel is renamed).
_PLAIN: dict[type, bool] = {}


def _plain(cls: type) -> bool:
    found = _PLAIN.get(cls)
    if found is None:
        found = _PLAIN[cls] = _role(cls) == "layer" and not issubclass(cls, L.DepthwiseConv2D)
    return found


_name_of = internals.variable_name
_own_variables = internals.own_variables
_LAYERS = internals.LAYERS
_INPUT_LAYER = L.InputLayer
#: Variable names seen on plain layers that Keras did not make up ("kernel"): a
#: set look-up per variable, where ``startswith`` is a method call.
_NAMED: set[str] = set()


def _named(name: str) -> bool:
    """Whether a plain layer's variable ``name`` is its slot's, not one Keras made up."""
    if name.startswith(_MADE_UP):
        return False
    _NAMED.add(name)
    return True


def _plain_variables(modules: Sequence[Any], *, leaves_only: bool) -> list[list[NativeVariable] | None]:
    """Per module, its variables when it is a built plain layer (each variable
    named after its slot: most layers), else ``None``; with ``leaves_only``,
    also ``None`` for a layer with sublayers. One loop for a container's layers:
    a collect-all reads every layer through it."""
    found: list[list[NativeVariable] | None] = []
    for module in modules:
        cls = type(module)
        state = module.__dict__
        if (
            not (_PLAIN.get(cls) or _plain(cls))
            or _SLOT_NAMES in state
            or (leaves_only and state.get(_LAYERS))
            or not (state.get("built") or cls.build is _LAYER_BUILD)
        ):
            found.append(None)
            continue
        trained, frozen = _own_variables(module)
        own: list[NativeVariable] = []
        # Unrolled for the two roles: a loop over the roles costs 20% of a read.
        for var in trained:  # loops, not comprehensions: cheaper for a few variables
            name = _name_of(var)
            if name not in _NAMED and not _named(name):
                break  # a name Keras made up: the slot table decides
            own.append((name, var, "param"))
        else:
            for var in frozen:
                name = _name_of(var)
                if name not in _NAMED and not _named(name):
                    break
                own.append((name, var, "buffer"))
            else:
                found.append(own)
                continue
        found.append(None)
    return found


def _crops(module: Any, kernel: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[Pad, ...]:
    """What a transposed convolution crops from the start and the end of its full
    output (``(n - 1) * stride + span`` positions; a negative end adds positions):
    Keras 3.15.1 sizes the output by TensorFlow's rule (``valid``: the full output
    and ``output_padding``, by default what a stride longer than the kernel
    leaves; ``same``: ``n * stride``, or ``(n - 1) * stride + span % 2 +
    output_padding``), and ``same`` crops half of what it drops, the odd one
    at the end."""
    extras = module.output_padding or (None,) * len(kernel)
    out = []
    for k, d, s, extra in zip(kernel, dilation, module.strides, extras, strict=True):
        span = d * (k - 1) + 1
        if module.padding == "valid":
            out.append((0, -(max(span, s) - span if extra is None else extra)))
            continue
        dropped = span - s if extra is None else span - span % 2 - extra  # full output minus Keras' own
        first = max(dropped, 0) // 2
        out.append((first, dropped - first))
    return tuple(out)


def _containers(module: Any) -> tuple[Sized, ...]:
    """Where a Keras layer or group keeps its children and own variables."""
    role = _ROLES.get(type(module)) or _role(type(module))
    if role == "layer" and not internals.sublayers(module):
        return (internals.sublayers(module), *internals.own_variables(module))
    if role == "list":
        return (module,)  # a group of layers: its own members
    if role == "dict":
        return (module, module.values())
    if role == "functional":
        return (internals.operations(module),)
    owner = module.cell if role == "rnn" else module
    # Sublayers are found by the attribute that holds them: watch the attributes too.
    own = vars(module)
    modules = own.get("_modules") or {}  # the torch engine's: see internals.attributes
    held = (own, own.values(), modules, modules.values())
    return (internals.sublayers(module), *internals.own_variables(owner), *held)


#: A Keras recurrent cell's functions, by the name torch's convention gives them.
_CELL_FUNCTIONS = {"activation": "activation", "recurrent_activation": "recurrent_activation"}

#: Numbers the copies of a Sequential (a copy needs a name of its own).
_COPIES = itertools.count(1)


class KerasAdapter(Adapter):
    name = "keras"
    LEAVES = leaves.LEAVES
    MERGES = tables.MERGES
    INSTANCE_KINDS = kinds.SETTLED  # their settings decide their kinds
    KIND_NOTES = kinds.NOTES
    GATHERS = tables.GATHERS
    WEIGHTLESS_FUNCTIONS = tables.WEIGHTLESS_FUNCTIONS
    FRAMEWORK_PACKAGES = tables.FRAMEWORK_PACKAGES
    DEFAULT_INIT: ClassVar[Mapping[str, Mapping[str, Initializer]]] = tables.DEFAULT_INIT

    def __init__(self) -> None:
        self.grads = GradStore()
        self.engine = engine_for(keras.backend.backend())

    def type_name(self, module: Any) -> str:
        return (
            type(module).__name__
            if isinstance(module, L.Layer)
            else type(module).__name__.lower().removeprefix("tracked")
        )

    def kind(self, module: Any) -> str:
        if not isinstance(module, L.Layer):
            return "container"  # a list or dict of layers held by a subclassed model
        return kinds.settled(module, tables.KIND(type(module)))

    def children(self, module: Any) -> list[tuple[str, Any]]:
        role = _ROLES.get(type(module)) or _role(type(module))
        if role == "layer":
            # A layer's sublayers are the attributes holding layers Keras tracks.
            return _attribute_children(module) if module.__dict__.get(internals.LAYERS) else []
        if role == "list":
            return [(str(i), c) for i, c in enumerate(module) if _is_layer_or_group(c)]
        if role == "dict":
            return [(str(k), c) for k, c in module.items() if _is_layer_or_group(c)]
        if role == "rnn":
            return []  # the cell's variables are the layer's own
        if role == "sequential" and _CHILD_KEYS in module.__dict__:
            return _named_children(module)
        layers = module.layers
        return list(zip(positions(len(layers)), layers, strict=False))  # the keys run on

    def child(self, module: Any, key: str) -> Any | None:
        cls = type(module)
        role = _ROLES.get(cls) or _role(cls)
        if role == "sequential" and key.isdigit():  # the step of most look-ups: kept lean
            state = module.__dict__
            if _CHILD_KEYS not in state:
                layers = state.get(_LAYERS) or ()  # `layers` would copy the list on every step
                position = int(key) + (1 if layers and isinstance(layers[0], _INPUT_LAYER) else 0)
                return layers[position] if position < len(layers) else None
        if role == "functional" and key.isdigit():
            layers = module.layers
            return layers[int(key)] if int(key) < len(layers) else None
        if role != "layer":
            return next((c for k, c in self.children(module) if k == key), None)
        if not internals.sublayers(module):
            return None  # a layer without sublayers: the key names a variable, if anything
        value = internals.attributes(module).get(key)
        if value is not None and key not in internals.BOOKKEEPING and _is_layer_or_group(value):
            return value
        return next((c for k, c in _attribute_children(module) if k == key), None)

    def child_names(self, module: Any) -> dict[str, str]:
        role = _ROLES.get(type(module)) or _role(type(module))
        if role not in ("sequential", "functional") or _CHILD_KEYS in module.__dict__:
            return {}  # a layer's sublayers are keyed by their attributes' names already
        return {layer.name: key for key, layer in self.children(module)}

    def container_getter(self, module: Any) -> Callable[[Any], tuple[Sized, ...]]:
        if (_ROLES.get(type(module)) or _role(type(module))) == "layer" and module.built:
            if not internals.sublayers(module):
                # Keras locks a built layer's state: no sublayer can appear, so its own
                # variables are all there is to watch, read without a Python call.
                return internals.own_variables
        return _containers

    def variables(self, module: Any) -> list[NativeVariable]:
        own = _plain_variables((module,), leaves_only=False)[0]
        return self._variables(module) if own is None else own

    def leaf_variables(self, modules: list[Any]) -> list[list[NativeVariable] | None]:
        return _plain_variables(modules, leaves_only=True)

    def _variables(self, module: Any) -> list[NativeVariable]:
        """`variables`, for any module: containers, RNNs, tied or unbuilt layers."""
        cls = type(module)
        role = _ROLES.get(cls) or _role(cls)
        if role == "layer":
            owner = module
        elif role == "rnn":
            owner = module.cell  # the cell's variables are the layer's own
        else:
            return []  # containers own no variables, built or not
        if not module.__dict__.get("built") and cls.build is not _LAYER_BUILD:
            raise NotBuiltError(
                f"Keras layer {module.name!r} ({type(module).__name__}) is not built, so its "
                "variables do not exist yet. Expected a built model: call it once on an input "
                "(model(x)) or call model.build(input_shape) first; a layer the model's call does "
                "not use stays unbuilt after that: build it on its own (layer.build(input_shape)) "
                "or remove it. " + received(built=False)
            )
        trained, frozen = internals.own_variables(owner)
        own = [(_name_of(v), v, "param") for v in trained]
        own += [(_name_of(v), v, "buffer") for v in frozen]
        slots = _slot_names(owner)
        if slots:  # the layers whose slots are not named after their variable
            own = [(slots.get(id(v)) or n, v, r) for n, v, r in own]
        return own

    def after_write(self, module: Any) -> None:
        # What Keras' own weight loading does after setting a layer's variables: layers
        # that cache values derived from their state (Normalization's mean and variance)
        # rebuild the cache, else their outputs would still use the old values.
        finalize = getattr(module, "finalize_state", None)
        if callable(finalize) and getattr(module, "built", True):
            finalize()

    def after_structure_change(self, model: Any) -> None:
        internals.retrack_engine_mirrors(model)

    def geometry(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> Geometry | None:
        if not isinstance(module, _CONV_LAYERS):
            return None
        kernel, dilation = tuple(module.kernel_size), tuple(module.dilation_rate)
        transposed = isinstance(module, _TRANSPOSED)
        padding: tuple[Pad, ...]
        if runs_its_own(module, _CONV_LAYERS, "call"):
            padding = (None,) * len(kernel)  # its own call may pad otherwise
        elif transposed:
            padding = _crops(module, kernel, dilation)
        elif module.padding == "causal":  # all of it before, as a causal Conv1D pads
            padding = tuple((d * (k - 1), 0) for d, k in zip(dilation, kernel, strict=True))
        else:
            padding = tuple(SAME if module.padding == "same" else (0, 0) for _ in kernel)
        holders = [holder for holder, _ in ancestors]  # where it takes a nested model's input
        fed = None if transposed else graph.convolution_input(module, len(kernel), holders)
        sizes, before = fed if fed is not None else (None, None)
        return Geometry(kernel, tuple(module.strides), dilation, padding, before=before, sizes=sizes,
                        transposed=transposed)  # fmt: skip

    def pooling(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> Pooling | None:
        if not isinstance(module, _MAX_POOLS + _AVG_POOLS):
            return None
        kernel = tuple(module.pool_size)
        padding: tuple[Pad, ...] = tuple(SAME if module.padding == "same" else (0, 0) for _ in kernel)
        if runs_its_own(module, _MAX_POOLS + _AVG_POOLS, "call"):
            padding = (None,) * len(kernel)  # its own call may pool otherwise
        fed = graph.convolution_input(module, len(kernel), [holder for holder, _ in ancestors])
        sizes, before = fed if fed is not None else (None, None)
        geometry = Geometry(
            kernel, tuple(module.strides), (1,) * len(kernel), padding, before=before, sizes=sizes
        )
        # "same" divides by the input's positions alone (on torch: where it splits evenly).
        if isinstance(module, _AVG_POOLS):
            if module.padding == "valid" or self.engine.same_average_excludes_padding:
                return Pooling("average", geometry, counts_padding=False)
            even = geometry.same_split_evenly()  # on torch, Keras repeats the edges of an uneven one
            if even is None:
                return Pooling("average", geometry, counts_padding=None)
            mode = "zeros" if even else "replicate"
            return Pooling("average", replace(geometry, mode=mode), counts_padding=not even)
        return Pooling("max", geometry, input_activation=graph.input_activation(module, _ACTIVATION_NAMES))

    def upsampling(self, module: Any) -> Upsampling | None:
        if not isinstance(module, _UPSAMPLING) or runs_its_own(module, _UPSAMPLING, "call"):
            return None
        size = module.size if isinstance(module.size, (tuple, list)) else (module.size,)
        given = getattr(module, "interpolation", "nearest")  # 1D and 3D repeat each position
        interpolation = self.engine.cubic if given == "bicubic" else _INTERPOLATIONS.get(given, given)
        return Upsampling(interpolation, tuple(float(s) for s in size))

    def inference_rescaling(self, module: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        rescaling = keras.layers.Rescaling
        if not isinstance(module, rescaling) or runs_its_own(module, (rescaling,), "call"):
            return None
        scale, offset = (tuple(float(v) for v in np.ravel(given)) for given in (module.scale, module.offset))
        if set(scale) == {1.0} and set(offset) == {0.0}:
            return None  # a rescaling by one: its input unchanged
        return scale, offset

    def low_rank(self, module: Any) -> tuple[LowRank, ...]:
        # Keras 3.15.1 `enable_lora` (Dense, EinsumDense, Embedding, convolutions): the layer
        # adds (lora_alpha / lora_rank) * lora_<leaf>_a @ lora_<leaf>_b to its <leaf> on each
        # call. A quantized layer's leaf is stored quantized: not merged here.
        if not getattr(module, "lora_enabled", False) or getattr(module, "quantization_mode", None):
            return ()
        names = {name for name, _, _ in self.variables(module)}
        scale = module.lora_alpha / module.lora_rank
        return tuple(
            LowRank(name[5:-2], name, f"{name[:-2]}_b", scale)
            for name in sorted(names)
            if name.startswith("lora_") and name.endswith("_a") and {name[5:-2], f"{name[:-2]}_b"} <= names
        )

    def stored_norms(self, module: Any) -> tuple[StoredNorm, ...]:
        # Keras 3.15.1 SpectralNormalization (its exact class: a subclass may call otherwise):
        # built, it holds its layer's `kernel` (or `embeddings`) as `kernel` and a (1, n)
        # `vector_u` over that leaf's last axis; a call in training assigns kernel / sigma to
        # the layer's variable, and at inference the layer computes with it as it is.
        if type(module) is not keras.layers.SpectralNormalization or not module.built:
            return ()
        kernel, u = module.kernel, module.vector_u
        leaf = next((name for name, var, _ in self.variables(module.layer) if var is kernel), None)
        held = next((name for name, var, _ in self.variables(module) if var is u), None)
        key = next((key for key, child in self.children(module) if child is module.layer), None)
        if leaf is None or held is None or key is None:
            return ()
        return (StoredNorm(key, leaf, len(kernel.shape) - 1, held, module.power_iterations),)

    def output_activation(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> str | None:
        fused = getattr(module.activation, "__name__", "") if isinstance(module, _ACTIVATES) else "linear"
        own = graph.over_channels(
            _ACTIVATION_NAMES.get(fused), graph.channels_are_last(module)
        )  # None: not named
        if own is None:
            return None
        root = ancestors[0][0] if ancestors else module
        after = graph.activations_after(root, module, _ACTIVATION_NAMES)
        if after is None:  # no graph (a subclassed model) or one that cannot tell: its own, if any
            return None if own == "none" else own
        return activations.chain([own, *after] if own != "none" else after)

    def flattened_input(self, layer: Any) -> FlatInput | None:
        return graph.flattened_input(layer)

    def unflattened_output(self, layer: Any) -> FlatInput | None:
        return graph.unflattened_output(layer)

    def consumers(self, root: Any, layer: Any) -> list[Any] | None:
        return graph.consumers(root, layer)

    def input_rank(self, model: Any) -> int | None:
        try:  # a functional model, or a built Sequential: its declared inputs
            inputs = model.inputs if isinstance(model, (internals.Functional, keras.Sequential)) else None
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
        trained, frozen = _own_variables(owner)
        for held in trained:  # by identity (a variable's == is elementwise), in loops: a few variables
            if held is var:
                break
        else:
            for held in frozen:
                if held is var:
                    break
            else:
                return False
        name = _name_of(var)
        cls = type(owner)
        if (
            name == native_name
            and (name in _NAMED or _named(name))  # not a name Keras made up
            and _SLOT_NAMES not in owner.__dict__  # no tie, no rename
            and (_PLAIN.get(cls) or _plain(cls))
        ):
            return True  # the slot is named after its variable: no slot table to build
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

    def view(self, var: Any) -> np.ndarray:
        return self.engine.view(self.engine.whole(var))

    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        self.engine.assign(self.engine.whole(var), value, owned)

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        if not self.engine.assign_slice(self.engine.whole(var), index, value):
            super().assign_slice(var, index, value)

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        return self.engine.fill_in_place(self.engine.whole(var), fill)

    def sharding(self, var: Any) -> Sharding | None:
        self.engine.whole(var)  # spread over processes: refused; over this process's devices: whole
        return None

    def grad(self, var: Any) -> np.ndarray | None:
        return self.grads.get(var)

    def hyperparameters(self, module: Any) -> dict[str, float | str]:
        out: dict[str, float | str] = {**epsilon_momentum(module, L.BatchNormalization)}
        if isinstance(module, L.RNN):
            out.update(cell_functions(module.cell, _CELL_FUNCTIONS))
            out["direction"] = "reverse" if module.go_backwards else "forward"  # reversed outputs too
            out["merge"] = "none"  # unless a Bidirectional holds it: `settings_given`
        if isinstance(module, L.GroupNormalization):
            out["num_groups"] = float(module.groups)
        elif isinstance(module, L.DepthwiseConv2D) and module.built:
            out["groups"] = float(module.kernel.shape[2])  # one group per input channel
        elif isinstance(getattr(module, "groups", None), int):
            out["groups"] = float(module.groups)
        return out

    def set_hyperparameters(self, module: Any, values: Mapping[str, float]) -> None:
        set_epsilon_momentum(module, values)

    def input_layout(self, layer: Any) -> str | None:
        if isinstance(layer, (L.BatchNormalization, L.GroupNormalization)):
            return kinds.norm_layout(layer)  # its axis says where it takes the channels
        return "channels_first" if getattr(layer, "data_format", None) == "channels_first" else None

    def settings_given(self, parent: Any, key: str) -> dict[str, float | str]:
        if isinstance(parent, L.Bidirectional) and key in ("forward_layer", "backward_layer"):
            return {"merge": str(parent.merge_mode)}  # the backward layer runs go_backwards itself
        return {}

    def forward(self, model: Any, inputs: np.ndarray, training: bool) -> Any:
        return keras.ops.convert_to_numpy(model(inputs, training=training))

    def set_child(self, parent: Any, key: str, child: Any) -> None:
        if isinstance(parent, (list, dict)):
            if isinstance(parent, list):
                parent[int(key)] = child
            else:
                parent[key] = child
        elif isinstance(parent, keras.Sequential):
            keys = [k for k, _ in self.children(parent)]
            internals.replace_in_sequential(parent, keys.index(key), child)
            if _CHILD_KEYS in parent.__dict__:
                declare_keys(parent, keys)
        elif isinstance(parent, internals.Functional):
            raise UnsupportedError(
                "A layer-level tie inside a Keras functional model would rewire its graph. Expected a "
                "Sequential or subclassed model, or a parameter-level tie (up.tie on parameter paths). "
                + received(parent=parent.name, key=key)
            )
        else:
            internals.replace_attribute(parent, key, child)

    def copy_layer(self, layer: Any) -> Any:
        config = layer.get_config()
        if "layers" in config:  # a Sequential's config needs a name: a new one
            config["name"] = f"{layer.name}_copy_{next(_COPIES)}"
        else:
            config.pop("name", None)  # a fresh, unique name
        new = type(layer).from_config(config)
        new.build_from_config(layer.get_build_config())
        for mine, theirs in zip(new.weights, layer.weights, strict=True):
            self.assign(mine, self.to_numpy(theirs))
        return new

    def set_variable(self, module: Any, native_name: str, var: Any) -> None:
        # Keras refuses new state after build ("cannot add new elements of state"); the
        # layer's tracker can still swap one tracked variable for another in place.
        owner = module.cell if isinstance(module, L.RNN) else module
        names = _slot_names(owner) or {}
        slots = owner.__dict__.get(_SLOT_NAMES, {})
        old = next(
            v
            for v in [*internals.own_variables(owner)[0], *internals.own_variables(owner)[1]]
            if (names.get(id(v)) or v.name) == native_name
        )
        internals.replace_tracked_variable(owner, old, var)
        for attr, value in list(vars(owner).items()):
            if value is old:
                object.__setattr__(owner, attr, var)  # the layer's own attribute, untracked
        slots = {k: n for k, n in slots.items() if k != id(old)}
        slots[id(var)] = native_name
        object.__setattr__(owner, _SLOT_NAMES, slots)

    def copy_variable(self, var: Any) -> Any:
        return keras.Variable(self.to_numpy(var), dtype=var.dtype, trainable=var.trainable, name=var.name)

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        grads = self.engine.gradients(model, variables, request)
        for var, grad in zip(variables, grads, strict=True):
            if grad is None:
                self.grads.clear(var)
            else:
                self.grads.put(var, grad)
        return grads


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


#: How every name Keras gives a variable created without one starts (a cheap test).
_MADE_UP = "variable"
#: A name Keras gives a variable created without one: a process-wide counter.
_AUTO_NAME = re.compile(rf"{_MADE_UP}(_\d+)?")


def _unnamed(owner: Any) -> dict[int, str] | None:
    """Structural names for variables Keras named itself ("variable_17", from a
    process-wide counter): the attribute of the layer that holds the variable
    (LayerScale's ``gamma``), else ``variable_<k>``, its position among the
    layer's variables. The same in every process and every instance."""
    trained, frozen = internals.own_variables(owner)
    variables = [*trained, *frozen]
    auto = [v for v in variables if v.name.startswith(_MADE_UP) and _AUTO_NAME.fullmatch(v.name)]
    if not auto:
        return None
    attributes = {
        id(v): k for k, v in vars(owner).items() if not k.startswith("_") and isinstance(v, keras.Variable)
    }
    position = {id(v): k for k, v in enumerate(variables)}  # by identity: == is elementwise here
    return {id(v): attributes.get(id(v)) or f"variable_{position[id(v)]}" for v in auto}


def _is_layer_or_group(value: Any) -> bool:
    return holds_layer(value, L.Layer)


def _attribute_children(layer: Any) -> list[tuple[str, Any]]:
    """Sublayers of a subclassed layer, keyed by the attribute that holds them, in
    the order Keras tracked them (the order they were assigned)."""
    order = {id(x): i for i, x in enumerate(internals.sublayers(layer))}
    found_at: list[tuple[int, str, Any]] = []
    covered: set[int] = set()
    for key, value in internals.attributes(layer).items():
        if key in internals.BOOKKEEPING or key.startswith("_self_") or not _is_layer_or_group(value):
            continue
        found = _layer_ids(value)
        if found and found <= order.keys():
            found_at.append((min(order[i] for i in found), key, value))
            covered |= found
    out = [(key, value) for _, key, value in sorted(found_at, key=lambda item: item[0])]
    # Layers Keras tracks but no attribute names (rare): keyed by layer name.
    out += [(x.name, x) for x in internals.sublayers(layer) if id(x) not in covered]
    return out


def _layer_ids(value: Any) -> set[int]:
    if isinstance(value, L.Layer):
        return {id(value)}
    items = value.values() if isinstance(value, dict) else value
    return set().union(*(_layer_ids(v) for v in items if _is_layer_or_group(v))) if items else set()


ADAPTER = KerasAdapter()
