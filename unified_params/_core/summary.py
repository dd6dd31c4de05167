"""``up.summary``: a tree like ``print(model)``, with canonical shapes and counts.

Every position is shown (a shared layer at each of its positions); counts are
deduplicated: a layer seen before is marked ``shared with <path>`` and its
count is shown in brackets and not added again.
"""

from __future__ import annotations

from .tree import all_entries, canonical_shape, group_by_variable, own_entries, walk
from .view import Module

_INDENT = "  "


def render(root: Module) -> str:
    """The summary text of a wrapped model.

    Examples:
        >>> render(m).splitlines()[-3]
        'Total params: 40  (trainable: 40, non-trainable: 0)'
    """
    adapter, native = root._adapter, root.native
    first_path: dict[int, str] = {}
    rows: list[tuple[str, str, str, str]] = []
    for path, module in walk(adapter, native, root.path):
        depth = len(path.split(".")) - len(root.path.split(".")) if path else 0
        label = (_INDENT * depth) + (path.rsplit(".", 1)[-1] if path and path != root.path else "")
        type_name = adapter.type_name(module)
        seen = first_path.get(id(module))
        if seen is not None:
            count = _subtree_count(adapter, module, path)
            rows.append((label, type_name, f"shared with {seen or '<root>'}", f"({count:,})"))
            continue
        first_path[id(module)] = path
        own = own_entries(adapter, module, path)
        shapes = "  ".join(f"{e.name} {canonical_shape(adapter, e)}" for e in own)
        kids = adapter.children(module)
        count = _subtree_count(adapter, module, path) if kids else _size(adapter, own, "param")
        rows.append((label, type_name, shapes, f"{count:,}" if count or own or kids else "-"))
    if rows and rows[0][0] == "":
        rows[0] = (root.type_name, f"({root.backend})", rows[0][2], rows[0][3])
    return _table(rows) + "\n" + _totals(root)


def _subtree_count(adapter, module, path) -> int:
    groups = group_by_variable(all_entries(adapter, module, path))
    return sum(_size(adapter, [g[0]], "param") for g in groups.values())


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


def _totals(root: Module) -> str:
    params = list(root.params().values())
    trainable = sum(p.size for p in params if p.kind == "param" and p.trainable)
    total = sum(p.size for p in params if p.kind == "param")
    buffers = [p for p in params if p.kind == "buffer"]
    shared = sum(1 for p in params if p.aliases)
    return (
        f"Total params: {total:,}  (trainable: {trainable:,}, non-trainable: {total - trainable:,})\n"
        f"Buffers: {len(buffers)} tensors, {sum(p.size for p in buffers):,} elements\n"
        f"Shared: {shared} parameters reached at more than one path"
    )
