"""Transposing copies: every kernel at hand against a memcpy of the same bytes, same run.

A ``(N, N)`` float32 kernel copied through its transposed view into a
preallocated C-contiguous array (what a save, load or port of a Linear
kernel does between torch's ``(out, in)`` and a channels-last framework's
``(in, out)``), at N = 2048 and 4096:

- numpy tiles: ``unified_params._core.transpose.tiled``;
- torch: ``unified_params._core.transpose.torch_copy`` (``copy_`` from the transposed view on
  numpy's memory, in tiles on all cores), and ``torch_copy_one_core`` (the same on one core:
  what a save runs beside its writes);
- paddle: ``paddle.transpose`` of a tensor over the array, then a copy into ``out``;
- tf: ``tf.transpose`` likewise.

The library uses the fastest kernel loaded in the process; ``bench_port.py``
and ``bench_checkpoint.py`` compare Linear ports and saves against the fastest
of these kernels run over the same kernels as they move (`bound_calls`), in
turn with them.

    .venv/bin/python benchmarks/bench_transpose.py [--json rows.jsonl]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import paddle  # noqa: E402  (paddle before tensorflow)
from harness import Row, arguments, best_time, emit  # noqa: E402

from unified_params._core import transpose  # noqa: E402
from unified_params._core.layouts import aligned_empty  # noqa: E402

SIZES = (2048, 4096)


def kernels() -> dict[str, Callable[[np.ndarray, np.ndarray], None]]:
    """Each kernel copies ``view`` (the transposed view of a C-contiguous array) into ``out``."""
    import tensorflow  # noqa: F401  (its kernel)

    def paddle_kernel(view: np.ndarray, out: np.ndarray) -> None:
        base = paddle.utils.dlpack.from_dlpack(view.T)  # the contiguous array, not copied
        np.copyto(out, np.from_dlpack(paddle.transpose(base, [1, 0])))  # paddle's result, copied in

    return {
        "numpy tiles": transpose.tiled,
        "torch copy_": transpose.torch_copy,
        "torch copy_, one core": transpose.torch_copy_one_core,
        "paddle.transpose": paddle_kernel,
        "tf.transpose": transpose.tf_transpose,
    }


def bound_calls(n: int, count: int) -> dict[str, Callable[[], None]]:
    """The machine's bound for a port or save that transposes ``count`` n x n
    float32 kernels: each kernel at hand (not paddle's, slower than the tiles,
    nor torch's on one core, slower than on all)
    run over as many distinct kernels into as many outputs, the same bytes the
    port or save moves. Callers time these in turn with their own call
    (`harness.in_turn`) and take the fastest."""
    import tensorflow  # noqa: F401  (its kernel)

    rng = np.random.default_rng(0)
    sources, outs = [], []
    for _ in range(count):
        a = aligned_empty((n, n), np.float32)  # TensorFlow's kernel needs 64-byte alignment
        a[...] = rng.random((n, n), dtype=np.float32)
        sources.append(a)
        outs.append(aligned_empty((n, n), np.float32))
    chosen = {k: v for k, v in kernels().items() if k not in ("paddle.transpose", "torch copy_, one core")}

    def over_all(kernel: Callable[[np.ndarray, np.ndarray], None]) -> Callable[[], None]:
        def run() -> None:
            for a, out in zip(sources, outs, strict=True):
                kernel(a.T, out)

        return run

    return {f"kernel {name}": over_all(kernel) for name, kernel in chosen.items()}


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    import torch  # noqa: F401  (its kernel)

    rows = []
    for n in (256,) if args.tiny else SIZES:
        a = aligned_empty((n, n), np.float32)  # TensorFlow's kernels need 64-byte alignment
        a[...] = np.random.default_rng(0).random((n, n), dtype=np.float32)
        out = aligned_empty((n, n), np.float32)
        t_copy = best_time(lambda a=a, out=out: np.copyto(out, a))
        for name, kernel in kernels().items():
            kernel(a.T, out)
            assert np.array_equal(out, a.T), name
            t = best_time(lambda k=kernel, a=a, out=out: k(a.T, out))
            rows.append(Row(f"transposing copy, {name}", "-", 1, f"{n} x {n} float32", t, t_copy,
                            "np.copyto of the same bytes", None, "", None))  # fmt: skip
    emit(rows, args)
    best = min(rows, key=lambda r: r.ours / (r.native or 1))
    print(f"fastest transposing kernel here: {best.operation.split(', ')[1]} ({best.size})")


if __name__ == "__main__":
    main()
