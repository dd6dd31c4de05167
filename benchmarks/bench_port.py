"""``up.port`` between frameworks against a memcpy of the same bytes, same run.

Models, 1 x scale layers (64 MiB x scale float32; 16x is 1 GiB):

- ``Embedding(65536, 256)``: one layout everywhere, so porting is a copy;
- ``Linear(4096, 4096)``: torch keeps ``(out, in)``, Keras and paddle
  ``(in, out)``, so every kernel is transposed on the way.

Directions: torch -> paddle, torch -> keras, keras -> torch. The baseline of
the Embedding rows is ``np.copyto`` of the same bytes (target from 1 GB: at
least 0.9x memcpy throughput); of the Linear rows, the fastest transposing
kernel of the process run over as many kernels of the same size
(`bench_transpose.bound_calls`), the machine's bound for a copy that
transposes (target: at least 0.8x its throughput). A second Embedding row
compares each port with the least work its guarantee needs, done by the same
kernels with none of the port's bookkeeping: every source value checked
(finite, two at a time, as a load checks), then copied on all cores
(`flat_copy`); it has no target and shows what is left above that floor.
Baselines and ports run in turn, three rounds of each, best time kept. Both:
peak extra memory at most the largest tensor (a port without a check input
keeps no copy of the destination), give or take `SLACK`: the peak is the
growth of the process's anonymous memory, sampled every millisecond, so it
also counts the page rounding of a new block and whatever else the process
allocates meanwhile (measured 8-61 KiB over the largest tensor for the ports
that hold one).

    .venv/bin/python benchmarks/bench_port.py [--scales 1,4,16] [--json rows.jsonl]
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import paddle  # noqa: F401,E402  (paddle before tensorflow)
from bench_transpose import bound_calls  # noqa: E402
from harness import Row, arguments, emit, in_turn, mib  # noqa: E402

import unified_params as up  # noqa: E402
from unified_params._core.parallel import run_all  # noqa: E402
from unified_params._core.transpose import flat_copy  # noqa: E402
from unified_params._core.values import all_finite  # noqa: E402

DIRECTIONS = ("torch>paddle", "torch>keras", "keras>torch")
#: Bytes of peak memory beyond the largest tensor that still count as "at most the largest".
SLACK = 1 << 20


def layer(kind: str, tiny: bool):
    if kind == "linear":
        n = 256 if tiny else 4096
        return (lambda: up.spec.Linear(n, n)), n * n * 4, f"Linear({n}, {n})"
    rows, dim = (4096, 16) if tiny else (65536, 256)
    return (lambda: up.spec.Embedding(rows, dim)), rows * dim * 4, f"Embedding({rows}, {dim})"


def run(kind: str, scale: int, tiny: bool) -> list[Row]:
    make, largest, name = layer(kind, tiny)
    models: dict[str, object] = {}
    for backend in ("torch", "keras", "paddle"):
        models[backend] = up.spec.Sequential(*[make() for _ in range(scale)]).build(backend)
        up.initialize(models[backend], up.init.Normal(0, 0.02), seed=0)
    total = sum(p.size * 4 for p in up.wrap(models["torch"]).params().values())
    big = total >= 1e9
    # The least work a port needs, where it differs from the baseline.
    floor: dict[str, Callable[[], None]] = {}
    if kind == "linear":  # every kernel is transposed: the bound is the fastest transposing kernel
        baselines = bound_calls(256 if tiny else 4096, scale)
        baseline, bound, target = (
            "the fastest transposing kernel over the same kernels",
            1.25,
            ">= 0.8x fastest kernel",
        )
    else:
        source = [np.random.default_rng(k).random(largest // 4, dtype=np.float32) for k in range(scale)]
        copies = [np.empty_like(b) for b in source]
        baselines = {"memcpy": lambda: [np.copyto(b, a) for a, b in zip(source, copies, strict=True)]}
        floor = {"check, then copy": _check_then_copy(source, copies)}
        baseline, bound, target = "np.copyto of the same bytes", 1 / 0.9, ">= 0.9x memcpy"
    ports = {}
    for direction in DIRECTIONS:
        src, dst = (models[b] for b in direction.split(">"))
        ports[direction] = lambda s=src, d=dst: up.port(s, d)
    gc.collect()
    # Rounds of every call: the same spells of the VM.
    times = in_turn({**baselines, **floor, **ports}, repeat=3)
    t_base = min(times[b][0] for b in baselines)
    rows = []
    for direction in DIRECTIONS:
        t_ours, peak = times[direction]
        met = t_ours / t_base <= bound and peak <= largest + SLACK
        rows.append(
            Row(f"port {name} layers", direction.replace(">", " -> "), scale, mib(total), t_ours, t_base,
                baseline, peak, f"{target}, peak <= largest" if big else "", met if big else None)
        )  # fmt: skip
        if floor:
            rows.append(
                Row(f"port {name} layers (vs checking, then copying)", direction.replace(">", " -> "), scale,
                    mib(total), t_ours, times["check, then copy"][0],
                    "every value checked, then copied on all cores", peak, "", None)
            )  # fmt: skip
    models.clear()
    baselines.clear()
    gc.collect()
    return rows


def _check_then_copy(source: list[np.ndarray], copies: list[np.ndarray]) -> Callable[[], None]:
    """The least a port of ``source`` needs: every value checked, then copied."""

    def check(array: np.ndarray) -> None:
        if not all_finite(array):
            raise ValueError("a benchmark value is not finite")

    def run() -> None:
        run_all(check, source)
        for array, out in zip(source, copies, strict=True):
            flat_copy(array, out)

    return run


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    import keras  # noqa: F401  (after paddle)

    rows = [r for kind in ("embedding", "linear") for s in args.scales for r in run(kind, s, args.tiny)]
    emit(rows, args)


if __name__ == "__main__":
    main()
