"""The command line: the demo runs the chapter on every requested backend; inspect, summary."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from tests.conftest import NAMES, REQUESTED, needs
from unified_params import cli


def test_demo_agrees_on_requested_backends():
    from unified_params.cli import chapter

    out = io.StringIO()
    assert cli.demo(list(NAMES), out=out) is True
    text = out.getvalue()
    agree = re.search(r"(\d+)/(\d+) cells print the same on (.*)\.$", text)
    assert agree and agree.group(1) == agree.group(2) == str(len(chapter.CELLS))
    assert agree.group(3) == ", ".join(REQUESTED)
    assert "DIFFERS" not in text
    # Every cell's code is shown once, with the output every backend printed.
    assert text.count(">>> print(rg)") == 1 and "(block 3): Sequential(" in text
    assert "7 6 121 [('2.weight', '4.weight'), ('2.bias', '4.bias')]" in text


def test_demo_and_docs_chapter_show_the_same_numbers():
    """The demo and docs/chapter.md run the same cells with the same seed."""
    from pathlib import Path

    out = io.StringIO()
    assert cli.demo(list(NAMES), out=out) is True
    page = (Path(__file__).resolve().parents[1] / "docs" / "chapter.md").read_text()
    outputs = re.findall(r"```text\n(.*?)\n```", page, re.DOTALL)
    assert len(outputs) >= 15
    for shown in outputs:
        assert shown in out.getvalue()


def test_console_entry_point_runs_demo_for_a_subset():
    result = subprocess.run(
        [sys.executable, "-m", "unified_params", "demo", "--backends", REQUESTED[0]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"(\d+)/\1 cells print the same", result.stdout)


def test_demo_plot_writes_histograms(tmp_path):
    path = tmp_path / "params.png"
    out = io.StringIO()
    assert cli.demo(list(NAMES), out=out, plot=str(path)) is True
    assert path.read_bytes()[:4] == b"\x89PNG" and "histograms written" in out.getvalue()


def test_inspect_and_summary_of_checkpoints(backend, tmp_path, capsys):
    import unified_params as up
    from tests.conformance import specs

    up.save(specs.shared().build(backend), tmp_path / "s.safetensors")
    up.save(specs.nested().build(backend), tmp_path / "n.safetensors", max_shard_size=300)
    assert cli.main(["inspect", str(tmp_path / "s.safetensors")]) == 0
    text = capsys.readouterr().out
    assert "6 tensors" in text and "4.weight" in text and f"│ {backend}" in text.replace("  ", " ")
    assert cli.main(["inspect", str(tmp_path / "n.safetensors")]) == 0
    assert "sharded:" in capsys.readouterr().out
    assert cli.main(["summary", str(tmp_path / "s.safetensors")]) == 0
    text = capsys.readouterr().out
    assert "Total elements: 121" in text and "linear" in text
    # The shared layer at its own position, in model order, counted in brackets (as up.summary does).
    rows = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    assert [r[0].strip() for r in rows] == ["0", "2", "4", "6"]
    assert (
        rows[2][2].split() == ["weight", "=", "2.weight", "bias", "=", "2.bias"]
        and rows[2][3].strip() == "(72)"
    )


def test_inspect_lists_the_tensors_safetensors_save_model_dropped_as_tied_paths(tmp_path, capsys):
    needs("torch")
    import safetensors.torch
    import torch

    lm = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
    lm[1].weight = lm[0].weight
    safetensors.torch.save_model(lm, str(tmp_path / "lm.safetensors"))
    assert cli.main(["inspect", str(tmp_path / "lm.safetensors")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "0.weight" in line]
    assert len(rows) == 1 and "1.weight" in rows[0]  # in its tied paths column, not as metadata


def test_summary_of_a_spec_expression(backend, capsys):
    assert cli.main(["summary", "Sequential(Linear(4, 8), ReLU(), Linear(8, 1))", "--backend", backend]) == 0
    assert "Total params: 49" in capsys.readouterr().out
    assert cli.main(["summary", "__import__('os').system('true')"]) == 2
    assert "neither a checkpoint file nor a spec" in capsys.readouterr().err


def test_cli_reports_library_errors_without_a_traceback(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path / "absent.safetensors")]) == 2
    assert "unified-params: No checkpoint at" in capsys.readouterr().err


def test_conformance_command_prints_the_matrix(tmp_path):
    page = tmp_path / "conformance.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "unified_params",
            "conformance",
            "--backends",
            REQUESTED[0],
            "--write",
            str(page),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "conformance: feature x backend" in result.stdout
    text = page.read_text()
    assert "| textbook models, written natively |" in text and "FAILED" not in text
    assert f"| feature | {REQUESTED[0]} | across |" in text


@pytest.mark.parametrize(
    "argv, words",
    [
        (
            ["demo", "--backends", "torch,jax"],
            "Unknown backend 'jax'. Expected a comma-separated subset of torch, keras, keras-jax, keras-torch, paddle",
        ),
        (["conformance", "--backends", "mxnet"], "Unknown backend 'mxnet'"),
        (["summary", "missing.safetensors"], "No checkpoint at 'missing.safetensors'"),
        (["summary", "Bogus(1)"], "neither a checkpoint file nor a spec"),
        (["inspect", "."], "is a folder"),
    ],
)
def test_usage_and_input_errors_exit_2_with_the_reason(argv, words, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_a_malformed_index_is_an_input_error_for_inspect_and_summary(backend, tmp_path, capsys):
    import json as _json

    import unified_params as up
    from tests.conformance import specs

    files = up.save(specs.mlp().build(backend), tmp_path / "m.safetensors", max_shard_size=100)
    files[-1].write_text(_json.dumps({"weight_map": ["a", "b"]}))
    for command in ("inspect", "summary"):
        assert cli.main([command, str(files[-1])]) == 2
        err = capsys.readouterr().err
        assert "weight_map is not an object" in err and "Traceback" not in err


def test_version_help_and_a_quiet_stderr():
    version = subprocess.run(
        [sys.executable, "-m", "unified_params", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and re.fullmatch(r"unified-params \d+\.\d+\.\d+\n", version.stdout)
    helps = [
        subprocess.run([sys.executable, "-m", "unified_params", *a, "--help"], capture_output=True, text=True)
        for a in ([], ["demo"], ["summary"])
    ]
    for result in helps:
        assert result.returncode == 0 and "``" not in result.stdout and ":func:" not in result.stdout
    demo_run = subprocess.run(
        [sys.executable, "-m", "unified_params", "demo", "--backends", ",".join(REQUESTED)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo_run.returncode == 0
    assert demo_run.stderr == "", demo_run.stderr[-2000:]  # no third-party start-up chatter


def test_demo_runs_keras_on_another_engine_in_its_own_process():
    """``--backends keras-jax`` picks Keras' engine before Keras is imported; two engines
    of one framework in one process are refused."""
    from tests.conftest import needs

    needs("keras")
    argv = [sys.executable, "-m", "unified_params", "demo", "--backends"]
    done = subprocess.run([*argv, "keras-jax"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "15/15 cells print the same on keras-jax."
    refused = subprocess.run([*argv, "keras,keras-jax"], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "keras is named on two engines" in refused.stderr


def test_demo_table_has_one_column_per_backend_and_they_agree():
    """The demo's closing table: a row per chapter cell, a checksum column per
    backend; on torch, Keras, Paddle and Flax NNX every row has one value."""
    import io

    from tests.conftest import needs
    from unified_params.cli import chapter
    from unified_params.cli.demo import demo

    backends = ["torch", "keras", "paddle", "flax"]
    for name in backends:
        needs(name)
    buffer = io.StringIO()
    assert demo(backends, out=buffer)
    lines = buffer.getvalue().split("a checksum per backend\n", 1)[1].splitlines()[1:]
    header, rows = lines[0].split(), [line.split() for line in lines[1:16]]
    assert header == ["cell", *backends]
    assert [row[0] for row in rows] == [cell.key for cell in chapter.CELLS]
    assert all(len(row) == 5 and len(set(row[1:])) == 1 for row in rows), rows
