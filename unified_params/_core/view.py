"""The unified view of a model: `Module` and [Param][unified_params.Param].

Views are cheap: they hold the native object, its path and the adapter, never
a copy of a value. Every read goes to the native model, so a view always shows
the model as it is now.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from . import foreign, gc_pause, layouts, transpose, values
from .errors import NotBuiltError, PathError, PositionError, ShapeError, UnsupportedError, at_path, received
from .flatten import flat_layout
from .paths import join, nearest, relative, split
from .selectors import compile_selector
from .sharding import Sharding, local_write
from .slices import ParamSlice, compose, selection_shape
from .snapshot import Snapshot
from .tree import (
    _MODULE,
    _MODULE_PATH,
    _PATH,
    _SLOT,
    _VAR,
    Entry,
    Row,
    all_entries,
    extend,
    group_by_variable,
    laid_out,
    laid_out_as,
    listed_rows,
    own_rows,
    shown_as,
    unique_modules,
    walk_rows,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..backends._base import Adapter
    from ..backends.registry import Capabilities

LAYOUTS = ("native", "canonical")
#: Writes to one variable are serialised: a sliced write is a read-modify-write on
#: frameworks without in-place slices, and two at once would lose one. Striped by
#: the variable's identity, so tied paths (one variable) share a lock.
_WRITE_LOCKS = tuple(threading.RLock() for _ in range(64))


def write_lock(var: Any) -> threading.RLock:
    """The lock that serialises writes to ``var``."""
    return _WRITE_LOCKS[(id(var) >> 4) % len(_WRITE_LOCKS)]


class Module:
    """A layer or container of a native model, at one path.

    Get one with [unified_params.wrap][unified_params.wrap].

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> m = up.wrap(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU()))
        >>> m[0].type_name, m[0].kind, len(m)
        ('Linear', 'linear', 2)
    """

    __slots__ = ("_adapter", "_native", "_path", "_root", "_snap", "_lookups")

    def __init__(self, adapter: Adapter, native: Any, path: str = "", root: Module | None = None):
        self._adapter = adapter
        self._native = native
        self._path = path
        self._root = root  # None for the root itself: a view that held itself would be a cycle
        self._snap: Snapshot | None = None
        self._lookups = 0

    # -- identity ------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The backend's name, as the registry lists it (``"torch"``, ``"keras"``, ``"paddle"``)."""
        return self._adapter.name

    @property
    def native(self) -> Any:
        """The framework's own layer object."""
        return self._native

    @property
    def adapter(self) -> Adapter:
        """Internal, for the core and extension code: the backend's adapter,
        which translates every operation on this view to its framework."""
        return self._adapter

    @property
    def capabilities(self) -> Capabilities:
        """What the backend allows on the engine in use (see
        `unified_params.backends.Capabilities`).

        Examples:
            >>> m.capabilities.zero_copy_views  # reading a value shares its memory
            True
        """
        return self._adapter.capabilities

    @property
    def root(self) -> Module:
        """The view of the model that was wrapped (the root of `path`).

        Examples:
            >>> m[0].root is m
            True
        """
        return self if self._root is None else self._root

    @property
    def path(self) -> str:
        """Dotted path from the wrapped root (``""`` for the root)."""
        return self._path

    @property
    def type_name(self) -> str:
        """The framework's class name (``"Linear"``, ``"Dense"``)."""
        return self._adapter.type_name(self._native)

    @property
    def kind(self) -> str:
        """The layer kind, the same on every backend (``"linear"``)."""
        return self._adapter.kind(self._native)

    def __repr__(self) -> str:
        return f"<Module {self.backend}:{self.type_name} path={self._path!r}>"

    def __str__(self) -> str:
        """The model as nested blocks, like ``print(net)`` in PyTorch: the same
        text on every backend for a model built from one spec.

        Examples:
            >>> print(m)
            Sequential(
              (0): Linear(in_features=4, out_features=8)
              (1): ReLU()
            )
        """
        from .summary import render_tree

        return render_tree(self)

    def _repr_html_(self) -> str:
        """The summary as a table, in a notebook."""
        from .notebook import module_html

        return module_html(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Module) and other._native is self._native and other._path == self._path

    def __hash__(self) -> int:
        return hash((id(self._native), self._path))

    # -- children ------------------------------------------------------------
    def children(self) -> list[Module]:
        """One entry per position; a layer used twice appears at both.

        Examples:
            >>> [c.path for c in m.children()]
            ['0', '1']
        """
        return [self._child(key, native) for key, native in self._adapter.children(self._native)]

    def __len__(self) -> int:
        return len(self._adapter.children(self._native))

    def __iter__(self):
        return iter(self.children())

    def modules(self) -> list[Module]:
        """This module and all below it, depth-first, unique by identity.

        Examples:
            >>> [x.path for x in m.modules()]
            ['', '0', '1']
        """
        return [Module(self._adapter, native, path, self.root) for path, native in self._snapshot().modules]

    def __getitem__(self, key: int | str) -> Module | Param:
        """A child by position (``m[0]``, ``m[-1]``) or an entry by path.

        A path's keys are positions and attribute names; where a framework
        keys children by position and also names them (a Keras Sequential or
        functional model's layers), a key may be that name, as
        ``model.get_layer(name)`` takes it: ``m["conv1_conv.weight"]`` is the
        parameter at ``"2.weight"``. A path at which a layer of unknown kind
        holds a variable that a layer lays out (the kernel a wrapper such as
        Keras' ``SpectralNormalization`` keeps of its inner layer's, or a
        layer beside that one holding its weight) answers with that layer's
        parameter, at its path, canonical: as ``params()`` lists it. A view
        of the holder that does not hold the layer lists the variable at the
        holder's path, in the layer's layout, and answers so.

        Examples:
            >>> m["0.bias"].shape
            (8,)
        """
        if isinstance(key, str):
            found = self._indexed(key)  # `_lookup`, inlined: one call less on the hot path
            return self._walk_to(key) if found is None else found
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self._at_position(int(key))
        raise UnsupportedError(
            "Cannot index a module with this key. Expected an integer position or a dotted path "
            "string. " + received(key=key, type=type(key).__name__)
        )

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            self._lookup(path)
        except PathError:
            return False
        return True

    # -- running -------------------------------------------------------------
    def __call__(self, inputs: Any, training: bool = False) -> np.ndarray:
        """Run the model's own forward pass: an array in, a numpy array out.

        No gradient is recorded. Images are channels-first, as in PyTorch, on
        every backend (Keras gets them channels-last and gives them back
        channels-first); a recurrent layer gives its sequence output.

        Args:
            inputs: A numpy array, nested list or tensor of any framework.
            training: Run in training mode (dropout active, batch statistics
                used and updated).

        Raises:
            ShapeError: The input does not fit the model's first layer.

        Examples:
            >>> m(np.zeros((2, 4), "float32")).shape
            (2, 8)
        """
        from .forward import run

        return run(self, inputs, training=training)

    # -- parameters ----------------------------------------------------------
    def params(self, where: Any = None, trainable: bool | None = None) -> dict[str, Param]:
        """All parameters and buffers below this module, each once, keyed by
        their path relative to this module.

        As torch's ``net[2].named_parameters()``, ``m[2].params()`` keys by
        ``"weight"`` and ``"bias"``; each [Param.path][unified_params.Param.path] stays the
        absolute path from the wrapped root. A variable reached at several
        paths (a shared layer, a tied parameter) is listed under the first
        path in depth-first order; the other paths are its
        [Param.aliases][unified_params.Param.aliases]. A variable that a layer
        of unknown kind also holds (a wrapper keeping its inner layer's
        kernel, as Keras' ``SpectralNormalization`` does) is listed at the
        first layer that lays it out: the same path, canonical, on every backend.
        A view of such a holder that does not hold that layer (``m[1]`` of a
        Sequential whose layer ``1`` holds layer ``0``'s weight) lists it at
        the holder's own path, in that layer's layout. A variable that two
        layers lay out differently (a square Embedding's matrix that a Linear
        keeps as its ``(in, out)`` kernel) is two canonical matrices, one the
        other's transpose: it is listed at each (`count` counts it once).

        From its second call on, a view keeps its walk of the model and reuses
        it while the model's structure is unchanged (checked on every call):
        keep the view to make repeated calls cheap. Values are always read live.

        Args:
            where: A selector (see ``unified_params.where``): a path glob such
                as ``"*.weight"`` (matched against the absolute and the
                relative path), a regex, a predicate, or a list of these.
            trainable: Keep only trainable (``True``) or frozen (``False``)
                entries; ``None`` keeps both.

        Examples:
            >>> list(m.params("*.weight"))
            ['0.weight']
            >>> list(m[0].params()), m[0].params()["weight"].path
            (['weight', 'bias'], '0.weight')
        """
        with gc_pause.paused():  # tens of thousands of lasting objects: see `gc_pause`
            snap = self._snapshot()
            kept: dict[str, Param] | None = snap.memo.get("params")
            found = self._first_params(snap.rows) if kept is None else kept
        if kept is None:
            if snap.reusable:  # kept with the walk (a Param holds its view: kept only where it is reused)
                snap.memo["params"] = found
            elif where is None and trainable is None:  # a walk for this call alone: no one else gets it
                return found
        if where is None and trainable is None:
            return dict(found)
        match = compile_selector(where, base=self._path)
        return {
            path: p
            for path, p in found.items()
            if (trainable is None or p.trainable == trainable) and match(p)
        }

    def param(self, path: str) -> Param:
        """The parameter at a path relative to this module.

        Raises:
            PathError: No parameter at that path (the nearest paths are listed).

        Examples:
            >>> m.param("0.weight").name
            'weight'
        """
        found = self._lookup(path)
        if not isinstance(found, Param):
            raise PathError(
                f"Path {path!r} names a module ({found.type_name}), not a parameter. "
                f"Expected a parameter path such as "
                f"{join(self._relative(found.path), next(iter(found.params()), 'weight'))!r}. "
                + received(path=path)
            )
        return found

    def count(self) -> int:
        """Number of unique elements of kind ``"param"`` (buffers excluded).

        Examples:
            >>> m.count()
            40
        """
        return sum(p.size for p in one_per_variable(self.params().values()) if p.kind == "param")

    # -- internals -----------------------------------------------------------
    def _snapshot(self) -> Snapshot:
        """The walk below this module: the last one while the model is unchanged.

        A view's first walk is taken for one use (no fingerprint): a view made
        for one question, as in ``up.wrap(m).params()``, pays for no cache.
        From the second on, the walk is kept and reused until the model changes.
        """
        snap = self._snap
        if snap is None or not snap.current():
            with gc_pause.paused():
                snap = self._snap = Snapshot(
                    self._adapter, self._native, self._path, reusable=snap is not None
                )
        return snap

    def _first_params(self, rows: list[Row]) -> dict[str, Param]:
        """One Param per variable, at the path `listed_rows` lists it at (its
        first, unless a layer of unknown kind holds it first), the other paths its
        aliases; and one more at the first path of each other layout that layers
        lay the variable out in (`_laid_out_apart`), with that layout's paths."""
        adapter, root = self._adapter, self.root
        # Aliases are paths of the whole model: a sub-view leaves them to Param.aliases.
        none_yet = () if root is self else None
        cut = len(self._path) + 1 if self._path else 0
        if root is not self:
            rows = self._laid_out_rows(rows)
        found: dict[str, Param] = {}
        if len(set(map(id, map(_var_of, rows)))) == len(rows):  # no variable reached twice: in one pass
            for row in rows:
                # `Param(adapter, row, root, none_yet)`, its fields set here: without the call
                # of `__init__`, a first collect-all of 2,000 tensors took 3-4% less on every
                # backend (best of 200, both ways in one process).
                param = _new_object(Param)
                param._adapter = adapter
                param._row = row
                param._root = root
                param._aliases = none_yet
                found[row[_PATH][cut:] if cut else row[_PATH]] = param
            return found
        chosen = listed_rows(rows)
        made = {key: Param(adapter, row, root, none_yet) for key, row in chosen.items()}
        apart: dict[tuple[int, layouts.Layout], Param] = {}
        every: dict[int, list[str]] = {}  # per listed Param, its paths
        for row in rows:
            key = id(row[_VAR])
            first = chosen[key]
            # The listed row, a shared layer's at another position (its module alike), or an alias.
            layout = None if row[_MODULE] is first[_MODULE] else _laid_out_apart(adapter, root, row, first)
            if layout is None:
                param = made[key]
                if row is first:
                    found[row[_PATH][cut:]] = param
            else:  # one variable in another layout: another canonical matrix, listed too
                known = apart.get((key, layout))
                if known is None:
                    known = apart[key, layout] = found[row[_PATH][cut:]] = Param(adapter, row, root, none_yet)
                param = known
            every.setdefault(id(param), []).append(row[_PATH])
        if root is self:
            for param in found.values():
                paths = every[id(param)]
                if len(paths) > 1:
                    param._aliases = tuple(p for p in paths if p != param.path)
        return found

    def _child(self, key: str, native: Any) -> Module:
        return Module(self._adapter, native, join(self._path, key), self.root)

    def _at_position(self, index: int) -> Module:
        kids = self._adapter.children(self._native)
        n = len(kids)
        if not -n <= index < n:
            valid = f"a position in {-n}..{n - 1}" if n else "none: it has no children"
            raise PositionError(
                f"Position {index} is out of range for {self.type_name} at path {self._path!r}, "
                f"which has {n} children. Expected {valid}. " + received(index=index)
            )
        key, native = kids[index]
        return self._child(key, native)

    def _lookup(self, path: str) -> Module | Param:
        """The module or parameter at ``path``: from the last walk's index
        (`_indexed`) if it answers, else one step per key of the live model."""
        found = self._indexed(path)
        return self._walk_to(path) if found is None else found

    def _walk_to(self, path: str) -> Module | Param:
        """`_lookup` without the index: one step per key of the live model."""
        node, node_path = self._native, self._path
        keys = split(path)
        for depth, key in enumerate(keys):
            child = self._adapter.child(node, key)
            if child is None and not key.isdigit():  # a name the framework gives the child (Keras')
                named = self._adapter.child_names(node).get(key)
                if named is not None:
                    key, child = named, self._adapter.child(node, named)
            if child is not None:
                node, node_path = child, join(node_path, key)
                continue
            if depth == len(keys) - 1:
                row = _own_row(self._adapter, node, node_path, key)
                if row is not None:
                    return Param(self._adapter, self._listed(row), self.root, None)
            raise self._path_error(path, node, node_path, key)
        return Module(self._adapter, node, node_path, self.root)

    def _listed(self, row: Row) -> Row:
        """``row``, or where a layer of unknown kind holds a variable that a
        layer of the model lays out (`tree.borrowed`: a wrapper's own
        ``kernel``, or a layer beside it holding its ``weight``), that layer's
        row: a look-up answers as the model's collect-all lists it, canonical
        (in a view that does not hold that layer, as `_laid_out_rows` lists it).
        A row of a layer of known kind costs nothing more; one of unknown kind
        reads the wrapped model's walk (kept from its second use). A model
        with a layer not built yet elsewhere cannot be walked: then the layer's
        own subtree is."""
        if laid_out(row[_SLOT]):
            return row
        listed = self._model_listed()
        if listed is None:
            module, module_path = row[_MODULE], row[_MODULE_PATH]
            listed = listed_rows(walk_rows(self._adapter, module, module_path)[1])
        shown = shown_as(row, listed)
        # The layer outside this view: as this view's collect-all lists it.
        return laid_out_as(row, shown) if self._outside(shown) else shown

    def _laid_out_rows(self, rows: list[Row]) -> list[Row]:
        """A sub-view's ``rows``, where a layer of unknown kind here holds a
        variable that a layer outside this view lays out, that row shown with
        the layer's layout (`tree.laid_out_as`): canonical, as the model lists it."""
        if all(laid_out(row[_SLOT]) for row in rows):
            return rows
        listed = self._model_listed()
        if listed is None:
            return rows
        out = []
        for row in rows:
            shown = row if laid_out(row[_SLOT]) else shown_as(row, listed)
            out.append(laid_out_as(row, shown) if self._outside(shown) else row)
        return out

    def _outside(self, row: Row) -> bool:
        """Whether ``row`` (of the wrapped model's walk) is below no module of this view."""
        return self._root is not None and not row[_PATH].startswith(f"{self._path}.")

    def _model_listed(self) -> dict[int, Row] | None:
        """Per variable, the row the wrapped model's collect-all lists it at
        (`tree.listed_rows`), from the model's walk; ``None`` where a layer
        not built yet keeps the model from being walked."""
        try:
            snap = self.root._snapshot()
        except NotBuiltError:
            return None
        listed: dict[int, Row] | None = snap.memo.get("listed")
        if listed is None:
            listed = snap.memo["listed"] = listed_rows(snap.rows)
        return listed

    def _indexed(self, path: str) -> Param | None:
        """The parameter at ``path`` from the last walk's index, if it is still
        there: every module on the way and the variable's slot are checked
        (one step each), so a stale index is never believed. A view indexes
        its walk from its second look-up on."""
        snap = self._snap
        if snap is None:
            self._lookups += 1
            if self._lookups < 2:
                return None
            snap = self._snapshot()
        if not snap.same_generation():
            return None
        memo = snap.memo
        index = memo.get("paths")
        if index is None:
            index = memo["paths"] = self._path_index(snap)
        hit = index.get(path)
        if hit is None:
            return None
        chain, row, native_name, var = hit
        adapter = self._adapter
        node = self._native
        if chain:
            child = adapter.child
            for key, expected in chain:
                node = child(node, key)
                if node is not expected:
                    return None
        if not adapter.holds(node, native_name, var):
            return None
        root = self._root
        return Param(adapter, row, self if root is None else root, None)

    def _path_index(self, snap: Snapshot) -> dict[str, tuple[tuple[tuple[str, Any], ...], Row, str, Any]]:
        """Relative path (canonical and native leaf names) -> the modules on the
        way as ``(key, native)`` steps, the row, and its native name and
        variable (read once here, not on every look-up)."""
        cut = len(self._path) + 1 if self._path else 0
        chains: dict[str, tuple[tuple[str, Any], ...]] = {self._path: ()}
        for path, native in snap.positions.items():
            if path != self._path:
                parent, _, key = path.rpartition(".")
                chains[path] = (*chains[parent], (key, native))
        index: dict[str, tuple[tuple[tuple[str, Any], ...], Row, str, Any]] = {}
        listed = None
        if self._root is not None and not all(laid_out(row[_SLOT]) for row in snap.rows):
            listed = self._model_listed()  # a layer beside this module may lay out what it holds
        if listed is None:
            listed = listed_rows(snap.rows)
        for row in snap.rows:
            if shown_as(row, listed) is not row:
                continue  # a wrapper's hold on a kernel its layer lays out: looked up live (`_listed`)
            path, module_path, _, var, slot = row
            hit = (chains[module_path], row, slot.native_name, var)
            index.setdefault(extend(module_path, slot.native_name)[cut:], hit)
            index.setdefault(path[cut:], hit)
        return index

    def _path_error(self, path: str, node: Any, node_path: str, key: str) -> PathError:
        known = [self._relative(p) for p, _ in unique_modules(self._adapter, self._native, self._path)]
        for entry in all_entries(self._adapter, self._native, self._path):
            known += [self._relative(entry.path), self._relative(entry.native_path)]
        near = nearest(path, [k for k in known if k])
        hint = ", ".join(repr(p) for p in near) if near else "none"
        where = f"{self.type_name} at path {self._path!r}" if self._path else self.type_name
        at = f"at {node_path!r}" if node_path else "at the root"
        norm = next((n for n in self._adapter.leaf_norms(node) if n.leaf == key), None)
        computed = (
            f" It computes {key!r} on each call by a {norm.make} norm, from "
            f"{', '.join(repr(path) for _, path in norm.parts)}, which it keeps instead."
            if norm is not None
            else ""
        )
        return PathError(
            f"No module or parameter at path {path!r} in {where} ({self.backend}): the "
            f"{self._adapter.type_name(node)} {at} has no child or parameter {key!r}.{computed} "
            f"Expected an existing path; nearest: {hint}. " + received(path=path)
        )

    def _relative(self, path: str) -> str:
        """``path`` relative to this view, or unchanged when it lies outside it."""
        found = relative(path, self._path)
        return path if found is None else found


#: A row's variable, read in C.
_var_of = itemgetter(_VAR)
#: A new instance of a class, its ``__init__`` not called.
_new_object = object.__new__


_Method = TypeVar("_Method", bound=Callable[..., Any])


def one_per_variable(params: Iterable[Param]) -> list[Param]:
    """One Param per native variable, the first: `Module.params` lists a
    variable that two layers lay out differently at each of their paths.

    Examples:
        >>> len(one_per_variable([m["0.weight"], m["0.weight"], m["0.bias"]]))
        2
    """
    return list({id(p.native): p for p in params}.values())


def _laid_out_apart(adapter: Adapter, root: Module, row: Row, listed: Row) -> layouts.Layout | None:
    """``row``'s layout, where it differs from that of ``listed``, the row its
    variable is listed at: two layers that each lay the variable out, in
    different layouts (a square embedding that a Linear also holds as its
    kernel, in Keras, paddle or Flax), see two canonical matrices, which are
    not one parameter's. ``None`` for the same layout, and for a layer of
    unknown kind, which shows the variable as the layer that lays it out does,
    and for one layer at several positions (a shared layer: its rows alike)."""
    if row[_MODULE] is listed[_MODULE] or not laid_out(row[_SLOT]) or not laid_out(listed[_SLOT]):
        return None  # the listed row itself, a layer shared at several positions, or a holder
    mine = Param(adapter, row, root, None).layout
    return None if mine == Param(adapter, listed, root, None).layout else mine


def _says_where(method: _Method) -> _Method:
    """``method`` of a Param, its `NotBuiltError` (a variable with a shape and
    no values, which nothing can read) naming the parameter's path."""

    @functools.wraps(method)
    def said(self: Param, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except NotBuiltError as err:
            raise at_path(self.path, err) from None

    return cast("_Method", said)


class Param:
    """One parameter or buffer, reached at one path.

    Everything a user sees is in the canonical layout (PyTorch's), the same on
    every backend: ``shape``, ``numpy()``, ``np.asarray(p)``, ``grad``,
    ``set()`` and indexing. The framework's own layout is opt-in and always
    spelled ``native``: ``native_shape``, ``native_grad``,
    ``numpy(layout="native")``, ``set(value, layout="native")``.

    Examples:
        >>> p = m["0.weight"]
        >>> p.name, p.shape, p.dtype, p.kind
        ('weight', (8, 4), 'float32', 'param')
        >>> p[0, 0] = 42
        >>> p[0][1] = 7            # chained indexing writes through too
        >>> p[0, :2]
        array([42.,  7.], dtype=float32)
    """

    __slots__ = ("_adapter", "_row", "_root", "_aliases", "_layout", "_fresh")

    def __init__(self, adapter: Adapter, row: Row, root: Module, aliases: tuple[str, ...] | None):
        self._adapter = adapter
        self._row = row  # the walk's plain tuple (an `Entry` unnamed): one allocation less per variable
        self._root = root
        self._aliases = aliases
        # `_layout` (worked out on first use) and `_fresh` (a slice `+=` just wrote
        # through) start unset: a collect-all makes one Param per variable.
        # `Module._first_params` sets these four fields without this call: keep them alike.

    # -- identity ------------------------------------------------------------
    @property
    def path(self) -> str:
        """The path this parameter was reached by (canonical leaf name), from
        the wrapped root, also when reached through a sub-view."""
        return self._row[_PATH]

    @property
    def native_path(self) -> str:
        """The same path with the framework's leaf name (``"1.kernel"``)."""
        return extend(self._row[_MODULE_PATH], self._row[_SLOT].native_name)

    @property
    def name(self) -> str:
        """Canonical leaf name (``"weight"``)."""
        return self._row[_SLOT].name

    @property
    def native_name(self) -> str:
        """The framework's leaf name (``"kernel"``)."""
        return self._row[_SLOT].native_name

    @property
    def layer_kind(self) -> str:
        """Kind of the layer that holds the parameter (``"linear"``)."""
        return self._row[_SLOT].layer_kind

    @property
    def kind(self) -> str:
        """``"param"`` or ``"buffer"`` (running statistics)."""
        return self._row[_SLOT].kind

    @property
    def persistent(self) -> bool:
        """Whether the framework saves it. torch's non-persistent buffers (a
        Swin block's ``relative_position_index``) are listed and reachable,
        but never written to a state or checkpoint: the model rebuilds them."""
        return self._row[_SLOT].persistent

    @property
    def own_layout(self) -> bool:
        """Whether the library knows no canonical form of this leaf: its layer's
        kind is one the backend declares the leaves of, and this one is not
        among them (a spectral norm's ``weight_orig`` on a paddle Linear, which
        keeps its weights ``(in, out)``). Its name, shape and values are then the
        framework's own, and it moves only to and from models of the same
        framework: a port or load that would pair it with another's refuses.

        Examples:
            >>> m["0.weight"].own_layout
            False
        """
        return self._row[_SLOT].own_layout

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other paths of the model that reach the very same variable."""
        if self._aliases is None:
            entries = all_entries(self._adapter, self._root.native, self._root.path)
            same = group_by_variable(entries).get(id(self._row[_VAR]), [])
            self._aliases = tuple(
                e.path
                for e in same
                if e.path != self.path and _laid_out_apart(self._adapter, self._root, e, self._row) is None
            )
        return self._aliases

    @property
    def native(self) -> Any:
        """The framework's own variable (``torch.nn.Parameter``, ...)."""
        return self._row[_VAR]

    @property
    def adapter(self) -> Adapter:
        """Internal, for the core and extension code: the backend's adapter."""
        return self._adapter

    @property
    def module(self) -> Module:
        """The module view that holds the parameter."""
        return Module(self._adapter, self._row[_MODULE], self._row[_MODULE_PATH], self._root)

    @property
    def backend(self) -> str:
        """The backend name (``"torch"``, ``"keras"``, ``"paddle"``)."""
        return self._adapter.name

    def __repr__(self) -> str:
        """The value, like torch's ``Parameter containing: ...``, with path,
        canonical shape and dtype: the same text on every backend. A variable
        with a shape and no values (torch's meta device, ``paddle.LazyGuard``,
        ``nnx.eval_shape``) says so; reading its values raises `NotBuiltError`."""
        what = "Param" if self.kind == "param" else "Buffer"
        head = f"{what} {self.path!r}, shape {self.shape}, {self.dtype}"
        try:
            return f"{head}, containing:\n{self.numpy()}"
        except NotBuiltError:
            return f"{head}, with no values yet"

    def _repr_html_(self) -> str:
        """Shape, dtype, first values and a histogram, in a notebook."""
        from .notebook import param_html

        return param_html(self)

    # -- metadata ------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape in the canonical (PyTorch) layout, the same on every backend."""
        return self.layout.canonical_shape(self.native_shape)

    @property
    def native_shape(self) -> tuple[int, ...]:
        """Shape in the framework's own layout (Keras Dense: ``(in, out)``)."""
        return self._adapter.shape(self._row[_VAR])

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.native_shape)

    @property
    def dtype(self) -> str:
        """Dtype name as numpy spells it (``"float32"``)."""
        return self._adapter.dtype(self._row[_VAR])

    @property
    def layout(self) -> layouts.Layout:
        """The conversion between this parameter's native and canonical layouts."""
        try:
            return self._layout
        except AttributeError:
            planned = layouts.plan(self.layer_kind, self._row[_SLOT].leaf, len(self.native_shape))
            self._layout: layouts.Layout = flat_layout(self._adapter, Entry._make(self._row), planned)
            return self._layout

    @property
    def trainable(self) -> bool:
        """Whether the optimiser may update it; assign to freeze or unfreeze."""
        return self._adapter.trainable(self._row[_VAR])

    @trainable.setter
    def trainable(self, flag: bool) -> None:
        if not isinstance(flag, (bool, np.bool_)):
            raise UnsupportedError(
                f"trainable takes True or False. Expected a bool for {self.path!r} (a string such as "
                "'yes' or 'False' would be read as True). " + received(trainable=flag)
            )
        if self.kind == "buffer":
            raise UnsupportedError(
                f"{self.path!r} is a buffer (running statistics), which is never trained. "
                "Expected a parameter of kind 'param'. " + received(path=self.path, trainable=flag)
            )
        self._adapter.set_trainable(self._row[_VAR], bool(flag))

    # -- values --------------------------------------------------------------
    @_says_where
    def numpy(self, layout: str = "canonical") -> np.ndarray:
        """A copy of the value as a numpy array.

        For a parameter sharded over processes this is the whole (global)
        value, gathered from every process: a collective call that every
        process makes; `local` reads this process's block alone.

        Args:
            layout: ``"canonical"`` (PyTorch's axis order, the same on every
                backend) or ``"native"`` (the framework's own).

        Examples:
            >>> m["0.weight"].numpy().shape
            (8, 4)
        """
        native = self._adapter.to_numpy(self._row[_VAR])
        if check_layout(layout) == "native":
            return native
        return layouts.contiguous(self.layout.to_canonical(native))

    # -- sharded parameters --------------------------------------------------
    @property
    def placements(self) -> tuple[Any, ...] | None:
        """How the parameter is sharded over processes, in the framework's own
        terms (torch: ``(Shard(dim=0),)``), or ``None`` for a whole parameter.

        Examples:
            >>> m["0.weight"].placements is None
            True
        """
        sharding = self.sharding()
        return None if sharding is None else sharding.placements

    @property
    def local_shape(self) -> tuple[int, ...]:
        """The shape of the block this process holds (canonical axis order);
        ``shape`` for a whole parameter.

        Examples:
            >>> m["0.weight"].local_shape
            (8, 4)
        """
        sharding = self.sharding()
        return self.shape if sharding is None else self.layout.canonical_shape(sharding.local_shape)

    def local(self) -> np.ndarray:
        """A copy of the block this process holds, without communication
        (canonical axis order); the whole value for a whole parameter.

        Examples:
            >>> m["0.weight"].local().shape
            (8, 4)
        """
        if self.sharding() is None:
            return self.numpy()
        return layouts.contiguous(self.layout.to_canonical(self._adapter.local(self._row[_VAR])))

    def sharding(self) -> Sharding | None:
        """Internal, for the core and extension code: this process's block of a
        sharded parameter, in native axes, or ``None`` for a whole one.

        Examples:
            >>> m["0.weight"].sharding() is None
            True
        """
        return self._adapter.sharding(self._row[_VAR])

    def set_local(self, block: np.ndarray, sharding: Sharding) -> None:
        """Internal, for the core: write this process's block of a sharded
        parameter (native layout, already validated and cast)."""
        if block.shape != sharding.local_shape:
            raise ShapeError(
                f"The block for {self.path!r} has shape {block.shape}; this process holds "
                f"{sharding.local_shape}. " + received(shape=block.shape)
            )
        with write_lock(self._row[_VAR]):
            self._adapter.assign_local(self._row[_VAR], layouts.contiguous(np.asarray(block)))
            self._adapter.after_write(self._row[_MODULE])

    @_says_where
    def canonical_view(self) -> np.ndarray:
        """Internal, for the core and extension code: the canonical value
        without a copy where the framework allows (`numpy` copies). Read it
        before the parameter is next written, never write to it (streaming
        saves and ports use it).

        Examples:
            >>> m["0.weight"].canonical_view().shape
            (8, 4)
        """
        return self.layout.to_canonical(self._adapter.view(self._row[_VAR]))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError(f"len() of the 0-d parameter {self.path!r}")
        return shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def grad(self) -> np.ndarray | None:
        """The gradient in canonical layout, or ``None`` before any backward pass.

        Examples:
            >>> m["0.weight"].grad is None
            True
        """
        grad = self._adapter.grad(self._row[_VAR])
        return None if grad is None else layouts.contiguous(self.layout.to_canonical(grad))

    @property
    def native_grad(self) -> np.ndarray | None:
        """The gradient in the framework's own layout, or ``None``."""
        return self._adapter.grad(self._row[_VAR])

    def set(self, value: Any, layout: str | None = None) -> None:
        """Overwrite the whole value in place (autograd and ties intact).

        The value is validated before anything is written: a wrong shape or
        a non-numeric value raises and leaves the parameter unchanged. A
        [Param][unified_params.Param] (of any model, any backend) is read in its canonical
        layout, whatever ``layout`` says of plain values, and converted where
        its layer computes as this one's with values kept otherwise (an
        RMSNorm's weight is one more than Gemma's, which scales by ``1 + weight``).

        Args:
            value: An array, nested list, tensor of any framework, or Param.
            layout: The layout ``value`` is given in: ``"canonical"``
                (PyTorch's), ``"native"``, or ``None`` (the default):
                canonical, refusing a tensor of a framework whose own layout
                of this leaf fits the same shape (a paddle Linear's square
                weight), which may be in either.

        Raises:
            ShapeError: The value's shape differs from the parameter's, or
                ``layout`` is not given and the value is a framework's tensor
                whose own layout fits too.
            DTypeError: The value is not numeric or cannot be cast.

        Examples:
            >>> p = m["0.weight"]
            >>> p.set(np.ones((8, 4)))
            >>> float(p.numpy().sum())
            32.0
        """
        said = layout is not None
        layout = check_layout(layout or "canonical")
        if isinstance(value, (Param, ParamSlice)):
            kind = value.layer_kind if isinstance(value, Param) else None
            value, layout = value.numpy(), "canonical"
            by = layouts.kind_offset(kind, self.layer_kind, self.name)
            if by is not None:
                value = layouts.offset_value(value, by)
        elif not said:
            self._refuse_foreign(value)
        array = values.as_array(value, path=self.path)
        expected = self.native_shape if layout == "native" else self.shape
        values.check_shape(array.shape, expected, path=self.path, layout=layout)
        array = values.cast_to(array, self.dtype, path=self.path)
        if layout == "canonical":
            array = self.layout.to_native(array, self.native_shape)
        with write_lock(self._row[_VAR]):
            self._write(array)
            self._adapter.after_write(self._row[_MODULE])

    def _refuse_foreign(self, value: Any) -> None:
        """Raise if ``value`` is a framework's tensor whose own layout of this
        leaf fits its canonical shape too (`foreign`)."""
        owners = foreign.owners(value)
        shape = tuple(getattr(value, "shape", ())) if owners else ()
        found = (
            foreign.reading(owners, self.layer_kind, self.name, shape) or held_reading(self, owners, shape)
            if shape == self.shape
            else None
        )
        if found is None:
            return  # a shape that fits one reading only is checked as any value's
        backend = found.backends[0]  # a tensor's type names one framework
        theirs = (
            "p.set(value, layout='native') if it is in this model's own"
            if backend == self.backend
            else f"up.port from the {backend} model to move its weights"
        )
        raise ShapeError(
            f"Cannot tell the layout of the value for {self.path!r}: it is {found.given()}, {backend} keeps "
            f"this leaf {found.native}, the canonical layout is {found.canonical}, and its shape fits both. "
            f"Expected p.set(value, layout='canonical') if it is in the canonical (PyTorch) layout "
            f"already, or {theirs}. " + received(backend=backend, shape=shape)
        )

    def take(self, array: np.ndarray) -> None:
        """Internal, for the core: write a value the caller gives up (a load's
        tensors, just read), in canonical layout, already validated and cast.

        Nothing may use ``array`` afterwards: the framework may keep it as
        the variable's memory instead of copying it (`Adapter.assign`'s
        ``owned``).

        Examples:
            >>> value = np.full((8, 4), 2.0, np.float32)
            >>> m["0.weight"].take(value)
            >>> float(m["0.weight"].numpy().sum())
            64.0
        """
        native = self.layout.to_native(array, self.native_shape)
        with write_lock(self._row[_VAR]):
            self._write(native, owned=native is array and layouts.adoptable(array))
            self._adapter.after_write(self._row[_MODULE])

    @_says_where
    def fill(self, fill: Callable[[np.ndarray], None], read: Callable[[], np.ndarray]) -> None:
        """Internal, for the core: write a validated value by letting ``fill``
        write it straight into the variable's memory (native layout, which
        must be the canonical one); where the framework lends no memory, `take`
        what ``read`` returns instead.

        Examples:
            >>> three = np.full(8, 3.0, np.float32)
            >>> m["0.bias"].fill(lambda out: out.fill(3.0), lambda: three)
            >>> m["0.bias"].numpy()[:2]
            array([3., 3.], dtype=float32)
        """
        var = self._row[_VAR]
        with write_lock(var):
            filled = self._adapter.fill_in_place(var, fill)
            if filled:
                self._adapter.after_write(self._row[_MODULE])
        if not filled:
            self.take(read())

    @_says_where
    def _write(self, array: np.ndarray, owned: bool = False) -> None:
        """Write a validated native-layout value: one ``owned`` (see `take`) as
        it is; a strided one (a transposed kernel) or a large one straight into
        the variable's memory where the framework lends it (with the fastest
        kernel at hand), else through one owned, contiguous copy."""
        var = self._row[_VAR]
        sharding = self.sharding()
        if sharding is not None:  # each process writes the block it holds
            self._adapter.assign_local(var, layouts.contiguous(np.asarray(array[sharding.box])))
            return
        if owned and self._adapter.capabilities.keeps_owned_values:
            self._adapter.assign(var, array, owned=True)
            return
        if not array.flags.c_contiguous or array.nbytes >= transpose.PARALLEL_BYTES:

            def fill(buffer: np.ndarray) -> None:
                source = array.copy() if np.may_share_memory(array, buffer) else array
                layouts.contiguous(source, out=buffer)

            if self._adapter.fill_in_place(var, fill):
                return
        value = layouts.contiguous(array)
        self._adapter.assign(var, value, owned=owned or value is not array)

    def __getitem__(self, index: Any) -> ParamSlice:
        """A live, write-through view of ``p[index]``, indexing the canonical layout.

        Indexing is canonical so that ``p[0]`` is the same row on every
        backend (for a Linear weight: output unit 0). The view reads like a
        numpy array; ``p[0][0] = 42`` and ``p[0] += 1`` write the parameter.
        """
        return ParamSlice(self, (index,))

    def __setitem__(self, index: Any, value: Any) -> None:
        """Write ``p[index] = value`` in place, indexing the canonical layout.

        ``p[0, 0] = 42`` and ``p[:] += 1`` work as on a numpy array.
        """
        self._set_chain((index,), value)

    def _set_chain(self, chain: tuple[Any, ...], value: Any, in_place_of: ParamSlice | None = None) -> None:
        """Write ``value`` at ``p[chain[0]][chain[1]]...``: one indexed write
        when the chain reduces to one index, else a whole-value write of the
        selection changed in a canonical copy."""
        fresh: ParamSlice | None = getattr(self, "_fresh", None)
        self._fresh = None
        if (
            in_place_of is None
            and fresh is value
            and len(fresh._chain) == len(chain)
            and all(a is b for a, b in zip(fresh._chain, chain, strict=True))
        ):
            return  # `p[i] += v`: the slice's in-place op has written it already
        selected = selection_shape(self.shape, chain, self.path)
        if isinstance(value, (Param, ParamSlice)):
            value = value.numpy()
        elif selected == self.shape:  # the whole value (p[:] = v): as p.set(v) takes it
            self._refuse_foreign(value)
        array = values.cast_to(values.as_array(value, path=self.path), self.dtype, path=self.path)
        index = compose(chain)
        array = values.broadcast_to(
            array, selected, path=self.path, index=index if index is not None else chain
        )
        with write_lock(self._row[_VAR]):
            if index is not None:
                self._write_index(index, array)
            else:
                self._write_chain(chain, array)
            self._adapter.after_write(self._row[_MODULE])
        self._fresh = in_place_of

    def _write_chain(self, chain: tuple[Any, ...], array: np.ndarray) -> None:
        full = self.numpy()
        target = full
        for step in chain[:-1]:
            target = target[step]
        if not isinstance(target, np.ndarray) or not np.may_share_memory(target, full):
            raise UnsupportedError(
                f"Cannot write through {self.path!r}{''.join(f'[{i!r}]' for i in chain)}: an index "
                "array before the last index selects a copy, so the write would change nothing. "
                "Expected one index for the whole selection, as p[rows, cols] = value. "
                + received(chain=chain)
            )
        target[chain[-1]] = array
        self._write(self.layout.to_native(full, self.native_shape))

    @_says_where
    def _write_index(self, index: Any, array: np.ndarray) -> None:
        shape = self.shape
        mapped = self.layout.native_index(index, len(shape))
        sharding = self.sharding()
        if mapped is not None and sharding is not None:
            native_index, value_axes = mapped
            self._write_local_index(native_index, np.transpose(array, value_axes), sharding)
            return
        if mapped is not None:
            native_index, value_axes = mapped
            self._adapter.assign_slice(
                self._row[_VAR], native_index, np.asarray(np.transpose(array, value_axes), order="C")
            )
            return
        full = self.numpy()  # on a sharded parameter: gathered, then each process writes its block
        full[index] = array
        native = np.asarray(self.layout.to_native(full, self.native_shape), order="C")
        if sharding is not None:
            self._write(native)
            return
        self._adapter.assign(self._row[_VAR], native)

    def _write_local_index(
        self, native_index: tuple[Any, ...], array: np.ndarray, sharding: Sharding
    ) -> None:
        """``var[native_index] = array`` on a sharded variable: this process
        writes the part of the selection inside its block (maybe none)."""
        part = local_write(native_index, self.native_shape, sharding, self.path)
        if part is None:
            return
        block_index, value_index = part
        block = self._adapter.local(self._row[_VAR])
        block[block_index] = array[value_index] if value_index else array
        self._adapter.assign_local(self._row[_VAR], block)


def check_layout(layout: Any, *, unsaid: bool = False) -> Any:
    """``layout`` if it is one of `LAYOUTS` (or, with ``unsaid``, ``None``:
    not said, which a load checks); else a ``ValueError``.

    Examples:
        >>> check_layout("native"), check_layout(None, unsaid=True)
        ('native', None)
    """
    choices = (*LAYOUTS, None) if unsaid else LAYOUTS
    if layout not in choices:
        raise ValueError(f"Unknown layout {layout!r}. Expected one of {choices}. " + received(layout=layout))
    return layout


def native_at(model: Module, path: str) -> Any:
    """The native module at ``path`` below ``model`` (``""``: ``model`` itself)."""
    return model[path].native if path else model.native


def held_at(model: Module, path: str) -> Param | None:
    """The parameter at ``path`` below ``model`` as the layer there holds it,
    or ``None``. Unlike a look-up (``model[path]``), which answers at a
    wrapper's own path with the parameter of the layer that lays the variable
    out (`tree.shown_as`), this keeps that path's own layout: a load reads a
    value keyed there by the shape it has (`state._from_alias`)."""
    module_path, _, leaf = path.rpartition(".")
    node = model[module_path] if module_path else model
    if not isinstance(node, Module):
        return None
    row = _own_row(model.adapter, node.native, node.path, leaf)
    return None if row is None else Param(model.adapter, row, model.root, None)


def held_reading(
    param: Param,
    owners: tuple[str, ...],
    shape: tuple[int, ...],
    writer: str | None = None,
    expected: tuple[int, ...] | None = None,
) -> foreign.Reading | None:
    """How ``param``'s own layer keeps it, where that layout is not its kind's
    and reads a value of ``shape`` as the ``expected`` canonical shape (by
    default ``shape`` itself), when the value may be in that layer's
    framework's layout (``owners`` names it: its tensor, or a file its writer
    wrote); else ``None``. Asked where `foreign.reading`, by kind, found
    nothing: a layer of a model zoo keeps a leaf otherwise than its kind does
    (transformers' ``Conv1D``: a Linear's weight ``(in, out)``)."""
    if param.backend not in owners:
        return None
    leaf, layout = param._row[_SLOT].leaf, param.layout
    want = shape if expected is None else expected
    if leaf is None or layout.is_identity or shape != param.native_shape or want != param.shape:
        return None
    axes = leaf.axes_for(len(shape))
    if axes is None:
        return None
    return foreign.Reading((param.backend,), *foreign.described(leaf, axes, layout, param.layer_kind), writer)


def _own_row(adapter: Adapter, module: Any, module_path: str, leaf: str) -> Row | None:
    """The row of ``module``'s own variable named ``leaf`` (canonically or natively), if any."""
    for row in own_rows(adapter, module, module_path):
        if leaf in (row[_SLOT].name, row[_SLOT].native_name):
            return row
    return None
