"""Leaves every channels-last framework declares alike (Keras 3, Flax NNX).

Both keep a dense kernel ``(in, out)``, a convolution kernel ``(*kernel, in,
out)`` (``HWIO``), a transposed convolution kernel ``(*kernel, out, in)`` and
the projections of multi-head attention as einsum kernels ``(in, heads,
head_dim)`` and ``(heads, head_dim, out)``. Each framework's table takes these
and adds what is its own.
"""

from __future__ import annotations

from .._core.layouts import Leaf
from .._core.state import Merge, Part

BIAS = Leaf("bias")
#: Dense and convolution kernels, by layer kind.
KERNELS = {
    kind: Leaf("weight", axes)
    for kind, axes in {
        "linear": ("in", "out"),
        "conv1d": ("k0", "in", "out"),
        "conv2d": ("k0", "k1", "in", "out"),
        "conv3d": ("k0", "k1", "k2", "in", "out"),
    }.items()
}
#: Transposed convolution kernels, by layer kind.
TRANSPOSED = {
    "conv_transpose1d": Leaf("weight", ("k0", "out", "in")),
    "conv_transpose2d": Leaf("weight", ("k0", "k1", "out", "in")),
    "conv_transpose3d": Leaf("weight", ("k0", "k1", "k2", "out", "in")),
}
#: torch's two recurrent biases, which some frameworks keep as one.
RECURRENT_BIASES = ("bias_ih_l0", "bias_hh_l0")
#: One LSTM bias standing for ``b_ih + b_hh``.
SUMMED_BIAS = Merge(RECURRENT_BIASES, "sum")


def recurrent(gates: str | None) -> dict[str, Leaf]:
    """The leaves of a recurrent layer kept as ``kernel`` ``(in, gates)``,
    ``recurrent_kernel`` ``(hidden, gates)`` and one ``bias`` (``(gates,)``, or
    ``(2, gates)`` for both biases stacked), gates in the native order ``gates``.

    Examples:
        >>> recurrent("zrn")["kernel"].canonical
        'weight_ih_l0'
    """
    return {
        "kernel": Leaf("weight_ih_l0", ("in", "gates"), gates),
        "recurrent_kernel": Leaf("weight_hh_l0", ("hidden", "gates"), gates),
        "bias": Leaf("bias", {1: ("gates",), 2: ("stack", "gates")}, gates),
    }


# Attention projections: einsum kernels (E, heads, head_dim) and (heads, head_dim, E).
_PROJECTION = Leaf("proj", ("in", "heads", "hd"), canonical_axes=(("heads", "hd"), "in"))
_PROJECTION_BIAS = Leaf("proj_bias", ("heads", "hd"), canonical_axes=(("heads", "hd"),))
_OUTPUT = Leaf("out", ("heads", "hd", "out"), canonical_axes=("out", ("heads", "hd")))


def attention(query: str, key: str, value: str, output: str) -> dict[str, Part]:
    """The canonical blocks (torch's packed ``in_proj``) of an attention layer
    whose projections are the sublayers at the given paths, each with a
    ``kernel`` and a ``bias``.

    Examples:
        >>> attention("q", "k", "v", "o")["k.kernel"].index
        1
    """
    projections = {query: 0, key: 1, value: 2}
    return {
        **{f"{d}.kernel": Part("in_proj_weight", i, _PROJECTION) for d, i in projections.items()},
        **{f"{d}.bias": Part("in_proj_bias", i, _PROJECTION_BIAS) for d, i in projections.items()},
        f"{output}.kernel": Part("out_proj.weight", 0, _OUTPUT),
        f"{output}.bias": Part("out_proj.bias", 0),
    }
