"""Seeded ``up.initialize`` against ``torch.nn.init`` on the same torch model.

Model: 10 x Linear(w, w) with w = 800, 1600, 3200 for scales 1, 4, 16
(6.4M, 25.6M, 102.4M parameters). Native: ``normal_`` on every weight and
``zeros_`` on every bias. Target (from 100M parameters): at most 1.5x.

    .venv/bin/python benchmarks/bench_init.py [--scales 1,4,16] [--json rows.jsonl]
"""

from __future__ import annotations

import math
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import paddle  # noqa: F401,E402  (paddle before tensorflow, as everywhere in the project)
import torch  # noqa: E402
from harness import Row, arguments, emit, in_turn  # noqa: E402

import unified_params as up  # noqa: E402

LAYERS = 10
TARGET = 1.5


def run(scale: int, base_width: int) -> Row:
    width = int(base_width * math.sqrt(scale))
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(LAYERS)])
    count = sum(p.numel() for p in model.parameters())

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
    times = in_turn({"native": native, "ours": ours})  # in turn: the same spells of the VM
    (t_native, m_native), (t_ours, m_ours) = times["native"], times["ours"]
    big = count >= 100e6
    return Row(
        "seeded initialize", "torch", scale, f"{count / 1e6:.1f}M params", t_ours, t_native,
        "torch.nn.init normal_ / zeros_", m_ours, f"<= {TARGET}x" if big else "",
        (t_ours / t_native <= TARGET) if big else None, m_native,
    )  # fmt: skip


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    emit([run(scale, 100 if args.tiny else 800) for scale in args.scales], args)


if __name__ == "__main__":
    main()
