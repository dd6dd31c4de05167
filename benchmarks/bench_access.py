"""Collect-all and path look-ups against each framework's own calls, same run.

Model: a Sequential of 1,000 x scale Linear(8, 8) layers (2,000 x scale
parameter tensors). Native baselines: ``named_parameters()`` (torch, paddle),
``weights`` (Keras) and ``nnx.state(model, nnx.Param)`` (Flax NNX) for
collect-all; ``get_parameter`` (torch, paddle) for look-ups, for Flax NNX the
walk ``get_parameter`` does (each key of the native path an attribute or an
index), and for Keras, which has no look-up by path, a dict built from
``weights`` and then read (both timed). Look-ups: 1,000 x scale random paths.
Keras runs on TensorFlow here and on JAX and torch in a process of its own
each (Keras chooses its engine at import): rows ``keras-jax``, ``keras-torch``.

    .venv/bin/python benchmarks/bench_access.py [--scales 1,4,16] [--json rows.jsonl]
"""

from __future__ import annotations

import functools
import gc
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))

import paddle  # noqa: F401,E402  (paddle before tensorflow)
from harness import Row, arguments, best_times, emit  # noqa: E402

import unified_params as up  # noqa: E402

BACKENDS = ("torch", "keras", "paddle", "flax")
#: Keras' other engines, each measured in a process of its own.
KERAS_ENGINES = ("jax", "torch")
#: Set in such a process: the engine it measures Keras on.
ENGINE = "UP_BENCH_KERAS_ENGINE"
TARGETS = {"first": 2.0, "repeated": 1.05, "lookups": 1.5}


def native_calls(backend: str, model, paths: list[str]):
    """(collect-all, look-ups) as a user of the framework writes them."""
    if backend == "keras":
        by_path = {p: model.layers[int(p.split(".")[0])] for p in paths}
        keys = [f"{by_path[p].name}/{'kernel' if p.endswith('weight') else 'bias'}" for p in paths]

        def lookups() -> list:
            weights = {v.path: v for v in model.weights}
            return [weights[k] for k in keys]

        return (lambda: model.weights), lookups
    if backend == "flax":
        from flax import nnx

        names = {"weight": "kernel", "bias": "bias"}
        native = [f"layers.{p.split('.')[0]}.{names[p.split('.')[1]]}" for p in paths]
        return (lambda: nnx.state(model, nnx.Param)), (lambda: [_walk(model, p) for p in native])
    return (lambda: list(model.named_parameters())), (lambda: [model.get_parameter(p) for p in paths])


def _walk(model, path: str):
    """What ``get_parameter`` does, for a Flax NNX model: each key an attribute or an index."""
    return functools.reduce(lambda node, key: node[int(key)] if key.isdigit() else getattr(node, key),
                            path.split("."), model)  # fmt: skip


def measure(backend: str, scale: int, layers: int, rng: random.Random, label: str = "") -> list[Row]:
    n = layers * scale
    model = up.spec.Sequential(*[up.spec.Linear(8, 8) for _ in range(n)]).build(backend)
    paths = [f"{rng.randrange(n)}.{rng.choice(['weight', 'bias'])}" for _ in range(n)]
    collect, lookups = native_calls(backend, model, paths)
    view = up.wrap(model)
    view.params(), view.params()  # a view keeps its walk from the second call on
    assert all(view[q].native is w for q, w in zip(paths, lookups(), strict=True))  # same answers
    size = f"{2 * n:,} tensors"
    cases = [
        ("collect-all, first call", "first", lambda: up.wrap(model).params(), collect),
        ("collect-all, repeated", "repeated", view.params, collect),
        ("random path look-ups (1,000 x scale)", "lookups", lambda: [view[p] for p in paths], lookups),
    ]
    rows = []
    label = label or backend
    native_name = {"torch": "named_parameters / get_parameter", "paddle": "named_parameters / get_parameter",
                   "keras": "weights / dict from weights",
                   "flax": "nnx.state / attribute walk"}[backend]  # fmt: skip
    for operation, case, ours, native in cases:
        times = best_times({"native": native, "ours": ours})  # in turn: the same spells of the VM
        t_native, t_ours = times["native"], times["ours"]
        target = TARGETS[case]
        rows.append(
            Row(operation, label, scale, size, t_ours, t_native, native_name, None, f"<= {target}x",
                t_ours / t_native <= target)
        )  # fmt: skip

    gc.collect()
    return rows


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    import keras  # noqa: F401  (after paddle)

    rng = random.Random(0)
    layers = 50 if args.tiny else 1000
    engine = os.environ.get(ENGINE)
    if engine:  # Keras on another engine: this process measures it alone
        rows = [
            row for scale in args.scales for row in measure("keras", scale, layers, rng, f"keras-{engine}")
        ]
        emit(rows, args)
        return
    rows = [
        row for backend in BACKENDS for scale in args.scales for row in measure(backend, scale, layers, rng)
    ]
    emit(rows, args)
    for engine in KERAS_ENGINES:
        env = {**os.environ, "KERAS_BACKEND": engine, ENGINE: engine}
        subprocess.run([sys.executable, *sys.argv], env=env, check=True)


if __name__ == "__main__":
    main()
