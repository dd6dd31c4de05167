"""``up.convert`` and ``unified-params convert``: torch.distributed.checkpoint
folders to and from safetensors, in one process, one tensor at a time."""

from __future__ import annotations

import warnings

import pytest

import unified_params as up
from tests import memory
from tests.conftest import needs
from unified_params.cli import main


@pytest.fixture
def torch():
    needs("torch")
    import torch

    return torch


def _dcp_save(torch, state, folder):
    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dcp.save(state, checkpoint_id=str(folder), no_dist=True)


def _dcp_load(torch, state, folder):
    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(state, checkpoint_id=str(folder), no_dist=True)


def test_safetensors_to_dcp_and_back_keeps_every_tensor(torch, tmp_path):
    state = {
        "w": torch.randn(3, 4),
        "d": torch.randn(5, dtype=torch.float64),
        "h": torch.randn(6).bfloat16(),
        "n": torch.tensor(7),  # 0-d int64
        "i": torch.arange(4, dtype=torch.int32),
    }
    from safetensors.torch import save_file

    save_file(state, tmp_path / "a.safetensors")
    report = up.convert(tmp_path / "a.safetensors", tmp_path / "dcp")
    assert (report.source, report.destination, sorted(report.tensors)) == (
        "safetensors",
        "dcp",
        sorted(state),
    )
    loaded = {k: torch.empty_like(v) for k, v in state.items()}
    _dcp_load(torch, loaded, tmp_path / "dcp")
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    back = up.convert(tmp_path / "dcp", tmp_path / "b.safetensors")
    assert back.source == "dcp" and not back.skipped
    from safetensors.torch import load_file

    again = load_file(tmp_path / "b.safetensors")
    assert set(again) == set(state) and all(torch.equal(again[k], v) for k, v in state.items())


def test_a_training_state_converts_under_a_prefix(torch, tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    _dcp_save(torch, {"model": net.state_dict(), "step": 12, "lr": torch.tensor(0.1)}, tmp_path / "run")
    report = up.convert(tmp_path / "run", tmp_path / "model.safetensors", prefix="model.")
    assert sorted(report.skipped) == ["lr", "step"]
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    assert up.load(fresh, tmp_path / "model.safetensors").ok
    ours, theirs = fresh.state_dict(), net.state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("writer", ["up.save", "safetensors.torch.save_model"])
def test_tied_paths_are_named_again_for_dcp(torch, writer, tmp_path):
    """A tie group stored once, with its other paths in this library's
    ``aliases`` or in safetensors' entry per dropped tensor, is named at
    every path in the DCP folder, as torch's ``state_dict`` names it."""
    import safetensors.torch

    shared = torch.nn.Linear(3, 3)
    net = torch.nn.Sequential(shared, torch.nn.ReLU(), shared)
    if writer == "up.save":
        up.save(net, tmp_path / "tied.safetensors")
    else:
        safetensors.torch.save_model(net, str(tmp_path / "tied.safetensors"))
    assert len(safetensors.torch.load_file(tmp_path / "tied.safetensors")) == 2  # stored once
    up.convert(tmp_path / "tied.safetensors", tmp_path / "dcp")
    state = {k: torch.empty_like(v) for k, v in net.state_dict().items()}  # names both paths
    _dcp_load(torch, state, tmp_path / "dcp")
    assert torch.equal(state["2.weight"], shared.weight.detach())
    assert torch.equal(state["0.bias"], shared.bias.detach())


def test_conversions_stream_one_tensor_at_a_time(torch, backends):
    """Peak Python-heap growth of a conversion, traced in the run's tracing
    process (`tests.memory`): two tensors at most, not the model's 8 MiB, both
    ways; the converted file holds the model's values."""
    peaks = memory.result(_conversion_peaks, backends)
    assert set(peaks) == {"to dcp", "from dcp", "same"}, peaks
    assert peaks["to dcp"] < 3 * 2**20 and peaks["from dcp"] < 3 * 2**20, peaks
    assert peaks["same"]


@memory.measured
def _conversion_peaks(backends: list[str]) -> dict[str, int | bool] | None:
    """A safetensors file of 8 x 1 MiB converted to a DCP folder and back: the
    peak heap of each conversion, and whether the round trip kept every value
    (``None`` where torch is not in the run)."""
    if "torch" not in backends:
        return None
    import tempfile
    from pathlib import Path

    import torch
    from safetensors.torch import load_file

    net = torch.nn.Sequential(*[torch.nn.Linear(512, 512, bias=False) for _ in range(8)])  # 8 x 1 MiB
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        up.save(torch.nn.Linear(2, 2), folder / "warm.safetensors")
        up.convert(folder / "warm.safetensors", folder / "warm")  # imports and caches, untraced
        up.convert(folder / "warm", folder / "warm-again.safetensors")
        up.save(net, folder / "big.safetensors")
        out: dict[str, int | bool] = {}
        for label, source, target in (
            ("to dcp", "big.safetensors", "dcp"),
            ("from dcp", "dcp", "again.safetensors"),
        ):
            out[label] = memory.traced(lambda s=source, t=target: up.convert(folder / s, folder / t)).peak
        again = load_file(folder / "again.safetensors")
        out["same"] = all(torch.equal(again[k], v) for k, v in net.state_dict().items())
    return out


def test_what_cannot_be_converted_is_refused(torch, tmp_path):
    up.save(torch.nn.Linear(2, 2), tmp_path / "a.safetensors")
    (tmp_path / "empty").mkdir()
    cases = [
        (tmp_path / "a.safetensors", tmp_path / "b.safetensors", {}, "one side in safetensors"),
        (tmp_path / "a.safetensors", tmp_path / "x", {"to": "orbax"}, "Unknown checkpoint format"),
        (tmp_path / "empty", tmp_path / "b.safetensors", {}, "no checkpoint this library reads"),
        (tmp_path / "a.safetensors", tmp_path / "d", {"prefix": "model."}, "no tensor under the prefix"),
    ]
    for source, destination, options, message in cases:
        with pytest.raises(up.CheckpointError, match=message):
            up.convert(source, destination, **options)
    assert not (tmp_path / "d").exists() and not (tmp_path / "b.safetensors").exists()


def test_the_command_converts_and_reports(torch, tmp_path, capsys):
    up.save(torch.nn.Linear(2, 2), tmp_path / "a.safetensors")
    assert main(["convert", str(tmp_path / "a.safetensors"), str(tmp_path / "d")]) == 0
    assert "(safetensors) -> " in capsys.readouterr().out and (tmp_path / "d" / ".metadata").exists()
    assert main(["convert", str(tmp_path / "d"), str(tmp_path / "b.safetensors")]) == 0
    assert "2 tensors" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "nope"), str(tmp_path / "c.safetensors")]) == 2
    assert "no checkpoint this library reads" in capsys.readouterr().err
    fresh = torch.nn.Linear(2, 2)  # the converted file loads into the same torch layer
    assert up.load(fresh, tmp_path / "b.safetensors").ok
