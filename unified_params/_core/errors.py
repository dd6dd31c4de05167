"""The one error hierarchy of unified-params.

Every error the library raises derives from [UnifiedParamsError][unified_params.UnifiedParamsError] and
also from the builtin a user of PyTorch, Keras or Paddle would already catch,
so ``except KeyError`` keeps working around ``m["no.such.path"]``.

Messages have three parts: what happened, what was expected, and
``Received: name=value``.
"""

from __future__ import annotations

from typing import Any


class UnifiedParamsError(Exception):
    """Base class of every error raised by unified-params.

    Examples:
        >>> try:
        ...     raise PathError("No entry at path 'x'.")
        ... except UnifiedParamsError as err:
        ...     print(type(err).__name__)
        PathError
    """

    def __str__(self) -> str:  # KeyError would otherwise print repr(message)
        return str(self.args[0]) if self.args else ""


class PathError(UnifiedParamsError, KeyError):
    """A path names no module and no parameter of the model."""


class PositionError(UnifiedParamsError, IndexError):
    """An integer position is outside the children of a module."""


class ShapeError(UnifiedParamsError, ValueError):
    """A value's shape does not fit the parameter it is written to."""


class DTypeError(UnifiedParamsError, TypeError):
    """A value is not numeric, or cannot be cast to the parameter's dtype."""


class NotBuiltError(UnifiedParamsError, ValueError):
    """A model's variables do not exist yet (an unbuilt Keras model, a torch
    lazy module before its first call), or have a shape but no values (torch's
    meta device, ``paddle.LazyGuard``, ``nnx.eval_shape``).

    ``path``: the module or variable it is about, once the message names it (else None).
    """

    path: str | None = None


class UnsupportedError(UnifiedParamsError, TypeError):
    """An object is not a model of a supported framework."""


class BackendNotInstalledError(UnifiedParamsError, ImportError):
    """A backend was requested whose framework is not installed."""


class InitError(UnifiedParamsError, ValueError):
    """An initializer got invalid arguments, or cannot initialise a parameter."""


class TieError(UnifiedParamsError, ValueError):
    """Parameters or layers cannot be tied or untied as asked."""


class PortError(UnifiedParamsError, ValueError):
    """Weights cannot be ported between two models.

    ``report``: when the port got as far as checking outputs, the `PortReport`
    of what was matched and converted (else None).
    """

    report: Any = None


class CheckpointError(UnifiedParamsError, ValueError):
    """A checkpoint file is missing, malformed or does not fit the model.

    ``report``: when a state was read but does not fit, the `LoadReport` of
    what did not (else None).
    """

    report: Any = None


def received(**values: object) -> str:
    """Render the ``Received: a=1, b='x'`` tail of an error message.

    Examples:
        >>> received(path="0.wieght", backend="torch")
        "Received: path='0.wieght', backend='torch'"
    """
    return "Received: " + ", ".join(f"{k}={v!r}" for k, v in values.items())


def at_path(path: str, err: NotBuiltError) -> NotBuiltError:
    """``err`` with the path of the module or variable it is about; ``err``
    itself where it names one already (an inner call said where).

    Examples:
        >>> named = at_path("0.weight", NotBuiltError("It has no values yet."))
        >>> str(named), named.path, at_path("0", named) is named
        ("At path '0.weight': It has no values yet.", '0.weight', True)
    """
    if err.path is not None:
        return err
    where = repr(path) if path else "the root"
    named = NotBuiltError(f"At path {where}: {err}")
    named.path = path
    return named


def without_values(variable: str, why: str, **got: object) -> NotBuiltError:
    """The error for a read of ``variable``, which has a shape but no values
    (``why``), where a whole write gives it values.

    Examples:
        >>> str(without_values("A paddle parameter", "it was made under paddle.LazyGuard"))[:60]
        'A paddle parameter has no values yet: it was made under padd'
    """
    return NotBuiltError(
        f"{variable} has no values yet: {why}, so there is nothing to read. Expected a model with "
        "values: initialise or load it first (up.initialize, up.load, or up.port without "
        "check_input, which keeps the destination's values to give back if the check fails); a "
        "write of a whole variable (p.set(value)) gives it values. " + received(**got)
    )


# Shown as users import them (`unified_params.PathError`), also in tracebacks.
for _error in (
    UnifiedParamsError, PathError, PositionError, ShapeError, DTypeError, NotBuiltError,
    UnsupportedError, BackendNotInstalledError, InitError, TieError, PortError, CheckpointError,
):  # fmt: skip
    _error.__module__ = "unified_params"
del _error
