"""Entry points of the unified view: :func:`wrap` and :func:`summary`."""

from __future__ import annotations

from typing import Any

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
        >>> m = up.wrap(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)))
        >>> list(m.params())
        ['0.weight', '0.bias', '2.weight', '2.bias']
    """
    if isinstance(model, Module):
        return model
    return Module(adapter_for(model), model)


def summary(model: Any) -> str:
    """A tree like ``print(model)``: types, shapes, per-layer and total counts.

    A layer shared at several positions is listed at each, marked with the
    path it shares, and counted once in the totals.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> print(up.summary(torch.nn.Sequential(torch.nn.Linear(4, 8))))  # doctest: +NORMALIZE_WHITESPACE
        Sequential  (torch)                             40
        0           Linear   weight (8, 4)  bias (8,)   40
        Total params: 40  (trainable: 40, non-trainable: 0)
        Buffers: 0 tensors, 0 elements
        Shared: 0 parameters reached at more than one path
    """
    return _summary.render(wrap(model))
