"""Canonical names and layouts, declared per layer kind.

The canonical layout is PyTorch's: Linear ``(out, in)``, Conv ``(out, in,
*kernel)``, recurrent gates ``i,f,g,o`` (LSTM) and ``r,z,n`` (GRU). Every axis
of every canonical leaf has a *role*; an adapter declares, for each native
variable of a layer kind, its canonical name and the roles of its native axes
(a `Leaf`). The conversion is then derived from roles alone, never
guessed from shapes: a square kernel is transposed because its roles say so,
not because its shape allows it.

Examples:
    >>> import numpy as np
    >>> keras_kernel = Leaf("weight", ("in", "out"))
    >>> layout = plan("linear", keras_kernel, ndim=2)
    >>> layout.to_canonical(np.zeros((4, 8))).shape
    (8, 4)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ShapeError, received
from .recycling import ALIGNMENT, aligned_empty  # noqa: F401  (where the core finds them)

_RECURRENT_AXES = {
    "weight_ih": ("gates", "in"),
    "weight_hh": ("gates", "hidden"),
    "bias_ih": ("gates",),
    "bias_hh": ("gates",),
}

#: Canonical axis roles, per layer kind and canonical leaf name (without the
#: ``_l0`` / ``_l0_reverse`` suffix of recurrent layers).
CANONICAL_AXES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "linear": {"weight": ("out", "in"), "bias": ("out",)},
    "conv1d": {"weight": ("out", "in", "k0"), "bias": ("out",)},
    "conv2d": {"weight": ("out", "in", "k0", "k1"), "bias": ("out",)},
    "conv3d": {"weight": ("out", "in", "k0", "k1", "k2"), "bias": ("out",)},
    # A depthwise-then-pointwise pair in one layer (Keras SeparableConv2D): the depthwise
    # kernel is a grouped conv weight (in * mult, 1, kH, kW), the pointwise one a 1x1 conv.
    "separable_conv2d": {
        "depthwise_weight": ("out", "1", "k0", "k1"),
        "pointwise_weight": ("out", "in", "k0", "k1"),
        "bias": ("out",),
    },
    "conv_transpose1d": {"weight": ("in", "out", "k0"), "bias": ("out",)},
    "conv_transpose2d": {"weight": ("in", "out", "k0", "k1"), "bias": ("out",)},
    "conv_transpose3d": {"weight": ("in", "out", "k0", "k1", "k2"), "bias": ("out",)},
    "mha": {"in_proj_weight": ("out", "in"), "in_proj_bias": ("out",)},
    "batchnorm": {
        "weight": ("c",),
        "bias": ("c",),
        "running_mean": ("c",),
        "running_var": ("c",),
        "num_batches_tracked": (),
    },
    "layernorm": {"weight": ("c",), "bias": ("c",)},
    "groupnorm": {"weight": ("c",), "bias": ("c",)},
    "rmsnorm": {"weight": ("c",)},
    "rmsnorm_offset": {"weight": ("c",)},
    "embedding": {"weight": ("rows", "dim")},
    **{kind: _RECURRENT_AXES for kind in ("rnn", "lstm", "gru")},
}

#: Gate order along the ``gates`` axis in the canonical layout, per recurrent
#: kind (an Elman RNN has one block, its hidden state ``h``).
CANONICAL_GATES: Mapping[str, str] = {"rnn": "h", "lstm": "ifgo", "gru": "rzn"}

#: Recurrent layer kinds: torch's ``nn.RNN`` (tanh or relu), ``nn.LSTM``, ``nn.GRU``.
RECURRENT = frozenset(CANONICAL_GATES)

#: Normalisations with a weight per channel (axis 1 of a canonical input): they
#: keep a feature map's channels, and take image inputs channels first.
CHANNEL_NORMS = frozenset({"batchnorm", "groupnorm"})
#: The kind of a layer the library does not know: its leaves keep its framework's names.
UNKNOWN_KIND = "other"

#: Normalisations over the last axis (each feature its own weight).
FEATURE_NORMS = frozenset({"layernorm", "rmsnorm", "rmsnorm_offset"})

#: Kinds that compute the same function with a leaf's values kept otherwise: per
#: ``(kind, other kind)``, per leaf, what to add to a value of the first to get the
#: second's. An ``rmsnorm_offset`` (Gemma's RMSNorm and its kin in transformers)
#: scales by ``1 + weight`` where an ``rmsnorm`` scales by ``weight``.
KIND_CONVERSIONS: Mapping[tuple[str, str], Mapping[str, float]] = {
    ("rmsnorm_offset", "rmsnorm"): {"weight": 1.0},
    ("rmsnorm", "rmsnorm_offset"): {"weight": -1.0},
}


def same_function(kind: str, other: str) -> bool:
    """Whether layers of the two kinds compute alike, their values converted
    where `KIND_CONVERSIONS` says.

    Examples:
        >>> same_function("rmsnorm_offset", "rmsnorm"), same_function("rmsnorm", "layernorm")
        (True, False)
    """
    return kind == other or (kind, other) in KIND_CONVERSIONS


def kind_offset(given: str | None, kind: str, leaf: str) -> float | None:
    """What to add to a value of ``leaf`` held by a layer of kind ``given``
    (``None``: not known) for a layer of ``kind`` (`KIND_CONVERSIONS`), or
    ``None`` where the value is kept alike.

    Examples:
        >>> kind_offset("rmsnorm_offset", "rmsnorm", "weight"), kind_offset(None, "rmsnorm", "weight")
        (1.0, None)
    """
    return None if given is None else KIND_CONVERSIONS.get((given, kind), {}).get(leaf)


def offset_value(value: Any, offset: float) -> np.ndarray:
    """``value + offset`` in float64: a leaf's value for a kind that keeps it
    otherwise (`KIND_CONVERSIONS`), rounded once, by the cast to the
    destination's dtype (``1 + w`` of a bfloat16 ``w`` is not a bfloat16).

    Examples:
        >>> offset_value(np.array([0.5], "float16"), 1.0)
        array([1.5])
    """
    return np.asarray(value).astype(np.float64) + offset


#: Canonical leaves that are running statistics (kind ``"buffer"``) on every
#: backend, whatever the framework calls them.
BUFFERS: Mapping[str, frozenset[str]] = {
    "batchnorm": frozenset({"running_mean", "running_var", "num_batches_tracked"}),
}

#: Canonical leaves that only some frameworks keep (torch's batch counter): a
#: checkpoint or port may lack them, or carry them, without being wrong.
OPTIONAL: Mapping[str, frozenset[str]] = {
    "batchnorm": frozenset({"num_batches_tracked"}),
}

#: Leaves a layer of the kind may lack, per framework or setting (a torchvision
#: convolution before a BatchNorm has no bias, a Keras ``BatchNormalization(scale=False)``
#: no weight), and the value with which the layer computes, with the leaf, what it
#: computes without it: a bias of zeros, a scale of ones. Recurrent leaves are
#: named without their ``_l0`` suffix.
NEUTRAL: Mapping[str, Mapping[str, float]] = {
    **{
        kind: {"bias": 0.0}
        for kind in (
            "linear",
            "conv1d",
            "conv2d",
            "conv3d",
            "separable_conv2d",
            "conv_transpose1d",
            "conv_transpose2d",
            "conv_transpose3d",
        )
    },  # fmt: skip
    **{kind: {"weight": 1.0, "bias": 0.0} for kind in ("batchnorm", "layernorm", "groupnorm")},
    "rmsnorm": {"weight": 1.0},
    "rmsnorm_offset": {"weight": 0.0},
    "mha": {"in_proj_bias": 0.0},
    **{kind: {"bias_ih": 0.0, "bias_hh": 0.0} for kind in ("rnn", "lstm", "gru")},
}

#: Layer kinds whose parameters the library knows by role.
KNOWN_KINDS = frozenset(CANONICAL_AXES)

_RNN_SUFFIX = re.compile(r"_(l\d+(?:_reverse)?)$")
#: A kernel's spatial roles: ``k0``, ``k1``, ...
_SPATIAL = re.compile(r"k\d+")


@dataclass(frozen=True)
class Leaf:
    """One native variable of a layer kind, as an adapter declares it.

    Args:
        canonical: The canonical leaf name (``"weight"``, ``"weight_ih_l0"``).
        axes: The roles of the native axes, in native order (or a mapping
            from rank to roles).
        gates: The native gate order along the ``gates`` axis, if it differs
            from the canonical one (Keras GRU: ``"zrn"``).
        canonical_axes: The canonical roles, when the kind's table does not
            say them: a tuple of roles is one canonical axis that merges
            those native axes in order (a depthwise kernel's channels and
            multiplier), ``"1"`` a new axis of size one.
        mirrored: The native kernel is the canonical one mirrored along its
            spatial axes (``k0``, ``k1``, ...): a transposed convolution that
            applies its kernel as a plain convolution does (Flax NNX's
            ``ConvTranspose`` with ``transpose_kernel=False``).
        per_layer: Declared for one layer, not for its class (a weight
            norm's magnitude, laid out by the axis that layer's norm keeps).

    Examples:
        >>> Leaf("weight", ("k0", "k1", "in", "out")).canonical
        'weight'
    """

    canonical: str
    axes: tuple[str, ...] | Mapping[int, tuple[str, ...]] | None = None
    gates: str | None = None
    canonical_axes: tuple[str | tuple[str, ...], ...] | None = None
    mirrored: bool = False
    per_layer: bool = False

    def axes_for(self, ndim: int) -> tuple[str, ...] | None:
        """The native axis roles for a variable of ``ndim`` axes.

        ``axes`` may map a rank to roles when one native name takes several
        ranks (a Keras GRU bias is 2-D with ``reset_after``, else 1-D).
        """
        if isinstance(self.axes, Mapping):
            return self.axes.get(ndim)
        return self.axes


def base_name(name: str) -> str:
    """A canonical leaf name without its recurrent layer suffix.

    Examples:
        >>> base_name("weight_ih_l1_reverse")
        'weight_ih'
    """
    return _RNN_SUFFIX.sub("", name)


def recurrent_part(name: str) -> str:
    """The layer and direction a recurrent leaf belongs to (its suffix), or ``""``.

    Examples:
        >>> recurrent_part("weight_ih_l1_reverse"), recurrent_part("bias")
        ('l1_reverse', '')
    """
    match = _RNN_SUFFIX.search(name)
    return match.group(1) if match else ""


def is_buffer(kind: str, canonical: str) -> bool:
    """Whether the layer kind declares this leaf a running statistic.

    Examples:
        >>> is_buffer("batchnorm", "running_var"), is_buffer("linear", "bias")
        (True, False)
    """
    return canonical in BUFFERS.get(kind, ())


@dataclass(frozen=True)
class Layout:
    """The conversion between one variable's native and canonical layouts.

    ``perm`` takes native axes to canonical ones (``canonical =
    native.transpose(perm)``); ``gate_perm`` then reorders the gate blocks
    along ``gate_axis`` (a canonical axis).
    """

    perm: tuple[int, ...]
    gate_axis: int | None = None
    gate_perm: tuple[int, ...] | None = None
    #: Per canonical axis, how many (transposed) native axes it merges; 0 is a
    #: new axis of size one. ``None``: one native axis each.
    groups: tuple[int, ...] | None = None
    #: Native axes that hold a flattened feature map channels last, each as
    #: ``(native axis, positions, channels)``; canonically they run channels
    #: first (the inputs of a Linear after a Flatten, the outputs of one
    #: reshaped into a map: `unified_params._core.flatten`).
    flat: tuple[tuple[int, int, int], ...] | None = None
    #: Canonical axes along which the native values run in reverse (a
    #: mirrored kernel's spatial axes: `Leaf.mirrored`).
    flip: tuple[int, ...] | None = None

    @property
    def is_identity(self) -> bool:
        """True when native and canonical layouts coincide."""
        return (
            self.gate_perm is None
            and self.groups is None
            and self.flat is None
            and self.flip is None
            and self.perm == tuple(range(len(self.perm)))
        )

    def with_flat(self, native_axis: int, positions: int, channels: int) -> Layout:
        """This layout, with ``native_axis`` holding a ``(positions, channels)``
        map flattened channels last, which the canonical layout orders
        ``(channels, positions)``.

        Examples:
            >>> layout = Layout((1, 0)).with_flat(0, positions=2, channels=3)
            >>> native = np.arange(6).reshape(6, 1)  # inputs (p0c0, p0c1, p0c2, p1c0, ...)
            >>> layout.to_canonical(native).tolist()  # (c0p0, c0p1, c1p0, ...)
            [[0, 3, 1, 4, 2, 5]]
        """
        if self.groups is not None or self.gate_perm is not None or self.flip is not None:
            raise ValueError("a flattened map in a layout that merges axes, reorders gates or mirrors")
        return Layout(self.perm, flat=(*(self.flat or ()), (native_axis, positions, channels)))

    def canonical_shape(self, native_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The canonical shape of a native shape.

        Examples:
            >>> Layout((1, 0)).canonical_shape((4, 8))
            (8, 4)
        """
        moved = tuple(native_shape[i] for i in self.perm)
        if self.groups is None:
            return moved
        out, k = [], 0
        for g in self.groups:
            out.append(math.prod(moved[k : k + g]))
            k += g
        return tuple(out)

    def native_shape(self, canonical_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The native shape of a canonical shape (layouts that merge no axes)."""
        if self.groups is not None:
            raise ValueError("a layout that merges axes needs the native shape")
        out = [0] * len(self.perm)
        for canon_axis, native_axis in enumerate(self.perm):
            out[native_axis] = canonical_shape[canon_axis]
        return tuple(out)

    def to_canonical(self, native: np.ndarray) -> np.ndarray:
        """Native array -> canonical array (a view when only axes move)."""
        if self.flat is not None:
            return self._unflattened(native, to_canonical=True)
        out = native if self.is_identity else np.transpose(native, self.perm)
        if self.groups is not None:
            out = out.reshape(self.canonical_shape(native.shape))
        if self.gate_perm is not None:
            out = _reorder_blocks(out, int(self.gate_axis or 0), self.gate_perm)
        if self.flip is not None:
            out = np.flip(out, self.flip)  # a view
        return out

    def to_native(self, canonical: np.ndarray, native_shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Canonical array -> native array (inverse of `to_canonical`).

        ``native_shape`` is needed only by layouts that merge axes.
        """
        if self.flat is not None:
            return self._unflattened(canonical, to_canonical=False)
        out = canonical if self.flip is None else np.flip(canonical, self.flip)
        if self.gate_perm is not None:
            inverse = tuple(int(i) for i in np.argsort(self.gate_perm))
            out = _reorder_blocks(out, int(self.gate_axis or 0), inverse)
        if self.groups is not None:
            if native_shape is None:
                raise ValueError("a layout that merges axes needs the native shape")
            out = out.reshape(tuple(native_shape[i] for i in self.perm))
        if self.perm != tuple(range(len(self.perm))):
            out = np.transpose(out, tuple(int(i) for i in np.argsort(self.perm)))
        return out

    def _unflattened(self, array: np.ndarray, *, to_canonical: bool) -> np.ndarray:
        """Move axes and reorder a flattened map's features, in one copy: the
        flat axis is split into its two factors, every axis goes where the
        other layout has it, and the factors merge again."""
        assert self.flat is not None
        flats = {axis: (positions, channels) for axis, positions, channels in self.flat}
        native_shape = array.shape if to_canonical else self.native_shape(array.shape)
        # The split native array: a flat axis becomes (positions, channels), the others stay.
        split_shape: list[int] = []
        split: list[list[int]] = []
        for axis, size in enumerate(native_shape):
            parts = flats.get(axis, (size,))
            split.append(list(range(len(split_shape), len(split_shape) + len(parts))))
            split_shape += parts
        canonical_order: list[int] = []
        for native_axis in self.perm:  # a flat axis runs (channels, positions) canonically
            canonical_order += split[native_axis][::-1]
        if to_canonical:
            moved = array.reshape(split_shape).transpose(canonical_order)
            return moved.reshape(tuple(native_shape[i] for i in self.perm))
        inverse = tuple(int(i) for i in np.argsort(canonical_order))
        canonical_split = [split_shape[i] for i in canonical_order]
        return array.reshape(canonical_split).transpose(inverse).reshape(native_shape)

    def native_index(self, index: Any, ndim: int) -> tuple[tuple[Any, ...], tuple[int, ...]] | None:
        """Translate a basic canonical index into a native one.

        Returns ``(native_index, value_axes)``: the index to use on the native
        array, and the transpose that takes a value shaped like the canonical
        selection to the native selection. ``None`` when the index is not a
        plain combination of integers and slices, or gates are reordered; the
        caller then falls back to a whole-array write.

        Examples:
            >>> Layout((1, 0)).native_index((0, slice(None)), 2)
            ((slice(None, None, None), 0), (0,))
        """
        if self.gate_perm is not None or self.groups is not None or self.flat is not None or self.flip:
            return None
        full = _expand_index(index, ndim)
        if full is None:
            return None
        native: list[Any] = [slice(None)] * ndim
        for canon_axis, native_axis in enumerate(self.perm):
            native[native_axis] = full[canon_axis]
        kept_canon = [a for a in range(ndim) if isinstance(full[a], slice)]
        kept_native = sorted(self.perm[a] for a in kept_canon)
        canon_of_native = {self.perm[a]: a for a in range(ndim)}
        value_axes = tuple(kept_canon.index(canon_of_native[n]) for n in kept_native)
        return tuple(native), value_axes


IDENTITY_CACHE: dict[int, Layout] = {}


def identity(ndim: int) -> Layout:
    """The layout of a variable whose native and canonical forms coincide."""
    layout = IDENTITY_CACHE.get(ndim)
    if layout is None:
        layout = IDENTITY_CACHE[ndim] = Layout(tuple(range(ndim)))
    return layout


def plan(kind: str, leaf: Leaf | None, ndim: int) -> Layout:
    """The layout conversion for one native variable.

    Args:
        kind: The layer kind (``"linear"``, ``"conv2d"``, ...).
        leaf: What the adapter declared for the variable, or ``None`` when
            its native form is already canonical.
        ndim: The number of native axes.

    Raises:
        ShapeError: The declared roles do not fit the variable.

    Examples:
        >>> plan("conv2d", Leaf("weight", ("k0", "k1", "in", "out")), 4).perm
        (3, 2, 0, 1)
        >>> mirrored = plan("conv_transpose1d", Leaf("weight", ("k0", "in", "out"), mirrored=True), 3)
        >>> mirrored.perm, mirrored.flip  # (in, out, k0), the kernel axis reversed
        ((1, 2, 0), (2,))
        >>> mirrored.to_canonical(np.arange(3).reshape(3, 1, 1)).ravel().tolist()
        [2, 1, 0]
    """
    axes = None if leaf is None else leaf.axes_for(ndim)
    if axes is None:
        if leaf is not None and leaf.axes is not None:
            raise ShapeError(
                f"No layout is declared for a {ndim}-D {kind} leaf {leaf.canonical!r}. "
                f"Expected one of the declared ranks. " + received(axes=leaf.axes, ndim=ndim)
            )
        return identity(ndim)
    assert leaf is not None  # axes come from a leaf
    if len(axes) != ndim:
        stacked = (
            " One axis more: the variables of a stack of layers, as a scan over layers keeps them "
            "(Flax NNX's nnx.vmap over a layer's constructor gives each variable a leading layer "
            "axis)? A stack is read as one layer per index only where every variable in it has a "
            "leading axis of one size; layouts are declared for one layer's variables. Expected a "
            "stack whose every variable is stacked, or the layers apart (a list of layers, each "
            "with its own variables)."
            if ndim == len(axes) + 1
            else ""
        )
        raise ShapeError(
            f"The layout declared for a {kind} leaf {leaf.canonical!r} has "
            f"{len(axes)} axes, but the variable has {ndim}.{stacked} " + received(axes=axes, ndim=ndim)
        )
    canonical_axes = leaf.canonical_axes or CANONICAL_AXES.get(kind, {}).get(base_name(leaf.canonical), axes)
    flat: list[str] = []
    groups: list[int] = []
    for item in canonical_axes:
        members = () if item == "1" else item if isinstance(item, tuple) else (item,)
        flat.extend(members)
        groups.append(len(members))
    if sorted(flat) != sorted(axes):
        raise ShapeError(
            f"The roles declared for a {kind} leaf {leaf.canonical!r} do not match its canonical "
            f"roles. Expected a permutation of {tuple(flat)}. " + received(axes=axes)
        )
    perm = tuple(axes.index(role) for role in flat)
    merged = None if all(g == 1 for g in groups) else tuple(groups)
    if leaf.mirrored:
        if merged is not None or leaf.gates is not None:
            raise ValueError("a mirrored kernel in a layout that merges axes or reorders gates")
        spatial = tuple(k for k, role in enumerate(flat) if _SPATIAL.fullmatch(role))
        return Layout(perm, flip=spatial)
    if leaf.gates is None or "gates" not in canonical_axes:
        return Layout(perm, groups=merged)
    canon_gates = CANONICAL_GATES[kind]
    gate_perm = tuple(leaf.gates.index(g) for g in canon_gates)
    if gate_perm == tuple(range(len(gate_perm))):
        return Layout(perm, groups=merged)
    return Layout(perm, canonical_axes.index("gates"), gate_perm, merged)


#: Below this many elements a strided copy is numpy's own (a kernel's set-up would dominate).
SMALL = 32 * 1024


def adoptable(array: np.ndarray) -> bool:
    """Whether a framework may keep ``array`` as a variable's memory: it is
    C-contiguous, writeable and 64-byte aligned (as `aligned_empty` makes).

    Examples:
        >>> adoptable(aligned_empty((4, 4), np.float32)), adoptable(aligned_empty((4, 4), np.float32).T)
        (True, False)
    """
    return bool(array.flags.c_contiguous and array.flags.writeable and array.ctypes.data % ALIGNMENT == 0)


def contiguous(array: np.ndarray, out: np.ndarray | None = None, *, alongside: bool = False) -> np.ndarray:
    """A C-contiguous array with ``array``'s values; a copy only when needed.

    With ``out`` (C-contiguous, same shape and dtype), the values are copied
    into it, and it is returned. A fresh copy is 64-byte aligned. A transposed
    2-D view (the common Linear-kernel case) goes through the fastest kernel
    the process has (`unified_params._core.transpose`), several times faster
    than numpy's strided copy; ``alongside`` says the copy runs on a helper
    thread beside other work (see `unified_params._core.transpose.transposed`).

    Examples:
        >>> a = np.arange(6).reshape(2, 3)
        >>> contiguous(a) is a, contiguous(a.T).flags.c_contiguous
        (True, True)
        >>> buf = np.empty((3, 2), a.dtype)
        >>> contiguous(a.T, out=buf) is buf, int(buf[2, 1])
        (True, 5)
    """
    from . import transpose

    strided = array.ndim == 2 and array.size >= SMALL and not array.flags.c_contiguous
    if out is None:
        if array.flags.c_contiguous:
            return array
        if strided:
            return transpose.transposed(array, alongside=alongside)
        out = aligned_empty(array.shape, array.dtype)
    if strided:
        transpose.copy(array, out)  # the fastest kernel in the process
    else:
        transpose.flat_copy(array, out)  # on all cores when large and contiguous
    return out


def _reorder_blocks(array: np.ndarray, axis: int, order: tuple[int, ...]) -> np.ndarray:
    blocks = np.split(array, len(order), axis=axis)
    return np.concatenate([blocks[i] for i in order], axis=axis)


def _expand_index(index: Any, ndim: int) -> list[Any] | None:
    items = list(index) if isinstance(index, tuple) else [index]
    if any(not _is_basic(i) for i in items) or sum(i is Ellipsis for i in items) > 1:
        return None
    if Ellipsis in items:
        at = items.index(Ellipsis)
        fill = ndim - (len(items) - 1)
        items[at : at + 1] = [slice(None)] * fill
    if len(items) > ndim:
        return None
    return items + [slice(None)] * (ndim - len(items))


def _is_basic(item: Any) -> bool:
    # A negative step is left to numpy (a whole-value write): torch refuses it in place.
    if isinstance(item, slice):
        return item.step is None or (isinstance(item.step, (int, np.integer)) and bool(item.step > 0))
    return item is Ellipsis or isinstance(item, (int, np.integer)) and not isinstance(item, bool)
