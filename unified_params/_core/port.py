"""``up.port``: copy weights between models of different frameworks.

Parameterised layers are paired (`unified_params._core.pairing`: in
traversal order, by paths, or by regex rules) and must agree in kind and in
the canonical shapes of their leaves, so names may differ. Values go
through the canonical layout, one parameter at a time; the inputs of a
Linear after a flattened map are reordered where the two frameworks flatten
differently (`unified_params._core.flatten`). Every value is validated
before the first write, as ``load`` does, so a refused port leaves the
destination as it was with no copy of it. With ``check_input``, the
destination's values are kept (one copy of the model) and given back when
the outputs differ or anything else fails after the first write.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from . import absent, channel_axes, code_names, geometry, leaf_norms, low_rank, upsampling
from .errors import CheckpointError, NotBuiltError, PathError, PortError, at_path, received
from .flatten import port_reorders
from .forward import run as run_forward
from .inputs import prepare_input
from .layouts import CHANNEL_NORMS, UNKNOWN_KIND, kind_offset, offset_value
from .outputs import blind_spot, rounding_hint, zeros_like_input
from .pairing import (
    LayerMapping,
    Rule,
    after_their_layers,
    named_layers,
    pair,
    parts,
    pointwise_pair,
    reshaped,
)
from .parallel import run_all
from .paths import join, relative, split
from .sharding import Local
from .state import LoadReport, Slot, Source, alias_keys, aliases_inside, inside, load, merge_note, slots
from .tree import norm_keys, spectral_forms, unique_modules, walk
from .unflatten import port_output_reorders
from .view import Module, Param, native_at


@dataclass(frozen=True)
class Stored:
    """A layer's spectral norm that a wrapper applies in training, keeping the
    normed leaf in the layer (`leaf_norms.StoredNorm`), as a port pairs it:
    the leaf goes by ``weight_orig``, the wrapper's ``u`` by ``weight_u``, and
    a ``weight_v`` the layer does not keep stands for the computed norms' ``v``.

    Attributes:
        wrapper: The wrapper's path.
        axis: The canonical axis of the leaf the norm keeps.
        leaf: The leaf's name within the layer (``"weight"``).
        u: The key of the wrapper's ``u``.
        power_iterations: The norm's power iterations per call in training.
    """

    wrapper: str
    axis: int
    leaf: str
    u: str
    power_iterations: int | None = None


@dataclass
class Layer:
    """A parameterised layer as ``port`` sees it."""

    path: str
    kind: str
    type_name: str
    leaves: list[tuple[str, tuple[int, ...]]]
    slots: list[Slot]
    #: As a source: its leaf (the name its model gives) -> the name the
    #: destination knows it by (``port(..., leaves=...)``, a part's ``_l0``).
    renamed: dict[str, str] = field(default_factory=dict)
    #: One layer and direction of a recurrent layer that holds several
    #: (``"l1"``, ``"l0_reverse"``; see `pairing.parts`), else ``""``.
    part: str = ""
    #: The path in the names the framework gives layers it keys by position
    #: (Keras' layer names: ``"conv1_conv"`` for ``"2"``), else ``""``.
    alias: str = ""
    #: The leaves it computes from other variables on each call (`Adapter.computed`).
    computed: tuple[str, ...] = ()
    #: Its weight norms and spectral norms: make, leaf and canonical axis each
    #: (`leaf_norms.key`), which a paired layer's must match.
    norms: tuple[tuple[str, str, int | None], ...] = ()
    #: Its spectral norms' variables (paths within it) -> the form a port
    #: compares and moves them in (`leaf_norms.SpectralForm`).
    forms: dict[str, leaf_norms.SpectralForm] = field(default_factory=dict)
    #: Its low-rank updates (LoRA), by the key of the leaf each updates: its
    #: factors are not leaves that pair (`unified_params._core.low_rank`).
    updates: dict[str, list[low_rank.Update]] = field(default_factory=dict)
    #: The spectral norm a wrapper applies to it in training (`Stored`).
    stored: Stored | None = None

    @property
    def real(self) -> dict[str, str]:
        """As a destination: the leaf it is paired by -> its leaf in the model
        (a part's, a weight norm's kept apart)."""
        return {v: k for k, v in self.renamed.items()}

    @property
    def name(self) -> str:
        """The path, and the part of a recurrent layer it stands for: ``"lstm[l1_reverse]"``."""
        return f"{self.path}[{self.part}]" if self.part else self.path

    @property
    def kind_note(self) -> str | None:
        """Why its kind pairs with no other framework's, for a kind of its
        framework's own (`Adapter.KIND_NOTES`)."""
        if not self.slots:
            return None
        from ..backends.registry import get_adapter

        return get_adapter(self.slots[0].param.backend).KIND_NOTES.get(self.kind)

    def describe(self) -> str:
        shapes = ", ".join(f"{n} {s}" for n, s in self.leaves)
        backend = self.slots[0].param.backend if self.slots else ""
        return f"{backend} {self.name!r} ({self.type_name}, {self.kind}: {shapes})"


@dataclass
class PortReport:
    """What ``port`` matched, converted and found.

    Attributes:
        pairs: ``(source layer, destination layer, kind)`` in order.
        conversions: Per parameter, how its layout changed.
        lossy: Merges that lose information but keep outputs (Keras LSTM bias).
        differences: Settings of paired layers that differ: hyperparameters
            (BatchNorm eps, momentum, a spectral norm's power_iterations) and
            a convolution's stride, dilation, padding (with the zeros of a
            padding layer before it) and padding mode, e.g. ``"0 -> 0: padding
            1/1, 1/1 (torch) vs same (0/1, 0/1 for the recorded input, 10 x 10)
            (keras)"``; the activation its
            output goes through (``"0 -> 0: output_activation none (torch)
            vs relu (keras)"``); the n-th pooling layers' kinds, windows,
            ceil mode and what an average divides by (``"2 -> 2: ceil_mode
            True (torch) vs False (paddle)"``); the n-th upsampling layers'
            methods and scales (``"1 -> 1: upsampling linear (torch) vs
            nearest (keras)"``); and each layer without weights
            that scales or offsets at inference on one side only
            (``"_drop1: inference_scale 0.5 (paddle) vs 1 (torch)"``,
            ``"1: inference_offset -1 (keras) vs 0 (torch)"``).
        aligned: Hyperparameters of the destination set to the source's
            (``align="hyperparameters"``), as ``differences`` words them.
        absent: Leaves one side of a pair lacks: each destination leaf set to
            its neutral value (a bias of zeros, a scale of ones), each source
            leaf of neutral values left out, each bias folded into the next
            BatchNorm's running mean (``fold_biases=True``).
        notes: What else the port did or could not know: inputs reordered
            as ``flatten`` declared, a Linear that may take a flattened map
            that only the outputs verified; without ``check_input``, what
            it did not compare (what follows paired layers where a forward
            method decides it, pooling or upsampling layers it could not
            pair).
        skipped: Source layers ``skip`` left out of the port, with their leaves.
        kept: Destination layers ``keep`` left as they were, with their leaves.
        max_abs_diff: Largest output difference on ``check_input``, if given.
        load: The destination's [LoadReport][unified_params.LoadReport].
    """

    pairs: list[tuple[str, str, str]] = field(default_factory=list)
    conversions: list[str] = field(default_factory=list)
    lossy: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    aligned: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    max_abs_diff: float | None = None
    load: LoadReport | None = None

    def _repr_html_(self) -> str:
        from .notebook import report_html

        return report_html(self)


def _paired(
    src: Module,
    dst: Module,
    mapping: LayerMapping | None,
    leaves: Sequence[Rule] | Mapping[str, str] | None,
    skip: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> tuple[tuple[list[Layer], list[Layer]], list[tuple[Layer, Layer]]]:
    """Both models' layers and their pairs: at every position a layer or a
    tied parameter is reached at; failing that, once per layer (a model that
    keeps a shared layer at one position, as a Keras functional model does,
    against one that lists it at each)."""
    named = mapping is not None or bool(skip) or bool(keep)
    order = layers(src, aliases=named), layers(dst, aliases=named)
    try:
        return order, pair(*order, mapping, leaves, skip, keep)
    except PortError as err:
        once = layers(src, aliases=named, positions=False), layers(dst, aliases=named, positions=False)
        if list(map(len, once)) == list(map(len, order)):
            raise  # no layer is reached twice: the same lists
        try:
            return once, pair(*once, mapping, leaves, skip, keep)
        except PortError:
            raise err from None


def _left_alone(
    model: Module, found: list[Layer], paths: Sequence[str], what: str
) -> tuple[list[str], set[str]]:
    """The report's lines for the layers ``paths`` name (``what``: ``skip`` or
    ``keep``), and their keys.

    Raises:
        PortError: A variable of such a layer is tied to one of a layer the
            port writes or reads (a kept one would change with it).
    """
    chosen = named_layers(found, paths, what, "source" if what == "skip" else "destination")
    lines = [
        f"{y.name}{f' {y.alias!r}' if y.alias else ''} ({y.type_name}): {', '.join(n for n, _ in y.leaves)}"
        for y in chosen
    ]
    keys: set[str] = set()
    for slot in slots(model) if chosen else []:
        at = [*slot.keys, *aliases_inside(slot.param, model)]
        within = [k for k in at if any(relative(k, y.path) is not None for y in chosen)]
        if within and len(within) < len(at):
            outside = next(k for k in at if k not in within)
            raise PortError(
                f"{what} names the {model.backend} layer that holds {within[0]!r}, which is tied to "
                f"{outside!r}, a layer the port {'reads' if what == 'skip' else 'writes'}: one variable "
                f"cannot be both. Expected {what} to name the layers of a tie together. "
                + received(**{what: list(paths)})
            )
        keys.update(within)
    return lines, keys


def layers(model: Module, aliases: bool = False, positions: bool = True) -> list[Layer]:
    """Parameterised layers in traversal order, with their canonical leaves
    (and, with ``aliases``, their paths in the framework's layer names).

    With ``positions``, a layer shared at several positions, and a layer
    holding a parameter tied to another's, is listed at each position, with
    the leaves it is reached by there (as the layer there lays them out): an
    architecture is compared position by position, whichever model shares
    what. The load then writes each variable once and refuses a tie group
    given two different values. Without, each variable is listed once.

    Examples:
        >>> import torch
        >>> from unified_params import wrap
        >>> lin = torch.nn.Linear(2, 2)
        >>> net = wrap(torch.nn.Sequential(lin, torch.nn.ReLU(), lin))
        >>> [x.path for x in layers(net)], [x.path for x in layers(net, positions=False)]
        (['0', '2'], ['0'])
    """
    out: dict[str, Layer] = {}
    unused = idle(model)
    found = [slot for slot in slots(model) if not _within(slot.layer, unused)]
    updates = low_rank.updates(model)
    factors = low_rank.factors(updates)
    for slot in found:
        _add(out, model, slot, aliases, factors)
    for update in updates:
        if update.layer in out:  # else its leaf is not state (never so for a framework's LoRA)
            out[update.layer].updates.setdefault(update.leaf, []).append(update)
    tied = _add_tied(out, model, found, aliases, factors) if positions else set()
    if tied:
        where = {
            inside(p, model): k for k, (p, _) in enumerate(walk(model.adapter, model.native, model.path))
        }
        out = dict(sorted(out.items(), key=lambda item: where.get(item[0], len(where))))  # traversal order
    _adopt_stored(out, model, tied)
    return [one for layer in out.values() for one in parts(layer)]


def _adopt_stored(out: dict[str, Layer], model: Module, tied: set[str]) -> None:
    """Each layer a wrapper spectral-normalizes in training (`Adapter.stored_norms`)
    made one layer with the wrapper's ``u`` (`Stored`), in the wrapper's place:
    it pairs with a layer whose spectral norm computes its leaf. A wrapper that
    keeps more than ``u``, or a layer with other norms or ties, stays as it is."""
    for module in model.modules():
        for norm in model.adapter.stored_norms(module.native):
            wrapper = inside(module.path, model)
            path = join(wrapper, norm.child) if wrapper else norm.child
            layer, holder = out.get(path), out.get(wrapper)
            if layer is None or holder is None or path in tied or wrapper in tied:
                continue
            if layer.norms or layer.renamed or layer.updates or len(holder.slots) != 1:
                continue
            (u,) = holder.slots
            inner = model[path]
            assert isinstance(inner, Module)  # a layer's path names a layer
            leaf = next((k for k, p in inner.params().items() if p.native_name == norm.leaf), None)
            shapes = dict(layer.leaves)
            if u.how != "one" or u.param.native_name != norm.u or leaf not in shapes:
                continue
            declared = model.adapter.leaves(inner.native, inner.kind) or {}
            _, _, axis = leaf_norms.key(
                leaf_norms.LeafNorm("spectral", norm.leaf, norm.axis, ()),
                inner.kind,
                declared.get(norm.leaf),
                len(shapes[leaf]),
            )
            if axis is None:  # a layout that merges axes: no one axis to pair by
                continue
            shape = shapes[leaf]
            kept, others = shape[axis], math.prod(shape) // shape[axis]
            layer.leaves[:] = [("weight_orig" if n == leaf else n, s) for n, s in layer.leaves]
            layer.leaves += [("weight_u", (kept,)), ("weight_v", (others,))]
            layer.renamed = {leaf: "weight_orig"}
            layer.norms = (("spectral", "weight", axis),)
            layer.slots.append(u)
            layer.stored = Stored(wrapper, axis, leaf, u.keys[0], norm.power_iterations)
            del out[wrapper]


def _local(layer: Layer, key: str) -> str:
    """The name of the variable ``key`` within ``layer``: its path below it,
    or ``weight_u`` for the ``u`` of a wrapper's norm (`Stored`)."""
    if layer.stored is not None and key == layer.stored.u:
        return "weight_u"
    return key[len(layer.path) + 1 :] if layer.path else key


def _key(layer: Layer, local: str) -> str:
    """The key of the variable named ``local`` within ``layer`` (`_local`'s inverse)."""
    if layer.stored is not None and local == "weight_u":
        return layer.stored.u
    return join(layer.path, local)


def idle(model: Module) -> list[str]:
    """The paths (relative to ``model``) of the layers its modules hold but
    do not compute with now (`Adapter.idle`): a port pairs none of them.

    Examples:
        >>> import torch
        >>> from unified_params import wrap
        >>> idle(wrap(torch.nn.Sequential(torch.nn.Linear(2, 2))))
        []
    """
    return [inside(join(m.path, key), model) for m in model.modules() for key in model.adapter.idle(m.native)]


def _idle_kept(model: Module) -> tuple[list[str], set[str]]:
    """The layers of ``model`` a port leaves as they are because the model
    does not compute with them now, and their keys."""
    unused = idle(model)
    return unused, {k for k in model.params() if _within(k, unused)}


def _within(path: str, bases: list[str]) -> bool:
    """Whether ``path`` is one of ``bases`` or below one."""
    return any(path == base or relative(path, base) is not None for base in bases)


def _add_tied(
    out: dict[str, Layer], model: Module, found: list[Slot], aliases: bool, factors: set[str]
) -> set[str]:
    """The leaves each variable is reached by at its other positions (a shared
    layer's, a tied parameter's), on the layers there, in each layer's own
    order; the paths of those layers."""
    tied = set()
    for slot in found:
        if slot.how != "one":
            continue  # a merged or gathered value: its other positions stay unlisted (and unpaired)
        for key in aliases_inside(slot.param, model):
            param = model[key]
            assert isinstance(param, Param)  # an alias is a parameter's path
            if param.path == slot.param.path:  # a look-up answered with the layer's (`tree.shown_as`):
                continue  # a wrapper's hold on its inner layer's kernel, moved with that layer
            holder = inside(param.module.path, model)
            _add(out, model, Slot([param], (key,), (param.shape,), holder), aliases, factors)
            tied.add(holder)
    for path in tied:
        module = model[path] if path else model
        assert isinstance(module, Module)  # a holder's path names a layer
        at = {join(path, key): k for k, key in enumerate(module.params())}
        layer = out[path]
        layer.slots.sort(key=lambda slot: at.get(slot.keys[0], len(at)))
        prefix = len(path) + 1 if path else 0
        layer.leaves[:] = [
            (_paired_name(layer, key[prefix:]), shape)
            for slot in layer.slots
            for key, shape in zip(slot.keys, slot.shapes, strict=True)
            if not _optional_leaf(layer.kind, key) and key not in factors
        ]
    return tied


def _add(out: dict[str, Layer], model: Module, slot: Slot, aliases: bool, factors: set[str]) -> None:
    """``slot``'s leaves, on the layer at its position (listed first if new);
    a low-rank update's ``factors`` are not leaves that pair."""
    layer = out.get(slot.layer)
    if layer is None:
        module = model[slot.layer] if slot.layer else model
        assert isinstance(module, Module)  # a slot's layer path names a layer
        alias = _alias(model, slot.layer) if aliases else ""
        computed = model.adapter.computed(module.native)
        norms = norm_keys(model.adapter, module.native, module.kind)
        layer = out[slot.layer] = Layer(
            slot.layer, module.kind, module.type_name, [], [], alias=alias, computed=computed, norms=norms
        )
        # A norm's variables pair by torch's older names, wherever the layer keeps them.
        names = leaf_norms.port_names(model.adapter.leaf_norms(module.native))
        if any(k != v for k, v in names.items()):
            layer.renamed = names
        layer.forms = spectral_forms(model.adapter, module.native, module.kind)
    prefix = len(slot.layer) + 1 if slot.layer else 0
    for key, shape in zip(slot.keys, slot.shapes, strict=True):
        if not _optional_leaf(layer.kind, key) and key not in factors:
            form = layer.forms.get(key[prefix:])
            shape = form.shape(key[prefix:]) if form is not None else shape
            layer.leaves.append((_paired_name(layer, key[prefix:]), shape))
    layer.slots.append(slot)


def _paired_name(layer: Layer, leaf: str) -> str:
    """The name ``layer``'s leaf pairs by, and with it every leaf of a layer
    whose leaves go by other names (`Layer.renamed`)."""
    if not layer.renamed:
        return leaf
    return layer.renamed.setdefault(leaf, leaf)


def _alias(model: Module, path: str) -> str:
    """``path`` with each key the framework also names (Keras' layer names) as
    that name; ``""`` when it names none."""
    node, keys, named = model.native, [], False
    for key in split(path) if path else []:
        name = next((n for n, k in model.adapter.child_names(node).items() if k == key), None)
        named |= name is not None
        keys.append(name or key)
        node = model.adapter.child(node, key)
    return join(*keys) if named else ""


def port(
    src: Module,
    dst: Module,
    *,
    check_input: Any = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    mapping: LayerMapping | None = None,
    progress: bool | None = None,
    align: str | None = None,
    flatten: Mapping[str, tuple[int, ...] | None] | None = None,
    leaves: Sequence[Rule] | Mapping[str, str] | None = None,
    fold_biases: bool = False,
    unflatten: Mapping[str, tuple[int, ...] | None] | None = None,
    skip: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> PortReport:
    """Copy ``src``'s weights into ``dst``; see ``unified_params.port``."""
    if align not in (None, "hyperparameters"):
        raise PortError("Unknown align. Expected None or 'hyperparameters'. " + received(align=align))
    order, pairs = _paired(src, dst, mapping, leaves, skip, keep)
    skipped, _ = _left_alone(src, order[0], skip, "skip")
    kept, kept_keys = _left_alone(dst, order[1], keep, "keep")
    idle_src, (idle_dst, idle_keys) = idle(src), _idle_kept(dst)
    kept_keys |= idle_keys
    for a, b in pairs:
        if pointwise_pair(a, b):
            _check_pointwise(src, dst, a, b)
    partner = {a.name: b for a, b in pairs}
    linears = [(a.path, b.path) for a, b in pairs if a.kind == b.kind == "linear"]
    reorders, notes = port_reorders(src, dst, linears, flatten or {}, verified=check_input is not None)
    partner_paths = {a.path: b.path for a, b in pairs}
    given, given_notes = port_output_reorders(
        src, dst, linears, partner_paths, unflatten or {}, verified=check_input is not None
    )
    notes += given_notes
    report = PortReport(notes=notes, skipped=skipped, kept=kept)
    if kept:
        report.notes.append(_kept_note(kept))
    if idle_src or idle_dst:
        report.notes.append(_idle_note(idle_src, idle_dst))
    state: dict[str, Source] = {}
    settings_differ: list[tuple[str, str]] = []  # (name, line): settings of paired layers
    no_room: list[tuple[Layer, Layer, str, np.ndarray, str]] = []  # source values the destination lacks
    reshapes: list[str] = []  # leaves of a kind the library does not know, of other size-one axes
    pointwise: list[str] = []  # Linears paired with pointwise convolutions
    shifts: dict[str, np.ndarray] = {}  # a destination running mean's key -> the biases folded into it
    tied_to: dict[int, list[tuple[str, str]]] = {}  # a source variable -> (its key, the destination's)
    lora: tuple[list[str], list[str]] = ([], [])  # the layers whose updates are merged, reset
    dora = [False, False]  # whether an update merged, reset has a magnitude (DoRA)
    stored: tuple[list[str], list[str]] = ([], [])  # pairs into, out of a norm kept in place (`Stored`)
    blind: list[tuple[Layer, Layer, str]] | None = [] if check_input is None else None
    unknown: list[tuple[str, str]] | None = [] if check_input is None else None
    for a, b in pairs:
        report.pairs.append((a.name, b.name, a.kind))
        if (a.stored is None) != (b.stored is None) and (a.forms or b.forms):
            stored[a.stored is not None].append(f"{a.name or '<root>'} -> {b.name or '<root>'}")
        settings_differ += _hyper_differences(src, dst, a, b, blind, unknown)
        real = b.real
        wanted = dict(b.leaves)
        other_shape = reshaped(a, b)
        folded = low_rank.factors([u for found in a.updates.values() for u in found])
        reads = {key: _lazy_export(slot)(key) for slot in a.slots for key in slot.keys}
        for slot in a.slots:
            gathered = any(p.sharding() is not None for p in slot.params)  # read by all ranks at once
            for key, shape in zip(slot.keys, slot.shapes, strict=True):
                if _optional_leaf(a.kind, key) or key in folded:
                    continue
                mine = _local(a, key)
                leaf = a.renamed.get(mine, mine)
                read = reads[key]
                if key in a.updates:  # what the layer computes with: its update merged in
                    read = partial(low_rank.merged, src, a.updates[key])
                    if any(update.scale for update in a.updates[key]):  # else none it adds now
                        lora[0].append(a.name or "<root>")
                        dora[0] = dora[0] or any(u.scale and u.magnitude for u in a.updates[key])
                if leaf not in wanted:  # a leaf the destination lacks: neutral values only
                    value = read()
                    line, why = absent.left_out(a, b, leaf, value, dst.backend), ""
                    if line is None and fold_biases:
                        target = absent.fold_target(src, dst, order, partner, a, b)
                        if isinstance(target, str):
                            why = target
                        else:
                            norm, how = target
                            mean = join(norm.path, norm.real.get("running_mean", "running_mean"))
                            shifts[mean] = shifts.get(mean, 0) + np.asarray(value)
                            line = absent.folded_line(a, b, norm, how, dst.backend)
                    if line is None:
                        no_room.append((a, b, leaf, value, why))
                    else:
                        report.absent.append(line)
                    continue
                own_layout = slot.own_layout
                theirs = real.get(leaf, leaf)
                changed = False
                if (
                    leaf in _STORED_LEAVES
                    and (a.stored or b.stored)
                    and (a.stored or a.forms)
                    and (b.stored or b.forms)
                ):
                    # A spectral norm a wrapper keeps the normed leaf of (`Stored`), either side.
                    if leaf == "weight_v":
                        continue  # the destination keeps none, or computes its own (`_unit_v`)
                    read = _stored_read(
                        a, b, leaf, mine, theirs, read, reads, _change(b.path, reorders, given)
                    )
                    own_layout, shape = _as_held(b, _key(b, theirs))
                    changed = True  # reordered there
                elif mine in a.forms and theirs in b.forms and b.path not in reorders and b.path not in given:
                    # A spectral norm's: from the source's own layout to the destination's.
                    move = partial(_spectral_move, a.forms[mine], mine, b.forms[theirs], theirs)
                    read, (own_layout, shape) = _then(read, move), _as_held(b, join(b.path, theirs))
                if not changed and (b.path in reorders or b.path in given):  # a flattened map's order
                    read = _then(read, partial(_change(b.path, reorders, given), leaf))
                if leaf in other_shape:  # the same values in order, axes of size one apart
                    read = _then(read, lambda value, to=other_shape[leaf]: np.reshape(value, to))
                    if a.kind == UNKNOWN_KIND:  # what such a leaf applies along is assumed
                        reshapes.append(f"{key!r} {shape} as {_key(b, theirs)!r} {other_shape[leaf]}")
                    elif pointwise_pair(a, b):  # and what axis the Linear acts on
                        pointwise.append(f"{a.name or '<root>'} -> {b.name or '<root>'}")
                    shape = other_shape[leaf]
                offset = kind_offset(a.kind, b.kind, leaf)
                if offset is not None:  # the same function, its values kept otherwise
                    read = _then(read, partial(offset_value, offset=offset))
                written = _key(b, theirs)
                if slot.how == "one":
                    tied_to.setdefault(id(slot.param.native), []).append((key, written))
                state[written] = Source(
                    shape,
                    np.dtype(_np(slot.param.dtype)),
                    read,
                    collective=gathered,
                    own_layout=own_layout,
                )
            if slot.lossy:
                report.lossy.append(merge_note(slot))
        if a.stored is not None and b.stored is None and b.forms:  # the v the destination computes with
            key = _key(b, real.get("weight_v", "weight_v"))
            own_layout, shape = _as_held(b, key)
            dtype = np.dtype(_np(next(s.param.dtype for s in b.slots if key in s.keys)))
            v = partial(_unit_v, a, b, key, reads, _change(b.path, reorders, given))
            state[key] = Source(shape, dtype, v, own_layout=own_layout)
        have = dict(a.leaves)  # by the names the pair compares
        for leaf, shape in b.leaves:
            if leaf not in have:  # a leaf the source lacks: its neutral value
                key = join(b.path, real.get(leaf, leaf))
                value = absent.neutral(b.kind, leaf)
                assert value is not None  # pairing admits no other
                dtype = np.dtype(_np(next(s.param.dtype for s in b.slots if key in s.keys)))
                state[key] = Source(shape, dtype, absent.fill(shape, dtype, value))
                report.absent.append(absent.filled_line(a, b, leaf, value, src.backend))
        for update in (u for found in b.updates.values() for u in found):  # reset: the update zero
            factor = dst[update.zeroed]
            assert isinstance(factor, Param)  # an update's key names a parameter
            dtype = np.dtype(_np(factor.dtype))
            layout = factor.backend if factor.own_layout else None
            state[update.zeroed] = Source(
                factor.shape, dtype, absent.fill(factor.shape, dtype, 0.0), own_layout=layout
            )
            if update.magnitude:  # DoRA's: the new leaf's norms, so it scales by one
                dora[1] = True
                magnitude = dst[update.magnitude]
                assert isinstance(magnitude, Param)
                dtype = np.dtype(_np(magnitude.dtype))
                state[update.magnitude] = Source(
                    magnitude.shape,
                    dtype,
                    partial(_reset_magnitude, dst, update, state.get(update.leaf), dtype),
                    own_layout=magnitude.backend if magnitude.own_layout else None,
                )
            kept_keys.add(update.kept)
            lora[1].append(b.name or "<root>")
    if no_room:
        raise absent.refuse(no_room, src.backend, dst.backend, fold_biases)
    report.notes += _lora_notes(*lora, dora=(dora[0], dora[1])) + _stored_notes(*stored)
    for key, shift in shifts.items():  # BatchNorm(x + b) with mean m is BatchNorm(x) with mean m - b
        state[key] = replace(state[key], read=_then(state[key].read, lambda mean, b=shift: mean - b))
    settings_differ += _norm_axis_differences(src, dst, pairs)
    settings_differ += _weightless_differences(src, dst, None if blind is None else report.notes)
    report.differences = [line for _, line in settings_differ]
    if unknown:
        report.notes.append(_unknown_padding_note(unknown))
    if blind:
        report.notes.append(_blind_note(blind, len(pairs)))
    assumed = [partial(_reshaped_note, reshapes)] if reshapes else []
    assumed += [partial(_pointwise_note, pointwise)] if pointwise else []
    moved = after_their_layers(pairs) if not mapping else []
    assumed += [partial(_after_note, moved)] if moved else []
    report.notes += [note(checked=check_input is not None) for note in assumed]
    if check_input is not None:  # a bad input is refused before anything is written
        for model in (src, dst):
            prepare_input(model, check_input)
    # Only a check on outputs can fail after the first write: then the destination's
    # values are kept to give back. Without one, the load validates every value
    # before writing any (as `load` does), and no copy of the destination is made.
    backup = _native_state(dst) if check_input is not None else None
    settings: list[tuple[Any, dict[str, float]]] = []  # the destination's own, to give back
    try:
        if align is not None:
            settings = _align(src, dst, pairs, report)
            settings_differ = [d for a, b in pairs for d in _hyper_differences(src, dst, a, b)]
            settings_differ += _norm_axis_differences(src, dst, pairs) + _weightless_differences(src, dst)
            report.differences = [line for _, line in settings_differ]
        try:
            report.load = load(
                dst,
                state,
                strict=True,
                progress=progress,
                description=f"porting to {dst.backend}",
                partial_error=PortError,
                keep=kept_keys,
            )
        except CheckpointError as err:
            if err.report is not None and err.report.own_layout:
                raise _layout_unknown(err.report.own_layout, src, dst, pairs) from err
            if err.report is None or not err.report.conflicting:
                raise
            raise _untied_into_tied(err.report.conflicting, dst, pairs) from err
        report.lossy += [n for n in report.load.notes if n not in report.lossy]
        report.notes += _ties_left_apart(dst, tied_to)
        report.conversions = _conversions(src, dst, pairs)
        if check_input is not None:
            report.max_abs_diff = _compare(src, dst, check_input, atol, rtol, report)
        else:
            _warn_if_outputs_differ(settings_differ)
            for note in assumed:  # what only outputs could show
                warnings.warn(note(checked=False), UserWarning, stacklevel=3)
    except BaseException:
        if backup is not None:
            _restore(dst, backup)  # whatever failed, the destination is as it was
        for module, values in settings:
            dst.adapter.set_hyperparameters(module, values)
        raise
    return report


def _layout_unknown(keys: list[str], src: Module, dst: Module, pairs: list[tuple[Layer, Layer]]) -> PortError:
    """The error for paired leaves that one side keeps in its framework's own layout."""
    partner = {b.path: a for a, b in pairs}
    by_layer: dict[str, list[str]] = {}
    for key in keys:
        holder, _, leaf = key.rpartition(".")
        by_layer.setdefault(holder, []).append(leaf)

    def named(path: str) -> str:
        return repr(path) if path else "at the root"

    shown = "; ".join(
        f"{', '.join(map(repr, leaves))} of the {dst.backend} layer {named(holder)}"
        + (f" (from the {src.backend} {a.type_name} {named(a.path)})" if (a := partner.get(holder)) else "")
        for holder, leaves in list(by_layer.items())[:3]
    )
    return PortError(
        f"These leaves pair by name and shape, but {src.backend} and {dst.backend} may lay them out "
        f"differently: {shown}. The library knows no canonical form of them (Param.own_layout: "
        "variables a layer holds beyond those its kind declares, such as a LoRA adapter's), so they "
        "move only between models of one framework; nothing was written. Expected layers without "
        "them: fold or remove them first (merge a LoRA adapter into its kernel), then port. "
        + received(own_layout=keys)
    )


def _untied_into_tied(conflicting: list[str], dst: Module, pairs: list[tuple[Layer, Layer]]) -> PortError:
    """The error for a destination that shares a variable the source gives two values."""
    partner = {b.path: a.path for a, b in pairs}

    def source_of(key: str) -> str:
        return repr(partner.get(key.rpartition(".")[0], "?"))

    listed = {id(p.native): path for path, p in dst.params().items()}

    def first_of(key: str) -> str:
        param = dst[key]
        assert isinstance(param, Param)  # a key of the state is a parameter's path
        return listed.get(id(param.native), "?")  # the path the variable is listed at

    shown = ", ".join(
        f"{key!r} (from the source's {source_of(key)}) against {first_of(key)!r} "
        f"(from the source's {source_of(first_of(key))})"
        for key in conflicting[:3]
    )
    return PortError(
        f"The {dst.backend} model reaches one variable at several positions (a shared layer or a tied "
        f"parameter), and the source gives it different values there: {shown}. The source does not "
        "share them, or computes with an update at one of them only (a LoRA); nothing was written. "
        "Expected a source whose values agree there, or a "
        "destination untied first (up.untie(model, path)). " + received(conflicting=conflicting)
    )


#: Settings that change what weights mean without changing their shapes: what
#: ``align="hyperparameters"`` may set (``groups`` changes shapes, never aligned).
ALIGNABLE = ("eps", "momentum")


def _ties_left_apart(dst: Module, tied_to: dict[int, list[tuple[str, str]]]) -> list[str]:
    """A note per source tie group whose destination keys hold variables of
    their own: the same values went to each, and training moves them apart.

    Examples:
        >>> import torch
        >>> from unified_params import wrap
        >>> _ties_left_apart(wrap(torch.nn.Linear(2, 2)), {1: [("0.weight", "weight")]})
        []
    """
    groups = [written for written in tied_to.values() if len(written) > 1]
    if not groups:
        return []
    found = slots(dst)
    held = {key: id(slot.param.native) for slot in found for key in slot.keys}
    held.update({alias: held[key] for alias, key in alias_keys(dst, found).items()})
    apart = [w for w in groups if len({held.get(k, k) for _, k in w}) > 1]
    if not apart:
        return []

    def group(written: list[tuple[str, str]]) -> str:
        ours, theirs = [k for _, k in written], [k for k, _ in written]
        said = " and ".join(map(repr, ours))
        return said if ours == theirs else f"{said} (the source's {' and '.join(map(repr, theirs))})"

    shown = "; ".join(map(group, apart[:3])) + (f"; and {len(apart) - 3} more" if len(apart) > 3 else "")
    tieable = [w for w in apart if _one_layout(dst, [k for _, k in w])]
    if tieable:
        how = f"to share them as the source does: up.tie(model, {tieable[0][0][1]!r}, {tieable[0][1][1]!r})"
    else:  # an embedding's matrix and a Linear's weight: one variable cannot hold both layouts
        how = (
            f"the {dst.backend} model keeps them in different layouts, so one variable cannot be "
            "both: share them in its forward pass instead (an embedding's matrix applied transposed)"
        )
    return [
        f"Tied in the source, apart in the {dst.backend} model: {shown}. Each took the same values, "
        f"and training would move them apart; {how}."
    ]


def _one_layout(model: Module, keys: list[str]) -> bool:
    """Whether the parameters at ``keys`` could be one variable: each at its
    path, of one native shape and one layout (`ties` refuses others)."""
    try:
        found = [model[key] for key in keys]
    except PathError:
        return False  # a key of a merged value (a Keras LSTM's one bias)
    params = [p for p in found if isinstance(p, Param)]
    first = params[0] if len(params) == len(found) else None
    return first is not None and all(
        p.native_shape == first.native_shape and p.layout == first.layout for p in params
    )


def _align(src: Module, dst: Module, pairs: list[tuple[Layer, Layer]], report: PortReport) -> list[Any]:
    """Set each destination layer's eps and momentum to its source's; the
    destination's own values, to give back on failure.

    Every change is listed before the first is made, and every pair read back
    after the last: layers that share one setting (a stack's layers, in Flax
    NNX) take the last value written, which their other sources may not have.

    Raises:
        PortError: A destination layer does not hold its source's setting once
            all are set (the caller gives back the saved values).
    """
    saved, asked = [], []
    for a, b in pairs:
        source = src.adapter.hyperparameters(native_at(src, a.path))
        native = native_at(dst, b.path)
        own = dst.adapter.hyperparameters(native)
        changed = {
            name: float(source[name])
            for name in ALIGNABLE
            if name in source and name in own and not _same_setting(source[name], own[name])
        }
        if changed:
            saved.append((native, {name: float(own[name]) for name in changed}))
            asked.append((b, native, changed))
            report.aligned += [
                f"{b.name or '<root>'}: {name} {_setting(own[name])} -> {value:g} "
                f"(as {src.backend}'s {a.name or '<root>'})"
                for name, value in changed.items()
            ]
    try:
        for _, native, changed in asked:
            dst.adapter.set_hyperparameters(native, changed)
        for b, native, changed in asked:
            _held(dst, b, native, changed)
    except BaseException:
        for native, values in reversed(saved):
            dst.adapter.set_hyperparameters(native, values)
        raise
    return saved


def _held(dst: Module, b: Layer, native: Any, changed: Mapping[str, float]) -> None:
    """Check that the destination layer ``b`` holds the settings it was given.

    Raises:
        PortError: It holds another (layers that share a setting took another's).
    """
    held = dst.adapter.hyperparameters(native)
    for name, value in changed.items():
        if not _same_setting(held[name], value):
            raise PortError(
                f"Cannot align {b.name or '<root>'}'s {name} to its source's {value:g}: once every "
                f"layer was aligned it holds {_setting(held[name])}, which another layer sharing "
                f"the setting took (the layers of a stack share their settings). Expected sources "
                f"with one {name} for the layers that share it, or align=None and the outputs "
                f"compared with check_input. " + received(path=b.name, name=name, asked=value)
            )


def _stored_notes(into: list[str], out_of: list[str]) -> list[str]:
    """What a port did between spectral norms kept in place and computed (`Stored`)."""
    notes = []
    if into:
        notes.append(
            f"Spectral norms ({_listed(into)}): each destination layer's weight is the one its source's "
            "norm computes at inference, weight_orig divided by the sigma its spectral norm computes "
            "from u and v; the destination's wrapper keeps it normalized in its place, with the "
            "source's u (v is not kept: the wrapper refines it from u in training)."
        )
    if out_of:
        notes.append(
            f"Spectral norms ({_listed(out_of)}): each destination norm's weight_orig is the source's "
            "weight, which its wrapper keeps normalized in place, and its u the source's, with v chosen "
            "so that u . (W v) is 1: at inference the norm computes the source's weight; in training "
            "it refines sigma from u, as the source's wrapper does."
        )
    return notes


def _reset_magnitude(
    dst: Module, update: low_rank.Update, leaf: Source | None, dtype: np.dtype
) -> np.ndarray:
    """A destination's DoRA magnitude, in ``dtype``, for the value its leaf
    gets (``leaf``; ``None``: the leaf keeps its own)."""
    if leaf is None:
        value = low_rank.reset_magnitude(dst, update, dst.param(update.leaf).numpy("native"), native=True)
    else:
        value = low_rank.reset_magnitude(dst, update, leaf.read(), native=leaf.own_layout is not None)
    return value.astype(dtype)


def _lora_notes(merged: list[str], reset: list[str], dora: tuple[bool, bool] = (False, False)) -> list[str]:
    """The report's notes on the low-rank updates (LoRA) a port merged and
    reset, and on DoRA's magnitudes among them (``dora``: merged, reset)."""
    merged, reset = ([repr(name) for name in dict.fromkeys(found)] for found in (merged, reset))
    out = []
    if merged:
        out.append(
            f"LoRA merged: {_layers_adding(merged, 'source')}; each such weight was moved with the "
            "updates merged in (weight + scale * a @ b, as Keras' own save and peft's merge_and_unload merge "
            "a LoRA"
            + (
                "; a DoRA update's rows then scaled by its magnitude over their norm with it, in the order "
                "the adapters run"
                if dora[0]
                else ""
            )
            + "), so the destination computes what the source computes."
        )
    if reset:
        out.append(
            f"LoRA reset: {_layers_adding(reset, 'destination')}; each such weight got the source's value "
            "and the factor of its update that starts at zero zeros again (Keras' and Flax's b, peft's "
            "lora_B; the other kept"
            + ("; a DoRA magnitude the norms of the new weight's rows, as peft starts one" if dora[1] else "")
            + "), so the destination computes what the source computes and the update trains on from zero."
        )
    return out


def _layers_adding(names: list[str], side: str) -> str:
    """``side``'s layers ``names`` that add a low-rank update, in words."""
    layers, add = ("layer", "adds") if len(names) == 1 else ("layers", "add")
    return f"the {side}'s {layers} {_listed(names)} {add} a low-rank update to a weight"


def _lazy_export(slot: Slot):
    cache: dict[str, np.ndarray] = {}

    def reader(key: str):
        def read() -> np.ndarray:
            if slot.how == "one":
                return slot.param.canonical_view()
            if not cache:
                cache.update(slot.export())
            return cache.pop(key)

        return read

    return reader


def _spectral_move(
    src: leaf_norms.SpectralForm, mine: str, dst: leaf_norms.SpectralForm, theirs: str, value: np.ndarray
) -> np.ndarray:
    """A spectral norm variable's source value in the destination's own layout."""
    return dst.to_native(theirs, src.to_common(mine, np.asarray(value)))


#: The names a spectral norm's variables pair by (`Stored`).
_STORED_LEAVES = frozenset({"weight_orig", "weight_u", "weight_v"})


def _stored_read(
    a: Layer, b: Layer, leaf: str, mine: str, theirs: str, read: Any, reads: Mapping[str, Any], change: Change
) -> Any:
    """How the source variable ``mine`` of ``a`` is read for ``b``'s ``theirs``
    where one of the two keeps its normed leaf in place (`Stored`) and the
    other computes it (a `leaf_norms.SpectralForm`) or keeps it in place too;
    ``change`` reorders a canonical value as a flattened map asks (`_change`)."""
    if a.stored is not None:  # the leaf (an original, if ``b`` computes it) and u, canonical
        common = _then(
            read, lambda value: change(leaf, value if leaf == "weight_orig" else np.reshape(value, -1))
        )
    elif leaf == "weight_u":
        common = _then(read, lambda u: change(leaf, a.forms[mine].to_common(mine, u)))
    else:  # the leaf: the weight the source's norm computes at inference
        form, axis = a.forms[mine], a.norms[0][2]
        assert axis is not None  # a spectral norm with a form keeps one axis
        parts = {role: reads[join(a.path, path)] for role, path in form.norm.parts}

        def computed() -> np.ndarray:
            found = {role: form.to_common(path, parts[role]()) for role, path in form.norm.parts}
            return change(leaf, leaf_norms.computed_leaf(found["orig"], found["u"], found["v"], axis))

        common = computed
    if b.stored is not None:  # canonical, u as its wrapper keeps it
        return common if leaf == "weight_orig" else _then(common, lambda u: np.reshape(u, (1, -1)))
    into = b.forms[theirs]
    return _then(common, lambda value: into.to_native(theirs, np.reshape(value, into.shape(theirs))))


#: A canonical value of a paired leaf, reordered as a flattened map asks (`_change`).
Change = Callable[[str, np.ndarray], np.ndarray]


def _change(path: str, reorders: Mapping[str, Any], given: Mapping[str, Any]) -> Change:
    """How the canonical values of the layer at ``path`` are reordered: a
    weight's inputs (``reorders``) and its outputs, a bias's, a spectral
    norm's ``u`` over them (``given``)."""

    def change(leaf: str, value: np.ndarray) -> np.ndarray:
        if leaf_norms.laid_out_as(leaf) == "weight" and path in reorders:
            value = reorders[path](value)
        return given[path](value) if path in given else value

    return change


def _unit_v(a: Layer, b: Layer, key: str, reads: Mapping[str, Any], change: Change) -> np.ndarray:
    """The ``v`` of ``b``'s norm (its key ``key``) with which it computes the
    leaf ``a`` keeps in place, from ``a``'s ``u`` (`leaf_norms.unit_v`), both
    reordered as the port writes them (``change``)."""
    assert a.stored is not None
    local = key[len(b.path) + 1 :] if b.path else key
    form = b.forms[local]
    leaf = change("weight_orig", reads[_key(a, a.stored.leaf)]())
    u = change("weight_u", np.reshape(reads[a.stored.u](), -1))
    try:
        v = leaf_norms.unit_v(leaf, u, a.stored.axis)
    except ValueError:
        raise PortError(
            f"The source's {a.path!r} keeps a spectral norm's weight of zeros: no v makes the "
            f"destination's norm at {b.path!r} compute it (u . (W v) cannot be 1). Expected a "
            "trained or initialised weight. " + received(layer=a.path)
        ) from None
    return form.to_native(local, v)


def _as_held(layer: Layer, key: str) -> tuple[str | None, tuple[int, ...]]:
    """The backend whose own layout ``layer`` keeps the variable ``key`` in
    (``None``: the canonical layout), and its shape there."""
    slot = next(slot for slot in layer.slots if key in slot.keys)
    return slot.own_layout, slot.shapes[slot.keys.index(key)]


def _then(read: Any, change: Any) -> Any:
    return lambda: change(read())


def _optional_leaf(kind: str, key: str) -> bool:
    from .layouts import OPTIONAL

    return key.rsplit(".", 1)[-1] in OPTIONAL.get(kind, ())


def _np(dtype: str) -> Any:
    from .values import numpy_dtype

    return numpy_dtype(dtype)


#: Settings whose difference changes a layer's outputs in inference mode
#: (``momentum`` only changes how training moves the running statistics).
CHANGES_OUTPUTS = (
    "inference_scale", "inference_offset", "eps", "num_groups", "activation", "recurrent_activation",
    "direction", "merge", "stride", "dilation", "padding", "padding_mode", "output_activation", "pooling",
    "ceil_mode", "count_include_pad", "upsampling", "scale_factor", "normalised_axis",
)  # fmt: skip


def _hyper_differences(
    src: Module,
    dst: Module,
    a: Layer,
    b: Layer,
    blind: list[tuple[Layer, Layer, str]] | None = None,
    unknown: list[tuple[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """Each setting that differs between two paired layers, a convolution's
    geometry included: its name, and a line for the report. ``blind`` gets
    the pair, and the backends that cannot tell, where what follows a
    layer's output is not compared; ``unknown`` gets ``(path, holder)`` for a
    convolution whose padding is not compared because a module holding it may
    pad with a function in its forward."""
    ha, hb = _settings(src, a), _settings(dst, b)
    found = [(name, _setting(ha[name]), _setting(hb[name])) for name in sorted(set(ha) & set(hb))
             if not _same_setting(ha[name], hb[name])]  # fmt: skip
    (na, ca), (nb, cb) = ((native_at(m, x.path), _holders(m, x.path)) for m, x in ((src, a), (dst, b)))
    ga, gb = src.adapter.geometry(na, ca), dst.adapter.geometry(nb, cb)  # None: no convolution
    if ga is not None and gb is not None:
        padded = _padded(((src, a.path), (dst, b.path)))
        if padded:  # its input may be padded by a function: its own padding says not all
            ga, gb = geometry.padding_unknown(ga), geometry.padding_unknown(gb)
            if unknown is not None:
                unknown += padded
        found += geometry.differences(ga, gb)
    oa, ob = src.adapter.output_activation(na, ca), dst.adapter.output_activation(nb, cb)
    if oa is not None and ob is not None and oa != ob:  # each named where its framework shows it
        found.append(("output_activation", oa, ob))
    elif (oa is None or ob is None) and blind is not None:
        blind.append((a, b, " and ".join(m.backend for m, o in ((src, oa), (dst, ob)) if o is None)))
    return _lines(src, dst, a.name, b.name, found)


def _norm_axis_differences(
    src: Module, dst: Module, pairs: list[tuple[Layer, Layer]]
) -> list[tuple[str, str]]:
    """Paired channel normalisations that normalise other axes of their maps
    (`channel_axes`): one built in the other layout than the convolution before it."""
    norms = [(a, b) for a, b in pairs if a.kind in CHANNEL_NORMS]
    if not norms:
        return []
    found = (channel_axes.off_channels(src), channel_axes.off_channels(dst))
    return [
        line
        for a, b in norms
        for line in _lines(src, dst, a.name, b.name, channel_axes.differences(found, a.path, b.path))
    ]


def _padded(layers: tuple[tuple[Module, str], ...]) -> list[tuple[str, str]]:
    """``(path, holder)`` for each of ``(model, path)`` whose layer is held by a
    module that may pad with a function in its forward, which no layer shows
    (the nearest such, as ``"path (Type, backend)"``): the layer's input, and
    so its windows, may then be padded otherwise than its settings say."""
    found = []
    for model, path in layers:
        holders = _holders(model, relative(path, model.path) or "")
        for depth in range(len(holders) - 1, -1, -1):
            native = holders[depth][0]
            if _may_compute(model, native, "padding"):
                where = join(*(key for _, key in holders[:depth])) if depth else ""
                found.append(
                    (path, f"{where or '<root>'} ({model.adapter.type_name(native)}, {model.backend})")
                )
                break
    return found


def _class_key(native: Any) -> tuple[str, str]:
    """A class by module and name, as ``Adapter.TRAINING_ONLY`` lists them."""
    return (type(native).__module__, type(native).__name__)


def _may_compute(model: Module, native: Any, kind: str) -> bool:
    """Whether a module's own code names a function of ``kind`` (``"pooling"``,
    ``"upsampling"``, ``"padding"``) of its framework (`code_names.kinds_named`)."""
    adapter = model.adapter
    code = adapter.code_holder(native)
    return kind in code_names.kinds_named(code, adapter.WEIGHTLESS_FUNCTIONS, adapter.FRAMEWORK_PACKAGES)


def _listed(items: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``items``, and how many more."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _unknown_padding_note(unknown: list[tuple[str, str]], what: str = "convolutions") -> str:
    """The report's note on the paired layers (``what``) whose padding was not
    compared: ``(path, holder)`` each (`_padded`)."""
    holders = list(dict.fromkeys(holder for _, holder in unknown))
    count = len(dict.fromkeys(path for path, _ in unknown))
    return (
        f"The padding of {count} paired {what} was not compared: the code of {_listed(holders)} may pad with "
        "a function in its forward, which no layer shows. Pass check_input=x to compare outputs."
    )


def _blind_note(blind: list[tuple[Layer, Layer, str]], pairs: int) -> str:
    """The report's note on the paired layers whose following activation was not compared."""
    shown = _listed([f"{a.name or '<root>'} -> {b.name or '<root>'} ({who})" for a, b, who in blind])
    return (
        f"What follows {len(blind)} of {pairs} paired layers was not compared: a forward method "
        f"decides it, or a layer after it has no name here ({shown}). Pass check_input=x to "
        "compare outputs."
    )


def _weightless_differences(
    src: Module, dst: Module, notes: list[str] | None = None
) -> list[tuple[str, str]]:
    """The differences of the layers without weights: scales at inference,
    poolings, upsamplings. ``notes`` gets a line for each kind of layer
    that could not be paired."""
    return (
        _scale_differences(src, dst)
        + _pooling_differences(src, dst, notes)
        + _upsampling_differences(src, dst, notes)
    )


def _unpaired(what: str, src: Module, dst: Module, found: list[list[tuple[str, Any]]]) -> str:
    """The report's note on layers without weights that could not be paired."""
    counts = f"{src.backend} lists {len(found[0])}, {dst.backend} {len(found[1])}"
    if len(found[0]) == len(found[1]):
        counts += ", of other window sizes"
    return (
        f"The {what} were not compared ({counts}): which pairs with which is not known. Pass "
        "check_input=x to compare outputs."
    )


def _scale_differences(src: Module, dst: Module) -> list[tuple[str, str]]:
    """Layers without weights that scale or offset their input at inference
    (paddle's ``downscale_in_infer`` dropout, Keras' ``Rescaling``) on one
    side with no layer of the same scale and offset on the other: a line for
    its scale and one for its offset where they are not the identity's.
    Layers are not paired by position: the same rescalings on both sides are
    taken to match."""
    found = _rescalings(src), _rescalings(dst)
    lines = []
    for (model, other), mine, theirs in zip(((src, dst), (dst, src)), found, found[::-1], strict=True):
        unmatched = [_rounded(rescaling) for _, rescaling in theirs]
        for path, (scale, offset) in mine:
            if _rounded((scale, offset)) in unmatched:
                unmatched.remove(_rounded((scale, offset)))
                continue
            for name, values, identity in (("inference_scale", scale, 1), ("inference_offset", offset, 0)):
                if set(values) != {float(identity)}:
                    said = f"{name} {_values(values)} ({model.backend}) vs {identity} ({other.backend})"
                    lines.append((name, f"{path or '<root>'}: {said}"))
    return lines


def _values(values: tuple[float, ...]) -> str:
    """One value, or one per channel where they differ: ``"0.5"``, ``"(1, 2, 1)"``."""
    shown = [f"{v:g}" for v in values]
    return shown[0] if len(set(shown)) == 1 else f"({', '.join(shown)})"


def _rounded(rescaling: tuple[tuple[float, ...], tuple[float, ...]]) -> tuple[tuple[float, ...], ...]:
    """A rescaling's scale and offset, rounded so that two frameworks' float32 copies compare equal."""
    return tuple(tuple(round(v, 6) for v in values) for values in rescaling)


def _pooling_differences(src: Module, dst: Module, notes: list[str] | None = None) -> list[tuple[str, str]]:
    """Pooling layers with a window hold no weights, so they are not paired
    with the layers that do: the n-th of one model is paired with the n-th of
    the other, in the order the frameworks list them, and only when both
    have as many, of the same window sizes, and neither has a module whose
    own code may pool with a function (else the order is not taken to match,
    and nothing is compared). One line per setting in which a pair
    differs: the kind (``max`` or ``average``), or what
    `geometry.pooling_differences` finds."""
    found = [_poolings(src), _poolings(dst)]
    hidden = _in_forward("pooling", src, dst, found)
    if hidden:
        if notes is not None:
            notes.append(_hidden_note("pooling layers with a window", "pool", hidden))
        return []
    if len(found[0]) != len(found[1]) or any(
        a.geometry.kernel != b.geometry.kernel for (_, a), (_, b) in zip(*found, strict=True)
    ):
        if notes is not None:
            notes.append(_unpaired("pooling layers with a window", src, dst, found))
        return []
    lines, unknown, uncounted = [], [], []
    for (pa, a), (pb, b) in zip(*found, strict=True):
        padded = _padded(((src, pa), (dst, pb)))
        if padded:  # its input may be padded by a function: its own padding says not all
            a, b = (replace(p, geometry=geometry.padding_unknown(p.geometry)) for p in (a, b))
            unknown += padded
        kinds = [("pooling", a.kind, b.kind)] if a.kind != b.kind else []
        said = kinds or geometry.pooling_differences(a, b)
        if not said and not padded and a.kind == "average" and None in (a.counts_padding, b.counts_padding):
            uncounted.append(f"{pa or '<root>'} -> {pb or '<root>'}")
        lines += _lines(src, dst, pa, pb, said)
    if unknown and notes is not None:
        notes.append(_unknown_padding_note(unknown, "poolings"))
    if uncounted and notes is not None:
        notes.append(
            f"What the average poolings {_listed(uncounted)} divide a window at an edge by was not "
            "compared: one side's count of its padding is not known here (it may depend on an input "
            "size the model does not record). Pass check_input=x to compare outputs."
        )
    return lines


def _upsampling_differences(
    src: Module, dst: Module, notes: list[str] | None = None
) -> list[tuple[str, str]]:
    """Upsampling layers hold no weights: as poolings, the n-th of one model
    is paired with the n-th of the other when both have as many and neither
    has a module whose own code may interpolate with a function (else nothing
    is compared). One line per way a pair differs (`upsampling.differences`)."""
    found = [_upsamplings(src), _upsamplings(dst)]
    hidden = _in_forward("upsampling", src, dst, found)
    if hidden:
        if notes is not None:
            notes.append(_hidden_note("upsampling layers", "interpolate", hidden))
        return []
    if len(found[0]) != len(found[1]):
        if notes is not None:
            notes.append(_unpaired("upsampling layers", src, dst, found))
        return []
    return [
        line
        for (pa, a), (pb, b) in zip(*found, strict=True)
        for line in _lines(src, dst, pa, pb, upsampling.differences(a, b))
    ]


def _in_forward(kind: str, src: Module, dst: Module, listed: list[list[tuple[str, Any]]]) -> list[str]:
    """Each module of either model, as ``"path (Type, backend)"``, whose own
    code names a function of ``kind`` (`_may_compute`), other than the layers
    of that kind ``listed`` (whose settings describe them) and the blocks its
    model runs in training only (``Adapter.TRAINING_ONLY``); a port between two
    models alike names a module once."""
    out = []
    for model, mine in ((src, listed[0]), (dst, listed[1])):
        known = {path for path, _ in mine}
        adapter = model.adapter
        out += [
            f"{path or '<root>'} ({adapter.type_name(native)}, {model.backend})"
            for path, native in unique_modules(adapter, model.native, model.path)
            if path not in known
            and _class_key(adapter.code_holder(native)) not in adapter.TRAINING_ONLY
            and _may_compute(model, native, kind)
        ]
    return list(dict.fromkeys(out))


def _hidden_note(what: str, verb: str, hidden: list[str]) -> str:
    """The report's note on layers of a kind not compared because a forward
    method may compute one with a function no layer shows."""
    return (
        f"The {what} were not compared: the code of {_listed(hidden)} may {verb} with a function in its "
        "forward, which no layer shows. Pass check_input=x to compare outputs."
    )


def _lines(
    src: Module, dst: Module, pa: str, pb: str, found: list[tuple[str, str, str]]
) -> list[tuple[str, str]]:
    """``(setting, report line)`` for each ``(setting, a's, b's)`` of a pair of layers at ``pa``, ``pb``."""
    which = f"{pa or '<root>'} -> {pb or '<root>'}"
    return [(name, f"{which}: {name} {va} ({src.backend}) vs {vb} ({dst.backend})") for name, va, vb in found]


def _upsamplings(model: Module) -> list[tuple[str, upsampling.Upsampling]]:
    """``(path, upsampling)`` of each upsampling layer, in the framework's order."""
    return _layers_where(model, lambda _, native: model.adapter.upsampling(native))


def _poolings(model: Module) -> list[tuple[str, geometry.Pooling]]:
    """``(path, pooling)`` of each pooling layer with a window, in the framework's order."""
    return _layers_where(model, lambda path, native: model.adapter.pooling(native, _holders(model, path)))


def _rescalings(model: Module) -> list[tuple[str, tuple[tuple[float, ...], tuple[float, ...]]]]:
    """``(path, (scale, offset))`` of each layer of ``model`` that rescales its input at inference."""
    return _layers_where(model, lambda _, native: model.adapter.inference_rescaling(native))


def _layers_where(model: Module, ask: Callable[[str, Any], Any]) -> list[tuple[str, Any]]:
    """``(path, answer)`` for each module of ``model`` (each once, in the
    framework's order) for which ``ask(relative path, native)`` is not ``None``."""
    found = [
        (path, ask(relative(path, model.path) or "", native))
        for path, native in unique_modules(model.adapter, model.native, model.path)
    ]
    return [(path, answer) for path, answer in found if answer is not None]


def _settings(model: Module, layer: Layer) -> dict[str, float | str]:
    """A paired layer's settings, with those its parent gives it (a bidirectional
    wrapper's); a part of a recurrent layer runs one way."""
    found = model.adapter.hyperparameters(native_at(model, layer.path))
    holders = _holders(model, layer.path)
    if holders:
        found.update(model.adapter.settings_given(*holders[-1]))
    if layer.part:
        found["direction"] = "reverse" if layer.part.endswith("_reverse") else "forward"
    steps = [form.norm.power_iterations for form in layer.forms.values()]
    steps += [layer.stored.power_iterations] if layer.stored is not None else []
    if len(set(steps)) == 1 and steps[0] is not None:  # a spectral norm's, in training
        found["power_iterations"] = float(steps[0])
    return found


def _holders(model: Module, path: str) -> list[tuple[Any, str]]:
    """The native modules that hold the layer at ``path`` (relative to
    ``model``), the root first, each with the key it holds the next one (or
    the layer) at."""
    keys = split(path) if path else []
    return [(model[join(*keys[:i])].native if i else model.native, key) for i, key in enumerate(keys)]


def _same_setting(a: float | str, b: float | str) -> bool:
    """Numbers within float rounding of each other, names equal."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(np.isclose(a, b, rtol=1e-6, atol=0))


def _setting(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:g}"


def _check_pointwise(src: Module, dst: Module, a: Layer, b: Layer) -> None:
    """Refuse a Linear paired with a convolution that is not pointwise (a kernel
    of ones, stride one, no padding, one group: `geometry.Geometry.pointwise`),
    which computes something else with the same weights.

    Raises:
        PortError: The convolution is not pointwise, or its backend cannot tell.
    """
    model, conv, linear = (dst, b, a) if a.kind == "linear" else (src, a, b)
    native, holders = native_at(model, conv.path), _holders(model, conv.path)
    shape = model.adapter.geometry(native, holders)
    groups = model.adapter.hyperparameters(native).get("groups", 1)
    if shape is not None and shape.pointwise and groups == 1:
        return
    if shape is None:
        what = "its backend does not show its stride and padding"
    else:
        what = f"{shape.said()}, {groups:g} group{'s' if groups != 1 else ''}"
    raise PortError(
        f"The {model.backend} {conv.type_name} {conv.name!r} pairs by shape with the Linear "
        f"{linear.name!r}, but is no pointwise convolution ({what}). A Linear computes what a "
        "convolution does only with a kernel of ones, stride 1, no padding and one group; nothing was "
        "written. Expected a pointwise convolution, or a mapping that pairs these layers otherwise. "
        + received(source=a.name, destination=b.name)
    )


def _reshaped_note(reshapes: list[str], checked: bool) -> str:
    """What a port of leaves of a kind the library does not know assumed, where
    the two sides shape them apart by axes of size one (`pairing.reshaped`)."""
    return (
        f"Leaves of layers of a kind the library does not know differ only by axes of size one: "
        f"{_first_of(reshapes)}. Their values were copied in order, assuming both layers apply them "
        f"along the same axis (a per-channel scale of a channels-first map is (C, 1, 1), of a "
        f"channels-last one (C,)); {_checked(checked)}."
    )


def _idle_note(source: list[str], destination: list[str]) -> str:
    """The report's note on the layers the models hold but do not run (`idle`)."""
    sides = [
        f"the {side}'s {_first_of([repr(path) for path in found])}"
        for side, found in (("source", source), ("destination", destination))
        if found
    ]
    return (
        f"Not ported: {' and '.join(sides)}, which the model holds but does not compute with now (peft's "
        "modules_to_save runs a trained copy of a layer and keeps the original beside it): the port pairs "
        "the layers it runs, and leaves a destination's others as they were."
    )


def _kept_note(kept: list[str]) -> str:
    """What a port with ``keep`` cannot know: what the kept layers compute."""
    return (
        f"Left as they were: {_first_of(kept)}. The source has no layer in their place: the models compute "
        "the same only where these pass their inputs on unchanged (a Normalization of mean 0 and variance "
        "1), not with a new head; check_input=x tests it."
    )


def _pointwise_note(pairs: list[str], checked: bool) -> str:
    """What a port of a Linear into a pointwise convolution, or back, assumed
    (`pairing.pointwise_pair`): no layer shows which axis a Linear acts on."""
    return (
        f"Linears paired with pointwise convolutions: {_first_of(pairs)}. The port takes each Linear to "
        "act on the channels (of a pooled vector, or the last axis of a channels-last map), as a "
        "1 x 1 convolution does; a Linear over another axis (the width of a channels-first map) computes "
        f"something else; {_checked(checked)}."
    )


def _after_note(moved: list[tuple[Layer, Layer]], checked: bool) -> str:
    """What a port that paired a module's own leaves after the layers it holds
    assumed (`pairing.own_leaves_after`): only a forward pass shows where a
    module applies its own leaves."""
    shown = [f"{x.name!r} ({x.type_name}) -> {y.name!r} ({y.type_name})" for x, y in moved]
    return (
        f"Own leaves paired after the layers they hold: {_first_of(shown)}. A module's own leaves "
        "are listed before the layers it holds, in torch; the port takes them to act on those layers' "
        "output (a block's scale), where the other side lists them; a module that applies them first "
        f"computes something else; {_checked(checked)}."
    )


def _first_of(found: list[str]) -> str:
    """The first of ``found``, and how many more."""
    return found[0] + (f" and {len(found) - 1} more" if len(found) > 1 else "")


def _checked(checked: bool) -> str:
    """How an assumption of the port is tested: by the outputs, or by the user."""
    return "the outputs on check_input test it" if checked else "pass check_input=x to verify it"


def _warn_if_outputs_differ(differences: list[tuple[str, str]]) -> None:
    """A port without ``check_input`` into layers whose settings (left after
    any ``align``) change their outputs: the weights are copied, and the user is
    told (shown at the user's call) that the models will not compute the same."""
    changing = [(name, text) for name, text in differences if name in CHANGES_OUTPUTS]
    if changing:
        more = f" and {len(changing) - 1} more" if len(changing) > 1 else ""
        alignable = any(name in ALIGNABLE for name, _ in changing)
        fix = (
            "Pass align='hyperparameters' to give the destination the source's settings, or"
            if alignable
            else "No align sets it (it is the layer's architecture): build the destination with "
            "the source's setting, or pass"
        )
        warnings.warn(
            f"The ported model will not compute what the source does: {changing[0][1]}{more} "
            f"(report.differences lists them). {fix} check_input=x to measure the difference.",
            UserWarning,
            stacklevel=4,
        )


def _conversions(src: Module, dst: Module, pairs: list[tuple[Layer, Layer]]) -> list[str]:
    out = []
    for a, b in pairs:
        real = b.real
        slot_of = {key: slot for slot in b.slots for key in slot.keys}
        for sa in a.slots:
            leaf = a.renamed.get(_local(a, sa.keys[0]), _local(a, sa.keys[0]))
            sb = slot_of.get(_key(b, real.get(leaf, leaf)))
            if sb is None:  # a leaf the destination lacks (`absent`)
                continue
            how = []
            offset = kind_offset(a.kind, b.kind, leaf)
            if offset is not None:
                how.append(f"{offset:+g} ({a.kind} to {b.kind})")
            if tuple(sa.param.shape) != tuple(sb.param.shape):  # `pairing.reshaped`
                how.append(f"{sa.param.shape} as {sb.param.shape}")
            for side, slot, layer in ((src.backend, sa, a), (dst.backend, sb, b)):
                layout = slot.param.layout
                name = _local(layer, slot.keys[0])
                form = layer.forms.get(name)
                if form is not None and form.reordered(name):  # a spectral norm's, in its own layout
                    how.append(
                        f"{side} axes {form.layout.perm}"
                        if form.role(name) == "orig"
                        else f"{side}'s order of the weight's other axes"
                    )
                elif not layout.is_identity:
                    gates = " with gates reordered" if layout.gate_perm is not None else ""
                    mirrored = f", mirrored along {layout.flip}" if layout.flip else ""
                    native = tuple(slot.param.native_shape)
                    shaped = f" of {native} as {slot.param.shape}" if layout.groups is not None else ""
                    how.append(f"{side} axes {layout.perm}{shaped}{gates}{mirrored}")
            if how:
                out.append(f"{sa.param.path} -> {sb.param.path}: " + "; ".join(how))
    return out


def _native_state(model: Module) -> dict[str, Any]:
    """A copy of every value, to restore: one copy each, from the framework's
    own memory where it lends it (``numpy()`` would copy twice on paddle); of
    a sharded parameter, this process's block (no communication)."""
    out: dict[str, Any] = {}

    def keep(item: tuple[str, Any]) -> None:
        path, p = item
        sharding = p.sharding()
        if sharding is not None:
            out[path] = Local(p.adapter.local(p.native), sharding)
        else:
            try:
                out[path] = np.array(p.adapter.view(p.native), copy=True)
            except NotBuiltError as err:  # a variable with a shape and no values: nothing to keep
                raise at_path(path, err) from None

    run_all(keep, list(model.params().items()))
    return out


def _restore(model: Module, state: dict[str, Any]) -> None:
    for path, p in model.params().items():
        value = state[path]
        if isinstance(value, Local):
            p.set_local(value.block, value.sharding)
        else:
            p.set(value, layout="native")


def _compare(src: Module, dst: Module, inputs: Any, atol: float, rtol: float, report: PortReport) -> float:
    """The largest output difference; beyond ``atol + rtol * |source output|``
    anywhere (``numpy.allclose``'s rule), or on an input that cannot tell the
    weights apart (`unified_params._core.outputs`), a PortError that carries the report."""
    a, b = run_forward(src, inputs), run_forward(dst, inputs)
    same_shape = a.shape == b.shape
    diff = float(np.max(np.abs(a - b))) if same_shape and a.size else (0.0 if same_shape else float("inf"))
    report.max_abs_diff = diff
    hints = f" Hyperparameters that differ: {'; '.join(report.differences)}." if report.differences else ""
    if not (same_shape and np.allclose(b, a, rtol=rtol, atol=atol)):
        message = (
            f"The ported model's output differs from the source's by {diff:.3g} (shapes {a.shape} and "
            f"{b.shape}, largest source output {float(np.max(np.abs(a))) if a.size else 0.0:.3g}); the "
            f"destination was restored.{hints}{rounding_hint(diff, a) if same_shape else ''} Expected "
            f"every output within atol={atol:g} + rtol={rtol:g} x |source output|. "
            + received(max_abs_diff=diff, atol=atol, rtol=rtol)
        )
    else:
        blind = blind_spot(a, lambda: run_forward(src, zeros_like_input(inputs)), atol=atol, rtol=rtol)
        if not blind:
            return diff
        message = (
            f"check_input cannot verify this port: on the source, {blind}; the destination was "
            f"restored.{hints} Expected an input that moves the outputs by more than atol={atol:g} + "
            f"rtol={rtol:g} x |source output| (random values, not zeros), or a smaller atol. "
            + received(max_abs_diff=diff, atol=atol, rtol=rtol)
        )
    error = PortError(message)
    error.report = report  # what was matched, converted and found: the reason is not lost
    raise error
