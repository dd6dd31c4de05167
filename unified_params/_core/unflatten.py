"""Maps made of a Linear's outputs: where a channels-last and a channels-first
model order a Linear's output features differently.

A generator's Linear gives ``C*H*W`` features that a reshape turns into the
map a (transposed) convolution takes: ``(C, H, W)`` on a channels-first
framework, ``(H, W, C)`` on a channels-last one (Keras, Flax NNX) or where
the convolution is built channels last (paddle's ``NHWC``). The Linear's
weight rows and bias, and a per-feature normalisation between it and the
reshape (a ``BatchNorm1d`` of its features), hold the same values in the two
orders. The rules mirror those of a Linear's inputs (`flatten`):

- Where the framework records the reshape (a Keras graph:
  `Adapter.unflattened_output`), the canonical layout is torch's
  (`flatten.flat_layout`): nothing to declare.
- Where it does not (a reshape inside a forward method, a function in an NNX
  Sequential, a paddle layer built ``NHWC``), the Linear keeps its
  framework's order and is *naive* (`naive_outputs`). A port between a
  naive Linear and one ordered as torch's is refused unless
  ``up.port(..., unflatten=...)`` declares the map (`port_output_reorders`);
  a checkpoint records its writer's naive Linears and a load refuses a file
  ordered otherwise (`refuse_output_order`).

What is read is the module order: a Linear whose next parameterised layer
(past normalisations of its features) takes a map of ``C`` channels, with a
multiple of ``C`` other than ``C`` as its outputs, may give that map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from .errors import PortError, received
from .flatten import (
    OrderWords,
    Reorder,
    check_declared,
    declared_map,
    holds_channels_last,
    layer_at,
    layer_weight,
    may_flatten_channels_last,
    refuse_order,
    reorder_features,
    shape_of_weight,
    weight_shape,
)
from .layouts import CHANNEL_NORMS, FEATURE_NORMS

if TYPE_CHECKING:
    from .view import Module, Param

#: Where a Linear's weight keeps its outputs, canonically (``(out, in)``).
_OUT_AXIS = 0


class GivenMap(NamedTuple):
    """A Linear whose outputs may become a map: ``features`` of them, the
    ``channels`` the next layer takes, held channels last or first by that
    layer, and the normalisations of its features on the way."""

    linear: str
    channels: int
    features: int
    channels_last: bool
    between: tuple[str, ...] = ()

    @property
    def positions(self) -> int:
        return self.features // self.channels


def given_maps(model: Module) -> dict[str, GivenMap]:
    """Every Linear that may give a map, by path, in traversal order.

    Examples:
        >>> import torch
        >>> from unified_params import wrap
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Linear(8, 36), torch.nn.Unflatten(1, (4, 3, 3)), torch.nn.ConvTranspose2d(4, 2, 3)
        ... )
        >>> given_maps(wrap(net))["0"][1:4]
        (4, 36, False)
    """
    out: dict[str, GivenMap] = {}
    linear: str | None = None
    features = 0
    between: list[str] = []
    for module in model.modules():
        kind = module.kind
        norm = kind in CHANNEL_NORMS or kind in FEATURE_NORMS
        if not (kind == "linear" or kind.startswith("conv") or norm):
            continue
        weight = _first_of(module, "weight", "running_mean")
        if weight is None:
            continue
        if kind == "linear":
            linear, features, between = module.path, (weight_shape(module) or weight.shape)[0], []
            continue
        if linear is None:
            continue
        if norm and weight.shape == (features,):
            between.append(module.path)  # per feature of the Linear, in its order
            continue
        channels = _channels_taken(module, kind, weight)
        if channels and features != channels and features % channels == 0:
            out[linear] = GivenMap(linear, channels, features, holds_channels_last(module), tuple(between))
        linear = None
    return out


def naive_outputs(model: Module) -> dict[str, GivenMap]:
    """The Linears that may give a map and keep their framework's own
    (channels-last) order of it: the framework does not record the reshape.

    Examples:
        >>> import torch
        >>> from unified_params import wrap
        >>> naive_outputs(wrap(torch.nn.Sequential(torch.nn.Linear(8, 36), torch.nn.Conv2d(4, 2, 3))))
        {}
    """
    if not may_flatten_channels_last(model):
        return {}
    return _naive(model, given_maps(model))


def _naive(model: Module, maps: Mapping[str, GivenMap]) -> dict[str, GivenMap]:
    """`naive_outputs`, of a model that may hold maps channels last, from its maps."""
    return {path: found for path, found in maps.items() if not knows_output_order(model, path, found)}


def knows_output_order(model: Module, path: str, found: GivenMap | None) -> bool:
    """Whether the Linear at ``path`` surely orders its outputs as torch does:
    it gives no map, its framework records the reshape (a Keras graph), or
    the layer that takes the map holds it channels first."""
    if found is None or not found.channels_last:
        return True
    return (
        model.capabilities.channels_last
        and model.adapter.unflattened_output(layer_at(model, path).native) is not None
    )


def port_output_reorders(
    src: Module,
    dst: Module,
    pairs: list[tuple[str, str]],
    partner: Mapping[str, str],
    declared: Mapping[str, tuple[int, ...] | None],
    *,
    verified: bool,
) -> tuple[dict[str, Reorder], list[str]]:
    """How a port reorders the outputs of paired Linears (and the
    normalisations of their features), and what the report should say.

    Args:
        src, dst: The models.
        pairs: Paired Linear layers, ``(source path, destination path)``.
        partner: Every paired source layer's path -> its destination's.
        declared: Layer path (of either model) -> the ``(C, *spatial)`` map
            its outputs are reshaped into, or ``None`` for "no map".
        verified: A check input will compare outputs: an undeclared Linear
            is then left to it, and noted.

    Returns:
        Per destination layer, a function that takes the source's canonical
        value to the destination's; notes for the report.

    Raises:
        PortError: A Linear's order cannot be known; a declaration that
            names no paired Linear, or does not fit it.
    """
    check_declared(declared, pairs, "unflatten")
    may = {id(m): may_flatten_channels_last(m) for m in (src, dst)}
    maps = {id(m): given_maps(m) if may[id(m)] or declared else {} for m in (src, dst)}
    reorders: dict[str, Reorder] = {}
    notes: list[str] = []
    for a, b in pairs:
        found_a, found_b = maps[id(src)].get(a), maps[id(dst)].get(b)
        key = a if a in declared else b
        declaration = declared.get(key, ...)  # Ellipsis: nothing declared
        known_a, known_b = knows_output_order(src, a, found_a), knows_output_order(dst, b, found_b)
        if declaration not in (None, ...):
            features = int(shape_of_weight(layer_at(dst, b))[_OUT_AXIS])
            channels, positions = declared_map(key, declaration, features, "unflatten")
        if known_a == known_b or declaration is None:
            continue  # both as torch orders them, both in one framework's own order, or no map
        naive, naive_path, other = (src, a, dst) if not known_a else (dst, b, src)
        found = found_a if not known_a else found_b
        assert found is not None  # a naive Linear gives a map
        if declaration is ... and verified:
            notes.append(
                f"{a} -> {b}: {found.features} outputs are {found.positions} times the {found.channels} "
                "channels the next layer takes; nothing was declared, so the check input decides"
            )
            continue
        if declaration is ...:
            raise PortError(_undeclared(naive, naive_path, other, found))
        reorder = reorder_features(channels, positions, to_channels_last=not known_b, axis=_OUT_AXIS)
        between = found_b.between if found_b is not None else tuple(partner.get(p, p) for p in found.between)
        for path in (b, *between):
            reorders[path] = reorder
        order = "(H, W, C) to (C, H, W)" if known_b else "(C, H, W) to (H, W, C)"
        also = f", and the normalisations {list(between)} of them" if between else ""
        notes.append(
            f"{a} -> {b}: outputs reordered as a {channels}-channel map at {positions} positions "
            f"({order}){also}, as declared"
        )
    return reorders, notes


#: A Linear whose outputs are reshaped into a map.
OUTPUTS = OrderWords("gives", "", "outputs", "the reshape", "reshapes", "unflatten")


def refuse_output_order(
    model: Module,
    written_naive: list[str] | None,
    writer: str | None,
    error: type[Exception],
    source: str = "file",
) -> None:
    """Refuse to load a file into a model when a Linear that may give a map
    is stored in one order of its outputs and held in the other.

    The arguments are those of `flatten.refuse_file_order`, for the Linears
    whose outputs the writer kept in its own channels-last order
    (``unflattened_naive`` in a file's metadata).

    Examples:
        >>> import torch
        >>> from unified_params import wrap
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 36), torch.nn.Conv2d(4, 2, 3))
        >>> refuse_output_order(wrap(net), [], "keras", ValueError)  # stored as torch orders it
    """
    refuse_order(
        model, written_naive, writer, error, source, given_maps, lambda maps: _naive(model, maps), OUTPUTS
    )


def _undeclared(naive: Module, path: str, other: Module, found: GivenMap) -> str:
    shape = f"({found.channels}, H, W)"
    between = f", normalised per feature at {list(found.between)} on the way," if found.between else ""
    return (
        f"Layer {path!r} of the {naive.backend} model may give a map of {found.channels} channels at "
        f"{found.positions} positions ({found.features} outputs){between} to a layer that holds "
        f"maps channels last. The {naive.backend} model does not record how it reshapes them, so "
        f"its outputs are taken in its own order, (H, W, C), and the {other.backend} model's in "
        f"(C, H, W): the weights would be silently wrong. Expected unflatten={{{path!r}: {shape}}} "
        f"naming the map's shape (C, H, W), unflatten={{{path!r}: None}} if it is no map, or "
        "check_input= (the outputs then tell). "
        + received(linear=path, channels=found.channels, features=found.features)
    )


def _channels_taken(module: Module, kind: str, weight: Param) -> int:
    """The channels of the map a convolution or channel norm takes (0 for another layer)."""
    shape = weight.shape
    if kind.startswith("conv_transpose"):
        return int(shape[0])
    if kind.startswith("conv"):
        return int(shape[1]) * int(module.adapter.hyperparameters(module.native).get("groups", 1))
    return int(shape[0]) if kind in CHANNEL_NORMS else 0


def _first_of(module: Module, *names: str) -> Param | None:
    """The layer's own leaf of the first of ``names`` it has (a norm without
    a scale has its running mean)."""
    own = module.params()
    found = next((own[name] for name in names if name in own), None)
    return layer_weight(module) if found is None and "weight" in names else found
