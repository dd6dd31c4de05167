"""Building `unified_params.spec` layers as torch modules."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, cast

from torch import nn

from ... import spec as S


class TorchSpec:
    """`unified_params.backends._base.SpecBuilder` for torch."""

    def layer(self, s: S.Layer, name: str | None) -> Any:
        if isinstance(s, S.Linear):
            return nn.Linear(s.in_features, s.out_features, bias=s.bias)
        if isinstance(s, S.Conv2d):
            kernel, padding = cast(Any, s.kernel_size), cast(Any, s.padding)
            return nn.Conv2d(
                s.in_channels, s.out_channels, kernel, s.stride, padding, bias=s.bias, groups=s.groups
            )
        if isinstance(s, (S.Conv1d, S.Conv3d, S.ConvTranspose1d, S.ConvTranspose2d, S.ConvTranspose3d)):
            cls = {
                S.Conv1d: nn.Conv1d, S.Conv3d: nn.Conv3d, S.ConvTranspose1d: nn.ConvTranspose1d,
                S.ConvTranspose2d: nn.ConvTranspose2d, S.ConvTranspose3d: nn.ConvTranspose3d,
            }[type(s)]  # fmt: skip
            return cls(s.in_channels, s.out_channels, s.kernel_size, s.stride)
        if isinstance(s, S.MultiheadAttention):
            return nn.MultiheadAttention(s.embed_dim, s.num_heads, bias=s.bias, batch_first=True)
        if isinstance(s, S.BatchNorm2d):
            return nn.BatchNorm2d(s.num_features, eps=s.eps, momentum=s.momentum, affine=s.affine)
        if isinstance(s, S.LayerNorm):
            return nn.LayerNorm(s.normalized_shape, eps=s.eps)
        if isinstance(s, S.RMSNorm):
            return nn.RMSNorm(s.normalized_shape, eps=s.eps)
        if isinstance(s, S.GroupNorm):
            return nn.GroupNorm(s.num_groups, s.num_channels, eps=s.eps)
        if isinstance(s, S.Embedding):
            return nn.Embedding(s.num_embeddings, s.embedding_dim)
        if isinstance(s, S.RNN):
            return nn.RNN(s.input_size, s.hidden_size, nonlinearity=s.nonlinearity, batch_first=True)
        if isinstance(s, (S.LSTM, S.GRU)):
            cls = nn.LSTM if isinstance(s, S.LSTM) else nn.GRU
            return cls(s.input_size, s.hidden_size, batch_first=True)
        return S.plain_layer(s, "torch", nn.ReLU, nn.Flatten)

    def sequential(self, children: list[Any], keys: list[str] | None, name: str | None) -> Any:
        if keys is None:
            return nn.Sequential(*children)
        return nn.Sequential(OrderedDict(zip(keys, children, strict=True)))

    def finish(self, native: Any, spec: S.Layer, input_shape: tuple[int | None, ...] | None) -> None:
        pass  # torch modules hold their parameters from construction


SPEC = TorchSpec()
