"""``up.save`` / ``up.load``: canonical safetensors files, single or sharded.

A file holds the canonical state (PyTorch names and layout), one entry per
tie group, and string metadata: format version, source backend, library
version, each layer's kind, the aliases of tie groups, and lossy merges. A
sharded checkpoint is ``<stem>-00001-of-0000N.safetensors`` files plus
``<stem>.safetensors.index.json`` (``{"metadata": {"total_size": ...},
"weight_map": {name: file}}``), the layout the Hugging Face ecosystem uses.
Every file is written atomically; the index is written last.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import _version
from . import safetensors_io as st
from .errors import CheckpointError, received
from .progress import bar
from .state import LoadReport, Slot, Source, aliases_inside, inside, load, slots
from .view import Module

FORMAT = "unified-params"
FORMAT_VERSION = "1"
INDEX_SUFFIX = ".index.json"
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def save(
    model: Module,
    file: str | Path,
    *,
    max_shard_size: int | str | None = None,
    progress: bool | None = None,
    durable: bool = True,
) -> list[Path]:
    """Write the model's canonical state; returns the files written (index last)."""
    path = Path(file)
    model_slots = slots(model)
    entries = [entry for slot in model_slots for entry in _entries(slot)]
    metadata = _metadata(model, model_slots)
    meter = bar(st.entries_bytes(entries), progress, f"saving {path.name}")
    try:
        return _write_files(path, entries, metadata, max_shard_size, meter.update, durable)
    finally:
        meter.close()


def _write_files(
    path: Path,
    entries: list[st.Entry],
    metadata: dict[str, str],
    max_shard_size: Any,
    tick: Any,
    durable: bool,
):
    if max_shard_size is None:
        with st.atomic_file(path, durable) as stream:
            st.write(stream, entries, metadata, tick)
        return [path]
    shards = _split(entries, _parse_size(max_shard_size))
    stem = path.name.removesuffix(".safetensors")
    names = [f"{stem}-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    written = []
    for name, shard in zip(names, shards, strict=True):
        with st.atomic_file(path.parent / name, durable) as stream:
            st.write(stream, shard, metadata, tick)
        written.append(path.parent / name)
    index = {
        "metadata": {"total_size": st.entries_bytes(entries), **metadata},
        "weight_map": {e.name: name for name, shard in zip(names, shards, strict=True) for e in shard},
    }
    index_path = path.parent / (path.name + INDEX_SUFFIX)
    with st.atomic_file(index_path, durable) as stream:
        stream.write(json.dumps(index, indent=2).encode())
    return [*written, index_path]


def read_state(file: str | Path) -> tuple[dict[str, Source], dict[str, str]]:
    """Lazy sources for every tensor of a checkpoint, and its metadata."""
    path = Path(file)
    if path.name.endswith(INDEX_SUFFIX) or (not path.exists() and Path(str(path) + INDEX_SUFFIX).exists()):
        return _read_sharded(path if path.name.endswith(INDEX_SUFFIX) else Path(str(path) + INDEX_SUFFIX))
    metadata, infos = st.read_header(path)
    mapped = st.MappedFile(path)
    return {i.name: _source(mapped, i) for i in infos}, metadata


def load_file(
    model: Module, file: str | Path, *, strict: bool = True, progress: bool | None = None
) -> LoadReport:
    """Load a checkpoint into the model; see ``unified_params.load``."""
    state, metadata = read_state(file)
    aliases = _json(metadata.get("aliases"), {}, file)
    return load(
        model,
        state,
        strict=strict,
        aliases=aliases,
        progress=progress,
        description=f"loading {Path(file).name}",
    )


def _entries(slot: Slot) -> list[st.Entry]:
    if slot.how == "one":
        param = slot.param
        return [st.Entry(slot.keys[0], slot.shapes[0], param.dtype, param._canonical_view)]
    return [
        st.Entry(key, shape, slot.param.dtype, lambda key=key: dict(slot.export())[key])
        for key, shape in zip(slot.keys, slot.shapes, strict=True)
    ]


def _metadata(model: Module, model_slots: list[Slot]) -> dict[str, str]:
    aliases = {a: s.keys[0] for s in model_slots if s.how == "one" for a in aliases_inside(s.param, model)}
    kinds = {
        inside(m.path, model): m.kind
        for m in model.modules()
        if m.kind not in ("container", "other", "relu", "flatten")
    }
    lossy = [s.keys[0] for s in model_slots if s.lossy]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source_backend": model.backend,
        "library_version": _version.__version__,
        "layer_kinds": json.dumps(kinds),
        "aliases": json.dumps(aliases),
        "lossy": json.dumps(lossy),
    }


def _split(entries: list[st.Entry], limit: int) -> list[list[st.Entry]]:
    shards: list[list[st.Entry]] = [[]]
    size = 0
    for entry in entries:
        if shards[-1] and size + entry.nbytes > limit:
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += entry.nbytes
    return shards


def _parse_size(size: int | str) -> int:
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]I?B|B)?\s*", str(size).upper())
    if isinstance(size, str) and match and float(match.group(1)) > 0:
        return int(float(match.group(1)) * _UNITS[match.group(2) or ""])
    raise CheckpointError(
        "Invalid max_shard_size. Expected a positive number of bytes or a size such as '500MB' or '2GB'. "
        + received(max_shard_size=size)
    )


def _read_sharded(index_path: Path) -> tuple[dict[str, Source], dict[str, str]]:
    try:
        index = json.loads(index_path.read_text())
        weight_map: Mapping[str, str] = index["weight_map"]
    except FileNotFoundError:
        raise CheckpointError(
            f"No checkpoint index at {str(index_path)!r}. " + received(path=str(index_path))
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{str(index_path)!r} is not a checkpoint index ({err}). Expected JSON with a weight_map. "
            + received(path=str(index_path))
        ) from None
    state: dict[str, Source] = {}
    metadata: dict[str, str] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = index_path.parent / Path(shard).name  # never outside the index's folder
        metadata, infos = st.read_header(shard_path)
        mapped = st.MappedFile(shard_path)
        for info in infos:
            if weight_map.get(info.name) != shard:
                raise CheckpointError(
                    f"Shard {shard!r} holds {info.name!r}, which the index places elsewhere. "
                    + received(index=str(index_path))
                )
            state[info.name] = _source(mapped, info)
    missing = sorted(set(weight_map) - set(state))
    if missing:
        raise CheckpointError(
            f"The index lists tensors no shard holds: {missing[:5]}. " + received(index=str(index_path))
        )
    return state, metadata


def _source(mapped: st.MappedFile, info: st.TensorInfo) -> Source:
    return Source(info.shape, info.dtype, lambda: mapped.tensor(info))


def _json(text: str | None, default: Any, file: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        raise CheckpointError(
            f"The metadata of {str(file)!r} is not valid JSON. " + received(file=str(file))
        ) from None
