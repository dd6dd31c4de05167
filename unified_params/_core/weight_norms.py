"""Weight norms: a leaf a layer computes on each call from a magnitude and a direction.

A weight norm (Salimans and Kingma, 2016) computes a layer's weight as
``g * v / ||v||``, the norm taken over every axis but one (or over all of
them). Torch (``nn.utils.weight_norm``, ``nn.utils.parametrizations.weight_norm``)
and paddle (``nn.utils.weight_norm``) keep ``g`` and ``v`` as variables of
the layer in place of the weight; an adapter reports each norm as a
`WeightNorm`. The canonical form is torch's, and holds whatever the axis:

- the direction ``weight_v`` is laid out as the weight is (a paddle
  Linear's ``(in, out)`` is transposed, as its weight would be);
- the magnitude ``weight_g`` has the weight's canonical shape with every
  axis but the norm's of size one (``(out, 1, 1)`` for a Conv1d normed over
  its outputs), and no axis for a norm over the whole weight. Paddle keeps
  it as a vector along the norm's axis (``(out,)``).

So two layers pair when their norms keep the same canonical axis, and a
norm over another axis (paddle's default, axis 0, is a Linear's inputs)
shows as another shape, never as the same values read otherwise.

Torch's newer form keeps ``g`` and ``v`` as ``original0`` and ``original1``
of ``parametrizations.weight``; a port pairs them under the older names
(`port_names`).

Examples:
    >>> from unified_params._core.layouts import Leaf, plan
    >>> norm = WeightNorm("weight", axis=1, magnitude="weight_g", direction="weight_v", kept_dims=False)
    >>> found = leaves(norm, "linear", Leaf("weight", ("in", "out")), 2)  # paddle's Linear, over outputs
    >>> plan("linear", found["weight_g"], 1).canonical_shape((8,))
    (8, 1)
    >>> plan("linear", found["weight_v"], 2).canonical_shape((4, 8))
    (8, 4)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from .layouts import CANONICAL_AXES, Leaf

T = TypeVar("T")


@dataclass(frozen=True)
class WeightNorm:
    """One weight norm of one layer, as its adapter reports it.

    Attributes:
        leaf: The native name of the leaf the norm computes (``"weight"``).
        axis: The native axis of that leaf the norm keeps (``0``: each output
            its own magnitude), non-negative; ``None``: the norm is over the
            whole leaf.
        magnitude: Where the layer keeps ``g``, a path within the layer
            (``"weight_g"``, ``"parametrizations.weight.original0"``).
        direction: Where it keeps ``v``.
        kept_dims: Whether ``g`` keeps the leaf's other axes with size one
            (torch), or is a vector along ``axis`` (paddle).

    Examples:
        >>> WeightNorm("weight", 0, "weight_g", "weight_v", kept_dims=True).axis
        0
    """

    leaf: str
    axis: int | None
    magnitude: str
    direction: str
    kept_dims: bool


def native_axis(dim: int | None, ndim: int) -> int | None:
    """The axis a framework's ``dim`` names, for a leaf of ``ndim`` axes:
    torch and paddle read ``None`` and ``-1`` alike as the whole leaf, and
    count other negative dims from the end.

    Examples:
        >>> native_axis(0, 3), native_axis(-1, 3), native_axis(None, 3), native_axis(-2, 3)
        (0, None, None, 1)
    """
    if dim is None or dim == -1:
        return None
    return dim % ndim


def leaves(norm: WeightNorm, kind: str, weight: Leaf | None, ndim: int) -> dict[str, Leaf]:
    """The `Leaf` of the norm's magnitude and direction, by native name, for
    a layer of ``kind`` whose computed leaf is declared as ``weight`` (``None``:
    canonical already) and has ``ndim`` axes. Empty where they are canonical
    already (torch's), or where the weight's layout merges axes (no norm
    axis to name).

    Examples:
        >>> norm = WeightNorm("weight", 0, "weight_g", "weight_v", kept_dims=False)
        >>> found = leaves(norm, "conv1d", None, 3)  # paddle's Conv1D: canonical weight
        >>> found["weight_g"].axes, found["weight_g"].canonical_axes
        (('out',), ('out', '1', '1'))
    """
    canonical = weight.canonical if weight is not None else norm.leaf
    declared = weight.canonical_axes if weight is not None else None
    found = declared or CANONICAL_AXES.get(kind, {}).get(canonical)
    mine = weight.axes_for(ndim) if weight is not None else None
    if mine is None:  # a canonical weight
        if norm.kept_dims:
            return {}  # torch's form: canonical already
        if found is None or len(found) != ndim:
            found = tuple(f"a{k}" for k in range(ndim))  # a kind of no declared roles: its axes in order
        mine = tuple(str(r) for r in found)
    roles = tuple(r for r in (found or mine) if isinstance(r, str) and r != "1")
    if len(roles) != len(found or mine) or sorted(roles) != sorted(mine):
        return {}  # a layout that merges axes: no one axis to name
    if norm.kept_dims:
        return {}  # kept dims in a layout of the framework's own: no framework keeps them so
    kept = () if norm.axis is None else (mine[norm.axis],)
    return {
        _last(norm.magnitude): Leaf(
            f"{canonical}_g",
            kept,
            canonical_axes=tuple(r if r in kept else "1" for r in roles if kept),
            per_layer=True,
        ),
        _last(norm.direction): Leaf(f"{canonical}_v", mine, canonical_axes=tuple(roles), per_layer=True),
    }


def port_names(norms: tuple[WeightNorm, ...]) -> dict[str, str]:
    """Per path within the layer of a norm's variables, the name a port pairs
    it by: torch's older names, ``weight_g`` and ``weight_v``, whichever form
    keeps them.

    Examples:
        >>> norm = WeightNorm("weight", 0, "parametrizations.weight.original0",
        ...                   "parametrizations.weight.original1", kept_dims=True)
        >>> port_names((norm,))["parametrizations.weight.original1"]
        'weight_v'
    """
    out = {}
    for norm in norms:
        out[norm.magnitude] = f"{norm.leaf}_g"
        out[norm.direction] = f"{norm.leaf}_v"
    return out


def holders(norms: tuple[WeightNorm, ...]) -> list[str]:
    """The paths within the layer of the modules that keep a norm's variables
    apart from it (torch's ``parametrizations.weight``).

    Examples:
        >>> holders((WeightNorm("weight", 0, "parametrizations.weight.original0",
        ...                     "parametrizations.weight.original1", kept_dims=True),))
        ['parametrizations.weight']
    """
    found = {path.rpartition(".")[0] for norm in norms for path in (norm.magnitude, norm.direction)}
    return sorted(found - {""})


def laid_out_as(name: str) -> str:
    """The canonical leaf whose layout a leaf named ``name`` has: a weight
    norm's direction ``weight_v``, its weight's; any other, its own.

    Examples:
        >>> laid_out_as("weight_v"), laid_out_as("bias")
        ('weight', 'bias')
    """
    return name[:-2] if name.endswith("_v") else name


def weight_of(params: Mapping[str, T], norms: tuple[WeightNorm, ...]) -> T | None:
    """A layer's ``weight`` among its ``params`` (keyed relative to it), or, where
    a weight norm computes it, the norm's direction, which is laid out as the
    weight is: what a rule that reads the weight's shape reads.

    Examples:
        >>> norm = WeightNorm("weight", 0, "weight_g", "weight_v", kept_dims=True)
        >>> weight_of({"bias": "b", "weight_g": "g", "weight_v": "v"}, (norm,))
        'v'
    """
    found = params.get("weight")
    if found is None:
        found = next((params.get(n.direction) for n in norms if n.leaf == "weight"), None)
    return found


def _last(path: str) -> str:
    return path.rpartition(".")[2]
