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
from .errors import ShapeError, UnsupportedError, received
from .view import LAYOUTS, Module

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


def expected_input(model: Module) -> tuple[str, Callable[[np.ndarray], bool], str] | None:
    """What the first parameterised layer needs of the input: a description,
    a check, and that layer's kind; ``None`` when nothing can be said."""
    first = next(iter(model.params().values()), None)
    if first is None:
        return None
    shape, kind = first.canonical_shape, first.layer_kind
    if kind == "linear":
        return f"(batch, ..., {shape[1]})", lambda x: x.ndim >= 1 and x.shape[-1] == shape[1], kind
    if kind.startswith("conv"):
        dims = int(kind[-2])
        groups = int(model._adapter.hyperparameters(first.module.native).get("groups", 1))
        channels = shape[0] if kind.startswith("conv_transpose") else shape[1] * groups
        spatial = ["L", "H, W", "D, H, W"][dims - 1]
        description = f"(batch, {channels}, {spatial}) channels first"
        return description, lambda x: x.ndim == dims + 2 and x.shape[1] == channels, kind
    if kind == "batchnorm":
        c = shape[0]
        return f"(batch, {c}, ...) channels first", lambda x: x.ndim >= 2 and x.shape[1] == c, kind
    if kind in ("lstm", "gru"):
        return f"(batch, time, {shape[1]})", lambda x: x.ndim == 3 and x.shape[-1] == shape[1], kind
    if kind == "embedding":
        return "integer indices", lambda x: x.dtype.kind in "iu", kind
    return None


def moves_channels(kind: str, ndim: int) -> bool:
    """Whether a channels-last framework takes this input with channels moved last."""
    return (kind.startswith("conv") or kind == "batchnorm") and ndim >= 3


def prepare_input(model: Module, inputs: Any, channels_last: bool) -> np.ndarray:
    """Validate the input against the first layer and put image axes where the
    framework wants them (canonical inputs are channels first).

    Raises:
        ShapeError: The input does not fit the model's first layer.
    """
    x = values.as_array(inputs, path="<inputs>")
    expected = expected_input(model)
    if expected is None:
        return x
    description, fits, kind = expected
    if not fits(x):
        raise ShapeError(
            f"The input does not fit the model's first {kind} layer. Expected an input of shape "
            f"{description}. " + received(shape=x.shape, dtype=str(x.dtype))
        )
    if channels_last and moves_channels(kind, x.ndim):
        x = np.moveaxis(x, 1, -1)
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype(np.float32)
    return np.ascontiguousarray(x)


def run(
    model: Module,
    inputs: Any,
    *,
    loss: Any = "sum",
    targets: Any = None,
    training: bool = False,
    layout: str = "native",
) -> dict[str, np.ndarray]:
    """Gradients of the loss by path; see ``unified_params.gradients``."""
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}. Expected one of {LAYOUTS}. " + received(layout=layout))
    check_loss(loss, targets)
    adapter = model._adapter
    x = prepare_input(model, inputs, adapter.CHANNELS_LAST)
    t = None if targets is None else values.as_array(targets, path="<targets>").astype(np.float32)
    if t is not None and adapter.CHANNELS_LAST and t.ndim >= 3 and t.ndim == x.ndim:
        t = np.ascontiguousarray(np.moveaxis(t, 1, -1))  # image targets are channels first too
    params = [p for p in model.params().values() if p.kind == "param" and p.trainable]
    grads = adapter.gradients(model.native, [p.native for p in params], Backward(x, loss, t, training))
    out = {}
    for param, grad in zip(params, grads, strict=True):
        if grad is not None:
            out[param.path] = (
                grad if layout == "native" else np.ascontiguousarray(param.layout.to_canonical(grad))
            )
    return out
