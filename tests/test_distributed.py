"""Sharded torch models (FSDP2 / DTensor) on two gloo processes on loopback.

One launch runs every case of ``tests/distributed/cases.py`` on both ranks
(paying the start-up once); each case is one test here, which fails with the
traceback of the rank(s) where it failed. Runs when torch is requested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NAMES, needs
from tests.distributed.launch import DIED

ROOT = Path(__file__).resolve().parents[1]
CASE_NAMES = [
    "global_shapes_and_local_blocks",
    "torch_internals_still_mean_what_is_used",
    "gathered_values_state_and_forward",
    "gradients_gathered",
    "whole_writes_reach_every_placement",
    "slice_writes_only_touch_owning_ranks",
    "index_arrays_write_through_a_gather",
    "seeded_init_is_bitwise_the_unsharded_one",
    "init_without_seed_agrees_across_replicas",
    "save_from_sharded_equals_save_from_unsharded",
    "save_places_shard1_and_replicated_blocks",
    "load_into_sharded_reads_only_its_blocks",
    "load_state_dict_and_port_into_sharded",
    "dcp_and_safetensors_convert_both_ways",
    "a_distributed_data_parallel_model_keeps_its_wrapper_and_its_averaged_gradients",
]
pytestmark = pytest.mark.skipif("torch" not in NAMES, reason="the sharded cases run in the torch run")


@pytest.fixture(scope="module")
def launch(tmp_path_factory) -> tuple[list[dict[str, str | None]], str]:
    """Each rank's outcome per case, and the launch's standard error."""
    needs("torch")
    out = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "UP_DISTRIBUTED_CASES": ""}
    ran = subprocess.run(
        [sys.executable, "-m", "tests.distributed.launch", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    records = [out / f"rank{r}.json" for r in (0, 1)]
    assert all(r.exists() for r in records), ran.stderr[-4000:]
    found = [json.loads(r.read_text()) for r in records]
    assert ran.returncode == 0 or any(v for rank in found for v in rank.values()), ran.stderr[-4000:]
    return found, ran.stderr


def test_every_case_is_listed():
    needs("torch")
    from tests.distributed.cases import CASES

    assert list(CASES) == CASE_NAMES


@pytest.mark.parametrize("name", CASE_NAMES)
def test_sharded(launch, name):
    outcomes, stderr = launch
    failures = [
        f"rank {r}:\n{rank.get(name, 'not run')}" for r, rank in enumerate(outcomes) if rank.get(name, 1)
    ]
    died = any(rank.get(name) == DIED for rank in outcomes)  # its traceback, if any, is in the output
    assert not failures, "\n".join(failures) + (_what_died(stderr) if died else "")


def _what_died(stderr: str) -> str:
    """The stacks a crashed rank's fault handler printed (every thread's), and
    the end of the launch's output (the other rank's error, the exit)."""
    at = stderr.find("Fatal Python error")
    crash = f"\nThe crashed rank's stacks:\n{stderr[at : at + 6000]}" if at >= 0 else ""
    return f"{crash}\nThe launch's output ends:\n{stderr[-2000:]}"
