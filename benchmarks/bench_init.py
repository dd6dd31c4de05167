"""Seeded ``up.initialize`` against ``torch.nn.init`` on the same >=100M-parameter torch model.

Prints both times from one run and their ratio (target: at most 1.5x), and the
peak extra resident memory of each, next to the largest tensor's size.

    .venv/bin/python benchmarks/bench_init.py [--layers 10 --width 3200]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import paddle  # noqa: F401,E402  (paddle before tensorflow, as everywhere in the project)
import torch  # noqa: E402
from _measure import measure, mib  # noqa: E402

import unified_params as up  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--width", type=int, default=3200)
    args = parser.parse_args()
    model = torch.nn.Sequential(*[torch.nn.Linear(args.width, args.width) for _ in range(args.layers)])
    count = sum(p.numel() for p in model.parameters())
    largest = max(p.numel() * p.element_size() for p in model.parameters())

    def native() -> None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("weight"):
                    torch.nn.init.normal_(p, 0.0, 0.02)
                else:
                    torch.nn.init.zeros_(p)

    def ours() -> None:
        up.initialize(model, {"*.weight": up.init.Normal(0.0, 0.02), "*.bias": up.init.Zeros()}, seed=0)

    ours()  # warm-up: imports, thread pool
    t_native, m_native = measure(native)
    t_ours, m_ours = measure(ours)
    print(
        f"model: {args.layers} x Linear({args.width}, {args.width}) = {count / 1e6:.1f}M parameters, "
        f"largest tensor {mib(largest)}; torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}"
    )
    print(f"{'operation':<34}{'time':>9}{'peak extra RSS':>18}")
    print(f"{'torch.nn.init normal_/zeros_':<34}{t_native:>8.3f}s{mib(m_native):>18}")
    print(f"{'up.initialize(seed=0)':<34}{t_ours:>8.3f}s{mib(m_ours):>18}")
    print(
        f"ratio up/native: {t_ours / t_native:.2f}x (target <= 1.5x); "
        f"peak extra / largest tensor: {m_ours / largest:.2f}"
    )


if __name__ == "__main__":
    main()
