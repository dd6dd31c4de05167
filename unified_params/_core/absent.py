"""Leaves a paired layer has on one side of a port only.

One framework's layer may keep a leaf the other's does not: torchvision's
convolutions before a BatchNorm have no bias, keras.applications' have one; a
Keras ``BatchNormalization(scale=False)`` has no weight (gamma). Such a leaf
has a neutral value (`unified_params._core.layouts.NEUTRAL`), with which the
layer computes what it computes without it: a bias of zeros, a scale of ones.

- A destination leaf the source lacks is **filled** with its neutral value:
  the destination then computes what the source does, in training as in
  inference.
- A source leaf the destination lacks is **left out** only when it holds
  exactly its neutral value; any other value is refused before anything is
  written, with what it holds: no destination could compute the source's
  outputs without it.

A bias the destination lacks may hold other values when a BatchNorm follows
its layer (keras.applications' ResNet50 convolutions, torchvision's): with
``fold_biases=True`` it is **folded** into that BatchNorm's running mean
(``mean - bias``), exact in inference and in training (a batch's mean
absorbs the bias, and the running mean then moves as the source's, less the
bias). It holds only when the layer's outputs go to that BatchNorm alone:
where a framework records its graph (Keras) that is checked, elsewhere it is
the user's word, and the report says so.

Every leaf filled, left out or folded is listed in the report's ``absent``.

Examples:
    >>> neutral("conv2d", "bias"), neutral("batchnorm", "weight"), neutral("conv2d", "weight")
    (0.0, 1.0, None)
    >>> neutral("lstm", "bias_hh_l0_reverse")
    0.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import PortError, received
from .layouts import NEUTRAL, base_name
from .view import native_at

if TYPE_CHECKING:
    from .port import Layer
    from .view import Module


def neutral(kind: str, leaf: str) -> float | None:
    """The value with which a leaf changes nothing, if the kind may lack it."""
    return NEUTRAL.get(kind, {}).get(base_name(leaf))


def reconcilable(x: Layer, y: Layer) -> bool:
    """Whether two layers of one kind differ only by leaves one side lacks
    and the other may fill or leave out: the leaves both have come in the
    same order with the same canonical shapes."""
    if x.kind != y.kind:
        return False
    mine, theirs = dict(x.leaves), dict(y.leaves)
    only = [n for n in mine if n not in theirs] + [n for n in theirs if n not in mine]
    if not only or any(neutral(x.kind, n) is None for n in only):
        return False
    return [(n, s) for n, s in x.leaves if n in theirs] == [(n, s) for n, s in y.leaves if n in mine]


def _values(value: float) -> str:
    return {0.0: "zeros", 1.0: "ones"}.get(value, f"{value:g}s")


def fill(shape: tuple[int, ...], dtype: np.dtype, value: float):
    """A reader of a leaf's neutral value."""
    return lambda: np.full(shape, value, dtype)


def filled_line(x: Layer, y: Layer, leaf: str, value: float, backend: str) -> str:
    """The report's line for a destination leaf filled."""
    return (
        f"{y.name or '<root>'}: {leaf} set to {_values(value)} ({backend}'s {x.name or '<root>'!r} has none)"
    )


def left_out(x: Layer, y: Layer, leaf: str, value: np.ndarray, backend: str) -> str | None:
    """The report's line for a source leaf that holds its neutral value, left
    out; ``None`` when it holds another value (see `refuse`)."""
    expected = neutral(x.kind, leaf)
    if expected is None or not bool(np.all(np.asarray(value) == expected)):
        return None
    where = f"{backend}'s {y.name or '<root>'!r}"
    return f"{x.name or '<root>'}: {leaf} is all {_values(expected)}, left out ({where} has none)"


#: Layer kinds whose bias may fold into a BatchNorm after them.
FOLDABLE = frozenset({"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                      "conv_transpose3d"})  # fmt: skip


def fold_target(
    src: Module,
    dst: Module,
    order: tuple[list[Layer], list[Layer]],
    partner: dict[str, Layer],
    x: Layer,
    y: Layer,
) -> tuple[Layer, str] | str:
    """Where the source layer ``x``'s bias folds: the destination BatchNorm
    ``y`` feeds, paired with the BatchNorm ``x`` feeds, and how that is known;
    or why it cannot fold.

    What a layer feeds is read from its model's graph where the framework
    records one (all of its outputs must go to that one BatchNorm), else
    taken on the user's word to be the next parameterised layer (``order``
    holds both models' layers in order; ``partner`` maps each source layer's
    name to its destination layer).
    """
    if x.kind not in FOLDABLE:
        return f"only the bias of a {', '.join(sorted(FOLDABLE))} layer folds"
    found, said = [], []
    for side, model, layer, layers in (("source", src, x, order[0]), ("destination", dst, y, order[1])):
        fed = _fed(model, layer, layers)
        if isinstance(fed, str):
            return f"the {side}'s graph ({model.backend}) sends its outputs {fed}"
        found.append(fed[0])
        said.append(
            f"the {side}'s graph shows it"
            if fed[1]
            else f"the {side} ({model.backend}) records no graph: assumed"
        )
    x2, y2 = found
    if x2 is None or y2 is None or partner.get(x2.name) is not y2 or y2.kind != "batchnorm":
        return "no BatchNorm follows it on both sides"
    if dict(y2.leaves).get("running_mean") != dict(x.leaves)["bias"]:
        return f"the BatchNorm after it, {y2.name!r}, keeps no running mean of as many channels"
    return y2, "; ".join(said)


def _fed(model: Module, layer: Layer, layers: list[Layer]) -> tuple[Layer | None, bool] | str:
    """The parameterised layer ``layer`` feeds, and whether the graph says so;
    where the graph sends its outputs elsewhere too, in words."""
    consumers = model.adapter.consumers(model.native, native_at(model, layer.path))
    if consumers is None:  # no graph: the next layer
        k = [one.name for one in layers].index(layer.name)
        return (layers[k + 1] if k + 1 < len(layers) else None), False
    by_id = {id(native_at(model, one.path)): one for one in layers}
    if len(consumers) != 1:
        return f"to {len(consumers)} places, not to one BatchNorm alone"
    if id(consumers[0]) not in by_id:
        return f"to a {type(consumers[0]).__name__} first, not straight to a BatchNorm"
    return by_id[id(consumers[0])], True


def folded_line(x: Layer, y: Layer, y2: Layer, how: str, backend: str) -> str:
    """The report's line for a source bias folded into the destination's BatchNorm."""
    return (
        f"{x.name or '<root>'}: bias folded into the running_mean of {backend}'s {y2.name!r} "
        f"({y.name or '<root>'!r} has no bias and feeds that BatchNorm alone: {how})"
    )


def refuse(
    found: list[tuple[Layer, Layer, str, np.ndarray, str]], src: str, dst: str, fold_asked: bool
) -> PortError:
    """The error for source leaves of other values than neutral ones the
    destination has no room for: ``(source layer, destination layer, leaf,
    value, why no fold)``."""
    lines = []
    for x, y, leaf, value, why in found[:3]:
        expected = neutral(x.kind, leaf)
        assert expected is not None  # pairing admits no other leaf on one side only
        array = np.asarray(value, dtype=np.float64)
        off = float(np.max(np.abs(array - expected))) if array.size else 0.0
        lines.append(
            f"{src}'s {x.name or '<root>'!r} {leaf} is not all {_values(expected)} "
            f"(off by up to {off:.3g}) and {dst}'s {y.name or '<root>'!r} ({y.type_name}) has no {leaf}"
            + (f" (no fold: {why})" if fold_asked and why else "")
        )
    more = f" ({len(found) - 3} more)" if len(found) > 3 else ""
    if not fold_asked and any(x.kind in FOLDABLE and leaf == "bias" for x, _, leaf, _, _ in found):
        more += (
            ". A bias whose outputs go to a BatchNorm alone folds into its running mean: pass "
            "fold_biases=True"
        )
    return PortError(
        f"The destination has no room for values the source's outputs depend on: {'; '.join(lines)}{more}. "
        f"Expected destination layers with these leaves (a bias: built with one), or a source whose "
        "values are neutral (zero biases, unit scales). Nothing was written. "
        + received(source=[x.name for x, *_ in found], leaves=[leaf for _, _, leaf, *_ in found])
    )
