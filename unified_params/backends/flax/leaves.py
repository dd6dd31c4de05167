"""Flax NNX's layouts as data, importable without Flax.

NNX keeps a Linear kernel ``(in, out)`` and convolution kernels channels-last
(``HWIO``, as every channels-last framework: `_channels_last`), names
normalisation variables ``scale``/``bias``/``mean``/``var`` and an embedding
table ``embedding``.
"""

from __future__ import annotations

from ..._core.layouts import Leaf
from .. import _channels_last as channels_last

_NORM = {"scale": Leaf("weight"), "bias": Leaf("bias")}
LEAVES = {
    **{kind: {"kernel": leaf, "bias": channels_last.BIAS} for kind, leaf in channels_last.KERNELS.items()},
    **{kind: {"kernel": leaf, "bias": channels_last.BIAS} for kind, leaf in channels_last.TRANSPOSED.items()},
    "batchnorm": {**_NORM, "mean": Leaf("running_mean"), "var": Leaf("running_var")},
    "layernorm": _NORM,
    "groupnorm": _NORM,
    "rmsnorm": {"scale": Leaf("weight")},
    "embedding": {"embedding": Leaf("weight")},
    # A SimpleCell's dense_i (with the bias) and dense_h (no bias): one block of gates.
    "rnn": channels_last.recurrent(None),
    # An OptimizedLSTMCell's dense_i (no bias) and dense_h, gates i, f, g, o: torch's order.
    "lstm": channels_last.recurrent(None),
}
#: An NNX ConvTranspose built with ``transpose_kernel=False`` (Flax's default)
#: keeps a ``(*k, in, out)`` kernel that it applies as a plain convolution
#: does: torch's weight, mirrored along every spatial axis.
MIRRORED = {
    f"conv_transpose{rank}d": {
        "kernel": Leaf("weight", (*(f"k{k}" for k in range(rank)), "in", "out"), mirrored=True),
        "bias": channels_last.BIAS,
    }
    for rank in (1, 2, 3)
}
