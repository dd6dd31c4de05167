"""Canonical state: what ``state_dict`` emits and ``load_state_dict`` takes.

The canonical state of a model is PyTorch's: names and layouts as a torch
model built from the same spec would have them, one entry per tie group.
Most variables map to one entry through their layout (``layouts.py``); a few
native variables stand for two canonical entries, as a framework declares
with a `Merge`:

- a Keras LSTM keeps one bias, ``b_ih + b_hh``: exported as ``bias_ih_l0 =
  bias`` and ``bias_hh_l0 = 0`` (output-equivalent, reported as lossy), and
  imported as their sum;
- a Keras GRU with ``reset_after=True`` stacks both biases ``(2, 3H)``:
  exported and imported row by row, losslessly.

and a few canonical entries gather several native variables, as a framework
declares with `Part`: torch packs an attention layer's query, key and
value projections into one ``in_proj_weight``, Keras and Paddle keep three.

Loading is transactional: every key, shape and dtype is checked before the
first write, then values are converted and written one parameter at a time.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import numpy as np

from . import foreign, layouts, leaf_norms, low_rank, recycling, values
from .errors import CheckpointError, PathError, UnsupportedError, received
from .interrupts import interrupts_held
from .parallel import run_all
from .paths import join, relative, split
from .progress import bar
from .rules import Renaming
from .sharding import Local, Sharding, agree, group_of
from .view import Module, Param, check_layout, held_at, held_reading


@dataclass(frozen=True)
class Merge:
    """One native variable standing for several canonical entries.

    ``how`` is ``"sum"`` (the native value is the sum of the entries; export
    puts it all in the first) or ``"stack"`` (the native value stacks the
    entries along its first axis). ``unstacked``: why a ``"stack"`` variable
    that is not stacked (one axis too few) has no canonical form, and what the
    user should do instead (the adapter's words, for its framework).
    """

    canonical: tuple[str, ...]
    how: str
    unstacked: str = "the variable does not stack its entries. Expected one entry per row."


@dataclass
class Source:
    """A value to load: shape and dtype known up front, data read on demand."""

    shape: tuple[int, ...]
    dtype: np.dtype
    read: Callable[[], np.ndarray]
    #: Reads only a sharded parameter's block (a file's bytes of it), if the source can.
    read_block: Callable[[Sharding], np.ndarray] | None = None
    #: ``read`` is a collective call (gathers a sharded value): every process
    #: reads such sources in the same order, on one thread.
    collective: bool = False
    #: ``read`` returns a new array on every call, which nobody else holds (a
    #: file's bytes just read): a load may give it to the framework as the
    #: variable's memory instead of copying it once more.
    fresh: bool = False
    #: Reads the value straight into a writable C-contiguous array of its shape
    #: and dtype (a parameter's own memory), if the source can.
    fill: Callable[[np.ndarray], None] | None = None
    #: The value's elements in order, a piece at a time (each piece may be
    #: overwritten by the next), if the source can read it so.
    pieces: Callable[[], Iterator[np.ndarray]] | None = None
    #: The backend whose own layout the value is in: a leaf the library knows no
    #: canonical form of (`Param.own_layout`). ``None``: the canonical layout.
    own_layout: str | None = None
    #: The backends whose own layout the value may be in: it is their tensor or
    #: variable (`foreign.owners`), or a file's whose writer may lay it out as
    #: they do (`foreign.file_owners`). Empty for arrays and Params.
    owners: tuple[str, ...] = ()
    #: The writer a file's metadata names (``format``), for a file's tensor.
    writer: str | None = None
    #: The kind of the layer that held the value, where it is known (a Param's;
    #: a file of this library names its layers' kinds): a layer of a kind that
    #: keeps its values otherwise gets them converted (`layouts.KIND_CONVERSIONS`).
    kind: str | None = None

    @classmethod
    def of(cls, value: Any, name: str, own_layout: str | None = None) -> Source:
        """Wrap an array, tensor or lazy source (anything with shape, dtype, read);
        a Param says its own layout itself."""
        if isinstance(value, Source):
            return value if own_layout is None else replace(value, own_layout=own_layout)
        owners: tuple[str, ...] = ()
        kind = value.layer_kind if isinstance(value, Param) else None
        if getattr(value, "own_layout", False) is True:  # a Param of a leaf in its framework's layout
            own_layout = value.backend
        elif not isinstance(value, np.ndarray):
            owners = foreign.owners(value)
        array = values.as_array(value, path=name)
        return cls(
            tuple(array.shape), array.dtype, lambda: array, own_layout=own_layout, owners=owners, kind=kind
        )

    def offset(self, by: float) -> Source:
        """The value plus ``by``, in float64 (cast once, to the parameter's
        dtype): the value for a layer of a kind that keeps it otherwise
        (`layouts.KIND_CONVERSIONS`)."""
        read = self.read
        return replace(
            self, read=lambda: layouts.offset_value(read(), by), read_block=None, fill=None, pieces=None,
            fresh=True, kind=None,
        )  # fmt: skip


@dataclass(frozen=True)
class Deferred:
    """A value checked piece by piece and left in its source, read again when
    it is written (see `load`): straight into the variable's memory where the
    framework lends it (``in_place``), else into memory of the write's, which
    the variable may keep (`Param.take`; within the write, the memory a
    variable lets go takes the next value: `recycling`)."""

    source: Source
    key: str
    unchanged: Callable[[], bool]
    in_place: bool

    def write(self, param: Param) -> None:
        if not self.unchanged():
            raise _may_have_changed(self.key)
        if self.in_place:
            param.fill(self._fill, self._read)  # `_read` where the framework lends no memory after all
        else:
            param.take(self._read())

    def _read(self) -> np.ndarray:
        """The value, read again into memory of the write's; an error here leaves the parameter as it was."""
        try:
            return self.source.read()
        except Exception as err:
            raise CheckpointError(
                f"Reading {self.key!r} again to write it failed ({err}); it was not written. "
                "Expected a readable file: load it again once the cause is fixed. " + received(key=self.key)
            ) from err

    def _fill(self, out: np.ndarray) -> None:
        """The value, read again straight into the variable's memory ``out``."""
        read_into = self.source.fill
        assert read_into is not None  # a Deferred is made only for such sources
        try:
            read_into(out)
        except Exception as err:  # the read failed part way: the parameter holds part of the file's value
            raise CheckpointError(
                f"Reading {self.key!r} failed while it was written into the parameter ({err}): "
                "the parameter now holds part of the file's value. Expected a readable file: "
                "load it again once the cause is fixed. " + received(key=self.key)
            ) from err


def _may_have_changed(key: str) -> CheckpointError:
    return CheckpointError(
        f"The checkpoint was opened for writing by another process while {key!r} was being "
        "loaded, longer ago than the system holds a writer back, so it may have changed since it "
        "was checked. Expected the file unchanged until the load ends: load it again once the "
        "writer is done. " + received(key=key)
    )


@dataclass(frozen=True)
class Part:
    """A native variable that is one block of a canonical entry, along its
    first axis (a Keras or Paddle attention layer's query, key and value
    projections make up torch's packed ``in_proj_weight``).

    ``leaf`` converts the variable's canonical view into its block, for
    variables the view does not already lay out canonically.
    """

    key: str
    index: int
    leaf: layouts.Leaf | None = None


@dataclass
class Slot:
    """Variables of the model and the canonical entries they correspond to.

    ``how`` is ``"one"`` (one variable, one entry), ``"sum"`` or ``"stack"``
    (one variable, several entries: see `Merge`), or ``"concat"``
    (several variables, one entry: see `Part`).
    """

    params: list[Param]
    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    layer: str
    how: str = "one"
    parts: list[layouts.Layout | None] = field(default_factory=list)

    @property
    def param(self) -> Param:
        """The first variable (the only one unless ``how == "concat"``)."""
        return self.params[0]

    @property
    def lossy(self) -> bool:
        return self.how == "sum"

    @property
    def own_layout(self) -> str | None:
        """The backend whose own layout the entries are in (`Param.own_layout`),
        ``None`` for the canonical one."""
        param = self.params[0]
        return param.backend if param.own_layout else None

    def export(self) -> Iterator[tuple[str, np.ndarray]]:
        """The canonical entries, computed on demand."""
        if self.how == "concat":
            blocks = [self._block(p, layout) for p, layout in zip(self.params, self.parts, strict=True)]
            yield self.keys[0], np.concatenate(blocks, axis=0)
            return
        value = self.param.canonical_view()
        if self.how == "one":
            yield self.keys[0], value
        elif self.how == "sum":
            yield self.keys[0], value
            yield self.keys[1], np.zeros_like(value)
        else:
            yield from zip(self.keys, value, strict=True)

    def write(self, arrays: list[np.ndarray], owned: bool = False) -> None:
        """Write the entries' arrays (already validated) into the variables.

        ``owned``: the arrays were made for this write alone (a checkpoint's
        tensors just read), and one variable's value may keep its array as
        its memory instead of a copy (`Param.take`).
        """
        if isinstance(arrays[0], Deferred):
            arrays[0].write(self.param)
            return
        if owned and self.how == "one" and not isinstance(arrays[0], Local):
            self.param.take(arrays[0])
            return
        if self.how == "concat":
            blocks = np.split(arrays[0], np.cumsum([b[0] for b in self._block_shapes()])[:-1], axis=0)
            for param, layout, block in zip(self.params, self.parts, blocks, strict=True):
                value = block if layout is None else layout.to_native(block, param.shape)
                param.set(value, layout="canonical")
            return
        merged = {
            "one": lambda: arrays[0],
            "sum": lambda: arrays[0] + arrays[1],
            "stack": lambda: np.stack(arrays),
        }
        if isinstance(arrays[0], Local):  # this process's block of a sharded parameter
            self.param.set_local(arrays[0].block, arrays[0].sharding)
            return
        self.param.set(merged[self.how](), layout="canonical")

    @staticmethod
    def _block(param: Param, layout: layouts.Layout | None) -> np.ndarray:
        value = param.canonical_view()
        return value if layout is None else layout.to_canonical(value)

    def _block_shapes(self) -> list[tuple[int, ...]]:
        return [
            p.shape if layout is None else layout.canonical_shape(p.shape)
            for p, layout in zip(self.params, self.parts, strict=True)
        ]


@dataclass
class LoadReport:
    """What a load did.

    Attributes:
        loaded: Canonical keys written into the model.
        missing: Keys the model has that the state lacks.
        unexpected: Keys of the state the model does not have.
        mismatched: ``(key, expected shape, given shape)`` for keys whose
            shape or dtype does not fit; never loaded.
        nonfinite: Keys whose values hold NaN or infinity once cast to the
            parameter's dtype (a float64 ``1e39`` overflows float32); loaded
            only with ``allow_nonfinite=True``.
        conflicting: Keys of a tie group given with a value that differs from
            the group's first key (an untied checkpoint loaded into a tied
            model): the tied variable can hold only one of them.
        own_layout: Keys whose value one side keeps in its framework's own
            layout (`Param.own_layout`: a leaf the library knows no canonical
            form of) and the other does not keep in that same framework's:
            never loaded, since nothing tells how the two lay it out.
        ambiguous: ``(key, foreign.Reading)`` for keys given a tensor of a
            framework that keeps the leaf in a layout of its own which fits
            the same shape (a paddle tensor for a square Linear's weight):
            it may be that framework's own state. Never loaded unless the
            load is told ``layout="canonical"``.
        skipped: Keys that need no value: aliases of a tie group whose values
            agree, leaves only some frameworks keep (``num_batches_tracked``),
            and buffers of the model that its framework does not save
            (torch's ``persistent=False``: the model makes them), which
            ``params()`` lists and a load never writes.
        notes: Lossy merges and other conversions worth knowing.
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)
    conflicting: list[str] = field(default_factory=list)
    own_layout: list[str] = field(default_factory=list)
    ambiguous: list[tuple[str, foreign.Reading]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was missing, unexpected, mismatched, non-finite,
        conflicting, in a layout the other side does not share, or in a
        layout nothing tells."""
        return not (
            self.missing or self.unexpected or self.mismatched or self.nonfinite or self.conflicting
            or self.own_layout or self.ambiguous
        )  # fmt: skip

    def _repr_html_(self) -> str:
        from .notebook import report_html

        return report_html(self)


def slots(model: Module) -> list[Slot]:
    """Every variable of the model (one per tie group) with its canonical
    entries, keyed by paths relative to ``model`` (as ``model.params()``)."""
    adapter = model.adapter
    params = model.params()
    modules = model.modules()
    attention = [inside(m.path, model) for m in modules if m.kind == "mha"]
    apart = {**_norms_apart(model, modules), **low_rank.holders(low_rank.updates(model, modules))}
    gathered = _gathers(model, adapter.GATHERS)
    consumed = {id(p.native) for slot in gathered.values() for p in slot.params}
    out = []
    for key, param in params.items():
        if not param.persistent:
            continue  # rebuilt by the model, never state (torch's persistent=False buffers)
        first = gathered.get(id(param.native))
        if first is not None:
            out.append(first)
            continue
        if id(param.native) in consumed:
            continue
        holder = inside(param.module.path, model)
        layer = apart.get(holder) or _owner(holder, attention)
        merge = adapter.MERGES.get(param.layer_kind, {}).get(param.name)
        if merge is None:
            out.append(Slot([param], (key,), (param.shape,), layer))
            continue
        shape = param.shape
        if merge.how == "stack" and len(shape) != 2:
            raise UnsupportedError(
                f"{param.path!r} ({param.layer_kind}, shape {param.native_shape}) has no canonical form: "
                f"{merge.unstacked} " + received(path=param.path, shape=param.native_shape)
            )
        keys = tuple(join(holder, name) for name in merge.canonical)
        shapes = (shape,) * 2 if merge.how == "sum" else (shape[1:],) * shape[0]
        out.append(Slot([param], keys, shapes, layer, merge.how))
    return out


def _gathers(model: Module, declared: Mapping[str, Mapping[str, Part]]) -> dict[int, Slot]:
    """Concat slots of the layers whose kind declares parts, keyed by their first variable."""
    out: dict[int, Slot] = {}
    for module in model.modules():
        parts = declared.get(module.kind)
        if not parts:
            continue
        by_key: dict[str, list[tuple[int, Param, layouts.Layout | None]]] = {}
        own, lacking = module.params(), set()
        for within, part in parts.items():
            param = own.get(within)
            if param is None:  # a layer built without biases: no such entry, as torch's bias=False
                lacking.add(part.key)
                continue
            layout = None if part.leaf is None else layouts.plan(module.kind, part.leaf, len(param.shape))
            by_key.setdefault(part.key, []).append((part.index, param, layout))
        for key in lacking & set(by_key):
            absent = sorted(w for w, p in parts.items() if p.key == key and w not in own)
            raise UnsupportedError(
                f"The {module.type_name} at {module.path!r} holds some of the blocks of its canonical "
                f"{key!r} and lacks others ({absent}), so that entry cannot be formed. Expected every "
                "block of it, or none. " + received(layer=module.path, entry=key)
            )
        for key, members in by_key.items():
            members.sort(key=lambda m: m[0])
            params = [m[1] for m in members]
            where = inside(module.path, model)
            slot = Slot(params, (join(where, key),), (), where, "concat", [m[2] for m in members])
            blocks = slot._block_shapes()
            slot.shapes = ((sum(b[0] for b in blocks), *blocks[0][1:]),)
            out[id(params[0].native)] = slot
    return out


def inside(path: str, model: Module) -> str:
    """An absolute path as seen from ``model`` (its relative path).

    Examples:
        >>> inside("0.weight", m[0]), inside("0.weight", m)
        ('weight', '0.weight')
    """
    return relative(path, model.path) or ""


def aliases_inside(param: Param, model: Module) -> list[str]:
    """The aliases of a parameter that lie inside ``model``, relative to it."""
    return [r for r in (relative(a, model.path) for a in param.aliases) if r is not None]


def _norms_apart(model: Module, modules: list[Module]) -> dict[str, str]:
    """The modules that keep a layer's norm apart from it (torch's
    ``parametrizations.weight``), each with the layer's path: its variables
    are the layer's for matching."""
    out = {}
    for m in modules:
        for held in leaf_norms.holders(model.adapter.leaf_norms(m.native)):
            out[inside(join(m.path, held), model)] = inside(m.path, model)
    return out


def _owner(module_path: str, attention: list[str]) -> str:
    """The layer a variable belongs to for matching: an attention layer holds its projections."""
    for path in attention:
        if module_path == path or module_path.startswith(path + ".") or not path:
            return path
    return module_path


class State(dict[str, np.ndarray]):
    """A model's canonical state (key -> numpy array), which also says what a
    file's metadata says, as torch's ``state_dict()`` carries its
    ``_metadata``: the entries in their framework's own layout
    (`Param.own_layout`), the backend that wrote it, and the Linears it
    keeps in its framework's order of a flattened map (of their inputs, or
    of their outputs), and the other paths of each tie group (``aliases``:
    path -> the key that holds its value). A plain copy (``dict(state)``)
    drops them: its own-layout entries are then refused by a load, its
    Linears taken in torch's order, and a tie group's other paths missing in
    a model where they are not tied. A state in a framework's own layout (``up.state_dict(m,
    layout="native")``) says so too, and loads only into a model of that
    framework.

    Examples:
        >>> state = State({"0.weight_v": np.ones((4, 3))}, {"0.weight_v": "paddle"})
        >>> state.own_layout, dict(state).keys()
        ({'0.weight_v': 'paddle'}, dict_keys(['0.weight_v']))
    """

    def __init__(
        self,
        items: Mapping[str, np.ndarray],
        own_layout: Mapping[str, str],
        source_backend: str | None = None,
        naive: tuple[list[str], list[str]] = ([], []),
        layout: str = "canonical",
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(items)
        #: Each other path of a tie group -> the key that holds its value: a load
        #: fills those paths in a model where they are not tied.
        self.aliases = dict(aliases or {})
        #: ``"native"``: every value is in ``source_backend``'s own layout.
        self.layout = layout
        #: Key -> the backend whose own layout its value is in.
        self.own_layout = dict(own_layout)
        #: The backend of the model it came from.
        self.source_backend = source_backend
        #: The Linears kept in the framework's own order of a flattened map (inputs; outputs).
        self.flattened_naive, self.unflattened_naive = naive


#: The Linears a state keeps in their framework's order of a flattened map, of
#: their inputs and of their outputs (``None``: it does not say).
Orders: TypeAlias = tuple[list[str] | None, list[str] | None]


def renamed(
    renaming: Renaming,
    state: Mapping[str, Any],
    aliases: Mapping[str, str],
    own_layout: Mapping[str, str],
    orders: Orders,
) -> tuple[dict[str, Any], dict[str, str], dict[str, str], Orders, list[str]]:
    """A state's keys renamed by a load's ``mapping`` (`rules.Renaming`), with
    what it says of them under the new names: its tie groups' other paths
    (``aliases``), its keys in a framework's own layout, and its Linears kept
    in their framework's order; and the keys a rule left out.

    Raises:
        CheckpointError: A rule is malformed, or gives two keys one name.

    Examples:
        >>> state, aliases, own, orders, out = renamed(
        ...     Renaming([(r"net\\.(.*)", r"\\1"), ("aux", None)], CheckpointError),
        ...     {"net.0.weight": 1, "aux.weight": 2}, {"net.2.weight": "net.0.weight"}, {}, (["net.0"], None))
        >>> state, aliases, orders, out
        ({'0.weight': 1}, {'2.weight': '0.weight'}, (['0'], None), ['aux.weight'])
    """
    names = renaming.keys([*state, *aliases])

    def new(key: str) -> str | None:
        return names.get(key, key)

    def layers(paths: list[str] | None) -> list[str] | None:
        return None if paths is None else [p for p in map(renaming.layer, paths) if p is not None]

    return (
        {n: v for k, v in state.items() if (n := new(k)) is not None},
        {n: t for k, v in aliases.items() if (n := new(k)) is not None and (t := new(v)) is not None},
        {n: b for k, b in own_layout.items() if (n := new(k)) is not None},
        (layers(orders[0]), layers(orders[1])),
        [k for k in state if new(k) is None],
    )


def renamed_state(state: Mapping[str, Any], renaming: Renaming) -> tuple[Mapping[str, Any], list[str]]:
    """`renamed` for a state given to ``load_state_dict``: a `State` keeps what
    it says, under the new names; and the keys a rule left out."""
    if not isinstance(state, State):
        items, _, _, _, out = renamed(renaming, state, {}, {}, (None, None))
        return items, out
    orders: Orders = (state.flattened_naive, state.unflattened_naive)
    items, aliases, own, (inputs, outputs), out = renamed(
        renaming, state, state.aliases, state.own_layout, orders
    )
    again = State(items, own, state.source_backend, (inputs or [], outputs or []), state.layout, aliases)
    return again, out


def native_sources(model: Module, given: Mapping[str, Source]) -> tuple[dict[str, Source], dict[str, str]]:
    """Sources in ``model``'s own layout, as canonical ones (each converted as
    it is read), and the keys of leaves the library knows no canonical form
    of (in ``model``'s framework's layout: `Param.own_layout`). A key may
    also name a leaf by the framework's own name (paddle's ``"0._mean"`` for
    ``"0.running_mean"``), unless its canonical key is given too. A key the
    model lacks, or a value of another shape, passes through unchanged, so
    the load reports it.

    Examples:
        >>> import paddle
        >>> from unified_params import wrap
        >>> m = wrap(paddle.nn.Linear(4, 2))
        >>> native = Source.of(np.arange(8.0).reshape(4, 2), "weight")  # paddle's (in, out)
        >>> sources, _ = native_sources(m, {"weight": native})
        >>> sources["weight"].shape, sources["weight"].read()[1].tolist()
        ((2, 4), [1.0, 3.0, 5.0, 7.0])
    """
    params = model.params()
    by_native = {
        key[: len(key) - len(p.name)] + p.native_name: key
        for key, p in params.items()
        if p.native_name != p.name
    }
    out: dict[str, Source] = {}
    for given_key, source in given.items():
        key = given_key
        if key not in params and by_native.get(key, key) not in given:
            key = by_native.get(key, key)
        p = params.get(key)
        if p is None:
            p = _alias_param(model, key)
        if p is None or source.shape != p.native_shape or p.layout.is_identity:
            out[key] = source
            continue
        out[key] = Source(p.shape, source.dtype, functools.partial(_converted, p.layout, source.read))
    return out, {k: model.backend for k in out if k in params and params[k].own_layout}


def _alias_param(model: Module, key: str) -> Param | None:
    """The parameter a look-up at ``key`` answers with, if it is one: for an
    alias (a shared layer's path, a wrapper's hold on a kernel), the variable's."""
    try:
        found = model[key]
    except PathError:
        return None
    return found if isinstance(found, Param) else None


def _converted(layout: layouts.Layout, read: Callable[[], np.ndarray]) -> np.ndarray:
    return np.asarray(layout.to_canonical(read()))


def own_layout_of(model_slots: list[Slot]) -> dict[str, str]:
    """Key -> backend, for the entries of ``model_slots`` in their framework's own layout."""
    return {key: own for slot in model_slots if (own := slot.own_layout) for key in slot.keys}


def state_dict(model: Module, layout: str = "canonical") -> dict[str, np.ndarray]:
    """The model's state as numpy arrays; see ``unified_params.state_dict``."""
    if layout == "native":  # says so itself: a load takes it only into its own framework
        params = {path: p for path, p in model.params().items() if p.persistent}
        items = {path: p.numpy("native") for path, p in params.items()}
        same = all(p.layout.is_identity for p in params.values())  # torch's: canonical too
        aliases = {a: path for path, p in params.items() for a in aliases_inside(p, model)}
        return State(items, {}, model.backend, layout="canonical" if same else "native", aliases=aliases)
    check_layout(layout)
    model_slots = slots(model)
    # C-contiguous, as a torch state_dict's tensors are: a reader of raw buffers
    # (safetensors.numpy 0.8 writes an array's memory as it lies) reads them right.
    arrays = {key: _own_c_copy(value) for slot in model_slots for key, value in slot.export()}
    return State(
        arrays,
        own_layout_of(model_slots),
        model.backend,
        naive_orders(model),
        aliases=alias_keys(model, model_slots),
    )


def alias_keys(model: Module, model_slots: list[Slot]) -> dict[str, str]:
    """Each other path of a tie group inside ``model`` -> the key that holds its value."""
    return {a: s.keys[0] for s in model_slots if s.how == "one" for a in aliases_inside(s.param, model)}


def _own_c_copy(value: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``value`` that nothing else holds."""
    out = layouts.contiguous(value)
    return np.array(out, copy=True) if np.may_share_memory(out, value) else out


def naive_orders(model: Module) -> tuple[list[str], list[str]]:
    """The Linears ``model`` keeps in its framework's own order of a flattened
    map, of their inputs and of their outputs, by path inside it."""
    from .flatten import naive_layers
    from .unflatten import naive_outputs

    return [inside(p, model) for p in naive_layers(model)], [inside(p, model) for p in naive_outputs(model)]


def refuse_orders(
    model: Module, written: tuple[list[str] | None, list[str] | None], writer: str | None, source: str
) -> None:
    """Refuse values whose flattened maps (of a Linear's inputs or outputs) are
    stored in one order and held in the other; ``written``: the writer's
    naive Linears, ``None`` where it does not say."""
    from .flatten import refuse_file_order
    from .unflatten import refuse_output_order

    refuse_file_order(model, written[0], writer, CheckpointError, source)
    refuse_output_order(model, written[1], writer, CheckpointError, source)


def plan_load(
    model: Module,
    state: Mapping[str, Any],
    aliases: Mapping[str, str] | None = None,
    own_layout: Mapping[str, str] | None = None,
    said_canonical: bool = False,
    keep: Collection[str] = (),
) -> tuple[list[tuple[Slot, list[Source]]], LoadReport, list[tuple[str, str]]]:
    """Match a canonical state to the model without writing anything.

    ``keep``: keys the caller leaves as they are (a port's ``keep``), not
    missing when the state lacks them.

    ``own_layout`` names the keys whose values are in a backend's own layout
    (see `State`); a `State` says it itself, a Param and a `Source` too.
    ``said_canonical``: the caller says every value is canonical, also a
    framework's tensor whose own layout would fit (`foreign`).
    Returns the plan, the report so far, and the ``(alias key, first key)``
    pairs of tie groups the state gives twice, whose values must agree.
    """
    report = LoadReport()
    own = {**getattr(state, "own_layout", {}), **(own_layout or {})}
    given = {k: Source.of(v, k, own.get(k)) for k, v in _checked_state(state).items()}
    aliases = dict(aliases or {})
    model_slots = slots(model)
    alias_of = {a: slot.keys[0] for slot in model_slots for a in aliases_inside(slot.param, model)}
    used: set[str] = set()
    plan = []
    # A Linear weight given transposed, (in, out), where that is no layout its
    # framework declares (GPT-2's Conv1D in a file of torch's): the state lays
    # Linear weights out so, and a square one's shape cannot tell.
    transposed: tuple[tuple[str, ...], str | None] | None = None  # (owners, writer) of such a value
    squares: list[tuple[str, Param]] = []  # square Linear weights of a framework's tensors or a file's
    for slot in model_slots:
        sources, ok = [], True
        for key, shape in zip(slot.keys, slot.shapes, strict=True):
            leaf = key.rsplit(".", 1)[-1]
            name = key if key in given else _alias_in(key, slot, given, aliases, model)
            if name is None:
                if key in keep:
                    pass  # left as it is: neither missing nor written
                elif _optional(slot, key):
                    report.skipped.append(key)
                else:
                    report.missing.append(key)
                ok = False
                continue
            used.add(name)
            source = given[name]
            if name != key:
                source = _from_alias(model, name, slot, source, said_canonical)
            if source.own_layout != slot.own_layout:  # laid out as one framework keeps it, not the other
                report.own_layout.append(key)
                ok = False
                continue
            if source.shape != shape or not _castable(source.dtype, slot.param.dtype):
                report.mismatched.append((key, shape, source.shape))
                ok = False
                owners, writer = source.owners, source.writer
                theirs = owners and (
                    foreign.reading(owners, slot.param.layer_kind, leaf, source.shape, writer, expected=shape)
                    or held_reading(slot.param, owners, source.shape, writer, expected=shape)
                )
                if theirs:  # the shape a framework keeps it in: said with the mismatch
                    report.notes.append(foreign.shape_note(key, theirs))
                elif owners and _linear_weight(slot, leaf, shape) and source.shape == shape[::-1]:
                    transposed = (owners, writer)
                continue
            if source.owners and not said_canonical:
                found = foreign.reading(
                    source.owners, slot.param.layer_kind, leaf, shape, source.writer
                ) or held_reading(slot.param, source.owners, shape, source.writer)
                if found is not None:
                    report.ambiguous.append((key, found))
                    ok = False
                    continue
            kind = slot.param.layer_kind
            by = layouts.kind_offset(source.kind, kind, leaf)
            if by is not None:  # a layer that computes alike, its values kept otherwise
                report.notes.append(f"{key}: {by:+g} (given for a layer of kind {source.kind}, here {kind})")
                source = source.offset(by)
            square = _linear_weight(slot, leaf, shape) and shape[0] == shape[1]
            if square and source.owners and not said_canonical:
                squares.append((key, slot.param))
            sources.append(source)
        if ok:
            plan.append((slot, sources))
            if slot.lossy:
                report.notes.append(merge_note(slot))
    if transposed is not None and squares:  # Linear weights given (in, out): the square ones may be so too
        asked = {key for key, _ in squares}
        plan = [(slot, sources) for slot, sources in plan if not asked & set(slot.keys)]
        report.ambiguous += [(key, _given_transposed(param, *transposed)) for key, param in squares]
    twins = []
    transient: set[str] | None = None  # the model's buffers that no state holds, when first asked
    for name in given:
        if name in used:
            continue
        if name in alias_of and alias_of[name] in used:
            twins.append((name, alias_of[name]))
        elif name in alias_of or _optional_name(name):
            report.skipped.append(name)
        else:
            if transient is None:
                transient = {key for key, p in model.params().items() if not p.persistent}
            (report.skipped if name in transient else report.unexpected).append(name)
    return plan, report, twins


def load(
    model: Module,
    state: Mapping[str, Any],
    *,
    strict: bool = True,
    aliases: Mapping[str, str] | None = None,
    progress: bool | None = None,
    description: str = "loading",
    allow_nonfinite: bool = False,
    partial_error: type[Exception] = CheckpointError,
    hold: Callable[[], contextlib.AbstractContextManager[Callable[[], bool] | None]] | None = None,
    own_layout: Mapping[str, str] | None = None,
    said_canonical: bool = False,
    keep: Collection[str] = (),
) -> LoadReport:
    """Validate everything, then write; see ``unified_params.load_state_dict``.
    ``keep``: keys left as they are (`plan_load`).

    Every value is read and checked first (shape, dtype, finite once cast,
    tie groups that agree); only then is anything written, so a bad value,
    a file that shrinks or a conflict leaves the model as it was. ``partial_error``
    is raised when the framework fails a write after others succeeded.

    ``hold``, when some value can be read again at its write (`_defers`), is
    entered for the rest of the load: it keeps the sources unchanged (a read
    lease: see `leases`) and gives a check that they still are, or ``None``
    where it cannot. Given that check, such a value is checked piece by piece
    as it streams through a small buffer, then read again when it is
    written: straight into the variable's memory where the framework lends
    it (`_fills_in_place`), else into memory that the value before let go.
    No copy of the checkpoint is held, and little new memory is touched.
    """
    plan, report, twins = plan_load(model, state, aliases, own_layout, said_canonical, keep)
    if strict and not report.ok:
        shift = _fitting_shift(model, state, report)
        renamed = _renumbered(model, state, report) if shift is None else None
        refusal = CheckpointError(_describe(report, model, shift, renamed))
        refusal.report = report
        raise refusal
    group = group_of(p for slot, _ in plan for p in slot.params)
    # Twins are compared whole, and a sharded load reads blocks: both read values into memory.
    wanted = (
        group is None and not twins and any(_defers(s, source) for s, sources in plan for source in sources)
    )
    with contextlib.ExitStack() as held:
        # A check that the sources are as they were, while the hold lasts; None: read everything now.
        unchanged = held.enter_context(hold()) if hold is not None and wanted else None
        total = sum(nbytes(s.shape, s.dtype) for _, sources in plan for s in sources)
        meter = bar(total, progress, description)
        try:
            jobs = [(i, j, slot, k, source) for i, (slot, sources) in enumerate(plan)
                    for j, (k, source) in enumerate(zip(slot.keys, sources, strict=True))]  # fmt: skip
            arrays: dict[tuple[int, int], Any] = {}  # arrays, blocks (`Local`) or `Deferred`
            nonfinite: set[str] = set()
            owned: set[int] = set()  # ids of arrays read for this load alone

            def read(job: tuple[int, int, Slot, str, Source]) -> None:
                i, j, slot, key, source = job
                if unchanged is not None and _defers(slot, source):
                    later = Deferred(source, key, unchanged, _fills_in_place(slot, source))
                    arrays[i, j], finite, mine = later, _pieces_finite(source), False
                else:
                    arrays[i, j], finite, mine = _read_value(slot, key, source)
                if mine:
                    owned.add(id(arrays[i, j]))
                if not finite:
                    nonfinite.add(key)
                meter.update(nbytes(source.shape, source.dtype))

            error: BaseException | None = None
            try:
                if any(job[4].collective for job in jobs):
                    for job in jobs:  # the same order on every process
                        read(job)
                else:
                    run_all(read, jobs)  # reads and checks release the GIL: files are read on all cores
            except BaseException as err:
                error = err
            if group is not None:  # every rank read its own blocks: they stop or go on together
                agree(group, error, "Loading")
                nonfinite = {k for found in group.gather(sorted(nonfinite)) for k in found}
            elif error is not None:
                raise error
            ready = [
                (slot, [arrays[i, j] for j in range(len(sources))]) for i, (slot, sources) in enumerate(plan)
            ]
            report.nonfinite += [k for slot, _ in plan for k in slot.keys if k in nonfinite]
        finally:
            meter.close()
        _check_twins(ready, twins, state, report, model)
        if allow_nonfinite and report.nonfinite:
            report.notes.append(f"loaded with NaN or infinity, as allowed: {_list(report.nonfinite)}")
            report.nonfinite.clear()
        if strict and not report.ok:
            error = CheckpointError(_describe(report, model))
            error.report = report
            raise error
        refused = set(report.nonfinite)
        deferred = [a for _, arrays in ready for a in arrays if isinstance(a, Deferred)]
        if deferred and not deferred[0].unchanged():  # checked, but maybe not what a second read gives
            raise _may_have_changed(deferred[0].key)
        write_all(
            [(slot, arrays) for slot, arrays in ready if not refused & set(slot.keys)],
            report,
            partial_error,
            owned,
        )
        return report


def write_all(
    ready: list[tuple[Slot, list[np.ndarray]]],
    report: LoadReport | None = None,
    error: type[Exception] = CheckpointError,
    owned: Collection[int] = (),
) -> None:
    """Write values that were all read and validated before the first write.

    ``owned`` holds the ids of arrays made for this write alone, which a
    framework may keep as its variables' memory (`Slot.write`).

    Ctrl-C is held until every write is done (`interrupts_held`). A write the
    framework fails after others succeeded raises ``error``, naming what was
    written: the model is then partly written, and says so.
    """
    done: list[str] = []
    with interrupts_held(), recycling.scope():  # a framework that adopts copies lets its old memory go
        for slot, arrays in ready:
            try:
                slot.write(arrays, owned=all(id(a) in owned for a in arrays))
            except Exception as err:
                if not done:
                    raise
                raise error(
                    f"Writing {slot.keys[0]!r} failed ({type(err).__name__}: {err}) after "
                    f"{len(done)} of {sum(len(s.keys) for s, _ in ready)} values were written: the model "
                    f"now holds the new values of {_list(done)} and its own for the rest. Expected "
                    "every write to succeed; run it again once the cause is fixed. "
                    + received(failed=slot.keys[0], written=len(done))
                ) from err
            done.extend(slot.keys)
            if report is not None:
                report.loaded.extend(slot.keys)


def _block_of(slot: Slot) -> Sharding | None:
    """The block a sharded parameter holds, when a load can read that block alone."""
    if slot.how != "one" or not slot.param.layout.is_identity:
        return None
    return slot.param.sharding()


def _read_value(slot: Slot, key: str, source: Source) -> tuple[Any, bool, bool]:
    """A source's value, read and cast to the parameter's dtype, whether it is
    finite once cast, and whether it is an array this load alone holds (see
    `Slot.write`): for a sharded parameter, only this process's block."""
    sharding = _block_of(slot)
    if sharding is not None:
        if source.read_block is not None:
            block = source.read_block(sharding)
        else:
            block = np.asarray(source.read())[sharding.box]
        cast = values.cast_to(block, slot.param.dtype, path=key, check_overflow=False)
        return Local(cast, sharding), values.all_finite(cast), False
    value = np.asarray(source.read())
    if tuple(value.shape) != tuple(source.shape):
        raise CheckpointError(
            f"{key!r} changed while loading: its header said {source.shape}. Expected the shape the "
            "header gives. " + received(key=key, shape=value.shape)
        )
    cast = values.cast_to(value, slot.param.dtype, path=key, check_overflow=False)
    mine = (source.fresh or cast is not value) and layouts.adoptable(cast)
    return cast, values.all_finite(cast), mine


def _defers(slot: Slot, source: Source) -> bool:
    """Whether a source's value can be checked piece by piece and read again
    when it is written: one variable, of the source's dtype and canonical
    shape (no cast to check), whole on this process, from a source that reads
    both ways."""
    param = slot.param
    return (
        slot.how == "one"
        and source.fill is not None
        and source.pieces is not None
        and param.dtype == source.dtype.name
        and tuple(param.shape) == tuple(source.shape)
        and param.sharding() is None
    )


def _fills_in_place(slot: Slot, source: Source) -> bool:
    """Whether a value that `_defers` accepts can be read straight into its
    variable's memory: laid out canonically, on a framework that lends its memory."""
    param = slot.param
    return (
        param.adapter.capabilities.in_place_fill
        and param.layout.is_identity
        and tuple(param.native_shape) == tuple(source.shape)
    )


def _pieces_finite(source: Source) -> bool:
    """Whether every element of a source is finite, read piece by piece; every
    piece is read, so a file shorter than its header is an error here too."""
    assert source.pieces is not None
    finite = True
    for piece in source.pieces():
        finite = finite and values.all_finite(piece)
    return finite


def _check_twins(
    ready: list[tuple[Slot, list[np.ndarray]]],
    twins: list[tuple[str, str]],
    state: Mapping[str, Any],
    report: LoadReport,
    model: Module,
) -> None:
    """A tie group given under two keys must give one value; else it is a conflict.

    Where the two paths lay the variable out differently (a wrapper of unknown
    kind holding its inner layer's kernel keeps the framework's layout), the
    alias's value is compared as the first path lays it out (`_relaid`).
    """
    if not twins:
        return
    by_key = {k: array for slot, arrays in ready for k, array in zip(slot.keys, arrays, strict=True)}
    held = {slot.keys[0]: slot.param for slot, _ in ready if slot.how == "one"}
    for alias, first in twins:
        if first not in by_key:
            continue
        other = np.asarray(Source.of(state[alias], alias).read())
        mine = by_key[first]
        if isinstance(mine, Local):  # compared on this process's block
            other, mine = other[mine.sharding.box], mine.block
        elif first in held:
            twin = _twin(model, alias, held[first])
            agrees = other.shape == mine.shape and np.array_equal(other, mine, equal_nan=True)
            if twin is not None and other.shape == twin.shape and not agrees:
                other = _relaid(twin, held[first], other)  # as that path had it in files written before
        if other.shape == mine.shape and np.array_equal(other, mine, equal_nan=True):
            report.skipped.append(alias)
        else:
            report.conflicting.append(alias)


def _checked_state(state: Any) -> Mapping[str, Any]:
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(
            "Cannot load this state. Expected a mapping of canonical path (str) -> array, such as "
            "up.state_dict(model) gives. "
            + received(
                state=type(state).__name__,
                keys=[k for k in state][:3] if isinstance(state, Mapping) else None,
            )
        )
    return state


def merge_note(slot: Slot) -> str:
    """How a lossy merge was applied, for reports."""
    return (
        f"{slot.param.path}: {slot.param.backend} keeps one bias for {' + '.join(slot.keys)} "
        "(merged on the way in, split with a zero b_hh on the way out; outputs unchanged)"
    )


def _alias_in(
    key: str, slot: Slot, given: Mapping[str, Source], aliases: Mapping[str, str], model: Module
) -> str | None:
    """A state key that holds ``key``'s value under another path of its tie group."""
    if aliases.get(key) in given:
        return aliases[key]
    if len(slot.keys) == 1:
        for other in aliases_inside(slot.param, model):
            if other in given:
                return other
    return None


def _from_alias(
    model: Module, alias: str, slot: Slot, source: Source, said_canonical: bool = False
) -> Source:
    """The value given for ``alias``, another path of ``slot``'s variable, as
    ``slot`` lays it out. Where ``alias`` is a wrapper's hold on its inner
    layer's kernel (a path of a layer of unknown kind, `_twin`), a value is
    canonical (as a look-up there answers), unless its shape fits only the
    framework's own layout, which that path had before such a variable was
    listed at its layer (files written then key it so): it is read so
    (`_relaid`). A square one fits both, so unless the caller said the state is
    canonical, it is refused.

    Raises:
        CheckpointError: A square value at such a path, its layout unsaid.
    """
    if slot.how != "one" or source.own_layout is not None or said_canonical:
        return source
    param = slot.param
    twin = _twin(model, alias, param)
    if twin is None or source.shape != twin.shape:
        return source  # canonical, as given (a shape the slot does not take is refused as it is)
    if source.shape == tuple(param.shape):
        raise CheckpointError(
            f"Cannot tell the layout of the value given at {alias!r}: there a layer of unknown kind "
            f"({twin.module.type_name}) holds the variable {param.path!r} lays out, and the value fits "
            "both the framework's own layout (which that path had in files written before) and the "
            f"canonical one. Expected it keyed at {param.path!r}, or the layout said: layout='canonical', "
            "or layout='native' for the framework's own. " + received(key=alias, shape=source.shape)
        )
    return Source(
        tuple(param.shape), source.dtype, lambda: _relaid(twin, param, source.read()),
        owners=source.owners, writer=source.writer,
    )  # fmt: skip


def _twin(model: Module, alias: str, param: Param) -> Param | None:
    """The Param at ``alias``, another path of ``param``'s variable, as the
    layer there holds it (`view.held_at`), where that lays the variable out
    otherwise (a path of a layer of unknown kind keeps the framework's layout);
    else ``None``: also where ``alias`` holds another variable of this model,
    tied only in the state given (a file's tie group, as torch's tied
    ``head.weight`` and ``emb.weight``), whose value is canonical as the state's."""
    twin = held_at(model, alias)
    if twin is None or twin.native is not param.native:
        return None
    return twin if twin.layout != param.layout else None


def _relaid(twin: Param, param: Param, value: np.ndarray) -> np.ndarray:
    """A value laid out as ``twin`` lays out its variable, as ``param`` (the
    same variable at another path) lays it out: through the variable's own layout."""
    held = twin.layout.to_native(np.asarray(value), tuple(twin.native_shape))
    return layouts.contiguous(param.layout.to_canonical(held))


def _given_transposed(param: Param, owners: tuple[str, ...], writer: str | None) -> foreign.Reading:
    """What a load says of a square Linear weight of a state that gives other
    Linear weights ``(in, out)``: it may be so too; so does the model's own
    framework keep it, where it does (a Keras kernel: ``layout="native"``)."""
    own = () if param.backend in owners or param.layout.is_identity else (param.backend,)
    return foreign.Reading((*owners, *own), "(in, out)", "(out, in)", writer)


def _linear_weight(slot: Slot, leaf: str, shape: tuple[int, ...]) -> bool:
    """Whether ``leaf`` of ``slot``'s layer is a Linear's 2-D weight."""
    return slot.param.layer_kind == "linear" and leaf == "weight" and len(shape) == 2


def _optional(slot: Slot, key: str) -> bool:
    return key.rsplit(".", 1)[-1] in layouts.OPTIONAL.get(slot.param.layer_kind, ())


def _optional_name(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return any(leaf in names for names in layouts.OPTIONAL.values())


def _castable(dtype: np.dtype, target: str) -> bool:
    target_dtype = values.numpy_dtype(target)
    if dtype == target_dtype:
        return True
    floats = {"f", "V"}  # ml_dtypes' bfloat16 reports kind 'V'
    if (dtype.kind in floats or dtype.name == "bfloat16") and (
        target_dtype.kind in floats or target == "bfloat16"
    ):
        return True
    return bool(np.can_cast(dtype, target_dtype, casting="same_kind"))


def _fitting_shift(model: Module, state: Mapping[str, Any], report: LoadReport) -> tuple[str, bool] | None:
    """`shifted_keys` of a refused load, where each value the prefix pairs with
    a key of the model has that key's shape (else the prefix is a coincidence)."""
    shift = shifted_keys(report.missing, report.unexpected)
    if shift is None:
        return None
    prefix, state_has = shift
    expected = {k: shape for slot in slots(model) for k, shape in zip(slot.keys, slot.shapes, strict=True)}
    if state_has:
        pairs = [(key, prefix + key) for key in report.missing]
    else:
        pairs = [(prefix + key, key) for key in report.unexpected]
    fits = all(tuple(np.shape(state[given])) == expected.get(key) for key, given in pairs)
    return shift if fits else None


#: A key named as Keras' and Flax NNX's LoRA factors are (``lora_kernel_a``,
#: ``lora.lora_b``), and peft's (``lora_A.default.weight``).


def _unnamed_factors(missing: list[str], unexpected: list[str]) -> dict[str, str]:
    """The ``unexpected`` keys that are ``missing`` LoRA factors with one key
    of their path left out (the adapter's name: ``0.lora_A.weight`` for
    ``0.lora_A.default.weight``), each with the factor's key; empty unless
    every such factor is found so."""
    by_unnamed = {}
    for key in missing:
        parts = split(key)
        for k in range(1, len(parts) - 1):
            by_unnamed[join(*parts[:k], *parts[k + 1 :])] = key
    found = {key: by_unnamed[key] for key in unexpected if key in by_unnamed}
    return found if found and len(found) == len(missing) else {}


def _renumbered(model: Module, state: Mapping[str, Any], report: LoadReport) -> dict[str, str] | None:
    """The state's unexpected keys as the model's missing ones, where the two
    pair layer by layer in order, each layer's leaves by name and shape (a
    model whose layers sit at other positions: a torch ReLU module takes a
    position, a Keras activation argument none); ``None`` where they do not."""
    if not report.missing or len(report.missing) != len(report.unexpected):
        return None
    expected = {k: shape for slot in slots(model) for k, shape in zip(slot.keys, slot.shapes, strict=True)}
    theirs, ours = _by_layer(report.unexpected), _by_layer(report.missing)
    if len(theirs) != len(ours):
        return None
    out = {}
    for (given, leaves), (wanted, own) in zip(theirs.items(), ours.items(), strict=True):
        if sorted(leaves) != sorted(own):
            return None
        for leaf in leaves:
            key = join(wanted, leaf)
            if tuple(np.shape(state[join(given, leaf)])) != expected.get(key):
                return None
            out[join(given, leaf)] = key
    return out


def _by_layer(keys: list[str]) -> dict[str, list[str]]:
    """``keys`` by their layer's path, in order: each layer's leaf names."""
    out: dict[str, list[str]] = {}
    for key in keys:
        layer, _, leaf = key.rpartition(".")
        out.setdefault(layer, []).append(leaf)
    return out


def _renumbered_part(renamed: dict[str, str]) -> str:
    layers = dict.fromkeys((a.rpartition(".")[0], b.rpartition(".")[0]) for a, b in renamed.items())
    shown = ", ".join(f"{a!r} as {b!r}" for a, b in list(layers)[:4]) + (", ..." if len(layers) > 4 else "")
    pairs = list(renamed.items())
    listed = ", ".join(f"{a!r}: {b!r}" for a, b in pairs[:4]) + (", ..." if len(pairs) > 4 else "")
    return (
        f"the unexpected keys pair in order with the missing ones, layer by layer, by leaf and shape "
        f"({shown}): the state is of a model with the same layers at other positions (a torch ReLU "
        "module takes a position, a Keras activation argument none); load them renamed, as in renamed = "
        f"{{{listed}}}; up.load_state_dict(model, {{renamed.get(k, k): v for k, v in state.items()}}) "
        "(a file's state read by safetensors.numpy.load_file), or port from a model of the state's "
        "layers (up.port pairs layers in order)"
    )


def _spectral_forms_part(report: LoadReport, model: Module) -> str:
    """Where a state keeps spectral norms in the other form than the model
    (torch's and paddle's computed weight against a wrapper's normalized one,
    `leaf_norms.StoredNorm`), which a load does not convert and a port does."""
    if not report.missing or not report.unexpected:
        return ""
    adapter = model.adapter
    modules = model.modules()
    computes = any(n.make == "spectral" for m in modules for n in adapter.leaf_norms(m.native))
    stores = any(adapter.stored_norms(m.native) for m in modules)
    theirs = [k for k in report.unexpected if k.endswith(("weight_orig", "parametrizations.weight.original"))]
    only_u = any(k.endswith("_u") for k in report.unexpected) and not any(
        k.endswith("_v") for k in report.unexpected
    )
    computed = "weight_orig, u and v, from which each call computes the weight (torch, paddle)"
    stored = "the normalized weight in its layer and u in a wrapper (Keras' SpectralNormalization)"
    if stores and theirs:
        said = f"the state keeps spectral norms as {computed}, this model as {stored}"
    elif computes and only_u:
        said = f"this model keeps spectral norms as {computed}, the state as {stored}"
    else:
        return ""
    return (
        f"{said}: a load does not convert between the two; load the state into a model of its own "
        "framework, then port (up.port moves the weight each norm computes)"
    )


def _describe(
    report: LoadReport,
    model: Module,
    shift: tuple[str, bool] | None = None,
    renamed: dict[str, str] | None = None,
) -> str:
    parts = []
    if report.missing:
        parts.append(f"missing {_list(report.missing)}")
    if report.unexpected:
        parts.append(f"unexpected {_list(report.unexpected)}")
    if shift is not None:
        parts.append(_shift_part(*shift))
    if renamed:
        parts.append(_renumbered_part(renamed))
    factors = low_rank.factors(low_rank.updates(model)) if report.missing else set()
    unnamed = _unnamed_factors([k for k in report.missing if k in factors], report.unexpected)
    if unnamed:
        parts.append(
            f"{_list(list(unnamed))} are this model's LoRA factors {_list(list(unnamed.values()))} without "
            "the adapter's name, as peft's save_pretrained writes an adapter alone: load it with peft "
            "(PeftModel.from_pretrained(base_model, folder), or peft.set_peft_model_state_dict(model, "
            "state)), which names them and leaves the model's other weights as they are"
        )
    elif factors & set(report.missing):
        parts.append(
            f"{_list([k for k in report.missing if k in factors])} are the factors of a low-rank update "
            "(LoRA) of this model, which a checkpoint of the model without it lacks: pass strict=False to "
            "load the rest (a new update, its b factor zero, adds nothing), or port from a model, which "
            "sets this model's weights and resets its updates (up.port)"
        )
    lora = [k for k in report.unexpected if low_rank.looks_like_factor(k)]
    if lora and not factors:
        parts.append(
            f"{_list(lora)} look like the factors of a low-rank update (LoRA), which this model lacks: "
            "port from the model that has them (up.port merges each update into its weight, so this "
            "model computes what that one does); a load cannot merge them, and strict=False would load "
            "the weights without their updates"
        )
    spectral = _spectral_forms_part(report, model)
    if spectral:
        parts.append(spectral)
    if report.mismatched:
        shown = ", ".join(f"{k!r} expects {e} got {g}" for k, e, g in report.mismatched[:5])
        layouts_said = [n for n in report.notes if isinstance(n, foreign.LayoutNote)][:5]
        parts.append(f"mismatched {shown}" + "".join(f" ({n})" for n in layouts_said))
    if report.nonfinite:
        parts.append(
            f"not finite in the parameter's dtype (NaN, infinity or overflow) {_list(report.nonfinite)}; "
            "pass allow_nonfinite=True to load them anyway"
        )
    if report.conflicting:
        parts.append(
            f"tied in this model but given different values {_list(report.conflicting)} (the state is "
            "untied; untie the model first, or drop the extra key)"
        )
    if report.own_layout:
        parts.append(own_layout_part(report.own_layout, model.backend))
    if report.ambiguous:
        parts.append(foreign.refusal_part(report.ambiguous, model.backend))
    return (
        f"The state does not fit {model.type_name} ({model.backend}): {'; '.join(parts)}. Expected "
        "the canonical keys and shapes of this model (see up.state_dict(model)); nothing was "
        "written. Pass strict=False to load what fits. "
        + received(
            missing=len(report.missing),
            unexpected=len(report.unexpected),
            mismatched=len(report.mismatched),
            nonfinite=len(report.nonfinite),
            conflicting=len(report.conflicting),
            own_layout=len(report.own_layout),
            ambiguous=len(report.ambiguous),
        )
    )


def shifted_keys(missing: list[str], unexpected: list[str]) -> tuple[str, bool] | None:
    """A prefix that sets the state's keys apart from the model's, and whether
    the state has it (``True``: every missing key is in the state behind it,
    as torch.compile's ``_orig_mod.`` or DDP's ``module.`` keep them) or the
    model (``False``: every unexpected key is a missing one behind it, the
    state of one part); ``None`` if no prefix does.

    Examples:
        >>> shifted_keys(["0.weight", "0.bias"], ["module.0.bias", "module.0.weight"])
        ('module.', True)
        >>> shifted_keys(["enc.0.weight", "head.weight"], ["0.weight"])
        ('enc.', False)
        >>> shifted_keys(["0.weight"], ["1.weight"]) is None
        True
    """
    if not missing or not unexpected:
        return None
    for inner, outer, state_has in ((missing, unexpected, True), (unexpected, missing, False)):
        keys = set(outer)
        first = inner[0]
        for key in outer:
            if key.endswith(f".{first}"):
                prefix = key[: -len(first)]
                if all(prefix + k in keys for k in inner):
                    return prefix, state_has
    return None


def _shift_part(prefix: str, state_has: bool) -> str:
    if state_has:
        return (
            f"each missing key is in the state behind {prefix!r} (torch.compile's state keeps them "
            "behind '_orig_mod.', DistributedDataParallel's behind 'module.'): load those, as in "
            f"up.load(model, file, mapping=[(r'{re.escape(prefix[:-1])}\\.?(.*)', r'\\1')]) "
            "(the same mapping for up.load_state_dict)"
        )
    return (
        f"each unexpected key is a missing one behind {prefix!r}: the state is of the part at "
        f"{prefix[:-1]!r}; load it there, as in up.load_state_dict(up.wrap(model)[{prefix[:-1]!r}], state)"
    )


def own_layout_part(keys: list[str], backend: str) -> str:
    """What a load says of leaves in a layout the two sides do not share."""
    return (
        f"in a framework's own layout on one side only {_list(keys)}: the library knows no canonical "
        "form of these leaves (a layer's extra variables, such as a spectral norm's weight_orig, "
        f"weight_u and weight_v), so they load only from a model or file of the same framework ({backend} "
        "here); to move the layer to or from another framework, port from a model (up.port reads a "
        "spectral norm's axis on both sides) or remove the norm first (which folds it into the weight)"
    )


def _list(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes of an array of ``shape`` and ``dtype``."""
    return math.prod(shape) * np.dtype(dtype).itemsize
