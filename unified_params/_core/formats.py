"""``up.convert``: checkpoints of other formats to and from canonical safetensors.

A framework's adapter package may offer a checkpoint format (torch offers
``dcp``, the folders torch.distributed.checkpoint writes), registered in the
backend registry. A format lists its tensors, each read on demand, and writes
tensors it is given, reading each only when it stores it; this module moves
them between such a format and safetensors, one tensor at a time.

Names are kept as the format stores them (a DCP folder of a whole training
state names ``model.0.weight``); ``prefix`` keeps the entries under one
prefix, without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .. import _version
from . import safetensors_io as st
from .errors import CheckpointError, received

SAFETENSORS = "safetensors"


#: One tensor of a checkpoint: name, shape and dtype now, values when fetched.
Tensor = st.Entry


class Format(Protocol):
    """A checkpoint format an adapter package offers (its module's ``FORMAT``)."""

    #: How users name it: ``up.convert(..., to="dcp")``.
    name: str
    #: How messages name it.
    title: str

    def recognizes(self, path: Path) -> bool:
        """Whether ``path`` holds a checkpoint of this format."""
        ...

    def tensors(self, path: Path) -> tuple[list[Tensor], list[str]]:
        """The tensors of the checkpoint at ``path``, and the names of entries left out."""
        ...

    def write(self, path: Path, tensors: list[Tensor]) -> None:
        """Write ``tensors`` as a checkpoint of this format at ``path``."""
        ...


@dataclass
class ConvertReport:
    """What a conversion did.

    Attributes:
        source: The format read (``"dcp"``, ``"safetensors"``).
        destination: The format written.
        tensors: Names written, in order.
        skipped: Entries of the source that are not tensors, or outside ``prefix``.
    """

    source: str
    destination: str
    tensors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def convert(
    source: Path,
    destination: Path,
    formats: dict[str, tuple[str, Format]],
    *,
    to: str | None = None,
    prefix: str = "",
) -> ConvertReport:
    """Convert between safetensors and a registered format; see ``unified_params.convert``.

    ``formats``: format name -> (the backend that offers it, the format).
    """
    source, destination = Path(source), Path(destination)
    reading = _source_format(source, formats)
    writing = _destination_format(destination, formats, to)
    if (reading == SAFETENSORS) == (writing == SAFETENSORS):
        raise CheckpointError(
            f"Cannot convert {str(source)!r} ({reading}) to {str(destination)!r} ({writing}). "
            "Expected one side in safetensors and the other in a format of "
            f"{sorted(formats)}. " + received(source=reading, destination=writing)
        )
    if reading == SAFETENSORS:
        from .checkpoint import file_aliases, read_state

        state, metadata = read_state(source)
        tensors = [Tensor(k, s.shape, s.dtype.name, s.read) for k, s in state.items()]
        # A tie group is stored once; other formats name every path (torch's state_dict does).
        aliases = file_aliases(state, metadata, source)
        tensors += [Tensor(alias, state[key].shape, state[key].dtype.name, state[key].read)
                    for alias, key in aliases.items() if key in state]  # fmt: skip
        skipped: list[str] = []
    else:
        tensors, skipped = formats[reading][1].tensors(source)
    kept = [t for t in tensors if t.name.startswith(prefix)]
    skipped += [t.name for t in tensors if not t.name.startswith(prefix)]
    kept = [Tensor(t.name[len(prefix) :], t.shape, t.dtype, t.fetch) for t in kept]
    if not kept:
        raise CheckpointError(
            f"{str(source)!r} holds no tensor"
            + (f" under the prefix {prefix!r}" if prefix else "")
            + ". Expected a checkpoint with tensors. "
            + received(prefix=prefix, names=[t.name for t in tensors][:5])
        )
    if writing == SAFETENSORS:
        backend = formats[reading][0]
        _write_safetensors(destination, kept, backend, formats[reading][1].title)
    else:
        formats[writing][1].write(destination, kept)
    return ConvertReport(reading, writing, [t.name for t in kept], skipped)


def _source_format(path: Path, formats: dict[str, tuple[str, Format]]) -> str:
    if path.is_file() or path.name.endswith((".safetensors", ".index.json")):
        return SAFETENSORS
    for name, (_, fmt) in formats.items():
        if fmt.recognizes(path):
            return name
    raise CheckpointError(
        f"{str(path)!r} is no checkpoint this library reads: neither a safetensors file nor one of "
        + ", ".join(f"a {fmt.title} ({name})" for name, (_, fmt) in formats.items())
        + ". "
        + received(path=str(path))
    )


def _destination_format(path: Path, formats: dict[str, tuple[str, Format]], to: str | None) -> str:
    if to is not None:
        if to != SAFETENSORS and to not in formats:
            raise CheckpointError(
                f"Unknown checkpoint format {to!r}. Expected {SAFETENSORS!r} or one of {sorted(formats)}. "
                + received(to=to)
            )
        return to
    if path.name.endswith(".safetensors"):
        return SAFETENSORS
    if len(formats) == 1:
        return next(iter(formats))
    raise CheckpointError(
        f"Which format should {str(path)!r} be written in? Expected a name ending in .safetensors, "
        f"or to= one of {sorted(formats)}. " + received(destination=str(path))
    )


def _write_safetensors(path: Path, tensors: list[Tensor], backend: str, title: str) -> None:
    from .checkpoint import FORMAT, FORMAT_VERSION, WRITER

    metadata = {
        "format": FORMAT,
        "writer": WRITER,
        "format_version": FORMAT_VERSION,
        "source_backend": backend,
        "library_version": _version.__version__,
        "converted_from": title,
        "aliases": json.dumps({}),
    }
    with st.atomic_file(path) as stream:
        st.write(stream, tensors, metadata)
