"""unified-params: one API for parameter management in PyTorch, Keras 3 and Paddle.

Access by index or path, collect all parameters, set values, and summarise a
model, with the same meaning on every backend::

    import unified_params as up

    m = up.wrap(model)            # torch.nn.Module, keras Layer/Model, paddle.nn.Layer
    m[2]["bias"].numpy()          # by position, then by name
    m["2.weight"][0, 0] = 42      # in place, canonical (PyTorch) indexing
    m.params("*.weight")          # every weight, shared ones once
    print(up.summary(model))

Importing this package imports no framework.
"""

from __future__ import annotations

from . import init, plot, spec
from ._core.errors import (
    BackendNotInstalledError,
    CheckpointError,
    DTypeError,
    InitError,
    NotBuiltError,
    PathError,
    PortError,
    PositionError,
    ShapeError,
    TieError,
    UnifiedParamsError,
    UnsupportedError,
)
from ._core.selectors import Where, where
from ._core.view import Module, Param
from ._version import __version__
from .access import summary, wrap
from .backends import backend_of
from .checkpoints import LoadReport, PortReport, load, load_state_dict, port, save, state_dict
from .init import initialize
from .tying import gradients, tie, ties, untie

__all__ = [
    "BackendNotInstalledError",
    "CheckpointError",
    "DTypeError",
    "InitError",
    "LoadReport",
    "Module",
    "NotBuiltError",
    "Param",
    "PathError",
    "PortError",
    "PortReport",
    "PositionError",
    "ShapeError",
    "TieError",
    "UnifiedParamsError",
    "UnsupportedError",
    "Where",
    "__version__",
    "backend_of",
    "gradients",
    "init",
    "initialize",
    "load",
    "load_state_dict",
    "plot",
    "port",
    "save",
    "state_dict",
    "spec",
    "summary",
    "tie",
    "ties",
    "untie",
    "where",
    "wrap",
]
