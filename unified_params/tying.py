"""Tying: `tie`, `untie`, `ties`, and [gradients][unified_params.gradients]."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._core import gradients as _gradients
from ._core import ties as _ties
from .access import wrap


def tie(model: Any, src: str, dst: str) -> None:
    """Share ``src`` at ``dst``, in place.

    With layer paths, position ``dst`` then holds the very layer at ``src``
    (its old layer and parameters are gone). With parameter paths, the layer
    at ``dst`` uses the very variable at ``src``. Shapes and dtypes must match,
    and so must the layouts the framework keeps them in: a tie holds one
    canonical matrix at both paths, as torch's does.

    Raises:
        TieError: Different shapes/dtypes/kinds, parameters the framework
            keeps in different layouts (a Keras Embedding's ``(rows, dim)``
            and a Dense kernel's ``(in, out)``), a path tied to itself, or a
            layer tied into itself. Nothing changes.
        PathError: A path does not exist.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> nn = torch.nn
        >>> net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
        >>> up.tie(net, "0", "2")
        >>> net[0] is net[2], up.ties(net)
        (True, [('0.weight', '2.weight'), ('0.bias', '2.bias')])
    """
    _ties.tie(wrap(model), src, dst)


def untie(model: Any, path: str) -> None:
    """Give ``path`` (a shared layer's position, or a tied parameter) its own copy.

    Values are kept; the other paths keep the original object.

    Raises:
        TieError: ``path`` is not tied. Nothing changes.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> nn = torch.nn
        >>> net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
        >>> up.tie(net, "0.weight", "2.weight")
        >>> up.untie(net, "2.weight")
        >>> up.ties(net)
        []
    """
    _ties.untie(wrap(model), path)


def ties(model: Any) -> list[tuple[str, ...]]:
    """Groups of paths that reach one native variable, ties made natively included.

    Each group lists its paths in traversal order; groups come in the order of
    their first path.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> shared = torch.nn.Linear(4, 4)
        >>> up.ties(torch.nn.Sequential(shared, torch.nn.ReLU(), shared))
        [('0.weight', '2.weight'), ('0.bias', '2.bias')]
    """
    return _ties.ties(wrap(model))


def gradients(
    model: Any,
    inputs: Any,
    loss: Any = "sum",
    targets: Any = None,
    *,
    training: bool = False,
    layout: str = "canonical",
) -> dict[str, np.ndarray]:
    """Gradients of a loss of the model's output, by deduplicated path.

    Runs one forward and backward pass with the framework's own autograd
    (torch ``backward``, ``tf.GradientTape``, paddle ``backward``); a tied
    parameter gets one gradient, the sum over its uses. Afterwards ``p.grad``
    holds the same arrays (Keras included). Keys are paths relative to
    ``model`` (as in ``model.params()``); gradients are in the canonical
    (PyTorch) layout unless ``layout="native"``.

    Args:
        model: A native model or a view.
        inputs: The input batch; images channels first, as in PyTorch (Keras
            gets them channels last).
        loss: ``"sum"``, ``"mean"``, ``"mse"`` (needs ``targets``) or a
            callable on the native output (and ``targets``, when given).
        targets: Targets for ``"mse"`` or a callable loss.
        training: Run in training mode (dropout, batch statistics).
        layout: ``"canonical"`` (the default: PyTorch's, the same on every
            backend) or ``"native"`` gradients.

    Raises:
        ShapeError: The input does not fit the model's first layer; the
            message gives the expected shape.
        UnsupportedError: Unknown loss, or ``"mse"`` without targets.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 1))
        >>> up.gradients(net, np.ones((2, 4), "float32"))["0.bias"]
        array([2.], dtype=float32)
    """
    return _gradients.run(wrap(model), inputs, loss=loss, targets=targets, training=training, layout=layout)
