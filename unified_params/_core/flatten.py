"""Flattened feature maps: where a channels-last and a channels-first model
order the inputs of a Linear differently.

A Flatten after a convolution turns a ``(C, H, W)`` map into ``C*H*W``
features on a channels-first framework, and an ``(H, W, C)`` map into the same
number of features in another order on a channels-last one (Keras, Flax NNX).
The Linear that takes them then holds the same weights with its input rows
permuted, which no per-layer layout rule expresses. Until that permutation is
supported, a port between such models is refused instead of being silently
wrong. A Flatten of a ``1 x 1`` map (after global pooling) orders its
features the same way on every framework and is allowed.
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import PortError, received
from .view import Module


class FlattenedMap(NamedTuple):
    """A Linear fed by a flattened map of more than one position: after a
    Flatten layer at ``flatten``, or (``flatten`` None) right after a
    convolution, with a multiple of its channels as inputs: a flatten done
    inside a forward method, which no walk sees."""

    flatten: str | None
    linear: str
    channels: int
    features: int


def flattened_map(model: Module) -> FlattenedMap | None:
    """The first Linear that takes a Flatten of a spatial map, in traversal order.

    The map's channels are the last convolution's (or normalisation's) output
    channels before the Flatten; the Linear's inputs are ``channels x
    positions``, so more inputs than channels means more than one position.

    Examples:
        >>> from unified_params import spec as S, wrap
        >>> net = S.Sequential(S.Conv2d(3, 4, 3), S.Flatten(), S.Linear(36, 2)).build("torch")
        >>> flattened_map(wrap(net))
        FlattenedMap(flatten='1', linear='2', channels=4, features=36)
    """
    channels, pending = 0, None  # channels of the last map; the Flatten after it
    for module in model.modules():
        kind = module.kind
        if kind == "flatten" and channels:
            pending = module.path
            continue
        if not kind.startswith(("conv", "batchnorm", "linear")):
            continue
        weight = module.params().get("weight")  # a layer's own leaves, keyed relative to it
        if weight is None:
            continue
        if kind.startswith("conv"):
            channels = weight.shape[1] if kind.startswith("conv_transpose") else weight.shape[0]
        elif kind == "batchnorm":
            channels = weight.shape[0]
        elif channels:  # the first Linear after a map, with or without a Flatten layer
            features = weight.shape[1]
            if features != channels and (pending is not None or features % channels == 0):
                return FlattenedMap(pending, module.path, channels, features)
            channels, pending = 0, None
    return None


def refuse_reordered_inputs(src: Module, dst: Module, *, verified: bool = False) -> None:
    """Refuse a port between a channels-last and a channels-first model when
    either flattens a spatial map into a Linear; where the flatten is not a
    layer (done inside a forward method), only when no check input will
    verify the port on outputs (``verified``).

    Raises:
        PortError: The Linear's input rows would need a permutation.
    """
    for model, other in ((src, dst), (dst, src)):
        refuse_other_ordering(
            model, other.backend, other.capabilities.channels_last, PortError, verified=verified
        )


def refuse_other_ordering(
    model: Module,
    other: str,
    other_channels_last: bool,
    error: type[Exception] = PortError,
    *,
    verified: bool = False,
) -> None:
    """Refuse to exchange canonical weights between ``model`` and weights laid
    out by ``other`` (a backend name, or a description) when the two flatten
    feature maps in different orders and ``model`` flattens a spatial map.

    Raises:
        Exception: ``error``, naming the Linear, its channels and positions.

    Examples:
        >>> from unified_params import spec as S, wrap
        >>> net = S.Sequential(S.Conv2d(3, 4, 3), S.Flatten(), S.Linear(36, 2)).build("torch")
        >>> refuse_other_ordering(wrap(net), "paddle", False)  # both channels first: nothing to refuse
    """
    if model.capabilities.channels_last == other_channels_last:
        return  # both flatten in the same order
    found = flattened_map(model)
    if found is None:
        return
    last, first = (model.backend, other) if model.capabilities.channels_last else (other, model.backend)
    positions = found.features // found.channels
    if found.flatten is None:
        if verified:
            return  # the outputs will tell
        raise error(
            f"Layer {found.linear!r} of the {model.backend} model may take a flattened map: its "
            f"{found.features} inputs are {positions} times the {found.channels} channels of the layer "
            "before it, with no Flatten layer between (a flatten inside a forward method is not "
            f"seen). If it is one, {last} orders those inputs (H, W, C) and {first} (C, H, W), and "
            "the weights would be silently wrong; this library cannot know. Expected check_input= "
            "(the port then verifies on outputs), or a Flatten layer in the model. "
            + received(linear=found.linear, channels=found.channels, features=found.features)
        )
    raise error(
        f"Layer {found.linear!r} of the {model.backend} model takes a map of {found.channels} "
        f"channels at {positions} positions, flattened at {found.flatten!r}: {last} flattens it "
        f"channels last (H, W, C) and {first} channels first (C, H, W), so the Linear's input rows "
        "come in another order, which this library does not convert yet. Expected models that "
        "flatten a 1 x 1 map (after global pooling), or weights exchanged between two channels-last "
        "or two channels-first frameworks. "
        + received(linear=found.linear, channels=found.channels, features=found.features)
    )
