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
from functools import partial
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
from . import internals, leaves, stacks, tables
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

    __slots__ = ("__weakref__", "function")

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


#: A stack's classes, read on every step of a path look-up (a global, not an attribute).
_Member, _Stack, _Slice = stacks.Member, stacks.Stack, stacks.Slice

#: Per class, what `FlaxAdapter._stack_size` reads first (`FlaxAdapter._first_laid_out`).
_FIRST_LAID_OUT: dict[type, tuple[str, int | None] | bool] = {}


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


def _raw(module: Any) -> Any:
    """The module itself: a stack's layer is its stacked module."""
    return module.module if type(module) is _Member else module


#: Every variable kept in a module and the modules inside it (`stacks.variables_in`).
_VARIABLES_IN = partial(stacks.variables_in, skipped=_SKIPPED)


def _member_containers(member: Any) -> tuple[Sized, ...]:
    """What to watch of a stack's layer: its stacked module's containers."""
    module = member.module
    return ADAPTER.container_getter(module)(module)


class FlaxAdapter(Adapter):
    name = "flax"
    LEAVES = leaves.LEAVES
    MERGES = tables.MERGES
    GATHERS = tables.GATHERS
    INSTANCE_KINDS = (nnx.Conv, nnx.ConvTranspose, nnx.RNN, stacks.Member)
    WEIGHTLESS_FUNCTIONS = tables.WEIGHTLESS_FUNCTIONS
    FRAMEWORK_PACKAGES = tables.FRAMEWORK_PACKAGES
    DEFAULT_INIT: ClassVar[Mapping[str, Mapping[str, Initializer]]] = tables.DEFAULT_INIT

    def __init__(self) -> None:
        self.grads = GradStore()

    # -- structure -------------------------------------------------------------
    def kind(self, module: Any) -> str:
        if _FIRST_LAID_OUT.get(type(module)) is not False:  # no list nor Sequential: maybe a stack
            module = self._at(module)
        cls = type(module)
        if cls is _Member:
            return self._kind(module.module)
        return "container" if cls is _Stack else self._kind(module)

    def _kind(self, module: Any) -> str:
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

    def code_holder(self, module: Any) -> Any:
        return _raw(module)

    def type_name(self, module: Any) -> str:
        if _FIRST_LAID_OUT.get(type(module)) is not False:  # no list nor Sequential: maybe a stack
            module = self._at(module)
        if type(module) is _Stack:
            return "Stack"
        module = _raw(module)
        if isinstance(module, Step):  # nnx.relu: "ReLU"; a function of one's own: its name
            function = module.function
            named = tables.FUNCTIONS.get(id(function))
            return named[1] if named else getattr(function, "__name__", type(function).__name__)
        if isinstance(module, NamedSequential):
            return "Sequential"
        return type(module).__name__

    def children(self, module: Any) -> list[tuple[str, Any]]:
        if _FIRST_LAID_OUT.get(type(module)) is not False:  # no list nor Sequential: maybe a stack
            module = self._at(module)
        cls = type(module)
        if cls is _Member:
            index, layers = module.index, module.size
            return [(k, stacks.member(c, index, layers)) for k, c in self._children(module.module)]
        if cls is _Stack:
            return [(str(i), stacks.member(module.module, i, module.size)) for i in range(module.size)]
        return self._children(module)

    def _children(self, module: Any) -> list[tuple[str, Any]]:
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
            else dict.fromkeys(k.split(".")[0] for k in tables.GATHERS.get(self._kind(module), {}))
        )
        kids = [(k, v) for k, v in internals.own_attributes(module).items() if _is_child(v)]
        return sorted(kids, key=lambda kv: _rank(blocks, kv[0]))

    def child(self, module: Any, key: str) -> Any | None:
        cls = type(module)
        if _FIRST_LAID_OUT.get(cls) is not False:  # no list nor Sequential: maybe a stack
            at = self._at(module)
            if type(at) is _Member or type(at) is _Stack:
                return self._child_in_stack(at, key)
        # A path look-up's every step: its code inline (a call more costs a tenth of a step).
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

    def _child_in_stack(self, at: Any, key: str) -> Any | None:
        """`child` of a stack (a layer's index) or of a stack's layer (its
        stacked module's child, at the layer's index)."""
        if type(at) is _Stack:
            size = at.size
            if key.isdigit() and str(int(key)) == key and int(key) < size:
                return stacks.member(at.module, int(key), size)
            return None
        inner = dict(self._children(at.module)).get(key)
        return None if inner is None else stacks.member(inner, at.index, at.size)

    def _at(self, module: Any) -> Any:
        """What ``module`` is to the library: a stack's layer (`stacks.Member`) as
        it is, a module that is a stack of layers as its `stacks.Stack`, any
        other module itself. A module is asked each time: a stack is known
        by its variables, which the user may replace."""
        cls = type(module)
        if cls is _Member or cls is _Stack:
            return module
        size = self._stack_size(module)
        if not size or self._passes_through(module):
            return module
        return stacks.stack(module, size)

    def _passes_through(self, module: Any) -> bool:
        """Whether ``module`` holds one child and nothing else, a block of its
        own: holding a stack (a model whose only attribute is the stack), it
        is stacked as a whole too, and the stack is the child (`stacks`)."""
        if _FIRST_LAID_OUT.get(type(module)) is not True:
            return False  # a layer of a declared kind: the stack itself
        return len(self._children(module)) == 1 and not self._variables(module)

    def _stack_size(self, module: Any) -> int | None:
        """``L`` when ``module`` is a stack of ``L`` layers (`stacks`), else ``None``."""
        cls = type(module)
        first = _FIRST_LAID_OUT.get(cls)
        if first is None:
            first = _FIRST_LAID_OUT[cls] = self._first_laid_out(module)
        if first is False:
            return None
        if first is not True:  # a layer's first variable with a declared layout: most say "no stack" there
            name, ndim = first
            var = vars(module).get(name)
            if stacks.seen_variable(var):
                has = len(internals.stored_shape(var))
                if has == ndim or (ndim is None and not self._one_axis_more(module, name, has)):
                    return None
        return stacks.size(module, _VARIABLES_IN, self._one_axis_more, internals.stored_shape)

    def _first_laid_out(self, module: Any) -> tuple[str, int | None] | bool:
        """For ``module``'s class: ``False`` if no instance can be a stack (no
        module, or a list, dict or Sequential of them); else its first variable
        with a declared layout and, where every instance's layout is the same,
        that layout's number of axes (``True``: no such variable, a block)."""
        cls = type(module)
        if not issubclass(cls, nnx.Module) or issubclass(cls, (nnx.List, nnx.Dict, *_SEQUENTIAL)):
            return False
        table = self.leaves(module, self._kind(module)) or {}
        name = next((name for name, leaf in table.items() if leaf.axes is not None), None)
        if name is None:
            return True
        axes = table[name].axes
        fixed = not issubclass(cls, self.INSTANCE_KINDS) and not isinstance(axes, Mapping)
        return (name, len(axes) if fixed and axes is not None else None)

    def _one_axis_more(self, layer: Any, name: str, ndim: int) -> bool | None:
        """Whether ``layer``'s variable ``name`` of ``ndim`` axes has one axis
        more than its layout declares (``None``: no layout declared)."""
        leaf = (self.leaves(layer, self._kind(layer)) or {}).get(name)
        if leaf is None or leaf.axes is None:
            return None
        if isinstance(leaf.axes, Mapping):
            return None if ndim in leaf.axes else (ndim - 1) in leaf.axes or None
        return ndim == len(leaf.axes) + 1

    def container_getter(self, module: Any) -> Callable[[Any], tuple[Sized, ...]]:
        # Children and variables are attributes: the instance dict, keys and values,
        # is all there is to watch (a Sequential's layers sit in its nnx.List child).
        if type(module) is _Member:
            return _member_containers
        if isinstance(module, _SEQUENTIAL):
            return _sequential
        if _cell(module) is not None:
            return _recurrent
        if isinstance(module, nnx.Module):
            return _containers
        return _members if isinstance(module, (list, tuple, dict)) else _nothing

    def leaves(self, module: Any, kind: str) -> Mapping[str, Leaf] | None:
        module = _raw(module)
        if isinstance(module, nnx.ConvTranspose) and not module.transpose_kernel:
            return leaves.MIRRORED.get(kind)  # its kernel applied as a plain convolution's
        return self.LEAVES.get(kind)

    def variables(self, module: Any) -> list[NativeVariable]:
        if _FIRST_LAID_OUT.get(type(module)) is not False:  # no list nor Sequential: maybe a stack
            module = self._at(module)
        if type(module) is _Member:
            stacked, i = module.module, module.index
            return [(n, stacks.slice_of(stacked, n, v, i), r) for n, v, r in self._variables(stacked)]
        return [] if type(module) is _Stack else self._variables(module)

    def _variables(self, module: Any) -> list[NativeVariable]:
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
        order = leaves.LEAVES.get(self._kind(module)) or tables.LEAF_ORDER
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
        if type(module) is _Member:
            return (
                type(var) is _Slice
                and var.index == module.index
                and self.holds(module.module, native_name, var.var)
            )
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
        return str(_box(var).get_value().dtype)

    def trainable(self, var: Any) -> bool:
        return is_trainable(_box(var))

    def set_trainable(self, var: Any, flag: bool) -> None:
        if type(var) is _Slice:
            if bool(flag) != is_trainable(var.var):
                raise stacks.refused("its own trainable flag", type(var.var).__name__)
            return
        if flag and not isinstance(var, nnx.Param):
            raise UnsupportedError(
                f"An NNX {type(var).__name__} is state, not a parameter: no optimiser updates it. "
                "Expected an nnx.Param. " + received(variable=type(var).__name__)
            )
        var.set_metadata(trainable=bool(flag))

    def view(self, var: Any) -> np.ndarray:
        if type(var) is _Slice:
            return np.asarray(_valued(var.var))[var.index]
        return np.asarray(_valued(var))  # the array's own buffer, read-only, on CPU

    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        # On CPU, jnp.asarray of an aligned numpy array shares its memory, and a copy
        # reads the array after the call returns: the caller's array, changed next,
        # would change the variable. So a copy, waited for; a copy made for this
        # call is taken as is.
        if type(var) is _Slice:  # a new stacked array with the layer's part replaced
            self.assign_slice(var.var, (var.index,), value)
            return
        dtype = var.get_value().dtype
        if owned:
            var.set_value(jnp.asarray(value, dtype=dtype))
            return
        var.set_value(jnp.array(value, dtype=dtype, copy=True).block_until_ready())

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        # A new array with the slice replaced, in the same box; waited for, as in `assign`.
        if type(var) is _Slice:
            var, index = var.var, (var.index, *index)
        dtype = _valued(var).dtype
        var[index] = jnp.array(value, dtype=dtype, copy=True).block_until_ready()

    def grad(self, var: Any) -> np.ndarray | None:
        return self.grads.get(var)

    # -- the model -----------------------------------------------------------------
    def hyperparameters(self, module: Any) -> dict[str, float | str]:
        module = _raw(module)
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
        # A stack's layer shares its module's settings: every layer takes the values
        # (a port reads each pair back after aligning, and refuses what differs).
        set_epsilon_momentum(_raw(module), values)

    def low_rank(self, module: Any) -> tuple[LowRank, ...]:
        module = _raw(module)
        # Flax 0.12.8: a LoRALinear adds lora(x) = x @ lora.lora_a @ lora.lora_b to its
        # Linear's output; an nnx.LoRA adds x @ lora_a @ lora_b to its base_module's (merged
        # into a Linear's kernel, its only leaf the product updates).
        if isinstance(module, nnx.LoRALinear) and isinstance(getattr(module, "lora", None), nnx.LoRA):
            return (LowRank("kernel", "lora.lora_a", "lora.lora_b", 1.0),)
        if isinstance(module, nnx.LoRA) and type(module.base_module) is nnx.Linear:
            return (LowRank("base_module.kernel", "lora_a", "lora_b", 1.0),)
        return ()

    def geometry(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> Geometry | None:
        module = _raw(module)
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
        for position in sequence.in_order(sequence.after(ancestors, self._sequence), self._sequence):
            if position is None:
                return None  # a __call__ decides what takes its output
            layer = _raw(position)
            if isinstance(layer, nnx.Dropout):
                continue  # the identity at inference
            if isinstance(layer, Step) and layer.function is flatten:  # what `up.spec`'s Flatten builds
                reshaped = True
                continue
            if isinstance(layer, Step):  # a function: one not named gives None
                step = _FUNCTIONS.get(getattr(layer.function, "__name__", ""))
                step = None if reshaped and step in activations.OVER_AN_AXIS else step
            elif isinstance(layer, _NORMS) and not self._variables(layer):  # a normalisation without weights
                step = None if reshaped else _normalization(layer)
            else:  # the next layer with weights, if NNX's; another module may change the values
                listed = tables.KIND.listed(type(layer))
                known = listed is not None and not runs_its_own(layer, (listed,), "__call__")
                if known and self._variables(layer):
                    break
                return None
            if step is None:
                return None
            found.append(step)
        return activations.chain(found)

    def _sequence(self, parent: Any) -> list[tuple[str, Any]] | None:
        return self.children(parent) if isinstance(_raw(parent), (nnx.Sequential, NamedSequential)) else None

    def input_layout(self, layer: Any) -> str | None:
        layer = _raw(layer)
        return "time_major" if isinstance(layer, nnx.RNN) and layer.time_major else None

    def settings_given(self, parent: Any, key: str) -> dict[str, float | str]:
        parent = _raw(parent)
        if not isinstance(parent, nnx.Bidirectional) or key not in _DIRECTIONS:
            return {}
        merge = parent.merge_fn
        name = "concat" if merge is internals.CONCATENATE else getattr(merge, "__name__", repr(merge))
        return {"merge": name, "direction": _DIRECTIONS[key]}  # it runs its backward RNN reversed

    def forward(self, model: Any, inputs: np.ndarray, training: bool) -> Any:
        model = self._runnable(model)
        with internals.Modes(model, training):
            return np.asarray(model(jnp.asarray(inputs)))

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        x = jnp.asarray(request.inputs)
        t = None if request.targets is None else jnp.asarray(request.targets)

        self._runnable(model, alone=True)

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
        out = [_part(by_id.get(id(_box(v))), v) for v in variables]
        for var, grad in zip(variables, out, strict=True):
            if grad is None:
                self.grads.clear(var)
            else:
                self.grads.put(var, grad, owner=model)
        return out

    def _runnable(self, model: Any, alone: bool = False) -> Any:
        """What runs ``model``: a stack's layer alone is its stacked module's
        variables at its index, in a module of their own (with ``alone``,
        refused: a gradient must reach the stacked variables).

        Raises:
            UnsupportedError: A stack itself, which runs only through the code
                that scans it; a stack's layer, with ``alone``.
        """
        model = self._at(model)
        if type(model) is _Member:
            if alone:
                raise stacks.refused("gradients of its own: take the model's", model.module)
            graph, state = nnx.split(model.module)
            return nnx.merge(graph, jax.tree.map(lambda a: a[model.index], state))
        if type(model) is _Stack:
            raise UnsupportedError(
                f"A stack of layers ({type(model.module).__name__}, nnx.vmap over a layer's constructor) "
                "runs only through the code that scans it (nnx.scan in the model's own __call__): called "
                "alone, it would run every layer's variables at once. Expected the model that holds "
                "the stack, or one of its layers (view['0'] of the stack). " + received(layers=model.size)
            )
        return model

    # -- changing structure (ties) ------------------------------------------------------
    def set_child(self, parent: Any, key: str, child: Any) -> None:
        if type(child) is _Member or type(self._at(parent)) in (_Member, _Stack):
            raise stacks.refused("a layer of another in its place (a tie)", _raw(parent))
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
        if type(layer) is _Member:
            raise stacks.refused("a copy of its own", layer.module)
        return nnx.clone(layer)

    def set_variable(self, module: Any, native_name: str, var: Any) -> None:
        if type(module) is _Member or type(var) is _Slice:
            raise stacks.refused("another layer's variable in place of its own (a tie)", _raw(module))
        owner, _ = self._slot(module, native_name)
        cell = _cell(module)
        if owner is module or cell is None:
            internals.put(owner, native_name, var)
        else:
            internals.put(owner, tables.CELLS[type(cell)].slots[native_name][1], var)

    def copy_variable(self, var: Any) -> Any:
        if type(var) is _Slice:
            raise stacks.refused("a variable of its own", type(var.var).__name__)
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


def _box(var: Any) -> Any:
    """The ``nnx.Variable`` holding ``var``'s value (a stack's slice: the stacked one)."""
    return var.var if type(var) is _Slice else var


def _part(grad: np.ndarray | None, var: Any) -> np.ndarray | None:
    """A stacked variable's gradient, cut to ``var``'s slice where ``var`` is one."""
    if grad is None or type(var) is not _Slice:
        return grad
    return np.array(grad[var.index])


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
