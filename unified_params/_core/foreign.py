"""Values handed over as another framework's tensors: the layout they may be in.

A value given for a canonical leaf is taken as canonical when it is a numpy
array, a list, a torch tensor (torch's layout is the canonical one), a bare
``jax.Array`` or a Param. A tensor or variable of a framework that keeps the
leaf in a layout of its own (a paddle Linear's weight is ``(in, out)``, a
Keras Conv2D's kernel ``(k0, k1, in, out)``, a Keras LSTM's gates in another
order) may be that framework's own state, such as a paddle model's
``state_dict()``. Where the value's shape fits both readings (a square
Linear, every gate reorder), its shape cannot tell them apart and a guess
transposes the weights without a word; so such a value is refused until the
caller says its layout. The backends a value's type belongs to are the
registry's (`Backend.value_modules`); their layouts are their adapters' tables.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import layouts
from .errors import ShapeError


class Reading(NamedTuple):
    """A framework's own layout of a leaf, which reads a value's shape as the
    expected canonical shape too.

    Attributes:
        backend: The framework whose tensor the value is.
        native: How it lays the leaf out (``"(in, out)"``).
        canonical: How the canonical layout does (``"(out, in)"``).
    """

    backend: str
    native: str
    canonical: str


def owners(value: Any) -> tuple[str, ...]:
    """The backends whose own layout ``value`` may be in, from its type.

    Examples:
        >>> import numpy as np, paddle
        >>> owners(paddle.zeros([2])), owners(np.zeros(2))
        (('paddle',), ())
    """
    from ..backends import registry

    return registry.value_backends(value)


def reading(backends: tuple[str, ...], kind: str, leaf: str, shape: tuple[int, ...]) -> Reading | None:
    """The first of ``backends`` that keeps a ``kind`` leaf named ``leaf`` in
    a layout other than the canonical one, yet reads a value of the
    canonical ``shape`` as that same shape: a value of that framework's
    whose layout nothing tells. ``None``: no such backend.

    Examples:
        >>> import paddle
        >>> reading(("paddle",), "linear", "weight", (4, 4))
        Reading(backend='paddle', native='(in, out)', canonical='(out, in)')
        >>> reading(("paddle",), "linear", "weight", (3, 4)) is None  # (in, out) would be (4, 3)
        True
        >>> reading(("paddle",), "conv2d", "weight", (8, 8, 3, 3)) is None  # paddle's is canonical
        True
    """
    from ..backends import registry

    name = layouts.base_name(leaf)
    for backend in backends:
        declared = registry.get_adapter(backend).LEAVES.get(kind) or {}
        for native in declared.values():
            if layouts.base_name(native.canonical) != name:
                continue
            axes = native.axes_for(len(shape))
            if axes is None:
                continue
            try:
                layout = layouts.plan(kind, native, len(shape))
                fits = layout.groups is None and layout.canonical_shape(shape) == shape
            except (ShapeError, ValueError):
                continue
            if fits and not layout.is_identity:
                return Reading(backend, *_described(native, axes, layout, kind))
    return None


def _described(
    native: layouts.Leaf, axes: tuple[str, ...], layout: layouts.Layout, kind: str
) -> tuple[str, str]:
    """How a framework and the canonical layout lay a leaf out, in words."""
    mine, canonical = _roles(axes), _roles(tuple(axes[i] for i in layout.perm))
    if layout.gate_perm is not None:
        mine += f" with its gates in the order {native.gates!r}"
        canonical += f" with its gates in the order {layouts.CANONICAL_GATES[kind]!r}"
    if layout.flip is not None:
        mine += ", its kernel mirrored"
    return mine, canonical


def refusal_part(found: list[tuple[str, Reading]], target: str) -> str:
    """What a load says of values whose layout nothing tells (`reading`)."""
    shown = ", ".join(
        f"{key!r} (a {r.backend} tensor: {r.backend} keeps it {r.native}, the canonical layout is "
        f"{r.canonical}, and the shape fits both)"
        for key, r in found[:5]
    )
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    backends = sorted({r.backend for _, r in found})
    native = f"; for a {target} model's own state_dict(), pass layout='native'" if target in backends else ""
    return (
        f"in a layout nothing tells {shown}{more}: they may be {' or '.join(backends)}'s own state. "
        "Pass layout='canonical' if they are in the canonical (PyTorch) layout already"
        f"{native}; to move a {' or '.join(backends)} model's weights, load them into that model and "
        "port them (up.port), or save it with up.save and load the file"
    )


def _roles(axes: tuple[str, ...]) -> str:
    return f"({', '.join(axes)})"
