"""Importing frameworks in a safe order.

``import tensorflow`` followed by ``import paddle`` crashes the interpreter
(a segfault inside paddle's start-up). Wherever the project imports a
framework itself, it goes through `import_framework`, which imports
paddle first when it is installed, and refuses with a clear error, instead of
crashing, when tensorflow is already loaded and paddle is not.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from .._core.errors import BackendNotInstalledError, UnsupportedError, received

_MODULES = {"torch": "torch", "keras": "keras", "paddle": "paddle"}
_EXTRAS = {"torch": "torch", "keras": "tensorflow", "paddle": "paddle"}


def installed(backend: str) -> bool:
    """Whether a backend's framework can be imported, without importing it.

    Examples:
        >>> installed("no-such-backend")
        False
    """
    module = _MODULES.get(backend)
    return module is not None and (module in sys.modules or importlib.util.find_spec(module) is not None)


def import_framework(backend: str) -> ModuleType:
    """Import a backend's framework, paddle before tensorflow.

    Raises:
        BackendNotInstalledError: The framework is not installed.
        UnsupportedError: paddle is needed after tensorflow was imported.

    Examples:
        >>> import_framework("torch").__name__
        'torch'
    """
    if backend not in _MODULES:
        raise ValueError(
            f"Unknown backend {backend!r}. Expected one of {tuple(_MODULES)}. " + received(backend=backend)
        )
    if backend == "paddle":
        _refuse_paddle_after_tensorflow()
    elif backend == "keras" and installed("paddle") and "tensorflow" not in sys.modules:
        importlib.import_module("paddle")  # later paddle imports stay safe
    try:
        return importlib.import_module(_MODULES[backend])
    except ImportError as err:
        raise BackendNotInstalledError(
            f"The {backend} backend is not installed ({err}). Install it with: "
            f"pip install 'unified-params[{_EXTRAS[backend]}]'. " + received(backend=backend)
        ) from err


def _refuse_paddle_after_tensorflow() -> None:
    if "paddle" not in sys.modules and "tensorflow" in sys.modules:
        raise UnsupportedError(
            "paddle cannot be imported after tensorflow in one process: paddle's start-up "
            "then crashes the interpreter. Expected paddle to be imported first: put "
            "`import paddle` before `import tensorflow` / `import keras`, or use a separate "
            "process for paddle. " + received(loaded="tensorflow", missing="paddle")
        )
