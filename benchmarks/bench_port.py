"""Porting throughput and memory: ``up.port`` of a >=1 GB float32 model between
frameworks, against a memcpy of the same bytes measured in the same run.

Prints, per direction: time, throughput as a ratio to memcpy (target >= 0.5)
and peak extra resident memory over the largest tensor (target <= 2).

    .venv/bin/python benchmarks/bench_port.py [--layers 16 --width 4096]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import paddle  # noqa: F401,E402  (paddle before tensorflow)
from _measure import measure, mib  # noqa: E402

import unified_params as up  # noqa: E402


def build(backend: str, kind: str, layers: int, width: int):
    """Linear layers need a transpose between torch and Keras/Paddle; embedding
    tables have one layout everywhere (the zero-copy path)."""
    if kind == "linear":
        spec = up.spec.Sequential(*[up.spec.Linear(width, width) for _ in range(layers)])
    else:
        spec = up.spec.Sequential(*[up.spec.Embedding(width * 16, width // 16) for _ in range(layers)])
    return spec.build(backend)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--directions", default="torch>paddle,torch>keras,keras>torch")
    parser.add_argument("--kinds", default="linear,embedding")
    args = parser.parse_args()
    import keras  # noqa: F401  (after paddle)

    for kind in args.kinds.split(","):
        run(kind, args)


def run(kind: str, args: argparse.Namespace) -> None:
    from unified_params._core.layouts import contiguous

    total = args.layers * (args.width * args.width + (args.width if kind == "linear" else 0)) * 4
    largest = args.width * args.width * 4
    blocks = [
        np.random.default_rng(k).random(args.width * args.width, dtype=np.float32) for k in range(args.layers)
    ]
    targets = [np.empty_like(b) for b in blocks]

    def memcpy() -> None:
        for a, b in zip(blocks, targets, strict=True):
            np.copyto(b, a)

    t_copy, _ = measure(memcpy)
    square = [b.reshape(args.width, args.width) for b in blocks]
    t_transpose, _ = measure(lambda: [contiguous(b.T) for b in square])
    for held in (blocks, targets, square):
        held.clear()
    gc.collect()
    shape = (
        f"Linear({args.width}, {args.width})"
        if kind == "linear"
        else f"Embedding({args.width * 16}, {args.width // 16})"
    )
    print(f"\nmodel: {args.layers} x {shape}, {mib(total)} float32, largest tensor {mib(largest)}")
    print(
        f"memcpy of the same bytes: {t_copy:.3f}s ({total / t_copy / 2**30:.2f} GiB/s); "
        f"a tiled transpose of them: {t_transpose:.3f}s ({t_copy / t_transpose:.2f}x memcpy)"
    )
    print(f"{'direction':<16}{'time':>9}{'GiB/s':>8}{'vs memcpy':>11}{'peak extra':>14}{'/ largest':>11}")
    models: dict[str, object] = {}
    for direction in args.directions.split(","):
        src_name, dst_name = direction.split(">")
        for name in (src_name, dst_name):
            if name not in models:
                models[name] = build(name, kind, args.layers, args.width)
                up.initialize(models[name], up.init.Normal(0, 0.02), seed=0)
        src, dst = models[src_name], models[dst_name]
        gc.collect()
        elapsed, extra = measure(lambda s=src, d=dst: up.port(s, d), repeat=2)
        print(
            f"{direction:<16}{elapsed:>8.3f}s{total / elapsed / 2**30:>8.2f}{t_copy / elapsed:>10.2f}x"
            f"{mib(extra):>14}{extra / largest:>10.2f}x"
        )
    print("targets: throughput >= 0.5x memcpy; peak extra <= 2x the largest tensor")
    models.clear()
    gc.collect()


if __name__ == "__main__":
    main()
