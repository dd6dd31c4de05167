"""unified-params: one API for parameter management in PyTorch, Keras 3, Paddle and Flax NNX.

Access by index or path, collect all parameters, set values, and summarise a
model, with the same meaning on every backend::

    import unified_params as up

    m = up.wrap(model)            # torch.nn.Module, keras Layer/Model, paddle.nn.Layer, nnx.Module
    m(x)                          # the model's own forward pass, numpy in and out
    m[2]["bias"].numpy()          # by position, then by name
    m["2.weight"].shape           # canonical (PyTorch's) on every backend
    m["2.weight"][0][0] = 42      # in place, canonical indexing, chained or not
    m.params("*.weight")          # every weight, shared ones once
    print(up.summary(model))

Importing this package imports no framework.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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
from ._version import __version__

if TYPE_CHECKING:  # what the names below are; loaded on first use at run time
    from . import init, plot, spec
    from ._core.selectors import Where, where
    from ._core.slices import ParamSlice
    from ._core.view import Module, Param
    from .access import forward, summary, wrap
    from .backends import backend_of
    from .checkpoints import (
        ConvertReport,
        LoadReport,
        PortReport,
        convert,
        load,
        load_state_dict,
        port,
        save,
        state_dict,
    )
    from .init import initialize
    from .tying import gradients, tie, ties, untie

# Public name -> the module that defines it. `import unified_params` loads none
# of them (nor numpy): each is imported the first time it is used, so a script
# that only imports the package, or a CLI that only prints help, starts fast.
_LAZY = {
    **dict.fromkeys(("init", "plot", "spec"), ""),
    **dict.fromkeys(("Where", "where"), "._core.selectors"),
    **dict.fromkeys(("Module", "Param"), "._core.view"),
    "ParamSlice": "._core.slices",
    **dict.fromkeys(("forward", "summary", "wrap"), ".access"),
    "backend_of": ".backends",
    **dict.fromkeys(
        (
            "ConvertReport",
            "LoadReport",
            "PortReport",
            "convert",
            "load",
            "load_state_dict",
            "port",
            "save",
            "state_dict",
        ),
        ".checkpoints",
    ),
    "initialize": ".init",
    **dict.fromkeys(("gradients", "tie", "ties", "untie"), ".tying"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = import_module(f".{name}" if module == "" else module, __name__)
    if module != "":
        value = getattr(value, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BackendNotInstalledError",
    "CheckpointError",
    "ConvertReport",
    "DTypeError",
    "InitError",
    "LoadReport",
    "Module",
    "NotBuiltError",
    "Param",
    "ParamSlice",
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
    "convert",
    "forward",
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
