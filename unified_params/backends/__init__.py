"""Backends: the registry of frameworks and one adapter package per framework.

`registry` lists the backends and finds a model's backend without importing
any framework; each adapter package (``torch``, ``keras``, ``paddle``)
translates between the framework-free core and its framework, and is imported
only once a model of that framework has been seen or the backend is asked for
by name.
"""

from __future__ import annotations

from ._base import Adapter
from .registry import (
    BACKENDS,
    Backend,
    Capabilities,
    adapter_for,
    backend_of,
    capabilities,
    get_adapter,
    import_order,
    names,
    register,
    targets,
    unregister,
)

__all__ = [
    "BACKENDS",
    "Adapter",
    "Backend",
    "Capabilities",
    "adapter_for",
    "backend_of",
    "capabilities",
    "get_adapter",
    "import_order",
    "names",
    "register",
    "targets",
    "unregister",
]
