"""Real zoo models (random weights, nothing downloaded) and the round-trip check run on each.

``SMALL`` runs in ``make test``; ``GALLERY`` (``make zoo``) is the whole list,
written to ``docs/porting-gallery.md`` by ``python -m tests.zoo.gallery``.

The torchvision wheel that matches torch 2.13.0 is a CUDA build whose C++
operators do not load with the CPU torch (``import torchvision`` fails on
``torchvision::nms``). The model zoo uses none of them: :func:`import_torchvision`
declares the two operator schemas it checks for, then imports it; timm imports
once torchvision does.
"""

from __future__ import annotations

import importlib
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import unified_params as up
from unified_params._core.outputs import blind_spot


@dataclass(frozen=True)
class ZooModel:
    """One zoo model: where it comes from, how to build it, the input it takes."""

    family: str  # "torchvision", "timm", "keras.applications", "paddle.vision"
    name: str
    build: Callable[[], Any]
    input_shape: tuple[int, ...]  # canonical, channels first, batch included
    shows: str = ""  # what the model exercises (for the gallery)


def import_torchvision() -> Any:
    """``torchvision``, importable with the CPU torch (see the module docstring)."""
    import torch

    try:
        return importlib.import_module("torchvision")
    except RuntimeError:
        pass
    library = torch.library.Library("torchvision", "DEF")  # noqa: TID251 (kept alive below)
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _KEEP.append(library)
    return importlib.import_module("torchvision")


_KEEP: list[Any] = []


def _tv(name: str, **kwargs: Any) -> Callable[[], Any]:
    return lambda: getattr(import_torchvision().models, name)(weights=None, **kwargs)


def _timm(name: str, **kwargs: Any) -> Callable[[], Any]:
    def build() -> Any:
        import_torchvision()
        import timm

        return timm.create_model(name, pretrained=False, **kwargs)

    return build


def _keras(name: str, size: int = 32, **kwargs: Any) -> Callable[[], Any]:
    def build() -> Any:
        import keras

        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), **kwargs)

    return build


def _paddle(name: str, **kwargs: Any) -> Callable[[], Any]:
    def build() -> Any:
        import paddle

        return getattr(paddle.vision.models, name)(**kwargs)

    return build


TV, TIMM, KERAS, PADDLE = "torchvision", "timm", "keras.applications", "paddle.vision"
IMAGE = (2, 3, 32, 32)
IMAGE_64 = (2, 3, 64, 64)

#: The subset in ``make test``: BatchNorm, LayerScale-style unnamed variables,
#: Normalization with an image input, non-persistent buffers, separable convs.
SMALL: tuple[ZooModel, ...] = (
    ZooModel(TV, "resnet18", _tv("resnet18"), IMAGE, "BatchNorm, residual blocks"),
    ZooModel(TIMM, "swin_tiny_patch4_window7_224", _timm("swin_tiny_patch4_window7_224", img_size=56), (2, 3, 56, 56), "non-persistent buffers"),
    ZooModel(KERAS, "ConvNeXtTiny", _keras("ConvNeXtTiny"), IMAGE, "LayerScale variables without a name"),
    ZooModel(KERAS, "EfficientNetB0", _keras("EfficientNetB0"), IMAGE, "Normalization first: cached state, input layout"),
    ZooModel(PADDLE, "mobilenet_v2", _paddle("mobilenet_v2"), IMAGE, "BatchNorm, depthwise convs"),
)  # fmt: skip

#: Everything ``make zoo`` runs.
GALLERY: tuple[ZooModel, ...] = (
    *SMALL,
    *(ZooModel(TV, n, _tv(n), IMAGE) for n in ("resnet50", "mobilenet_v3_small", "densenet121", "shufflenet_v2_x1_0", "squeezenet1_1", "efficientnet_b0", "regnet_y_400mf", "mnasnet0_5")),
    ZooModel(TV, "vgg11_bn", _tv("vgg11_bn"), IMAGE),
    ZooModel(TV, "convnext_tiny", _tv("convnext_tiny"), IMAGE, "layer scale"),
    ZooModel(TV, "vit_b_16", _tv("vit_b_16", image_size=32), IMAGE, "attention"),
    *(ZooModel(TIMM, n, _timm(n), IMAGE) for n in ("resnet18", "efficientnet_b0", "mobilenetv3_small_100", "convnext_atto", "regnetx_002", "ghostnet_100", "rexnet_100")),
    ZooModel(TIMM, "vit_tiny_patch16_224", _timm("vit_tiny_patch16_224", img_size=32), IMAGE, "attention, layer scale"),
    ZooModel(TIMM, "deit_tiny_patch16_224", _timm("deit_tiny_patch16_224", img_size=32), IMAGE),
    ZooModel(TIMM, "levit_128s", _timm("levit_128s", img_size=64), IMAGE_64, "non-persistent buffers"),
    *(ZooModel(KERAS, n, _keras(n), IMAGE) for n in ("ResNet50", "ResNet50V2", "MobileNet", "MobileNetV2", "DenseNet121", "EfficientNetV2B0", "MobileNetV3Small")),
    ZooModel(KERAS, "InceptionV3", _keras("InceptionV3", size=75), (2, 3, 75, 75)),
    ZooModel(KERAS, "Xception", _keras("Xception", size=71), (2, 3, 71, 71), "SeparableConv2D"),
    ZooModel(KERAS, "NASNetMobile", _keras("NASNetMobile", size=32), IMAGE, "SeparableConv2D"),
    ZooModel(KERAS, "VGG16", _keras("VGG16"), IMAGE),
    *(ZooModel(PADDLE, n, _paddle(n), IMAGE) for n in ("resnet18", "resnet50", "mobilenet_v3_small", "densenet121", "shufflenet_v2_x1_0", "squeezenet1_1", "vgg11")),
)  # fmt: skip


@dataclass
class Result:
    """What the round trip of one model found."""

    model: ZooModel
    params: int = 0
    buffers: int = 0
    transient: int = 0
    max_diff: float = math.nan
    informative: bool = False  # whether the outputs depend on the input: the output check proves something
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def round_trip(model: ZooModel, folder: Path | None = None) -> Result:
    """Wrap, seed, save, load into a fresh instance, compare outputs; never raises."""
    result = Result(model)
    start = time.perf_counter()
    try:
        _check(model, result, Path(folder or tempfile.mkdtemp()))
    except Exception as err:  # the gallery reports it; the test re-raises through Result.error
        result.error = f"{type(err).__name__}: {str(err)[:300]}"
    result.seconds = time.perf_counter() - start
    return result


def _check(model: ZooModel, result: Result, folder: Path) -> None:
    a, b = model.build(), model.build()
    ma, mb = up.wrap(a), up.wrap(b)
    params = ma.params()
    result.params = ma.count()
    result.buffers = sum(1 for p in params.values() if p.kind == "buffer")
    result.transient = sum(1 for p in params.values() if not p.persistent)
    if list(params) != list(mb.params()):
        raise AssertionError("two instances of the model have different paths")
    # Seeded init is a function of the structure: two instances get the same values.
    up.initialize(a, up.init.Normal(0, 0.05), seed=7)
    up.initialize(b, up.init.Normal(0, 0.05), seed=7)
    state_a, state_b = up.state_dict(a), up.state_dict(b)
    if any(not np.array_equal(state_a[k], state_b[k]) for k in state_a):
        raise AssertionError("seeded initialisation differs between two instances")
    up.initialize(b, up.init.Normal(0, 0.05), seed=8)  # b differs again ...
    file = folder / f"{model.name}.safetensors"
    up.save(a, file)
    report = up.load(b, file)  # ... until the state of a is loaded into it
    if not report.ok:
        raise AssertionError(f"load report not ok: {report}")
    x = np.random.default_rng(0).uniform(size=model.input_shape).astype("float32")
    out_a, out_b = up.forward(a, x), up.forward(b, x)
    result.max_diff = float(np.max(np.abs(out_a - out_b)))
    result.informative = not blind_spot(out_a, lambda: up.forward(a, 0 * x), atol=1e-6, rtol=1e-5)
    if not np.allclose(out_a, out_b, rtol=1e-5, atol=1e-6):
        raise AssertionError(f"outputs differ after the round trip by {result.max_diff:.3g}")
    reloaded = up.state_dict(b)
    if any(not np.array_equal(state_a[k], reloaded[k]) for k in state_a):
        raise AssertionError("the loaded state differs from the saved one")
