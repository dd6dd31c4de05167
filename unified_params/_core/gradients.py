"""``up.gradients``: one backward pass with the framework's own autograd.

The core owns what a loss means and what input a model expects; an adapter
only runs the forward and backward pass. Gradients are listed once per
deduplicated path: a tied parameter has one gradient, the sum over its uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import values
from .errors import UnsupportedError, received
from .inputs import placement, prepare_input
from .view import Module, check_layout

LOSSES = ("sum", "mean", "mse")


@dataclass(frozen=True)
class Backward:
    """One backward pass for an adapter to run: the input already laid out for
    its framework, the loss, targets (numpy) and the mode."""

    inputs: np.ndarray
    loss: Any
    targets: np.ndarray | None
    training: bool


def check_loss(loss: Any, targets: Any) -> None:
    """Refuse an unknown loss, or ``"mse"`` without targets.

    Examples:
        >>> check_loss("sum", None)
    """
    if callable(loss):
        return
    if loss not in LOSSES:
        raise UnsupportedError(
            f"Unknown loss {loss!r}. Expected one of {LOSSES} or a callable on the model's output. "
            + received(loss=loss)
        )
    if loss == "mse" and targets is None:
        raise UnsupportedError(
            "loss='mse' needs targets. Expected targets=<array>. " + received(targets=None)
        )


def reduce_loss(
    output: Any, loss: Any, targets: Any, total: Callable[[Any], Any], mean: Callable[[Any], Any]
) -> Any:
    """The scalar loss of a native output, with the framework's own reductions.

    ``"sum"`` and ``"mean"`` reduce the output; ``"mse"`` is the mean squared
    difference to ``targets``; a callable gets the output (and the targets,
    when given).
    """
    if callable(loss):
        return loss(output) if targets is None else loss(output, targets)
    if loss == "sum":
        return total(output)
    if loss == "mean":
        return mean(output)
    diff = output - targets
    return mean(diff * diff)


def run(
    model: Module,
    inputs: Any,
    *,
    loss: Any = "sum",
    targets: Any = None,
    training: bool = False,
    layout: str = "canonical",
) -> dict[str, np.ndarray]:
    """Gradients of the loss by path; see ``unified_params.gradients``."""
    check_layout(layout)
    check_loss(loss, targets)
    adapter = model.adapter
    where = placement(model, inputs)
    x = prepare_input(model, inputs, where)
    t = None if targets is None else values.as_array(targets, path="<targets>").astype(np.float32)
    if t is not None and where.output_moved(model, t.ndim, x.ndim):
        t = np.ascontiguousarray(np.moveaxis(t, 1, -1))  # image targets are channels first too
    if t is not None and t.ndim >= 3 and where.time_major:
        t = np.ascontiguousarray(np.swapaxes(t, 0, 1))  # sequence targets are batch first too
    params = [(k, p) for k, p in model.params().items() if p.kind == "param" and p.trainable]
    natives = [p.native for _, p in params]
    grads = adapter.gradients(model.native, natives, Backward(x, loss, t, training))
    out = {}
    for (key, param), grad in zip(params, grads, strict=True):
        if grad is not None:
            out[key] = grad if layout == "native" else np.ascontiguousarray(param.layout.to_canonical(grad))
    return out
