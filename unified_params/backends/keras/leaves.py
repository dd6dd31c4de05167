"""Keras' layouts as data, importable without Keras.

Keras keeps a Dense kernel ``(in, out)`` and convolution kernels
channels-last (``HWIO``, as every channels-last framework: `_channels_last`),
a depthwise kernel ``(kH, kW, C, M)``, and names normalisation variables
``gamma``/``beta``/``moving_mean``/``moving_variance``.
"""

from __future__ import annotations

from ..._core.layouts import Leaf
from .. import _channels_last as channels_last

_BIAS = channels_last.BIAS
_KERNEL = channels_last.KERNELS
_TRANSPOSED = channels_last.TRANSPOSED
_NORM = {"gamma": Leaf("weight"), "beta": Leaf("bias")}
# A depthwise kernel (kH, kW, C, M) is torch's grouped conv weight (C*M, 1, kH, kW).
_DEPTHWISE = Leaf("weight", ("k0", "k1", "in", "mult"), canonical_axes=(("in", "mult"), "1", "k0", "k1"))

LEAVES = {
    **{kind: {"kernel": leaf, "bias": _BIAS} for kind, leaf in _KERNEL.items()},
    **{kind: {"kernel": leaf, "bias": _BIAS} for kind, leaf in _TRANSPOSED.items()},
    "batchnorm": {**_NORM, "moving_mean": Leaf("running_mean"), "moving_variance": Leaf("running_var")},
    "layernorm": _NORM,
    "groupnorm": _NORM,
    "rmsnorm": {"scale": Leaf("weight")},
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
    "rnn": channels_last.recurrent(None),
    "lstm": channels_last.recurrent(None),
    "gru": channels_last.recurrent("zrn"),
}
