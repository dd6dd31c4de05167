"""The PaddlePaddle adapter: variables are tensors, shared with numpy through DLPack."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import paddle
from paddle import nn

from ..._core import activations
from ..._core.errors import UnsupportedError, received, without_values
from ..._core.geometry import SAME, Geometry, Pad, Pooling
from ..._core.initializers import KaimingNormal, Ones, RecurrentUniform, XavierUniform, Zeros
from ..._core.sharding import Sharding
from ..._core.state import Part
from ..._core.upsampling import Upsampling
from .._base import KindTable, per_axis, runs_its_own
from .._dicts import (
    ActivationTable,
    DictModuleAdapter,
    interpolated,
    last_axis_first,
    spatial_axes,
    training_mode,
)
from . import internals, leaves

_KINDS: dict[type, str] = {
    nn.Linear: "linear",
    nn.Conv1D: "conv1d",
    nn.Conv2D: "conv2d",
    nn.Conv3D: "conv3d",
    nn.Conv1DTranspose: "conv_transpose1d",
    nn.Conv2DTranspose: "conv_transpose2d",
    nn.Conv3DTranspose: "conv_transpose3d",
    nn.MultiHeadAttention: "mha",
    internals.BATCH_NORM: "batchnorm",
    nn.BatchNorm: "batchnorm",
    nn.LayerNorm: "layernorm",
    nn.GroupNorm: "groupnorm",
    nn.Embedding: "embedding",
    nn.SimpleRNN: "rnn",
    nn.LSTM: "lstm",
    nn.GRU: "gru",
    nn.ReLU: "relu",
    nn.Flatten: "flatten",
    nn.Sequential: "container",
    nn.LayerList: "container",
    nn.LayerDict: "container",
}
_KIND = KindTable(_KINDS)


_TRANSPOSE = ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_CONVOLUTIONS = ("conv1d", "conv2d", "conv3d", *_TRANSPOSE)
_CONV_LAYERS = tuple(cls for cls, kind in _KINDS.items() if kind in _CONVOLUTIONS)


def _approximation(gelu: Any) -> str:
    """A GELU's approximation as torch spells it (paddle keeps a flag)."""
    return "tanh" if internals.hyperparameter(gelu, "approximate") else "none"


#: paddle's activation layers, as `unified_params._core.activations` names them
#: (settings read by `internals.hyperparameter`; ``Hardsigmoid``: slope 1/6, offset
#: 1/2, as torch's; ``Swish``: x * sigmoid(x), torch's ``SiLU``). ``Dropout`` passes
#: its input on, scaled or not: `inference_rescaling` says which.
_ACTIVATIONS = ActivationTable(
    "paddle.nn.layer.activation",
    plain={
        nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Silu: "silu",
        nn.Swish: "silu", nn.Hardsigmoid: "hard_sigmoid", nn.Hardswish: "hard_swish", nn.Softsign: "softsign",
        nn.Mish: "mish", nn.LogSigmoid: "log_sigmoid", nn.Tanhshrink: "tanh_shrink",
    },
    settings={
        nn.LeakyReLU: ("leaky_relu", {"negative_slope": "negative_slope"}),
        nn.ELU: ("elu", {"alpha": "alpha"}),
        nn.CELU: ("celu", {"alpha": "alpha"}),
        nn.SELU: ("selu", {"scale": "scale", "alpha": "alpha"}),
        nn.GELU: ("gelu", {"approximate": _approximation}),
        nn.Hardtanh: ("hard_tanh", {"min": "min", "max": "max"}),
        nn.Softshrink: ("soft_shrink", {"threshold": "threshold"}),
        nn.Softplus: ("softplus", {"beta": "beta", "threshold": "threshold"}),
    },
    over_an_axis={nn.Softmax: ("softmax", "axis"), nn.LogSoftmax: ("log_softmax", "axis")},
    passing=(nn.Identity, nn.Dropout, nn.Dropout2D, nn.Dropout3D, nn.AlphaDropout),
)  # fmt: skip
#: Layers without weights after which no activation is sought (`DictModuleAdapter.ENDS`).
_ENDS = frozenset(
    {
        *internals.MAX_POOLS, *internals.AVG_POOLS, nn.AdaptiveAvgPool1D, nn.AdaptiveAvgPool2D,
        nn.AdaptiveAvgPool3D, nn.AdaptiveMaxPool1D, nn.AdaptiveMaxPool2D, nn.AdaptiveMaxPool3D, nn.LPPool1D,
        nn.LPPool2D, nn.ZeroPad1D, nn.ZeroPad2D, nn.ZeroPad3D, nn.Pad1D, nn.Pad2D, nn.Pad3D, nn.Upsample,
        nn.UpsamplingNearest2D, nn.UpsamplingBilinear2D,
    }
)  # fmt: skip
_INSTANCE_NORMS = (nn.InstanceNorm1D, nn.InstanceNorm2D, nn.InstanceNorm3D)
_OTHER_NORMS = (nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D, nn.LocalResponseNorm)
_UPSAMPLING = (nn.Upsample, nn.UpsamplingNearest2D, nn.UpsamplingBilinear2D)
#: The coordinate rule of paddle's linear and cubic modes without aligned corners.
_ALIGN_MODES = {0: "half_pixel", 1: "asymmetric"}
_PROJECTIONS = {"q_proj": 0, "k_proj": 1, "v_proj": 2}
_RECURRENT = {leaf: RecurrentUniform() for leaf in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
# Normal(0, sqrt(2 / fan_in)), fan in over every input channel even of a grouped conv
# (paddle 3.3.1's _ConvNd counts in_channels, not in_channels / groups).
_CONV = {"weight": KaimingNormal(nonlinearity="relu").counted("all_inputs"), "bias": Zeros()}
_NORM = {"weight": Ones(), "bias": Zeros()}
_XAVIER = {"weight": XavierUniform(), "bias": Zeros()}

#: paddle's functions that pool with a window, interpolate or pad (``paddle.nn.functional``'s).
_WEIGHTLESS_FUNCTIONS = {
    "pooling": frozenset({
        "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "lp_pool1d",
        "lp_pool2d", "fractional_max_pool2d", "fractional_max_pool3d",
    }),
    "upsampling": frozenset({"interpolate", "upsample"}),
    "padding": frozenset({"pad"}),
}  # fmt: skip

#: paddle.vision's classifiers whose forward returns, in inference, what one child
#: returns (a flatten aside), by module and class name, with that child's key
#: (`DictModuleAdapter.RETURNS_CHILD`; checked against each model's output in tests/zoo).
_RETURNS_CHILD = {
    (f"paddle.vision.models.{module}", cls): key for module, cls, key in (
        ("resnet", "ResNet", "fc"), ("vgg", "VGG", "classifier"), ("mobilenetv1", "MobileNetV1", "fc"),
        ("mobilenetv2", "MobileNetV2", "classifier"), ("mobilenetv3", "MobileNetV3Small", "classifier"),
        ("mobilenetv3", "MobileNetV3Large", "classifier"), ("densenet", "DenseNet", "out"),
        ("shufflenetv2", "ShuffleNetV2", "_fc"), ("alexnet", "AlexNet", "_fc8"),
        ("inceptionv3", "InceptionV3", "fc"),
    )
}  # fmt: skip


class PaddleAdapter(DictModuleAdapter):
    name = "paddle"
    SLOTS = internals.SLOTS
    NORM_HOOKS = internals.NORM_HOOKS
    LEAF_NORM_HOOKS = internals.LEAF_NORM_HOOKS
    WEIGHT_NORM_KEEPS_DIMS = False
    SEQUENTIAL = nn.Sequential
    KINDS = _KIND
    ACTIVATIONS = _ACTIVATIONS
    RESHAPES = (nn.Flatten, nn.Unflatten)
    ENDS = _ENDS
    RETURNS_CHILD = _RETURNS_CHILD
    WEIGHTLESS_FUNCTIONS = _WEIGHTLESS_FUNCTIONS
    FRAMEWORK_PACKAGES = ("paddle",)
    LEAF_ONLY = frozenset({"rnn", "lstm", "gru"})
    DEFAULT_INIT = {
        "linear": _XAVIER,
        **{kind: _CONV for kind in ("conv1d", "conv2d", "conv3d")},
        # A transposed conv gets no initialiser of its own (paddle 3.3.1's _ConvNd):
        # paddle's default for any weight, Xavier uniform, whose fans sum alike either way.
        **{kind: _XAVIER for kind in _TRANSPOSE},
        "batchnorm": _NORM,
        "layernorm": _NORM,
        "groupnorm": _NORM,
        "embedding": {"weight": XavierUniform()},
        "rnn": _RECURRENT,
        "lstm": _RECURRENT,
        "gru": _RECURRENT,
    }
    LEAVES = leaves.LEAVES
    GATHERS = {
        "mha": {
            **{f"{proj}.weight": Part("in_proj_weight", i) for proj, i in _PROJECTIONS.items()},
            **{f"{proj}.bias": Part("in_proj_bias", i) for proj, i in _PROJECTIONS.items()},
            "out_proj.weight": Part("out_proj.weight", 0),
            "out_proj.bias": Part("out_proj.bias", 0),
        }
    }

    def shape(self, var: Any) -> tuple[int, ...]:
        return tuple(int(d) for d in var.shape)

    def dtype(self, var: Any) -> str:
        return str(var.dtype).removeprefix("paddle.")

    def trainable(self, var: Any) -> bool:
        return not var.stop_gradient

    def set_trainable(self, var: Any, flag: bool) -> None:
        var.stop_gradient = not flag

    def to_numpy(self, var: Any) -> np.ndarray:
        array = np.array(_valued(var).numpy(), copy=True)
        return _as_bfloat16(array) if self.dtype(var) == "bfloat16" else array

    def view(self, var: Any) -> np.ndarray:
        shared = _shared(_valued(var))
        return self.to_numpy(var) if shared is None else shared

    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        # Paddle takes and gives bfloat16 as its raw uint16 bits.
        _whole(var).set_value(value.view(np.uint16) if value.dtype.name == "bfloat16" else value)

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        if not internals.initialized(_whole(var)):
            return False  # no memory to write into: `assign` gives it values
        shared = _shared(var)
        if shared is None or shared.dtype not in (np.float32, np.float64):
            return False
        fill(shared)  # writes through DLPack into the parameter's own memory
        return True

    def grad(self, var: Any) -> np.ndarray | None:
        grad = _whole(var).grad
        return None if grad is None else np.array(grad.numpy(), copy=True)

    def sharding(self, var: Any) -> Sharding | None:
        _whole(var)  # a distributed tensor is refused: it is never read as a whole one
        return None

    def hyperparameters(self, module: Any) -> dict[str, float | str]:
        out: dict[str, float | str] = {**self.recurrence(module)}
        eps, momentum, groups, num_groups = (
            internals.hyperparameter(module, k) for k in ("epsilon", "momentum", "groups", "num_groups")
        )
        if isinstance(eps, float):
            out["eps"] = eps
        if isinstance(momentum, float):
            out["momentum"] = 1.0 - momentum  # paddle keeps 1 - torch's momentum
        if isinstance(groups, int):
            out["groups"] = float(groups)
        if isinstance(num_groups, int):
            out["num_groups"] = float(num_groups)
        return out

    def convolution(self, module: Any) -> Geometry | None:
        if self.KINDS(type(module)) not in _CONVOLUTIONS:
            return None
        kernel, stride, dilation, given, mode, data_format = internals.convolution(module)
        transposed = self.KINDS(type(module)) in _TRANSPOSE
        padding = _paddings(given, len(kernel), data_format)
        given_back: tuple[int, ...] | None = None
        if runs_its_own(module, _CONV_LAYERS, "forward"):
            padding = (None,) * len(kernel)  # it may pad otherwise than its settings say
        elif transposed:  # what it crops from its output; output_padding gives back the end
            extra = getattr(module, "output_padding", 0)
            extras = tuple([int(extra)] * len(kernel) if isinstance(extra, int) else map(int, extra))
            # Measured (paddle 3.3.1): "SAME" crops what a "SAME" convolution pads on the
            # input, and an output_padding gives back that many positions at the end, as
            # it does from a numeric crop (kernels 1-5, strides 2-3, dilations 1-2).
            padding = tuple(
                (p[0], p[1] - e) if isinstance(p, tuple) else p for p, e in zip(padding, extras, strict=True)
            )
            given_back = extras if SAME in padding and any(extras) else None
        if SAME in padding:  # measured (paddle 3.3.1): "SAME" runs undilated, whatever its dilation
            dilation = [1] * len(kernel)
        return Geometry(
            tuple(kernel), tuple(stride), tuple(dilation), padding, mode=mode, transposed=transposed,
            output_padding=given_back,
        )  # fmt: skip

    def pool(self, module: Any) -> Pooling | None:
        if not isinstance(module, internals.MAX_POOLS + internals.AVG_POOLS):
            return None
        kernel, stride, given, ceil, exclusive, divisor, data_format = internals.pooling(module)
        axes = spatial_axes(module, internals.MAX_POOLS + internals.AVG_POOLS)
        kernels = per_axis(kernel, axes)
        strides = kernels if stride is None else per_axis(stride, axes)
        padding = _paddings(given, axes, data_format)
        if runs_its_own(module, internals.MAX_POOLS + internals.AVG_POOLS, "forward"):
            padding = (None,) * axes  # its own forward may pool otherwise
        counts = None if exclusive is None or divisor else not exclusive
        if counts and SAME in padding:
            counts = None  # measured: "SAME" counts the padding before, and after only as much
        geometry = Geometry(kernels, strides, (1,) * axes, padding, ceil=ceil)
        return Pooling("max" if exclusive is None else "average", geometry, counts)

    def inference_rescaling(self, module: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        if isinstance(module, nn.Dropout) and module.mode == "downscale_in_infer" and module.p:
            # paddle's Dropout keeps its mode and p as public attributes
            return (1.0 - float(module.p),), (0.0,)
        return None

    def input_layout(self, layer: Any) -> str | None:
        found = internals.data_format(layer)
        if found is not None and len(found) > 2 and found.endswith("C"):  # NLC, NHWC, NDHWC
            return "channels_last"
        return super().input_layout(layer)

    def setting(self, module: Any, attribute: str) -> Any:
        return internals.hyperparameter(module, attribute)

    def normalization(self, module: Any, kind: str | None) -> str | None:
        eps = internals.hyperparameter(module, "epsilon")
        if isinstance(module, nn.LayerNorm):  # over its last axes: named over the last alone
            shape = internals.hyperparameter(module, "normalized_shape")
            return activations.normalized(kind, -1, eps) if len(shape) == 1 else None
        last = str(internals.hyperparameter(module, "data_format")).endswith("C")  # NLC, NHWC, NDHWC
        axis = -1 if last else 1
        if isinstance(module, nn.GroupNorm):
            groups, channels = (internals.hyperparameter(module, n) for n in ("num_groups", "num_channels"))
            return activations.normalized(kind, axis, eps, groups, channels, channels_last=last)
        if isinstance(module, _INSTANCE_NORMS):
            return activations.normalized(kind, axis, eps, groups=-1, channels_last=last)
        return None if isinstance(module, _OTHER_NORMS) else "none"

    def upsampling(self, module: Any) -> Upsampling | None:
        if not isinstance(module, _UPSAMPLING) or runs_its_own(module, _UPSAMPLING, "forward"):
            return None
        if isinstance(module, nn.UpsamplingNearest2D):
            mode, rule = "nearest", "asymmetric"
        elif isinstance(module, nn.UpsamplingBilinear2D):  # corners aligned, as torch's
            mode, rule = "bilinear", "align_corners"
        else:
            mode = module.mode.lower()
            rule = "align_corners" if module.align_corners else _ALIGN_MODES.get(module.align_mode, "")
        return interpolated(mode, module.scale_factor, module.size, rule)

    def zero_padding(self, module: Any) -> tuple[tuple[int, int], ...] | None:
        found = internals.pad_layer(module)
        if found is None or found[1] != "constant" or found[2] != 0:
            return None
        return last_axis_first(found[0])

    def set_hyperparameters(self, module: Any, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            if name == "eps":
                internals.set_hyperparameter(module, "epsilon", value)
            elif name == "momentum":
                internals.set_hyperparameter(module, "momentum", 1.0 - value)  # paddle's is 1 - torch's

    def tensor(self, array: np.ndarray) -> Any:
        return paddle.to_tensor(array)

    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        return paddle.no_grad()

    def layers(self, model: Any) -> list[Any]:
        return list(model.sublayers(include_self=True))

    def reductions(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        return paddle.sum, paddle.mean

    def clear_grad(self, var: Any) -> None:
        var.clear_gradient(False)

    def training_layers(
        self, model: Any, training: bool, backward: bool = False
    ) -> contextlib.AbstractContextManager[Any]:
        layers = self.layers(model)
        # Paddle's rnn kernel keeps nothing for backward in eval mode ("Tensor holds no
        # memory" in RnnGradNode); without dropout its training mode computes the same.
        rnns = [x for x in layers if self.kind(x) in self.LEAF_ONLY and not getattr(x, "dropout", 0)]
        stack = contextlib.ExitStack()
        stack.enter_context(training_mode(layers, training))
        if backward:
            stack.enter_context(training_mode(rnns, True))
        return stack

    def copy_variable(self, var: Any) -> Any:
        return copy.deepcopy(var)


def _whole(var: Any) -> Any:
    """The variable, if this process holds all of it.

    Raises:
        UnsupportedError: A distributed tensor (``paddle.distributed.shard_tensor``):
            its values are spread over processes, and no read or write of it is
            supported here, so none is made (not even of this process's part alone).
    """
    if var.is_dist():
        raise UnsupportedError(
            f"A paddle distributed tensor (shard_tensor, placements {var.placements}) is spread over "
            "processes; unified-params reads and writes no paddle distributed tensor, so nothing "
            "was read or written. Supported sharded parameters: torch DTensors (Shard and "
            "Replicate placements, as torch's fully_shard makes them). Expected a paddle model "
            "with whole parameters (dist.unshard_dtensor(tensor) gives one). "
            + received(placements=str(var.placements))
        )
    return var


def _valued(var: Any) -> Any:
    """The variable (`_whole`), if it holds values.

    Raises:
        NotBuiltError: A parameter made under ``paddle.LazyGuard``, which has a
            shape but no values until it is initialised or written as a whole.
    """
    if not internals.initialized(_whole(var)):
        raise without_values(
            "A paddle parameter",
            "it was made under paddle.LazyGuard, which leaves it uninitialised",
            initialized=False,
        )
    return var


def _shared(var: Any) -> np.ndarray | None:
    """A numpy array on the parameter's own memory (DLPack), where paddle offers one."""
    if not var.place.is_cpu_place() or str(var.dtype) == "paddle.bfloat16":
        return None
    try:
        return np.from_dlpack(var.detach())
    except (TypeError, RuntimeError, BufferError):
        return None


def _as_bfloat16(bits: np.ndarray) -> np.ndarray:
    import ml_dtypes

    return bits.view(ml_dtypes.bfloat16)


def _paddings(given: Any, axes: int, data_format: str) -> tuple[Pad, ...]:
    """``(before, after)`` per spatial axis from paddle's ``padding`` argument:
    an int; ``"same"`` or ``"valid"`` in either case; one int per axis; two
    per axis, axis after axis; or a pair per axis of the input, the batch's
    and the channels' ``[0, 0]`` included."""
    if isinstance(given, str):
        return (SAME if given.lower() == "same" else (0, 0),) * axes
    if isinstance(given, int):
        return ((given, given),) * axes
    amounts = list(given)
    if amounts and isinstance(amounts[0], (list, tuple)):
        spatial = amounts[2:] if data_format.startswith("NC") else amounts[1:-1]
        return tuple((int(lo), int(hi)) for lo, hi in spatial)
    if len(amounts) == axes:
        return tuple((int(p), int(p)) for p in amounts)
    if len(amounts) == 2 * axes:
        return tuple((int(amounts[i]), int(amounts[i + 1])) for i in range(0, 2 * axes, 2))
    return (None,) * axes


ADAPTER = PaddleAdapter()
