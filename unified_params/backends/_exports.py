"""A backend package's names, imported on first use.

A package's ``__init__`` names what it exports and the module holding each;
the module (which imports the framework) loads only when a name is asked
for. So the package's framework-free modules, such as its layout tables
(``leaves``), import without the framework (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A package ``__getattr__`` giving each of ``names`` (name -> module
    inside ``package``) from its module, imported on first use.

    Examples:
        >>> get = lazy("unified_params.backends", {"Capabilities": "registry"})
        >>> get("Capabilities").__name__
        'Capabilities'
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{module}", package), name)

    return __getattr__
