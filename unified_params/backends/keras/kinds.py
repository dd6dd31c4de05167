"""Keras layers whose settings make them compute what no layer of their class's
kind computes elsewhere: each is a kind of its own, kept in Keras' names, which
pairs with no torch, paddle or Flax layer (a port is refused by kind, never
silently wrong) and ports between Keras models as any layer does.

Examples:
    >>> import keras
    >>> gru = keras.layers.GRU(4, reset_after=False)
    >>> settled(gru, "gru"), settled(keras.layers.GRU(4), "gru")
    ('gru_reset_before', 'gru')
"""

from __future__ import annotations

from typing import Any

import keras

from . import graph, internals

L = keras.layers

#: The kind of a Keras GRU built with ``reset_after=False``: it applies the
#: reset gate before the recurrent kernel, which torch's and paddle's GRUs
#: cannot express, so it pairs with none of theirs and keeps Keras' names.
GRU_RESET_BEFORE = "gru_reset_before"
#: The kind of a Keras LayerNormalization over a map's positions and its
#: channels (axes ``[1, 2, 3]`` of an image): its scale and shift are laid out
#: as the map is, ``(H, W, C)`` channels last, or ``(C, H, W)`` after a
#: channels-first convolution, which the layer alone does not tell; so it
#: pairs with no torch or paddle LayerNorm and keeps Keras' names.
LAYERNORM_OVER_A_MAP = "layernorm_over_a_map"
#: The kind of a Keras LayerNormalization built with ``rms_scaling=True``
#: (deprecated in Keras 3.15.1, which warns that it divides by the variance,
#: not the root mean square): no other framework's norm computes it.
LAYERNORM_RMS_SCALING = "layernorm_rms_scaling"
#: The kind of a Keras BatchNormalization of an image or a volume over another
#: axis than the map's channels (``axis=1`` after a channels-last convolution:
#: one mean per row): no torch or paddle BatchNorm normalises so.
BATCHNORM_OVER_ANOTHER_AXIS = "batchnorm_over_another_axis"


def _over_channels(layer: Any) -> bool:
    """Whether a BatchNormalization of an image or a volume (an input of four
    axes or more) normalises over the map's channels: the last axis of a
    channels-last map, axis 1 of a channels-first one, as the graph says; a
    subclassed model records none, and there either may be the channels (a
    port compares the norm's layout with the convolution's before it:
    `unified_params._core.channel_axes`). Of fewer axes, as it always was."""
    shape = internals.built_input_shape(layer)
    if shape is None or len(shape) < 4:
        return True
    axis = int(layer.axis) % len(shape)
    found = graph.map_format(layer, None)
    if found is None:
        return axis in (1, len(shape) - 1)
    return axis == (1 if found == "channels_first" else len(shape) - 1)


def norm_layout(layer: Any) -> str | None:
    """``"channels_first"`` for a BatchNormalization or GroupNormalization of
    an image or a volume that takes axis 1 as the channels; else ``None``
    (the last axis, Keras' default)."""
    shape = internals.built_input_shape(layer)
    axis = layer.axis[0] if isinstance(layer.axis, (list, tuple)) and len(layer.axis) == 1 else layer.axis
    if shape is None or len(shape) < 4 or not isinstance(axis, int):
        return None
    return "channels_first" if axis % len(shape) == 1 else None


def _over_a_map(layer: Any) -> bool:
    """Whether a LayerNormalization normalises over several axes of a map that
    include its last: of an image or a volume (an input of four axes or
    more), or of three axes where the graph shows a map before it (a Conv1D's,
    laid out (L, C)), or shows nothing (a subclassed model records no graph:
    its input may be such a map); three axes with no map before them in the
    graph is a sequence, (T, C) as torch's."""
    shape = internals.built_input_shape(layer)
    if shape is None or len(shape) < 3:
        return False
    axes = {
        int(a) % len(shape) for a in (layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis])
    }
    if len(axes) < 2 or len(shape) - 1 not in axes:
        return False
    if len(shape) >= 4 or not internals.inbound_nodes(layer):
        return True
    return graph.map_format(layer, None) is not None


#: Why each kind of Keras' own pairs with no other framework's layer (the
#: adapter's ``KIND_NOTES``).
NOTES = {
    GRU_RESET_BEFORE: (
        "a Keras GRU built with reset_after=False applies its reset gate before the recurrent kernel, "
        "which torch's and paddle's GRUs cannot"
    ),
    LAYERNORM_OVER_A_MAP: (
        "a Keras LayerNormalization over several axes of a map keeps its scale and shift laid out as "
        "the map is, channels last or first, and of three axes (a Conv1D's (L, C) or a sequence's "
        "(T, C)) only the graph of a functional model tells which; a subclassed one records none"
    ),
    LAYERNORM_RMS_SCALING: (
        "a Keras LayerNormalization built with rms_scaling=True divides by the variance, which no other "
        "framework's norm does"
    ),
    BATCHNORM_OVER_ANOTHER_AXIS: (
        "a Keras BatchNormalization over another axis than a map's channels keeps one mean per row or "
        "column, which no torch or paddle BatchNorm does; the graph of a functional model says where "
        "the channels are"
    ),
}

#: The classes whose kind their settings decide (the adapter's ``INSTANCE_KINDS``).
SETTLED = (L.GRU, L.LayerNormalization, L.BatchNormalization)


def settled(layer: Any, kind: str) -> str:
    """The kind of ``layer``, whose class's kind is ``kind``, given its settings."""
    if kind == "gru" and not layer.reset_after:
        return GRU_RESET_BEFORE  # not torch's arithmetic
    if kind == "batchnorm" and not _over_channels(layer):
        return BATCHNORM_OVER_ANOTHER_AXIS  # per row or column of a map
    if kind == "layernorm" and layer.rms_scaling:
        return LAYERNORM_RMS_SCALING  # neither a LayerNorm nor an RMSNorm elsewhere
    if kind == "layernorm" and _over_a_map(layer):
        return LAYERNORM_OVER_A_MAP  # scale and shift of an unknown canonical order
    return kind
