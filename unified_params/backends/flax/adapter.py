"""The Flax NNX adapter: ``flax.nnx.Module`` models on JAX.

An NNX module is a Python object graph: children and variables are its
attributes, ``nnx.Sequential`` holds its layers (and functions such as
``nnx.relu``) in an ``nnx.List``. A variable (``nnx.Param``, ``nnx.BatchStat``)
is a box around an immutable ``jax.Array``: a write puts a new array in the
same box, so the box's identity, which the core compares, never changes.
NNX has no per-variable ``trainable`` flag (an optimiser picks what it updates
with a filter); this adapter keeps one as the variable's ``trainable``
metadata, honoured by its gradients and readable by an ``nnx.Optimizer``
filter. Gradients come from ``nnx.grad`` and live in a `GradStore`.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..._core import activations, sequence
from ..._core.errors import UnsupportedError, received, without_values
from ..._core.geometry import SAME, Geometry, Pad
from ..._core.grad_store import GradStore
from ..._core.gradients import Backward, reduce_loss
from ..._core.initializers import Initializer
from ..._core.layouts import UNKNOWN_KIND, Leaf
from ..._core.low_rank import LowRank
from .._base import (
    Adapter,
    NativeVariable,
    cell_functions,
    epsilon_momentum,
    holds_layer,
    per_axis,
    runs_its_own,
    set_epsilon_momentum,
)
from . import internals, leaves, tables
from .layers import NamedSequential, flatten

#: Containers whose positions are their ``layers`` (an nnx.List, or an nnx.Dict of named ones).
_SEQUENTIAL = (nnx.Sequential, NamedSequential)

#: Variable types that are not model state a checkpoint keeps: a layer's
#: random-number streams, and values a call records (``sow``, decoding caches).
_SKIPPED = (nnx.RngState,)
#: ``nnx.Bidirectional`` runs its children in this order, the second reversed.
_DIRECTIONS = {"forward_rnn": "forward", "backward_rnn": "reverse"}
_TRANSIENT = (nnx.Intermediate, nnx.Cache)


def is_trainable(var: Any) -> bool:
    """Whether an optimiser should update ``var``: an ``nnx.Param`` not frozen
    with ``up``'s ``trainable`` metadata. Usable as an NNX filter.

    Examples:
        >>> from flax import nnx
        >>> layer = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        >>> is_trainable(layer.kernel)
        True
    """
    return isinstance(var, nnx.Param) and bool(var.get_metadata().get("trainable", True))


#: jax's activation functions by their ``__name__`` (jax 0.10), as
#: `unified_params._core.activations` names them with each function's defaults:
#: ``gelu`` approximates by tanh, ``leaky_relu``'s slope is 0.01; ``softmax`` and
#: ``log_softmax`` run over the last axis, the channels of every NNX layer's output.
_FUNCTIONS = {
    "relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh", "silu": "silu",
    "hard_sigmoid": "hard_sigmoid", "hard_silu": "hard_swish", "elu": "elu", "selu": "selu",
    "softplus": "softplus", "soft_sign": "softsign", "mish": "mish", "log_sigmoid": "log_sigmoid",
    "celu": "celu", "hard_tanh": "hard_tanh", "softmax": "softmax", "log_softmax": "log_softmax",
    "gelu": activations.named("gelu", approximate="tanh"),
    "leaky_relu": activations.named("leaky_relu", negative_slope=0.01),
}  # fmt: skip


_NORMS = (nnx.LayerNorm, nnx.GroupNorm, nnx.RMSNorm, nnx.BatchNorm)


def _normalization(layer: Any) -> str | None:
    """An NNX normalisation without weights over the last (channel) axis, as
    `activations.normalized` names it; ``None`` for another."""
    if isinstance(layer, nnx.LayerNorm) and layer.reduction_axes in (-1, (-1,)):
        return activations.normalized(None, -1, layer.epsilon, channels_last=True)
    if isinstance(layer, nnx.GroupNorm) and layer.reduction_axes is None:  # all but the batch axis
        channels = layer.num_groups * layer.group_size
        return activations.normalized(None, -1, layer.epsilon, layer.num_groups, channels, channels_last=True)
    return None


class Step:
    """A function at one position of an ``nnx.Sequential`` (``nnx.relu``): a
    layer without variables. One function object may fill several positions;
    each position is its own step, as each ``nn.ReLU()`` is in torch."""

    __slots__ = ("function",)

    def __init__(self, function: Any) -> None:
        self.function = function

    def __call__(self, x: Any) -> Any:
        return self.function(x)


def _is_child(value: Any) -> bool:
    return holds_layer(value, nnx.Module)


def _rank(order: Mapping[str, Any] | tuple[str, ...], name: str) -> tuple[int, str]:
    for i, known in enumerate(order):
        if known == name:
            return (i, name)
    return (len(order), name)


#: The steps of each Sequential, by position: the same object for the same
#: function at the same position, as long as the Sequential lives.
_STEPS: weakref.WeakKeyDictionary[Any, dict[str, Step]] = weakref.WeakKeyDictionary()


#: Per class: whether it is an ``nnx.Module``, an ``nnx.Sequential``, an ``nnx.RNN``. NNX's
#: classes check ``isinstance`` in Python (ABCMeta's ``__instancecheck__``): a path
#: look-up's every step asked two of them, a third of the step's time.
_MODULE_CLASSES: dict[type, bool] = {}
_SEQUENTIAL_CLASSES: dict[type, bool] = {}
_RNN_CLASSES: dict[type, bool] = {}


def _is(known: dict[type, bool], cls: type, base: type) -> bool:
    """``issubclass(cls, base)``, kept in ``known`` (read first with ``known.get``)."""
    found = known[cls] = issubclass(cls, base)
    return found


def _position(sequential: Any, key: str, layer: Any) -> Any:
    cls = type(layer)
    module = _MODULE_CLASSES.get(cls)
    if module is None:
        module = _is(_MODULE_CLASSES, cls, nnx.Module)
    if module:
        return layer
    steps = _STEPS.get(sequential)
    if steps is None:
        steps = _STEPS[sequential] = {}
    step = steps.get(key)
    if step is None or step.function is not layer:
        step = steps[key] = Step(layer)
    return step


def _containers(module: Any) -> tuple[Sized, ...]:
    state = vars(module)
    return (state, state.values())


def _sequential(module: Any) -> tuple[Sized, ...]:
    state, layers = vars(module), vars(module.layers)  # its positions live in its nnx.List or nnx.Dict
    return (state, state.values(), layers, layers.values())


def _norm_refused(module: Any) -> UnsupportedError:
    """Why a model holding an ``nnx.WeightNorm`` or ``nnx.SpectralNorm`` is not read."""
    inner = type(module.layer_instance).__name__
    if isinstance(module, nnx.SpectralNorm):
        return UnsupportedError(
            f"An nnx.SpectralNorm wraps a {inner}: on each call it divides each of the {inner}'s "
            "parameters of two axes or more by its largest singular value, estimated from a vector it "
            "keeps in a plain dict (batch_stats), and writes the result back in their place. A value "
            "this library wrote into the kernel would be divided again on the next call, and those "
            "vectors are no leaf it lists: a listing, save or port would be silently incomplete or "
            "wrong. Expected a model without nnx.SpectralNorm: call the model once (the kernel is then "
            "normalised in place) and use its layer_instance itself. "
            + received(type="SpectralNorm", layer=inner)
        )
    return UnsupportedError(
        f"An nnx.WeightNorm wraps a {inner}: on each call it normalises the {inner}'s kernel and scales "
        "it by arrays it keeps in a plain dict (scales), which no nnx.Variable holds. This library "
        "can neither read nor write those scales, and would take the kernel for the weight the layer "
        "computes: a listing, save or port would be silently incomplete or wrong. Expected a model "
        "without nnx.WeightNorm: set the layer's kernel to scale * kernel / norm(kernel) (the norm "
        "over every axis but the scale's) and use the layer itself. "
        + received(type="WeightNorm", layer=inner)
    )


def _cell(module: Any) -> Any | None:
    """The cell of an ``nnx.RNN`` whose layout is declared (a SimpleCell, an
    OptimizedLSTMCell) and that runs as torch's one-directional layer does,
    else None: a reversed RNN, or one returning its carry, computes something
    else with the same weights, so it is a layer of no declared kind. A
    time-major one takes its input as torch's default LSTM does (`input_layout`)."""
    if (
        isinstance(module, nnx.RNN)
        and type(module.cell) in tables.CELLS
        and not (module.reverse or module.return_carry)
        and not getattr(module.cell, "residual", False)  # a SimpleCell adding its carry
    ):
        return module.cell
    return None


def _recurrent(module: Any) -> tuple[Sized, ...]:
    # An RNN of a declared cell shows the cell's variables as its own: watch the
    # layer, the cell and the cell's two dense layers.
    cell = module.cell
    dicts = [vars(module), vars(cell), *(vars(getattr(cell, d)) for d in ("dense_i", "dense_h"))]
    return tuple(x for d in dicts for x in (d, d.values()))


def _members(group: Any) -> tuple[Sized, ...]:
    return (group, group.values()) if isinstance(group, dict) else (group,)


def _nothing(module: Any) -> tuple[Sized, ...]:
    return ()


class FlaxAdapter(Adapter):
    name = "flax"
    LEAVES = leaves.LEAVES
    MERGES = tables.MERGES
    GATHERS = tables.GATHERS
    INSTANCE_KINDS = (nnx.Conv, nnx.ConvTranspose, nnx.RNN)
    WEIGHTLESS_FUNCTIONS = tables.WEIGHTLESS_FUNCTIONS
    FRAMEWORK_PACKAGES = tables.FRAMEWORK_PACKAGES
    DEFAULT_INIT: ClassVar[Mapping[str, Mapping[str, Initializer]]] = tables.DEFAULT_INIT

    def __init__(self) -> None:
        self.grads = GradStore()

    # -- structure -------------------------------------------------------------
    def kind(self, module: Any) -> str:
        if isinstance(module, (list, tuple, dict)):
            return "container"
        if isinstance(module, Step):
            return tables.FUNCTIONS.get(id(module.function), (UNKNOWN_KIND, ""))[0]
        if not isinstance(module, nnx.Module):
            return UNKNOWN_KIND
        kind = tables.KIND(type(module))
        layer: Any = module
        if kind in ("conv", "conv_transpose"):
            kind = f"{kind}{len(layer.kernel_size)}d"
        elif kind == "rnn":
            kind = tables.CELLS[type(layer.cell)].kind if _cell(layer) is not None else UNKNOWN_KIND
        return kind

    def type_name(self, module: Any) -> str:
        if isinstance(module, Step):  # nnx.relu: "ReLU"; a function of one's own: its name
            function = module.function
            named = tables.FUNCTIONS.get(id(function))
            return named[1] if named else getattr(function, "__name__", type(function).__name__)
        if isinstance(module, NamedSequential):
            return "Sequential"
        return type(module).__name__

    def children(self, module: Any) -> list[tuple[str, Any]]:
        if isinstance(module, nnx.Sequential):
            return [(str(i), _position(module, str(i), layer)) for i, layer in enumerate(module.layers)]
        if isinstance(module, NamedSequential):
            return [(k, _position(module, k, layer)) for k, layer in module.layers.items()]
        if _cell(module) is not None:
            return []  # the cell's variables are the layer's own
        if isinstance(module, (nnx.List, list, tuple)):
            return [(str(i), c) for i, c in enumerate(module) if _is_child(c)]
        if isinstance(module, (nnx.Dict, dict)):
            return [(str(k), c) for k, c in module.items() if _is_child(c)]
        if not isinstance(module, nnx.Module):
            return []  # a function at a position of a Sequential
        # By name, as nnx.state lists them: NNX keeps no order among attributes (its
        # transforms, nnx.grad among them, set them back sorted).
        # A layer whose variables gather into canonical blocks (attention) lists
        # its sublayers in the blocks' order: query, key, value, then output; a
        # Bidirectional its RNNs in the order it runs them, as torch lists directions.
        blocks: Mapping[str, Any] = (
            _DIRECTIONS
            if isinstance(module, nnx.Bidirectional)
            else dict.fromkeys(k.split(".")[0] for k in tables.GATHERS.get(self.kind(module), {}))
        )
        kids = [(k, v) for k, v in internals.own_attributes(module).items() if _is_child(v)]
        return sorted(kids, key=lambda kv: _rank(blocks, kv[0]))

    def child(self, module: Any, key: str) -> Any | None:
        cls = type(module)
        sequential = _SEQUENTIAL_CLASSES.get(cls)
        if sequential is None:
            sequential = _is(_SEQUENTIAL_CLASSES, cls, nnx.Sequential)
        if sequential and key.isdigit():
            layer = internals.list_member(module.layers, key)
            return None if layer is None else _position(module, key, layer)
        if isinstance(module, NamedSequential):
            layer = module.layers.get(key)
            return None if layer is None else _position(module, key, layer)
        if _cell(module) is not None:
            return None
        if isinstance(module, nnx.Module) and not isinstance(module, (nnx.List, nnx.Dict)):
            value = vars(module).get(key)
            return value if not key.startswith(internals.BOOKKEEPING_PREFIX) and _is_child(value) else None
        return super().child(module, key)

    def container_getter(self, module: Any) -> Callable[[Any], tuple[Sized, ...]]:
        # Children and variables are attributes: the instance dict, keys and values,
        # is all there is to watch (a Sequential's layers sit in its nnx.List child).
        if isinstance(module, _SEQUENTIAL):
            return _sequential
        if _cell(module) is not None:
            return _recurrent
        if isinstance(module, nnx.Module):
            return _containers
        return _members if isinstance(module, (list, tuple, dict)) else _nothing

    def leaves(self, module: Any, kind: str) -> Mapping[str, Leaf] | None:
        if isinstance(module, nnx.ConvTranspose) and not module.transpose_kernel:
            return leaves.MIRRORED.get(kind)  # its kernel applied as a plain convolution's
        return self.LEAVES.get(kind)

    def variables(self, module: Any) -> list[NativeVariable]:
        if not isinstance(module, nnx.Module):
            return []
        if isinstance(module, (nnx.WeightNorm, nnx.SpectralNorm)):
            raise _norm_refused(module)
        cell = _cell(module)
        if cell is not None:
            return [(name, self._slot(module, name)[1], "param") for name in tables.CELLS[type(cell)].slots]
        params: list[NativeVariable] = []
        state: list[NativeVariable] = []
        # NNX keeps no order among a module's attributes (its transforms set them
        # back sorted): a declared layer lists its leaves in its table's order
        # (torch's: weight, bias, statistics), any other as NNX's layers create them.
        order = leaves.LEAVES.get(self.kind(module)) or tables.LEAF_ORDER
        for key, value in sorted(
            internals.own_attributes(module).items(), key=lambda kv: _rank(order, kv[0])
        ):
            if not isinstance(value, nnx.Variable) or isinstance(value, _SKIPPED):
                continue
            if isinstance(value, nnx.Param):
                params.append((key, value, "param"))
            else:  # BatchStat and a user's own Variable types; values a call records
                state.append((key, value, "transient" if isinstance(value, _TRANSIENT) else "buffer"))
        return params + state  # parameters first, as torch lists them (NNX's BatchNorm makes its mean first)

    def _slot(self, module: Any, native_name: str) -> tuple[Any, Any]:
        """The module holding a variable slot of ``module``, and the variable."""
        cell = _cell(module)
        slots = tables.CELLS[type(cell)].slots if cell is not None else {}
        if native_name in slots:
            dense, attr = slots[native_name]
            owner = getattr(cell, dense)
            return owner, getattr(owner, attr)
        return module, vars(module).get(native_name)

    def holds(self, module: Any, native_name: str, var: Any) -> bool:
        cls = type(module)
        rnn = _RNN_CLASSES.get(cls)
        if rnn is None:
            rnn = _is(_RNN_CLASSES, cls, nnx.RNN)
        if not rnn:  # no cell: `_slot`'s last line
            return vars(module).get(native_name) is var
        return self._slot(module, native_name)[1] is var

    # -- one variable ------------------------------------------------------------
    def shape(self, var: Any) -> tuple[int, ...]:
        return tuple(int(d) for d in var.shape)

    def dtype(self, var: Any) -> str:
        return str(var.get_value().dtype)

    def trainable(self, var: Any) -> bool:
        return is_trainable(var)

    def set_trainable(self, var: Any, flag: bool) -> None:
        if flag and not isinstance(var, nnx.Param):
            raise UnsupportedError(
                f"An NNX {type(var).__name__} is state, not a parameter: no optimiser updates it. "
                "Expected an nnx.Param. " + received(variable=type(var).__name__)
            )
        var.set_metadata(trainable=bool(flag))

    def view(self, var: Any) -> np.ndarray:
        return np.asarray(_valued(var))  # the array's own buffer, read-only, on CPU

    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        # On CPU, jnp.asarray of an aligned numpy array shares its memory, and a copy
        # reads the array after the call returns: the caller's array, changed next,
        # would change the variable. So a copy, waited for; a copy made for this
        # call is taken as is.
        dtype = var.get_value().dtype
        if owned:
            var.set_value(jnp.asarray(value, dtype=dtype))
            return
        var.set_value(jnp.array(value, dtype=dtype, copy=True).block_until_ready())

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        # A new array with the slice replaced, in the same box; waited for, as in `assign`.
        _valued(var)
        var[index] = jnp.array(value, copy=True).block_until_ready()

    def grad(self, var: Any) -> np.ndarray | None:
        return self.grads.get(var)

    # -- the model -----------------------------------------------------------------
    def hyperparameters(self, module: Any) -> dict[str, float | str]:
        out: dict[str, float | str] = {**epsilon_momentum(module, nnx.BatchNorm)}
        if isinstance(getattr(module, "feature_group_count", None), int):
            out["groups"] = float(module.feature_group_count)
        if isinstance(module, nnx.GroupNorm):
            out["num_groups"] = float(module.num_groups)
        if isinstance(module, nnx.RNN):
            out.update(cell_functions(module.cell, tables.CELL_FUNCTIONS))
            out["direction"] = "reverse" if module.reverse else "forward"
            out["merge"] = "none"  # unless a Bidirectional holds it: `settings_given`
        return out

    def set_hyperparameters(self, module: Any, values: Mapping[str, float]) -> None:
        set_epsilon_momentum(module, values)

    def low_rank(self, module: Any) -> tuple[LowRank, ...]:
        # Flax 0.12.8: a LoRALinear adds lora(x) = x @ lora.lora_a @ lora.lora_b to its
        # Linear's output; an nnx.LoRA adds x @ lora_a @ lora_b to its base_module's (merged
        # into a Linear's kernel, its only leaf the product updates).
        if isinstance(module, nnx.LoRALinear) and isinstance(getattr(module, "lora", None), nnx.LoRA):
            return (LowRank("kernel", "lora.lora_a", "lora.lora_b", 1.0),)
        if isinstance(module, nnx.LoRA) and type(module.base_module) is nnx.Linear:
            return (LowRank("base_module.kernel", "lora_a", "lora_b", 1.0),)
        return ()

    def geometry(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> Geometry | None:
        if not isinstance(module, (nnx.Conv, nnx.ConvTranspose)):
            return None
        kernel = per_axis(module.kernel_size, 1)  # an int: one axis
        axes = len(kernel)
        stride, dilation = per_axis(module.strides or 1, axes), per_axis(module.kernel_dilation or 1, axes)
        transposed = isinstance(module, nnx.ConvTranspose)
        given, mode = module.padding, "zeros"
        padding: tuple[Pad, ...]
        spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
        if getattr(module, "input_dilation", 1) not in (1, None, (1,) * axes) or runs_its_own(
            module, (nnx.Conv,), "__call__"
        ):
            padding = (None,) * axes  # a dilated input, or a call of its own: not resolved
        elif transposed:
            padding = _transposed_crops(given, spans, stride)
        elif isinstance(given, str):
            mode = "circular" if given == "CIRCULAR" else "zeros"
            if given == "SAME":
                padding = (SAME,) * axes
            elif given == "CIRCULAR":  # wraps (k - 1) // 2 before and k // 2 after, at any stride
                padding = tuple(((span - 1) // 2, span // 2) for span in spans)
            elif given == "CAUSAL":
                padding = tuple((d * (k - 1), 0) for d, k in zip(dilation, kernel, strict=True))
            else:
                padding = ((0, 0),) * axes if given == "VALID" else (None,) * axes
        else:
            padding = _numbers(given, axes)
        return Geometry(kernel, stride, dilation, padding, mode=mode, transposed=transposed)

    def output_activation(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> str | None:
        found: list[str] = []
        reshaped = False  # past a Flatten: no softmax or norm over the channels
        for layer in sequence.in_order(sequence.after(ancestors, self._sequence), self._sequence):
            if layer is None:
                return None  # a __call__ decides what takes its output
            if isinstance(layer, nnx.Dropout):
                continue  # the identity at inference
            if isinstance(layer, Step) and layer.function is flatten:  # what `up.spec`'s Flatten builds
                reshaped = True
                continue
            if isinstance(layer, Step):  # a function: one not named gives None
                step = _FUNCTIONS.get(getattr(layer.function, "__name__", ""))
                step = None if reshaped and step in activations.OVER_AN_AXIS else step
            elif isinstance(layer, _NORMS) and not self.variables(layer):  # a normalisation without weights
                step = None if reshaped else _normalization(layer)
            else:  # the next layer with weights, if NNX's; another module may change the values
                listed = tables.KIND.listed(type(layer))
                known = listed is not None and not runs_its_own(layer, (listed,), "__call__")
                if known and self.variables(layer):
                    break
                return None
            if step is None:
                return None
            found.append(step)
        return activations.chain(found)

    def _sequence(self, parent: Any) -> list[tuple[str, Any]] | None:
        return self.children(parent) if isinstance(parent, (nnx.Sequential, NamedSequential)) else None

    def input_layout(self, layer: Any) -> str | None:
        return "time_major" if isinstance(layer, nnx.RNN) and layer.time_major else None

    def settings_given(self, parent: Any, key: str) -> dict[str, float | str]:
        if not isinstance(parent, nnx.Bidirectional) or key not in _DIRECTIONS:
            return {}
        merge = parent.merge_fn
        name = "concat" if merge is internals.CONCATENATE else getattr(merge, "__name__", repr(merge))
        return {"merge": name, "direction": _DIRECTIONS[key]}  # it runs its backward RNN reversed

    def forward(self, model: Any, inputs: np.ndarray, training: bool) -> Any:
        with internals.Modes(model, training):
            return np.asarray(model(jnp.asarray(inputs)))

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        x = jnp.asarray(request.inputs)
        t = None if request.targets is None else jnp.asarray(request.targets)

        def loss(m: Any) -> Any:
            return reduce_loss(m(x), request.loss, t, jnp.sum, jnp.mean)

        wrt = nnx.All(nnx.Param, lambda _, v: is_trainable(v))
        with internals.Modes(model, request.training):
            grads = nnx.grad(loss, argnums=nnx.DiffState(0, wrt))(model)
        # nnx.grad's state lists each variable once, at the path nnx.state gives it:
        # the same paths name the variables themselves.
        boxes = dict(nnx.to_flat_state(nnx.state(model, wrt)))
        flat = nnx.to_flat_state(grads)
        by_id = {id(boxes[path]): np.array(jax.device_get(g.get_value())) for path, g in flat}
        out = [by_id.get(id(v)) for v in variables]
        for var, grad in zip(variables, out, strict=True):
            if grad is None:
                self.grads.clear(var)
            else:
                self.grads.put(var, grad, owner=model)
        return out

    # -- changing structure (ties) ------------------------------------------------------
    def set_child(self, parent: Any, key: str, child: Any) -> None:
        if isinstance(child, Step):
            child = child.function
        if isinstance(parent, _SEQUENTIAL):
            parent = parent.layers
        if isinstance(parent, (nnx.List, list)):
            parent[int(key)] = nnx.data(child) if isinstance(parent, nnx.List) else child
        elif isinstance(parent, (nnx.Dict, dict)):
            parent[key] = child
        else:
            internals.put(parent, key, child)

    def copy_layer(self, layer: Any) -> Any:
        return nnx.clone(layer)

    def set_variable(self, module: Any, native_name: str, var: Any) -> None:
        owner, _ = self._slot(module, native_name)
        cell = _cell(module)
        if owner is module or cell is None:
            internals.put(owner, native_name, var)
        else:
            internals.put(owner, tables.CELLS[type(cell)].slots[native_name][1], var)

    def copy_variable(self, var: Any) -> Any:
        value = var.get_value()
        if isinstance(value, jax.ShapeDtypeStruct):  # no values (nnx.eval_shape): nor has the copy
            return var.replace(value)
        return var.replace(jnp.array(value, copy=True))


ADAPTER = FlaxAdapter()


def _numbers(given: Any, axes: int) -> tuple[tuple[int, int], ...]:
    """NNX padding given as numbers: one int, or per axis an int or a pair."""
    if isinstance(given, int):
        return ((given, given),) * axes
    return tuple((p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in given)


def _transposed_crops(given: Any, spans: list[int], strides: tuple[int, ...]) -> tuple[Pad, ...]:
    """What an NNX ConvTranspose crops from the start and end of its full output.
    ``lax.conv_transpose`` (jax 0.10) pads its stride-dilated input by ``(a, b)``:
    given as numbers, or by its rule for ``"SAME"`` and ``"VALID"``; the output
    then lacks ``span - 1 - a`` positions of the full one before, ``span - 1 - b``
    after."""
    if isinstance(given, str) and given not in ("SAME", "VALID"):
        return (None,) * len(spans)
    out: list[Pad] = []
    for axis, (span, s) in enumerate(zip(spans, strides, strict=True)):
        if given == "SAME":
            total = span + s - 2
            a = span - 1 if s > span - 1 else math.ceil(total / 2)
        elif given == "VALID":
            total, a = span + s - 2 + max(span - s, 0), span - 1
        else:
            a, b = _numbers(given, len(spans))[axis]
            total = a + b
        out.append((span - 1 - a, span - 1 - (total - a)))
    return tuple(out)


def _valued(var: Any) -> Any:
    """The variable's value, if it holds one.

    Raises:
        NotBuiltError: A variable of a model made by ``nnx.eval_shape``, which
            holds its shape and dtype (a ``jax.ShapeDtypeStruct``) and no values.
    """
    value = var.get_value()
    if isinstance(value, jax.ShapeDtypeStruct):
        raise without_values(
            f"An NNX {type(var).__name__}",
            "it holds only a shape and dtype (a jax.ShapeDtypeStruct, "
            "as the variables of a model made by nnx.eval_shape do)",
            value="ShapeDtypeStruct",
        )
    return value
