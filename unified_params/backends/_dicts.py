"""Shared behaviour of frameworks that keep children and variables in dicts.

torch's ``nn.Module`` and paddle's ``nn.Layer`` are made alike: three dicts
(children, parameters, buffers) and a set of buffers the framework does not
save. `DictModuleAdapter` reads and changes structure through those dicts,
written once; each adapter names its framework's dicts in its ``internals``
module, as `Slots`.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

import numpy as np

from .._core import activations, sequence
from .._core.errors import NotBuiltError
from .._core.geometry import Geometry, Pooling
from .._core.gradients import Backward, reduce_loss
from .._core.layouts import RECURRENT
from .._core.leaf_norms import SHAPED_AS_LEAF, LeafNorm, native_axis, of_hook
from .._core.upsampling import Upsampling
from ._base import Adapter, KindTable, NativeVariable, forward_replaced, runs_its_own

#: A dict's values, read from its own storage (also for an OrderedDict, whose
#: ``values()`` walks its linked list and looks each key up again).
_values = dict.values


#: The activations of torch's and paddle's recurrent layers, by their ``mode``.
_RNN_MODES = {
    "RNN_TANH": {"activation": "tanh"},
    "RNN_RELU": {"activation": "relu"},
    "LSTM": {"activation": "tanh", "recurrent_activation": "sigmoid"},
    "GRU": {"activation": "tanh", "recurrent_activation": "sigmoid"},
}


@dataclass(frozen=True)
class Slots:
    """Where a dict-keeping framework stores a module's parts: attribute names."""

    children: str
    params: str
    buffers: str
    #: The set of buffer names the framework does not save.
    transient: str
    #: A layer's flag that switches training behaviour (dropout, batch statistics).
    training: str = "training"
    #: The dict of hooks a layer runs before each call (a weight norm's among them).
    pre_hooks: str = "_forward_pre_hooks"


class DictModuleAdapter(Adapter):
    """`Adapter` for torch-like frameworks; subclasses set `SLOTS` and `KINDS`
    and supply the tensor operations."""

    SLOTS: Slots
    KINDS: KindTable
    #: The classes of the hooks that compute a leaf before each call (a weight
    #: norm's, a spectral norm's), each naming its leaf as ``name``.
    NORM_HOOKS: tuple[Any, ...] = ()

    def computed(self, module: Any) -> tuple[str, ...]:
        hooks: dict[Any, Any] | None = module.__dict__.get(self.SLOTS.pre_hooks)
        if not hooks:
            return ()
        return tuple(hook.name for hook in hooks.values() if isinstance(hook, self.NORM_HOOKS))

    #: The classes of the hooks a weight norm and a spectral norm register, by
    #: the norm's make, each naming its leaf ``name`` and the axis it keeps ``dim``,
    #: the layer keeping the variables as ``<name>_<role>`` (`leaf_norms.ROLES`);
    #: and whether a weight norm's magnitude keeps the leaf's other axes with
    #: size one (torch's) or is a vector (paddle's).
    LEAF_NORM_HOOKS: Mapping[str, Any] = {}
    WEIGHT_NORM_KEEPS_DIMS: bool = True

    def leaf_norms(self, module: Any) -> tuple[LeafNorm, ...]:
        hooks: dict[Any, Any] | None = module.__dict__.get(self.SLOTS.pre_hooks)
        if not hooks:
            return ()
        params = self._parts(module)[0]
        out = []
        for hook in hooks.values():  # a norm's among others (FSDP2 registers plain functions)
            for make, cls in self.LEAF_NORM_HOOKS.items():
                if not isinstance(hook, cls):
                    continue
                held = params.get(f"{hook.name}_{SHAPED_AS_LEAF[make]}")
                if held is not None:
                    axis = native_axis(hook.dim, len(held.shape), whole=make == "weight")
                    steps = getattr(hook, "n_power_iterations", None) if make == "spectral" else None
                    out.append(of_hook(make, hook.name, axis, self.WEIGHT_NORM_KEEPS_DIMS, steps))
        return tuple(out)

    # Made from SLOTS when a subclass is defined.
    _kids: Callable[[Any], dict[str, Any]]
    #: A module's parameters, buffers, transient buffers' names and pre-hooks.
    _parts: Callable[[Any], tuple[dict[str, Any], dict[str, Any], Any, dict[Any, Any]]]
    #: Kinds whose sublayers are plumbing (paddle's RNN cells share the layer's weights).
    LEAF_ONLY: frozenset[str] = frozenset()
    #: The container that runs its children in order, each on the one before's output.
    SEQUENTIAL: type

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        slots = getattr(cls, "SLOTS", None)
        if slots is not None:  # C-level readers of the framework's dicts
            cls._kids = staticmethod(attrgetter(slots.children))
            parts = (slots.params, slots.buffers, slots.transient, slots.pre_hooks)
            cls._parts = staticmethod(attrgetter(*parts))

    def kind(self, module: Any) -> str:
        return self.KINDS(type(module))

    def children(self, module: Any) -> list[tuple[str, Any]]:
        kids = self._kids(module)
        if not kids or (self.LEAF_ONLY and self.KINDS(type(module)) in self.LEAF_ONLY):
            return []
        return [(k, c) for k, c in kids.items() if c is not None]

    def leaf_variables(self, modules: list[Any]) -> list[list[NativeVariable] | None]:
        kids, variables = self._kids, self.variables
        try:
            return [None if kids(module) else variables(module) for module in modules]
        except NotBuiltError:  # the walk reads them one by one, and says where
            return [None] * len(modules)

    def child(self, module: Any, key: str) -> Any | None:
        if self.LEAF_ONLY and self.KINDS(type(module)) in self.LEAF_ONLY:
            return None
        return self._kids(module).get(key)

    def container_getter(self, module: Any) -> Callable[[Any], tuple[Sized, ...]]:
        return self._containers

    def _containers(self, module: Any) -> tuple[Sized, ...]:
        kids = self._kids(module)
        params, buffers, transient, _ = self._parts(module)
        # Keys in the framework's order (a reorder shows), values in the dict's own
        # storage: an OrderedDict's (paddle's) values() looks every key up again.
        return (kids, _values(kids), params, _values(params), buffers, _values(buffers), transient)

    def variables(self, module: Any) -> list[NativeVariable]:
        params, buffers, transient, hooks = self._parts(module)
        if hooks:  # where a layer would make its variables on its first call
            why = self.not_built(module)
            if why:
                raise NotBuiltError(why)
        found = registered_variables(params, buffers, transient)
        if transient and buffers:  # paddle keeps a leaf its norm computes as a transient buffer
            computed = self.computed(module)
            if computed:
                return _magnitude_first(
                    [v for v in found if v[2] != "transient" or v[0] not in computed], computed
                )
        return found

    def not_built(self, module: Any) -> str | None:
        """Why ``module``'s variables do not exist yet, if so: a layer that
        makes them on its first call, in a hook it runs before each call
        (torch's lazy modules), is asked. Default: they exist."""
        return None

    def holds(self, module: Any, native_name: str, var: Any) -> bool:
        params, buffers, _, _ = self._parts(module)
        return params.get(native_name) is var or buffers.get(native_name) is var

    def recurrence(self, module: Any) -> dict[str, str]:
        """What a recurrent layer applies, named by its ``mode`` (torch and paddle
        alike: ``RNN_TANH``, ``RNN_RELU``, ``LSTM``, ``GRU``), and its
        directions (torch's ``bidirectional``, paddle's ``num_directions``);
        nothing for other layers."""
        if self.KINDS(type(module)) not in RECURRENT:
            return {}
        both = getattr(module, "bidirectional", False) is True or getattr(module, "num_directions", 1) == 2
        return {
            **_RNN_MODES.get(getattr(module, "mode", ""), {}),
            "direction": "bidirectional" if both else "forward",
            "merge": "concat" if both else "none",  # both directions' features side by side
        }

    def input_layout(self, layer: Any) -> str | None:
        if self.KINDS(type(layer)) not in RECURRENT:
            return None
        # torch says batch_first=False (its default), paddle time_major=True
        time_first = (
            getattr(layer, "batch_first", True) is False or getattr(layer, "time_major", False) is True
        )
        return "time_major" if time_first else None

    def geometry(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> Geometry | None:
        own = self.convolution(module)
        return None if own is None else self._padded_before(own, ancestors)

    def pooling(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> Pooling | None:
        own = self.pool(module)
        if own is None:
            return None
        earlier = sequence.before(ancestors, self._sequence) if ancestors else iter(())
        made_by = next((x for x in earlier if self.zero_padding(x) is None), None)  # past padding layers
        found = None if made_by is None else self.activation_of(made_by)
        activation = found if found not in ("none", PASSES) else None
        return replace(
            own, geometry=self._padded_before(own.geometry, ancestors), input_activation=activation
        )

    def _padded_before(self, own: Geometry, ancestors: Sequence[tuple[Any, str]]) -> Geometry:
        """``own`` with the zeros of the padding layers a Sequential runs just before it."""
        before = [(0, 0)] * len(own.stride)
        for layer in sequence.before(ancestors, self._sequence):
            pads = None if layer is None else self.zero_padding(layer)
            if pads is None or len(pads) != len(before):
                break
            before = [(lo + a, hi + b) for (lo, hi), (a, b) in zip(before, pads, strict=True)]
        return replace(own, before=tuple(before)) if any(p != (0, 0) for p in before) else own

    def output_activation(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> str | None:
        listed = self.KINDS.listed(type(module))
        if listed is None or runs_its_own(module, (listed,), "forward"):
            return None  # its own forward may apply one (timm's BatchNormAct2d)
        kind: str | None = self.KINDS(type(module))
        last = self.input_layout(module) == "channels_last"  # a paddle layer built NHWC
        found: list[str] = []
        after = sequence.after(ancestors, self._runs_after)  # past the model's output: no more
        for layer in sequence.in_order(after, self._sequence):
            step = None if layer is None else self.activation_of(layer, kind, last)
            if step is None:
                return None  # a forward decides, or a layer with no name here
            if step == "none":
                break
            if step != PASSES:
                found.append(step)
            elif isinstance(layer, self.RESHAPES):
                kind = None  # its axes are no longer the layer's: no softmax or norm over channels
        return activations.chain(found)

    def _sequence(self, parent: Any) -> list[tuple[str, Any]] | None:
        return list(self._kids(parent).items()) if isinstance(parent, self.SEQUENTIAL) else None

    def _runs_after(self, parent: Any) -> list[tuple[str, Any]] | None:
        """`_sequence`, and for a zoo model in `RETURNS_CHILD` its last child
        alone: nothing runs after it. Not where the forward was replaced, on
        the instance or on the class by code of another module."""
        found = self._sequence(parent)
        if found is None and not forward_replaced(parent):
            key = self.RETURNS_CHILD.get((type(parent).__module__, type(parent).__name__))
            child = None if key is None else self._kids(parent).get(key)
            if key is not None and child is not None:
                return [(key, child)]
        return found

    #: The framework's activation layers by the names `activations` gives them.
    ACTIVATIONS: ActivationTable
    #: Layers without weights that only reshape (Flatten): an activation after one
    #: still takes the layer's values.
    RESHAPES: tuple[type, ...] = ()
    #: Layers without weights after which no activation is sought (poolings,
    #: paddings, upsamplings: each compared on its own where it can be), by exact class.
    ENDS: frozenset[type] = frozenset()
    #: Model classes of zoos, by module and class name, whose forward returns in
    #: inference what the child at this key returns (a flatten aside): nothing
    #: runs after that child (a classifier's missing softmax is then seen).
    RETURNS_CHILD: Mapping[tuple[str, str], str] = {}

    def activation_of(self, module: Any, kind: str | None = None, channels_last: bool = False) -> str | None:
        """A layer a Sequential runs after another, as `output_activation` sees
        it: an activation's name (`unified_params._core.activations`), `PASSES`
        for a layer that passes its input on at inference (dropout, identity),
        ``None`` for an activation with no name here, ``"none"`` for any other
        layer. ``kind``: the kind of the layer whose output it takes, which
        says whether a softmax is over its channels (``None``: not known), with
        ``channels_last``: whether that layer holds its channels last."""
        found = self.ACTIVATIONS.name(module, kind, self.setting, channels_last)
        if found != "none":
            return found
        if self.variables(module):  # the next layer with weights, unless it is the model's own block
            listed = self.KINDS.listed(type(module))
            return "none" if listed is not None and not runs_its_own(module, (listed,), "forward") else None
        found = self.normalization(module, kind)
        if found != "none":
            return found
        if type(module) in self.RESHAPES:
            return PASSES
        return "none" if type(module) in self.ENDS else None  # another layer may change the values

    def normalization(self, module: Any, kind: str | None) -> str | None:
        """A layer without weights that normalises what it takes, as
        `unified_params._core.activations.normalized` names it (``None``:
        one with no name here); ``"none"`` for any other layer. ``kind`` as
        `activation_of` takes it. Default: ``"none"``."""
        return "none"

    def setting(self, module: Any, attribute: str) -> Any:
        """A layer's setting ``attribute`` as `ActivationTable` names it
        (default: the attribute itself)."""
        return getattr(module, attribute)

    def convolution(self, module: Any) -> Geometry | None:
        """`geometry` of the layer alone, padding layers before it left out
        (``None``: not a convolution). Default: ``None``."""
        return None

    def pool(self, module: Any) -> Pooling | None:
        """`pooling` of the layer alone, padding layers before it left out
        (``None``: not a pooling layer with a window). Default: ``None``."""
        return None

    def zero_padding(self, module: Any) -> tuple[tuple[int, int], ...] | None:
        """The zeros a padding layer adds, ``(before, after)`` per spatial axis
        in order; ``None`` for any other layer. Default: ``None``."""
        return None

    def set_child(self, parent: Any, key: str, child: Any) -> None:
        getattr(parent, self.SLOTS.children)[key] = child

    def copy_layer(self, layer: Any) -> Any:
        return copy.deepcopy(layer)

    def set_variable(self, module: Any, native_name: str, var: Any) -> None:
        buffers = getattr(module, self.SLOTS.buffers)
        if native_name in buffers:
            buffers[native_name] = var
        else:
            self.set_parameter(module, native_name, var)

    def set_parameter(self, module: Any, native_name: str, var: Any) -> None:
        """Put a parameter in a slot: through the dict, unless the framework
        reacts to the attribute (torch's RNN layers refresh their flat weights)."""
        getattr(module, self.SLOTS.params)[native_name] = var

    # -- running the model: the framework's tensors come from three hooks -----
    def tensor(self, array: np.ndarray) -> Any:
        """A framework tensor of ``array`` (read only)."""
        raise NotImplementedError

    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        """The framework's context without a gradient tape."""
        raise NotImplementedError

    def layers(self, model: Any) -> list[Any]:
        """Every module of the model, itself included."""
        raise NotImplementedError

    def training_layers(
        self, model: Any, training: bool, backward: bool = False
    ) -> contextlib.AbstractContextManager[Any]:
        """The model in training or inference mode, restored afterwards;
        ``backward``: a backward pass follows."""
        return training_mode(self.layers(model), training, self.SLOTS.training)

    def forward(self, model: Any, inputs: np.ndarray, training: bool) -> Any:
        with self.training_layers(model, training), self.no_grad():
            return self.output_numpy(first_output(model(self.tensor(inputs))))

    def output_numpy(self, tensor: Any) -> np.ndarray:
        """A model output as numpy (a copy)."""
        return np.array(tensor.numpy(), copy=True)

    def clear_grad(self, var: Any) -> None:
        """Forget a variable's gradient before a backward pass."""
        raise NotImplementedError

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        targets = None if request.targets is None else self.tensor(request.targets)
        fw_sum, fw_mean = self.reductions()
        with self.training_layers(model, request.training, backward=True):
            out = first_output(model(self.tensor(request.inputs)))
            value = reduce_loss(out, request.loss, targets, fw_sum, fw_mean)
        for v in variables:
            self.clear_grad(v)
        value.backward()
        return [self.grad(v) for v in variables]

    def reductions(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """The framework's ``sum`` and ``mean``."""
        raise NotImplementedError


#: What `DictModuleAdapter.activation_of` says of a layer that passes its input on.
PASSES = ""


def spatial_axes(module: Any, classes: tuple[type, ...]) -> int:
    """How many spatial axes a layer of ``classes`` (the framework's 1D, 2D and
    3D classes of each kind, in that order) works on, subclasses included."""
    return next(i % 3 + 1 for i, cls in enumerate(classes) if isinstance(module, cls))


@dataclass(frozen=True)
class ActivationTable:
    """A framework's activation layers by their exact class, as
    `unified_params._core.activations` names them.

    Attributes:
        module: The framework's module of activation layers: a class of it
            not listed here (and a subclass of one listed) has no name.
        plain: Classes of an activation without settings, by name.
        settings: Classes by the activation's name and, per setting, the
            layer's attribute holding it (`DictModuleAdapter.setting` reads
            it) or a function of the layer giving it.
        over_an_axis: Classes of a softmax or log-softmax, by name and the
            attribute holding the axis.
        passing: Classes that pass their input on at inference (dropout).
        by_name: Activation classes of other libraries (timm's), known by
            their module and class name, nothing imported.

    Examples:
        >>> import torch
        >>> table = ActivationTable("torch.nn.modules.activation", {torch.nn.ReLU: "relu"},
        ...     {torch.nn.LeakyReLU: ("leaky_relu", {"negative_slope": "negative_slope"})},
        ...     {torch.nn.Softmax: ("softmax", "dim")})
        >>> [table.name(m, "linear", getattr) for m in (torch.nn.ReLU(), torch.nn.LeakyReLU(),
        ...  torch.nn.Softmax(1), torch.nn.ELU(), torch.nn.Linear(2, 2))]
        ['relu', 'leaky_relu(negative_slope=0.01)', None, None, 'none']
    """

    module: str
    plain: Mapping[type, str]
    settings: Mapping[type, tuple[str, Mapping[str, str | Callable[[Any], Any]]]]
    over_an_axis: Mapping[type, tuple[str, str]]
    passing: tuple[type, ...] = ()
    by_name: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def name(
        self, module: Any, kind: str | None, read: Callable[[Any, str], Any], channels_last: bool = False
    ) -> str | None:
        """``module``'s activation name after a layer of ``kind`` (holding its
        channels last, given ``channels_last``); `PASSES`, ``None`` and
        ``"none"`` as `DictModuleAdapter.activation_of` says."""
        cls = type(module)
        if cls in self.passing:
            return PASSES
        found = self.plain.get(cls) or self.by_name.get((cls.__module__, cls.__name__))
        if found is not None:
            return found
        with_settings = self.settings.get(cls)
        if with_settings is not None:
            name, where = with_settings
            given = {
                key: read(module, at) if isinstance(at, str) else at(module) for key, at in where.items()
            }
            return activations.named(name, **given)
        over = self.over_an_axis.get(cls)
        if over is not None:
            axis = read(module, over[1])
            log = over[0] == "log_softmax"
            return (
                None
                if kind is None
                else activations.softmax(kind, axis, channels_last=channels_last, log=log)
            )
        if cls.__module__ == self.module or isinstance(
            module, (*self.plain, *self.settings, *self.over_an_axis)
        ):
            return None
        return "none"


#: torch's and paddle's interpolation modes, as `Upsampling` names them.
_INTERPOLATIONS = {
    "nearest": "nearest", "nearest-exact": "nearest", "linear": "linear", "bilinear": "linear",
    "trilinear": "linear", "bicubic": "cubic(a=-0.75)",
}  # fmt: skip


def interpolated(mode: str, scale_factor: Any, size: Any, rule: str) -> Upsampling:
    """What torch's and paddle's ``interpolate`` computes with these settings
    (``rule``: the coordinate rule of a linear or cubic mode).

    Examples:
        >>> interpolated("bilinear", 2, None, "align_corners").describe()
        'linear, corners aligned'
        >>> interpolated("nearest", [2, 3], None, "half_pixel").scale
        (2.0, 3.0)
    """
    if mode in ("nearest", "nearest-exact"):  # torch's nearest takes position i * in / out
        rule = "asymmetric" if mode == "nearest" else "half_pixel"
    if size is not None or scale_factor is None:
        scale = None
    elif isinstance(scale_factor, (list, tuple)):
        scale = tuple(float(s) for s in scale_factor)
    else:
        scale = (float(scale_factor),)
    return Upsampling(_INTERPOLATIONS.get(mode, mode), scale, rule)


def last_axis_first(flat: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """``(before, after)`` per spatial axis, first axis first, from padding
    amounts listed last axis first, as torch's and paddle's ``pad`` take them.

    Examples:
        >>> last_axis_first([1, 2, 3, 4])  # left 1, right 2, top 3, bottom 4
        ((3, 4), (1, 2))
    """
    amounts = list(flat)
    return tuple((amounts[i], amounts[i + 1]) for i in range(len(amounts) - 2, -1, -2))


def _magnitude_first(found: list[NativeVariable], computed: tuple[str, ...]) -> list[NativeVariable]:
    """A weight norm's ``<leaf>_g`` before its ``<leaf>_v``, in the place of the
    first, as torch registers them (paddle registers ``v`` first).

    Examples:
        >>> [n for n, *_ in _magnitude_first([("bias", 0, "param"), ("weight_v", 1, "param"),
        ...                                   ("weight_g", 2, "param")], ("weight",))]
        ['bias', 'weight_g', 'weight_v']
    """
    at = {name: k for k, (name, *_) in enumerate(found)}
    for leaf in computed:
        g, v = at.get(f"{leaf}_g"), at.get(f"{leaf}_v")
        if g is not None and v is not None and v < g:
            found[g], found[v] = found[v], found[g]
    return found


def registered_variables(
    params: Mapping[str, Any], buffers: Mapping[str, Any], transient: Any = ()
) -> list[NativeVariable]:
    """Variables of a module that keeps parameters and buffers in two dicts.

    Empty slots (``None``) are left out. Non-persistent buffers are
    ``"transient"``, except private ones (a leading underscore: paddle's RNN
    ``_dropout_state``), which are the framework's plumbing, not the model's.

    Examples:
        >>> registered_variables({"weight": 1, "bias": None}, {"stat": 2, "tmp": 3, "_x": 4}, {"tmp", "_x"})
        [('weight', 1, 'param'), ('stat', 2, 'buffer'), ('tmp', 3, 'transient')]
    """
    own = []
    for n, p in params.items():  # a loop, not a comprehension: cheaper for a layer's few variables
        if p is not None:
            own.append((n, p, "param"))
    if buffers:
        for n, b in buffers.items():
            if b is None:
                continue
            if n not in transient:
                own.append((n, b, "buffer"))
            elif not n.startswith("_"):
                own.append((n, b, "transient"))
    return own


@contextlib.contextmanager
def training_mode(modules: Iterable[Any], flag: bool, attribute: str = "training") -> Iterator[None]:
    """Set the training flag on every module, then restore it."""
    saved = [(m, getattr(m, attribute)) for m in modules]
    try:
        for m, _ in saved:
            setattr(m, attribute, flag)
        yield
    finally:
        for m, was in saved:
            setattr(m, attribute, was)


def first_output(output: Any) -> Any:
    """A model's main output: a recurrent layer returns ``(sequence, state)``,
    the loss is on the sequence; a transformers model returns a ``ModelOutput``,
    whose tuple (``to_tuple()``, what ``return_dict=False`` returns) starts with
    the logits when no labels are given (its cache and hidden states follow).

    Examples:
        >>> first_output(([1.0], "state")), first_output([2.0])
        ([1.0], 2.0)
    """
    if isinstance(output, (tuple, list)):
        return output[0]
    to_tuple = getattr(output, "to_tuple", None)  # nothing imported to know a ModelOutput
    return to_tuple()[0] if callable(to_tuple) else output
