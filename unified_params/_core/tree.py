"""Walking a model: every position, every variable, and the dedup rule.

One policy for every collector: a native object (layer or variable) reached
at several paths is the same object, so collectors list it once, under the
first path in depth-first order; the other paths are its aliases. This is the
dedup Keras applies to ``weights``; torch and paddle ``state_dict`` emit every
alias instead, and ``Sequential.layers`` in Keras 3 lists a reused layer twice.

One exception (`listed_rows`): a variable that a layer of unknown kind also
holds (a wrapper keeping its inner layer's kernel, Keras'
``SpectralNormalization``) is listed where a layer lays it out: at the first
path whose layer is of a kind with a canonical layout. Listed at the wrapper,
it would be shown and saved in the framework's own layout as if canonical (a
paddle kernel's ``(in, out)``), and a file would load it transposed into a
torch model of the same make. Keras' own ``variable.path`` names that layer too.

These walks run on every collect-all of a model not seen before, so they stay
lean: one adapter call per module for its children and one for its variables,
and where the adapter can tell that a container's children are leaves (a
Sequential of plain layers), one call for all of them (`Adapter.leaf_variables`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar, cast

from . import layouts, leaf_norms
from .errors import NotBuiltError, at_path

if TYPE_CHECKING:
    from ..backends._base import Adapter, NativeVariable


class Slot(NamedTuple):
    """What every variable in one slot of one layer class shares: worked out
    once per class and native name, then held by each of its entries.

    Attributes:
        name: Canonical leaf name (``"weight"``); ``native_name``: the framework's.
        layer_kind: The layer's kind (``"linear"``).
        kind: ``"param"`` or ``"buffer"``.
        leaf: What the adapter declares for the slot, if anything.
        persistent: Whether the framework saves it.
        role: The framework's role the slot was worked out for
            (``"param"``, ``"buffer"``, ``"transient"``).
        own_layout: The adapter declares a table of leaves for the layer's kind
            and this leaf is not in it: its value is kept in the framework's
            own layout, whose canonical form the library does not know.
    """

    name: str
    native_name: str
    layer_kind: str
    kind: str
    leaf: layouts.Leaf | None
    persistent: bool
    role: str
    own_layout: bool


class _Fields(NamedTuple):
    path: str
    module_path: str
    module: Any
    var: Any
    slot: Slot


class Entry(_Fields):
    """One occurrence of a variable at one path.

    Attributes:
        path: Path with the canonical leaf name (``"1.weight"``).
        module_path: Path of the module holding the variable (``"1"``).
        module: The native module.
        var: The native variable.
        slot: What it shares with every variable of its layer class's slot; also
            read as the entry's own ``name``, ``native_name``, ``layer_kind``,
            ``kind`` (``"param"`` or ``"buffer"``), ``leaf`` and ``persistent``
            (torch's non-persistent buffers are not saved: the model rebuilds them).
    """

    # Compared and hashed by identity: its members include framework tensors, whose
    # `==` is elementwise. The walk makes its fields as a plain tuple (`Row`).
    __slots__ = ()
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    # Read through the shared slot in C (a property over a dotted attrgetter).
    name = property(attrgetter("slot.name"), doc='Canonical leaf name (``"weight"``).')
    native_name = property(attrgetter("slot.native_name"), doc="The framework's leaf name.")
    layer_kind = property(attrgetter("slot.layer_kind"), doc="The holding layer's kind.")
    kind = property(attrgetter("slot.kind"), doc='``"param"`` or ``"buffer"``.')
    leaf = property(attrgetter("slot.leaf"), doc="What the adapter declares, if anything.")
    persistent = property(attrgetter("slot.persistent"), doc="Whether the framework saves it.")

    @property
    def native_path(self) -> str:
        """The path with the framework's own leaf name (``"1.kernel"``)."""
        return extend(self.module_path, self.slot.native_name)

    def __repr__(self) -> str:
        return f"Entry({self.path!r}, kind={self.kind!r})"


#: An entry's fields as a plain tuple, in `Entry`'s order: what a walk makes
#: (a named tuple's instance costs a second allocation, a fifth of a Keras walk;
#: `Entry._make(row)` names it).
Row = tuple[str, str, Any, Any, Slot]
#: Where a `Row` (and an `Entry`) holds each field.
_PATH: Final = 0
_MODULE_PATH: Final = 1
_MODULE: Final = 2
_VAR: Final = 3
_SLOT: Final = 4


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
    return walk_rows(adapter, module, prefix, rows=False)[0]


def walk_rows(
    adapter: Adapter, module: Any, prefix: str = "", *, rows: bool = True
) -> tuple[list[tuple[str, Any]], list[Row]]:
    """`walk` and, in the same pass, every module's variables as `Row` s (each
    module is read once while it is in the CPU's caches: a large model's layers
    are scattered in memory). A container's leaves are read in one adapter call
    (`Adapter.leaf_variables`): at 1,000 Keras Dense layers that took a first
    collect-all from 3.2x to 2.1x of Keras' ``weights``, torch's from 1.6x to
    1.2x of ``named_parameters()`` (with a class's slots looked up once per run
    of its layers, and a Keras variable's name checked against the names seen)."""
    out: list[tuple[str, Any]] = []
    found: list[Row] = []
    ancestors: set[int] = set()  # ids of the modules on the current chain
    children, variables, leaves = adapter.children, adapter.variables, adapter.leaf_variables
    # (path, module, its variables if `leaf_variables` read them with its siblings: a leaf)
    stack: list[tuple[str | None, Any, list[NativeVariable] | None]] = [(prefix, module, None)]
    while stack:
        path, node, own = stack.pop()
        if path is None:  # leaving the module whose id this is
            ancestors.discard(node)
            continue
        out.append((path, node))
        if own is not None:
            if own:
                found += _rows(adapter, node, path, own)
            continue
        if rows:
            try:
                native = variables(node)
            except NotBuiltError as err:
                raise at_path(path, err) from None
            if native:
                found += _rows(adapter, node, path, native)
        kids = children(node)
        if not kids:
            continue
        placed = [(f"{path}.{key}", child) for key, child in kids] if path else kids
        read = leaves([child for _, child in kids]) if rows else [None] * len(kids)
        if None not in read:  # leaves only (a Sequential of plain layers): read in order here
            out += placed
            found += _leaf_rows(adapter, placed, cast("list[list[NativeVariable]]", read))
            continue
        ancestors.add(id(node))
        stack.append((None, id(node), None))
        stack += [
            (at, child, own)
            for (at, child), own in zip(reversed(placed), reversed(read), strict=True)
            if id(child) not in ancestors
        ]
    return out, found


def own_entries(adapter: Adapter, module: Any, module_path: str) -> list[Entry]:
    """The entries of one module's own variables, with canonical names.

    Raises:
        NotBuiltError: The module is not built; the message names its path.
    """
    return list(map(Entry._make, own_rows(adapter, module, module_path)))


def own_rows(adapter: Adapter, module: Any, module_path: str) -> list[Row]:
    """`own_entries` as plain `Row` s."""
    try:
        native = adapter.variables(module)
    except NotBuiltError as err:
        raise at_path(module_path, err) from None
    return _rows(adapter, module, module_path, native) if native else []


def _rows(adapter: Adapter, module: Any, module_path: str, native: list[NativeVariable]) -> list[Row]:
    """The rows of a module's variables as its adapter lists them."""
    return _leaf_rows(adapter, ((module_path, module),), (native,))


def _leaf_rows(
    adapter: Adapter, placed: Iterable[tuple[str, Any]], natives: Iterable[list[NativeVariable]]
) -> list[Row]:
    """`_rows` for many modules at once, each ``(path, module)`` with its
    variables: one call for a container's layers, and a class's slots looked
    up once for a run of layers of that class."""
    out: list[Row] = []
    last: Any = None
    slots: dict[str, Slot] = {}
    for (module_path, module), native in zip(placed, natives, strict=True):
        if not native:
            continue
        cls: Any = type(module)
        if cls is not last:
            last = cls
            per_instance = _PER_INSTANCE.get(cls)
            if per_instance is None:
                per_instance = _PER_INSTANCE[cls] = issubclass(cls, adapter.INSTANCE_KINDS)
            if per_instance:  # a kind set by the layer's settings (an NNX Conv's rank): cached per kind
                last = None  # looked up again for the next layer
                kind = adapter.kind(module)
                cls = (cls, kind, id(adapter.leaves(module, kind)))  # and per declared table
            found = _BY_SLOT.get(cls)
            slots = _BY_SLOT[cls] = {} if found is None else found
        dot = f"{module_path}." if module_path else ""
        for native_name, var, role in native:  # a loop, not a comprehension: cheaper for a few variables
            slot = slots.get(native_name)
            if slot is None or slot[6] != role:  # [6]: the slot's role, read in C
                slot = _slot(adapter, module, native_name, role)
                if slot.leaf is None or not slot.leaf.per_layer:
                    slots[native_name] = slot
            out.append((dot + slot[0], module_path, module, var, slot))  # [0]: its name
    return out


def _slot(adapter: Adapter, module: Any, native_name: str, role: str) -> Slot:
    """What every entry of this layer class's slot holds (for the slot's role)."""
    kind = adapter.kind(module)
    declared, buffers = adapter.leaves(module, kind), layouts.BUFFERS.get(kind)
    leaf = _norm_leaf(adapter, module, kind, declared, native_name)
    if leaf is None and declared is not None:
        leaf = declared.get(native_name)
    name = native_name if leaf is None else leaf.canonical
    buffer = role != "param" or (buffers is not None and name in buffers)
    # A kind's table lists every leaf its adapter knows; a leaf outside it (a weight
    # norm's `weight_v` on a layer that transposes its weight) keeps the framework's layout.
    own = declared is not None and leaf is None
    return Slot(
        name, native_name, kind, "buffer" if buffer else "param", leaf, role != "transient", role, own
    )


def _norm_leaf(
    adapter: Adapter, module: Any, kind: str, declared: Mapping[str, layouts.Leaf] | None, native_name: str
) -> layouts.Leaf | None:
    """How a norm of this layer lays out its variable ``native_name``, if it
    keeps one so (`leaf_norms.leaves`)."""
    for norm in adapter.leaf_norms(module):
        if native_name not in dict(norm.parts).values():
            continue
        weight = None if declared is None else declared.get(norm.leaf)
        found = leaf_norms.leaves(norm, kind, weight, leaf_rank(adapter, module, norm))
        return found.get(native_name)
    return None


def norm_keys(adapter: Adapter, module: Any, kind: str) -> tuple[tuple[str, str, int | None], ...]:
    """What a layer's norms are, as two paired layers must share them (`leaf_norms.key`)."""
    norms = adapter.leaf_norms(module)
    if not norms:
        return ()
    declared = adapter.leaves(module, kind) or {}
    return tuple(
        leaf_norms.key(norm, kind, declared.get(norm.leaf), leaf_rank(adapter, module, norm))
        for norm in norms
    )


def leaf_rank(adapter: Adapter, module: Any, norm: leaf_norms.LeafNorm) -> int:
    """The rank of the leaf ``norm`` computes: its variable laid out as the leaf's."""
    return len(_leaf_shape(adapter, module, norm))


def _leaf_shape(adapter: Adapter, module: Any, norm: leaf_norms.LeafNorm) -> tuple[int, ...]:
    """The native shape of ``norm``'s variable laid out as the leaf it computes."""
    holder, _, held = norm.shaped_as_leaf.rpartition(".")
    for key in holder.split(".") if holder else ():  # torch's parametrizations keep it apart
        module = adapter.child(module, key)
    return next(tuple(adapter.shape(var)) for name, var, _ in adapter.variables(module) if name == held)


def spectral_forms(adapter: Adapter, module: Any, kind: str) -> dict[str, leaf_norms.SpectralForm]:
    """Per variable of a spectral norm of ``module`` (its path within the
    layer), the form a port moves it in, where one is known
    (`leaf_norms.spectral_form`)."""
    declared = adapter.leaves(module, kind) or {}
    found: dict[str, leaf_norms.SpectralForm] = {}
    for norm in adapter.leaf_norms(module):
        if norm.make != "spectral":
            continue
        shape = _leaf_shape(adapter, module, norm)
        form = leaf_norms.spectral_form(norm, kind, declared.get(norm.leaf), shape)
        if form is not None:
            found.update(dict.fromkeys((path for _, path in norm.parts), form))
    return found


#: Per layer class (or class and kind), per native variable name: its `Slot`.
_BY_SLOT: dict[Any, dict[str, Slot]] = {}


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


#: A `Row`, or an `Entry` (the same fields, named).
R = TypeVar("R", bound=tuple)
#: The layer kinds whose leaves have a canonical layout.
_LAID_OUT = layouts.CANONICAL_AXES


def listed_rows(rows: Iterable[R]) -> dict[int, R]:
    """Per variable (by identity), the row a collector lists it at: the first
    whose layer is of a kind with a canonical layout (`layouts.CANONICAL_AXES`),
    else its first. The other rows' paths are its aliases. Rows or `Entry` s.

    Examples:
        >>> import torch
        >>> from unified_params.backends import adapter_for
        >>> class Wrapper(torch.nn.Module):  # a layer of unknown kind holding its inner layer's weight
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.inner = torch.nn.Linear(4, 2)
        ...         self.w = self.inner.weight
        >>> net = Wrapper()
        >>> rows = walk_rows(adapter_for(net), net)[1]
        >>> [row[0] for row in rows]  # row[0]: the path, in walk order
        ['w', 'inner.weight', 'inner.bias']
        >>> [row[0] for row in listed_rows(rows).values()]
        ['inner.weight', 'inner.bias']
    """
    chosen: dict[int, R] = {}
    for row in rows:
        key = id(row[_VAR])
        held = chosen.get(key)
        if held is None or borrowed(held[_SLOT], row[_SLOT]):
            chosen[key] = row
    return chosen


def shown_as(row: R, listed: Mapping[int, R]) -> R:
    """The row (or `Entry`) whose layout shows ``row``'s variable: itself, or,
    where ``row``'s layer is of unknown kind and a layer lays the variable out
    (`borrowed`), the row ``listed`` (from `listed_rows`) has for it. A look-up
    at a wrapper's own ``kernel`` answers with it, and a summary prints it so.

    Examples:
        >>> from types import SimpleNamespace as At
        >>> kernel = object()  # rows: (path, module path, module, variable, slot)
        >>> held = ("w", "", None, kernel, At(layer_kind="other"))
        >>> laid = ("inner.weight", "inner", None, kernel, At(layer_kind="linear"))
        >>> shown_as(held, listed_rows([held, laid]))[0]
        'inner.weight'
    """
    other = listed.get(id(row[_VAR]))
    return other if other is not None and borrowed(row[_SLOT], other[_SLOT]) else row


def laid_out_as(row: Row, layer: Row) -> Row:
    """``row`` (its path and names) with the layout of ``layer``, the row of
    the layer that lays its variable out: what a view below a layer of
    unknown kind, but not below that layer, lists the variable as, so that it
    shows and saves it canonical, not in the framework's own layout.

    Examples:
        >>> from unified_params.backends import adapter_for
        >>> import torch
        >>> class Holder(torch.nn.Module):  # beside the Linear, holding its weight
        ...     def __init__(self, linear):
        ...         super().__init__()
        ...         self.w = linear.weight
        >>> linear = torch.nn.Linear(4, 2)
        >>> net = torch.nn.Sequential(linear, Holder(linear))
        >>> laid, _, held = walk_rows(adapter_for(net), net)[1]  # rows: weight, bias, the held weight
        >>> shown = laid_out_as(held, laid)
        >>> shown[0], shown[4].name, shown[4].layer_kind
        ('1.w', 'w', 'linear')
    """
    slot, laid = row[_SLOT], layer[_SLOT]
    shown = slot._replace(layer_kind=laid.layer_kind, leaf=laid.leaf, own_layout=laid.own_layout)
    return (row[_PATH], row[_MODULE_PATH], row[_MODULE], row[_VAR], shown)


def borrowed(alias: Any, listed: Any) -> bool:
    """Whether a variable's path ``alias`` is one `listed_rows` passed over for
    ``listed``: a layer of unknown kind holding what a layer lays out (both
    Params, or anything with their ``layer_kind``). A look-up at such a path
    answers with the listed parameter, canonical.

    Examples:
        >>> from types import SimpleNamespace as At
        >>> borrowed(At(layer_kind="other"), At(layer_kind="linear"))
        True
        >>> borrowed(At(layer_kind="linear"), At(layer_kind="linear"))  # a tie between two layers
        False
    """
    return not laid_out(alias) and laid_out(listed)


def laid_out(at: Any) -> bool:
    """Whether the layer of ``at`` (a `Slot`, a Param, anything with a
    ``layer_kind``) is of a kind with a canonical layout.

    Examples:
        >>> from types import SimpleNamespace as At
        >>> laid_out(At(layer_kind="linear")), laid_out(At(layer_kind="other"))
        (True, False)
    """
    return at.layer_kind in _LAID_OUT


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
