"""Hypothesis strategies: random ``up.spec`` architectures and inputs for them.

Three families, each drawn with random depth, widths, nesting and layers
shared at several positions: multi-layer perceptrons (Linear, ReLU,
LayerNorm, nested Sequentials), convolution stacks (Conv2d, grouped and
depthwise Conv2d, BatchNorm2d, ReLU) and recurrent models (Embedding, LSTM,
GRU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from unified_params import spec as S


@dataclass
class Architecture:
    """A spec and what it takes as input."""

    spec: S.Sequential
    family: str
    input_shape: tuple[int, ...]
    integer_input: int = 0  # vocabulary size, for models that start with an Embedding

    def example_input(self, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if self.integer_input:
            return rng.integers(0, self.integer_input, size=self.input_shape).astype("int64")
        return rng.standard_normal(self.input_shape).astype("float32")

    def __repr__(self) -> str:
        return f"Architecture({self.family}, {self.spec!r}, input {self.input_shape})"


@st.composite
def mlps(draw: Any) -> Architecture:
    width = first = draw(st.integers(1, 6))
    layers: list[Any] = []
    square: dict[int, list[Any]] = {}  # layers that map a width to itself: shareable anywhere
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.sampled_from(["linear", "linear", "relu", "norm", "nested", "share"]))
        if choice == "linear":
            out = draw(st.integers(1, 6))
            layer = S.Linear(width, out, bias=draw(st.booleans()))
            if out == width:
                square.setdefault(width, []).append(layer)
            width = out
        elif choice == "relu":
            layer = S.ReLU()
        elif choice == "norm":
            layer = S.LayerNorm(width)
        elif choice == "nested":
            layer = S.Sequential(S.Linear(width, width), S.ReLU(), S.Linear(width, width))
            square.setdefault(width, []).append(layer)
        else:
            if not square.get(width):
                continue
            layer = draw(st.sampled_from(square[width]))
        layers.append(layer)
    if not layers:
        layers.append(S.Linear(width, 2))
    return Architecture(S.Sequential(*layers), "mlp", (3, first))


@st.composite
def convnets(draw: Any) -> Architecture:
    channels = first = draw(st.integers(1, 4))
    layers: list[Any] = []
    shareable: dict[int, list[Any]] = {}
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.sampled_from(["conv", "conv", "depthwise", "grouped", "norm", "relu", "share"]))
        if choice == "conv":
            out = draw(st.integers(1, 4))
            layer = S.Conv2d(
                channels, out, draw(st.sampled_from([1, 3])), padding="same", bias=draw(st.booleans())
            )
            if out == channels:
                shareable.setdefault(channels, []).append(layer)
            channels = out
        elif choice == "depthwise":
            out = channels * draw(st.integers(1, 2))
            layer = S.Conv2d(channels, out, 3, padding="same", groups=channels)
            channels = out
        elif choice == "grouped":
            if channels % 2:
                continue
            layer = S.Conv2d(channels, channels, 3, padding="same", groups=2)
        elif choice == "norm":
            layer = S.BatchNorm2d(channels)
        elif choice == "relu":
            layer = S.ReLU()
        else:
            if not shareable.get(channels):
                continue
            layer = draw(st.sampled_from(shareable[channels]))
        layers.append(layer)
    if not layers:
        layers.append(S.Conv2d(channels, 2, 1))
    return Architecture(S.Sequential(*layers), "conv", (2, first, 5, 6))


@st.composite
def recurrent(draw: Any) -> Architecture:
    cell = draw(st.sampled_from([S.LSTM, S.GRU]))
    hidden = draw(st.integers(1, 5))
    if draw(st.booleans()):
        vocabulary, dim = draw(st.integers(2, 12)), draw(st.integers(1, 5))
        return Architecture(
            S.Sequential(S.Embedding(vocabulary, dim), cell(dim, hidden)), "rnn", (2, 4), vocabulary
        )
    features = draw(st.integers(1, 5))
    return Architecture(S.Sequential(cell(features, hidden)), "rnn", (2, 4, features))


architectures = st.one_of(mlps(), convnets(), recurrent())
