"""Flattened feature maps: where a channels-last and a channels-first model
order the inputs of a Linear differently.

A Flatten after a convolution turns a ``(C, H, W)`` map into ``C*H*W``
features on a channels-first framework, and an ``(H, W, C)`` map into the same
number of features in another order on a channels-last one (Keras, Flax NNX).
The Linear that takes them holds the same weights with its input rows
permuted. What counts is the order the convolution before the Flatten holds
its map in (`holds_channels_last`): a paddle layer built ``NHWC`` holds it
channels last, a Keras layer built ``channels_first`` channels first. The
rules:

- Where the framework records what feeds a Linear (a Keras functional or
  Sequential model keeps its graph), the canonical layout of its weight is
  torch's: the adapter says the map's channels and positions
  (`Adapter.flattened_input`), and `flat_layout` folds the permutation into
  the parameter's layout, so ``state_dict``, ``save`` and ``port`` are right
  with nothing declared.
- Where it does not (a flatten inside a forward method, an NNX Sequential),
  the canonical layout keeps the framework's order; such a Linear is *naive*
  (`naive_layers`). A port between a naive layer and a canonical one is
  refused unless the user declares the map (``up.port(..., flatten=...)``,
  `port_reorders`) or, when no Flatten layer shows the map, a check input
  verifies the outputs (the report then says so). A checkpoint records its
  writer's naive layers, and a load refuses a file whose order differs from
  the model's for a layer (`refuse_file_order`).

A Flatten of a ``1 x 1`` map (after global pooling) orders its features the
same way on every framework.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import leaf_norms
from .errors import PortError, received
from .layouts import CHANNEL_NORMS, FEATURE_NORMS
from .paths import relative
from .tree import spectral_forms, walk

if TYPE_CHECKING:
    from .layouts import Layout
    from .tree import Entry
    from .view import Module, Param


class FlatInput(NamedTuple):
    """What a framework records of the features a Linear layer takes: a map of
    ``channels`` at ``positions`` positions, flattened channels last or first.
    An input that is no map is one position of all its features.

    Examples:
        >>> FlatInput(channels=512, positions=49, channels_last=True).reordered
        True
    """

    channels: int
    positions: int
    channels_last: bool

    @property
    def reordered(self) -> bool:
        """Whether the framework's feature order differs from torch's."""
        return self.channels_last and self.positions > 1 and self.channels > 1


class FlattenedMap(NamedTuple):
    """A Linear that may take a flattened map of more than one position: after
    a Flatten layer at ``flatten``, or (``flatten`` None) right after a
    convolution, with a multiple of its channels as inputs: a flatten done
    inside a forward method, which no walk sees."""

    flatten: str | None
    linear: str
    channels: int
    features: int
    #: A normalisation over the flattened features between the Flatten and the
    #: Linear: its per-feature values come in the same two orders.
    between: str | None = None
    #: Whether the layers before hold the map channels last (`holds_channels_last`
    #: of the last convolution): then it flattens in ``(H, W, C)`` order.
    channels_last: bool = False

    @property
    def positions(self) -> int:
        return self.features // self.channels


#: Where a Linear's weight keeps its output and input axes, canonically (``(out, in)``).
_OUT_AXIS, _IN_AXIS = 0, 1


def flat_layout(adapter: Any, entry: Entry, layout: Layout) -> Layout:
    """The layout of a parameter, with the permutations of the flattened maps
    its layer takes or gives, where its framework records them channels last:
    a Linear's inputs after a Flatten of a map, and its outputs (its weight's
    rows, its bias) where a reshape turns them into a map, as it does a
    per-feature normalisation's between the two (a generator's Dense, then
    BatchNormalization, then Reshape to ``(H, W, C)``).

    Examples:
        >>> from unified_params import spec as S, wrap
        >>> net = S.Sequential(S.Conv2d(3, 4, 3), S.Flatten(), S.Linear(36, 2)).build("torch")
        >>> wrap(net)["2.weight"].layout.flat is None  # torch flattens channels first
        True
    """
    kind = entry.layer_kind
    linear = kind == "linear"
    if (
        not (linear or kind in CHANNEL_NORMS or kind in FEATURE_NORMS)
        or not adapter.capabilities.channels_last
    ):
        return layout
    if linear and entry.name == "weight":
        found = adapter.flattened_input(entry.module)
        if found is not None and found.reordered:
            layout = layout.with_flat(layout.perm[_IN_AXIS], found.positions, found.channels)
        out_axis = layout.perm[_OUT_AXIS]
    elif len(layout.perm) == 1 and (not linear or entry.name == "bias"):
        out_axis = 0  # a bias, a normalisation's per-feature values
    else:
        return layout
    given = adapter.unflattened_output(entry.module)
    if given is None or not given.reordered:
        return layout
    return layout.with_flat(out_axis, given.positions, given.channels)


def holds_channels_last(layer: Module) -> bool:
    """Whether a layer takes and gives its maps channels last: on a
    channels-last framework unless built channels first (Keras'
    ``data_format="channels_first"``); on a channels-first one where built
    channels last (paddle's ``data_format="NHWC"``).

    Examples:
        >>> from unified_params import spec as S, wrap
        >>> holds_channels_last(wrap(S.Sequential(S.Conv2d(3, 4, 3)).build("torch"))[0])
        False
    """
    layout = layer.adapter.input_layout(layer.native)
    return layout != "channels_first" if layer.capabilities.channels_last else layout == "channels_last"


def knows_order(layer: Module, found: FlattenedMap | None) -> bool:
    """Whether a Linear's canonical weight surely orders its inputs as torch
    does, given the map it may take (``found``, from `flattened_maps`): where
    its framework records what feeds it (a Keras graph), or where that map is
    held channels first; with no map found, on a channels-first framework."""
    if layer.capabilities.channels_last:
        if layer.adapter.flattened_input(layer.native) is not None:
            return True
        return found is not None and not found.channels_last
    return found is None or not found.channels_last


def may_flatten_channels_last(model: Module) -> bool:
    """Whether any Linear of ``model`` may take a map flattened channels last:
    on a channels-last framework, or where a layer holds its maps so (a walk
    of the modules, without their parameters).

    Examples:
        >>> from unified_params import spec as S, wrap
        >>> may_flatten_channels_last(wrap(S.Sequential(S.Conv2d(3, 4, 3)).build("torch")))
        False
    """
    if model.capabilities.channels_last:
        return True
    layout = model.adapter.input_layout
    return any(layout(native) == "channels_last" for _, native in walk(model.adapter, model.native))


def flattened_maps(model: Module) -> dict[str, FlattenedMap]:
    """Every Linear that may take a flattened spatial map, by path, in
    traversal order: the layer after a Flatten of a convolution's map, or
    right after a convolution with a multiple of its channels as inputs.

    The map's channels are the last convolution's (or normalisation's) output
    channels; more inputs than channels means more than one position. The
    map is held channels last where that convolution holds it so (or, with
    none before, the normalisation).

    Examples:
        >>> from unified_params import spec as S, wrap
        >>> net = S.Sequential(S.Conv2d(3, 4, 3), S.Flatten(), S.Linear(36, 2)).build("torch")
        >>> flattened_maps(wrap(net))["2"][:4]
        ('1', '2', 4, 36)
    """
    out: dict[str, FlattenedMap] = {}
    channels, pending, between = 0, None, None  # the last map's channels; the Flatten after it
    last = False  # whether the map is held channels last
    for module in model.modules():
        kind = module.kind
        if kind == "flatten" and channels:
            pending = module.path
            continue
        if (kind in CHANNEL_NORMS or kind in FEATURE_NORMS) and pending is not None:
            between = module.path  # per flattened feature, not per channel
            continue
        if not (kind.startswith(("conv", "linear")) or kind in CHANNEL_NORMS):
            continue
        shape = weight_shape(module)
        if shape is None:
            continue
        if kind.startswith("conv"):
            channels = shape[1] if kind.startswith("conv_transpose") else shape[0]
            last = holds_channels_last(module)
        elif kind in CHANNEL_NORMS:
            last = last if channels else holds_channels_last(module)
            channels = shape[0]
        elif channels:  # the first Linear after a map, with or without a Flatten layer
            features = shape[1]
            if features != channels and (pending is not None or features % channels == 0):
                out[module.path] = FlattenedMap(pending, module.path, channels, features, between, last)
            channels, pending, between = 0, None, None
    return out


def naive_layers(model: Module) -> dict[str, FlattenedMap]:
    """The Linears that may take a flattened map and whose canonical weight
    keeps the framework's own (channels-last) order: the framework does not
    record what feeds them.

    Examples:
        >>> from unified_params import spec as S, wrap
        >>> net = S.Sequential(S.Conv2d(3, 4, 3), S.Flatten(), S.Linear(36, 2)).build("torch")
        >>> naive_layers(wrap(net))
        {}
    """
    if not may_flatten_channels_last(model):
        return {}
    return _naive(model, flattened_maps(model))


def _naive(model: Module, maps: Mapping[str, FlattenedMap]) -> dict[str, FlattenedMap]:
    """`naive_layers`, of a model that may flatten channels last, from its maps."""
    return {path: found for path, found in maps.items() if not knows_order(layer_at(model, path), found)}


def layer_at(model: Module, path: str) -> Module:
    """The layer view at ``path`` below ``model`` (``""``: ``model`` itself)."""
    from .view import Module  # at call time: the view imports this module

    layer = model[path] if path else model
    assert isinstance(layer, Module)  # a layer path names a layer
    return layer


def shape_of_weight(layer: Module) -> tuple[int, ...]:
    """`weight_shape`, for a layer that has one."""
    shape = weight_shape(layer)
    if shape is None:
        raise PortError(
            f"Layer {layer.path!r} ({layer.type_name}) computes its weight on each call from variables "
            "of no known canonical form (a spectral norm's), so the inputs of a map declared for it "
            "cannot be counted. Expected a layer that holds its weight, or a weight norm's: remove "
            "the norm first. " + received(path=layer.path)
        )
    return shape


def weight_shape(layer: Module) -> tuple[int, ...] | None:
    """The canonical shape of `layer_weight`: a spectral norm's original in a
    layout of its framework's own (a paddle Linear's ``(in, out)``) as its
    `leaf_norms.SpectralForm` gives it; ``None`` where none is known."""
    weight = layer_weight(layer)
    if weight is None or not weight.own_layout:
        return None if weight is None else weight.shape
    name = relative(weight.path, layer.path) if layer.path else weight.path
    form = spectral_forms(layer.adapter, layer.native, layer.kind).get(name or "")
    return None if form is None else form.shape(name or "")


def layer_weight(layer: Module) -> Param | None:
    """A layer's canonical weight, or the direction of the weight norm that
    computes it (laid out as the weight): what a rule reads the weight's
    shape from."""
    return leaf_norms.weight_of(layer.params(), layer.adapter.leaf_norms(layer.native))


Reorder = Callable[[np.ndarray], np.ndarray]


def port_reorders(
    src: Module,
    dst: Module,
    pairs: list[tuple[str, str]],
    declared: Mapping[str, tuple[int, ...] | None],
    *,
    verified: bool,
) -> tuple[dict[str, Reorder], list[str]]:
    """How a port reorders the inputs of paired Linears, and what the report
    should say.

    Args:
        src, dst: The models.
        pairs: Paired Linear layers, ``(source path, destination path)``.
        declared: Layer path (of either model) -> the ``(C, *spatial)`` map
            its inputs flatten, or ``None`` for "no map".
        verified: A check input will compare outputs.

    Returns:
        Per destination layer, a function that takes the source's canonical
        weight to the destination's; notes for the report.

    Raises:
        PortError: A layer's order cannot be known; a declaration that
            names no paired Linear, or does not fit it.
    """
    check_declared(declared, pairs)
    maps: dict[int, dict[str, FlattenedMap]] = {}  # walked when a pair needs them
    tells: dict[int, bool] = {}  # per model: whether it may flatten channels last (else all is (C, H, W))

    def mapped(model: Module) -> dict[str, FlattenedMap]:
        if id(model) not in maps:
            maps[id(model)] = flattened_maps(model)
        return maps[id(model)]

    def known(model: Module, path: str) -> bool:
        if id(model) not in tells:
            tells[id(model)] = may_flatten_channels_last(model)
        return knows_order(layer_at(model, path), mapped(model).get(path) if tells[id(model)] else None)

    reorders: dict[str, Reorder] = {}
    notes: list[str] = []
    for a, b in pairs:
        key = a if a in declared else b
        declaration = declared.get(key, ...)  # Ellipsis: nothing declared
        known_a, known_b = known(src, a), known(dst, b)
        if declaration not in (None, ...):
            features = int(shape_of_weight(layer_at(dst, b))[_IN_AXIS])
            channels, positions = declared_map(key, declaration, features)
            _agrees(src, a, channels, positions, known_a)
            _agrees(dst, b, channels, positions, known_b)
        if known_a == known_b:  # both canonical, or both in one framework's own order
            continue
        naive, other = (src, dst) if not known_a else (dst, src)
        naive_path = a if not known_a else b
        found = mapped(src).get(a) or mapped(dst).get(b)
        if found is not None and found.between is not None:
            raise PortError(_normalised(naive, naive_path, other, found))
        if declaration is None:
            continue
        if declaration is not ...:
            channels, positions = declared_map(key, declaration, features)
            reorders[b] = reorder_features(channels, positions, to_channels_last=not known_b, axis=_IN_AXIS)
            notes.append(
                f"{a} -> {b}: inputs reordered as a {channels}-channel map at {positions} positions "
                f"({'(H, W, C) to (C, H, W)' if known_b else '(C, H, W) to (H, W, C)'}), as declared"
            )
            continue
        if found is None:
            continue
        if found.flatten is None and verified:
            notes.append(
                f"{a} -> {b}: {found.features} inputs are {found.positions} times the "
                f"{found.channels} channels before them, with no Flatten layer; nothing was "
                "declared, so the check input decides"
            )
            continue
        raise PortError(_undeclared(naive, naive_path, other, found, verified))
    return reorders, notes


def refuse_file_order(
    model: Module,
    written_naive: list[str] | None,
    writer: str | None,
    error: type[Exception],
    source: str = "file",
) -> None:
    """Refuse to load a file into a model when a Linear that may take a
    flattened map is stored in one order and held in the other.

    Args:
        model: The model loading.
        written_naive: The layers the writer kept in its own channels-last
            order (the file's metadata), or ``None`` for a file that does not
            say: then every layer that may take a map when a channels-last
            framework wrote it, none otherwise.
        writer: The backend that wrote the file, if it says.
        error: The error to raise.
        source: What the values come from, for the message (``"state"``: an
            in-memory `state.State`).

    Examples:
        >>> from unified_params import spec as S, wrap
        >>> net = S.Sequential(S.Conv2d(3, 4, 3), S.Flatten(), S.Linear(36, 2)).build("torch")
        >>> refuse_file_order(wrap(net), [], "keras", ValueError)  # stored as torch orders it
    """
    refuse_order(
        model, written_naive, writer, error, source, flattened_maps, lambda maps: _naive(model, maps), INPUTS
    )


class OrderWords(NamedTuple):
    """How a refusal of a stored order (`refuse_order`) speaks of the maps a
    Linear takes (`INPUTS`) or gives (`unflatten.OUTPUTS`)."""

    #: What the layer does with the map, and how: ``("takes", ", flattened")``.
    does: str
    how: str
    #: Which of its features are ordered: ``"inputs"``.
    side: str
    #: What a framework's graph records, and what a model does where none does.
    records: str
    acts: str
    #: The option of ``up.port`` that converts the order.
    option: str


#: A Linear that takes a flattened map.
INPUTS = OrderWords("takes", ", flattened", "inputs", "its Flatten", "flattens", "flatten")


def refuse_order(
    model: Module,
    written_naive: list[str] | None,
    writer: str | None,
    error: type[Exception],
    source: str,
    found_maps: Callable[[Module], Mapping[str, Any]],
    naive_of: Callable[[Mapping[str, Any]], Iterable[str]],
    words: OrderWords,
) -> None:
    """Raise ``error`` for the first layer whose map the values store in one
    order and the model holds in the other (`order_differences`)."""
    differing = order_differences(model, written_naive, writer, found_maps, naive_of)
    for path, found, held_naive, stored_naive in differing[:1]:
        held = "its framework's own (H, W, C)" if held_naive else "torch's (C, H, W)"
        stored = "(H, W, C)" if stored_naive else "(C, H, W)"
        raise error(
            f"Layer {path!r} of the {model.backend} model {words.does} a map of {found.channels} channels "
            f"at {found.positions} positions{words.how}: the model holds its {words.side} in {held} order, "
            f"the {source} (written by {writer or 'torch'}) in {stored} order, and the weights would be "
            f"silently wrong. Expected a {source} written by a model that orders them alike: every "
            f"channels-first model, and every channels-last one whose framework records {words.records} "
            f"(a graph with shapes), stores torch's order; one that {words.acts} where no graph records "
            f"it stores its own. Use up.port with {words.option}= to convert. "
            + received(layer=path, channels=found.channels, features=found.features)
        )


def order_differences(
    model: Module,
    written_naive: list[str] | None,
    writer: str | None,
    found_maps: Callable[[Module], Mapping[str, Any]],
    naive_of: Callable[[Mapping[str, Any]], Iterable[str]],
) -> list[tuple[str, Any, bool, bool]]:
    """The layers a file stores in one order and the model holds in the other,
    as ``(path, what was found, held naive, stored naive)``, paths as the
    model sees them (a file holds its writer's relative paths).

    Args:
        model: The model loading.
        written_naive: The file's naive layers, or ``None`` for a file that
            does not say: then every layer found when a channels-last
            framework wrote it, none otherwise.
        writer: The backend that wrote the file, if it says.
        found_maps: The model's layers that may take or give a map, by path.
        naive_of: Those of them the model holds in its framework's own order.
    """
    from ..backends import registry

    last = writer in registry.names() and registry.capabilities(writer).channels_last
    may = may_flatten_channels_last(model)
    if not may and not written_naive and not (written_naive is None and last):
        return []  # model and file hold every map's features in (C, H, W) order
    found = found_maps(model)
    maps = {relative(p, model.path) or "": one for p, one in found.items()}
    naive = {relative(p, model.path) or "" for p in (naive_of(found) if may else ())}
    stored = set(maps) if written_naive is None and last else set(written_naive or ())
    return [
        (path, maps[path], path in naive, path in stored) for path in sorted((naive ^ stored) & set(maps))
    ]


def _undeclared(naive: Module, path: str, other: Module, found: FlattenedMap, verified: bool) -> str:
    shape = f"({found.channels}, H, W)"
    where = (
        f"flattened at {found.flatten!r}"
        if found.flatten is not None
        else "with no Flatten layer between (a flatten inside a forward method is not seen)"
    )
    hint = "" if verified or found.flatten is not None else " or check_input= (the outputs then tell)"
    return (
        f"Layer {path!r} of the {naive.backend} model may take a flattened map of {found.channels} "
        f"channels at {found.positions} positions ({found.features} inputs), {where}. The "
        f"{naive.backend} model holds the map channels last and does not record how it flattens, so "
        f"its inputs are taken in its own order, (H, W, C), and the {other.backend} model's in "
        "(C, H, W): the weights would be "
        f"silently wrong. Expected flatten={{{path!r}: {shape}}} naming the map's shape "
        f"(C, H, W), or flatten={{{path!r}: None}} if it is no map{hint}. "
        + received(linear=path, channels=found.channels, features=found.features)
    )


def _normalised(naive: Module, path: str, other: Module, found: FlattenedMap) -> str:
    return (
        f"Layer {path!r} of the {naive.backend} model takes a map of {found.channels} channels at "
        f"{found.positions} positions flattened at {found.flatten!r}, normalised per feature at "
        f"{found.between!r} on the way: the {naive.backend} model holds both in (H, W, C) order and "
        f"the {other.backend} model in (C, H, W), and this library reorders only a Linear's inputs, "
        "so the normalisation's values would be silently wrong. Expected no per-feature "
        "normalisation between the Flatten and the Linear, or two models that flatten alike. "
        + received(linear=found.linear, normalisation=found.between)
    )


def check_declared(declared: Mapping[str, Any], pairs: list[tuple[str, str]], name: str = "flatten") -> None:
    """A declaration (``up.port``'s argument ``name``) names paired Linears, one map a pair."""
    linears = {p for pair in pairs for p in pair}
    unknown = [key for key in declared if key not in linears]
    if unknown:
        raise PortError(
            f"{name} names {unknown}, which pair no Linear layers. Expected paths of paired Linear "
            f"layers of either model: {sorted(linears)}. " + received(**{name: dict(declared)})
        )
    for a, b in pairs:
        if a in declared and b in declared and a != b and declared[a] != declared[b]:
            raise PortError(
                f"{name} declares two maps for the pair {a!r} -> {b!r}. Expected one. "
                + received(**{name: {a: declared[a], b: declared[b]}})
            )


def declared_map(path: str, shape: Any, features: int, name: str = "flatten") -> tuple[int, int]:
    """The channels and positions of a declared ``(C, *spatial)`` map of ``features``."""
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else ()
    ok = len(dims) >= 2 and all(isinstance(d, (int, np.integer)) and d > 0 for d in dims)
    if not ok or math.prod(dims) != features:
        what = "inputs flatten" if name == "flatten" else "outputs are reshaped into"
        raise PortError(
            f"{name}[{path!r}] must be the (C, H, W) shape of the map the layer's {features} {what} "
            "(channels first, any number of spatial axes), with C x H x W = "
            f"{features}, or None. " + received(**{name: {path: shape}})
        )
    return int(dims[0]), math.prod(int(d) for d in dims[1:])


def _agrees(model: Module, path: str, channels: int, positions: int, known: bool) -> None:
    """A declaration must not contradict what a framework records."""
    if not known or not model.capabilities.channels_last:
        return
    found = model.adapter.flattened_input(layer_at(model, path).native)
    if (
        found is not None
        and found.positions > 1
        and (found.channels, found.positions) != (channels, positions)
    ):
        raise PortError(
            f"flatten declares layer {path!r} takes a {channels}-channel map at {positions} "
            f"positions, but the {model.backend} model's graph shows {found.channels} channels at "
            f"{found.positions} positions. Expected the graph's shape, or no declaration. "
            + received(layer=path, declared=(channels, positions))
        )


def reorder_features(channels: int, positions: int, *, to_channels_last: bool, axis: int) -> Reorder:
    """A canonical value's features along ``axis`` (a Linear weight's inputs:
    1; its outputs, or a bias: 0) from ``(C, P)`` order to ``(P, C)``, or
    back; a value of fewer axes (a count) as it is.

    Examples:
        >>> reorder_features(2, 3, to_channels_last=True, axis=0)(np.arange(6)).tolist()
        [0, 3, 1, 4, 2, 5]
    """
    first, second = (channels, positions) if to_channels_last else (positions, channels)

    def reorder(value: np.ndarray) -> np.ndarray:
        if value.ndim <= axis:
            return value
        shape = value.shape[:axis] + (first, second) + value.shape[axis + 1 :]
        return np.ascontiguousarray(np.swapaxes(value.reshape(shape), axis, axis + 1)).reshape(value.shape)

    return reorder
