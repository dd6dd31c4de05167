"""The contract every backend adapter fulfils.

An adapter translates; it owns no rule. Each operation below is abstract, so a
backend that forgets or misspells one cannot silently inherit a default (a
structural test also compares every signature against this class).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any, ClassVar

import numpy as np

from .._core.gradients import Backward
from .._core.initializers import Initializer
from .._core.layouts import Leaf
from .._core.state import Merge, Part

#: One native variable of a module: its native name, the variable, and its role
#: to the framework: ``"param"``, ``"buffer"`` (non-trainable state, saved) or
#: ``"transient"`` (a buffer the framework does not save: torch's
#: ``persistent=False``).
NativeVariable = tuple[str, Any, str]


class Adapter(abc.ABC):
    """Translate between the framework-free core and one framework.

    Subclasses set `name` and `LEAVES`, and implement every
    abstract method. Variables are compared by ``id()`` in the core, so an
    adapter must return the same Python object for the same native variable.
    """

    #: Backend name: ``"torch"``, ``"keras"`` or ``"paddle"``.
    name: ClassVar[str]
    #: Per layer kind, native variable name -> `Leaf` (canonical name
    #: and native axis roles). Variables not listed are already canonical.
    LEAVES: ClassVar[Mapping[str, Mapping[str, Leaf]]] = {}
    #: Per layer kind, canonical leaf name -> the canonical entries one native
    #: variable stands for (Keras' single LSTM bias, stacked GRU biases).
    MERGES: ClassVar[Mapping[str, Mapping[str, Merge]]] = {}
    #: Per layer kind, variable path within the layer -> the block of a
    #: canonical entry it is (attention projections packed by torch).
    GATHERS: ClassVar[Mapping[str, Mapping[str, Part]]] = {}
    #: Whether image inputs go channels-last (Keras) rather than channels-first.
    CHANNELS_LAST: ClassVar[bool] = False
    #: Per layer kind, canonical leaf base name -> the framework's own default
    #: initializer, in canonical terms (what ``up.init.Default()`` applies).
    DEFAULT_INIT: ClassVar[Mapping[str, Mapping[str, Initializer]]] = {}

    # -- structure -----------------------------------------------------------
    @abc.abstractmethod
    def unwrap(self, model: Any) -> Any:
        """The model to manage, behind any wrapper that shares its parameters
        (torch.compile's); refuse, with `UnsupportedError`, a model whose
        parameters cannot be managed (a TorchScript module)."""

    @abc.abstractmethod
    def type_name(self, module: Any) -> str:
        """The class name a user of the framework knows (``"Dense"``)."""

    @abc.abstractmethod
    def kind(self, module: Any) -> str:
        """The layer kind: a key of ``CANONICAL_AXES``, ``"container"``,
        ``"relu"``, ``"flatten"`` or ``"other"``."""

    @abc.abstractmethod
    def children(self, module: Any) -> list[tuple[str, Any]]:
        """Direct children as ``(key, native child)``, one per position."""

    @abc.abstractmethod
    def child(self, module: Any, key: str) -> Any | None:
        """The child at ``key``, or ``None``: one step of a path look-up, without
        listing every child."""

    @abc.abstractmethod
    def containers(self, module: Any) -> tuple[Sized, ...]:
        """Where the framework keeps the module's children and own variables,
        as sized iterables (a dict for its keys, its ``values()``, lists) such
        that any change to either changes a length or a member. Snapshots
        compare the members by identity to tell that a model is unchanged (see
        `unified_params._core.snapshot`)."""

    @abc.abstractmethod
    def container_getter(self, module: Any) -> Callable[[Any], tuple[Sized, ...]]:
        """A function that gives `containers` for this module and any other
        of the same make: ``self.containers``, or a C-level getter where the
        framework allows (a snapshot calls it on every module, every check)."""

    @abc.abstractmethod
    def variables(self, module: Any) -> list[NativeVariable]:
        """The module's own variables (not its children's), in native order.

        Raises:
            NotBuiltError: The module's variables do not exist yet.
        """

    @abc.abstractmethod
    def holds(self, module: Any, native_name: str, var: Any) -> bool:
        """Whether the module's slot ``native_name`` still holds ``var``: the
        last step of re-checking a remembered path, without listing every
        variable."""

    # -- one variable --------------------------------------------------------
    @abc.abstractmethod
    def shape(self, var: Any) -> tuple[int, ...]:
        """The native shape."""

    @abc.abstractmethod
    def dtype(self, var: Any) -> str:
        """The dtype name as numpy spells it (``"float32"``, ``"bfloat16"``)."""

    @abc.abstractmethod
    def trainable(self, var: Any) -> bool:
        """Whether the optimiser may update the variable."""

    @abc.abstractmethod
    def set_trainable(self, var: Any, flag: bool) -> None:
        """Freeze or unfreeze the variable in place."""

    @abc.abstractmethod
    def to_numpy(self, var: Any) -> np.ndarray:
        """A copy of the value, in native layout."""

    @abc.abstractmethod
    def view(self, var: Any) -> np.ndarray:
        """The value in native layout, sharing the variable's memory where the
        framework allows (DLPack, torch's numpy bridge), else a copy. Callers
        only read it, and only until the variable is next written."""

    @abc.abstractmethod
    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        """Overwrite the whole value in place; ``value`` is already validated.

        ``owned``: ``value`` is a copy made for this call, 64-byte aligned,
        which the framework may keep as the variable's new memory instead of
        copying it again.
        """

    @abc.abstractmethod
    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        """Overwrite ``var[index]`` in place; ``value`` has the selection's shape."""

    @abc.abstractmethod
    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        """Let ``fill`` write straight into the variable's memory, if it can.

        ``fill`` gets a writable, C-contiguous numpy view of the value in
        native layout. Returns False, without calling ``fill``, when the
        framework offers no such view (the caller then uses `assign`).
        """

    @abc.abstractmethod
    def grad(self, var: Any) -> np.ndarray | None:
        """A copy of the gradient in native layout, or ``None`` before backward."""

    @abc.abstractmethod
    def after_write(self, module: Any) -> None:
        """What the framework does after weights are loaded into ``module``:
        rebuild what the layer derives from its variables (Keras
        ``finalize_state``); nothing for most layers."""

    @abc.abstractmethod
    def input_rank(self, model: Any) -> int | None:
        """The rank (batch axis included) of the input the model declares, or
        ``None``: how a channels-last framework tells an image model whose first
        layer holds no convolution (a Keras model that starts with Normalization)."""

    @abc.abstractmethod
    def hyperparameters(self, module: Any) -> dict[str, float]:
        """Numeric settings that change what the weights mean, in PyTorch's
        convention (``eps``; ``momentum`` as torch counts it)."""

    @abc.abstractmethod
    def forward(self, model: Any, inputs: np.ndarray, training: bool) -> Any:
        """The model's output (no gradient tape) for an input already laid out
        for the framework, in inference mode unless ``training``; a recurrent
        layer's sequence output. Anything ``numpy.asarray`` reads."""

    # -- changing structure (ties) ---------------------------------------------
    @abc.abstractmethod
    def set_child(self, parent: Any, key: str, child: Any) -> None:
        """Put ``child`` at ``key`` of ``parent`` (a position or attribute)."""

    @abc.abstractmethod
    def copy_layer(self, layer: Any) -> Any:
        """A new, independent, built layer with the same configuration and values."""

    @abc.abstractmethod
    def set_variable(self, module: Any, native_name: str, var: Any) -> None:
        """Make the slot ``native_name`` of ``module`` hold ``var`` (a tie)."""

    @abc.abstractmethod
    def copy_variable(self, var: Any) -> Any:
        """A new variable with the same value, dtype and trainability."""

    # -- autograd --------------------------------------------------------------
    @abc.abstractmethod
    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        """One forward and backward pass; each variable's gradient (native layout)
        or ``None`` when the loss does not depend on it. The loss is reduced
        with `unified_params._core.gradients.reduce_loss`, and the
        gradients are left where ``grad()`` reads them."""


class KindTable:
    """Layer kinds by class, walking the bases (subclasses keep the kind).

    Each class is looked up once; afterwards its kind is one dict read.

    Examples:
        >>> class Base: pass
        >>> class Child(Base): pass
        >>> KindTable({Base: "linear"})(Child)
        'linear'
    """

    __slots__ = ("_table", "_cache")

    def __init__(self, table: Mapping[type, str]) -> None:
        self._table = table
        self._cache: dict[type, str] = {}

    def __call__(self, cls: type) -> str:
        kind = self._cache.get(cls)
        if kind is None:
            kind = next((self._table[k] for k in cls.__mro__ if k in self._table), "other")
            self._cache[cls] = kind
        return kind


def registered_variables(
    params: Mapping[str, Any], buffers: Mapping[str, Any], transient: Any = ()
) -> list[NativeVariable]:
    """Variables of a module that keeps parameters and buffers in two dicts
    (torch ``_parameters``/``_buffers``, paddle likewise).

    Empty slots (``None``) are left out. Non-persistent buffers are
    ``"transient"``, except private ones (a leading underscore: paddle's RNN
    ``_dropout_state``), which are the framework's plumbing, not the model's.

    Examples:
        >>> registered_variables({"weight": 1, "bias": None}, {"stat": 2, "tmp": 3, "_x": 4}, {"tmp", "_x"})
        [('weight', 1, 'param'), ('stat', 2, 'buffer'), ('tmp', 3, 'transient')]
    """
    own = [(n, p, "param") for n, p in params.items() if p is not None]
    if buffers:
        for n, b in buffers.items():
            if b is None:
                continue
            if n not in transient:
                own.append((n, b, "buffer"))
            elif not n.startswith("_"):
                own.append((n, b, "transient"))
    return own


def registered_containers(kids: dict, params: dict, buffers: dict, transient: Sized) -> tuple[Sized, ...]:
    """`Adapter.containers` of a module that keeps children, parameters
    and buffers in dicts (torch, paddle): each dict's keys and values, and the
    names of its non-persistent buffers.

    Examples:
        >>> [list(c) for c in registered_containers({}, {"w": 1}, {}, set())]
        [[], [], ['w'], [1], [], [], []]
    """
    return (kids, kids.values(), params, params.values(), buffers, buffers.values(), transient)


def registered_holds(params: Mapping[str, Any], buffers: Mapping[str, Any], name: str, var: Any) -> bool:
    """`Adapter.holds` for the same kind of module: the slot holds ``var``
    as a parameter or a buffer.

    Examples:
        >>> w = object()
        >>> registered_holds({"w": w}, {}, "w", w), registered_holds({}, {"w": w}, "v", w)
        (True, False)
    """
    return params.get(name) is var or buffers.get(name) is var


@contextlib.contextmanager
def training_mode(modules: Iterable[Any], flag: bool) -> Iterator[None]:
    """Set ``training`` on every module (torch and paddle read that flag), then restore it."""
    saved = [(m, m.training) for m in modules]
    try:
        for m, _ in saved:
            m.training = flag
        yield
    finally:
        for m, was in saved:
            m.training = was


def first_output(output: Any) -> Any:
    """A recurrent layer returns ``(sequence, state)``: the loss is on the sequence."""
    return output[0] if isinstance(output, (tuple, list)) else output


def assign_slice_by_copy(adapter: Adapter, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
    """Write ``var[index]`` through a full read-modify-write of the value.

    For frameworks whose variables offer no in-place sliced write.
    """
    full = adapter.to_numpy(var)
    full[index] = value
    adapter.assign(var, full)  # not `owned`: to_numpy's copy need not be aligned
