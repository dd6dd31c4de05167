"""Building `unified_params.spec` layers as paddle layers."""

from __future__ import annotations

from typing import Any, cast

from paddle import nn

from ... import spec as S
from ..._core.errors import UnsupportedError, received


class PaddleSpec:
    """`unified_params.backends._base.SpecBuilder` for paddle."""

    def layer(self, s: S.Layer, name: str | None) -> Any:
        if isinstance(s, S.Linear):
            return nn.Linear(s.in_features, s.out_features, bias_attr=None if s.bias else False)
        if isinstance(s, S.Conv2d):
            kernel, padding = cast(Any, s.kernel_size), cast(Any, s.padding)
            bias = None if s.bias else False
            return nn.Conv2D(
                s.in_channels, s.out_channels, kernel, s.stride, padding, groups=s.groups, bias_attr=bias
            )
        if isinstance(s, (S.Conv1d, S.Conv3d, S.ConvTranspose1d, S.ConvTranspose2d, S.ConvTranspose3d)):
            cls = {
                S.Conv1d: nn.Conv1D, S.Conv3d: nn.Conv3D, S.ConvTranspose1d: nn.Conv1DTranspose,
                S.ConvTranspose2d: nn.Conv2DTranspose, S.ConvTranspose3d: nn.Conv3DTranspose,
            }[type(s)]  # fmt: skip
            return cls(s.in_channels, s.out_channels, s.kernel_size, s.stride)
        if isinstance(s, S.MultiheadAttention):
            return nn.MultiHeadAttention(s.embed_dim, s.num_heads, bias_attr=None if s.bias else False)
        if isinstance(s, S.BatchNorm2d):
            return nn.BatchNorm2D(
                s.num_features,
                momentum=1 - s.momentum,
                epsilon=s.eps,
                weight_attr=None if s.affine else False,
                bias_attr=None if s.affine else False,
            )
        if isinstance(s, S.LayerNorm):
            return nn.LayerNorm(s.normalized_shape, epsilon=s.eps)
        if isinstance(s, S.RMSNorm):
            raise UnsupportedError(
                "Paddle 3.3 has no RMSNorm layer (only the fused function "
                "paddle.incubate.nn.functional.fused_rms_norm), so a torch, Keras or Flax RMSNorm "
                "cannot be built as a paddle layer. Expected a LayerNorm, or an RMSNorm on another "
                "backend. " + received(spec=s)
            )
        if isinstance(s, S.GroupNorm):
            return nn.GroupNorm(s.num_groups, s.num_channels, epsilon=s.eps)
        if isinstance(s, S.Embedding):
            return nn.Embedding(s.num_embeddings, s.embedding_dim)
        if isinstance(s, S.RNN):
            return nn.SimpleRNN(s.input_size, s.hidden_size, activation=s.nonlinearity)
        if isinstance(s, (S.LSTM, S.GRU)):
            cls = nn.LSTM if isinstance(s, S.LSTM) else nn.GRU
            return cls(s.input_size, s.hidden_size)
        return S.plain_layer(s, "paddle", nn.ReLU, nn.Flatten)

    def sequential(self, children: list[Any], keys: list[str] | None, name: str | None) -> Any:
        named = children if keys is None else list(zip(keys, children, strict=True))
        return nn.Sequential(*named)

    def finish(self, native: Any, spec: S.Layer, input_shape: tuple[int | None, ...] | None) -> None:
        pass  # paddle layers hold their parameters from construction


SPEC = PaddleSpec()
