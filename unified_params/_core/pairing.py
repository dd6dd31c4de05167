"""How ``up.port`` pairs the parameterised layers of two models.

Three ways, from the least to the most said by the user:

- **In order**: the n-th parameterised layer of the source goes to the n-th of
  the destination (names may differ).
- **By path**: ``mapping={"fc": "classifier.1"}`` pins pairs; the other
  layers pair in order. A path may name layers as the framework does where
  it keys them by position (Keras' layer names: ``"conv1_conv"`` for the
  functional ResNet50's ``"2"``), in ``mapping`` and in rules alike.
- **By rules**: ``mapping=[(pattern, replacement), ...]``, ordered regular
  expressions over source layer paths. The first rule whose pattern matches
  a whole source path gives its destination path (``\\1`` or ``\\g<name>``
  for the groups); a replacement ``None`` leaves that source layer out (an
  auxiliary head the destination lacks). Every destination layer must be
  reached, every source layer matched: what is not is reported on both sides
  in one error.

A recurrent layer that holds several layers or both directions (torch's and
paddle's ``num_layers``, ``bidirectional``) is paired part by part
(`parts`: ``"lstm[l0]"``, ``"lstm[l0_reverse]"``, ...), as frameworks of one
module per layer and direction (Keras, Flax NNX) keep them.

``leaves`` renames the leaves of a source layer of a kind the library does
not know before pairs are compared (such a layer keeps its framework's names:
``[("gamma", "scale")]``; a known kind's are canonical on both sides). A pair
must then have the same kind and the same leaves with the same canonical
shapes, but for leaves one side may lack (a bias, a normalisation's scale:
`unified_params._core.absent`) and leaves of a kind the library does not know
shaped apart by axes of size one (`reshaped`); a pair that differs otherwise
is refused with what differs (a shape, a leaf of no neutral value).

How rules rename a path is `unified_params._core.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from . import low_rank
from .absent import reconcilable
from .errors import PortError, received
from .layouts import RECURRENT, UNKNOWN_KIND, base_name, recurrent_part, same_function
from .rules import Compiled, LayerMapping, Rule, compile_rules, rename

if TYPE_CHECKING:
    from .port import Layer

#: Kinds of convolution that compute what a Linear does over the channels at
#: every position where their kernel is of ones (`reshaped`; `port` checks the
#: rest of what makes one pointwise: stride, padding, groups).
CONVOLUTIONS = ("conv1d", "conv2d", "conv3d")


def pair(
    a: list[Layer],
    b: list[Layer],
    mapping: LayerMapping | None,
    leaves: Sequence[Rule] | Mapping[str, str] | None,
    skip: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> list[tuple[Layer, Layer]]:
    """Pairs of source and destination layers; see the module's doc. The
    source's layers ``skip`` names and the destination's ``keep`` names
    (`named_layers`) pair with none.

    Raises:
        PortError: A path or rule names no layer, layers stay unmatched, or a
            pair differs in kind, leaves or shapes.
    """
    skipped = {x.name for x in named_layers(a, skip, "skip", "source")}
    held = {y.name for y in named_layers(b, keep, "keep", "destination")}
    a, b = [x for x in a if x.name not in skipped], [y for y in b if y.name not in held]
    if leaves:
        leaf_rules = compile_rules(list(leaves.items()) if isinstance(leaves, Mapping) else leaves, "leaves")
        # A kind the library knows names its leaves canonically on both sides already.
        a = [_renamed_leaves(x, leaf_rules) if x.kind == UNKNOWN_KIND else x for x in a]
    if not mapping and not all(_fits(x, y) for x, y in zip(a, b, strict=False)):
        moved = _paired_after_their_layers(a, b)
        if moved is not None:
            return moved
    if mapping is None or isinstance(mapping, Mapping):
        pairs = _by_paths(a, b, mapping or {})
    elif isinstance(mapping, (list, tuple)):
        pairs = _by_rules(a, b, compile_rules(mapping))
    else:
        raise PortError(
            "mapping must be a dict of layer paths or a list of (pattern, replacement) rules. "
            + received(mapping=mapping)
        )
    for k, (x, y) in enumerate(pairs):
        if not _fits(x, y):
            head = (
                f" If the destination's is a new head, pass skip=[{x.name!r}] and keep=[{y.name!r}] to port "
                "the rest."
                if (x, y) == (a[-1], b[-1]) and x.kind == y.kind and x.norms == y.norms
                else ""
            )
            raise PortError(
                f"Layer {k} does not match: source {x.describe()} vs destination {y.describe()}: "
                f"{_difference(x, y)}.{_computed_hint([x], [y])}{_factors_hint([x, y])}"
                f"{_moved_hint(a, b, x, y)}{head} Expected the "
                "same kind and canonical shapes (a mapping pins other pairs). "
                + received(source=x.name, destination=y.name)
            )
    return pairs


def named_layers(found: list[Layer], paths: Sequence[str], what: str, side: str) -> list[Layer]:
    """The layers of ``found`` that ``paths`` name (paths, or Keras' layer
    names as a mapping takes them): those a port skips in the source or
    keeps as they are in the destination (``what``: the argument's name).

    Examples:
        >>> from unified_params._core.port import Layer
        >>> norm = Layer("2", "other", "Normalization", [("mean", (3,))], [], alias="normalization")
        >>> [y.name for y in named_layers([norm], ["normalization"], "keep", "destination")]
        ['2']
        >>> try:
        ...     named_layers([norm], ["3"], "keep", "destination")
        ... except PortError as err:
        ...     print(str(err).split(". ")[1])
        Expected some of ['2', 'normalization']
    """
    if isinstance(paths, str):
        raise PortError(f"{what} must be a list of layer paths, not one string. " + received(**{what: paths}))
    by_path = _named(found)
    for path in paths:
        if path not in by_path:
            known = list(dict.fromkeys([*(x.name for x in found), *(x.alias for x in found if x.alias)]))
            raise PortError(
                f"{what} names {path!r}, which is no parameterised layer of the {side}. Expected some of "
                f"{_ends(known)}. " + received(**{what: list(paths)})
            )
    return list({by_path[path].name: by_path[path] for path in paths}.values())


def _paired_after_their_layers(a: list[Layer], b: list[Layer]) -> list[tuple[Layer, Layer]] | None:
    """The pairs in order once one side's modules of a kind the library does
    not know that hold layers have their own leaves listed after those layers
    (`own_leaves_after`), where that alone makes every pair fit; else ``None``."""
    for moved_a, moved_b in ((own_leaves_after(a), b), (a, own_leaves_after(b))):
        if moved_a is not None and moved_b is not None and len(moved_a) == len(moved_b):
            pairs = list(zip(moved_a, moved_b, strict=True))
            if all(_fits(x, y) for x, y in pairs):
                return pairs
    return None


def own_leaves_after(found: list[Layer]) -> list[Layer] | None:
    """``found`` with each layer of a kind the library does not know that holds
    layers listed after it moved after the last of them; ``None`` when none
    does. Torch lists a module's own leaves (a ConvNeXt block's scale) before
    its children; a framework that keeps them in a layer of their own (Keras'
    ``LayerScale``) lists it where its graph applies it, after them.

    Examples:
        >>> from unified_params._core.port import Layer
        >>> block = Layer("1", "other", "CNBlock", [("layer_scale", (8, 1, 1))], [])
        >>> conv = Layer("1.block.0", "conv2d", "Conv2d", [("weight", (8, 1, 7, 7))], [])
        >>> [x.path for x in own_leaves_after([block, conv])]
        ['1.block.0', '1']
    """
    out, moved = list(found), False
    for x in found:
        if x.kind != UNKNOWN_KIND or not x.path:
            continue
        start = last = out.index(x)
        while last + 1 < len(out) and out[last + 1].path.startswith(x.path + "."):
            last += 1
        if last > start:
            out.insert(last, out.pop(start))
            moved = True
    return out if moved else None


def after_their_layers(pairs: list[tuple[Layer, Layer]]) -> list[tuple[Layer, Layer]]:
    """The pairs whose source or destination layer was paired after the layers
    it holds (`own_leaves_after`): one a pair before it holds.

    Examples:
        >>> from unified_params._core.port import Layer
        >>> block = Layer("1", "other", "CNBlock", [("gamma", (8,))], [])
        >>> conv = Layer("1.block.0", "conv2d", "Conv2d", [("weight", (8, 1, 7, 7))], [])
        >>> scale = Layer("4", "other", "LayerScale", [("gamma", (8,))], [])
        >>> conv_k = Layer("3", "conv2d", "Conv2D", [("weight", (8, 1, 7, 7))], [])
        >>> [(x.path, y.path) for x, y in after_their_layers([(conv, conv_k), (block, scale)])]
        [('1', '4')]
    """
    found = []
    for k, (x, y) in enumerate(pairs):
        if x.kind != UNKNOWN_KIND:  # only such layers are moved (and both of a pair are of one kind)
            continue
        earlier = pairs[:k]
        if any(e.path.startswith(x.path + ".") for e, _ in earlier if x.path) or any(
            e.path.startswith(y.path + ".") for _, e in earlier if y.path
        ):
            found.append((x, y))
    return found


def _moved_hint(a: list[Layer], b: list[Layer], x: Layer, y: Layer) -> str:
    """Where the partner of a layer of a kind the library does not know may be,
    when the layers do not pair in order: the next such layer on the other side
    whose leaves hold as many values in each. A module that holds a leaf of its
    own besides its layers (torchvision's ConvNeXt block and its scale) lists it
    before them; a framework that keeps it in a layer of its own (Keras'
    ``LayerScale``) may list that after them."""
    for mine, others, at in ((x, b, y), (y, a, x)):
        if mine.kind != UNKNOWN_KIND or at not in others:
            continue
        start = others.index(at)
        found = next((o for o in others[start:] if o.kind == UNKNOWN_KIND and _same_sizes(mine, o)), None)
        if found is None:
            continue
        src, dst = (mine, found) if mine is x else (found, mine)
        names = {n: m for (n, _), (m, _) in zip(src.leaves, dst.leaves, strict=True) if n != m}
        steps = others.index(found) - start
        fix = (
            f"Pass leaves={names!r} to name their leaves alike: the port then pairs a module's own leaves "
            f"after its layers where that pairs every layer, or pass mapping={{{src.name!r}: {dst.name!r}, "
            "...} as well to pin such pairs."
            if names
            else f"Pass mapping={{{src.name!r}: {dst.name!r}, ...}} to pin such pairs."
        )
        return (
            f" The {'destination' if mine is x else 'source'}'s {found.name!r} ({found.type_name}) holds as "
            f"many values as {mine.name!r}, {steps} layer{'s' if steps != 1 else ''} on: a module's own "
            "leaves (a block's scale) come before its layers in torch's listing, and a layer that holds them "
            f"may come after those in another framework's. {fix}"
        )
    return ""


def _same_sizes(x: Layer, y: Layer) -> bool:
    """Whether two layers' leaves, in order, hold as many values each, axes of
    size one apart (their names may differ)."""
    return len(x.leaves) == len(y.leaves) and all(
        _sizes(p) == _sizes(q) for (_, p), (_, q) in zip(x.leaves, y.leaves, strict=True)
    )


def _named(found: list[Layer]) -> dict[str, Layer]:
    """Layers by path, and by the path in the framework's layer names."""
    return {**{x.alias: x for x in found if x.alias}, **{x.name: x for x in found}}


def _by_paths(a: list[Layer], b: list[Layer], mapping: Mapping[str, str]) -> list[tuple[Layer, Layer]]:
    by_path_a, by_path_b = _named(a), _named(b)
    for s, d in mapping.items():
        if s not in by_path_a or d not in by_path_b:
            side, path, known = (
                ("source", s, by_path_a) if s not in by_path_a else ("destination", d, by_path_b)
            )
            raise PortError(
                f"mapping names {path!r}, which is no parameterised layer of the {side}. Expected one "
                f"of {list(dict.fromkeys(x.name for x in known.values()))}. " + received(mapping={s: d})
            )
    mapping = {by_path_a[s].name: by_path_b[d].name for s, d in mapping.items()}  # names as paths
    rest_a = [x for x in a if x.name not in mapping]
    rest_b = [x for x in b if x.name not in set(mapping.values())]
    if len(rest_a) != len(rest_b):
        raise PortError(
            f"The source has {len(a)} parameterised layers and the destination {len(b)}: the "
            f"architectures do not match.{_where_they_part(rest_a, rest_b)}{_stacked_hint(a + b)}"
            f"{_computed_hint(a, b)}{_factors_hint(a + b)} "
            "Expected the same layers in the same order, or a mapping (layer paths, or (pattern, "
            "replacement) rules). " + received(source=_few(a), destination=_few(b))
        )
    return [(by_path_a[s], by_path_b[d]) for s, d in mapping.items()] + list(zip(rest_a, rest_b, strict=True))


def parts(layer: Layer) -> list[Layer]:
    """A recurrent layer that holds several layers or both directions (torch's
    and paddle's ``num_layers``, ``bidirectional``) as one layer per layer and
    direction, in its leaves' order (``l0``, ``l0_reverse``, ``l1``, ...), each
    with the leaves of a one-layer forward layer (``weight_ih_l0``): what a
    framework of one module per layer and direction (Keras' stacked and
    ``Bidirectional`` layers, Flax NNX's) pairs with. Any other layer, itself.

    Examples:
        >>> from types import SimpleNamespace as Slot
        >>> from unified_params._core.port import Layer
        >>> leaves = [(f"{w}_{p}", (4, 3)) for p in ("l0", "l0_reverse") for w in ("weight_ih", "weight_hh")]
        >>> slots = [Slot(keys=(f"rnn.{n}",)) for n, _ in leaves]
        >>> split = parts(Layer("rnn", "rnn", "RNN", leaves, slots))
        >>> [(x.name, x.renamed["weight_ih_" + x.part]) for x in split]
        [('rnn[l0]', 'weight_ih_l0'), ('rnn[l0_reverse]', 'weight_ih_l0')]
    """
    if layer.kind not in RECURRENT or layer.part:
        return [layer]
    groups: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for name, shape in layer.leaves:
        groups.setdefault(recurrent_part(name), []).append((name, shape))
    if len(groups) < 2 or "" in groups:
        return [layer]  # one layer, one direction (or leaves of no layer: left whole)
    out = []
    for part, leaves in groups.items():
        suffix = "_" + part
        one = {name: base_name(name) + "_l0" for name, _ in leaves}
        own = [slot for slot in layer.slots if all(k.endswith(suffix) for k in slot.keys)]
        if sum(len(slot.keys) for slot in own) != len(leaves):
            return [layer]  # a variable holding several parts: not split
        out.append(
            replace(
                layer,
                leaves=[(one[name], shape) for name, shape in leaves],
                slots=own,
                renamed=one,
                part=part,
            )
        )
    return out


def _fits(x: Layer, y: Layer) -> bool:
    """Whether two layers pair: the same kind (or kinds that compute alike, their
    values converted: `layouts.same_function`) and leaves (in any order: they are
    copied by name), or leaves one side may lack, or leaves of a kind the library
    does not know that differ only by axes of size one (`reshaped`)."""
    same = same_function(x.kind, y.kind) and (x.leaves == y.leaves or sorted(x.leaves) == sorted(y.leaves))
    return (same and x.norms == y.norms) or reconcilable(x, y) or bool(reshaped(x, y))


def reshaped(x: Layer, y: Layer) -> dict[str, tuple[int, ...]]:
    """The leaves of ``x`` that ``y`` holds in another shape of the same sizes in
    the same order but for axes of size one, by name, with ``y`` 's shape; empty
    unless that is all that keeps two layers of a kind the library does not know
    from pairing, or a Linear from a convolution of a kernel of ones
    (`pointwise_pair`).

    A per-channel scale is ``(C, 1, 1)`` where it multiplies a channels-first
    map (torchvision's ConvNeXt ``layer_scale``) and ``(C,)`` where it
    multiplies a channels-last one (Keras' ``LayerScale``) or where the layer
    reshapes it (timm's ``gamma``); a PReLU's slopes are ``(C,)`` in torch and
    ``(1, 1, C)`` in Keras with ``shared_axes=[1, 2]``. Such leaves hold the
    same values in the same order; that both layers apply them along the same
    axis is what the port cannot see (`port` says so, and ``check_input``
    verifies it).

    Examples:
        >>> from unified_params._core.port import Layer
        >>> a = Layer("blocks.0", "other", "CNBlock", [("gamma", (96, 1, 1))], [])
        >>> b = Layer("7", "other", "LayerScale", [("gamma", (96,))], [])
        >>> reshaped(a, b)
        {'gamma': (96,)}
        >>> reshaped(a, Layer("7", "other", "LayerScale", [("gamma", (1, 96))], []))
        {'gamma': (1, 96)}
        >>> reshaped(a, Layer("7", "other", "LayerScale", [("gamma", (48, 2))], []))
        {}
        >>> fc = Layer("fc", "linear", "Linear", [("weight", (10, 64)), ("bias", (10,))], [])
        >>> reshaped(fc, Layer("9", "conv2d", "Conv2D", [("weight", (10, 64, 1, 1)), ("bias", (10,))], []))
        {'weight': (10, 64, 1, 1)}
        >>> reshaped(fc, Layer("9", "conv2d", "Conv2D", [("weight", (10, 64, 3, 3)), ("bias", (10,))], []))
        {}
        >>> reshaped(fc, Layer("9", "conv2d", "Conv2D", [("weight", (10, 64, 1, 1))], []))  # bias: `absent`
        {'weight': (10, 64, 1, 1)}
    """
    if x.norms or y.norms or x.computed or y.computed:
        return {}
    mine, theirs = dict(x.leaves), dict(y.leaves)
    if len(mine) != len(x.leaves) or len(theirs) != len(y.leaves):
        return {}
    if pointwise_pair(x, y) and {"weight"} <= mine.keys() | theirs.keys() <= {"weight", "bias"}:
        linear, conv = (mine, theirs) if x.kind == "linear" else (theirs, mine)
        if "weight" not in linear or "weight" not in conv:
            return {}
        kernel = conv["weight"][2:]
        if conv["weight"][:2] != linear["weight"] or any(k != 1 for k in kernel):
            return {}
        if "bias" in mine and "bias" in theirs and mine["bias"] != theirs["bias"]:
            return {}  # a bias on one side only is the port's to fill or leave out (`absent`)
        return {"weight": theirs["weight"]}
    if mine.keys() != theirs.keys():
        return {}
    if x.kind == y.kind == UNKNOWN_KIND:
        if any(_sizes(mine[n]) != _sizes(theirs[n]) for n in mine):
            return {}
        return {n: theirs[n] for n in mine if mine[n] != theirs[n]}
    return {}


def pointwise_pair(x: Layer, y: Layer) -> bool:
    """Whether one of two layers is a Linear and the other a convolution.

    A Linear's weight ``(out, in)`` is a pointwise convolution's ``(out, in, 1,
    1)``: keras.applications' MobileNets end in such convolutions on the
    pooled ``1 x 1`` map, where torchvision's and paddle.vision's end in
    Linears; torchvision's ConvNeXt mixes each position's channels with a
    Linear, Keras' with a convolution would. `reshaped` pairs them by shape;
    `port` checks that the convolution is pointwise.
    """
    return {x.kind, y.kind} in ({"linear", c} for c in CONVOLUTIONS)


def _sizes(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape without its axes of size one."""
    return tuple(d for d in shape if d != 1)


def _where_they_part(a: list[Layer], b: list[Layer]) -> str:
    """Where two lists of layers stop pairing in order: what lies between the
    longest run that pairs from the start and the longest from the end. One
    side's extra block (an auxiliary head, a preprocessing layer) is all of it.

    Examples:
        >>> from unified_params._core.port import Layer
        >>> conv = Layer("c", "conv2d", "Conv2d", [("weight", (8, 3, 3, 3))], [])
        >>> norm = Layer("n", "other", "Normalization", [("mean", (3,))], [])
        >>> said = _where_they_part([conv], [norm, conv])
        >>> said.split("; ")[0]
        ' In order, the first 0 and the last 1 pair by kind and shape'
        >>> print(*said.split("; ")[1].split(". "), sep="\\n")
        between them, the destination has 1 layer the source lacks: 'n' (Normalization, other: mean (3,))
        Pass keep=['n'] to leave it as it is.
    """
    n = min(len(a), len(b))
    head = next((k for k in range(n) if not _fits(a[k], b[k])), n)
    tail = next((k for k in range(n - head) if not _fits(a[-1 - k], b[-1 - k])), n - head)
    only_a, only_b = a[head : len(a) - tail], b[head : len(b) - tail]
    paired = f"In order, the first {head} and the last {tail} pair by kind and shape"
    if only_a and only_b:  # both differ there: the first pair that does not fit says most
        return (
            f" {paired}; between them, {len(only_a)} source and {len(only_b)} destination layers, "
            f"from source {_said(only_a[0])} and destination {_said(only_b[0])}, which do not pair."
        )
    side, other, extra = ("source", "destination", only_a) if only_a else ("destination", "source", only_b)
    listed = "; ".join(map(_said, extra[:3])) + (f"; and {len(extra) - 3} more" if len(extra) > 3 else "")
    plural = "s" if len(extra) > 1 else ""
    names = [x.name for x in extra[:3]] + (["..."] if len(extra) > 3 else [])
    it = "them" if plural else "it"
    fix = (
        ""  # the factors of an update: left out, the update would be dropped (`_factors_hint` says more)
        if any(low_rank.looks_like_factor(x.name) for x in extra)
        else f" Pass skip={names!r} to leave {it} out of the port."
        if only_a
        else f" Pass keep={names!r} to leave {it} as {'they are' if plural else 'it is'}."
    )
    lacks = f"the {side} has {len(extra)} layer{plural} the {other} lacks"
    return f" {paired}; between them, {lacks}: {listed}.{fix}"


def _said(x: Layer) -> str:
    """A layer in words: its path, class, kind and leaf shapes."""
    return f"{x.name!r} ({x.type_name}, {x.kind}: {', '.join(f'{n} {s}' for n, s in x.leaves)})"


def _few(found: list[Layer], ends: int = 3) -> list[str]:
    """The names of ``found``: all of a short list, the ends of a long one."""
    return _ends([x.name for x in found], ends)


def _ends(names: list[str], ends: int = 3) -> list[str]:
    """All of a short list, the ends of a long one."""
    return names if len(names) <= 2 * ends + 1 else [*names[:ends], "...", *names[-ends:]]


def _computed_hint(a: list[Layer], b: list[Layer]) -> str:
    """Why a layer may not pair: it computes a leaf from other variables on each
    call (a weight norm, a spectral norm, a parametrization)."""
    if len(a) == len(b) == 1 and all(x.computed or x.stored for x in (a[0], b[0])):
        return _norms_hint(a[0], b[0])
    for side, found in (("source", a), ("destination", b)):
        x = next((x for x in found if x.stored is not None), None)
        if x is not None and not all(y.norms for y in a + b):
            assert x.stored is not None
            return (
                f" The {side}'s {x.path!r} ({x.type_name}) has its {x.stored.leaf!r} spectrally normalized "
                f"in training by {x.stored.wrapper or '<root>'!r}, which keeps the normalized value in its "
                "place, and pairs only with a layer whose spectral norm keeps the same axis of the "
                "canonical weight (torch.nn.utils.parametrizations.spectral_norm, "
                "paddle.nn.utils.spectral_norm). Normalize the other model's layer too, or port with a "
                "model of the wrapped layers (the wrapper's .layer), which shares their variables and "
                "computes as the wrapper does at inference."
            )
    for side, found in (("source", a), ("destination", b)):
        x = next((x for x in found if x.computed), None)
        if x is not None:
            leaves = " and ".join(repr(leaf) for leaf in x.computed)
            return (
                f" The {side}'s {x.path or '<root>'!r} ({x.type_name}) computes {leaves} from other "
                "variables on each call (a weight norm, spectral norm, pruning mask or parametrization), "
                "and a layer without one does not pair with it: remove it first, which folds it into the "
                "weight (torch.nn.utils.prune.remove for a mask), then port."
            )
    return ""


#: What two norms over other axes should do instead.
_SAME_AXIS = (
    " Expected norms that keep the same axis of the canonical (torch) weight: set the norm's dim to "
    "that axis as the framework lays the weight out (a Linear's outputs are axis 0 of torch's (out, in) "
    "weight, axis 1 of an (in, out) one)."
)


def _norms_hint(x: Layer, y: Layer) -> str:
    """Why two layers that both compute a leaf do not pair."""
    axes = [(a, b) for a, b in zip(x.norms, y.norms, strict=False) if a[:2] == b[:2] and a != b]
    if axes and not any(n.endswith("_g") for n, _ in x.leaves):
        (make, leaf, ours), (_, _, other) = axes[0]
        return (
            f" Both compute {leaf!r} by a {make} norm, over other axes: the source's keeps axis {ours} of "
            f"the canonical (torch) weight, the destination's axis {other}.{_SAME_AXIS}"
        )
    mine, theirs = dict(x.leaves), dict(y.leaves)
    held = [n for n in mine if n.endswith("_g") and n in theirs and mine[n] != theirs[n]]
    if held:
        name = held[0]
        kept = [_kept_axis(shape) for shape in (mine[name], theirs[name])]
        return (
            f" Both compute {name[:-2]!r} by a weight norm, over other axes: the source's {name} "
            f"{mine[name]} keeps {kept[0]}, the destination's {theirs[name]} {kept[1]}.{_SAME_AXIS}"
        )
    if x.norms and x.norms == y.norms and all(make == "spectral" for make, _, _ in x.norms):
        if x.forms and y.forms:
            return ""  # both moved in their common form: the shapes differ as the layers do
        return (
            f" Both compute {x.norms[0][1]!r} by a spectral norm, whose variables keep each framework's "
            "own layout (Param.own_layout); a port moves them between frameworks only where each side "
            "lays its weight out by moving axes alone, not here. Remove the norm first, which folds it "
            "into the weight, port, then apply the norm again to the destination."
        )
    return (
        f" Both compute {' and '.join(map(repr, x.computed or _stored_leaf(x)))} from other variables; "
        "a weight norm pairs only with a weight norm, a spectral norm with a spectral norm, each "
        "keeping the same axis (another parametrization pairs with none): remove it first, which "
        "folds it into the weight, then port."
    )


def _stored_leaf(x: Layer) -> tuple[str, ...]:
    """The leaf a wrapper's spectral norm keeps normalized in ``x`` (`port.Stored`), if any."""
    return (x.stored.leaf,) if x.stored is not None else ()


def _kept_axis(shape: tuple[int, ...]) -> str:
    """The axis a weight norm's canonical magnitude keeps, in words."""
    kept = [k for k, n in enumerate(shape) if n != 1]
    if not shape:
        return "none (a norm over the whole weight)"
    return f"axis {kept[0]}" if len(kept) == 1 else "an axis of size one" if not kept else f"axes {kept}"


def _factors_hint(found: list[Layer]) -> str:
    """Why layers may be left over: they hold the factors of a low-rank update
    that no adapter reports (`low_rank`), a form the library does not merge."""
    names = [x.name for x in found if low_rank.looks_like_factor(x.name)]
    if not names:
        return ""
    return (
        f" Layers {_ends(names)} look like the factors of a low-rank update (LoRA) of a form this library "
        "does not merge (peft's LoRA variants other than DoRA, DoRA while peft caches its norms, AdaLoRA, "
        "a LoRA bias, fan_in_fan_out on a layer other than transformers' Conv1D, a grouped convolution, "
        "merged adapters of a disabled layer): "
        "merge it into the weights in its framework first "
        "(peft: model.merge_and_unload(); a disabled model's merged adapters: model.unmerge_adapter()), "
        "then port."
    )


def _stacked_hint(found: list[Layer]) -> str:
    """Why the counts may differ: a recurrent layer of several layers or both
    directions is paired part by part."""
    split = [x for x in found if x.part]
    if not split:
        return ""
    x = split[0]
    names = [y.name for y in found if y.path == x.path and y.part]
    return (
        f" Recurrent layer {x.path or '<root>'!r} ({x.type_name}) holds several layers or directions "
        f"(num_layers, bidirectional), each paired as a layer of its own: {names}."
    )


def _by_rules(a: list[Layer], b: list[Layer], rules: Compiled) -> list[tuple[Layer, Layer]]:
    by_path_b = _named(b)
    pairs: list[tuple[Layer, Layer]] = []
    unmatched: list[str] = []
    missing: list[str] = []
    reached: dict[str, str] = {}
    twice: list[str] = []
    for x in a:
        found = rename(x.name, rules)
        if found is None and x.alias:
            found = rename(x.alias, rules)
        if found is None:
            unmatched.append(x.name)
            continue
        k, target = found
        if target is None:
            continue  # left out by the rule
        y = by_path_b.get(target)
        if y is None:
            missing.append(f"{x.name!r} -> {target!r} (rule {k})")
        elif y.name in reached:
            twice.append(f"{reached[y.name]!r} and {x.name!r} -> {target!r}")
        else:
            reached[y.name] = x.name
            pairs.append((x, y))
    unreached = [y.name for y in b if y.name not in reached]
    if unmatched or missing or twice or unreached:
        parts = [
            f"source layers no rule matches: {unmatched}" if unmatched else "",
            f"renamed to no parameterised layer of the destination: {', '.join(missing)}" if missing else "",
            f"destination layers reached twice: {', '.join(twice)}" if twice else "",
            f"destination layers no rule reaches: {unreached}" if unreached else "",
        ]
        raise PortError(
            "The mapping rules leave layers unmatched; "
            + "; ".join(p for p in parts if p)
            + ". Expected every source layer matched by a rule (replacement None leaves it out) and "
            "every destination layer reached once. " + received(rules=[(p.pattern, r) for p, r in rules])
        )
    return pairs


def _renamed_leaves(layer: Layer, rules: Compiled) -> Layer:
    def leaf(name: str) -> str:
        found = rename(name, rules)
        return name if found is None or found[1] is None else found[1]

    known = layer.renamed or {n: n for n, _ in layer.leaves}  # the model's leaf -> the name it goes by
    return replace(
        layer, leaves=[(leaf(n), s) for n, s in layer.leaves], renamed={n: leaf(k) for n, k in known.items()}
    )


def _difference(x: Layer, y: Layer) -> str:
    """What differs between two layers, in words."""
    if not same_function(x.kind, y.kind):
        notes = [note for layer in (x, y) if (note := layer.kind_note)]
        notes += [note] if (note := _pointwise_difference(x, y)) else []
        return f"kinds {x.kind} and {y.kind}" + "".join(f" ({note})" for note in notes)
    mine, theirs = dict(x.leaves), dict(y.leaves)
    out = []
    only_a, only_b = [n for n in mine if n not in theirs], [n for n in theirs if n not in mine]
    if only_b:
        out.append(f"the destination has {only_b}, the source none")
    if only_a:
        out.append(f"the source has {only_a}, the destination none")
    out += [
        f"{n} is {mine[n]} in the source, {theirs[n]} in the destination"
        for n in mine
        if n in theirs and mine[n] != theirs[n]
    ]
    if not out and x.norms != y.norms:
        out.append(f"norms {_said_norms(x)} in the source, {_said_norms(y)} in the destination")
    if not out and list(mine) != list(theirs):
        out.append(f"leaves in another order ({list(mine)} vs {list(theirs)})")
    return "; ".join(out)


def _pointwise_difference(x: Layer, y: Layer) -> str:
    """Why a Linear and a convolution did not pair (`reshaped`), if they are such a pair."""
    if not pointwise_pair(x, y):
        return ""
    linear, conv = (x, y) if x.kind == "linear" else (y, x)
    weight, kernel = dict(linear.leaves).get("weight"), dict(conv.leaves).get("weight")
    if weight is None or kernel is None:
        return "a Linear pairs with a pointwise convolution by their weights"
    wanted = (*weight, *(1,) * (len(kernel) - 2))
    if kernel != wanted:
        return f"a Linear's weight {weight} pairs only with a pointwise convolution's {wanted}, not {kernel}"
    return "a Linear pairs with a pointwise convolution of the same weight and bias, and no other leaf"


def _said_norms(x: Layer) -> str:
    """A layer's norms in words: ``"a spectral norm of 'weight' keeping axis 0"``."""
    said = [
        f"a {make} norm of {leaf!r} " + ("over all of it" if axis is None else f"keeping axis {axis}")
        for make, leaf, axis in x.norms
    ]
    return " and ".join(said) or "none"
