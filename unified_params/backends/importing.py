"""Importing frameworks in a safe order.

``import tensorflow`` followed by ``import paddle`` crashes the interpreter
(a segfault inside paddle's start-up). Wherever the project imports a
framework itself, it goes through `import_framework`. Before a framework
whose import loads tensorflow (Keras on TensorFlow), it imports paddle when
paddle is installed, so that paddle can still be used later; and it refuses
with a clear error, instead of crashing, when paddle is needed after
tensorflow was loaded. Frameworks that load no tensorflow (torch, Flax, Keras
on JAX or torch) are imported alone: paddle's import takes about 3 s and
brings its own OpenMP runtime (Intel's) into a process whose torch runs on
GNU's.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from types import ModuleType

from .._core.errors import BackendNotInstalledError, UnsupportedError, received
from . import registry
from .registry import installed

__all__ = ["import_framework", "import_frameworks", "installed"]

#: Frameworks whose import makes a later import of an earlier-priority
#: framework crash, by the module that crashes after them.
_CRASHES_AFTER = {"paddle": ("tensorflow",)}


def import_framework(backend: str) -> ModuleType:
    """Import a backend's framework; paddle first where that import loads tensorflow.

    Raises:
        BackendNotInstalledError: The framework is not installed.
        UnsupportedError: paddle is needed after tensorflow was imported.

    Examples:
        >>> import_framework("torch").__name__
        'torch'
    """
    entry = registry.get(backend)
    _refuse_crashing_order(entry.name)
    loads = registry.modules_loaded(entry.name)
    for earlier in registry.import_order():
        if earlier == entry.name:
            break
        module = registry.get(earlier).module
        crashes_after = _CRASHES_AFTER.get(earlier, ())
        if (
            any(m in loads for m in crashes_after)  # this import loads what it cannot follow
            and module not in sys.modules
            and not any(m in sys.modules for m in crashes_after)
            and installed(earlier)
        ):
            importlib.import_module(module)  # later imports of it stay safe
    try:
        return importlib.import_module(entry.module)
    except ImportError as err:
        raise BackendNotInstalledError(
            f"The {backend} backend is not installed ({err}). Install it with: "
            f"{entry.install_hint()}. " + received(backend=backend)
        ) from err


def _refuse_crashing_order(name: str) -> None:
    module = registry.get(name).module
    loaded = [m for m in _CRASHES_AFTER.get(name, ()) if m in sys.modules]
    if module not in sys.modules and loaded:
        raise UnsupportedError(
            f"{module} cannot be imported after {loaded[0]} in one process: {module}'s start-up "
            f"then crashes the interpreter. Expected {module} to be imported first: put "
            f"`import {module}` before `import {loaded[0]}` / `import keras`, or use a separate "
            f"process for {module}. " + received(loaded=loaded[0], missing=module)
        )


def import_frameworks(names: Iterable[str]) -> None:
    """Import several backends' frameworks in the registry's safe order.

    Examples:
        >>> import_frameworks(["torch"])
    """
    order = registry.import_order()
    for name in sorted(set(names), key=order.index):
        import_framework(name)
