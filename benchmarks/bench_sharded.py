"""Sharded save and load (torch FSDP2, 2 gloo processes) against torch.distributed.checkpoint.

Model: 8 x scale Linear(1024, 1024) float32 layers (32 MiB x scale; 16x is
512 MiB), each ``fully_shard``-ed over 2 processes (``Shard(0)``: each rank
holds half of every weight). Same run, same tmpfs folder when there is one:

- ours: ``up.save(model, file)`` (every rank writes its blocks into one
  safetensors file) and ``up.load(model, file)`` (every rank reads its blocks);
- baseline: ``dcp.save(get_model_state_dict(model))`` (a folder of one file per
  rank) and ``dcp.load`` + ``set_model_state_dict``.

Both flush to the disk (``up.save``'s default ``durable``, DCP's ``sync_files``).
Times are rank 0's, best of 3; *peak extra* is rank 0's anonymous memory above
the level before the call. There is no target: the row says what the single,
framework-neutral file costs against torch's own sharded format.

    .venv/bin/python benchmarks/bench_sharded.py [--scales 1,4,16] [--json rows.jsonl]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(__file__))

WIDTH = 1024
LAYERS = 8
WORLD = 2


def worker(rank: int, port: int, scales: list[int], tiny: bool, json_file: str | None, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    warnings.simplefilter("ignore")
    import torch
    import torch.distributed as dist
    from harness import Row, emit, mib
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    mesh = init_device_mesh("cpu", (WORLD,))
    width = 64 if tiny else WIDTH
    rows = []
    for scale in scales:
        model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(LAYERS * scale)])
        for layer in model:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        file = os.path.join(folder, f"model-{scale}.safetensors")
        checkpoint = os.path.join(folder, f"dcp-{scale}")
        times = _timed(model, file, checkpoint)
        size = mib(LAYERS * scale * (width * width + width) * 4)
        for operation, ours, native, baseline in (
            ("sharded save", times["ours_save"], times["dcp_save"], "dcp.save(get_model_state_dict)"),
            ("sharded load", times["ours_load"], times["dcp_load"], "dcp.load + set_model_state_dict"),
        ):
            rows.append(
                Row(
                    operation=operation,
                    backend=f"torch FSDP2, {WORLD} ranks",
                    scale=scale,
                    size=size,
                    ours=ours[0],
                    native=native[0],
                    baseline=baseline,
                    peak=ours[1],
                    target="",
                    met=None,
                    native_peak=native[1],
                )
            )
        dist.barrier()
        if rank == 0:
            os.remove(file)
            shutil.rmtree(checkpoint)
    if rank == 0:
        import argparse

        emit(rows, argparse.Namespace(json=json_file))
    dist.destroy_process_group()


def _timed(model, file: str, checkpoint: str) -> dict[str, tuple[float, int]]:
    """Time and peak memory of our save and load and DCP's, every rank together."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from harness import measure
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    import unified_params as up

    def dcp_load() -> None:
        state = get_model_state_dict(model)
        dcp.load(state, checkpoint_id=checkpoint)
        set_model_state_dict(model, state)

    calls = {
        "ours_save": lambda: up.save(model, file),
        "dcp_save": lambda: dcp.save(get_model_state_dict(model), checkpoint_id=checkpoint),
        "ours_load": lambda: up.load(model, file),
        "dcp_load": dcp_load,
    }
    times = {}
    for name, fn in calls.items():
        dist.barrier()
        fn()  # warm: first calls import and plan
        dist.barrier()
        times[name] = measure(fn, before=os.sync)
    return times


def main() -> None:
    import socket

    import torch.multiprocessing as mp
    from harness import arguments

    args = arguments(__doc__.splitlines()[0])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = args.folder or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    folder = tempfile.mkdtemp(prefix="up-bench-sharded-", dir=base)
    try:
        mp.spawn(worker, args=(port, args.scales, args.tiny, args.json, folder), nprocs=WORLD)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
