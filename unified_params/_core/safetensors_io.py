"""The safetensors file format, written as a stream and read with validation.

A file is an 8-byte little-endian header length ``N``, ``N`` bytes of JSON
(names -> dtype, shape, byte offsets; plus string metadata), then the raw
tensor bytes. Writing streams one tensor at a time, so a model is never
copied whole; reading checks every offset and size against the real file
before reading a byte of data, so a lying header cannot make it allocate what
it claims, and reads with ordinary I/O, so a file that shrinks is an error,
never a crash. Nothing is ever unpickled. A tensor is read into a new array,
straight into memory the caller gives (a parameter's), or a piece at a time
through a small buffer (to check it without holding it).
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import leases, recycling
from .errors import CheckpointError, received
from .layouts import aligned_empty, contiguous
from .parallel import workers
from .values import numpy_dtype

#: safetensors dtype codes -> numpy dtype names.
DTYPES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16", "F16": "float16",
    "BF16": "bfloat16", "U32": "uint32", "I32": "int32", "F32": "float32", "U64": "uint64",
    "I64": "int64", "F64": "float64",
}  # fmt: skip
CODES = {v: k for k, v in DTYPES.items()}
MAX_HEADER = 100_000_000  # the safetensors library's own limit


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lies in a file (absolute byte offsets)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Entry:
    """A tensor to write: its shape and dtype now, its data when asked."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    fetch: Callable[[], np.ndarray]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * numpy_dtype(self.dtype).itemsize


def header_bytes(entries: list[Entry], metadata: dict[str, str]) -> bytes:
    """The length-prefixed JSON header for ``entries``, padded to 8 bytes."""
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for e in entries:
        if e.dtype not in CODES:
            raise CheckpointError(
                f"Cannot store {e.name!r}: dtype {e.dtype} has no safetensors code. Expected one "
                f"of {sorted(CODES)}. " + received(dtype=e.dtype)
            )
        header[e.name] = {
            "dtype": CODES[e.dtype],
            "shape": list(e.shape),
            "data_offsets": [offset, offset + e.nbytes],
        }
        offset += e.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def write(
    stream: IO[bytes],
    entries: list[Entry],
    metadata: dict[str, str],
    tick: Callable[[int], None] | None = None,
) -> None:
    """Write a safetensors file to an open binary stream, one tensor at a time;
    ``tick(nbytes)`` is called after each tensor.

    While one tensor is written, the ones after it are made contiguous (a
    transpose, for a kernel whose native layout is not the canonical one) on a
    helper thread: both release the GIL, so the copies hide behind the writes.
    The helper keeps less than the largest tensor's bytes ready ahead before it
    starts one more, so it is never idle behind a small tensor (a Linear's bias
    between two kernels) and at most about two of the largest tensors' bytes
    are held at once.
    """
    stream.write(header_bytes(entries, metadata))
    if not entries:
        return
    largest = max(e.nbytes for e in entries)
    with recycling.scope(), ThreadPoolExecutor(1, thread_name_prefix="up-save") as helper:
        pending: deque[Future[np.ndarray]] = deque()
        queued, following = 0, 0  # bytes handed to the helper and not yet written; the next entry
        for e in entries:
            while following < len(entries) and (not pending or queued - e.nbytes < largest):
                pending.append(helper.submit(contiguous, _fetched(entries[following]), alongside=True))
                queued += entries[following].nbytes
                following += 1
            raw = pending.popleft().result()
            queued -= e.nbytes
            stream.write(_bytes_of(raw) if raw.size else b"")
            del raw
            if tick is not None:
                tick(e.nbytes)


def _bytes_of(array: np.ndarray) -> memoryview:
    """A C-contiguous array's memory as bytes, without a copy."""
    return memoryview(array.reshape(-1).view(np.uint8)).cast("B")  # type: ignore[arg-type]


def _fetched(e: Entry) -> np.ndarray:
    """The entry's value, checked against the shape and dtype in the header."""
    array = np.asarray(e.fetch())
    if tuple(array.shape) != e.shape or array.dtype != numpy_dtype(e.dtype):
        raise CheckpointError(
            f"Tensor {e.name!r} changed while saving: expected {e.shape} {e.dtype}. "
            + received(shape=array.shape, dtype=str(array.dtype))
        )
    return array


#: Longest file name most file systems take (bytes).
NAME_MAX = 255


@contextmanager
def atomic_file(path: Path, durable: bool = True):
    """Open a temporary file beside ``path``; on success rename it over ``path``,
    so a crash or a full disk leaves the old file as it was.

    The temporary file is created exclusively and never through a link
    (``O_EXCL | O_NOFOLLOW``): a symlink planted at its name is refused, not
    followed. Its name stays within 255 bytes, and names the writing process,
    so temporaries that dead processes left behind are removed by the next
    save of the same file. ``durable`` also flushes the file and its folder to
    the disk (fsync) before and after the rename, so that even a power cut
    leaves either the old file or the whole new one.

    Raises:
        CheckpointError: Any failure of the file system (the message names the path).
    """
    tmp, fd = create_temp(path)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise _os_error(Path(path), err, "write") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    commit(tmp, Path(path), durable)


def create_temp(path: Path) -> tuple[Path, int]:
    """A new temporary file beside ``path`` (see `atomic_file`) and its
    write-only descriptor; stale temporaries of ``path`` are removed first.

    Raises:
        CheckpointError: The folder cannot take the file.
    """
    path = Path(path)
    tmp = path.with_name(temp_name(path.name, os.getpid()))
    try:
        remove_stale_temps(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as err:
        raise _os_error(path, err, "write") from err
    return tmp, fd


def commit(tmp: Path, path: Path, durable: bool) -> None:
    """Rename a fully written temporary over ``path`` (the temporary is removed
    if that fails).

    Raises:
        CheckpointError: The rename failed; the previous file is unchanged.
    """
    try:
        old = _hold(path)
        os.replace(tmp, path)
        if old is not None:
            _release_later(old)
        if durable:
            _fsync_dir(path.parent)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise _os_error(path, err, "write") from err


def temp_name(name: str, pid: int) -> str:
    """``.<name>.<pid>.<random>.tmp``, shortened to fit a file name's 255 bytes.

    Examples:
        >>> len(temp_name("x" * 252, 1234).encode()) <= NAME_MAX
        True
        >>> temp_name("m.safetensors", 7).startswith(".m.safetensors.7.")
        True
    """
    return f"{_temp_prefix(name)}{pid}.{uuid.uuid4().hex[:8]}.tmp"


def _temp_prefix(name: str) -> str:
    """``.<name>.``, the name cut so that any pid and the random tail still fit
    in 255 bytes (the same cut for every process, so stale ones can be found)."""
    room = NAME_MAX - len(".4294967295.12345678.tmp") - 2
    stem = name.encode()[:room].decode(errors="ignore")
    return f".{stem}."


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove temporaries of ``path`` whose writing process no longer runs.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> dead = folder / temp_name("m.safetensors", 2**22 + 12345)
        >>> _ = dead.write_bytes(b"partial")
        >>> [p.name == dead.name for p in remove_stale_temps(folder / "m.safetensors")]
        [True]
    """
    prefix = _temp_prefix(path.name)
    removed: list[Path] = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            try:
                (path.parent / name).unlink()
                removed.append(path.parent / name)
            except OSError:
                pass
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine.

    Examples:
        >>> process_alive(os.getpid())
        True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31  # it exists, owned by someone else
    return True


def _os_error(path: Path, err: OSError, verb: str) -> CheckpointError:
    kept = " The previous file, if any, is unchanged." if verb == "write" else ""
    expected = (
        "a writable folder with room for the file"
        if verb == "write"
        else "a readable safetensors file or index"
    )
    return CheckpointError(
        f"Could not {verb} {str(path)!r}: {err.strerror or err}.{kept} Expected {expected}. "
        + received(path=str(path), errno=err.errno)
    )


def _hold(path: Path) -> int | None:
    """A descriptor on the file about to be replaced, if there is one."""
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return None


def _release_later(fd: int) -> None:
    """Close the last reference to a replaced file on a helper thread.

    Freeing a large file's cached pages takes the kernel a while (about half
    the time of writing a 256 MiB checkpoint here); holding a descriptor across
    the rename moves that work off the caller's path.
    """
    threading.Thread(target=os.close, args=(fd,), name="up-release", daemon=True).start()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_header(path: Path) -> tuple[dict[str, str], list[TensorInfo]]:
    """Parse and validate a file's header against the file's real size.

    Raises:
        CheckpointError: Not a safetensors file, or a header whose offsets,
            sizes or dtypes do not describe the file exactly.
    """
    path = Path(path)
    try:
        size = regular_file(path).st_size
        with open(path, "rb") as stream:
            head = stream.read(8)
            if len(head) < 8:
                raise _bad(path, "it is shorter than the 8-byte header length")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER or 8 + length > size:
                _refuse_pickles(path, head)
                raise _bad(path, f"its header claims {length:,} bytes but the file has {size:,}")
            raw = stream.read(length)
    except FileNotFoundError:
        raise CheckpointError(
            f"No checkpoint at {str(path)!r}. Expected a safetensors file or index. "
            + received(path=str(path))
        ) from None
    except OSError as err:
        raise _os_error(path, err, "read") from None
    try:
        header = json.loads(raw.decode("utf-8"))  # safetensors headers are UTF-8, nothing else
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        _refuse_pickles(path, head)
        raise _bad(path, f"its header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise _bad(path, "its header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(path, "its __metadata__ is not a mapping of strings")
    start, infos = 8 + length, []
    for name, spec in header.items():
        infos.append(_tensor_info(path, name, spec, start))
    infos.sort(key=lambda t: (t.begin, t.end))
    cursor = start
    for info in infos:
        if info.begin != cursor:
            where = f"starts at byte {info.begin - start}, expected {cursor - start}"
            raise _bad(path, f"tensor {info.name!r} {where} (offsets overlap or leave gaps)")
        cursor = info.end
    if cursor != size:
        raise _bad(
            path, f"its tensors end at byte {cursor:,} but the file has {size:,} (truncated or padded)"
        )
    return metadata, infos


def _tensor_info(path: Path, name: str, spec: Any, start: int) -> TensorInfo:
    try:
        code, shape, (begin, end) = spec["dtype"], spec["shape"], spec["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise _bad(path, f"tensor {name!r} lacks dtype, shape or data_offsets") from None
    if not isinstance(code, str) or code not in DTYPES:
        raise _bad(path, f"tensor {name!r} has unknown dtype {code!r}")
    ints = [*shape, begin, end] if isinstance(shape, list) else None
    if ints is None or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ints):
        raise _bad(path, f"tensor {name!r} has a malformed shape or offsets")
    dtype = numpy_dtype(DTYPES[code])
    if end - begin != math.prod(shape) * dtype.itemsize:
        need = math.prod(shape) * dtype.itemsize
        what = f"tensor {name!r} of shape {tuple(shape)} {DTYPES[code]}"
        raise _bad(path, f"{what} needs {need:,} bytes, its offsets give {end - begin:,}")
    return TensorInfo(name, dtype, tuple(shape), start + begin, start + end)


def regular_file(path: Path) -> os.stat_result:
    """``stat`` of a regular file; a folder, FIFO or device is refused before it
    is opened (opening a FIFO to read would wait for a writer forever).

    Raises:
        FileNotFoundError: Nothing at ``path``.
        CheckpointError: Something that is not a regular file.
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise CheckpointError(
            f"{str(path)!r} is {kind}. Expected a safetensors file or index. " + received(path=str(path))
        )
    return info


class FileReader:
    """Reads tensors from a checkpoint with ordinary reads, into fresh arrays or given memory.

    Deliberately not a memory mapping (this is also why checkpoints are not
    read through ``safetensors.safe_open``, which maps the file): a file that
    shrinks while it is mapped kills the process with SIGBUS on the next touch
    of a lost page, whereas a short read is an error the load can report with
    the model unchanged. A tensor is read from the page cache into an aligned
    array the caller owns (`tensor`), into memory the caller lends (`fill`),
    or piece by piece (`pieces`); `leased` holds other writers back meanwhile.

    Examples:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "t.safetensors")
        >>> e = Entry("w", (2,), "float32", lambda: np.array([1.0, 2.0], "float32"))
        >>> with open(path, "wb") as f:
        ...     write(f, [e], {})
        >>> _, [info] = read_header(path)
        >>> FileReader(path).tensor(info)
        array([1., 2.], dtype=float32)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stream: IO[bytes] | None = None
        self._opening = threading.Lock()  # tensors are read from several threads at once

    def tensor(self, info: TensorInfo) -> np.ndarray:
        """The tensor's bytes as an array of its dtype and shape (a copy the caller owns).

        Raises:
            CheckpointError: The file is gone or shorter than its header said.
        """
        out = aligned_empty(info.shape, info.dtype)
        self._read_whole(info, _bytes_of(out))
        return out

    def fill(self, info: TensorInfo, out: np.ndarray) -> None:
        """Read the tensor straight into ``out``, a writable C-contiguous array
        of its shape and dtype (a parameter's own memory).

        Raises:
            CheckpointError: The file is gone or shorter than its header said.
        """
        if tuple(out.shape) != info.shape or out.dtype != info.dtype or not out.flags.c_contiguous:
            raise CheckpointError(
                f"Cannot read tensor {info.name!r} into an array of shape {tuple(out.shape)} and dtype "
                f"{out.dtype}. Expected a C-contiguous {info.shape} {info.dtype} array. "
                + received(name=info.name)
            )
        self._read_whole(info, _bytes_of(out))

    def _read_whole(self, info: TensorInfo, whole: memoryview) -> None:
        """Fill ``whole`` with the tensor's bytes; a large read on two threads."""
        if len(whole) < SPLIT_FROM or workers() < 2:
            if len(whole):
                self.read_into(whole, info.begin, info.name)
            return
        # One large read is one core's copy from the page cache: the second half on a helper.
        half = len(whole) // 2 // PAGE * PAGE
        failed: list[BaseException] = []

        def second() -> None:
            try:
                self.read_into(whole[half:], info.begin + half, info.name)
            except BaseException as err:  # re-raised on the calling thread
                failed.append(err)

        helper = threading.Thread(target=second, name="unified-params-read", daemon=True)
        helper.start()
        try:
            self.read_into(whole[:half], info.begin, info.name)
        finally:
            helper.join()
        if failed:
            raise failed[0]

    def pieces(self, info: TensorInfo) -> Iterator[np.ndarray]:
        """The tensor's elements in order, a piece of at most `PIECE_BYTES` at a
        time, each read into one small buffer of the calling thread's that the
        next piece overwrites (the values are checked in the CPU's caches, and
        nothing the size of the tensor is allocated).

        Raises:
            CheckpointError: The file is gone or shorter than its header said.
        """
        buffer = _piece_buffer()
        step = PIECE_BYTES // info.dtype.itemsize * info.dtype.itemsize
        for start in range(info.begin, info.end, step):
            piece = buffer[: min(step, info.end - start)]
            self.read_into(_bytes_of(piece), start, info.name)
            yield piece.view(info.dtype)

    @contextmanager
    def leased(self) -> Iterator[leases.Lease | None]:
        """A read lease on the file while the block runs (see `leases`), or
        ``None`` where none can be had."""
        lease = leases.take(self._fd())
        try:
            yield lease
        finally:
            if lease is not None:
                lease.release()

    def read_into(self, view: memoryview, offset: int, name: str) -> None:
        """Fill ``view`` with the file's bytes from ``offset`` on (part of tensor ``name``).

        Raises:
            CheckpointError: The file is gone or shorter than its header said.
        """
        try:
            fd, done = self._fd(), 0
            while done < len(view):
                n = os.preadv(fd, [view[done:]], offset + done)
                if not n:
                    raise _bad(self.path, f"tensor {name!r} is cut short (the file shrank)")
                done += n
        except OSError as err:
            raise _os_error(self.path, err, "read") from None

    def _fd(self) -> int:
        """The file's descriptor, opened once for every thread (``preadv`` keeps no position)."""
        with self._opening:
            if self._stream is None:
                self._stream = open(self.path, "rb", buffering=0)  # noqa: SIM115 (kept for the next tensor)
            return self._stream.fileno()

    def close(self) -> None:
        """Close the file (reading again reopens it)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None


#: Size of the pieces `FileReader.pieces` reads: a few fit the caches of a core
#: (1 MiB read and checked 1 GiB in 127 ms here, 8 MiB in 153 ms, 256 KiB in 176 ms).
PIECE_BYTES = 1 << 20
_local = threading.local()
#: From this size, `FileReader.fill` reads two halves at once (1 GiB of 64 MiB
#: tensors into a model's memory: 170 ms on one thread, 130 ms on two, here).
SPLIT_FROM = 16 << 20
PAGE = 4096


def _piece_buffer() -> np.ndarray:
    """This thread's buffer for `FileReader.pieces` (made once, then reused)."""
    buffer: np.ndarray | None = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = np.empty(PIECE_BYTES, np.uint8)
    return buffer


#: The first bytes of an HDF5 file (Keras' ``save_weights``: ``.weights.h5``, ``.h5``).
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _refuse_pickles(path: Path, head: bytes) -> None:
    """Refuse a file of a framework's own format that a safetensors reader
    cannot read, saying how to read it there: a pickle (torch's legacy
    ``torch.save``, ``paddle.save``), a zip archive (``torch.save``, a
    ``.keras`` model) or an HDF5 file (Keras' weights), each told by its
    first bytes, a zip's by the names it lists (nothing in it is run)."""
    if head[:1] == b"\x80" or head[:2] == b"PK":
        archive = head[:2] == b"PK"
        keras_archive = archive and _zip_holds(path, "model.weights.h5")
        what = (
            "a Keras model archive (model.save)"
            if keras_archive
            else "a pickle or torch.save archive, which can run code when loaded; it was refused without "
            "being unpickled"
        )
        how = _read_there(path, keras_archive)
        raise CheckpointError(
            f"{str(path)!r} looks like {what}. Expected a safetensors file. {how} "
            + received(path=str(path), first_bytes=head[:4].hex())
        )
    if head == HDF5_MAGIC:
        raise CheckpointError(
            f"{str(path)!r} is an HDF5 file, as Keras' save_weights writes (.weights.h5). Expected a "
            "safetensors file. Load it into the Keras model it was saved from (model.load_weights(path)), "
            "then up.save(model, file) or up.port(model, other). " + received(path=str(path))
        )


def _zip_holds(path: Path, name: str) -> bool:
    """Whether the zip archive at ``path`` lists ``name`` at its top (read from its index only)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return name in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _read_there(path: Path, keras_archive: bool) -> str:
    """How to read a framework's own checkpoint with that framework, then use it here."""
    if keras_archive:
        return (
            "Load it with Keras (keras.saving.load_model(path)), then up.save(model, file) or "
            "up.port(model, other)."
        )
    if path.suffix in (".pdparams", ".pdopt"):
        return (
            "Read it with paddle.load(path): a paddle model's own state, which loads into that model with "
            "up.load_state_dict(model, state, layout='native'); then up.save(model, file) or up.port."
        )
    return (
        "Read it with torch.load(path, weights_only=True), which reads tensors and refuses code, and "
        "pass the state: up.load_state_dict(model, state) (torch's layout is the canonical one)."
    )


def _bad(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"{str(path)!r} is not a valid safetensors file: {why}. Expected a file written by "
        "up.save or the safetensors library. " + received(path=str(path))
    )


def entries_bytes(entries: Iterable[Entry]) -> int:
    """Total data bytes of ``entries``."""
    return sum(e.nbytes for e in entries)
