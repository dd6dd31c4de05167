"""Native helpers for tests: run a model forward, count parameters the framework's way.

Each helper speaks one framework natively, so tests can compare the unified
view with what the framework itself says.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def forward(backend: str, model: Any, x: np.ndarray, *, channels: bool | None = None) -> np.ndarray:
    """Run ``model`` on ``x`` (canonical, channels-first for images) in eval mode.

    Keras takes images channels-last: the input's axis 1 is moved last and the
    output's back, so the result is comparable with torch and paddle.
    ``channels`` says whether ``x`` has a channel axis (default: 4-D inputs).
    """
    if backend == "torch":
        import torch

        model.eval()
        with torch.no_grad():
            out = model(torch.from_numpy(x))
        return _first(out).numpy()
    if backend == "paddle":
        import paddle

        model.eval()
        with paddle.no_grad():
            out = model(paddle.to_tensor(x))
        return _first(out).numpy()
    if x.ndim == 4 if channels is None else channels:
        out = np.asarray(model(np.moveaxis(x, 1, -1), training=False))
        return np.moveaxis(out, -1, 1) if out.ndim == x.ndim else out
    return np.asarray(model(x, training=False))


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, (tuple, list)) else out


def native_named_params(backend: str, model: Any) -> list[tuple[str, tuple[int, ...]]]:
    """The framework's own deduplicated list of (name, shape), parameters and buffers."""
    if backend == "keras":
        return [(v.path, tuple(v.shape)) for v in model.weights]
    seen, out = set(), []
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:  # state_dict lists every alias of a shared tensor
            seen.add(id(tensor))
            out.append((name, tuple(int(d) for d in tensor.shape)))
    return out


def native_count(backend: str, model: Any) -> int:
    """Parameter elements as the framework counts them, running statistics excluded."""
    if backend == "keras":  # Keras' own deduplicated list of weights
        return sum(int(np.prod(v.shape)) for v in model.weights if not v.name.startswith("moving_"))
    named = model.named_parameters()
    return sum(int(np.prod(p.shape)) for n, p in named if not n.endswith(("_mean", "_variance")))


def to_numpy(tensor: Any) -> np.ndarray:
    """A native tensor or variable of any framework as numpy."""
    if hasattr(tensor, "detach"):
        tensor = tensor.detach()
    return np.asarray(tensor.numpy())
