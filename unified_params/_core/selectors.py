"""Selectors: which parameters a call applies to.

A selector is any of:

- a glob on the path (``"*.weight"``, ``"0.*"``), matched against the
  canonical path and the native one (``"1.kernel"``) alike, and, on a
  sub-view, against the paths relative to it too;
- a compiled regular expression, searched in the canonical path;
- [Where][unified_params.Where] (``up.where(kind="linear", name="bias")``);
- a predicate ``callable(param) -> bool``;
- a list or tuple of selectors: a parameter matches when any of them does.

``None`` selects everything.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import UnsupportedError, received
from .paths import relative

Predicate = Callable[[Any], bool]


@dataclass(frozen=True)
class Where:
    """Select by layer kind, leaf name and/or path glob; all given must hold.

    Examples:
        >>> sel = Where(kind="linear", name="bias")
        >>> sel.kind, sel.name
        ('linear', 'bias')
    """

    kind: str | None = None
    name: str | None = None
    path: str | None = None

    def __call__(self, param: Any) -> bool:
        if self.kind is not None and param.layer_kind != self.kind:
            return False
        if self.name is not None and self.name not in (param.name, param.native_name):
            return False
        return self.path is None or _glob(self.path)(param)


def where(*, kind: str | None = None, name: str | None = None, path: str | None = None) -> Where:
    """Build a selector from a layer kind, a leaf name and/or a path glob.

    Examples:
        >>> where(kind="linear", name="weight")
        Where(kind='linear', name='weight', path=None)
    """
    return Where(kind=kind, name=name, path=path)


def compile_selector(selector: Any, base: str = "") -> Predicate:
    """Turn any selector into a predicate over parameters.

    ``base`` is the path of the sub-view the selection is made in: globs and
    regexes then also match the paths relative to it (``"weight"`` below
    ``"2"``).

    Raises:
        UnsupportedError: The selector is of no supported form.

    Examples:
        >>> compile_selector(None)(object())
        True
    """
    if selector is None:
        return lambda param: True
    if isinstance(selector, str):
        return _glob(selector, base)
    if isinstance(selector, re.Pattern):
        return lambda param: any(selector.search(p) is not None for p in _paths(param, base, native=False))
    if isinstance(selector, (list, tuple)):
        parts = [compile_selector(s, base) for s in selector]
        return lambda param: any(p(param) for p in parts)
    if callable(selector):
        return selector
    raise UnsupportedError(
        "Cannot select parameters with this selector. Expected a path glob (str), a compiled "
        "regex, up.where(...), a callable(param) -> bool, or a list of these. "
        + received(where=selector, type=type(selector).__name__)
    )


def _glob(pattern: str, base: str = "") -> Predicate:
    regex = re.compile(fnmatch.translate(pattern))

    def match(param: Any) -> bool:
        return any(regex.match(p) is not None for p in _paths(param, base, native=True))

    return match


def _paths(param: Any, base: str, *, native: bool) -> list[str]:
    """The paths a selector is matched against: absolute, then relative to ``base``."""
    out = [param.path, param.native_path] if native else [param.path]
    if base:
        out += [r for r in (relative(p, base) for p in out) if r is not None]
    return out
