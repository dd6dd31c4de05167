"""Flax NNX's layouts, layer kinds and default initialisers, as data.

NNX stores a Linear kernel ``(in, out)`` and convolution kernels channels-last
(``HWIO``, grouped ones ``(*kernel, in / groups, out)``), like Keras; names
normalisation variables ``scale``/``bias``/``mean``/``var`` and an embedding
table ``embedding``; keeps attention projections as ``LinearGeneral`` einsum
kernels. Its initialisers: LeCun normal kernels, zero biases, embeddings
``N(0, 1 / features)``.
"""

from __future__ import annotations

from flax import nnx

from ..._core.initializers import Initializer, KaimingNormal, LecunNormal, Ones, Orthogonal, Zeros
from ..._core.layouts import Leaf
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

_NORM = {"scale": Leaf("weight"), "bias": Leaf("bias")}
LEAVES = {
    **{kind: {"kernel": leaf, "bias": channels_last.BIAS} for kind, leaf in channels_last.KERNELS.items()},
    **{kind: {"kernel": leaf, "bias": channels_last.BIAS} for kind, leaf in channels_last.TRANSPOSED.items()},
    "batchnorm": {**_NORM, "mean": Leaf("running_mean"), "var": Leaf("running_var")},
    "layernorm": _NORM,
    "embedding": {"embedding": Leaf("weight")},
    # An OptimizedLSTMCell's dense_i (no bias) and dense_h, gates i, f, g, o: torch's order.
    "lstm": channels_last.recurrent(None),
}
#: The order NNX's own layers create their variables in (the kernel before the
#: bias): how the variables of a layer of no declared kind are listed.
LEAF_ORDER = ("kernel", "embedding", "scale", "bias", "mean", "var")
#: Recurrent cells whose layout is declared: the cell class -> the kind of the RNN holding it.
CELLS = {nnx.OptimizedLSTMCell: "lstm"}
#: Where an RNN of a declared cell keeps each variable, under the name the layer shows it by.
CELL_SLOTS = {
    "kernel": ("dense_i", "kernel"),
    "recurrent_kernel": ("dense_h", "kernel"),
    "bias": ("dense_h", "bias"),
}
MERGES = {"lstm": {"bias": channels_last.SUMMED_BIAS}}
GATHERS = {"mha": channels_last.attention("query", "key", "value", "out")}

_LECUN: dict[str, Initializer] = {"weight": LecunNormal(), "bias": Zeros()}
_ONES_ZEROS: dict[str, Initializer] = {"weight": Ones(), "bias": Zeros()}
DEFAULT_INIT: dict[str, dict[str, Initializer]] = {
    **{kind: _LECUN for kind in (*channels_last.KERNELS, *channels_last.TRANSPOSED)},
    "batchnorm": _ONES_ZEROS,
    "layernorm": _ONES_ZEROS,
    # variance_scaling(1, "fan_in", "normal", out_axis=0) over (rows, features): N(0, 1 / features).
    "embedding": {"weight": KaimingNormal(nonlinearity="linear")},
    "mha": {"in_proj_weight": LecunNormal(), "in_proj_bias": Zeros()},
    "lstm": {"weight_ih": LecunNormal(), "weight_hh": Orthogonal(), "bias": Zeros()},
}
