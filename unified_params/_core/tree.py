"""Walking a model: every position, every variable, and the dedup rule.

One policy for every collector: a native object (layer or variable) reached
at several paths is the same object, so collectors list it once, under the
first path in depth-first order; the other paths are its aliases. This is the
dedup Keras applies to ``weights``; torch and paddle ``state_dict`` emit every
alias instead, and ``Sequential.layers`` in Keras 3 lists a reused layer twice.

These walks run on every collect-all of a model not seen before, so they stay
lean: one adapter call per module for its children and one for its variables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from . import layouts
from .errors import NotBuiltError

if TYPE_CHECKING:
    from ..backends._base import Adapter


class _Fields(NamedTuple):
    path: str
    module_path: str
    module: Any
    layer_kind: str
    name: str
    native_name: str
    var: Any
    kind: str
    leaf: layouts.Leaf | None
    persistent: bool = True


class Entry(_Fields):
    """One occurrence of a variable at one path.

    Attributes:
        path: Path with the canonical leaf name (``"1.weight"``).
        module_path: Path of the module holding the variable (``"1"``).
        module: The native module.
        layer_kind: The module's layer kind (``"linear"``).
        name: Canonical leaf name; ``native_name``: the framework's.
        var: The native variable.
        kind: ``"param"`` or ``"buffer"``.
        leaf: What the adapter declares for the variable, if anything.
        persistent: Whether the framework saves it (torch's non-persistent
            buffers are not: they are rebuilt by the model, never checkpointed).
    """

    # A tuple (made in C on the hot path: `_entry`), compared and hashed by identity:
    # its members include framework tensors, whose `==` is elementwise.
    __slots__ = ()
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    @property
    def native_path(self) -> str:
        """The path with the framework's own leaf name (``"1.kernel"``)."""
        return extend(self.module_path, self.native_name)

    def __repr__(self) -> str:
        return f"Entry({self.path!r}, kind={self.kind!r})"


def extend(path: str, key: str) -> str:
    """``path`` one key deeper (the hot-path form of ``paths.join``).

    Examples:
        >>> extend("", "0"), extend("0", "weight")
        ('0', '0.weight')
    """
    return f"{path}.{key}" if path else key


def walk(adapter: Adapter, module: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every module position, depth-first, the root first; shared layers at each.

    A module is not entered again below itself, so a cyclic graph cannot
    loop forever; the walk keeps its own stack, so depth is not limited by
    Python's recursion limit.
    """
    return walk_entries(adapter, module, prefix, entries=False)[0]


def walk_entries(
    adapter: Adapter, module: Any, prefix: str = "", *, entries: bool = True
) -> tuple[list[tuple[str, Any]], list[Entry]]:
    """`walk` and, in the same pass, every module's `own_entries` (each module
    is read once while it is in the CPU's caches: a large model's layers are
    scattered in memory)."""
    out: list[tuple[str, Any]] = []
    found: list[Entry] = []
    ancestors: set[int] = set()  # ids of the modules on the current chain
    children = adapter.children
    stack: list[tuple[str | None, Any]] = [(prefix, module)]
    while stack:
        path, node = stack.pop()
        if path is None:  # leaving the module whose id this is
            ancestors.discard(node)
            continue
        out.append((path, node))
        if entries:
            own = own_entries(adapter, node, path)
            if own:
                found += own
        kids = children(node)
        if kids:
            ancestors.add(id(node))
            stack.append((None, id(node)))
            stack += [
                (f"{path}.{key}" if path else key, child)
                for key, child in reversed(kids)
                if id(child) not in ancestors
            ]
    return out, found


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
    if not native:
        return []
    cls: Any = type(module)
    per_instance = _PER_INSTANCE.get(cls)
    if per_instance is None:
        per_instance = _PER_INSTANCE[cls] = issubclass(cls, adapter.INSTANCE_KINDS)
    if per_instance:  # a kind set by the layer's settings (an NNX Conv's rank): cached per kind
        cls = (cls, adapter.kind(module))
    facts = _BY_SLOT.get(cls)
    if facts is None:
        facts = _BY_SLOT[cls] = {}
    dot = f"{module_path}." if module_path else ""
    out = []
    for native_name, var, role in native:  # a loop, not a comprehension: cheaper for a few variables
        fact = facts.get(native_name)
        if fact is None or fact[5] != role:
            fact = facts[native_name] = _slot_facts(adapter, module, native_name, role)
        name, kind, entry_kind, leaf, persistent, _ = fact
        out.append(
            _entry(
                Entry,
                (dot + name, module_path, module, kind, name, native_name, var, entry_kind, leaf, persistent),
            )
        )
    return out


def _slot_facts(adapter: Adapter, module: Any, native_name: str, role: str) -> _SlotFacts:
    """What an entry of this layer class's slot always holds (the slot's role included)."""
    kind = adapter.kind(module)
    declared, buffers = adapter.LEAVES.get(kind), layouts.BUFFERS.get(kind)
    leaf = None if declared is None else declared.get(native_name)
    name = native_name if leaf is None else leaf.canonical
    buffer = role != "param" or (buffers is not None and name in buffers)
    return name, kind, "buffer" if buffer else "param", leaf, role != "transient", role


#: A slot's canonical name, its layer's kind, its entry's kind, its leaf, whether
#: it is saved, and the native role these were worked out for.
_SlotFacts = tuple[str, str, str, "layouts.Leaf | None", bool, str]
#: Per layer class (or class and kind), per native variable name: its `_SlotFacts`.
_BY_SLOT: dict[Any, dict[str, _SlotFacts]] = {}


#: Makes an `Entry` from a tuple of all its fields, in C.
_entry = tuple.__new__


#: Per layer class: whether its kind depends on the instance.
_PER_INSTANCE: dict[type, bool] = {}


def canonical_shape(adapter: Adapter, entry: Entry) -> tuple[int, ...]:
    """The canonical (PyTorch) shape of an entry's variable."""
    native = adapter.shape(entry.var)
    return layouts.plan(entry.layer_kind, entry.leaf, len(native)).canonical_shape(native)


def all_entries(adapter: Adapter, root: Any, prefix: str = "") -> list[Entry]:
    """Every variable occurrence below ``root``, aliases included, in order."""
    out: list[Entry] = []
    for path, module in walk(adapter, root, prefix):
        out += own_entries(adapter, module, path)
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
        group = groups.get(id(entry.var))
        if group is None:
            groups[id(entry.var)] = [entry]
        else:
            group.append(entry)
    return groups
