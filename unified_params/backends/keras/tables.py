"""Keras' layouts, layer kinds and default initialisers, as data.

Keras stores Dense kernels ``(in, out)``, conv kernels channels-last
(``HWIO``), names BatchNorm variables ``gamma/beta/moving_mean/
moving_variance``, keeps recurrent variables on an inner ``cell`` layer, and
orders GRU gates ``z, r, h``.
"""

from __future__ import annotations

import keras

from ..._core.initializers import Initializer, Ones, Orthogonal, Uniform, UnitForgetBias, XavierUniform, Zeros
from ..._core.layouts import Leaf
from ..._core.state import Merge, Part
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
        L.MultiHeadAttention: "mha",
        L.BatchNormalization: "batchnorm",
        L.LayerNormalization: "layernorm",
        L.Embedding: "embedding",
        L.LSTM: "lstm",
        L.GRU: "gru",
        L.ReLU: "relu",
        L.Flatten: "flatten",
        keras.Sequential: "container",
        Functional: "container",
    }
)
_BIAS = Leaf("bias")
_KERNEL = {
    n: Leaf("weight", axes)
    for n, axes in {
        "linear": ("in", "out"),
        "conv1d": ("k0", "in", "out"),
        "conv2d": ("k0", "k1", "in", "out"),
        "conv3d": ("k0", "k1", "k2", "in", "out"),
    }.items()
}
_NORM = {"gamma": Leaf("weight"), "beta": Leaf("bias")}
_TRANSPOSED = {
    "conv_transpose1d": Leaf("weight", ("k0", "out", "in")),
    "conv_transpose2d": Leaf("weight", ("k0", "k1", "out", "in")),
}
# A depthwise kernel (kH, kW, C, M) is torch's grouped conv weight (C*M, 1, kH, kW).
_DEPTHWISE = Leaf("weight", ("k0", "k1", "in", "mult"), canonical_axes=(("in", "mult"), "1", "k0", "k1"))
# Attention projections: EinsumDense kernels (E, heads, head_dim) and (heads, head_dim, E).
_PROJECTION = Leaf("proj", ("in", "heads", "hd"), canonical_axes=(("heads", "hd"), "in"))
_PROJECTION_BIAS = Leaf("proj_bias", ("heads", "hd"), canonical_axes=(("heads", "hd"),))
_OUTPUT = Leaf("out", ("heads", "hd", "out"), canonical_axes=("out", ("heads", "hd")))
_DENSES = {"_query_dense": 0, "_key_dense": 1, "_value_dense": 2}


def _recurrent(gates: str | None) -> dict[str, Leaf]:
    return {
        "kernel": Leaf("weight_ih_l0", ("in", "gates"), gates),
        "recurrent_kernel": Leaf("weight_hh_l0", ("hidden", "gates"), gates),
        # One bias (= b_ih + b_hh) for LSTM; GRU with reset_after keeps both, stacked.
        "bias": Leaf("bias", {1: ("gates",), 2: ("stack", "gates")}, gates),
    }


_GLOROT: dict[str, Initializer] = {"weight": XavierUniform(), "bias": Zeros()}
_ONES_ZEROS: dict[str, Initializer] = {"weight": Ones(), "bias": Zeros()}
_BIASES = ("bias_ih_l0", "bias_hh_l0")

_RESET_AFTER = (
    "a Keras GRU without reset_after=True applies the reset gate before the recurrent kernel, "
    "which torch and Paddle GRUs cannot express. Expected reset_after=True."
)
MERGES = {"lstm": {"bias": Merge(_BIASES, "sum")}, "gru": {"bias": Merge(_BIASES, "stack", _RESET_AFTER)}}
GATHERS = {
    "mha": {
        **{f"{d}.kernel": Part("in_proj_weight", i, _PROJECTION) for d, i in _DENSES.items()},
        **{f"{d}.bias": Part("in_proj_bias", i, _PROJECTION_BIAS) for d, i in _DENSES.items()},
        "_output_dense.kernel": Part("out_proj.weight", 0, _OUTPUT),
        "_output_dense.bias": Part("out_proj.bias", 0),
    }
}
DEFAULT_INIT: dict[str, dict[str, Initializer]] = {
    **{kind: _GLOROT for kind in (*_KERNEL, *_TRANSPOSED)},
    "separable_conv2d": {
        "depthwise_weight": XavierUniform(),
        "pointwise_weight": XavierUniform(),
        "bias": Zeros(),
    },
    "batchnorm": _ONES_ZEROS,
    "layernorm": _ONES_ZEROS,
    "embedding": {"weight": Uniform(-0.05, 0.05)},
    "lstm": {"weight_ih": XavierUniform(), "weight_hh": Orthogonal(), "bias": UnitForgetBias()},
    "gru": {"weight_ih": XavierUniform(), "weight_hh": Orthogonal(), "bias": Zeros()},
}
LEAVES = {
    **{kind: {"kernel": leaf, "bias": _BIAS} for kind, leaf in _KERNEL.items()},
    **{kind: {"kernel": leaf, "bias": _BIAS} for kind, leaf in _TRANSPOSED.items()},
    "batchnorm": {**_NORM, "moving_mean": Leaf("running_mean"), "moving_variance": Leaf("running_var")},
    "layernorm": _NORM,
    "embedding": {"embeddings": Leaf("weight")},
    "conv2d": {"kernel": _KERNEL["conv2d"], "bias": _BIAS, "depthwise_kernel": _DEPTHWISE},
    "separable_conv2d": {
        "depthwise_kernel": Leaf(
            "depthwise_weight",
            ("k0", "k1", "in", "mult"),
            canonical_axes=(("in", "mult"), "1", "k0", "k1"),
        ),
        "pointwise_kernel": Leaf("pointwise_weight", ("k0", "k1", "in", "out")),
        "bias": _BIAS,
    },
    "lstm": _recurrent(None),
    "gru": _recurrent("zrn"),
}
