"""What a Keras model's graph records: the features a Dense layer takes,
what feeds a convolution, and where a layer's outputs go.

A functional model, and a Sequential once built, keep the graph of their
layers (every call of a layer is a node with its input tensors' shapes). A
Dense fed by a Flatten of a ``(H, W, C)`` map, through layers that keep
shapes (Dropout, Activation), takes ``H*W*C`` features in ``(H, W, C)``
order; the core reorders them to torch's ``(C, H, W)`` in the weight's
canonical layout (`unified_params._core.flatten`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

from ..._core import activations
from ..._core.flatten import FlatInput
from .._base import runs_its_own
from . import internals, tables

L = keras.layers
#: Layers after which features are no spatial map: a model input, new
#: features, a pooling over all positions.
_NO_MAP = (
    L.InputLayer,
    L.Dense,
    L.Embedding,
    L.GlobalAveragePooling1D,
    L.GlobalAveragePooling2D,
    L.GlobalAveragePooling3D,
    L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D,
    L.GlobalMaxPooling3D,
)
#: How far back a trace looks for the layer that set a map's data format.
_LIMIT = 10_000


def flattened_input(layer: Any) -> FlatInput | None:
    """The features ``layer`` takes at every node of the graph, if the graph
    says and every node agrees; ``None`` otherwise.

    Examples:
        >>> model = keras.Sequential([keras.Input((4, 4, 3)), L.Flatten(), L.Dense(2)])
        >>> flattened_input(model.layers[-1])
        FlatInput(channels=3, positions=16, channels_last=True)
    """
    # A node whose features are unknown is left by a build that failed (a Sequential
    # traced before its spatial size was known): no Dense was built on it.
    found = {_traced(node) for node in internals.inbound_nodes(layer) if _features(node) is not None}
    return found.pop() if len(found) == 1 else None


def _features(node: Any) -> int | None:
    tensors = node.input_tensors
    features = tensors[0].shape[-1] if len(tensors) == 1 and tensors[0].shape else None
    return features if isinstance(features, int) else None


def _traced(node: Any) -> FlatInput | None:
    shape = tuple(node.input_tensors[0].shape)
    features = shape[-1]
    if len(shape) != 2:
        return FlatInput(features, 1, True)  # a Dense over the last axis of a map: per position
    parents = node.parent_nodes
    while len(parents) == 1:
        parent = parents[0]
        op = parent.operation
        if isinstance(op, (L.Flatten, L.Reshape)):
            return _flattened(parent, op, features)
        if isinstance(op, _NO_MAP):
            return FlatInput(features, 1, True)
        if not _keeps_shape(parent):
            return None
        parents = parent.parent_nodes
    return None


def unflattened_output(layer: Any) -> FlatInput | None:
    """The map ``layer``'s features become, where the graph records it: a
    Reshape of them into ``(*spatial, C)`` that a layer holding maps channels
    last takes (a generator's Dense, or a BatchNormalization of its features,
    before a transposed convolution), as ``C`` channels at the other axes'
    positions; one position of all its features where they stay a vector or a
    sequence; ``None`` where the graph does not say (never called in one, its
    calls disagree, or a layer with weights comes before any reshape).

    Examples:
        >>> model = keras.Sequential([keras.Input((8,)), L.Dense(36), L.Reshape((3, 3, 4)), L.Conv2D(2, 3)])
        >>> unflattened_output(model.layers[0])
        FlatInput(channels=4, positions=9, channels_last=True)
    """
    calls = internals.inbound_nodes(layer)
    outputs = [tuple(node.output_tensors[0].shape) for node in calls if len(node.output_tensors) == 1]
    if not calls or len(outputs) != len(calls) or any(len(shape) != 2 for shape in outputs):
        return None  # never called in a graph, several outputs, or not a vector of features
    features = outputs[0][-1]
    if not isinstance(features, int):
        return None
    found = {_reshaped(node, features) for node in internals.outbound_nodes(layer)}
    return FlatInput(features, 1, True) if not found else found.pop() if len(found) == 1 else None


def _reshaped(node: Any, features: int) -> FlatInput | None:
    """What the consumer at ``node`` makes of a vector of ``features``: a map
    where it reshapes them into one a layer holding maps takes (past layers
    without weights that keep shapes), else one position of all of them."""
    for _ in range(_LIMIT):
        op = node.operation
        if isinstance(op, L.Reshape):
            dims = tuple(node.output_tensors[0].shape)[1:]
            if len(dims) < 2 or not all(isinstance(d, int) for d in dims) or math.prod(dims) != features:
                return FlatInput(features, 1, True)
            data_format = _taken_as(node)
            if data_format == "channels_last":
                return FlatInput(dims[-1], math.prod(dims[:-1]), True)
            if data_format == "channels_first":
                return FlatInput(dims[0], math.prod(dims[1:]), False)
            return FlatInput(features, 1, True)  # a sequence (T, F), ordered as torch's
        if not _keeps_order(node):
            return FlatInput(features, 1, True)  # new features, or a layer of its own
        after = internals.outbound_nodes(op)
        if len(after) != 1:
            return None
        node = after[0]
    return None


def _taken_as(node: Any) -> str | None:
    """The data format of the first layer that takes the output of ``node``
    (past layers without weights that keep shapes), if it has one."""
    for _ in range(_LIMIT):
        after = internals.outbound_nodes(node.operation)
        if len(after) != 1:
            return None
        node = after[0]
        data_format = getattr(node.operation, "data_format", None)
        if data_format in ("channels_last", "channels_first"):
            return str(data_format)
        if not _keeps_order(node):
            return None
    return None


def _keeps_order(node: Any) -> bool:
    """A step whose outputs are its inputs' features where they were: one
    without weights that keeps shapes, or a normalisation."""
    return _keeps_shape(node) or isinstance(node.operation, _PER_FEATURE) and _keeps_shape(node, weights=True)


#: Layers whose weights act per feature, each output feature where its input was.
_PER_FEATURE = (L.BatchNormalization, L.LayerNormalization)


def _keeps_shape(node: Any, weights: bool = False) -> bool:
    """A step with no weights (or, with ``weights``, any) whose one output has
    its one input's shape."""
    op = node.operation
    tensors = node.input_tensors, node.output_tensors
    if (not weights and getattr(op, "weights", None)) or any(len(t) != 1 for t in tensors):
        return False
    return tuple(tensors[0][0].shape) == tuple(tensors[1][0].shape)


def _flattened(node: Any, op: Any, features: int) -> FlatInput | None:
    dims = tuple(node.input_tensors[0].shape)[1:]
    if len(dims) < 2:
        return FlatInput(features, 1, True)  # a vector: no map
    if not all(isinstance(d, int) for d in dims) or math.prod(dims) != features:
        return None
    flat_first = isinstance(op, L.Flatten) and op.data_format == "channels_first"
    if _data_format(node) == "channels_last":
        # A Flatten marked channels_first moves a channels-last map's first spatial axis last.
        return None if flat_first else FlatInput(dims[-1], math.prod(dims[:-1]), True)
    # A channels-first map: a channels_first Flatten moves channels last first.
    return FlatInput(dims[0], math.prod(dims[1:]), flat_first)


def map_format(layer: Any, default: str | None = "") -> str | None:
    """The data format of the map ``layer`` takes, as the graph shows it (the
    nearest layer before it that has one), else ``default`` (Keras' own
    default when not given; ``None``: a sequence or a vector, as far as the
    graph shows).

    Examples:
        >>> inputs = keras.Input((3, 6, 6))
        >>> norm = L.BatchNormalization(axis=1)
        >>> _ = norm(L.Conv2D(4, 3, data_format="channels_first")(inputs))
        >>> map_format(norm), map_format(L.BatchNormalization()), map_format(L.Dense(2), None)
        ('channels_first', 'channels_last', None)
    """
    nodes = internals.inbound_nodes(layer)
    found = _data_format(nodes[0], None) if nodes else None
    if found is not None:
        return found
    return keras.config.image_data_format() if default == "" else default


def _data_format(node: Any, default: str | None = "") -> str | None:
    """The data format of the map a node takes: that of the nearest layer
    before it that has one (a convolution, a pooling), else ``default``
    (Keras' own default when not given)."""
    for _ in range(_LIMIT):
        parents = node.parent_nodes
        if not parents:
            break
        node = parents[0]
        data_format = getattr(node.operation, "data_format", None)
        if data_format in ("channels_last", "channels_first"):
            return data_format
    return keras.config.image_data_format() if default == "" else default


#: Layers that pad a map with zeros, ``padding`` holding ``(before, after)`` per axis.
_ZERO_PADS = (L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D)


def convolution_input(
    layer: Any, axes: int, holders: Sequence[Any] = ()
) -> tuple[tuple[int | None, ...], tuple[tuple[int, int], ...]] | None:
    """The size of each spatial axis of the map a convolution (or a pooling
    layer) takes, and the zeros ``ZeroPadding`` layers just before it add,
    ``(before, after)`` per axis, if every call of the layer in the graph
    agrees; ``None`` otherwise (never called in a graph, or called on other
    maps). ``holders``: the models holding the layer, the root first; where
    the layer takes its model's input, the padding layers before that
    model's call in the one holding it count too.

    Examples:
        >>> inputs = keras.Input((9, 9, 3))
        >>> conv = L.Conv2D(4, 3, strides=2)
        >>> model = keras.Model(inputs, conv(L.ZeroPadding2D(((0, 1), (0, 1)))(inputs)))
        >>> convolution_input(conv, 2)
        ((10, 10), ((0, 1), (0, 1)))
        >>> nested = L.Conv2D(4, 3, strides=2)
        >>> inner = keras.Sequential([nested])
        >>> outer = keras.Sequential([keras.Input((9, 9, 3)), L.ZeroPadding2D(1), inner])
        >>> convolution_input(nested, 2, [outer, inner])
        ((11, 11), ((1, 1), (1, 1)))
    """
    found = set()
    for node in internals.inbound_nodes(layer):
        tensors = node.input_tensors
        if len(tensors) != 1 or len(tensors[0].shape) != axes + 2:
            return None
        shape = tuple(tensors[0].shape)
        first = getattr(layer, "data_format", "channels_last") == "channels_first"
        sizes = shape[2:] if first else shape[1:-1]
        for paddings in _paddings_before(node, holders):
            before = [(0, 0)] * axes
            for padding in paddings:
                pads = _pairs(padding.padding)
                if len(pads) != axes:
                    break
                before = [(lo + a, hi + b) for (lo, hi), (a, b) in zip(before, pads, strict=True)]
            found.add((sizes, tuple(before)))
    return found.pop() if len(found) == 1 else None


def _paddings_before(node: Any, holders: Sequence[Any]) -> list[list[Any]]:
    """The ``ZeroPadding`` layers just before a call, nearest first: one list
    per call of the model holding it where the call takes that model's input
    (a nested model is one step of the graph holding it)."""
    pads, parents = _zero_padding_before(node)
    if holders and len(parents) == 1 and _is_input_of(parents[0], holders[-1]):
        calls = internals.inbound_nodes(holders[-1])
        if calls:
            return [pads + outer for call in calls for outer in _paddings_before(call, holders[:-1])]
    return [pads]


def _is_input_of(node: Any, model: Any) -> bool:
    """Whether ``node`` is the input layer of ``model`` (a functional or Sequential model)."""
    if not isinstance(node.operation, L.InputLayer) or not isinstance(model, keras.Model):
        return False
    made = node.output_tensors
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):  # a model with no graph
        return False
    return len(made) == 1 and any(tensor is made[0] for tensor in inputs or ())


def input_activation(layer: Any, names: dict[str, str]) -> str | None:
    """The activation ``layer``'s input last went through, ``ZeroPadding``
    layers before it passed over: an activation layer's, or the fused one of
    the layer that made it, by ``names``; ``None`` where the graph does not
    show one (a layer called more than once, an unnamed activation).

    Examples:
        >>> inputs = keras.Input((8, 8, 3))
        >>> pool = L.MaxPooling2D(3)
        >>> model = keras.Model(inputs, pool(L.ZeroPadding2D(1)(L.Conv2D(4, 1, activation="relu")(inputs))))
        >>> input_activation(pool, {"relu": "relu"})
        'relu'
    """
    calls = internals.inbound_nodes(layer)
    if len(calls) != 1:
        return None
    parents = _zero_padding_before(calls[0])[1]
    if len(parents) != 1:
        return None
    made_by = parents[0].operation
    found = _activation(made_by, names, channels_are_last(made_by))
    if found == "none":  # not an activation layer: the one it fuses, if any
        fused = names.get(getattr(getattr(made_by, "activation", None), "__name__", ""))
        return over_channels(fused, channels_are_last(made_by))
    return found or None


def _zero_padding_before(node: Any) -> tuple[list[Any], list[Any]]:
    """The ``ZeroPadding`` layers a call's input went through just before it,
    nearest first, and the parent nodes past them."""
    pads, parents = [], node.parent_nodes
    while len(parents) == 1 and isinstance(parents[0].operation, _ZERO_PADS):
        pads.append(parents[0].operation)
        parents = parents[0].parent_nodes
    return pads, parents


def _pairs(padding: Any) -> tuple[tuple[int, int], ...]:
    """``ZeroPadding1D``'s ``(before, after)``, or the pair per axis of the others."""
    if isinstance(padding[0], int):
        return ((int(padding[0]), int(padding[1])),)
    return tuple((int(lo), int(hi)) for lo, hi in padding)


#: Layers that pass their input on at inference.
_PASSING = (L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianDropout,
            L.GaussianNoise, L.AlphaDropout, L.Identity)  # fmt: skip


def activations_after(root: Any, layer: Any, names: dict[str, str]) -> list[str] | None:
    """The activations the graph applies to ``layer``'s output, in order,
    before anything else takes it, by ``names`` (a function's ``__name__`` ->
    its name); ``None`` where the graph cannot tell (no graph, a layer called
    more than once, an activation not in ``names``, an output taken by an
    activation and another layer).

    Examples:
        >>> inputs = keras.Input((3,))
        >>> dense = L.Dense(4)
        >>> model = keras.Model(inputs, L.Activation("sigmoid")(L.ReLU()(L.Dropout(0.5)(dense(inputs)))))
        >>> names = {"sigmoid": "sigmoid"}
        >>> activations_after(model, dense, names), activations_after(model, model.layers[-1], names)
        (['relu', 'sigmoid'], [])
    """
    channels_last = channels_are_last(layer)
    found: list[str] = []
    for _ in range(_LIMIT):
        taken = consumers(root, layer)
        if not taken or len(internals.inbound_nodes(layer)) != 1:
            return None
        if len(taken) != 1 or taken[0] is root:
            others = [t for t in taken if t is not root]
            return None if any(_activation(t, names, channels_last) != "none" for t in others) else found
        step = _activation(taken[0], names, channels_last)
        if step is None or step == "none":
            return None if step is None else found
        if step:  # "": a layer that passes its input on
            found.append(step)
        elif isinstance(taken[0], _RESHAPES):
            channels_last = False  # its axes are no longer the layer's: no softmax or norm over channels
        layer = taken[0]
    return None


def channels_are_last(layer: Any) -> bool:
    """Whether ``layer``'s output keeps its channels (a dense layer's
    features) on its last axis: Keras' default ``data_format``."""
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def over_channels(name: str | None, channels_last: bool) -> str | None:
    """``name``, or ``None`` for a softmax of Keras' (over the last axis)
    that does not run over the channels."""
    return None if name in activations.OVER_AN_AXIS and not channels_last else name


def _activation(layer: Any, names: dict[str, str], channels_last: bool = True) -> str | None:
    """An activation layer's name (or a normalisation's without weights),
    ``""`` for a layer that passes its input on or only reshapes it,
    ``"none"`` for a layer that ends the reading (Keras' layers with weights,
    poolings, paddings, upsamplings, merges), ``None`` for any other (an
    activation not named, a layer that may change the values);
    ``channels_last``: whether the output it takes keeps its channels last."""
    if isinstance(layer, _PASSING):
        return ""
    if isinstance(layer, L.Activation):
        return over_channels(names.get(getattr(layer.activation, "__name__", "")), channels_last)
    if isinstance(layer, L.ReLU):
        if layer.threshold:
            return None
        if layer.negative_slope:
            return (
                activations.named("leaky_relu", negative_slope=layer.negative_slope)
                if layer.max_value is None
                else None
            )
        return {None: "relu", 6.0: "relu6"}.get(layer.max_value)
    if isinstance(layer, L.LeakyReLU):
        return activations.named("leaky_relu", negative_slope=layer.negative_slope)
    if isinstance(layer, L.ELU):
        return activations.named("elu", alpha=layer.alpha)
    if isinstance(layer, L.Softmax):
        axis = layer.axis if isinstance(layer.axis, int) else tuple(layer.axis)
        return "softmax" if channels_last and axis in (-1, (-1,)) else None
    if isinstance(layer, L.PReLU):
        return None
    if isinstance(layer, _NORMS) and not layer.weights:  # a normalisation without weights
        return _normalization(layer, channels_last)
    if isinstance(layer, _RESHAPES):
        return ""  # the values kept
    if type(layer) in _ENDS:
        return "none"
    if not isinstance(layer, L.Layer):  # an operation a functional model records (``x + 3.0``)
        return None
    if layer.weights and not isinstance(layer, keras.Model):  # the next layer with weights, if Keras'
        listed = tables.KIND.listed(type(layer))
        return "none" if listed is not None and not runs_its_own(layer, (listed,), "call") else None
    return None  # a model inside (its first layer unknown here), or a layer that may change the values


_RESHAPES = (L.Flatten, L.Reshape)
#: Layers without weights after which no activation is sought (poolings,
#: paddings, croppings, upsamplings, merges), by exact class.
_ENDS = frozenset(
    {
        L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D,
        L.AveragePooling3D, L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
        L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.ZeroPadding1D, L.ZeroPadding2D,
        L.ZeroPadding3D, L.Cropping1D, L.Cropping2D, L.Cropping3D, L.UpSampling1D, L.UpSampling2D,
        L.UpSampling3D, L.Add, L.Concatenate, L.Multiply, L.Subtract, L.Average, L.Maximum, L.Minimum, L.Dot,
    }
)  # fmt: skip
_NORMS = (L.LayerNormalization, L.GroupNormalization, L.UnitNormalization, L.BatchNormalization)


def _normalization(layer: Any, channels_last: bool) -> str | None:
    """A normalisation without weights, as `activations.normalized` names it."""
    axis = layer.axis if isinstance(layer.axis, int) else tuple(layer.axis)
    if axis not in (-1, (-1,)) or getattr(layer, "rms_scaling", False):
        return None
    if isinstance(layer, L.LayerNormalization):
        return activations.normalized(None, -1, layer.epsilon, channels_last=channels_last)
    if isinstance(layer, L.GroupNormalization):  # built: groups=-1 is the number of channels
        try:
            channels = layer.input.shape[-1]
        except (AttributeError, ValueError):  # called more than once, or never
            channels = None
        return activations.normalized(
            None, -1, layer.epsilon, layer.groups, channels, channels_last=channels_last
        )
    return None  # a unit norm (no layer elsewhere), a batch norm by the batch's statistics


def consumers(root: Any, layer: Any) -> list[Any] | None:
    """The layers that take ``layer``'s outputs in the graph, in the order of
    their calls, with ``root`` itself where an output of ``layer`` is one of
    the model's; ``None`` when ``layer`` was never called in a graph.

    Examples:
        >>> conv, norm = L.Conv2D(4, 3), L.BatchNormalization()
        >>> inputs = keras.Input((8, 8, 3))
        >>> model = keras.Model(inputs, norm(conv(inputs)))
        >>> consumers(model, conv) == [norm], consumers(model, norm) == [model]
        (True, True)
    """
    calls = internals.inbound_nodes(layer)
    if not calls:
        return None
    found = [node.operation for node in internals.outbound_nodes(layer)]
    made = [t for node in calls for t in node.output_tensors]
    try:
        outputs = list(root.outputs or ())  # a functional model's, or a built Sequential's
    except (AttributeError, ValueError):  # a subclassed model keeps none
        outputs = []
    if any(out is t for out in outputs for t in made):
        found.append(root)
    return found
