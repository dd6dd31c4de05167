"""Weight norms and spectral norms: a leaf a layer computes on each call from
variables it keeps in its place.

A weight norm (Salimans and Kingma, 2016) computes a layer's weight as
``g * v / ||v||``, the norm taken over every axis but one (or over all of
them); a spectral norm (Miyato et al., 2018) as ``w / sigma``, ``sigma``
estimated as ``u . (W v)`` of the weight's matrix ``W`` (its norm's axis
first, the others after it in order, flattened), ``u`` and ``v`` refined on
each call in training. Torch (``nn.utils.weight_norm``,
``nn.utils.spectral_norm`` and their ``parametrizations`` forms) and paddle
(``nn.utils.weight_norm``, ``nn.utils.spectral_norm``) keep these variables
in the layer in place of the weight; an adapter reports each norm as a
`LeafNorm`. The canonical form is torch's:

- a weight norm's direction ``weight_v`` and a spectral norm's
  ``weight_orig`` are laid out as the weight is (a paddle Linear's
  ``(in, out)`` is transposed, as its weight would be);
- a weight norm's magnitude ``weight_g`` has the weight's canonical shape
  with every axis but the norm's of size one (``(out, 1, 1)`` for a Conv1d
  normed over its outputs), and no axis for a norm over the whole weight;
  paddle keeps it as a vector along the norm's axis (``(out,)``);
- a spectral norm's variables keep the framework's own layout (a paddle
  Linear's ``weight_orig`` is ``(in, out)``): its ``weight_u`` and
  ``weight_v`` are vectors of the axis it keeps and of the others, the same
  shapes whichever axis that is in a square layer, so a file or a state,
  which does not say the axis, could be read wrongly. A port, which reads
  the axis on both sides, moves them between frameworks (`SpectralForm`).

Two layers pair when their norms are of one make and keep the same axis of
the canonical weight (`key`): a weight norm over another axis shows another
magnitude shape; a spectral norm's vectors may not, so its axis is compared
itself.

Torch's newer forms keep the variables under ``parametrizations.weight``
(``original0`` and ``original1``; ``original``, ``0._u`` and ``0._v``); a
port pairs them under the older names (`port_names`).

Examples:
    >>> from unified_params._core.layouts import Leaf, plan
    >>> norm = LeafNorm("weight", "weight", 1, (("g", "weight_g"), ("v", "weight_v")), kept_dims=False)
    >>> found = leaves(norm, "linear", Leaf("weight", ("in", "out")), 2)  # paddle's Linear, over outputs
    >>> plan("linear", found["weight_g"], 1).canonical_shape((8,))
    (8, 1)
    >>> plan("linear", found["weight_v"], 2).canonical_shape((4, 8))
    (8, 4)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .layouts import CANONICAL_AXES, Layout, Leaf, plan

T = TypeVar("T")

#: The norm's makes, and per make the variables it keeps, by role: the name
#: each goes by in torch's older form is ``<leaf>_<role>``.
ROLES: Mapping[str, tuple[str, ...]] = {"weight": ("g", "v"), "spectral": ("orig", "u", "v")}
#: Per make, the role whose variable is laid out as the leaf the norm computes.
SHAPED_AS_LEAF: Mapping[str, str] = {"weight": "v", "spectral": "orig"}


@dataclass(frozen=True)
class LeafNorm:
    """One norm by which a layer computes one of its leaves, as its adapter reports it.

    Attributes:
        make: ``"weight"`` (a weight norm) or ``"spectral"`` (a spectral norm).
        leaf: The native name of the leaf the norm computes (``"weight"``).
        axis: The native axis of that leaf the norm keeps (a weight norm: each
            output its own magnitude; a spectral norm: the axis put first in
            its matrix), non-negative; ``None``: a weight norm over the whole leaf.
        parts: Per role (`ROLES`), where the layer keeps that variable, a path
            within the layer (``"weight_g"``, ``"parametrizations.weight.original0"``).
        kept_dims: Whether a weight norm's ``g`` keeps the leaf's other axes
            with size one (torch), or is a vector along ``axis`` (paddle).
        power_iterations: A spectral norm's power iterations per call in
            training, where the framework says (a setting a port compares).

    Examples:
        >>> norm = LeafNorm("weight", "weight", 0, (("g", "weight_g"), ("v", "weight_v")))
        >>> norm.path("v"), norm.name("g")
        ('weight_v', 'weight_g')
    """

    make: str
    leaf: str
    axis: int | None
    parts: tuple[tuple[str, str], ...]
    kept_dims: bool = True
    power_iterations: int | None = None

    def path(self, role: str) -> str:
        """Where the layer keeps the variable of ``role``."""
        return dict(self.parts)[role]

    @property
    def shaped_as_leaf(self) -> str:
        """Where the layer keeps the variable laid out as the computed leaf
        (a weight norm's direction, a spectral norm's original)."""
        return self.path(SHAPED_AS_LEAF[self.make])

    def name(self, role: str) -> str:
        """The name the variable of ``role`` goes by: torch's older form's."""
        return f"{self.leaf}_{role}"


def of_hook(
    make: str, name: str, axis: int | None, kept_dims: bool = True, power_iterations: int | None = None
) -> LeafNorm:
    """A norm that keeps its variables in the layer, as ``<name>_<role>``
    (torch's older form, paddle's).

    Examples:
        >>> of_hook("spectral", "weight", 0).parts
        (('orig', 'weight_orig'), ('u', 'weight_u'), ('v', 'weight_v'))
    """
    parts = tuple((r, f"{name}_{r}") for r in ROLES[make])
    return LeafNorm(make, name, axis, parts, kept_dims, power_iterations)


def native_axis(dim: int | None, ndim: int, *, whole: bool) -> int | None:
    """The axis a framework's ``dim`` names, for a leaf of ``ndim`` axes; a
    weight norm (``whole``) reads ``None`` and ``-1`` alike as the whole leaf,
    as torch and paddle do. Other negative dims count from the end.

    Examples:
        >>> native_axis(0, 3, whole=True), native_axis(-1, 3, whole=True), native_axis(-2, 3, whole=True)
        (0, None, 1)
        >>> native_axis(-1, 3, whole=False)
        2
    """
    if dim is None or (whole and dim == -1):
        return None
    return dim % ndim


def leaves(norm: LeafNorm, kind: str, weight: Leaf | None, ndim: int) -> dict[str, Leaf]:
    """The `Leaf` of each of the norm's variables, by native name, for a layer
    of ``kind`` whose computed leaf is declared as ``weight`` (``None``:
    canonical already) and has ``ndim`` axes. Empty where they are canonical
    already (torch's), or where no canonical form is known (a layout that
    merges axes; a spectral norm's).

    Examples:
        >>> norm = LeafNorm("weight", "weight", 0, (("g", "weight_g"), ("v", "weight_v")), kept_dims=False)
        >>> found = leaves(norm, "conv1d", None, 3)  # paddle's Conv1D: canonical weight
        >>> found["weight_g"].axes, found["weight_g"].canonical_axes
        (('out',), ('out', '1', '1'))
    """
    axes = _roles(norm, kind, weight, ndim)
    if axes is None:
        return {}
    mine, roles = axes
    canonical = weight.canonical if weight is not None else norm.leaf
    if norm.make == "spectral":
        # Its u and v are vectors of the axis it keeps and of the others: in a
        # square layer the same shapes whichever axis, so a file or state, which
        # does not say the axis, cannot tell which; they keep the framework's own.
        return {}
    if norm.kept_dims:
        return {}  # torch's form: canonical already (no framework keeps dims otherwise)
    kept = () if norm.axis is None else (mine[norm.axis],)
    return {
        _last(norm.path("g")): Leaf(
            f"{canonical}_g",
            kept,
            canonical_axes=tuple(r if r in kept else "1" for r in roles if kept),
            per_layer=True,
        ),
        _last(norm.path("v")): Leaf(f"{canonical}_v", mine, canonical_axes=roles, per_layer=True),
    }


def key(norm: LeafNorm, kind: str, weight: Leaf | None, ndim: int) -> tuple[str, str, int | None]:
    """What two paired layers' norms must share: the make, the leaf's
    canonical name and the canonical axis the norm keeps.

    Examples:
        >>> from unified_params._core.layouts import Leaf
        >>> key(of_hook("spectral", "weight", 1), "linear", Leaf("weight", ("in", "out")), 2)
        ('spectral', 'weight', 0)
    """
    canonical = weight.canonical if weight is not None else norm.leaf
    axes = _roles(norm, kind, weight, ndim)
    if axes is None or norm.axis is None:
        return norm.make, canonical, norm.axis
    mine, roles = axes
    return norm.make, canonical, roles.index(mine[norm.axis])


def _roles(
    norm: LeafNorm, kind: str, weight: Leaf | None, ndim: int
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The computed leaf's native axis roles and canonical ones, or ``None``
    where its layout merges axes (no one axis to name)."""
    canonical = weight.canonical if weight is not None else norm.leaf
    declared = weight.canonical_axes if weight is not None else None
    found = declared or CANONICAL_AXES.get(kind, {}).get(canonical)
    mine = weight.axes_for(ndim) if weight is not None else None
    if mine is None:  # a canonical weight
        if found is None or len(found) != ndim:
            found = tuple(f"a{k}" for k in range(ndim))  # a kind of no declared roles: its axes in order
        mine = tuple(str(r) for r in found)
    roles = tuple(r for r in (found or mine) if isinstance(r, str) and r != "1")
    if len(roles) != len(found or mine) or sorted(roles) != sorted(mine):
        return None
    return mine, roles


def port_names(norms: tuple[LeafNorm, ...]) -> dict[str, str]:
    """Per path within the layer of a norm's variables, the name a port pairs
    it by: torch's older names (``weight_g``, ``weight_orig``, ...), whichever
    form keeps them.

    Examples:
        >>> norm = LeafNorm("weight", "weight", 0, (("g", "parametrizations.weight.original0"),
        ...                                         ("v", "parametrizations.weight.original1")))
        >>> port_names((norm,))["parametrizations.weight.original1"]
        'weight_v'
    """
    return {path: norm.name(role) for norm in norms for role, path in norm.parts}


def holders(norms: tuple[LeafNorm, ...]) -> list[str]:
    """The paths within the layer of the modules that keep a norm's variables
    apart from it (torch's ``parametrizations.weight``).

    Examples:
        >>> holders((LeafNorm("spectral", "weight", 0, (("orig", "parametrizations.weight.original"),
        ...     ("u", "parametrizations.weight.0._u"), ("v", "parametrizations.weight.0._v"))),))
        ['parametrizations.weight', 'parametrizations.weight.0']
    """
    found = {path.rpartition(".")[0] for norm in norms for _, path in norm.parts}
    return sorted(found - {""})


def laid_out_as(name: str) -> str:
    """The canonical leaf whose layout a leaf named ``name`` has: a weight
    norm's direction ``weight_v`` and a spectral norm's ``weight_orig``, their
    weight's; any other, its own.

    Examples:
        >>> laid_out_as("weight_v"), laid_out_as("weight_orig"), laid_out_as("bias")
        ('weight', 'weight', 'bias')
    """
    for suffix in ("_v", "_orig"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def weight_of(params: Mapping[str, T], norms: tuple[LeafNorm, ...]) -> T | None:
    """A layer's ``weight`` among its ``params`` (keyed relative to it), or, where
    a norm computes it, the variable laid out as the weight (a weight norm's
    direction, a spectral norm's original): what a rule that reads the
    weight's shape reads.

    Examples:
        >>> norm = LeafNorm("weight", "weight", 0, (("g", "weight_g"), ("v", "weight_v")))
        >>> weight_of({"bias": "b", "weight_g": "g", "weight_v": "v"}, (norm,))
        'v'
    """
    found = params.get("weight")
    for norm in norms:
        if found is None and norm.leaf == "weight":
            found = params.get(norm.shaped_as_leaf)
    return found


def _last(path: str) -> str:
    return path.rpartition(".")[2]


@dataclass(frozen=True)
class SpectralForm:
    """How a port moves one layer's spectral norm variables between two
    frameworks, whose layers it reads the norm's axis of: in a form common to
    both, the original laid out as the canonical weight, ``u`` (a vector of
    the axis the norm keeps) as it is, and ``v`` (a vector of the weight's
    other axes, flattened in the order the framework lays them out) over
    those axes in canonical order. The norm's matrix, its axis first and the
    others flattened, is then the same on both sides, and so are ``u`` and
    ``v``, for two norms that keep one canonical axis (`key`).

    Attributes:
        norm: The layer's norm.
        layout: The conversion of its weight (and so of its original).
        native_shape: The original's native shape.

    Examples:
        >>> norm = of_hook("spectral", "weight", 1)  # paddle's Linear keeps its outputs: (in, out)
        >>> form = spectral_form(norm, "linear", Leaf("weight", ("in", "out")), (4, 3))
        >>> form.shape("weight_orig"), form.shape("weight_u"), form.shape("weight_v")
        ((3, 4), (3,), (4,))
        >>> form.to_common("weight_orig", np.arange(12.0).reshape(4, 3))[0].tolist()
        [0.0, 3.0, 6.0, 9.0]
    """

    norm: LeafNorm
    layout: Layout
    native_shape: tuple[int, ...]

    def role(self, name: str) -> str:
        """The role (`ROLES`) of the variable ``name``, a path within the layer."""
        return next(role for role, path in self.norm.parts if path == name)

    def reordered(self, name: str) -> bool:
        """Whether the common form moves the values of the variable ``name``
        (a transposed original, a ``v`` of other axes in another order)."""
        role = self.role(name)
        if role == "orig":
            return not self.layout.is_identity
        order = self._others()[1]
        return role == "v" and order != sorted(order)

    def _others(self) -> tuple[list[int], list[int]]:
        """The native axes but the norm's, in native order, and that order's
        positions sorted into canonical order."""
        axis = self.norm.axis
        others = [n for n in range(len(self.native_shape)) if n != axis]
        canonical = [self.layout.perm.index(n) for n in others]
        return others, sorted(range(len(others)), key=canonical.__getitem__)

    def shape(self, name: str) -> tuple[int, ...]:
        """The common shape of the variable ``name`` (a path within the layer)."""
        role = self.role(name)
        if role == "orig":
            return self.layout.canonical_shape(self.native_shape)
        if role == "u":
            assert self.norm.axis is not None  # `spectral_form` makes no form of a norm without one
            return (self.native_shape[self.norm.axis],)
        return (math.prod(self.native_shape[n] for n in self._others()[0]),)

    def to_common(self, name: str, value: np.ndarray) -> np.ndarray:
        """The native ``value`` of the variable ``name``, in the common form."""
        role = self.role(name)
        if role == "orig":
            return np.asarray(self.layout.to_canonical(value))
        return self._others_reordered(value, to_common=True) if role == "v" else value

    def to_native(self, name: str, value: np.ndarray) -> np.ndarray:
        """The common ``value`` of the variable ``name``, in this layer's own layout."""
        role = self.role(name)
        if role == "orig":
            return np.asarray(self.layout.to_native(value))
        return self._others_reordered(value, to_common=False) if role == "v" else value

    def _others_reordered(self, v: np.ndarray, *, to_common: bool) -> np.ndarray:
        """``v``, over the weight's other axes flattened, from native to
        canonical order of those axes (or back)."""
        others, order = self._others()
        if to_common:
            sizes, perm = [self.native_shape[n] for n in others], order
        else:
            sizes, perm = [self.native_shape[others[k]] for k in order], list(np.argsort(order))
        return np.transpose(np.reshape(v, sizes), perm).reshape(-1)


def spectral_form(
    norm: LeafNorm, kind: str, weight: Leaf | None, native_shape: tuple[int, ...]
) -> SpectralForm | None:
    """The `SpectralForm` of a layer of ``kind`` whose weight is declared as
    ``weight`` (``None``: canonical already) and whose original is
    ``native_shape``; ``None`` for a weight norm, and for a weight laid out
    otherwise than by moving its axes (axes merged, gates reordered, a kernel
    mirrored, a flattened map), where ``v``'s order would need more.

    Examples:
        >>> spectral_form(of_hook("spectral", "weight", 0), "conv2d", None, (8, 3, 3, 3)).layout.perm
        (0, 1, 2, 3)
        >>> spectral_form(of_hook("weight", "weight", 0), "linear", None, (3, 4)) is None
        True
    """
    if norm.make != "spectral" or norm.axis is None:
        return None
    layout = plan(kind, weight, len(native_shape))
    plain = layout.groups is None and layout.gate_perm is None and layout.flat is None and layout.flip is None
    return SpectralForm(norm, layout, tuple(native_shape)) if plain else None


@dataclass(frozen=True)
class StoredNorm:
    """A spectral norm that a wrapper applies, in training, to a leaf of the
    layer it wraps, keeping the normed leaf in that layer's place (Keras'
    ``SpectralNormalization``): at inference the layer computes with the leaf
    as it is, and the wrapper keeps only ``u``. A port pairs such a layer with
    one whose norm computes its leaf on each call (torch's, paddle's): out of
    it, the leaf is that norm's original and ``v`` is chosen so that ``u . (W
    v)`` is 1 (the computed leaf is the leaf); into it, the leaf is the weight
    the other computes, ``orig / sigma`` (`computed_leaf`).

    Attributes:
        child: The key of the wrapped layer in the wrapper (``"layer"``).
        leaf: The wrapped layer's leaf the norm normalizes, its native name (``"kernel"``).
        axis: The native axis of that leaf the norm keeps (Keras': the last).
        u: The wrapper's variable that keeps ``u``, its native name (``"vector_u"``).
        power_iterations: Its power iterations per call in training.

    Examples:
        >>> StoredNorm("layer", "kernel", 1, "vector_u").child
        'layer'
    """

    child: str
    leaf: str
    axis: int
    u: str
    power_iterations: int | None = None


def _matrix(weight: np.ndarray, axis: int) -> np.ndarray:
    """A spectral norm's matrix of a canonical ``weight``: the kept ``axis``
    first, the others flattened in canonical order (`SpectralForm`'s common form)."""
    weight = np.asarray(weight, dtype=np.float64)
    return np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)


def computed_leaf(orig: np.ndarray, u: np.ndarray, v: np.ndarray, axis: int) -> np.ndarray:
    """The canonical leaf a spectral norm computes at inference from its
    variables in the common form: ``orig / sigma``, ``sigma = u . (W v)``.

    Examples:
        >>> w = np.array([[3.0, 0.0], [0.0, 1.0]])
        >>> computed_leaf(w, np.array([1.0, 0.0]), np.array([1.0, 0.0]), 0).tolist()
        [[1.0, 0.0], [0.0, 0.3333333333333333]]
    """
    sigma = np.asarray(u, dtype=np.float64).reshape(-1) @ _matrix(orig, axis) @ np.reshape(v, -1)
    return (np.asarray(orig, dtype=np.float64) / sigma).astype(np.asarray(orig).dtype)


def unit_v(leaf: np.ndarray, u: np.ndarray, axis: int) -> np.ndarray:
    """A ``v`` (common form) for which a spectral norm with original ``leaf``
    and this ``u`` computes ``leaf`` itself: ``W^T u / |W^T u|^2``, so that
    ``u . (W v)`` is 1. In training the norm refines ``v`` from ``u`` before
    it uses it, so only inference reads this one.

    Raises:
        ValueError: ``W^T u`` is zero (a leaf of zeros): no ``v`` gives 1.

    Examples:
        >>> w, u = np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([1.0, 0.0])
        >>> v = unit_v(w, u, 0)
        >>> v.tolist(), float(u @ w @ v)
        ([0.5, 0.0], 1.0)
    """
    across = _matrix(leaf, axis).T @ np.asarray(u, dtype=np.float64).reshape(-1)
    size = float(across @ across)
    if size == 0.0:
        raise ValueError("W^T u is zero: no v makes u . (W v) equal 1")
    return (across / size).astype(np.asarray(leaf).dtype)
