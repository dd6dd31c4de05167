"""Walking a model: every position, every variable, and the dedup rule.

One policy for every collector: a native object (layer or variable) reached
at several paths is the same object, so collectors list it once, under the
first path in depth-first order; the other paths are its aliases. This is the
dedup Keras applies to ``weights``; torch and paddle ``state_dict`` emit every
alias instead, and ``Sequential.layers`` in Keras 3 lists a reused layer twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import layouts
from .errors import NotBuiltError
from .paths import join

if TYPE_CHECKING:
    from ..backends._base import Adapter


@dataclass(frozen=True)
class Entry:
    """One occurrence of a variable at one path."""

    path: str
    module_path: str
    module: Any
    layer_kind: str
    name: str
    native_name: str
    var: Any
    kind: str  # "param" | "buffer"
    leaf: layouts.Leaf | None

    @property
    def native_path(self) -> str:
        """The path with the framework's own leaf name (``"1.kernel"``)."""
        return join(self.module_path, self.native_name)


def walk(adapter: Adapter, module: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every module position, depth-first, the root first; shared layers at each.

    A module that contains itself is visited once per ancestry chain, so a
    cyclic graph cannot recurse forever.
    """
    stack: list[tuple[str, Any, frozenset[int]]] = [(prefix, module, frozenset())]
    while stack:
        path, node, ancestors = stack.pop()
        yield path, node
        inner = ancestors | {id(node)}
        kids = [(join(path, k), c) for k, c in adapter.children(node) if id(c) not in inner]
        stack.extend((p, c, inner) for p, c in reversed(kids))


def own_entries(adapter: Adapter, module: Any, module_path: str) -> list[Entry]:
    """The entries of one module's own variables, with canonical names.

    Raises:
        NotBuiltError: The module is not built; the message names its path.
    """
    try:
        native = adapter.variables(module)
    except NotBuiltError as err:
        where = repr(module_path) if module_path else "the root"
        raise NotBuiltError(f"At path {where}: {err}") from None
    kind = adapter.kind(module)
    declared = adapter.LEAVES.get(kind, {})
    out = []
    for native_name, var, native_buffer in native:
        leaf = declared.get(native_name)
        name = leaf.canonical if leaf is not None else native_name
        role = "buffer" if native_buffer or layouts.is_buffer(kind, name) else "param"
        out.append(
            Entry(join(module_path, name), module_path, module, kind, name, native_name, var, role, leaf)
        )
    return out


def all_entries(adapter: Adapter, root: Any, prefix: str = "") -> list[Entry]:
    """Every variable occurrence below ``root``, aliases included, in order."""
    out: list[Entry] = []
    for path, module in walk(adapter, root, prefix):
        out.extend(own_entries(adapter, module, path))
    return out


def unique_modules(adapter: Adapter, root: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Modules below ``root`` (itself included), unique by identity, first path wins."""
    seen: set[int] = set()
    out = []
    for path, module in walk(adapter, root, prefix):
        if id(module) not in seen:
            seen.add(id(module))
            out.append((path, module))
    return out


def group_by_variable(entries: list[Entry]) -> dict[int, list[Entry]]:
    """Entries grouped by the identity of their variable, in first-seen order."""
    groups: dict[int, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(id(entry.var), []).append(entry)
    return groups
