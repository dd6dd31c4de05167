"""Entry points of the unified view: `wrap`, `forward` and [summary][unified_params.summary]."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._core import forward as _forward
from ._core import summary as _summary
from ._core.view import Module
from .backends import adapter_for


def wrap(model: Any) -> Module:
    """A cheap, copy-free view of a native model.

    Args:
        model: A ``torch.nn.Module``, a Keras 3 layer or model, or a
            ``paddle.nn.Layer`` (or a view, returned as it is).

    Raises:
        UnsupportedError: The object is not a model of a supported framework.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> nn = torch.nn
        >>> m = up.wrap(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)))
        >>> list(m.params())
        ['0.weight', '0.bias', '2.weight', '2.bias']
    """
    if isinstance(model, Module):
        return model
    adapter = adapter_for(model)
    return Module(adapter, adapter.unwrap(model))


def forward(model: Any, inputs: Any, *, training: bool = False) -> np.ndarray:
    """Run a model's own forward pass: numpy (or any array-like) in, numpy out.

    The same as ``up.wrap(model)(inputs)``. No gradient is recorded. Inputs
    and outputs are canonical: images channels-first, as in PyTorch, on every
    backend (a Keras model gets them channels-last and gives them back
    channels-first).

    Args:
        model: A native model or a view.
        inputs: The input batch.
        training: Run in training mode (dropout, batch statistics).

    Raises:
        ShapeError: The input does not fit the model's first layer; the
            message gives the expected shape.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> net = torch.nn.Linear(4, 1)
        >>> _ = up.initialize(net, up.init.Constant(0.5), seed=0)
        >>> up.forward(net, np.ones((2, 4), "float32"))
        array([[2.5],
               [2.5]], dtype=float32)
    """
    return _forward.run(wrap(model), inputs, training=training)


def summary(model: Any) -> str:
    """A tree like ``print(model)``: types, shapes, per-layer and total counts.

    A layer shared at several positions is listed at each, marked with the
    path it shares, and counted once in the totals. A layer not built yet
    (an unbuilt Keras layer, a torch lazy module) shows as ``not built`` and
    every count that includes it as ``?``; the totals say where such layers
    are, not a number that leaves them out.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8))
        >>> print(up.summary(net))  # doctest: +NORMALIZE_WHITESPACE
        Sequential  (torch)                             40
        0           Linear   weight (8, 4)  bias (8,)   40
        Total params: 40  (trainable: 40, non-trainable: 0)
        Buffers: 0 tensors, 0 elements
        Shared: 0 parameters reached at more than one path
    """
    return _summary.render(wrap(model))
