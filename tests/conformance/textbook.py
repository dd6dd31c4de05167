"""The textbook chapter's models, written natively the way the chapter writes them.

Each framework's version lives in its fixture module (`tests.native`); these
names take a backend's name. Keras models are called once on an input, as the
chapter does, so that their variables exist.
"""

from __future__ import annotations

from typing import Any

from tests.native import X, for_backend

__all__ = ["X", "mlp", "rgnet", "shared_mlp", "expected"]


def mlp(backend: str) -> Any:
    """The chapter's first model: one hidden layer."""
    return for_backend(backend).mlp()


def rgnet(backend: str) -> Any:
    """The nested-blocks model: block2 holds four block1s, then a head."""
    return for_backend(backend).rgnet()


def shared_mlp(backend: str) -> Any:
    """The tying example: one layer object used at two positions."""
    return for_backend(backend).shared_mlp()


def expected(backend: str, model: str) -> dict[str, Any]:
    """What a chapter model looks like in a framework: positions, paths, counts."""
    return for_backend(backend).textbook[model]
