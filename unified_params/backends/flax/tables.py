"""Flax NNX's layouts, layer kinds and default initialisers, as data.

NNX stores a Linear kernel ``(in, out)`` and convolution kernels channels-last
(``HWIO``, grouped ones ``(*kernel, in / groups, out)``), like Keras; names
normalisation variables ``scale``/``bias``/``mean``/``var`` and an embedding
table ``embedding``; keeps attention projections as ``LinearGeneral`` einsum
kernels. Its initialisers: LeCun normal kernels, zero biases, embeddings
``N(0, 1 / features)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from flax import nnx

from ..._core.initializers import Initializer, KaimingNormal, LecunNormal, Ones, Orthogonal, Zeros
from .. import _channels_last as channels_last
from .._base import KindTable
from .layers import NamedSequential, flatten

#: Layer kinds by class; convolutions and RNNs get theirs from the layer (the adapter's `kind`).
KIND = KindTable(
    {
        nnx.Linear: "linear",
        nnx.Conv: "conv",
        nnx.ConvTranspose: "conv_transpose",
        nnx.MultiHeadAttention: "mha",
        nnx.BatchNorm: "batchnorm",
        nnx.LayerNorm: "layernorm",
        nnx.GroupNorm: "groupnorm",
        nnx.RMSNorm: "rmsnorm",
        nnx.Embed: "embedding",
        nnx.RNN: "rnn",
        nnx.Sequential: "container",
        NamedSequential: "container",
        nnx.List: "container",
        nnx.Dict: "container",
    }
)
#: Functions a Sequential may hold at a position, by identity: their kind and the
#: name of the layer they stand for.
FUNCTIONS = {id(nnx.relu): ("relu", "ReLU"), id(flatten): ("flatten", "Flatten")}

#: The order NNX's own layers create their variables in (the kernel before the
#: bias): how the variables of a layer of no declared kind are listed.
LEAF_ORDER = ("kernel", "embedding", "scale", "bias", "mean", "var")


class Cell(NamedTuple):
    """A recurrent cell whose layout is declared: the kind of the RNN holding
    it, and where it keeps each variable (its dense sublayer and attribute),
    under the name the layer shows it by."""

    kind: str
    slots: Mapping[str, tuple[str, str]]


CELLS: Mapping[type, Cell] = {
    nnx.SimpleCell: Cell(
        "rnn",
        {
            "kernel": ("dense_i", "kernel"),
            "recurrent_kernel": ("dense_h", "kernel"),
            "bias": ("dense_i", "bias"),
        },
    ),
    nnx.OptimizedLSTMCell: Cell(
        "lstm",
        {
            "kernel": ("dense_i", "kernel"),
            "recurrent_kernel": ("dense_h", "kernel"),
            "bias": ("dense_h", "bias"),
        },
    ),
}
#: A cell's functions, by the name torch's convention gives them.
CELL_FUNCTIONS = {"activation": "activation_fn", "recurrent_activation": "gate_fn"}
MERGES = {kind: {"bias": channels_last.SUMMED_BIAS} for kind in ("rnn", "lstm")}
GATHERS = {"mha": channels_last.attention("query", "key", "value", "out")}

_LECUN: dict[str, Initializer] = {"weight": LecunNormal(), "bias": Zeros()}
_ONES_ZEROS: dict[str, Initializer] = {"weight": Ones(), "bias": Zeros()}
DEFAULT_INIT: dict[str, dict[str, Initializer]] = {
    **{kind: _LECUN for kind in (*channels_last.KERNELS, *channels_last.TRANSPOSED)},
    "batchnorm": _ONES_ZEROS,
    "layernorm": _ONES_ZEROS,
    "groupnorm": _ONES_ZEROS,
    "rmsnorm": {"weight": Ones()},
    # variance_scaling(1, "fan_in", "normal", out_axis=0) over (rows, features): N(0, 1 / features).
    "embedding": {"weight": KaimingNormal(nonlinearity="linear")},
    "mha": {"in_proj_weight": LecunNormal(), "in_proj_bias": Zeros()},
    **{
        kind: {"weight_ih": LecunNormal(), "weight_hh": Orthogonal(), "bias": Zeros()}
        for kind in ("rnn", "lstm")
    },
}

#: Functions that pool with a window, interpolate or pad, as an NNX module's
#: ``__call__`` calls them (``nnx.max_pool``, ``jax.image.resize``, ``jnp.pad``): NNX
#: has no pooling layer.
WEIGHTLESS_FUNCTIONS = {
    "pooling": frozenset({"max_pool", "avg_pool", "min_pool", "pool", "reduce_window"}),
    "upsampling": frozenset({"resize", "scale_and_translate"}),
    "padding": frozenset({"pad"}),
}
#: Top-level packages of the classes an NNX layer derives from.
FRAMEWORK_PACKAGES = ("flax", "jax")
