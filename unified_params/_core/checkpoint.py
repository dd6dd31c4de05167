"""``up.save`` / ``up.load``: canonical safetensors files, single or sharded.

A file holds the canonical state (PyTorch names and layout), one entry per
tie group, and string metadata: format version, source backend, library
version, each layer's kind, the aliases of tie groups, lossy merges, and the
entries kept in their framework's own layout (`Param.own_layout`). A
sharded checkpoint is ``<stem>-00001-of-0000N.safetensors`` files plus
``<stem>.safetensors.index.json`` (``{"metadata": {"total_size": ...},
"weight_map": {name: file}}``), the layout the Hugging Face ecosystem uses.

A sharded save commits as one unit. Its shards get names no earlier save
used (``<stem>-<id>-00001-of-0000N.safetensors``) and carry the save's
``checkpoint_id``; the index, written last by an atomic rename, is the commit:
until it lands, the old index still names the old, untouched shards. Then
the files of the previous checkpoint of that name (its shards, or the single
file) are removed, so one name always means one checkpoint. A load reads
only what the index names and refuses a shard of another save.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import _version
from . import safetensors_io as st
from . import sharded_checkpoint
from .errors import CheckpointError, received
from .foreign import file_owners
from .layouts import UNKNOWN_KIND
from .progress import bar
from .rules import LayerMapping, Renaming
from .sharding import Group, agree
from .state import (
    LoadReport,
    Slot,
    Source,
    alias_keys,
    inside,
    load,
    naive_orders,
    native_sources,
    own_layout_of,
    refuse_orders,
    renamed,
    slots,
)
from .view import Module, check_layout

#: The ``format`` a file's metadata names: its tensors are in PyTorch's names and layout
#: (the canonical one), the value Hugging Face's loaders require of a torch checkpoint.
FORMAT = "pt"
#: Who wrote the file (files of versions before 0.x named it as their ``format``).
WRITER = "unified-params"
FORMAT_VERSION = "1"
INDEX_SUFFIX = ".index.json"
#: The end of a shard's name, which no single-file checkpoint has.
_SHARD_NAME = re.compile(r"-\d{5}-of-\d{5}\.safetensors$")
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def save(
    model: Module,
    file: str | Path,
    *,
    max_shard_size: int | str | None = None,
    progress: bool | None = None,
    durable: bool = True,
    mapping: LayerMapping | None = None,
) -> list[Path]:
    """Write the model's canonical state; returns the files written (index last)."""
    path = _checked_path(file)
    model_slots = slots(model)
    entries = [entry for slot in model_slots for entry in _entries(slot)]
    metadata = _metadata(model, model_slots)
    group, parts = sharded_checkpoint.blocks(model_slots)
    if mapping is not None:  # written under another model's layer paths
        entries, metadata, parts = _renamed_for_save(
            Renaming(mapping, CheckpointError), entries, metadata, parts
        )
    if group is not None and group.rank != 0:
        progress = False  # one bar, on rank 0
    meter = bar(st.entries_bytes(entries), progress, f"saving {path.name}")
    write_one: WriteOne = _write_alone
    if group is not None:
        write_one = functools.partial(sharded_checkpoint.write, group=group, parts=parts)
    try:
        return _write_files(path, entries, metadata, max_shard_size, meter.update, durable, write_one, group)
    finally:
        meter.close()


#: Writes one file: ``(path, entries, metadata, tick, durable)``.
WriteOne = Callable[[Path, list[st.Entry], dict[str, str], Any, bool], None]


def _write_alone(
    path: Path, entries: list[st.Entry], metadata: dict[str, str], tick: Any, durable: bool
) -> None:
    with st.atomic_file(path, durable) as stream:
        st.write(stream, entries, metadata, tick)


def _write_files(
    path: Path,
    entries: list[st.Entry],
    metadata: dict[str, str],
    max_shard_size: Any,
    tick: Any,
    durable: bool,
    write_one: WriteOne,
    group: Group | None,
):
    """Write the checkpoint's file(s); with a ``group`` (a sharded model) every
    rank takes part in each file, and rank 0 alone names, indexes and removes."""
    lead = group is None or group.rank == 0
    index_path = index_of(path)
    if max_shard_size is None:
        write_one(path, entries, metadata, tick, durable)
        if lead:
            _remove_checkpoint(index_path, keep=set())  # the name now means this file alone
        return [path]
    shards = _split(entries, _parse_size(max_shard_size))
    token = f"{os.getpid()}x{secrets.token_hex(4)}"
    if group is not None:
        token = group.broadcast(token)
    stem = path.name.removesuffix(".safetensors")
    names = [f"{stem}-{token}-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    if lead:
        _remove_orphan_shards(path.parent, stem, index_path)
    metadata = {**metadata, "checkpoint_id": token}
    written: list[Path] = []
    error: BaseException | None = None
    try:
        for name, shard in zip(names, shards, strict=True):
            write_one(path.parent / name, shard, metadata, tick, durable)
            written.append(path.parent / name)
        index = {
            "metadata": {"total_size": st.entries_bytes(entries), **metadata},
            "weight_map": {e.name: name for name, shard in zip(names, shards, strict=True) for e in shard},
        }
        previous = _indexed_files(index_path)
        if lead:
            try:
                with st.atomic_file(index_path, durable) as stream:  # the commit
                    stream.write(json.dumps(index, indent=2).encode())
            except BaseException as err:
                error = err
        if group is not None:
            agree(group, error, f"Saving {str(index_path)!r}")
        elif error is not None:
            raise error
    except BaseException:
        if lead:
            for shard_path in written:  # never named by any index: nothing refers to them
                shard_path.unlink(missing_ok=True)
        raise
    if lead:
        for old in previous - set(names):
            (path.parent / old).unlink(missing_ok=True)
        _unlink(path)  # a single file of the same name is an older checkpoint now
    if group is not None:
        group.gather(None)  # every rank returns once the old files are gone
    return [*written, index_path]


def index_of(path: Path) -> Path:
    """The index file of a sharded checkpoint saved under ``path``.

    Examples:
        >>> index_of(Path("ckpt/model.safetensors")).name
        'model.safetensors.index.json'
    """
    return path if path.name.endswith(INDEX_SUFFIX) else path.with_name(path.name + INDEX_SUFFIX)


def _indexed_files(index_path: Path) -> set[str]:
    """The shard names an existing index lists (none if there is no readable index)."""
    try:
        weight_map = json.loads(index_path.read_text()).get("weight_map", {})
        return {Path(n).name for n in weight_map.values() if isinstance(n, str) and _safe_name(n)}
    except (OSError, ValueError, AttributeError):
        return set()


def _remove_checkpoint(index_path: Path, keep: set[str]) -> None:
    """Remove a sharded checkpoint (index first, then its shards), keeping ``keep``."""
    shards = _indexed_files(index_path)
    if _unlink(index_path):
        for name in shards - keep:
            _unlink(index_path.parent / name)


def _remove_orphan_shards(folder: Path, stem: str, index_path: Path) -> None:
    """Shards of this name (and their temporaries) that no index lists, left by
    saves whose process died."""
    listed = _indexed_files(index_path)
    shard = re.escape(stem) + r"-(\d+)x[0-9a-f]{8}-\d{5}-of-\d{5}\.safetensors"
    pattern = re.compile(rf"{shard}|\.{shard}\.\d+\.[0-9a-f]{{8}}\.tmp")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        pid = match and (match.group(1) or match.group(2))
        if pid and name not in listed and not st.process_alive(int(pid)):
            _unlink(folder / name)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            return False  # a name too long to exist (the index of a 252-byte file name)
        raise CheckpointError(
            f"Could not remove {str(path)!r}, a file of the checkpoint being replaced: "
            f"{err.strerror or err}. Expected a writable folder. " + received(path=str(path))
        ) from err
    return True


def _exists(path: Path) -> bool:
    """``path.exists()``, where a name too long to exist does not exist."""
    try:
        return path.exists() or path.is_symlink()
    except OSError:
        return False


def read_state(file: str | Path) -> tuple[dict[str, Source], dict[str, str]]:
    """Lazy sources for every tensor of a checkpoint, and its metadata.

    ``file`` is a single file, an index, or the name a sharded checkpoint was
    saved under. When that name holds both a single file and a sharded
    checkpoint (a save was interrupted while replacing one form by the other),
    the load is refused rather than guessed.

    Raises:
        CheckpointError: No checkpoint, both forms, or a malformed one.
    """
    state, metadata, _ = _open_state(file)
    return state, metadata


def _open_state(file: str | Path) -> tuple[dict[str, Source], dict[str, str], list[st.FileReader]]:
    """`read_state`, and the readers of the checkpoint's files."""
    path = _checked_path(file)
    index_path = index_of(path)
    if path.name.endswith(INDEX_SUFFIX):
        return _read_sharded(path)
    if _exists(index_path) and _exists(path):
        raise CheckpointError(
            f"{str(path)!r} names two checkpoints: a single file and a sharded one "
            f"({index_path.name}), left by an interrupted save. Expected one: load the index "
            "explicitly, or delete the form you do not want. " + received(path=str(path))
        )
    if not _exists(path) and _exists(index_path):
        return _read_sharded(index_path)
    if path.is_dir():
        _name_what_a_folder_holds(path)  # else the reader refuses it as any folder
    metadata, infos = st.read_header(path)
    reader = st.FileReader(path)
    return {i.name: _source(reader, i) for i in infos}, metadata, [reader]


def _name_what_a_folder_holds(path: Path) -> None:
    """Refuse a folder that holds checkpoints (as ``save_torch_model`` writes
    them), naming them: the index of a sharded one, else single files."""
    found = sorted(p.name for p in path.glob(f"*{INDEX_SUFFIX}")) or sorted(
        p.name for p in path.glob("*.safetensors") if not _SHARD_NAME.search(p.name)
    )
    if found:
        which = "its path" if len(found) == 1 else "the path of one"
        raise CheckpointError(
            f"{str(path)!r} is a folder. It holds {', '.join(map(repr, found[:5]))}: pass {which}. "
            "Expected a safetensors file or index. " + received(path=str(path))
        )


def _checked_path(file: Any) -> Path:
    if not isinstance(file, (str, os.PathLike)) or not str(file):
        raise CheckpointError(
            "Invalid checkpoint file name. Expected a non-empty path (str or pathlib.Path). "
            + received(file=file, type=type(file).__name__)
        )
    path = Path(file)
    return path if path.name else path.resolve()  # "." or "/": a folder, named


def load_file(
    model: Module,
    file: str | Path,
    *,
    strict: bool = True,
    progress: bool | None = None,
    allow_nonfinite: bool = False,
    layout: str | None = None,
    mapping: LayerMapping | None = None,
) -> LoadReport:
    """Load a checkpoint into the model; see ``unified_params.load``."""
    check_layout(layout, unsaid=True)
    state, metadata, readers = _open_state(file)
    aliases = file_aliases(state, metadata, file)
    naive = metadata.get("flattened_naive")  # absent from a file of another writer: None
    written_naive = None if naive is None else _json(naive, [], file)
    source_backend = metadata.get("source_backend")
    unflat = metadata.get("unflattened_naive")  # absent from a file of another writer or version: None
    written_unflat = None if unflat is None else _json(unflat, [], file)
    written = metadata.get("own_layout")
    own_written: dict[str, str] = {} if written is None else _json(written, {}, file)
    left_out: list[str] = []
    renaming = None if mapping is None else Renaming(mapping, CheckpointError)
    if renaming is not None:  # the file's layers renamed to the model's, with what its metadata says of them
        orders = (written_naive, written_unflat)
        state, aliases, own_written, (written_naive, written_unflat), left_out = renamed(
            renaming, state, aliases, own_written, orders
        )
    said = metadata.get("layer_kinds")  # this library's files name their layers' kinds
    if said is not None:
        kinds = _json(said, {}, file)
        if renaming is not None:
            kinds = {new: kind for path, kind in kinds.items() if (new := renaming.layer(path)) is not None}
        state = {k: replace(s, kind=kinds.get(k.rpartition(".")[0])) for k, s in state.items()}
    if layout == "native":  # the file holds this framework's own layouts (a PaddleNLP file for paddle)
        state, own_native = native_sources(model, state)
    elif layout is None:  # tensors of a writer that may lay leaves out otherwise: checked
        owners = file_owners(metadata, WRITER)
        if owners:
            writer = str(metadata.get("format", ""))  # "": a file that names none
            state = {k: replace(s, owners=owners, writer=writer) for k, s in state.items()}
    refuse_orders(model, (written_naive, written_unflat), source_backend, "file")
    if layout == "native":
        own_layout = own_native
    elif written is not None:  # the file says which of its keys are in a framework's own layout
        own_layout = own_written
    elif source_backend == model.backend:  # a file of a version before it said: its backend's own
        own_layout = own_layout_of(slots(model))
    else:  # another writer's file, canonical as every one is
        own_layout = {}
    report = load(
        model,
        state,
        strict=strict,
        aliases=aliases,
        progress=progress,
        description=f"loading {Path(file).name}",
        allow_nonfinite=allow_nonfinite,
        hold=functools.partial(_leased, readers),
        own_layout=own_layout,
        said_canonical=layout == "canonical",
    )
    report.skipped += left_out
    return report


@contextlib.contextmanager
def _leased(readers: list[st.FileReader]) -> Iterator[Callable[[], bool] | None]:
    """Read leases on every file of a checkpoint while the block runs, and a
    check that no other process can have written them since (see `leases`);
    ``None`` when a file gets no lease."""
    with contextlib.ExitStack() as held:
        taken = [held.enter_context(r.leased()) for r in readers]
        leased = [lease for lease in taken if lease is not None]
        if not readers or len(leased) < len(readers):
            yield None
        else:
            yield lambda: all(lease.unchanged() for lease in leased)


def _entries(slot: Slot) -> list[st.Entry]:
    if slot.how == "one":
        param = slot.param
        return [st.Entry(slot.keys[0], slot.shapes[0], param.dtype, param.canonical_view)]
    return [
        st.Entry(key, shape, slot.param.dtype, _exported(slot, key))
        for key, shape in zip(slot.keys, slot.shapes, strict=True)
    ]


def _exported(slot: Slot, key: str) -> Callable[[], np.ndarray]:
    """Reads one canonical entry of a slot that stands for several."""
    return lambda: dict(slot.export())[key]


def _metadata(model: Module, model_slots: list[Slot]) -> dict[str, str]:
    aliases = alias_keys(model, model_slots)
    kinds = {
        inside(m.path, model): m.kind
        for m in model.modules()
        if m.kind not in ("container", UNKNOWN_KIND, "relu", "flatten")
    }
    lossy = [s.keys[0] for s in model_slots if s.lossy]
    flattened, unflattened = naive_orders(model)
    return {
        "format": FORMAT,
        "writer": WRITER,
        "format_version": FORMAT_VERSION,
        "source_backend": model.backend,
        "library_version": _version.__version__,
        "layer_kinds": json.dumps(kinds),
        "aliases": json.dumps(aliases),
        "lossy": json.dumps(lossy),
        # Key -> backend: leaves the library knows no canonical form of, in that backend's layout.
        "own_layout": json.dumps(own_layout_of(model_slots)),
        # Linears that keep their framework's (H, W, C) order of a flattened map, of inputs or outputs.
        "flattened_naive": json.dumps(flattened),
        "unflattened_naive": json.dumps(unflattened),
    }


def _renamed_for_save(
    renaming: Renaming, entries: list[st.Entry], metadata: dict[str, str], parts: dict[str, Any]
) -> tuple[list[st.Entry], dict[str, str], dict[str, Any]]:
    """A save's entries under the names ``renaming`` gives their layers, with
    what the metadata says of them (and a sharded model's blocks) renamed
    alike; entries of a layer left out are not written."""
    by_name = {e.name: e for e in entries}
    orders = (json.loads(metadata["flattened_naive"]), json.loads(metadata["unflattened_naive"]))
    kept, aliases, own, (flattened, unflattened), _ = renamed(
        renaming, by_name, json.loads(metadata["aliases"]), json.loads(metadata["own_layout"]), orders
    )
    new_name = {e.name: name for name, e in kept.items()}
    kinds = {
        new: kind for path, kind in json.loads(metadata["layer_kinds"]).items()
        if (new := renaming.layer(path)) is not None
    }  # fmt: skip
    lossy = [new_name[k] for k in json.loads(metadata["lossy"]) if k in new_name]
    return (
        [replace(e, name=name) for name, e in kept.items()],
        {**metadata, "aliases": json.dumps(aliases), "own_layout": json.dumps(own),
         "layer_kinds": json.dumps(kinds), "lossy": json.dumps(lossy),
         "flattened_naive": json.dumps(flattened), "unflattened_naive": json.dumps(unflattened)},
        {new_name[k]: block for k, block in parts.items() if k in new_name},
    )  # fmt: skip


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


def _read_sharded(index_path: Path) -> tuple[dict[str, Source], dict[str, str], list[st.FileReader]]:
    index = read_index(index_path)
    weight_map: dict[str, str] = index["weight_map"]
    expected_id = index.get("metadata", {}).get("checkpoint_id")
    state: dict[str, Source] = {}
    metadata: dict[str, str] = {}
    readers: list[st.FileReader] = []
    for shard in sorted(set(weight_map.values())):
        shard_path = index_path.parent / shard
        metadata, infos = st.read_header(shard_path)
        if expected_id is not None and metadata.get("checkpoint_id") != expected_id:
            raise CheckpointError(
                f"Shard {shard!r} belongs to another save than its index {index_path.name!r} "
                f"(checkpoint_id {metadata.get('checkpoint_id')!r}, the index has {expected_id!r}). "
                "Expected the shards the index was written with; the checkpoint was changed by hand "
                "or mixed with another. " + received(index=str(index_path), shard=shard)
            )
        reader = st.FileReader(shard_path)
        readers.append(reader)
        for info in infos:
            if weight_map.get(info.name) != shard:
                raise CheckpointError(
                    f"Shard {shard!r} holds {info.name!r}, which the index places elsewhere. Expected "
                    "each tensor in the shard the index names. " + received(index=str(index_path))
                )
            state[info.name] = _source(reader, info)
    missing = sorted(set(weight_map) - set(state))
    if missing:
        raise CheckpointError(
            f"The index lists tensors no shard holds: {missing[:5]}. Expected every listed tensor in "
            "the shard the index names. " + received(index=str(index_path))
        )
    # The index's own text fields too, under the shards': huggingface_hub's
    # `save_torch_model` says there which tensors it dropped as duplicates (`file_aliases`).
    said = {k: v for k, v in index.get("metadata", {}).items() if isinstance(v, str)}
    return state, {**said, **metadata}, readers


def read_index(index_path: Path) -> dict[str, Any]:
    """The index's JSON, every field of the type it must have.

    Raises:
        CheckpointError: Missing, not JSON, or a field of the wrong type.
    """
    try:
        st.regular_file(index_path)
        index = json.loads(index_path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"No checkpoint index at {str(index_path)!r}. " + received(path=str(index_path))
        ) from None
    except OSError as err:
        raise CheckpointError(
            f"Could not read {str(index_path)!r}: {err.strerror or err}. " + received(path=str(index_path))
        ) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{str(index_path)!r} is not a checkpoint index ({err}). Expected UTF-8 JSON with a "
            "weight_map. " + received(path=str(index_path))
        ) from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    meta = index.get("metadata", {}) if isinstance(index, dict) else None
    bad = None
    if not isinstance(weight_map, dict):
        bad = "its weight_map is not an object of tensor name -> shard file"
    elif not isinstance(meta, dict):
        bad = "its metadata is not an object"
    else:
        wrong = [n for n in weight_map.values() if not (isinstance(n, str) and _safe_name(n))]
        if wrong:
            bad = f"it names shards that are no file name in its folder ({wrong[0]!r})"
    if bad:
        raise CheckpointError(
            f"{str(index_path)!r} is not a valid checkpoint index: {bad}. Expected "
            '{"metadata": {...}, "weight_map": {"<tensor>": "<shard file>"}}. '
            + received(path=str(index_path))
        )
    return index


def _safe_name(name: str) -> bool:
    """A plain file name in the index's own folder: no folder part, not ``.`` or ``..``.

    Examples:
        >>> [_safe_name(n) for n in ("a.safetensors", "../a", "..", ".", "", "d/a")]
        [True, False, False, False, False, False]
    """
    return bool(name) and name not in (".", "..") and Path(name).name == name and "\\" not in name


def _source(reader: st.FileReader, info: st.TensorInfo) -> Source:
    return Source(
        info.shape,
        info.dtype,
        lambda: reader.tensor(info),
        lambda sharding: sharded_checkpoint.read_block(reader, info, sharding),
        fresh=True,  # every read is a new array of the file's bytes
        fill=lambda out: reader.fill(info, out),
        pieces=lambda: reader.pieces(info),
    )


def file_aliases(state: Mapping[str, Any], metadata: Mapping[str, str], file: Any) -> dict[str, str]:
    """Each other path of a tie group that a file stores once -> the key holding
    its value: this library's ``aliases`` field, and the entries safetensors'
    ``save_model`` writes for each tensor it drops as another's duplicate (a
    metadata key naming no tensor of the file, whose value names one: a torch
    model's tied ``head.weight`` -> ``emb.weight``).

    Examples:
        >>> file_aliases({"emb.weight": None}, {"head.weight": "emb.weight", "format": "pt"}, "f")
        {'head.weight': 'emb.weight'}
    """
    dropped = {k: v for k, v in metadata.items() if k not in state and v in state}
    return {**dropped, **_json(metadata.get("aliases"), {}, file)}


def _json(text: str | None, default: Any, file: Any) -> Any:
    """A JSON metadata field, of the same type as ``default``."""
    if text is None:
        return default
    try:
        value = json.loads(text)
    except ValueError:
        raise CheckpointError(
            f"The metadata of {str(file)!r} is not valid JSON. " + received(file=str(file))
        ) from None
    members = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    if not isinstance(value, type(default)) or not all(isinstance(v, str) for v in members):
        raise CheckpointError(
            f"The metadata of {str(file)!r} has a field of the wrong type. Expected a JSON "
            f"{type(default).__name__} of strings. " + received(file=str(file), value=text[:60])
        )
    return value
