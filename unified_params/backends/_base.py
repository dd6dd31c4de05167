"""The contract every backend adapter fulfils.

An adapter translates; it owns no rule. The operations every framework must
supply are abstract, so a backend that forgets or misspells one cannot
silently inherit a default (a structural test also compares every signature
against this class). A few operations have a default that is right for any
framework, only slower or more general than a framework's own way
(`Adapter.child` searches `Adapter.children`); an adapter overrides
those where its framework offers better.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any, ClassVar, Protocol

import numpy as np

from .._core.flatten import FlatInput
from .._core.geometry import Geometry, Pooling
from .._core.gradients import Backward
from .._core.initializers import Initializer
from .._core.layouts import UNKNOWN_KIND, Leaf
from .._core.leaf_norms import LeafNorm, StoredNorm
from .._core.low_rank import LowRank
from .._core.sharding import Group, Sharding
from .._core.state import Merge, Part
from .._core.upsampling import Upsampling
from .registry import Capabilities

#: One native variable of a module: its native name, the variable, and its role
#: to the framework: ``"param"``, ``"buffer"`` (non-trainable state, saved) or
#: ``"transient"`` (a buffer the framework does not save: torch's
#: ``persistent=False``).
NativeVariable = tuple[str, Any, str]


class Adapter(abc.ABC):
    """Translate between the framework-free core and one framework.

    Subclasses set `name` (a name in `unified_params.backends.registry`),
    the layout tables, and implement every abstract method. Variables are
    compared by ``id()`` in the core, so an adapter must return the same
    Python object for the same native variable.
    """

    #: Backend name, as the registry lists it: ``"torch"``, ``"keras"``, ``"paddle"``.
    name: ClassVar[str]
    #: Per layer kind, native variable name -> `Leaf` (canonical name
    #: and native axis roles). A kind listed here lists every variable the
    #: adapter knows of it: one it does not list (a spectral norm's
    #: ``weight_orig``) keeps the framework's own layout (`Param.own_layout`). The variables of
    #: a kind not listed are canonical already.
    LEAVES: ClassVar[Mapping[str, Mapping[str, Leaf]]] = {}
    #: Per layer kind, canonical leaf name -> the canonical entries one native
    #: variable stands for (Keras' single LSTM bias, stacked GRU biases).
    MERGES: ClassVar[Mapping[str, Mapping[str, Merge]]] = {}
    #: Per layer kind, variable path within the layer -> the block of a
    #: canonical entry it is (attention projections packed by torch).
    GATHERS: ClassVar[Mapping[str, Mapping[str, Part]]] = {}
    #: Per layer kind, canonical leaf base name -> the framework's own default
    #: initializer, in canonical terms (what ``up.init.Default()`` applies).
    DEFAULT_INIT: ClassVar[Mapping[str, Mapping[str, Initializer]]] = {}
    #: Layer classes whose kind depends on the instance, not the class alone
    #: (one NNX ``Conv`` class for every rank), and so may their `leaves`; the
    #: core then caches a layer's leaves by class, kind and declared table.
    INSTANCE_KINDS: ClassVar[tuple[type, ...]] = ()
    #: Per kind of the framework's own (a layer whose settings make it compute
    #: what no layer of its class's kind computes elsewhere), why: a port that
    #: refuses to pair it with another framework's layer says so.
    KIND_NOTES: ClassVar[Mapping[str, str]] = {}
    #: Per kind of layer without weights that a port compares (``"pooling"``:
    #: with a window; ``"upsampling"``; ``"padding"``), the names of the
    #: framework's functions that compute one (``max_pool2d``, ``pad``): a module
    #: whose own code names one may run it in its forward, where no layer shows
    #: it (`unified_params._core.code_names`).
    WEIGHTLESS_FUNCTIONS: ClassVar[Mapping[str, frozenset[str]]] = {}
    #: Top-level packages of the framework's own classes, whose methods are
    #: never read for `WEIGHTLESS_FUNCTIONS` (their layers are described by
    #: their settings).
    FRAMEWORK_PACKAGES: ClassVar[tuple[str, ...]] = ()
    #: Classes, by module and class name, that their model runs in training mode
    #: only: what their code names does not touch a port's inference outputs.
    TRAINING_ONLY: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    @property
    def capabilities(self) -> Capabilities:
        """What this backend allows on the engine this process runs it on (the registry's entry)."""
        from .registry import capabilities

        return capabilities(self.name)

    # -- structure -----------------------------------------------------------
    @abc.abstractmethod
    def kind(self, module: Any) -> str:
        """The layer kind: a key of ``CANONICAL_AXES``, ``"container"``,
        ``"relu"``, ``"flatten"`` or ``"other"``."""

    @abc.abstractmethod
    def children(self, module: Any) -> list[tuple[str, Any]]:
        """Direct children as ``(key, native child)``, one per position."""

    @abc.abstractmethod
    def variables(self, module: Any) -> list[NativeVariable]:
        """The module's own variables (not its children's), in native order.

        Raises:
            NotBuiltError: The module's variables do not exist yet.
        """

    def leaf_variables(self, modules: list[Any]) -> list[list[NativeVariable] | None]:
        """Per module, its own variables when the adapter can tell at a glance
        that it has no children, else ``None`` (the walk then asks `children`
        and `variables`). One call for a container's children: a walk of many
        plain layers makes one adapter call where it would make two per layer.
        Default: ``None`` for each."""
        return [None] * len(modules)

    @abc.abstractmethod
    def container_getter(self, module: Any) -> Callable[[Any], tuple[Sized, ...]]:
        """The one hook of the kept-walk cache (`unified_params._core.snapshot`):
        a function that gives, for this module and any other of the same make,
        where the framework keeps the module's children and own variables, as
        sized iterables (a dict for its keys, its ``values()``, lists) such that
        any change to either changes a length or a member. A C-level getter
        where the framework allows: a check calls it on every module."""

    def unwrap(self, model: Any) -> Any:
        """The model to manage, behind any wrapper that shares its parameters
        (torch.compile's); refuse, with `UnsupportedError`, a model whose
        parameters cannot be managed. Default: the model itself."""
        return model

    def code_holder(self, module: Any) -> Any:
        """The object whose class and attributes hold the code that runs for
        ``module``, which a port reads for functions no layer shows
        (`unified_params._core.code_names`): the module itself, or the one a
        position stands for (a Flax NNX stack's layer: its stacked module).
        Default: ``module``.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> net = torch.nn.Sequential(torch.nn.Linear(4, 2))
            >>> adapter_for(net).code_holder(net) is net
            True
        """
        return module

    def type_name(self, module: Any) -> str:
        """The class name a user of the framework knows (``"Dense"``)."""
        return type(module).__name__

    def child(self, module: Any, key: str) -> Any | None:
        """The child at ``key``, or ``None``: one step of a path look-up.
        Default: search `children`; adapters override it to skip the listing."""
        return next((c for k, c in self.children(module) if k == key), None)

    def child_names(self, module: Any) -> dict[str, str]:
        """Names the framework gives children that a path keys by position,
        each with its key: a Keras Sequential's or functional model's layer
        names (what ``model.get_layer(name)`` takes). A path may use either.
        Default: none.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> net = torch.nn.Sequential(torch.nn.Linear(4, 2))
            >>> adapter_for(net).child_names(net)
            {}
        """
        return {}

    def holds(self, module: Any, native_name: str, var: Any) -> bool:
        """Whether the module's slot ``native_name`` still holds ``var``: the
        last step of re-checking a remembered path. Default: search `variables`."""
        return any(n == native_name and v is var for n, v, _ in self.variables(module))

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
    def view(self, var: Any) -> np.ndarray:
        """The value in native layout, sharing the variable's memory where the
        framework allows (`Capabilities.zero_copy_views`), else a copy.
        Callers only read it, and only until the variable is next written."""

    @abc.abstractmethod
    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        """Overwrite the whole value in place; ``value`` is already validated.

        ``owned``: ``value`` is a copy made for this call, 64-byte aligned,
        which the framework may keep as the variable's new memory instead of
        copying it again. Otherwise ``value`` is the caller's: the variable
        must neither share its memory nor read it after this returns (the
        caller may change it next; the conformance suite checks this).
        """

    @abc.abstractmethod
    def grad(self, var: Any) -> np.ndarray | None:
        """A copy of the gradient in native layout, or ``None`` before backward."""

    def to_numpy(self, var: Any) -> np.ndarray:
        """A copy of the value, in native layout, that the caller owns."""
        return np.array(self.view(var), copy=True)

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        """Overwrite ``var[index]`` in place; ``value`` has the selection's shape
        and is the caller's (as in `assign`, never kept nor read later).
        Default: a read-modify-write of the whole value (frameworks without
        `Capabilities.in_place_slices`)."""
        full = self.to_numpy(var)
        full[index] = value
        self.assign(var, full)  # not `owned`: to_numpy's copy need not be aligned

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        """Let ``fill`` write straight into the variable's memory, if it can.

        ``fill`` gets a writable, C-contiguous numpy view of the value in
        native layout. Returns False, without calling ``fill``, when the
        framework offers no such view (the caller then uses `assign`).
        Default: False (frameworks without `Capabilities.in_place_fill`).
        """
        return False

    # -- sharded variables -------------------------------------------------------
    def sharding(self, var: Any) -> Sharding | None:
        """This process's block of a variable sharded over processes, or ``None``
        for a whole one (the default). Raises `UnsupportedError` for a sharded
        variable the adapter cannot read or write block by block, naming what
        it supports: never a silent read or write of one block as the whole."""
        return None

    def local(self, var: Any) -> np.ndarray:
        """A copy of this process's block of a sharded variable (native layout),
        without communication."""
        raise self._not_sharded(var)

    def assign_local(self, var: Any, block: np.ndarray) -> None:
        """Overwrite this process's block of a sharded variable in place."""
        raise self._not_sharded(var)

    def group(self, var: Any) -> Group:
        """The processes that share a sharded variable, for the core's collective steps."""
        raise self._not_sharded(var)

    def _not_sharded(self, var: Any) -> Exception:
        from .._core.errors import UnsupportedError

        return UnsupportedError(f"The {self.name} adapter keeps no sharded variables.")

    # -- the model -------------------------------------------------------------
    @abc.abstractmethod
    def hyperparameters(self, module: Any) -> dict[str, float | str]:
        """Settings that change what the weights mean, in PyTorch's convention
        and names: numbers (``eps``; ``momentum`` as torch counts it; a
        convolution's ``groups``; a GroupNorm's ``num_groups``) and, for a
        recurrent layer, the names of its functions (``activation``, and
        ``recurrent_activation`` for the gates: ``"tanh"``, ``"sigmoid"``),
        its ``direction`` (``"forward"``, ``"reverse"``, ``"bidirectional"``)
        and how both directions' outputs ``merge`` (``"concat"``; ``"none"``
        for a layer running one way alone)."""

    def set_hyperparameters(self, module: Any, values: Mapping[str, float]) -> None:
        """Set numeric settings given in PyTorch's convention (``eps``,
        ``momentum``), as `hyperparameters` reads them; only names that
        `hyperparameters` gives for this module. Default: refuse
        (`UnsupportedError`)."""
        from .._core.errors import UnsupportedError, received

        raise UnsupportedError(
            f"The {self.name} adapter cannot set hyperparameters. Expected a port without align. "
            + received(values=dict(values))
        )

    @abc.abstractmethod
    def forward(self, model: Any, inputs: np.ndarray, training: bool) -> Any:
        """The model's output (no gradient tape) for an input already laid out
        for the framework, in inference mode unless ``training``; a recurrent
        layer's sequence output. Anything ``numpy.asarray`` reads."""

    @abc.abstractmethod
    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        """One forward and backward pass; each variable's gradient (native layout)
        or ``None`` when the loss does not depend on it. The loss is reduced
        with `unified_params._core.gradients.reduce_loss`, and the
        gradients are left where ``grad()`` reads them."""

    def after_write(self, module: Any) -> None:
        """What the framework does after weights are loaded into ``module``:
        rebuild what the layer derives from its variables (Keras
        ``finalize_state``). Default: nothing (layers read their variables
        afresh on every call)."""
        return None

    def after_structure_change(self, model: Any) -> None:
        """What the framework needs once a tie changed which layer or variable a
        slot of ``model`` (the wrapped root) holds: Keras on torch rebuilds the
        torch mirrors of its variables, so torch's own ``named_parameters()``
        sees the change. Default: nothing."""
        return None

    def settings_given(self, parent: Any, key: str) -> dict[str, float | str]:
        """Settings a wrapper ``parent`` gives its child at ``key`` that the child
        does not keep itself, as `hyperparameters` names them: how a
        bidirectional wrapper ``merge``-s its two directions' outputs, and
        the ``direction`` it runs that child in. Default: none.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> net = torch.nn.Sequential(torch.nn.LSTM(3, 4))
            >>> adapter_for(net).settings_given(net, "0")
            {}
        """
        return {}

    def geometry(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> Geometry | None:
        """How a convolution ``module`` lays its windows over its input (kernel,
        stride, dilation, padding and its mode), in the framework's own terms
        translated to `Geometry`, with the zeros padding layers add before it
        where the framework shows them feeding it: ``ancestors`` are the
        modules holding it, the root first, each with the key it holds the next
        at (sequential containers run their children in order); a Keras graph
        records a layer's inputs. ``None`` for any other layer. Default: ``None``.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> net = torch.nn.Sequential(torch.nn.ZeroPad2d(1), torch.nn.Conv2d(3, 4, 3, stride=2))
            >>> g = adapter_for(net).geometry(net[1], [(net, "1")])
            >>> g.stride, g.padding, g.before
            ((2, 2), ((0, 0), (0, 0)), ((1, 1), (1, 1)))
        """
        return None

    def pooling(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> Pooling | None:
        """How a max or average pooling ``module`` with a window lays its
        windows (as `geometry` describes a convolution's, ``ceil_mode``
        included) and, for an average, whether padded positions count in its
        divisor. ``None`` for any other layer, global and adaptive poolings
        included (they take every position). ``ancestors`` as `geometry` takes
        them. Default: ``None``.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> pool = torch.nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)
            >>> found = adapter_for(pool).pooling(pool, [])
            >>> found.kind, found.geometry.ceil, found.counts_padding
            ('average', True, True)
        """
        return None

    def upsampling(self, module: Any) -> Upsampling | None:
        """What an upsampling layer computes: its interpolation, coordinate
        rule and scale per spatial axis. ``None`` for any other layer.
        Default: ``None``.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> up2 = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            >>> adapter_for(up2).upsampling(up2).describe()
            'linear, corners aligned'
        """
        return None

    def output_activation(self, module: Any, ancestors: Sequence[tuple[Any, str]]) -> str | None:
        """The activation a layer's output goes through before anything else
        takes it, as `unified_params._core.activations` names it: its own (a
        Keras ``Dense(..., activation="relu")``), or the next layer where the framework shows it
        (a sequential container's next child, a Keras graph's consumer);
        ``"none"`` where it is known that none follows; ``None`` where the
        framework cannot tell (a forward method decides) or the activation has
        no name here. ``ancestors`` as `geometry` takes them. Default: ``None``.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
            >>> a = adapter_for(net)
            >>> a.output_activation(net[0], [(net, "0")]), a.output_activation(net[2], [(net, "2")])
            ('relu', 'none')
        """
        return None

    def inference_rescaling(self, module: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """How a layer without weights changes its input at inference, where
        frameworks differ: ``(scale, offset)`` for a layer that computes
        ``x * scale + offset``, each one value or one per channel. Paddle's
        ``Dropout`` of mode ``"downscale_in_infer"`` scales by ``1 - p`` (every
        framework's dropout is the identity at inference otherwise); Keras'
        ``Rescaling`` scales and offsets. ``None`` for a layer that passes its
        input on unchanged. Default: ``None``.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> adapter_for(torch.nn.Dropout(0.5)).inference_rescaling(torch.nn.Dropout(0.5)) is None
            True
        """
        return None

    def idle(self, module: Any) -> tuple[str, ...]:
        """The children a module holds but does not compute with now, by key:
        peft's ``ModulesToSaveWrapper`` keeps the original layer beside the
        trained copy it runs. A port pairs neither side's: it reads none of
        the source's and leaves the destination's as they are. Default: none.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> adapter_for(torch.nn.Linear(4, 2)).idle(torch.nn.Linear(4, 2))
            ()
        """
        return ()

    def low_rank(self, module: Any) -> tuple[LowRank, ...]:
        """The low-rank updates (LoRA) a layer adds to its leaves on each call,
        each with where the leaf and its factors are: a port merges a source's
        into its leaf and resets a destination's (`unified_params._core.low_rank`).
        Default: none.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> adapter_for(torch.nn.Linear(4, 2)).low_rank(torch.nn.Linear(4, 2))
            ()
        """
        return ()

    def computed(self, module: Any) -> tuple[str, ...]:
        """The leaves a layer computes from other variables on each call, by
        native name: a weight norm's or spectral norm's ``weight`` (from
        ``weight_g`` and ``weight_v``, or ``weight_orig``), a torch
        parametrization's. A port names them when such a layer does not pair.
        Default: none.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> adapter_for(torch.nn.Linear(4, 2)).computed(torch.nn.Linear(4, 2))
            ()
        """
        return ()

    def leaf_norms(self, module: Any) -> tuple[LeafNorm, ...]:
        """The weight norms and spectral norms a layer computes a leaf by, each
        with the axis it keeps and where the layer keeps its variables: the
        core lays those out canonically (`unified_params._core.leaf_norms`).
        Default: none.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> normed = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(4, 2))
            >>> [(n.make, n.leaf, n.axis, n.path("g")) for n in adapter_for(normed).leaf_norms(normed)]
            [('weight', 'weight', 0, 'parametrizations.weight.original0')]
        """
        return ()

    def stored_norms(self, module: Any) -> tuple[StoredNorm, ...]:
        """The spectral norms a wrapper applies in training to a leaf of the
        layer it wraps, keeping the normed leaf in its place (Keras'
        ``SpectralNormalization``): a port pairs the wrapped layer, with the
        wrapper's ``u``, with a layer whose norm computes that leaf
        (`unified_params._core.leaf_norms.StoredNorm`). Default: none.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> adapter_for(torch.nn.Linear(4, 2)).stored_norms(torch.nn.Linear(4, 2))
            ()
        """
        return ()

    def default_init(self, module: Any, kind: str) -> Mapping[str, Initializer]:
        """How the framework initialises a layer's leaves by default, by
        canonical name (`unified_params.init.Default`). Default:
        ``DEFAULT_INIT[kind]``; a layer of a zoo that draws its own
        (transformers' ``Conv1D``) says so here.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> sorted(adapter_for(torch.nn.Linear(4, 2)).default_init(torch.nn.Linear(4, 2), "linear"))
            ['bias', 'weight']
        """
        return self.DEFAULT_INIT.get(kind, {})

    def leaves(self, module: Any, kind: str) -> Mapping[str, Leaf] | None:
        """What the adapter declares of a layer's variables, by native name
        (``None``: all canonical already; a variable a table does not list keeps
        the framework's own layout). Default: ``LEAVES[kind]``. A class
        in ``INSTANCE_KINDS`` may declare them per instance (a Flax NNX
        ``ConvTranspose`` built with ``transpose_kernel=False`` keeps its
        kernel mirrored); any other, per class.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> adapter_for(torch.nn.Linear(4, 2)).leaves(torch.nn.Linear(4, 2), "linear") is None
            True
        """
        return self.LEAVES.get(kind)

    def flattened_input(self, layer: Any) -> FlatInput | None:
        """What the framework records of the features a Linear ``layer`` takes:
        a map of some channels at some positions, flattened channels last or
        first (one position when its input is no map); ``None`` when it does
        not record it. The core asks only on channels-last frameworks.
        Default: ``None`` (a model without a graph).

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> adapter_for(torch.nn.Linear(4, 2)).flattened_input(torch.nn.Linear(4, 2)) is None
            True
        """
        return None

    def unflattened_output(self, layer: Any) -> FlatInput | None:
        """What the framework records of the map ``layer``'s output features
        become: a Linear's (or a per-feature normalisation's) reshaped into a
        map of some channels at some positions, held channels last or first
        (one position when they stay a vector or a sequence); ``None`` when it
        does not record it. The core asks only on channels-last frameworks.
        Default: ``None`` (a model without a graph).

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> adapter_for(torch.nn.Linear(4, 2)).unflattened_output(torch.nn.Linear(4, 2)) is None
            True
        """
        return None

    def consumers(self, root: Any, layer: Any) -> list[Any] | None:
        """The layers the model ``root``'s graph sends ``layer``'s outputs to
        (``root`` itself for an output of the model); ``None`` when the
        framework records no graph (the call order lives in a forward
        method). Default: ``None``.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
            >>> adapter_for(net).consumers(net, net[0]) is None
            True
        """
        return None

    def input_layout(self, layer: Any) -> str | None:
        """How ``layer`` takes its input when not as the canonical layout
        does: ``"channels_first"`` (images, on a channels-last framework: a
        Keras layer built with ``data_format="channels_first"``),
        ``"channels_last"`` (images, on a channels-first framework: a paddle
        layer built with ``data_format="NHWC"``) or
        ``"time_major"`` (a recurrent layer taking ``(time, batch, ...)``:
        torch's ``batch_first=False``, paddle's ``time_major=True``). Default:
        ``None``, the framework's usual layout.

        Examples:
            >>> from unified_params.backends import adapter_for
            >>> import torch
            >>> lstm = torch.nn.LSTM(3, 4)  # batch_first=False: (time, batch, features)
            >>> adapter_for(lstm).input_layout(lstm)
            'time_major'
        """
        return None

    def input_rank(self, model: Any) -> int | None:
        """The rank (batch axis included) of the input the model declares, or
        ``None``: how a channels-last framework tells an image model whose first
        layer holds no convolution. Default: ``None`` (nothing to decide)."""
        return None

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


class SpecBuilder(Protocol):
    """How one backend builds `unified_params.spec` layers natively (each adapter
    package's ``SPEC``)."""

    def layer(self, spec: Any, name: str | None) -> Any:
        """The native layer of one spec layer (not a Sequential); ``name``: the key
        a named parent gives it. Raises `UnsupportedError` for a spec the
        framework cannot express."""
        ...

    def sequential(self, children: list[Any], keys: list[str] | None, name: str | None) -> Any:
        """A native sequential container of built children, keyed by ``keys`` if given."""
        ...

    def finish(self, native: Any, spec: Any, input_shape: tuple[int | None, ...] | None) -> None:
        """Whatever the framework needs once the whole model exists (Keras builds it)."""
        ...


def epsilon_momentum(module: Any, batch_norm: Any) -> dict[str, float]:
    """``eps`` and (for a ``batch_norm`` layer) ``momentum`` in torch's convention,
    from a layer that keeps them as ``epsilon`` and ``momentum = 1 - torch's``
    (Keras, Flax NNX): the reading `set_epsilon_momentum` writes back.

    Examples:
        >>> class Norm: epsilon, momentum = 1e-3, 0.99
        >>> {k: round(v, 6) for k, v in epsilon_momentum(Norm(), Norm).items()}
        {'eps': 0.001, 'momentum': 0.01}
    """
    out: dict[str, float] = {}
    if isinstance(getattr(module, "epsilon", None), float):
        out["eps"] = module.epsilon
    if isinstance(module, batch_norm):
        out["momentum"] = 1.0 - module.momentum
    return out


def cell_functions(cell: Any, attributes: Mapping[str, str]) -> dict[str, str]:
    """The names of a recurrent cell's functions, each read from the attribute
    ``attributes`` gives for it (Keras: ``activation``; Flax NNX:
    ``activation_fn``), for `Adapter.hyperparameters`.

    Examples:
        >>> import math
        >>> class Cell: activation_fn = math.tanh
        >>> cell_functions(Cell(), {"activation": "activation_fn", "recurrent_activation": "gate_fn"})
        {'activation': 'tanh'}
    """
    found = {name: getattr(cell, attribute, None) for name, attribute in attributes.items()}
    return {name: getattr(f, "__name__", repr(f)) for name, f in found.items() if callable(f)}


def set_epsilon_momentum(module: Any, values: Mapping[str, float]) -> None:
    """Set ``eps`` and ``momentum`` (torch's convention) on a layer that keeps
    them as ``epsilon`` and ``momentum = 1 - torch's``, read by every call
    (Keras, Flax NNX).

    Examples:
        >>> class Norm: epsilon, momentum = 1e-3, 0.99
        >>> layer = Norm(); set_epsilon_momentum(layer, {"eps": 1e-5, "momentum": 0.1})
        >>> layer.epsilon, round(layer.momentum, 6)
        (1e-05, 0.9)
    """
    for name, value in values.items():
        if name == "eps":
            module.epsilon = value
        elif name == "momentum":
            module.momentum = 1.0 - value


def per_axis(value: Any, axes: int) -> tuple[int, ...]:
    """A window setting (kernel, stride, padding) per spatial axis, from an int
    or one per axis (frameworks take either).

    Examples:
        >>> per_axis(3, 2), per_axis([3, 1], 2)
        ((3, 3), (3, 1))
    """
    return (int(value),) * axes if isinstance(value, int) else tuple(int(v) for v in value)


def runs_its_own(module: Any, bases: tuple[type, ...], method: str) -> bool:
    """Whether ``module``'s class replaces ``method`` (its forward pass) of the
    framework class among ``bases`` it derives from: then its settings may not
    say what it computes (a convolution that pads in its own forward).

    Examples:
        >>> class Conv: pass
        >>> class Padded(Conv):
        ...     def __call__(self, x): return x
        >>> runs_its_own(Conv(), (Conv,), "__call__"), runs_its_own(Padded(), (Conv,), "__call__")
        (False, True)
    """
    base = next((b for b in bases if isinstance(module, b)), None)
    return base is not None and _defined(type(module), method) is not _defined(base, method)


def forward_replaced(module: Any, method: str = "forward") -> bool:
    """Whether ``module``'s forward pass is not its class's own code: set on the
    instance, or set on the class by code of another module. What a library
    knows of a zoo class by its module and class name holds only where not.

    Examples:
        >>> class Block:
        ...     def forward(self, x): return x
        >>> block = Block(); before = forward_replaced(block)
        >>> block.forward = lambda x: -x
        >>> before, forward_replaced(block)
        (False, True)
    """
    cls = type(module)
    return method in vars(module) or getattr(getattr(cls, method, None), "__module__", None) != cls.__module__


def _defined(cls: type, name: str) -> Any:
    """The attribute ``name`` as the first class of ``cls``'s bases that defines it holds it."""
    return next((vars(k)[name] for k in cls.__mro__ if name in vars(k)), None)


def holds_layer(value: Any, layer_type: type | tuple[type, ...]) -> bool:
    """Whether ``value`` is a layer, or a list, tuple or dict holding one at any
    depth: what a subclassed model's attribute must be to count as a child.

    Examples:
        >>> holds_layer({"a": [1, 2.0]}, float), holds_layer([1, "x"], float)
        (True, False)
    """
    if isinstance(value, layer_type):
        return True
    if isinstance(value, (list, tuple)):
        return any(holds_layer(v, layer_type) for v in value)
    if isinstance(value, dict):
        return any(holds_layer(v, layer_type) for v in value.values())
    return False


class KindTable:
    """Layer kinds by class, walking the bases (subclasses keep the kind);
    ``by_name`` lists classes of other packages by module and class name, so
    that nothing is imported to know them (transformers' ``Conv1D``).

    Each class is looked up once; afterwards its kind is one dict read.

    Examples:
        >>> class Base: pass
        >>> class Child(Base): pass
        >>> KindTable({Base: "linear"})(Child)
        'linear'
        >>> KindTable({}, by_name={(__name__, "Base"): "linear"})(Child)
        'linear'
    """

    __slots__ = ("_table", "_by_name", "_cache")

    def __init__(
        self, table: Mapping[type, str], by_name: Mapping[tuple[str, str], str] | None = None
    ) -> None:
        self._table = table
        self._by_name = by_name or {}
        self._cache: dict[type, str] = {}

    def listed(self, cls: type) -> type | None:
        """The first class of ``cls``'s bases (itself included) the table lists.

        Examples:
            >>> class Base: pass
            >>> class Child(Base): pass
            >>> KindTable({Base: "linear"}).listed(Child) is Base
            True
        """
        return next((k for k in cls.__mro__ if k in self._table or self._named(k) is not None), None)

    def _named(self, cls: type) -> str | None:
        return self._by_name.get((cls.__module__, cls.__name__)) if self._by_name else None

    def __call__(self, cls: type) -> str:
        kind = self._cache.get(cls)
        if kind is None:
            listed = self.listed(cls)
            kind = UNKNOWN_KIND if listed is None else self._table.get(listed) or self._named(listed)
            self._cache[cls] = kind = kind or UNKNOWN_KIND
        return kind
