"""Paddle's layouts as data, importable without paddle.

Paddle keeps a Linear's weight ``(in, out)`` and names a BatchNorm's
statistics ``_mean`` and ``_variance``; everything else it lays out as torch.
"""

from __future__ import annotations

from ..._core.layouts import Leaf

LEAVES = {
    "linear": {"weight": Leaf("weight", ("in", "out")), "bias": Leaf("bias")},
    "batchnorm": {
        "weight": Leaf("weight"),
        "bias": Leaf("bias"),
        "_mean": Leaf("running_mean"),
        "_variance": Leaf("running_var"),
    },
}
