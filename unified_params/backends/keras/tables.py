"""Keras' layouts, layer kinds and default initialisers, as data.

Keras stores Dense kernels ``(in, out)``, conv kernels channels-last
(``HWIO``), names normalisation variables ``gamma/beta/moving_mean/
moving_variance``, keeps recurrent variables on an inner ``cell`` layer (one
bias for ``SimpleRNN`` and ``LSTM``), and orders GRU gates ``z, r, h``.
"""

from __future__ import annotations

import keras

from ..._core.initializers import Initializer, Ones, Orthogonal, Uniform, UnitForgetBias, XavierUniform, Zeros
from ..._core.state import Merge
from .. import _channels_last as channels_last
from .._base import KindTable
from .internals import Functional

L = keras.layers
KIND = KindTable(
    {
        L.Dense: "linear",
        L.Conv1D: "conv1d",
        L.Conv2D: "conv2d",
        L.Conv3D: "conv3d",
        L.DepthwiseConv2D: "conv2d",
        L.SeparableConv2D: "separable_conv2d",
        L.Conv1DTranspose: "conv_transpose1d",
        L.Conv2DTranspose: "conv_transpose2d",
        L.Conv3DTranspose: "conv_transpose3d",
        L.MultiHeadAttention: "mha",
        L.BatchNormalization: "batchnorm",
        L.LayerNormalization: "layernorm",
        L.GroupNormalization: "groupnorm",
        L.RMSNormalization: "rmsnorm",
        L.Embedding: "embedding",
        L.SimpleRNN: "rnn",
        L.LSTM: "lstm",
        L.GRU: "gru",
        L.ReLU: "relu",
        L.Flatten: "flatten",
        keras.Sequential: "container",
        Functional: "container",
    }
)
_KERNEL = channels_last.KERNELS
_TRANSPOSED = channels_last.TRANSPOSED


_GLOROT: dict[str, Initializer] = {"weight": XavierUniform(), "bias": Zeros()}
_ONES_ZEROS: dict[str, Initializer] = {"weight": Ones(), "bias": Zeros()}

_RESET_AFTER = (
    "a Keras GRU stacks its two biases, (2, 3H), only with reset_after=True (one built without "
    "is of another kind, gru_reset_before). Expected reset_after=True."
)
MERGES = {
    "rnn": {"bias": channels_last.SUMMED_BIAS},
    "lstm": {"bias": channels_last.SUMMED_BIAS},
    "gru": {"bias": Merge(channels_last.RECURRENT_BIASES, "stack", _RESET_AFTER)},
}
GATHERS = {"mha": channels_last.attention("_query_dense", "_key_dense", "_value_dense", "_output_dense")}
DEFAULT_INIT: dict[str, dict[str, Initializer]] = {
    **{kind: _GLOROT for kind in (*_KERNEL, *_TRANSPOSED)},
    # Keras counts fans on its own kernel: a depthwise one (kH, kW, C, M) has C inputs.
    "conv2d": {"weight": XavierUniform().counted("channels_last"), "bias": Zeros()},
    "separable_conv2d": {
        "depthwise_weight": XavierUniform(),
        "pointwise_weight": XavierUniform(),
        "bias": Zeros(),
    },
    "batchnorm": _ONES_ZEROS,
    "layernorm": _ONES_ZEROS,
    "groupnorm": _ONES_ZEROS,
    "rmsnorm": {"weight": Ones()},
    "embedding": {"weight": Uniform(-0.05, 0.05)},
    "rnn": {"weight_ih": XavierUniform(), "weight_hh": Orthogonal(), "bias": Zeros()},
    "lstm": {"weight_ih": XavierUniform(), "weight_hh": Orthogonal(), "bias": UnitForgetBias()},
    "gru": {"weight_ih": XavierUniform(), "weight_hh": Orthogonal(), "bias": Zeros()},
}

#: Functions that pool with a window, interpolate or pad, as a subclassed layer's
#: ``call`` calls them: ``keras.ops``' (``max_pool``, ``image.resize``, ``pad``), and on
#: TensorFlow ``tf.nn``'s and ``tf.image``'s.
WEIGHTLESS_FUNCTIONS = {
    "pooling": frozenset({
        "max_pool", "average_pool", "avg_pool", "pool", "max_pool1d", "max_pool2d", "max_pool3d",
        "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool_with_argmax", "fractional_max_pool",
        "fractional_avg_pool",
    }),
    "upsampling": frozenset({"resize"}),
    "padding": frozenset({"pad"}),
}  # fmt: skip
#: Top-level packages of the classes a Keras layer derives from on each engine.
FRAMEWORK_PACKAGES = ("keras", "tensorflow", "jax", "torch")
