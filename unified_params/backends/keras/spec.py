"""Building `unified_params.spec` layers as Keras layers, already built."""

from __future__ import annotations

from typing import Any

import keras

from ... import spec as S
from ..._core.errors import UnsupportedError, received
from . import internals
from .adapter import declare_keys


class KerasSpec:
    """`unified_params.backends._base.SpecBuilder` for Keras: every layer is
    built as it is made, so its variables exist; named children keep their
    names as the layers' own."""

    def layer(self, s: S.Layer, name: str | None) -> Any:
        layers = keras.layers
        kw = {"name": name} if name else {}  # a named child keeps its name as the layer's
        if isinstance(s, S.Linear):
            return _built(layers.Dense(s.out_features, use_bias=s.bias, **kw), (None, s.in_features))
        if isinstance(s, S.Conv2d):
            if s.padding not in (0, "same", "valid"):
                raise UnsupportedError(
                    "Keras Conv2D has no numeric padding. Expected padding=0 or 'same'. "
                    + received(padding=s.padding)
                )
            padding = "same" if s.padding == "same" else "valid"
            if s.groups > 1 and s.groups == s.in_channels:
                conv = layers.DepthwiseConv2D(
                    s.kernel_size,
                    strides=s.stride,
                    padding=padding,
                    use_bias=s.bias,
                    depth_multiplier=s.out_channels // s.in_channels,
                    **kw,
                )
            else:
                conv = layers.Conv2D(
                    s.out_channels,
                    s.kernel_size,
                    strides=s.stride,
                    padding=padding,
                    use_bias=s.bias,
                    groups=s.groups,
                    **kw,
                )
            return _built(conv, (None, None, None, s.in_channels))
        if isinstance(s, (S.Conv1d, S.Conv3d, S.ConvTranspose1d, S.ConvTranspose2d, S.ConvTranspose3d)):
            cls = {
                S.Conv1d: layers.Conv1D, S.Conv3d: layers.Conv3D, S.ConvTranspose1d: layers.Conv1DTranspose,
                S.ConvTranspose2d: layers.Conv2DTranspose, S.ConvTranspose3d: layers.Conv3DTranspose,
            }[type(s)]  # fmt: skip
            spatial = (None,) * s.SPATIAL
            return _built(
                cls(s.out_channels, s.kernel_size, strides=s.stride, **kw), (None, *spatial, s.in_channels)
            )
        if isinstance(s, S.MultiheadAttention):
            attention = layers.MultiHeadAttention(
                s.num_heads, s.embed_dim // s.num_heads, use_bias=s.bias, **kw
            )
            shape = (None, None, s.embed_dim)
            attention.build(shape, shape)
            return attention
        if isinstance(s, S.BatchNorm2d):
            bn = layers.BatchNormalization(
                axis=-1, epsilon=s.eps, momentum=1 - s.momentum, center=s.affine, scale=s.affine, **kw
            )
            return _built(bn, (None, None, None, s.num_features))
        if isinstance(s, S.LayerNorm):
            return _built(layers.LayerNormalization(axis=-1, epsilon=s.eps, **kw), (None, s.normalized_shape))
        if isinstance(s, S.RMSNorm):
            norm = layers.RMSNormalization(axis=-1, epsilon=s.epsilon(), **kw)
            return _built(norm, (None, s.normalized_shape))
        if isinstance(s, S.GroupNorm):
            norm = layers.GroupNormalization(s.num_groups, axis=-1, epsilon=s.eps, **kw)
            return _built(norm, (None, None, None, s.num_channels))
        if isinstance(s, S.Embedding):
            return _built(layers.Embedding(s.num_embeddings, s.embedding_dim, **kw), (None,))
        if isinstance(s, S.RNN):
            rnn = layers.SimpleRNN(s.hidden_size, activation=s.nonlinearity, return_sequences=True, **kw)
            return _built(rnn, (None, None, s.input_size))
        if isinstance(s, S.LSTM):
            return _built(layers.LSTM(s.hidden_size, return_sequences=True, **kw), (None, None, s.input_size))
        if isinstance(s, S.GRU):
            gru = layers.GRU(s.hidden_size, return_sequences=True, reset_after=True, **kw)
            return _built(gru, (None, None, s.input_size))
        return S.plain_layer(s, "keras", lambda: layers.ReLU(**kw), lambda: layers.Flatten(**kw))

    def sequential(self, children: list[Any], keys: list[str] | None, name: str | None) -> Any:
        model = keras.Sequential(children, **({"name": name} if name else {}))
        if keys is not None:
            declare_keys(model, keys)
        return model

    def finish(self, native: Any, spec: S.Layer, input_shape: tuple[int | None, ...] | None) -> None:
        if isinstance(spec, S.Sequential):
            shape = _keras_input_shape(spec, input_shape)
            if shape is not None:
                _build_keras_sequential(native, shape)


def _build_keras_sequential(model: Any, shape: tuple[int | None, ...]) -> None:
    """Build the Keras Sequential itself (its layers are built already).

    A chain Keras cannot trace symbolically (say, a Flatten before a Dense with
    unknown spatial size, or one deeper than Keras' recursive graph walk
    allows) stays an unbuilt Sequential of built layers: every variable
    exists, and Keras builds the container on its first call.
    """
    try:
        model.build((None, *shape))
    except (ValueError, RecursionError):
        internals.unbuild(model)


def _keras_input_shape(
    model: S.Sequential, given: tuple[int | None, ...] | None
) -> tuple[int | None, ...] | None:
    """The Keras (channels-last) input shape of a spec model, if known."""
    shape = given if given is not None else model.input_shape()
    if shape is None:
        return None
    if len(shape) >= 2 and S.first_leaf(model).__class__ in (
        S.Conv2d,
        S.BatchNorm2d,
        S.GroupNorm,
        S.ConvTranspose1d,
        S.ConvTranspose2d,
        S.ConvTranspose3d,
    ):
        return (*shape[1:], shape[0])  # channels last
    return tuple(shape)


def _built(layer: Any, input_shape: tuple[Any, ...]) -> Any:
    layer.build(input_shape)
    return layer


SPEC = KerasSpec()
