"""Hypothesis strategies: random `unified_params.spec` architectures and inputs for them.

Three families, each drawn with random depth, widths, nesting, named
children and layers shared at several positions: multi-layer perceptrons
(Linear, ReLU, LayerNorm, nested Sequentials), convolution stacks (Conv2d,
grouped and depthwise Conv2d, BatchNorm2d, GroupNorm, ReLU) and recurrent
models (Embedding, RNN, LSTM, GRU). Needs Hypothesis (``pip install 'unified-params[test]'``).

Examples:
    >>> from hypothesis import given, settings
    >>> from unified_params.testing.strategies import specs, inputs
    >>> @settings(max_examples=5, deadline=None)
    ... @given(specs(families=("mlp",)))
    ... def test_builds(spec):
    ...     assert spec.build("torch") is not None
    >>> test_builds()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .. import spec as S

__all__ = ["example_input", "family", "inputs", "specs"]

FAMILIES = ("mlp", "conv", "rnn")


def specs(families: Sequence[str] = FAMILIES, named: bool = True) -> st.SearchStrategy[S.Sequential]:
    """Random architectures of the given families (``"mlp"``, ``"conv"``,
    ``"rnn"``); with ``named``, some draws key their top-level children by
    name (``("block 0", layer)``) instead of by position.

    Examples:
        >>> from hypothesis import find
        >>> simplest = find(specs(("conv",), named=False), lambda spec: True)
        >>> family(simplest), simplest.build("torch") is not None
        ('conv', True)
    """
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"Unknown families {unknown}. Expected some of {FAMILIES}.")
    drawn = st.one_of([{"mlp": _mlps(), "conv": _convnets(), "rnn": _recurrent()}[f] for f in families])
    if not named:
        return drawn
    return st.tuples(drawn, st.booleans()).map(lambda pair: _named(pair[0]) if pair[1] else pair[0])


def inputs(spec: S.Layer, max_batch: int = 3) -> st.SearchStrategy[np.ndarray]:
    """Random inputs the spec's model takes (canonical: channels first):
    float32 features, or int64 indices below the vocabulary for a model that
    starts with an Embedding.

    Examples:
        >>> from hypothesis import find
        >>> from unified_params import spec as S
        >>> find(inputs(S.Sequential(S.Linear(4, 2))), lambda x: True).shape
        (1, 4)
    """
    first = S.first_leaf(spec)
    dims = spec.input_shape() or (4,)
    return st.builds(
        lambda batch, sizes, seed: _array(first, (batch, *_filled(dims, sizes)), seed),
        st.integers(1, max_batch),
        st.lists(st.integers(3, 7), min_size=len(dims), max_size=len(dims)),
        st.integers(0, 2**32 - 1),
    )


def example_input(spec: S.Layer, batch: int = 2, size: int = 5, seed: int = 0) -> np.ndarray:
    """One input the spec's model takes, every free axis of length ``size``.

    Examples:
        >>> from unified_params import spec as S
        >>> example_input(S.Sequential(S.Conv2d(3, 4, 3))).shape
        (2, 3, 5, 5)
    """
    dims = spec.input_shape() or (4,)
    return _array(S.first_leaf(spec), (batch, *_filled(dims, [size] * len(dims))), seed)


def family(spec: S.Layer) -> str:
    """``"rnn"``, ``"conv"`` or ``"mlp"``: what the spec's first layer is.

    Examples:
        >>> from unified_params import spec as S
        >>> family(S.Sequential(S.LSTM(3, 4)))
        'rnn'
    """
    first = S.first_leaf(spec)
    if isinstance(first, (S.Embedding, S.RNN, S.LSTM, S.GRU)):
        return "rnn"
    if isinstance(first, (S.Conv2d, S.BatchNorm2d, S.GroupNorm)):
        return "conv"
    return "mlp"


def _filled(dims: tuple[int | None, ...], sizes: Sequence[int]) -> tuple[int, ...]:
    return tuple(size if d is None else d for d, size in zip(dims, sizes, strict=True))


def _array(first: S.Layer, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if isinstance(first, S.Embedding):
        return rng.integers(0, first.num_embeddings, size=shape).astype("int64")
    return rng.standard_normal(shape).astype("float32")


def _named(spec: S.Sequential) -> S.Sequential:
    """The same layers, keyed by name at the top level."""
    return S.Sequential(*[(f"block {k}", layer) for k, layer in enumerate(spec.layers)])


@st.composite
def _mlps(draw: Any) -> S.Sequential:
    width = draw(st.integers(1, 6))
    layers: list[Any] = []
    square: dict[int, list[Any]] = {}  # layers that map a width to itself: shareable anywhere
    first = width
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.sampled_from(["linear", "linear", "relu", "norm", "nested", "share"]))
        layer: S.Layer
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
    if not layers or not isinstance(S.first_leaf(S.Sequential(*layers)), (S.Linear, S.LayerNorm)):
        layers.insert(0, S.Linear(first, first))  # the input's width is known from the first layer
    return S.Sequential(*layers)


@st.composite
def _convnets(draw: Any) -> S.Sequential:
    channels = first = draw(st.integers(1, 4))
    layers: list[Any] = []
    shareable: dict[int, list[Any]] = {}
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(
            st.sampled_from(["conv", "conv", "depthwise", "grouped", "norm", "relu", "share", "group_norm"])
        )
        layer: S.Layer
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
        elif choice == "group_norm":
            groups = draw(st.sampled_from([g for g in range(1, channels + 1) if channels % g == 0]))
            layer = S.GroupNorm(groups, channels)
        elif choice == "relu":
            layer = S.ReLU()
        else:
            if not shareable.get(channels):
                continue
            layer = draw(st.sampled_from(shareable[channels]))
        layers.append(layer)
    if not layers or isinstance(S.first_leaf(S.Sequential(*layers)), S.ReLU):
        layers.insert(0, S.Conv2d(first, first, 1))
    return S.Sequential(*layers)


@st.composite
def _recurrent(draw: Any) -> S.Sequential:
    cell = draw(st.sampled_from([S.RNN, S.LSTM, S.GRU]))
    hidden = draw(st.integers(1, 5))
    if draw(st.booleans()):
        vocabulary, dim = draw(st.integers(2, 12)), draw(st.integers(1, 5))
        return S.Sequential(S.Embedding(vocabulary, dim), cell(dim, hidden))
    return S.Sequential(cell(draw(st.integers(1, 5)), hidden))
