"""Native helpers for tests: run a model forward, count parameters the framework's way.

Thin names over the per-backend fixture modules of `tests.native`, for tests
that take a backend's name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.native import Native, for_backend


def forward(backend: str, model: Any, x: np.ndarray, *, channels: bool | None = None) -> np.ndarray:
    """Run ``model`` on ``x`` (canonical, channels-first for images) in eval mode.

    ``channels`` says whether ``x`` has a channel axis (default: 4-D inputs).
    """
    return for_backend(backend).forward(model, x, channels)


def native_named_params(backend: str, model: Any) -> list[tuple[str, tuple[int, ...]]]:
    """The framework's own deduplicated list of (name, shape), parameters and buffers."""
    return for_backend(backend).named_params(model)


def native_count(backend: str, model: Any) -> int:
    """Parameter elements as the framework counts them, running statistics excluded."""
    return for_backend(backend).count(model)


#: A native tensor or variable of any framework as numpy (the fixtures' own reader).
to_numpy = Native().to_numpy
