"""Run every case of ``tests.distributed.cases`` on two gloo processes (one job).

``UP_DISTRIBUTED_CASES=name,name`` runs only those cases.

``python -m tests.distributed.launch OUT_DIR`` writes ``OUT_DIR/rank<r>.json``:
case name -> ``null`` (passed) or the failure's traceback. A collective that
one rank never reaches times out (``TIMEOUT``) instead of hanging the run.
"""

from __future__ import annotations

import datetime
import faulthandler
import json
import os
import socket
import sys
import tempfile
import traceback
from pathlib import Path

WORLD = 2
TIMEOUT = datetime.timedelta(seconds=60)
#: A case's record while it runs: what is left when its process dies in it.
DIED = "the process died in this case"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker(rank: int, port: int, out: str, shared: str) -> None:
    faulthandler.enable()  # a crash prints every thread's Python stack to the launch's output
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch.distributed as dist

    from tests.distributed import cases

    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=TIMEOUT)
    results: dict[str, str | None] = {}
    record = Path(out, f"rank{rank}.json")
    chosen = [c for c in os.environ.get("UP_DISTRIBUTED_CASES", "").split(",") if c]
    for name, case in cases.CASES.items():
        if chosen and name not in chosen:
            continue
        # Written before each case: if a rank dies (a collective one rank left
        # after a failed assertion aborts gloo), the record names the case.
        record.write_text(json.dumps({**results, name: DIED}, indent=1))
        folder = Path(shared) / name
        folder.mkdir(exist_ok=True)
        try:
            case(cases.Context(rank, WORLD, folder))
            results[name] = None
        except BaseException:
            results[name] = traceback.format_exc()
            print(f"rank {rank}, {name}:\n{results[name]}", file=sys.stderr, flush=True)
        dist.barrier()  # the next case starts together (and finds its folder)
    record.write_text(json.dumps(results, indent=1))
    dist.destroy_process_group()


def main(out: str) -> None:
    import torch.multiprocessing as mp

    Path(out).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as shared:
        mp.spawn(worker, args=(free_port(), out, shared), nprocs=WORLD)


if __name__ == "__main__":
    main(sys.argv[1])
