"""``up.save`` / ``up.load`` against each framework's own way to save and load weights.

Model: 4 x scale Linear(2048, 2048) float32 layers (64 MiB x scale; 16x is
1 GiB). Baselines, same run, same folder:

- torch: ``safetensors.torch.save_file(model.state_dict())`` and
  ``model.load_state_dict(safetensors.torch.load_file())``; target <= 1.1x;
- Keras: ``model.save_weights`` / ``model.load_weights`` (.weights.h5); target <= 1.0x;
- paddle: ``paddle.save(model.state_dict())`` and
  ``model.set_state_dict(paddle.load())``; target <= 1.0x.

Keras and paddle keep ``(in, out)`` kernels, so their saves transpose every
kernel into torch's layout: a second row compares each with the fastest
transposing kernel of the process over as many kernels of the same size
(``bench_transpose.bound_calls``), the machine's bound; target: at least 0.8x
its throughput. A third row compares every save with writing the same bytes,
already contiguous in memory, to a new file in the same folder renamed over
the last one: the file system's floor for a save that never leaves a torn
file (on tmpfs, most of it is the kernel handing out new pages). Every call
and its baselines run in turn, three rounds.

Targets apply from 1 GB. Files go to a tmpfs folder (``/dev/shm``) when there
is one: on this project's VMs, writes to disk vary threefold from run to run
with the kernel's write-back, which would swamp the difference between two
serialisers. There, the baselines return once the bytes are in memory, and so
does ``up.save(durable=False)``, which the targets compare; the default
``up.save`` (durable) also flushes to the disk, shown on its own row (a no-op
on tmpfs, measured on disk with ``--folder``). Every timed run starts after
an ``os.sync()``.

    .venv/bin/python benchmarks/bench_checkpoint.py [--scales 1,4,16] [--json rows.jsonl]
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

import paddle  # noqa: E402  (paddle before tensorflow)
from bench_transpose import bound_calls  # noqa: E402
from harness import Row, arguments, emit, in_turn, mib  # noqa: E402

import unified_params as up  # noqa: E402

WIDTH = 2048
TARGETS = {"torch": 1.1, "keras": 1.0, "paddle": 1.0}
BASELINES = {
    "torch": "safetensors save_file / load_file + load_state_dict",
    "keras": "save_weights / load_weights (h5)",
    "paddle": "paddle.save / paddle.load + set_state_dict",
}


def native(backend: str, model, folder: str):
    """(save, load) as the framework itself does them."""
    if backend == "torch":
        from safetensors.torch import load_file, save_file

        path = os.path.join(folder, "native.safetensors")
        return (lambda: save_file(model.state_dict(), path)), (lambda: model.load_state_dict(load_file(path)))
    if backend == "keras":
        path = os.path.join(folder, "native.weights.h5")
        return (lambda: model.save_weights(path)), (lambda: model.load_weights(path))
    path = os.path.join(folder, "native.pdparams")
    return (lambda: paddle.save(model.state_dict(), path)), (lambda: model.set_state_dict(paddle.load(path)))


def run(backend: str, scale: int, layers: int, folder: str) -> list[Row]:
    model = up.spec.Sequential(*[up.spec.Linear(WIDTH, WIDTH) for _ in range(layers * scale)]).build(backend)
    up.initialize(model, up.init.Normal(0, 0.02), seed=0)
    total = sum(p.size * 4 for p in up.wrap(model).params().values())
    path = os.path.join(folder, "ours.safetensors")
    save, load = native(backend, model, folder)
    ours = {
        "save": lambda: up.save(model, path, progress=False, durable=False),
        "save, durable (fsync)": lambda: up.save(model, path, progress=False),
        "load": lambda: up.load(model, path, progress=False),
    }
    theirs = {"save": "native save", "save, durable (fsync)": "native save", "load": "native load"}
    calls = {"native save": save, "native load": load, **ours, "write the bytes": _writer(model, folder)}
    if backend != "torch":  # every kernel transposed: the machine's bound
        calls.update(bound_calls(WIDTH, layers * scale))
    # Rounds of every call, so each shares the VM's spells with its baseline.
    times = in_turn(calls, repeat=3, before=os.sync)
    rows = []
    for op in ours:
        (t_native, m_native), (t_ours, m_ours) = times[theirs[op]], times[op]
        big = total >= 1e9 and "durable" not in op
        target = TARGETS[backend]
        rows.append(
            Row(f"{op} a checkpoint", backend, scale, mib(total), t_ours, t_native, BASELINES[backend],
                m_ours, f"<= {target}x" if big else "", (t_ours / t_native <= target) if big else None,
                m_native)
        )  # fmt: skip
        if op == "save":
            t_write = times["write the bytes"][0]
            rows.append(
                Row("save a checkpoint (vs writing its bytes)", backend, scale, mib(total), t_ours, t_write,
                    "the same bytes, in memory already, written to a new file renamed over the last", m_ours,
                    "", None)
            )  # fmt: skip
        if op == "save" and backend != "torch":
            t_kernel = min(t for name, (t, _) in times.items() if name.startswith("kernel "))
            rows.append(
                Row("save a checkpoint (vs transposing)", backend, scale, mib(total), t_ours, t_kernel,
                    "the fastest transposing kernel over the same kernels", m_ours,
                    ">= 0.8x fastest kernel" if big else "", (t_ours / t_kernel <= 1.25) if big else None)
            )  # fmt: skip

    gc.collect()
    return rows


def _writer(model, folder: str):
    """The file system's floor for a save of ``model`` that never leaves a
    torn file, as this library's saves do: its values, already contiguous in
    memory, written to a new file in the same folder, then renamed over the
    last one (the new file takes pages other than the old one's: see the
    page's notes on saves)."""
    blobs = [p.numpy() for p in up.wrap(model).params().values()]
    path = os.path.join(folder, "bytes.bin")

    def write() -> None:
        with open(path + ".new", "wb") as f:
            for blob in blobs:
                f.write(memoryview(blob.reshape(-1).view("uint8")))
        os.replace(path + ".new", path)

    return write


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    import keras  # noqa: F401  (after paddle)

    layers = 1 if args.tiny else 4
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 6 * 2**30 else None
    folder = tempfile.mkdtemp(prefix="up-bench-", dir=args.folder or shm)
    print(f"checkpoint folder: {folder} ({'tmpfs' if folder.startswith('/dev/shm') else 'disk'})")
    try:
        rows = [
            r for b in ("torch", "keras", "paddle") for s in args.scales for r in run(b, s, layers, folder)
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    emit(rows, args)


if __name__ == "__main__":
    main()
