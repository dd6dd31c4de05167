"""Building `unified_params.spec` layers as Flax NNX modules.

NNX creates every variable as a layer is made, from an explicit ``nnx.Rngs``;
the builder draws from one stream per process, so two builds differ (as
torch's do) and a seeded `unified_params.initialize` sets the values.
"""

from __future__ import annotations

import functools
from typing import Any

from flax import nnx

from ... import spec as S
from ..._core.errors import UnsupportedError, received
from .layers import NamedSequential, flatten


@functools.cache
def _rngs() -> nnx.Rngs:
    """The builder's one random stream, made on first use."""
    return nnx.Rngs(0)


def _padding(s: S.Conv2d) -> Any:
    if s.padding in (0, "valid"):
        return "VALID"
    if s.padding == "same":
        return "SAME"
    if isinstance(s.padding, int):
        return [(s.padding, s.padding)] * s.SPATIAL
    raise UnsupportedError(
        f"Unknown padding {s.padding!r}. Expected an int, 'same' or 'valid'. " + received(padding=s.padding)
    )


def _tuple(value: int | tuple[int, ...], rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * rank


class FlaxSpec:
    """`unified_params.backends._base.SpecBuilder` for Flax NNX. Convolutions
    are channels-last (``NHWC`` inputs); a transposed convolution is built
    with ``transpose_kernel=True``, torch's arithmetic."""

    def layer(self, s: S.Layer, name: str | None) -> Any:
        rngs = _rngs()
        if isinstance(s, S.Linear):
            return nnx.Linear(s.in_features, s.out_features, use_bias=s.bias, rngs=rngs)
        if isinstance(s, (S.Conv1d, S.Conv2d, S.Conv3d)):
            return nnx.Conv(
                s.in_channels,
                s.out_channels,
                _tuple(s.kernel_size, s.SPATIAL),
                strides=_tuple(s.stride, s.SPATIAL),
                padding=_padding(s) if isinstance(s, S.Conv2d) else "VALID",
                feature_group_count=s.groups if isinstance(s, S.Conv2d) else 1,
                use_bias=s.bias if isinstance(s, S.Conv2d) else True,
                rngs=rngs,
            )
        if isinstance(s, (S.ConvTranspose1d, S.ConvTranspose2d, S.ConvTranspose3d)):
            return nnx.ConvTranspose(
                s.in_channels,
                s.out_channels,
                _tuple(s.kernel_size, s.SPATIAL),
                strides=_tuple(s.stride, s.SPATIAL),
                padding="VALID",
                transpose_kernel=True,
                rngs=rngs,
            )
        if isinstance(s, S.MultiheadAttention):
            e = s.embed_dim
            return nnx.MultiHeadAttention(
                s.num_heads, e, qkv_features=e, out_features=e, use_bias=s.bias, decode=False, rngs=rngs
            )
        if isinstance(s, S.BatchNorm2d):
            return nnx.BatchNorm(
                s.num_features,
                epsilon=s.eps,
                momentum=1 - s.momentum,
                use_scale=s.affine,
                use_bias=s.affine,
                rngs=rngs,
            )
        if isinstance(s, S.LayerNorm):
            return nnx.LayerNorm(s.normalized_shape, epsilon=s.eps, rngs=rngs)
        if isinstance(s, S.RMSNorm):
            return nnx.RMSNorm(s.normalized_shape, epsilon=s.epsilon(), rngs=rngs)
        if isinstance(s, S.GroupNorm):
            return nnx.GroupNorm(s.num_channels, num_groups=s.num_groups, epsilon=s.eps, rngs=rngs)
        if isinstance(s, S.Embedding):
            return nnx.Embed(s.num_embeddings, s.embedding_dim, rngs=rngs)
        if isinstance(s, S.RNN):
            activation = nnx.relu if s.nonlinearity == "relu" else nnx.tanh
            return nnx.RNN(nnx.SimpleCell(s.input_size, s.hidden_size, activation_fn=activation, rngs=rngs))
        if isinstance(s, S.LSTM):
            cell = nnx.OptimizedLSTMCell(s.input_size, s.hidden_size, rngs=rngs)
            return nnx.RNN(cell)
        if isinstance(s, S.GRU):
            raise UnsupportedError(
                "Flax NNX's GRUCell has no recurrent bias inside the reset gate (torch's b_hn), so a "
                "torch, Keras or Paddle GRU cannot be expressed in it exactly. Expected an LSTM, or "
                "a GRU on another backend. " + received(spec=s)
            )
        return S.plain_layer(s, "flax", lambda: nnx.relu, lambda: flatten)

    def sequential(self, children: list[Any], keys: list[str] | None, name: str | None) -> Any:
        return (
            nnx.Sequential(*children)
            if keys is None
            else NamedSequential(dict(zip(keys, children, strict=True)))
        )

    def finish(self, native: Any, spec: S.Layer, input_shape: tuple[int | None, ...] | None) -> None:
        pass  # NNX creates every variable with its layer


SPEC = FlaxSpec()
