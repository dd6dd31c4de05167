"""Collect-all and path look-ups against each framework's own calls, same run.

Model: 1,000 Linear(8, 8) layers in a Sequential (2,000 parameter tensors).
Native baselines: torch ``named_parameters`` / ``get_parameter``, paddle
``named_parameters`` / a walk of ``_sub_layers``, Keras ``weights`` / a dict
built from ``weights``. Prints best-of-5 times and ratios.

    .venv/bin/python benchmarks/bench_access.py
"""

from __future__ import annotations

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import paddle  # noqa: F401,E402  (paddle before tensorflow)

import unified_params as up  # noqa: E402

LAYERS = 1000


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def natives(backend: str, model):
    """(collect-all, look-up of one path) as the framework itself does them."""
    if backend == "torch":
        return lambda: list(model.named_parameters()), model.get_parameter
    if backend == "paddle":

        def get(path: str):
            *keys, leaf = path.split(".")
            layer = model
            for key in keys:
                layer = layer._sub_layers[key]
            return layer._parameters[leaf]

        return lambda: list(model.named_parameters()), get
    return lambda: {v.path: v for v in model.weights}, {v.path: v for v in model.weights}.__getitem__


def measure(backend: str, rng: random.Random) -> None:
    model = up.spec.Sequential(*[up.spec.Linear(8, 8) for _ in range(LAYERS)]).build(backend)
    collect, lookup = natives(backend, model)
    view = up.wrap(model)
    paths = [f"{rng.randrange(LAYERS)}.{rng.choice(['weight', 'bias'])}" for _ in range(1000)]
    native_paths = [view[p].native.path for p in paths] if backend == "keras" else paths
    rows = [
        ("collect-all, first call", best(lambda: up.wrap(model).params(), 1), best(collect, 1)),
        ("collect-all, repeated", best(lambda: view.params()), best(collect)),
        ("1,000 random path look-ups", best(lambda: [view[p] for p in paths]),
         best(lambda: [lookup(p) for p in native_paths])),
    ]  # fmt: skip
    for name, ours, theirs in rows:
        print(f"{name:<34}{backend:<8}{ours * 1e3:>9.2f}ms{theirs * 1e3:>9.2f}ms{ours / theirs:>7.1f}x")


def main() -> None:
    import keras  # noqa: F401  (after paddle)

    rng = random.Random(0)
    print(f"model: Sequential of {LAYERS} x Linear(8, 8) = {2 * LAYERS} parameter tensors; best of 5")
    print(f"{'operation':<34}{'backend':<8}{'unified':>11}{'native':>11}{'ratio':>8}")
    for backend in ("torch", "keras", "paddle"):
        measure(backend, rng)
    print("targets: collect-all <= 1.3x (first), <= 1.05x (repeated); look-ups <= 1.5x")


if __name__ == "__main__":
    main()
