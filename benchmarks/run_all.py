"""Run every benchmark and write docs/benchmarks.md: machine, versions, date, tables.

    make bench      # or: .venv/bin/python benchmarks/run_all.py [--tiny] [--scales 1,4]

Each script runs in its own process (paddle is imported before tensorflow in
each) and appends its rows to one JSON-lines file; this script renders them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections import defaultdict
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import Row, seconds, table  # noqa: E402

PAGE = HERE.parent / "docs" / "benchmarks.md"
SCRIPTS = (
    "bench_import.py",
    "bench_access.py",
    "bench_init.py",
    "bench_checkpoint.py",
    "bench_transpose.py",
    "bench_port.py",
    "bench_sharded.py",
)
NOTES = """\
## Why targets are missed

- **collect-all, first call** (target 2x): since the walk reads a
  container's plain layers in one adapter call (`Adapter.leaf_variables`),
  measured with `bench_access.py --scales 1,16` on 2026-12-02, a day this
  machine ran Keras' `weights` about 5x slower than in the table above:
  Keras 2.10x at 2,000 tensors and 2.78x at 32,000, keras-jax 2.01x and
  2.63x, keras-torch 2.11x and 2.56x, torch 1.20x and 1.26x, paddle 1.15x
  and 1.19x (before, the same day at 2,000 tensors: Keras 3.17x, keras-jax
  3.18x, keras-torch 3.05x, torch 1.58x, paddle 1.41x). At
  32,000 tensors a fifth of the call is the young-generation pass Python's
  collector makes over the 64,000 objects the answer keeps (a Param and a
  row per variable) once the walk's pause ends: with the collector off
  for both calls, 115-117 ms against `weights`' 54-55 ms (2.1x), with it on
  136-151 ms (2.5-2.7x). Before that change: a first call builds, for every
  parameter, a view with its canonical name, kind and layout, and a dedup
  index over every position, reading each module's children and variables in
  one pass. `named_parameters()` yields `(name, tensor)` pairs with nothing to
  translate, and Keras' `weights` concatenates lists each layer already keeps
  without reading a variable's name, so against Keras the gap is widest: a
  large model's layers are scattered in memory, and each attribute read of a
  Keras layer or variable costs about as much as the whole native listing spends
  per layer. Measured as the median of 100 interleaved pairs (after
  `gc.collect()`), 2,000 tensors: torch 1.76x, paddle 1.51x, Keras 3.1-3.2x
  (3.3-3.4x before a plain Keras layer's variables were read in one pass). At
  that size Keras' `weights` takes 0.72-0.77 ms. A bare loop that makes only
  what the answer holds, one entry and one Param per variable keyed by its
  path, with no walk, no check and no dedup, takes 1.50-1.66 ms: 2.1-2.3x of
  `weights`, so a dict of views built at once cannot meet the target on Keras.
  With the collector off for both calls, on an AVX-512 VM, at 1,000 Dense
  layers (16,000 in brackets): a loop keying a 4-field tuple per variable by
  its path takes 0.78-0.81x of `weights` (1.07x); one 4-slot object per
  variable instead, 1.29-1.31x (1.37x); this library's entry tuple and Param
  per variable, with no walk, no check and no module list, 2.30x (2.33x);
  `params()` 3.65-3.85x (3.44-3.83x). The objects the answer holds cost most
  of the gap, and a leaner walk alone cannot close it. The walk now makes one
  plain tuple per variable, holding a record its layer class's slot shares
  (name, kind, leaf), which each Param reads by index: a named tuple per
  variable was a second allocation. Best-of-7 in one process, 2,000 tensors,
  before and after: torch 1.90-1.95x to 1.51-1.67x, paddle 1.62-1.66x to
  1.39x, Keras 4.0-4.1x to 3.15-3.44x. The leanest walk measured, one such
  tuple and one Param per variable in one adapter call per layer, with no
  dedup, no module list and no checks, took 2.16-2.23x of `weights`.
  Where a first call's time goes now, at 2,000 tensors (warm, best-of-7,
  median of five rounds, in `weights`' time): the leaf read 0.80x, the rest
  of the walk 0.45x, the Params 0.62x, the rest 0.3x, of which the
  collector's pass over the lasting objects is about 0.14x (2.19x with it,
  2.05x with it off). Reading and making the rows with C-level
  `map`/`zip`/`chain` over a container's layers took 1.39x against 1.30x for
  the loops at 2,000 tensors and 1.90x against 1.83x at 8,000: the cost is
  the objects made, not the loop. Nor is it the passes: one loop over a
  container's layers that reads each layer's variable lists, makes its rows
  and Params and checks the dedup in the same pass took 2.58-3.55x against
  2.40-2.73x for the three passes at 2,000 tensors and 2.59-2.68x against
  2.56-2.80x at 32,000 (collector on, best of 200 and of 9 interleaved
  rounds, two runs each). The
  collector's pass comes once per first call, as the pause ends, over every
  object the walk left (5,000 at 2,000 tensors: 0.16 ms, 0.28x of `weights`;
  at 32,000 tensors about 11 ms, 0.33x). With that pass, a loop written for
  these Dense layers alone (each variable's name read, a tuple and a slotted
  object per variable, keyed by its path, a dedup set) took 1.55-1.60x of
  `weights` at 2,000 tensors and 1.64-2.03x at 32,000, where `params()` took
  2.38-2.63x and 2.42-2.76x. Nor does one object per variable help in the
  real walk: rows made as slotted objects that then serve as the Params (no
  tuple per variable, one object fewer for the collector) took 2.25-2.40x
  against 2.22-2.61x for the tuple and Param at 2,000 tensors, and
  3.16-3.17x against 2.67-2.75x at 32,000 (best of 200 and of 15, two runs):
  five attribute stores cost more than a tuple.
  Best-of-7 timings below swing by up to 2x between runs here. Keep the view:
  repeated calls are the fast path. The walk pauses Python's cyclic collector
  (`_core/gc_pause.py`), which otherwise rescans the model's objects while the
  walk allocates: at 32,000 tensors that cut the first call from 1.92x to
  1.68x on torch, 1.56x to 1.40x on paddle and 3.35x to 2.98x on Keras
  (median of 7 rounds of best-of-5, both ways in one process); at 2,000
  tensors it changed nothing.
- **Keras on JAX and on torch** (rows `keras-jax`, `keras-torch`, each
  measured in a process of its own): the same adapter reads the same layers,
  and `weights` does the same work on every engine, so their ratios follow
  Keras on TensorFlow's. **Flax NNX**'s `nnx.state(model, nnx.Param)` builds
  its State through NNX's graph traversal, which costs more per layer than
  this library's walk: its collect-all rows are well under target. A Flax
  look-up's baseline is the walk `get_parameter` does, an attribute or an
  index per key; each look-up here also checks the live model, and reads an
  `nnx.List`'s member where the list keeps it: through
  `nnx.List.__getitem__`, with its checks, a look-up took 1.70x of the
  baseline at 2,000 tensors and 2.04x at 32,000, against 1.09x and 1.46x
  reading the member (one run each). NNX's classes answer `isinstance` in
  Python (ABCMeta's `__instancecheck__`), and a look-up asked three such
  questions; the adapter now asks once per class: 1.31x / 1.47x of the
  baseline at 2,000 / 8,000 tensors before, 0.80-0.81x / 1.00-1.03x after (two
  runs).
- **collect-all, repeated, at 32,000 tensors**: checking that a model of 16,000
  layers is unchanged reads every layer's variable lists, much as Keras'
  `weights` and torch's `named_parameters()` read them; at that size both are
  bound by memory latency, and the ratio sits near 1.
- **seeded initialize**: within run-to-run noise of its 1.5x target (the same
  code measured 1.21x to 1.54x in consecutive runs; the initialisation code
  of an earlier page's 1.19x run measured 1.51-1.54x on a later day's
  machine, its torch baseline 20% faster there).
- **Keras path look-ups**: every look-up re-checks its path against the live
  model (one step per key, then the layer's variable list), so a changed model
  is never answered from a stale index; the baseline reads a dict built once
  and never checked again. That check of the layer's lists (and its variable's
  name) is about half the baseline's time per look-up on Keras over JAX, whose
  `weights` is the cheapest (measured by replacing it with `True`: 0.66-0.85x
  against 1.24-1.52x, five best-of-7 rounds each at 8,000 tensors); the rows
  there swing around the target.
- **Linear ports and Keras/paddle saves**: every kernel is transposed, so
  their bound is the fastest transposing kernel of the process (the
  `transposing copy` rows, each into preallocated memory), not memcpy. Which
  kernel that is depends on the machine: TensorFlow's transpose on the AVX-512
  VMs of earlier runs, torch's `copy_` on an AVX2 one, where TensorFlow's took
  twice as long; so the library times both on a process's first large copies
  and keeps the faster (`Race`, which times torch's copy into memory whose
  pages exist: a new block's first touch is the memory's cost, not the
  kernel's; on the AVX2 VM this took the 1 GiB torch ->
  paddle and keras -> torch ports from 2.9x and 2.7x of the bound to 0.9-1.3x
  and 0.9-1.5x over three runs). Their rows compare against that kernel run over as many
  distinct kernels as the port or save moves, in turn with it (the best of 7
  runs of one kernel, times the count, was optimistic: 200-245 ms for 1 GiB
  against 290-317 ms for the same bytes moved kernel by kernel). A Keras
  variable adopts the buffer it is handed, so a port into Keras keeps a fresh
  transposed copy (TensorFlow's result itself, or torch's copy into fresh
  memory, whichever is faster in the process) and skips the copy into
  preallocated memory that the kernel rows include: that row can beat its
  bound. Right after a TensorFlow op torch's kernel runs slower than alone
  (167 ms against 42 ms for 4096 x 4096 on the AVX2 VM), so there TensorFlow's
  wins the race.
  Against that kernel alone a save cannot reach 0.8x: it also writes every
  byte to a new file, and the `save a checkpoint (vs writing its bytes)` rows
  time that alone (the values, contiguous in memory already, written to a new
  file in the same folder, renamed over the last): 1.5-1.8x the kernel's time
  here (runs before the rename, which the notes below explain), most of it the
  kernel handing out the file's new pages (`posix_fallocate` of 1 GiB with no
  data: 508-525 ms, against 458-511 ms for the transposing kernel). The
  Keras and paddle saves transpose on a helper thread while the writes run,
  and now take about what the write alone takes (0.84-0.86x of that row in
  one run). Two changes got them there, from 2.8x the kernel to 1.4-1.5x: the
  helper keeps the next kernel on its way while a bias is written (before,
  kernels and biases alternating left one side idle at every step: the save
  took the sum of both, measured 1,062-1,336 ms as 467-666 ms of transposes
  plus 521-608 ms of writes), and it picks its kernel by timing both beside
  the writes, apart from copies made alone (see `transposed(alongside=True)`):
  TensorFlow's shared the cores badly on an AVX2 VM and well on an AVX-512
  one with a 260 MiB L3, where a 1 GiB Keras save went from 585-676 ms with
  torch's kernel to 414-472 ms with TensorFlow's (the writes alone 369-386 ms;
  median of six rounds in one process: 567 ms to 384 ms, the writes 381 ms).
  On that VM a single 1 GiB write to tmpfs, save or plain write, now and then
  took up to 2.1 s. In a process holding a 1 GiB Keras model, 5 of 34 saves
  took 1.1-1.9 s, against 376-474 ms for the others. The stalls match the
  VM's memory balloon, which reports free guest memory to the host
  (virtio-balloon's free page reporting: feature bit 5 of the device here,
  2 MiB blocks, `page_reporting_order` 9) for it to take back, so that a page
  freed a while ago costs a host fault when it is next used. A save never
  leaves a torn file: it writes a new file and renames it over the old one,
  so its pages are not the old file's but those freed at the last save's
  rename. With numpy alone, 1 GiB written to a new file renamed over the last
  took 2,926 / 352 / 344 / 794 / 334 / 692 / 2,155 / 533 / 2,695 ms in turn
  (0-6 s apart), while the same bytes written over the old file in place
  (truncated: its own pages come back at once) took 335-364 ms every time;
  six 1 GiB Keras saves in a row took 2,917 / 3,047 / 453 / 1,930 / 1,900 /
  386 ms. So the `vs writing its bytes` rows now write a new file and rename
  it over the last, as a save does; Keras' `save_weights` and `paddle.save`
  write in place. The pages of earlier runs also timed
  every call while a thread sampled its memory every millisecond, which
  slowed the saves most:
  a 1 GiB Keras save took a median 825 ms with that thread and 384 ms
  without, a plain write 393 ms and 381 ms. Memory is now sampled in a round
  of its own (`harness.in_turn`).
  Transposing straight into the file's pages (a mapped output, one pass
  fewer) was tried and is slower: 3.7-4.1x the kernel for 1 GiB, the
  mapping's page faults costing more than the pass saved.
- **torch's tiled copies (2026-12-03)**: torch's kernel copies a large
  view in tiles of the output (2048 x 64 elements, each on all cores: `transpose.torch_copy`): torch 2.13
  copies a whole transposed view on one core. The tiles took the `torch
  copy_` row from 5.1x memcpy's time to 2.1-2.6x at 2048 x 2048 and from 4.9x
  to 1.35-1.5x at 4096 x 4096, the fastest kernel here, ahead of TensorFlow's
  (2.4-3.3x). With them the 1 GiB Linear ports took 349-363 ms (torch ->
  paddle), 376-382 ms (torch -> keras) and 350-363 ms (keras -> torch) over
  two runs, against 531, 409 and 557 ms in the run before; but their bound
  fell further, from 464 ms to 270-294 ms, so their ratios went from 1.15x /
  0.88x / 1.20x to 1.19-1.40x. A port checks every source value (finite) before it
  writes any, which the bound does not: 66 ms of a 350 ms torch -> paddle
  port, profiled (the transposes 276 ms, the bound 270 ms). Beside a save's
  writes torch's kernel runs on one core, in tiles of 512 x 64 elements
  (`transpose.torch_copy_one_core`): the race times the copy alone, and on
  both cores the tiles won it while they took the writes' core. In one
  process per library version, 1 GiB saves to tmpfs, median of 7 (two
  runs each): paddle's 777-779 ms with the one-core tiles against 1,041-1,103
  ms before (torch's whole-view copy won that race), Keras' 793-814 ms
  against 966-994 ms; with the tiles on both cores they took 888 and 1,032 ms.
- **Loads**: every tensor is read (ordinary reads, not a memory map: a file
  that shrinks under a map kills the process by SIGBUS) and checked (shape,
  dtype, finite once cast, tie groups that agree) before the first write, so a
  bad file leaves the model unchanged. Where the system grants a read lease on
  the file (no other process can open it for writing until the load is done),
  each value of the parameter's dtype streams through a 1 MiB buffer to be
  checked, then is read a second time when it is written: straight into a
  torch or paddle parameter's memory where it is laid out as the file is, else
  into memory the value before let go, which a Keras variable keeps as its own
  and a paddle kernel is transposed from. So no copy of the checkpoint is
  held, and little new memory is touched, whose first touch cost 2-5x a read
  into memory that exists here (1 GiB: 310-1,500 ms against 170 ms). In A/B
  runs of the 1 GiB loads the torch load went from 3.0-3.6x to 1.9-2.0x of the
  baseline and its extra memory from 1,025 MiB to 2 MiB; the paddle load from
  0.75-1.04x to 0.54-0.75x and 784-880 MiB to 0-16 MiB; the Keras load kept
  its time (1.2-2.0x against 1.2-1.5x) with 80-176 MiB for 1,057 MiB. What is
  left for torch is the first read and its check, against the baseline's one
  copy from the file's mapped pages; for Keras, the transpose of every Dense
  kernel (the file holds torch's layout: 550-800 ms for these 1 GiB of
  2048 x 2048 kernels with either kernel, against `load_weights`' 1.0 s in
  all). Files without a lease are read into new memory, then checked; a torch
  parameter or Keras variable that nothing else holds then keeps the tensor
  read as its memory (a paddle one is copied into).
- **Ports**: every value is checked (shape, dtype, finite) before the first
  write, so a refused port leaves the destination as it was; no copy of the
  destination is kept (only `check_input`, not timed here, keeps one). The
  finite check reads every source byte once more before the copy reads it
  again, summed by `np.einsum` (`values.all_finite`): in this project's
  runs of the 1 GiB Embedding ports, alternating with numpy's pairwise sum
  used before, it took each direction's port 0.08-0.17x memcpy's time
  lower (torch -> keras 1.16-1.26x with the sum, 1.04-1.12x with einsum).
  A BLAS dot product of the values with themselves reads as fast, but it
  was in use when a torch.distributed worker crashed in 2 of 8 runs (the
  same crash came once more with the sum, its cause not found), so the
  check stays in numpy's own loops. The check comes on top of a copy that runs on both cores
  (torch's `copy_`, 0.75x a one-core `np.copyto`; `memmove` or `np.copyto`
  in two threads measure the same, 0.72-0.81x): about 1.0x memcpy's time at
  best, measured 1.0-1.5x in isolated runs and more in a
  full `make bench`, where three 1 GiB models share the memory. The rows
  `(vs checking, then copying)` time that floor in the same run (the check,
  then the copy, by the same kernels over arrays of the same size, with none
  of the port's bookkeeping). On an AVX2 VM it took 0.96-1.10x memcpy's time
  at 1 GiB and the ports between torch and paddle 1.15-1.25x of it: the same
  check and copy over the models' own memory, not fresh numpy arrays, took
  175 ms against 162 ms in one run (the port 191 ms), and a torch -> paddle
  port profiled at 191 ms spent 63 ms on the checks, 109 ms in torch's copy
  and 19 ms on everything else (pairing, planning, Python per tensor,
  inflated by the profiler). On an AVX-512 VM with a 260 MiB L3 the floor
  took 1.16-1.27x memcpy's time with the pairwise sum (1.10x with the dot
  product), and the ports 0.80-0.92x of it (why a port beats it there is not
  measured).
  Into Keras on
  TensorFlow, a variable adopts the buffer it is handed (even while the
  caller still holds it, measured), and TensorFlow's only whole-variable
  write into the memory a variable has (`ResourceStridedSliceAssign`) leaves
  the variable copying on every read after it (measured), so each value is
  copied into memory of the library's, which the variable lets go at its
  next write; within one port that memory takes the next values
  (`_core/recycling.py`): the 1 GiB Embedding port went from 3.3-4.2x to
  1.4-1.6x memcpy's time in isolated runs. A first port into a new Keras
  model still touches new memory for every value, and so does every Linear
  port into Keras: its kernels are transposed into TensorFlow's memory or
  torch's copy into new memory, whichever the race picked.
  Linear ports add the same check to the transposing kernel (about 10% of
  its time).
- **Keras and paddle checkpoints**: files hold torch's layout, so every Dense
  or paddle Linear kernel is transposed on save and load (on save, on a helper
  thread while earlier tensors are written); `save_weights` and `paddle.save` store their own
  layout. Rows within about 1.5x of their baseline swing either side of it from
  run to run on these shared VMs: compare several runs.

## How to read this

- *ratio* is this library's time over the native baseline's, measured in the same
  process in the same run (lower is better); for ports the baseline is a memcpy of
  the same bytes, so a ratio of 2.0 is half of memcpy's throughput.
- Each call and its baselines run in turn: a round runs every call of a case
  once, and the best of 3 rounds (7 for calls under a second) is kept, so a
  call and its baseline share the shared VM's slow and fast spells.
- *peak extra* is the peak anonymous memory above the level before the call
  (sampled every millisecond); the native call's is in brackets. A port's
  "peak <= largest" allows 1 MiB over the largest tensor: the sampled growth
  also counts a new block's page rounding and the process's other allocations.
- Targets apply at the sizes the targets name (2,000 tensors; 100M parameters;
  1 GB); smaller rows show how the cost scales.
- A view keeps its walk from its second collect-all on and checks, on every later
  call, that the model's structure is unchanged; "first call" is a fresh
  `up.wrap(model).params()`, which records nothing.
- Keras has no look-up by path: its baseline builds a dict from `model.weights`
  and reads it, both timed.
- *transposing copy* rows time each kernel at hand for one `(N, N)` float32
  transpose into preallocated memory against `np.copyto` of the same bytes;
  the fastest, run over as many distinct kernels as a port or save moves, is
  the bound of Linear ports and Keras/paddle saves.
- *sharded save / load* rows run two gloo processes on this machine (FSDP2,
  `Shard(0)`); the baseline is torch.distributed.checkpoint's own save and load
  of the same model, same folder, same run. A sharded load reads every rank's
  blocks before the first write (a bad file leaves the model unchanged), so its
  extra memory is the rank's shard; DCP reads into the parameters in place.
- Linear kernels are stored `(out, in)` by torch and `(in, out)` by Keras and
  paddle, and checkpoints hold the canonical (torch) layout, so Keras and paddle
  saves, loads and ports of Linear layers include a transpose of every kernel;
  the native formats they are compared with store each framework's own layout.
"""


def _memory() -> str:
    """Memory free for the run and what tmpfs holds, from /proc/meminfo. Files
    left in /dev/shm hold memory, and the checkpoint rows write there: with
    6 GiB of stale files in it, a 1 GiB Keras save measured 1.35-2.08 s here
    (the rounds after a first), and 0.93-0.97 s once they were removed."""
    try:
        with open("/proc/meminfo") as f:
            info = {k: int(v.split()[0]) << 10 for k, v in (line.split(":", 1) for line in f)}
    except OSError:
        return "unknown"
    gib = 2**30
    return (
        f"{info['MemAvailable'] / gib:.1f} GiB available of {info['MemTotal'] / gib:.1f} GiB, "
        f"{info['Shmem'] / gib:.1f} GiB in tmpfs"
    )


def _versions() -> str:
    names = ["numpy", "torch", "tensorflow-cpu", "keras", "paddlepaddle", "safetensors"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def scaling(rows: list[Row]) -> str:
    """Per operation and backend: our time at each scale and how it grew."""
    groups: dict[tuple[str, str], dict[int, Row]] = defaultdict(dict)
    for r in rows:
        groups[(r.operation, r.backend)][r.scale] = r
    lines = [
        "| operation | backend | 1x | 4x | 16x | growth 4x/1x (ideal 4) | growth 16x/1x (ideal 16) "
        "| native 16x/1x |",
        "|" + "---|" * 8,
    ]
    for (op, backend), by_scale in groups.items():
        if 1 not in by_scale or len(by_scale) < 2:
            continue
        one, four, sixteen = by_scale[1], by_scale.get(4), by_scale.get(16)

        cells = [
            op, backend, seconds(one.ours), seconds(four.ours) if four else "-",
            seconds(sixteen.ours) if sixteen else "-", _growth(one, four), _growth(one, sixteen),
            _growth(one, sixteen, native=True),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _growth(base: Row, row: Row | None, native: bool = False) -> str:
    """How many times ``base``'s time ``row`` took (ours, or the native's)."""
    if row is None:
        return "-"
    if native:
        return f"{row.native / base.native:.1f}" if row.native and base.native else "-"
    return f"{row.ours / base.ours:.1f}"


def shortfalls(rows: list[Row]) -> str:
    missed = [r for r in rows if r.met is False]
    if not missed:
        return "Every target was met in this run."
    out = []
    for r in missed:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else seconds(r.ours)
        out.append(f"- {r.operation}, {r.backend}, {r.size}: {ratio} (target {r.target})")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the scripts only")
    parser.add_argument("--scales", default="1,4,16")
    parser.add_argument("--page", default=str(PAGE), help="where to write the page")
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    extra: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        found = Path(tmp) / "rows.jsonl"
        for script in SCRIPTS:
            cmd = [sys.executable, str(HERE / script), "--json", str(found), "--scales", args.scales]
            result = subprocess.run(
                cmd + (["--tiny"] if args.tiny else []), capture_output=True, text=True, env=env
            )
            print(f"== {script}\n{result.stdout}", flush=True)
            if result.returncode:
                raise SystemExit(f"{script} failed:\n{result.stderr[-3000:]}")
            extra += [line for line in result.stdout.splitlines() if line and not line.startswith("|")]
        rows = [Row(**json.loads(line)) for line in found.read_text().splitlines()]
    lines = [
        "# Benchmarks",
        "",
        "Written by `benchmarks/run_all.py` (`make bench`) from one run; every ratio compares",
        "against a baseline measured in the same run. These are benchmarks, not timed tests:",
        "shared machines are noisy, so read ratios, not absolute times.",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- versions: {_versions()}",
        f"- memory at the start: {_memory()}",
        f"- scales: {args.scales}"
        + (" (tiny sizes: checks the scripts, measures nothing)" if args.tiny else ""),
        "",
        "## Results",
        "",
        table(rows),
        "",
        *[f"- {line}" for line in extra],
        "",
        "## Scaling",
        "",
        "Our time at 1x, 4x and 16x the work; linear cost grows 4x and 16x.",
        "",
        scaling(rows),
        "",
        "## Targets not met in this run",
        "",
        shortfalls(rows),
        "",
        NOTES,
    ]
    Path(args.page).write_text("\n".join(lines))
    print(f"wrote {args.page}")


if __name__ == "__main__":
    main()
