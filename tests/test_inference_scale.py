"""Layers without weights that scale at inference: a port warns of one that only
one side has (paddle's ``Dropout(mode="downscale_in_infer")``, in paddle.vision's
AlexNet, Inception v3, GoogLeNet and SqueezeNet), exactly when the outputs differ."""

from __future__ import annotations

import warnings

import numpy as np

import unified_params as up
from tests.conftest import needs


def _port(src, dst) -> tuple[list[str], bool]:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        report = up.port(src, dst)
    warned = any("will not compute" in str(w.message) for w in said)
    lines = [line for line in report.differences if ": inference_scale " in line]
    assert bool(lines) == warned, (lines, [str(w.message) for w in said])
    return lines, warned


def _differ(src, dst) -> bool:
    x = np.random.default_rng(0).standard_normal((4, 6)).astype("float32")
    return not np.allclose(up.forward(src, x), up.forward(dst, x), atol=1e-5)


def test_a_dropout_that_scales_at_inference_on_one_side_is_warned_of():
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    def paddle_net(*modes):
        return paddle.nn.Sequential(
            paddle.nn.Linear(6, 5), *(paddle.nn.Dropout(0.25, mode=m) for m in modes), paddle.nn.Linear(5, 3)
        )

    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Dropout(0.25), torch.nn.Linear(5, 3)).eval()
    scaled = paddle_net("downscale_in_infer")
    scaled.eval()
    lines, _ = _port(source, scaled)
    assert lines == ["1: inference_scale 0.75 (paddle) vs 1 (torch)"] and _differ(source, scaled)

    plain = paddle_net("upscale_in_train")  # paddle's default: the identity at inference, as torch's
    plain.eval()
    assert _port(source, plain) == ([], False) and not _differ(source, plain)

    both = paddle_net("downscale_in_infer")
    both.eval()
    assert _port(scaled, both) == ([], False) and not _differ(scaled, both)  # the same scale on both sides

    twice = paddle_net("downscale_in_infer", "downscale_in_infer")
    twice.eval()
    lines, _ = _port(scaled, twice)
    assert lines == ["2: inference_scale 0.75 (paddle) vs 1 (paddle)"] and _differ(scaled, twice)
