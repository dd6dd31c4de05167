"""Real pairs of zoo models across frameworks (random weights, nothing downloaded),
and the port each is put through.

``SMALL_PAIRS`` runs in ``make test``; ``PAIRS`` (``make zoo``) is the whole list,
written to ``docs/porting-gallery.md`` by ``python -m tests.zoo.gallery``. A pair
either verifies (``up.port`` with a check input: outputs equal within the port's
tolerance) or is refused, with the library's reason; ``expect`` says which, and
``why`` says in a line why an architecture really differs.

A check proves only what the outputs depend on. The frameworks' own initial
scales fade a deep network's features on the way to its head: its outputs are
then the classifier's bias, for any input (and any earlier weight). So each
source is seeded for outputs that depend on the input as a trained model's
do (`seed`): He-normal convolutions, and BatchNorm running statistics other
than a fresh layer's, which the port then has to carry over too.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import unified_params as up
from tests.zoo.models import KERAS, PADDLE, TIMM, TV, _keras, _paddle, _timm, _tv


@dataclass(frozen=True)
class Pair:
    """A source and a destination model of the same architecture, in two zoos."""

    source: tuple[str, str, Callable[[], Any]]  # (family, name, build)
    destination: tuple[str, str, Callable[[], Any]]
    size: int  # the input's height and width (channels first, batch 2)
    options: dict[str, Any] = field(default_factory=dict)  # port's align, mapping, flatten
    expect: str = "verified"  # or "refused"
    why: str = ""  # for a refused pair: what really differs
    #: Makes the port's ``mapping`` once both models are built (from Keras layer names,
    #: which a path may use where a functional model's paths are positions).
    mapping_for: Callable[[Any, Any], Any] | None = None
    #: Runs on the seeded source, given the check input's shape (`measured_statistics`).
    after_seed: Callable[[Any, tuple[int, ...]], None] | None = None

    @property
    def name(self) -> str:
        return f"{self.source[1]} ({self.source[0]}) -> {self.destination[1]} ({self.destination[0]})"


@dataclass
class PortResult:
    """What porting one pair found."""

    pair: Pair
    verdict: str = ""  # "verified", "refused" or "failed"
    max_diff: float = math.nan
    largest: float = math.nan  # the largest source output: the scale of max_diff
    seconds: float = 0.0
    params: int = 0
    reason: str = ""  # the library's message for a refused pair, the error for a failed one
    notes: list[str] = field(default_factory=list)
    #: What the port lists that makes the models compute differently (a convolution's
    #: stride or padding, an eps left unaligned): what it warns of without a check input.
    warned: list[str] = field(default_factory=list)

    @property
    def as_expected(self) -> bool:
        """The expected verdict, and no warning for a pair that verifies (a warning
        there would be a false alarm)."""
        return self.verdict == self.pair.expect and not (self.verdict == "verified" and self.warned)


def port_pair(pair: Pair) -> PortResult:
    """Build both models, seed the source, port with a check input; never raises."""
    result = PortResult(pair)
    try:
        src, dst = pair.source[2](), pair.destination[2]()
        seed(src)
        result.params = up.wrap(src).count()
        x = np.random.default_rng(0).uniform(size=(2, 3, pair.size, pair.size)).astype("float32")
        if pair.after_seed is not None:
            pair.after_seed(src, x.shape)
        result.largest = float(np.max(np.abs(up.forward(src, x))))
        options = dict(pair.options)
        if pair.mapping_for is not None:
            options["mapping"] = pair.mapping_for(src, dst)
        start = time.perf_counter()
        try:
            report = up.port(src, dst, check_input=x, atol=TOLERANCE * result.largest, **options)
        finally:
            result.seconds = time.perf_counter() - start
        result.verdict, result.max_diff = "verified", float(report.max_abs_diff or 0.0)
        result.warned = changing(report.differences)
        result.notes = report.aligned[:1] + report.absent[:1] + report.notes
        if report.aligned:
            result.notes[0] = f"{len(report.aligned)} settings aligned, e.g. {report.aligned[0]}"
        if report.absent:
            k = 1 if report.aligned else 0
            result.notes[k] = f"{len(report.absent)} leaves one side lacks, e.g. {report.absent[0]}"
    except up.PortError as err:
        result.verdict, result.reason = "refused", str(err)
        if getattr(err, "report", None) is not None and err.report.max_abs_diff is not None:
            result.max_diff = float(err.report.max_abs_diff)
        if getattr(err, "report", None) is not None:
            result.warned = changing(err.report.differences)
    except Exception as err:  # the gallery reports it; the test fails on it
        result.verdict, result.reason = "failed", f"{type(err).__name__}: {err}"
    return result


def changing(differences: list[str]) -> list[str]:
    """The lines of ``report.differences`` whose setting changes outputs (those a
    port without a check input warns of)."""
    from unified_params._core.port import CHANGES_OUTPUTS

    return [line for line in differences if line.split(": ", 1)[1].split()[0] in CHANGES_OUTPUTS]


#: Outputs must agree within this fraction of the largest source output (``atol``;
#: ``rtol`` stays the port's 1e-4): float32 rounding in a deep network with real
#: statistics grows with the outputs' scale, not with each output's own size.
TOLERANCE = 1e-4


def seed(model: Any) -> None:
    """Seed a source of any framework so that its outputs depend on its input
    and on every weight: each framework's own initialisers, He-normal
    convolutions, biases that are not zeros (a trained model's are not), and
    running statistics drawn around a fresh layer's (mean 0, variance 1), so
    that a port that drops or swaps them shows; a layer scale of about one (a
    ConvNeXt's start at 1e-6, so its blocks would hardly count)."""
    up.initialize(model, {_known_kind: up.init.Default()}, seed=11)
    convolutions = up.where(kind="conv2d", name="weight")
    up.initialize(model, {convolutions: up.init.KaimingNormal(nonlinearity="relu")}, seed=11)
    up.initialize(model, {up.where(name="bias"): up.init.Uniform(-0.1, 0.1)}, seed=11)
    rng = np.random.default_rng(11)
    for param in up.wrap(model).params().values():  # buffers: `initialize` leaves them alone
        if param.name == "running_mean":
            param.set(rng.normal(0.0, 0.1, param.shape))
        elif param.name == "running_var":
            param.set(rng.uniform(0.5, 2.0, param.shape))
        elif param.layer_kind == "other" and param.trainable:  # a layer scale's 1e-6: its block unseen
            param.set(rng.uniform(0.5, 1.5, param.shape))


def _known_kind(param: Any) -> bool:
    """A parameter of a layer kind with a default initialiser (not a model's own)."""
    return param.layer_kind != "other"


def _by_keras_names(keras_name: Callable[[str], str | None]) -> Callable[[Any, Any], dict[str, str]]:
    """``mapping`` between a torch model and a Keras functional one, either way
    round: each torch layer path and the Keras layer's name, which a path may use."""

    def mapping(src: Any, dst: Any) -> dict[str, str]:
        torch_side = src if up.wrap(dst).backend == "keras" else dst
        out = {m.path: keras_name(m.path) for m in up.wrap(torch_side).modules() if m.path}
        named = {k: v for k, v in out.items() if v is not None}
        return named if torch_side is src else {v: k for k, v in named.items()}

    mapping.says = "by Keras layer names"  # type: ignore[attr-defined]  (for the gallery)
    return mapping


def by_creation_order(src: Any, dst: Any) -> dict[str, str]:
    """``mapping`` from a Keras functional model to a torch one whose modules are
    declared in the order Keras created its layers: Keras' automatic layer names
    count each class in creation order (``conv2d_5``), its graph orders them by
    depth."""

    def created(layer: Any) -> int:
        number = re.search(r"_(\d+)$", layer.name)
        return int(number.group(1)) if number else 0

    out = {}
    for keras_type, torch_type in (("Conv2D", "Conv2d"), ("BatchNormalization", "BatchNorm2d")):
        ours = sorted((x for x in src.layers if type(x).__name__ == keras_type), key=created)
        theirs = [m.path for m in up.wrap(dst).modules() if m.type_name == torch_type]
        out.update({x.name: path for x, path in zip(ours, theirs, strict=True)})
    return {**out, "predictions": "fc"}


by_creation_order.says = "by Keras' layer creation order"  # type: ignore[attr-defined]


def _p(family: str, name: str, build: Callable[[], Any]) -> tuple[str, str, Callable[[], Any]]:
    return family, name, build


def _same(name: str, size: int = 64, expect: str = "verified", why: str = "") -> Pair:
    """torchvision -> paddle.vision, the same architecture under the same name."""
    return Pair(_p(TV, name, _tv(name)), _p(PADDLE, name, _paddle(name)), size, {}, expect, why)


def _to_keras(
    name: str,
    keras_name: str,
    size: int,
    family: str = TV,
    expect: str = "verified",
    why: str = "",
    **options: Any,
) -> Pair:
    """torchvision or timm -> keras.applications (logits: no softmax on Keras' head)."""
    build = _tv(name) if family == TV else _timm(name)
    keras = _keras(keras_name, size, classifier_activation=None)
    return Pair(_p(family, name, build), _p(KERAS, keras_name, keras), size, options, expect, why)


def _from_keras(keras_name: str, family: str, name: str, size: int, **options: Any) -> Pair:
    """keras.applications -> torchvision or paddle.vision: the other direction."""
    build = _tv(name) if family == TV else _paddle(name)
    keras = _keras(keras_name, size, classifier_activation=None)
    return Pair(_p(KERAS, keras_name, keras), _p(family, name, build), size, options)


ALIGN = {"align": "hyperparameters"}

#: torchvision's Inception v3 -> paddle.vision's: the same layers, named and ordered
#: otherwise (blocks numbered in a list, conv/bn as 0/1), and an auxiliary head
#: paddle's lacks. Rules over layer paths, tried in order.
_BLOCKS = ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c")
INCEPTION_TO_PADDLE: list[tuple[str, str | None]] = [
    (r"AuxLogits\..*", None),
    (r"Conv2d_(\w+)\.conv", r"inception_stem.conv_\1.0"),
    (r"Conv2d_(\w+)\.bn", r"inception_stem.conv_\1.1"),
    *(rule for i, b in enumerate(_BLOCKS) for rule in (
        (rf"Mixed_{b}\.branch_pool\.conv", f"inception_block_list.{i}.branch_pool_conv.0"),
        (rf"Mixed_{b}\.branch_pool\.bn", f"inception_block_list.{i}.branch_pool_conv.1"),
        (rf"Mixed_{b}\.(\w+)\.conv", rf"inception_block_list.{i}.\1.0"),
        (rf"Mixed_{b}\.(\w+)\.bn", rf"inception_block_list.{i}.\1.1"),
    )),
    (r"fc", "fc"),
]  # fmt: skip

_PADS = (
    "keras.applications' MobileNetV2 pads a stride-2 convolution of an even-sized map on the "
    "bottom and right only (TensorFlow's 'same'), torch on every side; on odd sizes both pad "
    "every side"
)


def resnet_keras_name(path: str) -> str | None:
    """The keras.applications ResNet layer that a torchvision ResNet layer is: a
    block's shortcut comes first in Keras' graph and last in torch's, so order
    alone does not pair them.

    Examples:
        >>> resnet_keras_name("layer1.0.downsample.1"), resnet_keras_name("layer4.2.conv3")
        ('conv2_block1_0_bn', 'conv5_block3_3_conv')
    """
    if path in ("conv1", "bn1"):
        return f"conv1_{path[:-1] if path == 'conv1' else 'bn'}"
    if path == "fc":
        return "predictions"
    match = re.fullmatch(r"layer(\d)\.(\d+)\.(?:(conv|bn)(\d)|downsample\.([01]))", path)
    if match is None:
        return None
    stage, block, kind, k, shortcut = match.groups()
    prefix = f"conv{int(stage) + 1}_block{int(block) + 1}"
    if shortcut is not None:
        return f"{prefix}_0_{'conv' if shortcut == '0' else 'bn'}"
    return f"{prefix}_{k}_{kind}"


_V1 = (
    "keras.applications' ResNet50 strides a block's first 1x1 convolution (ResNet v1), "
    "torchvision's its 3x3 convolution (v1.5): other features"
)
_resnet50_keras = _keras("ResNet50", 64, classifier_activation=None)
_RESNET_NAMES = _by_keras_names(resnet_keras_name)
_inception_keras = _keras("InceptionV3", 96, classifier_activation=None)
#: Without its input rescaling: torchvision's and timm's take normalised inputs.
_convnext_keras = _keras("ConvNeXtTiny", 64, classifier_activation=None, include_preprocessing=False)


def _v3_keras(name: str) -> Callable[[], Any]:
    """keras.applications' MobileNetV3 without its input rescaling, on odd sizes
    (33, 17, 9, 5, 3: every stride-2 convolution pads both sides, as torch's):
    its head's pointwise convolutions pair with torchvision's Linears."""
    return _keras(name, 33, classifier_activation=None, include_preprocessing=False)


_PADS_V1 = (
    "keras.applications' MobileNet pads each stride-2 depthwise convolution's input on the bottom and "
    "right only (a ZeroPadding2D layer), paddle.vision's pads every side; its head's pointwise "
    "convolution pairs with paddle's Linear"
)
_inception_tv = _tv("inception_v3", init_weights=False, aux_logits=False)
_POOLS = (
    "keras.applications' InceptionV3 average-pools a branch without counting the padding "
    "(TensorFlow's 'same'), torchvision's counts it (count_include_pad): other values at the borders"
)


def _inception_pooling_as_tensorflow() -> Any:
    """torchvision's Inception v3 whose branch average pools leave the padding out of
    the average, as TensorFlow's do: while each such block runs, the pooling
    function torchvision's module calls passes ``count_include_pad=False``."""
    import torch.nn.functional as F
    from torchvision.models import inception

    model = _inception_tv()
    average = F.avg_pool2d  # torch's own (the module torchvision calls it from is torch's)

    def pooled(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor=None):
        return average(x, kernel_size, stride, padding, ceil_mode, False, divisor)

    def excluding_padding(block: Any) -> None:
        forward = block.forward

        def run(x: Any) -> Any:
            pool = inception.F.avg_pool2d
            inception.F.avg_pool2d = pooled
            try:
                return forward(x)
            finally:
                inception.F.avg_pool2d = pool

        block.forward = run

    for block in model.modules():
        if type(block).__name__ in ("InceptionA", "InceptionC", "InceptionE"):
            excluding_padding(block)
    return model


def _resnet50_v1() -> Any:
    """torchvision's ResNet-50 with each stage's stride moved from the first block's
    3x3 convolution to its first 1x1, as in ResNet v1 (keras.applications')."""
    model = _tv("resnet50")()
    for stage in (model.layer2, model.layer3, model.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    return model


def measured_statistics(model: Any, shape: tuple[int, ...]) -> None:
    """Set a torch model's BatchNorm running statistics to those of random inputs
    of ``shape`` (16 of them), as a trained model's match its data. Seeded as the
    others, torchvision's EfficientNet fades its input on the way to its head: two
    random inputs' outputs differ by 3e-5 at most, the largest output being 0.25,
    so a check would prove little; measured, they differ by about as much as the
    largest output (1.6 and 1.6)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.momentum = None  # a cumulative average over the batch
        norm.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(np.random.default_rng(5).uniform(size=(16, *shape[1:])).astype("float32")))
    model.eval()
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


def _efficientnet_keras(rescaled: bool) -> Callable[[], Any]:
    """keras.applications' EfficientNet-B0 on odd sizes (every stride-2 convolution
    pads both sides, as torch's). It scales its input by 1/255 in a ``Rescaling``
    layer, then normalises it in a ``Normalization`` of its own (the identity
    without ImageNet weights), which torchvision's lacks: ``keep`` leaves it.
    ``rescaled=False``: its ``Rescaling`` set to 1, to take torchvision's inputs."""

    def build() -> Any:
        import keras

        model = _keras("EfficientNetB0", 33, classifier_activation=None)()
        if not rescaled:
            next(layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling)).scale = 1.0
        return model

    return build


_TAKES_0_TO_255 = (
    "keras.applications' EfficientNet scales its input by 1/255 (a Rescaling layer, which holds no weight) "
    "where torchvision's takes normalised inputs"
)
_NO_BN_SCALE = (
    "keras.applications' InceptionV3 has BatchNorm without a scale (gamma), the torch model has one"
)
_FLOORS = (
    "paddle.vision's SqueezeNet floors its max pooling, torchvision's rounds it up: other feature-map sizes; "
    "it also halves its classifier's input at inference (Dropout downscale_in_infer)"
)

#: The subset in ``make test``: residual blocks, a flattened classifier, hard-swish
#: blocks with squeeze-excitation, Keras ports both ways with aligned BatchNorm settings,
#: ConvNeXt's layer scales reshaped, Linears into Keras' pointwise convolutions, and
#: Keras' biased convolutions folded into torch's BatchNorms.
SMALL_PAIRS: tuple[Pair, ...] = (
    _same("resnet18"),
    _same("vgg11"),
    _same("mobilenet_v3_small"),
    _to_keras("mobilenet_v2", "MobileNetV2", 33, **ALIGN),
    _from_keras("MobileNetV2", TV, "mobilenet_v2", 33, **ALIGN),
    Pair(_p(TV, "convnext_tiny", _tv("convnext_tiny")), _p(KERAS, "ConvNeXtTiny", _convnext_keras), 64, {"leaves": {"layer_scale": "gamma"}}),
    Pair(_p(TV, "mobilenet_v3_small", _tv("mobilenet_v3_small")), _p(KERAS, "MobileNetV3Small", _v3_keras("MobileNetV3Small")), 33, ALIGN),
    Pair(_p(KERAS, "ResNet50", _resnet50_keras), _p(TV, "resnet50, strided as v1", _resnet50_v1), 64, {**ALIGN, "fold_biases": True}, mapping_for=_RESNET_NAMES),
)  # fmt: skip

#: Everything ``make zoo`` ports.
PAIRS: tuple[Pair, ...] = (
    *SMALL_PAIRS,
    *(_same(n) for n in ("resnet34", "resnet50", "resnext50_32x4d", "wide_resnet50_2")),
    _same("vgg16"),
    Pair(_p(TV, "vgg16_bn", _tv("vgg16_bn")), _p(PADDLE, "vgg16(batch_norm)", _paddle("vgg16", batch_norm=True)), 64),
    *(_same(n) for n in ("mobilenet_v2", "mobilenet_v3_large", "densenet121", "shufflenet_v2_x1_0")),
    _same("alexnet", size=224, expect="refused", why="paddle.vision's AlexNet halves its classifier's activations at inference (Dropout downscale_in_infer); torchvision's scales in training"),
    Pair(_p(TV, "inception_v3", _tv("inception_v3", init_weights=False)), _p(PADDLE, "inception_v3", _paddle("inception_v3")), 96, {"mapping": INCEPTION_TO_PADDLE, **ALIGN}, "refused", "paddle.vision's Inception v3 scales its classifier's input by 0.8 at inference (Dropout downscale_in_infer), torchvision's scales in training"),
    _same("squeezenet1_0", expect="refused", why=_FLOORS),
    _same("squeezenet1_1", expect="refused", why=f"{_FLOORS}; it also pads its first convolution, torchvision's does not"),
    _same("googlenet", expect="refused", why="paddle.vision's GoogLeNet has no BatchNorm (the paper's network); torchvision's normalises after every convolution"),
    _to_keras("mobilenet_v2", "MobileNetV2", 32, expect="refused", why=_PADS, **ALIGN),
    _to_keras("vgg16", "VGG16", 224),
    _to_keras("vgg19", "VGG19", 224),
    _to_keras("densenet121", "DenseNet121", 64, **ALIGN),
    Pair(_p(TV, "resnet50", _tv("resnet50")), _p(KERAS, "ResNet50", _resnet50_keras), 64, ALIGN, "refused", _V1, _RESNET_NAMES),
    Pair(_p(KERAS, "ResNet50", _resnet50_keras), _p(TV, "resnet50", _tv("resnet50")), 64, {**ALIGN, "fold_biases": True}, "refused", _V1, _RESNET_NAMES),
    Pair(_p(TV, "resnet50, strided as v1", _resnet50_v1), _p(KERAS, "ResNet50", _resnet50_keras), 64, ALIGN, mapping_for=_RESNET_NAMES),
    _to_keras("inception_v3", "InceptionV3", 96, expect="refused", why=_NO_BN_SCALE),
    Pair(_p(KERAS, "InceptionV3", _inception_keras), _p(TV, "inception_v3", _inception_tv), 96, ALIGN, "refused", _POOLS, by_creation_order),
    Pair(_p(KERAS, "InceptionV3", _inception_keras), _p(TV, "inception_v3, pooling as TensorFlow", _inception_pooling_as_tensorflow), 96, ALIGN, mapping_for=by_creation_order),
    Pair(_p(TIMM, "resnet50", _timm("resnet50")), _p(PADDLE, "resnet50", _paddle("resnet50")), 64),
    Pair(_p(TIMM, "resnet18", _timm("resnet18")), _p(PADDLE, "resnet18", _paddle("resnet18")), 64),
    _to_keras("mobilenetv2_100", "MobileNetV2", 33, family=TIMM, **ALIGN),
    _to_keras("densenet121", "DenseNet121", 64, family=TIMM, **ALIGN),
    _to_keras("inception_v3", "InceptionV3", 96, family=TIMM, expect="refused", why=_NO_BN_SCALE),
    _from_keras("VGG16", TV, "vgg16", 224),
    _from_keras("VGG16", PADDLE, "vgg16", 224),
    _from_keras("DenseNet121", TV, "densenet121", 64, **ALIGN),
    Pair(_p(KERAS, "ConvNeXtTiny", _convnext_keras), _p(TV, "convnext_tiny", _tv("convnext_tiny")), 64, {"leaves": {"gamma": "layer_scale"}}),
    Pair(_p(TIMM, "convnext_tiny", _timm("convnext_tiny")), _p(KERAS, "ConvNeXtTiny", _convnext_keras), 64),
    Pair(_p(KERAS, "MobileNetV3Small", _v3_keras("MobileNetV3Small")), _p(TV, "mobilenet_v3_small", _tv("mobilenet_v3_small")), 33, ALIGN),
    Pair(_p(TV, "mobilenet_v3_large", _tv("mobilenet_v3_large")), _p(KERAS, "MobileNetV3Large", _v3_keras("MobileNetV3Large")), 33, ALIGN),
    Pair(_p(KERAS, "MobileNet", _keras("MobileNet", 33, classifier_activation=None)), _p(PADDLE, "mobilenet_v1", _paddle("mobilenet_v1")), 33, ALIGN, "refused", _PADS_V1),
    Pair(_p(KERAS, "MobileNetV3Small", _v3_keras("MobileNetV3Small")), _p(PADDLE, "mobilenet_v3_small", _paddle("mobilenet_v3_small")), 33, ALIGN),
    Pair(_p(PADDLE, "mobilenet_v3_large", _paddle("mobilenet_v3_large")), _p(KERAS, "MobileNetV3Large", _v3_keras("MobileNetV3Large")), 33, ALIGN),
    _from_keras("MobileNetV2", PADDLE, "mobilenet_v2", 33, **ALIGN),
    Pair(_p(PADDLE, "mobilenet_v2", _paddle("mobilenet_v2")), _p(KERAS, "MobileNetV2", _keras("MobileNetV2", 33, classifier_activation=None)), 33, ALIGN),
    _from_keras("DenseNet121", PADDLE, "densenet121", 64, **ALIGN),
    Pair(_p(PADDLE, "densenet121", _paddle("densenet121")), _p(KERAS, "DenseNet121", _keras("DenseNet121", 64, classifier_activation=None)), 64, ALIGN),
    Pair(_p(TV, "efficientnet_b0", _tv("efficientnet_b0")), _p(KERAS, "EfficientNetB0, rescaling by 1", _efficientnet_keras(False)), 33, {**ALIGN, "keep": ["2"]}, after_seed=measured_statistics),
    Pair(_p(TV, "efficientnet_b0", _tv("efficientnet_b0")), _p(KERAS, "EfficientNetB0", _efficientnet_keras(True)), 33, {**ALIGN, "keep": ["2"]}, "refused", _TAKES_0_TO_255, after_seed=measured_statistics),
)  # fmt: skip
