"""``unified-params inspect``, ``summary`` and ``convert``: what a checkpoint or a
spec holds, and a checkpoint in another format."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from .. import access, spec
from .._core.checkpoint import INDEX_SUFFIX, file_aliases, index_of, read_index, read_state
from .._core.errors import BackendNotInstalledError, UnsupportedError, received
from ..backends import registry
from ..backends.importing import import_frameworks
from .render import table


def inspect(file: str, out: Any) -> None:
    """Names, shapes, dtypes, tie groups, metadata and size of a checkpoint.

    Works for single files and sharded checkpoints (the index or its base name).
    """
    state, metadata = read_state(file)
    aliases = file_aliases(state, metadata, file)
    tied: dict[str, list[str]] = defaultdict(list)
    for alias, key in aliases.items():
        tied[key].append(alias)
    rows, total = [], 0
    for name, source in state.items():
        size = math.prod(source.shape) * source.dtype.itemsize
        total += size
        rows.append(
            [name, tuple(source.shape), source.dtype.name, f"{size:,}", ", ".join(tied.get(name, []))]
        )
    table(
        f"{file}: {len(rows)} tensors, {total:,} bytes",
        ["name", "shape", "dtype", "bytes", "tied paths"],
        rows,
        out,
    )
    shown = {k: v for k, v in metadata.items() if k != "aliases" and k not in aliases}
    table("metadata", ["key", "value"], sorted(shown.items()), out)
    if str(file).endswith(INDEX_SUFFIX) or not Path(file).exists():
        index = read_index(index_of(Path(file)))
        shards = sorted(set(index["weight_map"].values()))
        print(f"sharded: {len(shards)} files ({', '.join(shards)})", file=out)


def convert(
    source: str, destination: str, to: str | None, prefix: str, out: Any, importer: Any = None
) -> None:
    """`unified_params.convert`, with a one-line account of what was written.

    Frameworks that offer a checkpoint format are imported first (quietly,
    through ``importer``), in the registry's safe order.
    """
    from ..checkpoints import convert as run

    (importer or import_frameworks)(
        [b.name for b in registry.BACKENDS.values() if b.formats and registry.installed(b.name)]
    )
    report = run(source, destination, to=to, prefix=prefix)
    skipped = (
        f"; left out {len(report.skipped)} entries: {', '.join(report.skipped[:5])}" if report.skipped else ""
    )
    print(
        f"{source} ({report.source}) -> {destination} ({report.destination}): "
        f"{len(report.tensors)} tensors{skipped}",
        file=out,
    )


def summary(target: str, backend: str | None, out: Any, importer: Any = None) -> None:
    """``up.summary`` of a spec expression built natively, or a per-layer
    summary of a checkpoint file (a target that names a file must exist).

    Raises:
        CheckpointError: A file name for a file that is not there.
        UnsupportedError: Neither a file nor a spec expression.
    """
    if Path(target).exists() or Path(target + INDEX_SUFFIX).exists() or _looks_like_a_file(target):
        _checkpoint_summary(target, out)
        return
    model_spec = _parse_spec(target)
    chosen = backend or next((b for b in registry.names() if registry.installed(b)), None)
    if chosen is None:
        raise BackendNotInstalledError(
            f"No backend is installed to build the spec. Expected one of {', '.join(registry.names())}: "
            "pip install 'unified-params[all]'. " + received(target=target)
        )
    (importer or import_frameworks)([chosen])
    print(access.summary(model_spec.build(chosen)), file=out)


def _looks_like_a_file(target: str) -> bool:
    return target.endswith((".safetensors", ".json")) or "/" in target and "(" not in target


def _checkpoint_summary(file: str, out: Any) -> None:
    state, metadata = read_state(file)
    kinds = _json(metadata.get("layer_kinds"))
    own_layout = _json(metadata.get("own_layout"))  # leaves of no known canonical form
    layers: dict[str, list[str]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for name, source in state.items():
        layer, _, leaf = name.rpartition(".")
        own = f" ({own_layout[name]}'s own layout)" if name in own_layout else ""
        layers[layer].append(f"{leaf} {tuple(source.shape)}{own}")
        counts[layer] += math.prod(source.shape)
    # A tie group's other paths, stored once: shown, counted in brackets and not added again.
    tied: dict[str, int] = defaultdict(int)
    for alias, key in file_aliases(state, metadata, file).items():
        layer, _, leaf = alias.rpartition(".")
        layers[layer].append(f"{leaf} = {key}")
        tied[layer] += math.prod(state[key].shape)
        kinds.setdefault(layer, kinds.get(key.rpartition(".")[0], "?"))

    def elements(layer: str) -> str:
        shown = [f"{counts[layer]:,}"] if layer in counts else []
        return " ".join(shown + ([f"({tied[layer]:,})"] if layer in tied else []))

    order = list(layers)
    if all(part.isdigit() for layer in order for part in layer.split(".")):  # positions: in model order
        order.sort(key=lambda layer: [int(part) for part in layer.split(".")])
    rows = [
        [layer or "<root>", kinds.get(layer, "?"), "  ".join(layers[layer]), elements(layer)]
        for layer in order
    ]
    saved_from = metadata.get("source_backend", "?")
    table(f"{file} (saved from {saved_from})", ["layer", "kind", "tensors", "elements"], rows, out)
    print(f"Total elements: {sum(counts.values()):,}", file=out)


def _parse_spec(text: str) -> Any:
    names = {name: getattr(spec, name) for name in dir(spec) if not name.startswith("_")}
    try:
        built = eval(text, {"__builtins__": {}}, names)  # only spec constructors are in scope
    except Exception as err:
        raise UnsupportedError(
            f"{text!r} is neither a checkpoint file nor a spec expression ({err}). Expected a file, "
            "or a spec such as 'Sequential(Linear(4, 8), ReLU(), Linear(8, 1))'. " + received(target=text)
        ) from None
    if not isinstance(built, spec.Layer):
        raise UnsupportedError(
            f"{text!r} does not build an up.spec layer. Expected a spec expression such as "
            "'Sequential(Linear(4, 8), ReLU())'. " + received(target=text)
        )
    return built


def _json(text: str | None) -> dict[str, Any]:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}
