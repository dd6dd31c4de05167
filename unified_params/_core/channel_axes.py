"""Which axis of a feature map a channel normalisation normalises.

A BatchNorm or GroupNorm normalises the axis its own layout calls the
channels: axis 1 on torch, and on paddle and Keras where built channels
first; the last axis on Keras' default and on paddle's ``NHWC``. Built in
the other layout than the convolution whose map it takes, it normalises
another axis of that map (a spatial one, where the sizes let it run at all),
so it computes otherwise than a twin that normalises the channels, with the
same weights. Two such layers pair by kind and shapes: a port says so.

The map a normalisation takes is the one the last convolution before it
made, in the order the model lists its layers (the order a Sequential runs
them; a forward of one's own may run them otherwise, and may move axes
between them, so what is found is a difference to check, not a refusal).

Examples:
    >>> import paddle
    >>> from unified_params import wrap
    >>> net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4, data_format="NHWC"))
    >>> off_channels(wrap(net))
    {'1': 'the last axis of a channels-first map'}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .flatten import holds_channels_last
from .layouts import CHANNEL_NORMS

if TYPE_CHECKING:
    from .view import Module

#: What a normalisation that takes no map, or normalises its channels, is said to normalise.
CHANNELS = "the map's channels"
#: Kinds after which no map is held any more.
_MAP_ENDS = ("linear", "flatten", "embedding", "mha", "rnn", "lstm", "gru")


def off_channels(model: Module) -> dict[str, str]:
    """The channel normalisations of ``model`` (paths relative to it) built in
    the other layout than the convolution before them, each with the axis it
    normalises, in words."""
    out: dict[str, str] = {}
    last: bool | None = None  # whether the map last made runs channels last; None: no map
    cut = len(model.path) + 1 if model.path else 0
    for module in model.modules():
        kind = module.kind
        if kind.startswith("conv"):
            last = holds_channels_last(module)
        elif kind in _MAP_ENDS:
            last = None
        elif kind in CHANNEL_NORMS and last is not None and holds_channels_last(module) != last:
            out[module.path[cut:]] = (
                "the last axis of a channels-first map" if not last else "axis 1 of a channels-last map"
            )
    return out


def differences(found: tuple[dict[str, str], dict[str, str]], pa: str, pb: str) -> list[tuple[str, str, str]]:
    """``("normalised_axis", a's, b's)`` where paired normalisations at ``pa``
    and ``pb`` normalise other axes (``found``: `off_channels` of each model).

    Examples:
        >>> differences(({}, {"1": "the last axis of a channels-first map"}), "1", "1")[0][1:]
        ("the map's channels", 'the last axis of a channels-first map')
    """
    va, vb = found[0].get(pa, CHANNELS), found[1].get(pb, CHANNELS)
    return [] if va == vb else [("normalised_axis", va, vb)]
