"""Values handed over in another framework's layout, or maybe: which one.

A value given for a canonical leaf is taken as canonical when it is a numpy
array, a list, a torch tensor (torch's layout is the canonical one, but for a
model zoo's layer that keeps a leaf otherwise: transformers' ``Conv1D``,
`view.held_reading`), a bare ``jax.Array`` or a Param. A tensor or variable of a framework that keeps the
leaf in a layout of its own (a paddle Linear's weight is ``(in, out)``, a
Keras Conv2D's kernel ``(k0, k1, in, out)``, a Keras LSTM's gates in another
order) may be that framework's own state, such as a paddle model's
``state_dict()``; so may a tensor of a safetensors file whose metadata names
a writer other than torch or this library (PaddleNLP writes ``"np"`` files of
paddle's layouts under torch's names), and a torch file's tensor of a zoo
layer's leaf. Where the value's shape fits both
readings (a square Linear, every gate reorder), its shape cannot tell them
apart and a guess transposes the weights without a word; so such a value is
refused until the caller says its layout. The backends a value's type
belongs to are the registry's (`Backend.value_modules`); their layouts are
their adapters' tables (`Backend.leaves`), read without importing a framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from . import layouts, leaf_norms
from .errors import ShapeError


class Reading(NamedTuple):
    """Frameworks' own layout of a leaf, which reads a value's shape as the
    expected canonical shape too.

    Attributes:
        backends: The frameworks that lay the leaf out so, which the value
            may come from.
        native: How they lay it out (``"(in, out)"``).
        canonical: How the canonical layout does (``"(out, in)"``).
        writer: The writer a file names, for a file's tensor (``""``: it
            names none); else ``None`` (a framework's tensor).
    """

    backends: tuple[str, ...]
    native: str
    canonical: str
    writer: str | None = None

    def given(self, many: bool = False) -> str:
        """What the value is (or ``many`` values are), in words: ``"a paddle tensor"``.

        Examples:
            >>> Reading(("paddle",), "(in, out)", "(out, in)").given(many=True)
            'paddle tensors'
        """
        what = "tensors" if many else "a tensor"
        if self.writer == "":
            return f"{what} of a file that names no writer"
        if self.writer is not None:
            return f"{what} of a file whose writer is {self.writer!r}"
        return f"{_or(self.backends)} tensors" if many else f"a {_or(self.backends)} tensor"


def owners(value: Any) -> tuple[str, ...]:
    """The backends whose own layout ``value`` may be in, from its type.

    Examples:
        >>> import numpy as np, paddle
        >>> owners(paddle.zeros([2])), owners(np.zeros(2))
        (('paddle',), ())
    """
    from ..backends import registry

    return registry.value_backends(value)


def file_owners(metadata: Mapping[str, str], ours: str) -> tuple[str, ...]:
    """The backends whose layouts the tensors of a file may be in, from what
    its metadata names: none for a file this library wrote (its ``writer``,
    or an earlier version's ``format``, is ``ours``); the framework that
    writes its ``format`` (torch's ``"pt"``, as Hugging Face and timm write
    it, and a file that names none: `registry.writers_of`), whose files hold
    every layer kind canonically but may keep a zoo layer's leaf otherwise
    (`view.held_reading`); else every backend that declares layouts.

    Examples:
        >>> file_owners({"format": "pt", "writer": "unified-params"}, "unified-params")
        ()
        >>> file_owners({"format": "pt"}, "unified-params"), file_owners({}, "unified-params")
        (('torch',), ('torch',))
        >>> file_owners({"format": "np"}, "unified-params")
        ('keras', 'paddle', 'flax')
    """
    from ..backends import registry

    writer = metadata.get("format")
    if ours in (metadata.get("writer"), writer):  # files of earlier versions said it as their format
        return ()
    return registry.writers_of(writer) or registry.laid_out()


def reading(
    backends: tuple[str, ...],
    kind: str,
    leaf: str,
    shape: tuple[int, ...],
    writer: str | None = None,
    expected: tuple[int, ...] | None = None,
) -> Reading | None:
    """How ``backends`` keep a ``kind`` leaf named ``leaf`` where that is a
    layout other than the canonical one, yet reads a value of ``shape`` as
    the ``expected`` canonical shape (by default ``shape`` itself: a value
    whose layout nothing tells); the first such layout, with every backend
    that shares it. ``None``: none do.

    Examples:
        >>> reading(("paddle",), "linear", "weight", (4, 4))
        Reading(backends=('paddle',), native='(in, out)', canonical='(out, in)', writer=None)
        >>> reading(("paddle",), "linear", "weight", (3, 4)) is None  # (in, out) would be (4, 3)
        True
        >>> reading(("paddle",), "linear", "weight", (4, 3), expected=(3, 4)).native  # paddle's own
        '(in, out)'
        >>> reading(("paddle",), "conv2d", "weight", (8, 8, 3, 3)) is None  # paddle's is canonical
        True
    """
    want = shape if expected is None else expected
    found: list[tuple[str, tuple[str, str]]] = [
        (backend, described)
        for backend in backends
        if (described := _other(backend, kind, leaf, shape, want))
    ]
    if not found:
        return None
    first = found[0][1]
    return Reading(tuple(b for b, d in found if d == first), *first, writer)


def _other(
    backend: str, kind: str, leaf: str, shape: tuple[int, ...], expected: tuple[int, ...]
) -> tuple[str, str] | None:
    """How ``backend`` lays the leaf out and how the canonical layout does, in
    words, where its layout differs yet reads ``shape`` as ``expected``."""
    from ..backends import registry

    name = leaf_norms.laid_out_as(layouts.base_name(leaf))
    for native in (registry.declared_leaves(backend).get(kind) or {}).values():
        axes = native.axes_for(len(shape)) if layouts.base_name(native.canonical) == name else None
        if axes is None:
            continue
        try:
            layout = layouts.plan(kind, native, len(shape))
            fits = layout.groups is None and layout.canonical_shape(shape) == expected
        except (ShapeError, ValueError):
            continue
        if fits and not layout.is_identity:
            return described(native, axes, layout, kind)
    return None


def described(
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


class LayoutNote(str):
    """A load's note that a mismatched value has the shape a framework keeps
    the leaf in (`shape_note`): the refusal says it beside the mismatch."""


def shape_note(key: str, found: Reading) -> LayoutNote:
    """What a load notes of a value whose shape is a framework's own layout
    of the expected canonical shape.

    Examples:
        >>> print(shape_note("0.weight", Reading(("paddle",), "(in, out)", "(out, in)")))
        '0.weight' is a paddle tensor in paddle's own layout, (in, out), of the canonical (out, in)
    """
    return LayoutNote(
        f"{key!r} is {found.given()} in {_or(found.backends)}'s own layout, {found.native}, of the "
        f"canonical {found.canonical}"
    )


def refusal_part(found: list[tuple[str, Reading]], target: str) -> str:
    """What a load says of values whose layout nothing tells (`reading`),
    the keys grouped by what is said of them."""
    groups: dict[Reading, list[str]] = {}
    for key, r in found:
        groups.setdefault(r, []).append(key)
    shown = "; ".join(
        f"{_keys(keys)} ({r.given(len(keys) > 1)}: {_and(r.backends)} "
        f"keep{'s' if len(r.backends) == 1 else ''} {'them' if len(keys) > 1 else 'it'} {r.native}, the "
        f"canonical layout is {r.canonical}, and the shape fits both)"
        for r, keys in groups.items()
    )
    backends = {b for _, r in found for b in r.backends}
    they, them, comes = ("they are", "them", "they come") if len(found) > 1 else ("it is", "it", "it comes")
    native = f"; layout='native' if {they} in {target}'s own, as this model keeps {them}"
    return (
        f"in a layout nothing tells: {shown}. Pass layout='canonical' if {they} in the canonical "
        f"(PyTorch) layout already{native if target in backends else ''}; else load {them} into a model "
        f"of the framework {comes} from and port it (up.port)"
    )


def _keys(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _or(names: tuple[str, ...]) -> str:
    return " or ".join(names)


def _and(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _roles(axes: tuple[str, ...]) -> str:
    return f"({', '.join(axes)})"
