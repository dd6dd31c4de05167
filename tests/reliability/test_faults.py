"""Faults: a save killed mid-write, a full disk, many threads at once, and the
tensorflow-then-paddle import order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import unified_params as up
from tests.conformance import specs
from tests.conftest import assert_unchanged, needs, snapshot
from unified_params import spec as S

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_save_killed_mid_write_leaves_the_old_file(tmp_path):
    needs("torch")
    path = tmp_path / "model.safetensors"
    old = S.Sequential(S.Linear(4, 2)).build("torch")
    up.save(old, path)
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import torch, unified_params as up
        big = torch.nn.Sequential(*[torch.nn.Linear(4000, 4000) for _ in range(12)])  # 768 MB
        print("ready", flush=True)
        while True:
            up.save(big, {str(path)!r})
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert child.stdout.readline().strip() == b"ready"
        deadline = time.time() + 120
        while time.time() < deadline:  # wait until a temporary file is being written
            partial = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") and p.stat().st_size > 10**6]
            if partial:
                break
            time.sleep(0.01)
        assert partial, "the child never started writing"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert path.read_bytes() == before  # the old file, whole
    assert up.load(S.Sequential(S.Linear(4, 2)).build("torch"), path).ok


def test_full_disk_mid_write_keeps_the_old_file(backend, tmp_path, monkeypatch):
    from unified_params._core import safetensors_io

    model = specs.mlp().build(backend)
    path = tmp_path / "m.safetensors"
    up.save(model, path)
    before = path.read_bytes()
    real_write = safetensors_io.write

    def write_then_fail(stream, *rest):
        stream.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors_io, "write", write_then_fail)
    up.initialize(model, up.init.Ones())
    with pytest.raises(up.CheckpointError, match="No space left on device") as info:
        up.save(model, path)
    assert "previous file, if any, is unchanged" in str(info.value)
    monkeypatch.setattr(safetensors_io, "write", real_write)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_eight_threads_read_one_model_at_once(backend):
    model = specs.shared().build(backend)
    up.initialize(model, up.init.Normal(), seed=1)
    expected = (list(up.wrap(model).params()), {k: v.tobytes() for k, v in up.state_dict(model).items()})
    results, errors = [], []
    barrier = threading.Barrier(8)

    def work():
        try:
            barrier.wait()
            for _ in range(20):
                m = up.wrap(model)
                results.append((list(m.params()), {k: v.tobytes() for k, v in up.state_dict(model).items()}))
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 160 and all(r == expected for r in results)


def test_paddle_after_tensorflow_is_a_clear_error_for_the_cli():
    needs("keras")
    needs("paddle")
    code = (
        "import tensorflow, sys\n"
        "from unified_params import cli, backends\n"
        "code = cli.main(['demo', '--backends', 'paddle'])\n"
        "try:\n"
        "    backends.get_adapter('paddle')\n"
        "except Exception as err:\n"
        "    print(type(err).__name__)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "paddle cannot be imported after tensorflow" in result.stderr
    assert result.stdout.strip() == "UnsupportedError"


def test_lying_header_is_refused_without_allocating(backend, tmp_path):
    import resource
    import struct

    model = specs.mlp().build(backend)
    path = tmp_path / "liar.safetensors"
    header = b'{"0.weight":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,40000000000]}}'
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    before = snapshot(model)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(up.CheckpointError, match="40,000,000,096 but the file has 160"):
        up.load(model, path)
    assert time.perf_counter() - start < 1
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 100_000  # far from the 40 GB the header claims
    assert_unchanged(before, model)


@pytest.mark.parametrize("durable", [True, False])
def test_durable_saves_flush_file_and_folder_others_only_rename(backend, tmp_path, monkeypatch, durable):
    model = specs.mlp().build(backend)
    path = tmp_path / "m.safetensors"
    up.save(model, path)  # an old file to replace
    flushed = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: flushed.append(fd) or real_fsync(fd))
    up.initialize(model, up.init.Constant(3.0), where="*.weight", seed=0)
    up.save(model, path, durable=durable)
    assert len(flushed) == (2 if durable else 0)  # the file, then its folder
    assert [f.name for f in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left
    other = specs.mlp().build(backend)
    up.load(other, path)
    assert all((p.numpy() == 3.0).all() for k, p in up.wrap(other).params().items() if k.endswith("weight"))


@pytest.mark.parametrize("leased", [True, False], ids=["leased", "no-lease"])
def test_a_writer_waits_until_a_load_that_reads_its_file_twice_is_done(
    backend, leased, tmp_path, monkeypatch
):
    """A load that reads the file twice (once to check every value, once to
    write it) holds a read lease on it: another process that opens it for
    writing meanwhile (to cut it short and write garbage) is held back by the
    system until the load is done, and the model gets the values the load
    checked. Where no lease can be had, the load reads every value into memory
    first: the writer goes on, and the load refuses the file cut short, the
    model unchanged."""
    from unified_params._core import leases
    from unified_params._core import safetensors_io as st

    model = specs.mlp().build(backend)
    up.initialize(model, up.init.Normal(), seed=5)
    path = tmp_path / "m.safetensors"
    up.save(model, path)
    want = snapshot(model)
    up.initialize(model, up.init.Zeros())
    zeros = snapshot(model)
    if not leased:
        monkeypatch.setattr(leases, "take", lambda fd: None)
    script = textwrap.dedent(
        f"""
        import os
        print("opening", flush=True)
        f = os.open({str(path)!r}, os.O_WRONLY | os.O_TRUNC)
        os.write(f, b"garbage")
        print("written", flush=True)
        """
    )
    writer: list[subprocess.Popen] = []
    real = st.FileReader.read_into
    first = threading.Lock()  # the load reads on several threads

    def read_with_a_writer_waiting(self, view, offset, name):
        with first:
            if not writer:  # the first read of the load: start the writer, let it try to open the file
                writer.append(subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE))
                assert writer[0].stdout.readline().strip() == b"opening"
                if leased:
                    time.sleep(0.5)
                    assert writer[0].poll() is None, "the writer was not held back"
                else:
                    assert writer[0].stdout.readline().strip() == b"written"
        return real(self, view, offset, name)

    monkeypatch.setattr(st.FileReader, "read_into", read_with_a_writer_waiting)
    try:
        if leased:
            assert up.load(model, path).ok
        else:
            with pytest.raises(up.CheckpointError, match="cut short"):
                up.load(model, path)
    finally:
        writer[0].communicate(timeout=120)
    assert writer[0].returncode == 0 and path.read_bytes() == b"garbage"
    assert_unchanged(want if leased else zeros, model)
