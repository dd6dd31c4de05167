"""Transposing copies: every kernel at hand against a memcpy of the same bytes, same run.

A ``(N, N)`` float32 kernel copied through its transposed view into a
preallocated C-contiguous array (what a save, load or port of a Linear
kernel does between torch's ``(out, in)`` and a channels-last framework's
``(in, out)``), at N = 2048 and 4096:

- numpy tiles: ``unified_params._core.transpose.tiled``;
- torch: ``unified_params._core.transpose.torch_copy`` (``out.copy_(a.t())`` on numpy's memory);
- paddle: ``paddle.transpose`` of a tensor over the array, then a copy into ``out``;
- tf: ``tf.transpose`` likewise.

The library uses the fastest kernel loaded in the process (torch's when torch
is imported); ``bench_port.py`` compares Linear ports against the fastest
kernel measured here.

    .venv/bin/python benchmarks/bench_transpose.py [--json rows.jsonl]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import paddle  # noqa: E402  (paddle before tensorflow)
from harness import Row, arguments, best_time, emit  # noqa: E402

from unified_params._core import transpose  # noqa: E402
from unified_params._core.layouts import aligned_empty  # noqa: E402

SIZES = (2048, 4096)


def kernels() -> dict[str, object]:
    """Each kernel copies ``view`` (the transposed view of a C-contiguous array) into ``out``."""
    import tensorflow  # noqa: F401  (its kernel)

    def paddle_kernel(view: np.ndarray, out: np.ndarray) -> None:
        base = paddle.utils.dlpack.from_dlpack(view.T)  # the contiguous array, not copied
        np.copyto(out, np.from_dlpack(paddle.transpose(base, [1, 0])))  # paddle's result, copied in

    return {
        "numpy tiles": transpose.tiled,
        "torch copy_": transpose.torch_copy,
        "paddle.transpose": paddle_kernel,
        "tf.transpose": transpose.tf_transpose,
    }


def fastest_seconds(n: int) -> float:
    """The best time of the fastest kernel for one n x n float32 transpose (for
    bench_port and bench_checkpoint): the machine's bound for a copy that transposes."""
    import tensorflow  # noqa: F401  (its kernel)

    a = aligned_empty((n, n), np.float32)
    a[...] = np.random.default_rng(0).random((n, n), dtype=np.float32)
    out = aligned_empty((n, n), np.float32)
    kernels = (transpose.tiled, transpose.torch_copy, transpose.tf_transpose)
    return min(best_time(lambda k=k: k(a.T, out)) for k in kernels)


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
