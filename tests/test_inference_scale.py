"""Layers without weights that scale or offset at inference: a port warns of one
that only one side has (paddle's ``Dropout(mode="downscale_in_infer")``, in
paddle.vision's AlexNet, Inception v3, GoogLeNet and SqueezeNet; Keras' ``Rescaling``,
in keras.applications' MobileNetV3 and EfficientNet), exactly when the outputs differ."""

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


def _rescaled(*rescalings):
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((6,)), *rescalings, keras.layers.Dense(5), keras.layers.Dense(3)])


def test_a_keras_rescaling_on_one_side_is_warned_of_with_its_scale_and_offset():
    needs("torch")
    needs("keras")
    import keras
    import torch

    def lines_of(src, dst):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            report = up.port(src, dst)
        found = [line for line in report.differences if ": inference_" in line]
        assert bool(found) == any("will not compute" in str(w.message) for w in said)
        return found

    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 3)).eval()
    shifted = _rescaled(keras.layers.Rescaling(1 / 127.5, offset=-1.0))
    assert lines_of(source, shifted) == [
        "0: inference_scale 0.00784314 (keras) vs 1 (torch)",
        "0: inference_offset -1 (keras) vs 0 (torch)",
    ] and _differ(source, shifted)
    assert lines_of(shifted, source) == [
        "0: inference_scale 0.00784314 (keras) vs 1 (torch)",
        "0: inference_offset -1 (keras) vs 0 (torch)",
    ]

    per_channel = _rescaled(keras.layers.Rescaling([1, 2, 1, 1, 1, 1]))  # an offset of 0: no line for it
    assert lines_of(source, per_channel) == ["0: inference_scale (1, 2, 1, 1, 1, 1) (keras) vs 1 (torch)"]
    assert _differ(source, per_channel)

    unit = _rescaled(keras.layers.Rescaling(1.0))  # the identity
    assert lines_of(source, unit) == [] and not _differ(source, unit)

    same = _rescaled(keras.layers.Rescaling(1 / 127.5, offset=-1.0))
    assert lines_of(shifted, same) == [] and not _differ(shifted, same)
    other = _rescaled(keras.layers.Rescaling(1 / 255.0))
    assert lines_of(shifted, other) == [
        "0: inference_scale 0.00784314 (keras) vs 1 (keras)",
        "0: inference_offset -1 (keras) vs 0 (keras)",
        "0: inference_scale 0.00392157 (keras) vs 1 (keras)",
    ]
