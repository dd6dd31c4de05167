"""The transposing copy (``_core/transpose.py``): every kernel copies bits
exactly, torch's is used once torch is imported, and none imports a framework."""

from __future__ import annotations

import subprocess
import sys
import time

import ml_dtypes
import numpy as np
import pytest

from tests.conftest import needs, needs_target
from unified_params._core import transpose
from unified_params._core.layouts import aligned_empty, contiguous

DTYPES = ["float32", "float64", "float16", ml_dtypes.bfloat16, "int64", "int8", "bool"]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kernel", ["tiled", "torch_copy", "torch_copy_one_core", "tf_transpose"])
def test_every_kernel_copies_a_transposed_view_bit_for_bit(kernel, dtype):
    if kernel.startswith("torch"):
        needs("torch")
    if kernel == "tf_transpose":
        needs_target("keras")  # Keras on TensorFlow: tensorflow is loaded
    a = aligned_empty((600, 517), np.dtype(dtype))
    a[...] = (np.random.default_rng(0).standard_normal((600, 517)) * 100).astype(dtype)
    views = (a.T, a[:, ::2], a[::3].T)
    if kernel == "tf_transpose":
        views = tuple(v for v in views if transpose._tf_takes(v))
        assert len(views) == (1 if np.dtype(dtype) in transpose._TF_DTYPES else 0)
    for view in views:
        out = np.empty(view.shape, view.dtype)
        getattr(transpose, kernel)(view, out)
        assert out.tobytes() == np.ascontiguousarray(view).tobytes()


@pytest.mark.parametrize("dtype", ["float32", ml_dtypes.bfloat16, "int64", "bool"], ids=str)
def test_torch_copies_a_large_view_tile_by_tile_with_every_edge_in_place(dtype, monkeypatch):
    """torch's kernel copies a large 2-D view in tiles of the output (its
    one-core transpose of a whole view is 2-4x slower): the last tiles of
    each row and column are partial, and each lands where it belongs."""
    needs("torch")
    monkeypatch.setattr(transpose, "TORCH_TILE_ROWS", 48)  # small tiles: many edges in a small array
    monkeypatch.setattr(transpose, "TORCH_TILE_COLS", 16)
    monkeypatch.setattr(transpose, "TORCH_TILE", 48 * 20)
    import torch

    calls = []
    real = torch.Tensor.copy_
    monkeypatch.setattr(torch.Tensor, "copy_", lambda t, s: (calls.append(tuple(t.shape)), real(t, s))[1])
    a = (np.random.default_rng(4).standard_normal((301, 250)) * 100).astype(dtype)
    for view in (a.T, a[:, ::3], a[::2].T, a[:, :1].T):  # (250, 301), (301, 84), (250, 151), one row
        calls.clear()
        out = np.empty(view.shape, view.dtype)
        transpose.torch_copy(view, out)
        assert out.tobytes() == np.ascontiguousarray(view).tobytes()
        rows, cols = view.shape
        if view.size <= transpose.TORCH_TILE:
            assert calls == [view.shape]  # a small view: one copy
            continue
        down = min(rows, 48)
        across = max(16, 48 * 20 // down)
        assert len(calls) == -(-rows // down) * -(-cols // across)
        assert {c[0] for c in calls} == {down, rows % down or down}


def test_tensorflow_kernel_takes_only_what_it_can_read_safely():
    needs_target("keras")
    a = aligned_empty((640, 960), np.float32)
    assert transpose._tf_takes(a.T)
    assert not transpose._tf_takes(a[:64].T)  # small: TF's dispatch costs more than the tiles
    shifted = a.reshape(-1)[1 : 1 + 639 * 960].reshape(639, 960)  # 4 bytes past an alignment
    assert not transpose._tf_takes(shifted.T)  # unaligned: TF would abort the process
    assert not transpose._tf_takes(a[:, ::2])  # not a transpose of contiguous memory
    a[...] = np.arange(a.size, dtype=np.float32).reshape(a.shape)
    a.flags.writeable = False  # a Keras variable's value read through DLPack is read-only
    assert transpose._tf_takes(a.T)  # read through a writable alias: TF's kernel only reads
    out = np.empty((960, 640), np.float32)
    transpose.tf_transpose(a.T, out)
    assert np.array_equal(out, a.T) and not a.flags.writeable


def test_a_fresh_transposed_copy_is_aligned_writable_and_owns_its_values():
    a = aligned_empty((700, 800), np.float32)
    a[...] = np.random.default_rng(1).standard_normal(a.shape)
    a.flags.writeable = False
    copy = transpose.transposed(a.T)
    assert np.array_equal(copy, a.T) and copy.flags.c_contiguous and copy.flags.writeable
    assert copy.ctypes.data % 64 == 0 and not np.may_share_memory(copy, a)
    copy[0, 0] += 1  # the copy's memory is its own (TensorFlow's result when TF is loaded)
    assert copy[0, 0] != a[0, 0]
    assert contiguous(a.T).ctypes.data % 64 == 0


def _counted(monkeypatch, used: list[str]) -> None:
    """Record which of the fresh-copy kernels makes each copy."""
    for name in ("_tf_kept", "_torch_fresh", "_torch_one_core_fresh"):
        real = getattr(transpose, name)
        monkeypatch.setattr(
            transpose, name, lambda a, *more, _r=real, _n=name: (used.append(_n), _r(a, *more))[1]
        )


def test_copies_made_alongside_other_work_race_apart_from_copies_made_alone(monkeypatch):
    """A save's helper thread transposes beside the file writes, where the kernels'
    speeds differ from their speeds alone (TensorFlow's lost to torch's beside
    writes on an AVX2 VM, and won on an AVX-512 one): the two kinds of copy are
    timed and decided apart, torch's copies beside the writes are made on one
    core, and every copy is right."""
    needs("torch")
    needs_target("keras")  # TensorFlow is loaded, and takes this array
    import torch  # noqa: F401

    monkeypatch.setattr(transpose, "_FRESH", transpose.Race())
    monkeypatch.setattr(transpose, "_ALONGSIDE", transpose.Race())
    used: list[str] = []
    _counted(monkeypatch, used)
    # Copies made alone were timed already, and TensorFlow's won.
    for _ in range(transpose.SAMPLES):
        for kernel, seconds in ((transpose._tf_kept, 0.0), (transpose._torch_fresh, 0.005)):
            transpose._FRESH.run([kernel], 1, lambda k, s=seconds: time.sleep(s))
    a = aligned_empty((1024, transpose.RACE_FROM // 1024), np.float32)
    a[...] = np.random.default_rng(3).standard_normal(a.shape)
    alone = transpose.transposed(a.T)
    assert used == ["_tf_kept"]  # decided: no kernel is timed again
    beside = [contiguous(a.T, alongside=True) for _ in range(2 * transpose.SAMPLES)]
    # Beside other work nothing was timed yet: each kernel makes its samples.
    one_core = ["_torch_one_core_fresh"] * transpose.SAMPLES
    assert sorted(used[1:]) == ["_tf_kept"] * transpose.SAMPLES + one_core
    assert transpose._ALONGSIDE.winner([transpose._tf_kept, transpose._torch_one_core_fresh]) is not None
    for copy in [alone, *beside]:
        assert np.array_equal(copy, a.T) and copy.ctypes.data % 64 == 0 and copy.flags.writeable


@pytest.mark.parametrize("torch_loaded", [True, False])
def test_a_copy_made_alongside_without_tensorflow_uses_torch_on_one_core_else_the_tiles(
    torch_loaded, monkeypatch
):
    used: list[str] = []
    for name in ("torch_copy", "torch_copy_one_core", "tiled"):
        real = getattr(transpose, name)
        monkeypatch.setattr(transpose, name, lambda a, out, _r=real, _n=name: (used.append(_n), _r(a, out)))
    monkeypatch.setattr(
        transpose, "_torch_one_core_fresh", transpose._fresh_by(transpose.torch_copy_one_core)
    )
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    if torch_loaded:
        needs("torch")
        import torch  # noqa: F401
    else:
        monkeypatch.delitem(sys.modules, "torch", raising=False)
    a = aligned_empty((700, 800), np.float32)
    a[...] = np.random.default_rng(3).standard_normal(a.shape)
    copy = contiguous(a.T, alongside=True)
    assert np.array_equal(copy, a.T) and copy.ctypes.data % 64 == 0
    assert used == ["torch_copy_one_core" if torch_loaded else "tiled"]
    assert np.array_equal(contiguous(a.T), a.T)  # alone: on all cores
    assert used[1:] == ["torch_copy" if torch_loaded else "tiled"]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kernel", ["torch", "bands"])
def test_a_large_contiguous_copy_runs_on_all_cores_bit_for_bit(kernel, dtype, monkeypatch):
    if kernel == "torch":
        needs("torch")
        import torch  # noqa: F401
    else:
        monkeypatch.delitem(sys.modules, "torch", raising=False)  # numpy's bands only
    n = transpose.PARALLEL_BYTES // np.dtype(dtype).itemsize + 13  # not a multiple of the bands
    a = (np.random.default_rng(2).standard_normal(n) * 100).astype(dtype).reshape(-1, 1)
    out = np.zeros_like(a)
    transpose.flat_copy(a, out)
    assert out.tobytes() == a.tobytes()


def test_the_kernels_of_loaded_frameworks_come_first():
    needs("torch")
    import torch  # noqa: F401

    loaded = [transpose.torch_copy]
    if "tensorflow" in sys.modules:
        loaded.append(transpose.tf_transpose)
    # torch's first, until the race between the two (earlier large copies) has decided
    assert transpose.fastest() is (transpose._INTO.winner(loaded) or loaded[0])
    a = np.arange(800 * 700, dtype="float32").reshape(800, 700)
    assert np.array_equal(contiguous(a.T), a.T)
    reversed_rows = a[::-1].T  # negative strides: neither framework reads them, the tiles do
    assert np.array_equal(contiguous(reversed_rows), reversed_rows)


def _in_a_process(imports: str) -> list[str]:
    """In a fresh process that imports ``imports`` only: the kernel `copy` tries
    first, after transposing an aligned and an unaligned array correctly, and the
    frameworks then loaded."""
    code = (
        f"import sys, numpy as np\n{imports}\n"
        "from unified_params._core import transpose\n"
        "from unified_params._core.layouts import aligned_empty, contiguous\n"
        "a = aligned_empty((600, 700), np.float32)\n"
        "a[...] = np.arange(a.size, dtype=np.float32).reshape(a.shape)\n"
        "assert np.array_equal(contiguous(a.T), a.T) and np.array_equal(contiguous(a[1:].T), a[1:].T)\n"
        "loaded = [m for m in ('torch', 'paddle', 'tensorflow', 'jax') if m in sys.modules]\n"
        "print(transpose.fastest().__name__, ','.join(loaded) or '-')\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    return ran.stdout.split()


def test_torch_kernel_is_chosen_when_tensorflow_is_not_loaded():
    needs("torch")
    assert _in_a_process("import torch") == ["torch_copy", "torch"]


def test_tensorflow_kernel_is_chosen_when_torch_is_not_loaded():
    needs_target("keras")
    kernel, loaded = _in_a_process("import paddle, tensorflow")  # tensorflow may load jax
    assert kernel == "tf_transpose" and "torch" not in loaded.split(",")


def test_no_framework_is_imported_to_transpose():
    assert _in_a_process("") == ["tiled", "-"]


def test_the_faster_kernel_on_this_machine_wins_the_race(monkeypatch):
    """Where two frameworks' kernels take a large array, the first copies time each
    (`SAMPLES` apiece) and the faster makes the rest; every copy is right."""
    calls: list[str] = []

    def slow(array, out):
        calls.append("slow")
        time.sleep(0.02)
        np.copyto(out, array)

    def fast(array, out):
        calls.append("fast")
        np.copyto(out, array)

    monkeypatch.setattr(transpose, "_INTO", transpose.Race())
    monkeypatch.setattr(transpose, "_loaded", lambda: [(slow, lambda a: True), (fast, lambda a: True)])
    a = np.arange(transpose.RACE_FROM, dtype="float32").reshape(1024, -1)
    assert transpose.fastest() is slow  # nothing timed yet: the order the module gives
    for _ in range(6):
        out = np.empty_like(a.T)
        transpose.copy(a.T, out)
        assert np.array_equal(out, a.T)
    timed = 2 * transpose.SAMPLES
    assert sorted(calls[:timed]) == ["fast"] * transpose.SAMPLES + ["slow"] * transpose.SAMPLES
    assert calls[timed:] == ["fast"] * (6 - timed) and transpose.fastest() is fast
    small = np.arange(16.0, dtype="float32").reshape(4, 4)
    transpose.copy(small.T, np.empty((4, 4), "float32"))  # below RACE_FROM: the module's order
    assert calls[-1] == "slow"


def test_what_a_kernel_needs_before_its_work_is_not_timed():
    """A kernel whose memory takes long to make ready (new pages) but which copies
    faster wins: the race times kernels, not what `before` prepares."""
    race = transpose.Race()

    def steady():
        time.sleep(0.004)

    def quick():
        pass

    def before(kernel):
        if kernel is quick:
            time.sleep(0.02)  # its memory's first touch

    for _ in range(2 * transpose.SAMPLES + 1):
        race.run([steady, quick], 1, lambda kernel: kernel(), before)
    assert race.winner([steady, quick]) is quick


def test_torch_fresh_copies_are_timed_into_memory_whose_pages_exist(monkeypatch):
    """When TensorFlow's and torch's kernels race for fresh copies, each of torch's
    timed copies goes into memory touched beforehand (a recycled block has its
    pages; a new one's faults are the memory's cost), and every copy is right."""
    needs("torch")
    needs_target("keras")
    import torch  # noqa: F401

    touched: list[int] = []
    real = transpose.touch_pages
    monkeypatch.setattr(transpose, "touch_pages", lambda a: (touched.append(a.ctypes.data), real(a))[1])
    monkeypatch.setattr(transpose, "_FRESH", transpose.Race())
    a = aligned_empty((1024, transpose.RACE_FROM // 1024), np.float32)
    a[...] = np.random.default_rng(4).standard_normal(a.shape)
    copies = [transpose.transposed(a.T) for _ in range(2 * transpose.SAMPLES + 2)]
    assert all(np.array_equal(c, a.T) for c in copies)
    assert len(touched) == transpose.SAMPLES  # torch's samples only; none once the race is decided
    assert set(touched) <= {c.ctypes.data for c in copies}  # the touched memory is the copy's own
