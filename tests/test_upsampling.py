"""Upsampling layers hold no weights, so a port pairs the n-th of one model with
the n-th of the other and compares what they compute: interpolation,
coordinate rule, scale. A port warns exactly when the outputs differ."""

from __future__ import annotations

import itertools
import warnings

import numpy as np

import unified_params as up
from tests.conftest import needs

#: Input sizes (height, width) the outputs are compared at.
SIZES = ((5, 7), (6, 6))


def _port_says(src, dst) -> list[str]:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        report = up.port(src, dst)
    lines = [line for line in report.differences if ": upsampling " in line or ": scale_factor " in line]
    assert bool(lines) == any("will not compute" in str(w.message) for w in said)
    return lines


def _outputs_differ(src, dst) -> bool:
    for h, w in SIZES:
        x = np.random.default_rng(h * w).standard_normal((2, 3, h, w)).astype("float32")
        a, b = up.forward(src, x), up.forward(dst, x)
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-5):
            return True
    return False


def _torch_model(mode, scale, corners=False):
    import torch

    torch.manual_seed(0)
    aligned = {"align_corners": corners} if mode != "nearest" else {}
    layer = torch.nn.Upsample(scale_factor=scale, mode=mode, **aligned)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), layer).eval()


def _warned_exactly_where_outputs_differ(ports) -> int:
    seen, checked = set(), 0
    for label, src, dst in ports:
        said, differ = _port_says(src, dst), _outputs_differ(src, dst)
        assert bool(said) == differ, (label, said)
        seen.add(differ)
        checked += 1
    assert seen == {True, False}
    return checked


TORCH_MODES = [("nearest", False), ("bilinear", False), ("bilinear", True), ("bicubic", False)]


def test_a_port_into_paddle_warns_exactly_when_the_outputs_differ():
    needs("torch")
    needs("paddle")
    import paddle

    def paddle_model(kind, scale):
        nn = paddle.nn
        layer = {
            "nearest": lambda: nn.Upsample(scale_factor=scale),
            "bilinear": lambda: nn.Upsample(scale_factor=scale, mode="bilinear"),
            "bilinear, corners": lambda: nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=True),
            "bilinear, asymmetric": lambda: nn.Upsample(scale_factor=scale, mode="bilinear", align_mode=1),
            "bicubic": lambda: nn.Upsample(scale_factor=scale, mode="bicubic"),
            "UpsamplingNearest2D": lambda: nn.UpsamplingNearest2D(scale_factor=scale),
            "UpsamplingBilinear2D": lambda: nn.UpsamplingBilinear2D(scale_factor=scale),
        }[kind]()
        return paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), layer)

    kinds = ("nearest", "bilinear", "bilinear, corners", "bilinear, asymmetric", "bicubic",
             "UpsamplingNearest2D", "UpsamplingBilinear2D")  # fmt: skip
    grid = list(itertools.product(TORCH_MODES, (2, 3), kinds, (2, [2, 3])))
    checked = _warned_exactly_where_outputs_differ(
        ((mode, scale, kind, theirs), _torch_model(mode[0], scale, mode[1]), paddle_model(kind, theirs))
        for mode, scale, kind, theirs in grid
    )
    assert checked == len(grid) == 112


def test_a_port_into_keras_warns_exactly_when_the_outputs_differ():
    """On every Keras engine: its bicubic is TensorFlow's on TensorFlow and JAX,
    torch's on torch, and the adapter says which."""
    needs("torch")
    needs("keras")
    import keras

    def keras_model(interpolation, size):
        upsample = keras.layers.UpSampling2D(size, interpolation=interpolation)
        return keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 1), upsample])

    grid = list(itertools.product(TORCH_MODES, (2, 3), ("nearest", "bilinear", "bicubic"), (2, (2, 3))))
    checked = _warned_exactly_where_outputs_differ(
        ((mode, scale, kind, size), _torch_model(mode[0], scale, mode[1]), keras_model(kind, size))
        for mode, scale, kind, size in grid
    )
    assert checked == len(grid) == 48
    said = _port_says(_torch_model("bicubic", 2), keras_model("bicubic", 2))
    assert said == ([] if keras.backend.backend() == "torch" else [
        "1 -> 1: upsampling cubic(a=-0.75) (torch) vs cubic(a=-0.5) (keras)"
    ])  # fmt: skip


def test_upsamplings_are_not_compared_when_the_models_have_not_as_many():
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    torch.manual_seed(0)
    src = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 1), torch.nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)
    )
    dst = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), paddle.nn.Upsample(scale_factor=4, mode="bilinear"))
    assert _port_says(src, dst) == []  # which pairs with which is not known
    assert "The upsampling layers were not compared (torch lists 2, paddle 1)" in up.port(src, dst).notes[0]
    fixed = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.Upsample(size=(10, 14), mode="bilinear"))
    assert _port_says(fixed, dst) == []  # a fixed size against a scale: only the method is compared
    nearest = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), paddle.nn.Upsample(scale_factor=2))
    assert _port_says(fixed, nearest) == ["1 -> 1: upsampling linear (torch) vs nearest (paddle)"]


def test_an_interpolation_only_a_forward_method_shows_is_noted_and_stops_the_pairing():
    """torch's model upsamples twice, once with ``F.interpolate`` in its forward;
    paddle's lists one upsampling, like torch's one layer. Before, that pair was
    compared and found alike, and the port said nothing of its upsamplings
    while the outputs differ (twice the size)."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch
    import torch.nn.functional as F

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.up = torch.nn.Conv2d(3, 4, 1), torch.nn.Upsample(scale_factor=2)

        def forward(self, x):
            return F.interpolate(self.up(self.conv(x)), scale_factor=2)

    torch.manual_seed(0)
    src = Net().eval()
    dst = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), paddle.nn.Upsample(scale_factor=2))
    assert _outputs_differ(src, dst)
    assert _port_says(src, dst) == []
    assert (
        "The upsampling layers were not compared: the code of <root> (Net, torch) may interpolate with a "
        "function in its forward, which no layer shows. Pass check_input=x to compare outputs."
    ) in up.port(src, dst).notes


def _cubic(values: np.ndarray, scale: int, a: float, edges: str) -> np.ndarray:
    """A row resized by ``scale`` with the cubic kernel of parameter ``a``,
    half-pixel centres; past the ends, ``edges`` ``"repeat"`` the end values
    (torch) or ``"drop"`` the positions and rescale the others' weights to a
    sum of one (TensorFlow's and JAX's ``scale_and_translate``)."""
    n = len(values)
    out = []
    for i in range(n * scale):
        at = (i + 0.5) / scale - 0.5
        base = int(np.floor(at))
        weights, taken = [], []
        for k in range(-1, 3):
            d = abs(at - base - k)
            w = (a + 2) * d**3 - (a + 3) * d**2 + 1 if d <= 1 else a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
            if edges == "repeat" or 0 <= base + k < n:
                weights.append(w)
                taken.append(values[min(max(base + k, 0), n - 1)])
        out.append(np.dot(weights, taken) / (1.0 if edges == "repeat" else sum(weights)))
    return np.array(out)


def test_the_keras_engine_s_bicubic_is_the_one_the_adapter_names():
    """Runs on each Keras engine (``make test`` runs this file on JAX and torch
    too): the adapter names the cubic kernel the engine computes."""
    needs("keras")
    import keras

    row = np.random.default_rng(0).standard_normal(9).astype("float32")
    layer = keras.layers.UpSampling2D((1, 2), interpolation="bicubic")
    model = keras.Sequential([keras.Input((1, 9, 1)), layer])
    got = np.asarray(keras.ops.convert_to_numpy(model(row.reshape(1, 1, 9, 1)))).ravel()
    kernels = {
        (a, edges): np.allclose(got, _cubic(row, 2, a, edges), atol=1e-5)
        for a, edges in itertools.product((-0.5, -0.75), ("repeat", "drop"))
    }
    assert sum(kernels.values()) == 1, kernels  # one of them, and the references tell them apart
    computed, _ = next(kernel for kernel, same in kernels.items() if same)
    assert up.wrap(model).adapter.upsampling(layer).interpolation == f"cubic(a={computed:g})"
