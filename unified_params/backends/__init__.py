"""Backend registry and detection.

Detection never imports a framework: a model can only be a torch model if
``torch`` is already in ``sys.modules``. The answer is cached by the model's
type, under a lock, so detection costs one dict look-up after the first call.
Adapter modules (which import their framework) are loaded only once a model
of that framework has been seen, or a backend is asked for by name.
"""

from __future__ import annotations

import importlib
import sys
import threading
from dataclasses import dataclass
from typing import Any

from .._core.errors import BackendNotInstalledError, UnsupportedError, received
from ._base import Adapter


@dataclass(frozen=True)
class BackendInfo:
    """Where a backend's framework lives and what its layers derive from."""

    name: str
    module: str  # top-level module that must be imported already
    base: tuple[str, ...]  # attribute path of the layer base class in it
    extra: str  # pip extra that installs it
    layer: str  # how users name the base class, for messages


BACKENDS: tuple[BackendInfo, ...] = (
    BackendInfo("torch", "torch", ("nn", "Module"), "torch", "torch.nn.Module"),
    BackendInfo("keras", "keras", ("layers", "Layer"), "tensorflow", "keras.layers.Layer (Keras 3)"),
    BackendInfo("paddle", "paddle", ("nn", "Layer"), "paddle", "paddle.nn.Layer"),
)
NAMES = tuple(b.name for b in BACKENDS)
#: Import order that avoids the tensorflow-then-paddle segfault.
IMPORT_ORDER = ("paddle", "torch", "keras")

_by_type: dict[type, str] = {}
_adapters: dict[str, Adapter] = {}
_lock = threading.Lock()


def backend_of(model: Any) -> str:
    """The backend name of a native model, without importing any framework.

    Raises:
        UnsupportedError: The object is not a model of a supported framework.

    Examples:
        >>> import torch
        >>> backend_of(torch.nn.Linear(2, 3))
        'torch'
    """
    cls = type(model)
    name = _by_type.get(cls)
    if name is None:
        name = _detect(cls)
        with _lock:
            _by_type[cls] = name
    return name


def adapter_for(model: Any) -> Adapter:
    """The adapter of the framework a native model belongs to."""
    return get_adapter(backend_of(model))


def get_adapter(name: str) -> Adapter:
    """The adapter of a backend by name, importing its framework if needed.

    Raises:
        BackendNotInstalledError: The framework is not installed.
        ValueError: The name is not a backend.
    """
    adapter = _adapters.get(name)
    if adapter is not None:
        return adapter
    if name not in NAMES:
        raise ValueError(f"Unknown backend {name!r}. Expected one of {NAMES}. " + received(backend=name))
    info = next(b for b in BACKENDS if b.name == name)
    from .importing import import_framework

    import_framework(name)  # paddle before tensorflow, or a clear refusal
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError as err:
        raise BackendNotInstalledError(
            f"The {name} backend needs its framework, which could not be imported ({err}). "
            f"Install it with: pip install 'unified-params[{info.extra}]'. " + received(backend=name)
        ) from err
    with _lock:
        adapter = _adapters.setdefault(name, module.ADAPTER)
    return adapter


def _detect(cls: type) -> str:
    for info in BACKENDS:
        framework = sys.modules.get(info.module)
        if framework is None:
            continue
        base: Any = framework
        try:
            for attr in info.base:
                base = getattr(base, attr)
        except AttributeError:  # a partly imported framework cannot own this object
            continue
        if isinstance(base, type) and issubclass(cls, base):
            return info.name
    supported = "; ".join(b.layer for b in BACKENDS)
    raise UnsupportedError(
        f"Cannot manage parameters of a {cls.__module__}.{cls.__qualname__}: it is not a "
        f"model of a supported framework. Expected a subclass of one of: {supported}. "
        + received(type=cls.__qualname__)
    )
