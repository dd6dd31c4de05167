"""``up.summary``: a tree like ``print(model)``, with canonical shapes and counts.

Every position is shown (a shared layer at each of its positions); counts are
deduplicated: a layer seen before is marked ``shared with <path>`` and its
count is shown in brackets and not added again. A layer not built yet (an
unbuilt Keras layer, a torch lazy module before its first call) is shown as
``not built`` with a count of ``?``, and so is every count that includes it,
as Keras' own summary marks it ``(unbuilt)``: the totals say how many such
layers there are and where, not a number that leaves them out.
"""

from __future__ import annotations

import math
from collections import Counter

from .errors import NotBuiltError
from .layouts import CANONICAL_GATES, RECURRENT
from .tree import (
    Entry,
    all_entries,
    canonical_shape,
    group_by_variable,
    listed_rows,
    own_entries,
    shown_as,
    walk,
)
from .view import Module, one_per_variable

_INDENT = "  "
#: How many layers not built the totals name.
_SHOWN = 5


def render(root: Module) -> str:
    """The summary text of a wrapped model.

    Examples:
        >>> render(m).splitlines()[-3]
        'Total params: 40  (trainable: 40, non-trainable: 0)'
    """
    return _table([r[:4] for r in rows(root)]) + "\n" + _totals(root)


def rows(root: Module) -> list[tuple[str, str, str, str, bool]]:
    """The summary's rows: label (indented key), class name, canonical shapes
    (or ``shared with <path>``), count, and whether the row is a shared layer
    seen before.

    Examples:
        >>> [r[0] for r in rows(m)]
        ['Sequential', '0', '1']
    """
    adapter, native = root.adapter, root.native
    # Per variable, the entry the wrapped model lists it at: a layer of unknown kind
    # holding a kernel that a layer lays out (its inner layer, or one beside it)
    # shows it as that layer does, in a summary of a part of the model too.
    model = root.root
    listed = listed_rows(_built_entries(adapter, model.native, model.path)[0])
    first_path: dict[int, str] = {}
    out: list[tuple[str, str, str, str, bool]] = []
    for path, module in walk(adapter, native, root.path):
        depth = len(path.split(".")) - len(root.path.split(".")) if path else 0
        label = (_INDENT * depth) + (path.rsplit(".", 1)[-1] if path and path != root.path else "")
        type_name = adapter.type_name(module)
        seen = first_path.get(id(module))
        if seen is not None:
            count = _subtree_count(adapter, module, path)
            shown = "(?)" if count is None else f"({count:,})"
            out.append((label, type_name, f"shared with {seen or '<root>'}", shown, True))
            continue
        first_path[id(module)] = path
        kids = adapter.children(module)
        try:
            own = own_entries(adapter, module, path)
        except NotBuiltError:
            out.append((label, type_name, "not built", "?", False))
            continue
        shapes = "  ".join(f"{e.name} {canonical_shape(adapter, shown_as(e, listed))}" for e in own)
        count = _subtree_count(adapter, module, path) if kids else _size(adapter, own, "param")
        shown = "?" if count is None else f"{count:,}" if count or own or kids else "-"
        out.append((label, type_name, shapes, shown, False))
    if out and out[0][0] == "":
        out[0] = (root.type_name, f"({root.backend})", out[0][2], out[0][3], False)
    return out


def _subtree_count(adapter, module, path) -> int | None:
    """The parameters below ``module``, each counted once; ``None`` if a layer
    there is not built yet."""
    try:
        groups = group_by_variable(all_entries(adapter, module, path))
    except NotBuiltError:
        return None
    return sum(_size(adapter, [g[0]], "param") for g in groups.values())


def _built_entries(adapter, root, prefix: str) -> tuple[list[Entry], list[tuple[str, str]]]:
    """`all_entries` of the layers that are built, and where the others are:
    (path, class name), a layer at several positions named at its first.

    Examples:
        >>> _built_entries(m.adapter, m.native, "")[1]
        []
    """
    entries: list[Entry] = []
    unbuilt: dict[int, tuple[str, str]] = {}
    for path, module in walk(adapter, root, prefix):
        try:
            entries += own_entries(adapter, module, path)
        except NotBuiltError:
            unbuilt.setdefault(id(module), (path, adapter.type_name(module)))
    return entries, list(unbuilt.values())


def _size(adapter, entries, kind) -> int:
    total = 0
    for e in entries:
        if e.kind == kind:
            n = 1
            for d in adapter.shape(e.var):
                n *= d
            total += n
    return total


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for label, type_name, shapes, count in rows:
        lines.append(
            f"{label:<{widths[0]}}  {type_name:<{widths[1]}}  {shapes:<{widths[2]}}  {count:>10}".rstrip()
        )
    return "\n".join(lines)


def totals(root: Module) -> str:
    """The summary's last lines: parameter counts, buffers, shared parameters."""
    return _totals(root)


def _totals(root: Module) -> str:
    unbuilt = _built_entries(root.adapter, root.native, root.path)[1]
    if unbuilt:
        where = ", ".join(f"{path!r} ({name})" for path, name in unbuilt[:_SHOWN])
        more = f" and {len(unbuilt) - _SHOWN} more" if len(unbuilt) > _SHOWN else ""
        layers = "layer is" if len(unbuilt) == 1 else "layers are"
        return (
            f"Total params: not known yet: {len(unbuilt)} {layers} not built: {where}{more}\n"
            "Build them to count them: call the model once on an input, and build a layer its call "
            "does not use on its own"
        )
    listed = list(root.params().values())
    times = Counter(id(p.native) for p in listed)  # a variable laid out apart is listed twice
    params = one_per_variable(listed)
    trainable = sum(p.size for p in params if p.kind == "param" and p.trainable)
    total = sum(p.size for p in params if p.kind == "param")
    buffers = [p for p in params if p.kind == "buffer"]
    shared = sum(1 for p in params if p.aliases or times[id(p.native)] > 1)
    return (
        f"Total params: {total:,}  (trainable: {trainable:,}, non-trainable: {total - trainable:,})\n"
        f"Buffers: {len(buffers)} tensors, {sum(p.size for p in buffers):,} elements\n"
        f"Shared: {shared} parameters reached at more than one path"
    )


#: What a layer kind is called in `render_tree`, the same on every
#: backend (PyTorch's class names); other layers show their own class name.
KIND_NAMES = {
    "linear": "Linear",
    "conv1d": "Conv1d",
    "conv2d": "Conv2d",
    "conv3d": "Conv3d",
    "conv_transpose1d": "ConvTranspose1d",
    "conv_transpose2d": "ConvTranspose2d",
    "conv_transpose3d": "ConvTranspose3d",
    "mha": "MultiheadAttention",
    "batchnorm": "BatchNorm",
    "layernorm": "LayerNorm",
    "groupnorm": "GroupNorm",
    "rmsnorm": "RMSNorm",
    "rmsnorm_offset": "RMSNorm",
    "embedding": "Embedding",
    "rnn": "RNN",
    "lstm": "LSTM",
    "gru": "GRU",
    "relu": "ReLU",
    "flatten": "Flatten",
}


def render_tree(root: Module) -> str:
    """``print(m)``: the model as nested blocks, like ``print(net)`` in PyTorch,
    with layers named by kind and sized from their canonical shapes, so a
    model built from one spec prints the same on every backend. A layer used
    at two positions is shown at both.

    Examples:
        >>> print(render_tree(m))
        Sequential(
          (0): Linear(in_features=4, out_features=8)
          (1): ReLU()
        )
    """
    adapter = root.adapter
    lines: list[str] = []

    def visit(module, path: str, label: str, depth: int, ancestors: frozenset[int]) -> None:
        indent = "  " * depth
        kids = [] if id(module) in ancestors else adapter.children(module)
        kind = adapter.kind(module)
        name = KIND_NAMES.get(kind) or adapter.type_name(module)
        if not kids:
            lines.append(f"{indent}{label}{name}({_arguments(adapter, module, path, kind)})")
            return
        lines.append(f"{indent}{label}{name}(")
        for key, child in kids:
            visit(child, f"{path}.{key}" if path else key, f"({key}): ", depth + 1, ancestors | {id(module)})
        lines.append(f"{indent})")

    visit(root.native, root.path, "", 0, frozenset())
    return "\n".join(lines)


def _arguments(adapter, module, path: str, kind: str) -> str:
    """A layer's sizes, read off its canonical shapes (``in_features=4, out_features=8``)."""
    try:
        shapes = {e.name: canonical_shape(adapter, e) for e in own_entries(adapter, module, path)}
    except NotBuiltError:
        return "not built"
    weight = shapes.get("weight") or shapes.get("in_proj_weight") or shapes.get("weight_ih_l0")
    if kind == "linear" and weight:
        return f"in_features={weight[1]}, out_features={weight[0]}"
    if kind.startswith("conv") and weight:
        out, inp = (weight[1], weight[0]) if kind.startswith("conv_transpose") else weight[:2]
        return f"{inp}, {out}, kernel_size={tuple(weight[2:])}"
    if kind in ("batchnorm", "layernorm", "rmsnorm", "rmsnorm_offset") and "weight" in shapes:
        return str(shapes["weight"][0])
    if kind == "embedding" and weight:
        return f"{weight[0]}, {weight[1]}"
    if kind == "groupnorm" and "weight" in shapes:
        groups = adapter.hyperparameters(module).get("num_groups")
        return f"{groups:g}, {shapes['weight'][0]}" if isinstance(groups, float) else str(shapes["weight"][0])
    if kind in RECURRENT and weight:
        hidden = (
            shapes["weight_hh_l0"][1] if "weight_hh_l0" in shapes else weight[0] // len(CANONICAL_GATES[kind])
        )
        return f"{weight[1]}, {hidden}"
    if kind == "mha" and weight:
        return f"embed_dim={weight[1]}"
    count = sum(math.prod(s) for s in shapes.values())
    return f"{count:,} parameters" if count else ""
