"""PaddlePaddle, natively: the conformance suite's fixture (see `tests.native`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import paddle
from paddle import nn

from unified_params import spec as S

from ._dicts import DictNative


class PaddleNative(DictNative):
    nn = nn
    base = "Layer"
    listing = "LayerList"
    convs = {1: "Conv1D", 2: "Conv2D", 3: "Conv3D"}
    pools = ("MaxPool2D", "AvgPool2D")
    prelu_name = "_weight"
    recurrent = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
    both_ways = {"direction": "bidirect"}  # batch first (time_major=False) by default
    time_first = {"time_major": True}
    no_bias = {"bias_attr": False}
    refused_layers = {S.RMSNorm: "Paddle 3.3 has no RMSNorm layer"}

    def valueless_mlp(self) -> Any:
        with paddle.LazyGuard():
            return self.mlp()

    def tensor(self, x: np.ndarray) -> Any:
        return paddle.to_tensor(x)

    def no_grad(self) -> Any:
        return paddle.no_grad()

    def flat(self, x: Any) -> Any:
        return paddle.flatten(x, 1)

    def add_child(self, parent: Any, name: str, child: Any) -> None:
        parent.add_sublayer(name, child)

    def typed(self, dtype: str) -> Any:
        model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        model.to(dtype=dtype)
        return model

    def attention(self, layer: Any, x: np.ndarray) -> np.ndarray:
        layer.eval()
        with paddle.no_grad():
            return layer(paddle.to_tensor(x)).numpy()

    def variable_count(self, model: Any) -> int:
        return len(model.parameters())

    def seed(self, value: int) -> None:
        paddle.seed(value)

    def add_variable(self, layer: Any, name: str) -> None:
        layer.add_parameter(name, paddle.create_parameter([3], "float32"))

    def replace_last_layer(self, model: Any) -> None:
        setattr(model, "2", nn.Linear(8, 3))


NATIVE = PaddleNative()
