"""PyTorch, natively: the conformance suite's fixture (see `tests.native`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from . import X
from ._dicts import DictNative


class TorchNative(DictNative):
    nn = nn
    base = "Module"
    listing = "ModuleList"
    convs = {1: "Conv1d", 2: "Conv2d", 3: "Conv3d"}
    pools = ("MaxPool2d", "AvgPool2d")
    prelu_name = "weight"
    recurrent = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
    both_ways = {"bidirectional": True, "batch_first": True}
    time_first: dict[str, Any] = {}  # batch_first=False is torch's default
    no_bias = {"bias": False}
    cnn_buffers = 3  # torch also tracks num_batches_tracked
    valueless_takes_writes = False  # model.to_empty(device=...) first

    def unbuilt_mlp(self) -> Any:
        return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))

    def with_an_unused_layer(self) -> Any:
        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.used, self.unused = nn.Linear(4, 2), nn.LazyLinear(3)

            def forward(self, x):
                return self.used(x)

        net = Net()
        net(torch.from_numpy(X))
        return net

    def valueless_mlp(self) -> Any:
        with torch.device("meta"):
            return self.mlp()

    def tensor(self, x: np.ndarray) -> Any:
        return torch.from_numpy(x)

    def no_grad(self) -> Any:
        return torch.no_grad()

    def flat(self, x: Any) -> Any:
        return torch.flatten(x, 1)

    def add_child(self, parent: Any, name: str, child: Any) -> None:
        parent.add_module(name, child)

    def typed(self, dtype: str) -> Any:
        model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        return model.to({"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype])

    def attention(self, layer: Any, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.from_numpy(x)
            return layer(t, t, t, need_weights=False)[0].numpy()

    def seed(self, value: int) -> None:
        torch.manual_seed(value)

    def add_variable(self, layer: Any, name: str) -> None:
        layer.register_parameter(name, nn.Parameter(torch.zeros(3)))

    def replace_last_layer(self, model: Any) -> None:
        model[2] = nn.Linear(8, 3)


NATIVE = TorchNative()
