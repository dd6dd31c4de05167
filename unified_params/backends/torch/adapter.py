"""The PyTorch adapter: variables are tensors, read and written through the numpy bridge."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..._core import activations
from ..._core.errors import NotBuiltError, UnsupportedError, received
from ..._core.geometry import SAME, Geometry, Pad, Pooling
from ..._core.initializers import FanInUniform, Initializer, Normal, Ones, RecurrentUniform, Zeros
from ..._core.layouts import Leaf
from ..._core.leaf_norms import SHAPED_AS_LEAF, LeafNorm, native_axis
from ..._core.low_rank import LowRank
from ..._core.sharding import Group, Sharding
from ..._core.upsampling import Upsampling
from .._base import KindTable, forward_replaced, per_axis, runs_its_own
from .._dicts import ActivationTable, DictModuleAdapter, interpolated, last_axis_first, spatial_axes
from . import internals, peft, sharded, zoo_layers

_KIND = KindTable(
    {
        nn.Linear: "linear",
        nn.Conv1d: "conv1d",
        nn.Conv2d: "conv2d",
        nn.Conv3d: "conv3d",
        nn.ConvTranspose1d: "conv_transpose1d",
        nn.ConvTranspose2d: "conv_transpose2d",
        nn.ConvTranspose3d: "conv_transpose3d",
        nn.MultiheadAttention: "mha",
        internals.BATCH_NORM: "batchnorm",
        nn.LayerNorm: "layernorm",
        nn.GroupNorm: "groupnorm",
        nn.RMSNorm: "rmsnorm",
        nn.Embedding: "embedding",
        nn.RNN: "rnn",
        nn.LSTM: "lstm",
        nn.GRU: "gru",
        nn.ReLU: "relu",
        nn.Flatten: "flatten",
        nn.Sequential: "container",
        nn.ModuleList: "container",
        nn.ModuleDict: "container",
    },
    by_name=zoo_layers.KINDS,
)
_CONV_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ZERO_PADS = (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d)  # ZeroPad*d among them
#: One process's data-parallel wrapper: it shares its ``module``'s parameters, and the
#: gradients its backward leaves on them are the module's own on the whole batch.
#: (DistributedDataParallel is not unwrapped: its backward averages over processes.)
_DATA_PARALLEL = nn.DataParallel
#: Convolutions of model zoos that pad by TensorFlow's "same" rule in their own forward
#: (timm's ``tf_*`` models), by module and class name: nothing is imported to know them.
_PADS_SAME = {("timm.layers.conv2d_same", "Conv2dSame"), ("timm.layers.conv2d_same", "Conv2dSameExport")}
#: Blocks of model zoos that pool with torch's functions in their own forward, by module
#: and class name (nothing is imported to know them): each block's one pooling, as
#: ``(kind, kernel, stride, padding)`` with torch's defaults otherwise (an average
#: counts its padding). torchvision's and timm's Inception v3 blocks (the auxiliary
#: head, which runs in training only, left out).
_AVERAGE_3 = ("average", 3, 1, 1)
_MAX_3_2 = ("max", 3, 2, 0)
_INCEPTION_POOLS = {"InceptionA": _AVERAGE_3, "InceptionB": _MAX_3_2, "InceptionC": _AVERAGE_3,
                    "InceptionD": _MAX_3_2, "InceptionE": _AVERAGE_3}  # fmt: skip
_POOLS_IN_FORWARD = {
    (module, block): pooling
    for module in ("torchvision.models.inception", "timm.models.inception_v3")
    for block, pooling in _INCEPTION_POOLS.items()
}
#: Blocks of model zoos that their model runs in training mode only, by module and
#: class name: the poolings their code names never touch the inference outputs a port
#: compares (the Inception v3 auxiliary classifier pools with ``F.avg_pool2d``).
_TRAINING_ONLY = frozenset(
    (module, "InceptionAux") for module in ("torchvision.models.inception", "timm.models.inception_v3")
)
#: Classifiers of model zoos whose forward returns, in inference, what one child returns
#: (a flatten aside), by module and class name, with that child's key: nothing follows
#: it, so a port sees that no softmax does (checked against each model's output in
#: tests/zoo). torchvision 0.28's and timm's.
_RETURNS_CHILD = {
    **{(f"torchvision.models.{module}", cls): key for module, cls, key in (
        ("resnet", "ResNet", "fc"), ("vgg", "VGG", "classifier"), ("alexnet", "AlexNet", "classifier"),
        ("densenet", "DenseNet", "classifier"), ("mobilenetv2", "MobileNetV2", "classifier"),
        ("mobilenetv3", "MobileNetV3", "classifier"), ("efficientnet", "EfficientNet", "classifier"),
        ("shufflenetv2", "ShuffleNetV2", "fc"), ("squeezenet", "SqueezeNet", "classifier"),
        ("googlenet", "GoogLeNet", "fc"), ("inception", "Inception3", "fc"), ("regnet", "RegNet", "fc"),
        ("convnext", "ConvNeXt", "classifier"), ("mnasnet", "MNASNet", "classifier"),
        ("vision_transformer", "VisionTransformer", "heads"), ("swin_transformer", "SwinTransformer", "head"),
    )},
    **{(f"timm.models.{module}", cls): key for module, cls, key in (
        ("resnet", "ResNet", "fc"), ("efficientnet", "EfficientNet", "classifier"),
        ("densenet", "DenseNet", "classifier"), ("inception_v3", "InceptionV3", "fc"),
        ("mobilenetv3", "MobileNetV3", "classifier"),
    )},
}  # fmt: skip
#: torch's activation layers, as `unified_params._core.activations` names them.
_ACTIVATIONS = ActivationTable(
    "torch.nn.modules.activation",
    plain={
        nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.SiLU: "silu",
        nn.Hardsigmoid: "hard_sigmoid", nn.Hardswish: "hard_swish", nn.SELU: "selu", nn.Softsign: "softsign",
        nn.Mish: "mish", nn.LogSigmoid: "log_sigmoid", nn.Tanhshrink: "tanh_shrink",
    },
    settings={
        nn.LeakyReLU: ("leaky_relu", {"negative_slope": "negative_slope"}),
        nn.ELU: ("elu", {"alpha": "alpha"}),
        nn.CELU: ("celu", {"alpha": "alpha"}),
        nn.GELU: ("gelu", {"approximate": "approximate"}),
        nn.Hardtanh: ("hard_tanh", {"min": "min_val", "max": "max_val"}),
        nn.Softshrink: ("soft_shrink", {"threshold": "lambd"}),
        nn.Softplus: ("softplus", {"beta": "beta", "threshold": "threshold"}),
    },
    over_an_axis={nn.Softmax: ("softmax", "dim"), nn.LogSoftmax: ("log_softmax", "dim")},
    passing=(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout),
    by_name={  # timm's own activation layers (timm 1.0: GELU exact, HardSigmoid relu6(x + 3) / 6)
        **{("timm.layers.activations", cls): name for cls, name in (
            ("GELU", "gelu"), ("GELUTanh", "gelu(approximate=tanh)"), ("Swish", "silu"), ("Mish", "mish"),
            ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("HardSwish", "hard_swish"),
            ("HardSigmoid", "hard_sigmoid"),
        )},
        **{("timm.layers.activations_me", cls): name for cls, name in (
            ("SwishMe", "silu"), ("MishMe", "mish"), ("HardSwishMe", "hard_swish"),
            ("HardSigmoidMe", "hard_sigmoid"),
        )},
    },
)  # fmt: skip
#: Layers without weights after which no activation is sought (`DictModuleAdapter.ENDS`).
_ENDS = frozenset(
    {
        nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
        nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
        nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d, nn.LPPool3d,
        nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d,
        nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d, nn.ReplicationPad1d,
        nn.ReplicationPad2d, nn.ReplicationPad3d, nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d,
        nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d,
    }
)  # fmt: skip
_INSTANCE_NORMS = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
#: Normalisations without weights that have no name here (a BatchNorm without
#: statistics normalises by the batch's, even at inference).
_OTHER_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LocalResponseNorm, nn.RMSNorm)
_SHARED_DTYPES = (torch.float32, torch.float64)
_RECURRENT = {leaf: RecurrentUniform() for leaf in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
_AFFINE = {"weight": FanInUniform(), "bias": FanInUniform()}  # kaiming_uniform(a=sqrt(5)) and its bias
_NORM = {"weight": Ones(), "bias": Zeros()}
_CONVOLUTIONS = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"
)  # fmt: skip

#: torch's functions that pool with a window, interpolate or pad, as a forward method
#: calls them (``torch.nn.functional``'s; ``torch.max_pool2d`` too).
_WEIGHTLESS_FUNCTIONS = {
    "pooling": frozenset({
        "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "lp_pool1d",
        "lp_pool2d", "lp_pool3d", "fractional_max_pool2d", "fractional_max_pool3d", "max_pool1d_with_indices",
        "max_pool2d_with_indices", "max_pool3d_with_indices",
    }),
    "upsampling": frozenset({"interpolate", "upsample", "upsample_nearest", "upsample_bilinear"}),
    "padding": frozenset({"pad"}),
}  # fmt: skip


class TorchAdapter(DictModuleAdapter):
    name = "torch"
    SLOTS = internals.SLOTS
    NORM_HOOKS = internals.NORM_HOOKS
    LEAF_NORM_HOOKS = internals.LEAF_NORM_HOOKS
    SEQUENTIAL = nn.Sequential
    KINDS = _KIND
    ACTIVATIONS = _ACTIVATIONS
    RESHAPES = (nn.Flatten, nn.Unflatten)
    ENDS = _ENDS
    RETURNS_CHILD = _RETURNS_CHILD
    WEIGHTLESS_FUNCTIONS = _WEIGHTLESS_FUNCTIONS
    FRAMEWORK_PACKAGES = ("torch",)
    TRAINING_ONLY = _TRAINING_ONLY
    DEFAULT_INIT = {
        **{kind: _AFFINE for kind in _CONVOLUTIONS},
        "batchnorm": _NORM,
        "layernorm": _NORM,
        "groupnorm": _NORM,
        "rmsnorm": {"weight": Ones()},
        "rmsnorm_offset": {"weight": Zeros()},  # it scales by 1 + weight
        "embedding": {"weight": Normal(0.0, 1.0)},
        "rnn": _RECURRENT,
        "lstm": _RECURRENT,
        "gru": _RECURRENT,
    }

    def unwrap(self, model: Any) -> Any:
        if isinstance(model, torch.jit.ScriptModule):
            raise UnsupportedError(
                f"A {type(model).__name__} compiled by torch.jit keeps its parameters inside the "
                "TorchScript runtime, where they cannot be reached by path. Expected the Python "
                "module it was scripted from: wrap that one (torch.jit.script(module) leaves "
                "`module` as it was, sharing its parameters). " + received(type=type(model).__name__)
            )
        # torch.compile's wrapper and DataParallel share the module they wrap and its parameters:
        # the model is that module, at the paths a plain copy of it has (a file saved from one
        # loads into the plain model, as torch's `model.module.state_dict()` does).
        while True:
            inner = internals.compiled_original(model)
            if inner is None and isinstance(model, _DATA_PARALLEL):
                inner = model.module
            if inner is None:
                return model
            model = inner

    def leaves(self, module: Any, kind: str) -> Mapping[str, Leaf] | None:
        own = zoo_layers.LEAVES.get(_zoo(module))  # type: ignore[arg-type]
        return super().leaves(module, kind) if own is None else own

    def default_init(self, module: Any, kind: str) -> Mapping[str, Initializer]:
        own = zoo_layers.INIT.get(_zoo(module))  # type: ignore[arg-type]
        return super().default_init(module, kind) if own is None else own

    def low_rank(self, module: Any) -> tuple[LowRank, ...]:
        return peft.low_rank(module)

    def idle(self, module: Any) -> tuple[str, ...]:
        return peft.idle(module)

    def computed(self, module: Any) -> tuple[str, ...]:
        found = super().computed(module)  # the older weight_norm's and spectral_norm's hooks
        found += internals.pruned_leaves(module.__dict__.get(internals.SLOTS.pre_hooks))
        if nn.utils.parametrize.is_parametrized(module):  # a ParametrizedLinear's weight, ...
            found += tuple(module.parametrizations.keys())
        return found

    def leaf_norms(self, module: Any) -> tuple[LeafNorm, ...]:
        found = super().leaf_norms(module)  # the older forms' hooks
        if not nn.utils.parametrize.is_parametrized(module):
            return found
        for leaf, chain in module.parametrizations.items():
            for make, (cls, parts) in internals.LEAF_NORM_PARAMETRIZATIONS.items():
                if len(chain) == 1 and isinstance(chain[0], cls):
                    held = chain.get_parameter(parts[SHAPED_AS_LEAF[make]])
                    axis = native_axis(chain[0].dim, held.dim(), whole=make == "weight")
                    at = tuple((role, f"parametrizations.{leaf}.{path}") for role, path in parts.items())
                    steps = getattr(chain[0], "n_power_iterations", None) if make == "spectral" else None
                    found += (LeafNorm(make, leaf, axis, at, power_iterations=steps),)
        return found

    def not_built(self, module: Any) -> str | None:
        if not isinstance(module, internals.LAZY_MODULE) or not _lazy_names(module):
            return None
        return (
            f"torch layer {type(module).__name__} is lazy: its parameters have no shape yet, which "
            "torch infers from the layer's first input. Expected a built model: call it once on an "
            "input (model(x)) first; a lazy layer the model's forward does not use stays lazy after "
            "that: call it on an input of its own, or remove it. "
            + received(uninitialized=_lazy_names(module))
        )

    def shape(self, var: Any) -> tuple[int, ...]:
        return tuple(var.shape)

    def dtype(self, var: Any) -> str:
        return str(var.dtype).removeprefix("torch.")

    def trainable(self, var: Any) -> bool:
        return bool(var.requires_grad)

    def set_trainable(self, var: Any, flag: bool) -> None:
        var.requires_grad_(flag)

    def to_numpy(self, var: Any) -> np.ndarray:
        return tensor_to_numpy(sharded.gathered(_materialized(var).detach()))

    def view(self, var: Any) -> np.ndarray:
        if _materialized(var).device.type != "cpu" or var.dtype == torch.bfloat16 or sharded.is_sharded(var):
            return self.to_numpy(var)
        return var.detach().numpy()

    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        write_tensor(_materialized(var), value, owned)

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        with torch.no_grad():
            _materialized(var)[index] = tensor_from_numpy(value)

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        return fill_tensor(_materialized(var), fill)

    def grad(self, var: Any) -> np.ndarray | None:
        return None if var.grad is None else tensor_to_numpy(sharded.gathered(var.grad.detach()))

    def sharding(self, var: Any) -> Sharding | None:
        return sharded.sharding(var)

    def local(self, var: Any) -> np.ndarray:
        return tensor_to_numpy(sharded.local_tensor(var).detach())

    def assign_local(self, var: Any, block: np.ndarray) -> None:
        with torch.no_grad():
            sharded.local_tensor(var).copy_(tensor_from_numpy(block))

    def group(self, var: Any) -> Group:
        return sharded.WorldGroup()

    def hyperparameters(self, module: Any) -> dict[str, float | str]:
        renamed = zoo_layers.SETTINGS.get(_zoo(module), {})  # type: ignore[arg-type]
        found = {
            k: getattr(module, renamed.get(k, k), None) for k in ("eps", "momentum", "groups", "num_groups")
        }
        numbers: dict[str, float | str] = {
            k: float(v) for k, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if isinstance(module, nn.RMSNorm) and module.eps is None:  # torch's default: the input's epsilon
            numbers["eps"] = float(torch.finfo(getattr(module.weight, "dtype", torch.float32)).eps)
        return {**numbers, **self.recurrence(module)}

    def set_hyperparameters(self, module: Any, values: Mapping[str, float]) -> None:
        renamed = zoo_layers.SETTINGS.get(_zoo(module), {})  # type: ignore[arg-type]
        for name, value in values.items():
            setattr(module, renamed.get(name, name), value)  # torch's eps and momentum are plain attributes

    def convolution(self, module: Any) -> Geometry | None:
        if not isinstance(module, _CONV_LAYERS):
            return None
        padding: tuple[Pad, ...]
        if (type(module).__module__, type(module).__name__) in _PADS_SAME:
            padding = (SAME,) * len(module.kernel_size)
        elif runs_its_own(module, _CONV_LAYERS, "forward") or runs_its_own(
            module, _CONV_LAYERS, "_conv_forward"
        ):
            padding = (None,) * len(module.kernel_size)  # it may pad otherwise than its settings say
        elif module.transposed:  # what it crops from its output: output_padding gives back the end
            crops = [int(p) for p in module.padding]
            padding = tuple((p, p - int(e)) for p, e in zip(crops, module.output_padding, strict=True))
        elif isinstance(module.padding, str):  # "same" (stride 1 only) or "valid"
            padding = tuple(SAME if module.padding == "same" else (0, 0) for _ in module.kernel_size)
        else:
            padding = tuple((p, p) for p in module.padding)
        return Geometry(
            tuple(module.kernel_size),
            tuple(module.stride),
            tuple(module.dilation),
            padding,
            mode=module.padding_mode,  # zeros, reflect, replicate, circular: the names used here
            transposed=module.transposed,
        )

    def pool(self, module: Any) -> Pooling | None:
        in_forward = _POOLS_IN_FORWARD.get((type(module).__module__, type(module).__name__))
        if in_forward is not None:
            return _pool_in_forward(module, *in_forward)
        if not isinstance(module, _MAX_POOLS + _AVG_POOLS):
            return None
        axes = spatial_axes(module, _MAX_POOLS + _AVG_POOLS)
        kernel, stride, padding = (
            per_axis(v, axes) for v in (module.kernel_size, module.stride, module.padding)
        )
        average = isinstance(module, _AVG_POOLS)
        dilation = (1,) * axes if average else per_axis(module.dilation, axes)
        own_forward = runs_its_own(module, _MAX_POOLS + _AVG_POOLS, "forward")
        pads: tuple[Pad, ...] = (None,) * axes if own_forward else tuple((p, p) for p in padding)
        counts = (
            None if not average or own_forward or module.divisor_override else bool(module.count_include_pad)
        )
        geometry = Geometry(kernel, stride, dilation, pads, ceil=bool(module.ceil_mode))
        return Pooling("average" if average else "max", geometry, counts)

    def normalization(self, module: Any, kind: str | None) -> str | None:
        if isinstance(module, nn.LayerNorm):  # over its last axes: named over the last alone
            return activations.normalized(kind, -1, module.eps) if len(module.normalized_shape) == 1 else None
        if isinstance(module, nn.GroupNorm):
            return activations.normalized(kind, 1, module.eps, module.num_groups, module.num_channels)
        if isinstance(module, _INSTANCE_NORMS):
            return activations.normalized(kind, 1, module.eps, groups=-1)
        return None if isinstance(module, _OTHER_NORMS) else "none"

    def upsampling(self, module: Any) -> Upsampling | None:
        if not isinstance(module, nn.Upsample) or runs_its_own(module, (nn.Upsample,), "forward"):
            return None
        rule = "align_corners" if module.align_corners else "half_pixel"
        return interpolated(module.mode, module.scale_factor, module.size, rule)

    def zero_padding(self, module: Any) -> tuple[tuple[int, int], ...] | None:
        if not isinstance(module, _ZERO_PADS) or module.value != 0:
            return None
        return last_axis_first(module.padding)

    def tensor(self, array: np.ndarray) -> Any:
        return torch.from_numpy(array)

    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        return torch.no_grad()

    def layers(self, model: Any) -> list[Any]:
        return list(model.modules())

    def output_numpy(self, tensor: Any) -> np.ndarray:
        return tensor_to_numpy(tensor.detach())

    def reductions(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        return torch.sum, torch.mean

    def clear_grad(self, var: Any) -> None:
        var.grad = None

    def set_parameter(self, module: Any, native_name: str, var: Any) -> None:
        setattr(module, native_name, var)  # RNN layers refresh their flat weight list here

    def copy_variable(self, var: Any) -> Any:
        value = var.detach().clone()
        return (
            nn.Parameter(value, requires_grad=var.requires_grad) if isinstance(var, nn.Parameter) else value
        )


def fill_tensor(var: Any, fill: Callable[[np.ndarray], None]) -> bool:
    """`Adapter.fill_in_place` for a torch tensor (also Keras-on-torch's)."""
    if var.device.type != "cpu" or not var.is_contiguous() or var.dtype not in _SHARED_DTYPES:
        return False
    with torch.no_grad():
        fill(var.detach().numpy())  # shares the parameter's memory
    torch.autograd.graph.increment_version(var)  # as an in-place op would
    return True


def _zoo(module: Any) -> tuple[str, str] | None:
    """The `zoo_layers` entry of ``module``'s class or of the base it extends."""
    cls = type(module)
    if cls not in _ZOO_OF:
        listed = _KIND.listed(cls)
        key = None if listed is None else (listed.__module__, listed.__name__)
        _ZOO_OF[cls] = key if key in zoo_layers.KINDS else None
    return _ZOO_OF[cls]


#: Per class, `_zoo`'s answer.
_ZOO_OF: dict[type, tuple[str, str] | None] = {}


def _pool_in_forward(module: Any, kind: str, kernel: int, stride: int, padding: int) -> Pooling:
    """The pooling a zoo block runs in its forward (`_POOLS_IN_FORWARD`); its
    padding unknown where its forward was replaced (`forward_replaced`)."""
    replaced = forward_replaced(module)
    pads: tuple[Pad, ...] = (None, None) if replaced else ((padding, padding),) * 2
    geometry = Geometry((kernel,) * 2, (stride,) * 2, (1, 1), pads)
    return Pooling(kind, geometry, None if replaced or kind == "max" else True)


def write_tensor(var: Any, value: np.ndarray, owned: bool) -> None:
    """`Adapter.assign` for a torch tensor (also Keras-on-torch's).

    A value ``owned`` (a copy made for this call, such as a checkpoint's
    tensor just read) becomes the tensor's memory, as ``p.data = t`` and
    ``load_state_dict(assign=True)`` do, instead of being copied once more,
    where nothing could tell the difference: a plain CPU parameter or buffer
    of the value's dtype, whose memory no view, other tensor or array holds
    (`internals.storage_users`), not shared between processes. The tensor
    object stays the same (optimizers, ties and hooks keep it), and its
    version moves on as a copy's would, so a graph that saved the old value
    refuses to run backward. Anything else is copied into the tensor's memory.
    """
    with torch.no_grad():
        given = tensor_from_numpy(value)
        if owned and value.flags.writeable and _adoptable(var, given):
            var.data = given
            torch.autograd.graph.increment_version(var)
        else:
            var.copy_(given)


def _adoptable(var: Any, given: torch.Tensor) -> bool:
    return (
        type(var) in (nn.Parameter, torch.Tensor)  # not a subclass (DTensor, lazy parameters)
        and var.device.type == "cpu"
        and var.layout == torch.strided
        and var.dtype == given.dtype
        and var.shape == given.shape
        and var.is_contiguous()
        and not var.is_inference()
        and not var.is_shared()
        and internals.storage_users(var) == 1
    )


def _lazy_names(module: Any) -> list[str]:
    """The names of a lazy module's own variables that have no shape yet."""
    own = (*module.named_parameters(recurse=False), *module.named_buffers(recurse=False))
    return [name for name, var in own if nn.parameter.is_lazy(var)]


def _materialized(var: Any) -> Any:
    """The variable, if it holds values: a meta tensor (a model built on
    ``device="meta"``) has a shape but no values to read or write, and a lazy
    module's parameter not even a shape until the module's first call."""
    if nn.parameter.is_lazy(var):
        raise NotBuiltError(
            "A parameter of a lazy torch layer has no shape and no values yet: torch infers its "
            "shape from the layer's first input. Expected a built model: call it once on an input "
            "(model(x)) first. " + received(type=type(var).__name__)
        )
    if var.is_meta:
        raise NotBuiltError(
            f"A parameter of shape {tuple(var.shape)} is on torch's meta device: it has a shape but no "
            "values, so there is nothing to read, and a write would be lost. Expected a model with "
            "values: call model.to_empty(device='cpu') first (then load or initialise it). "
            + received(device="meta")
        )
    return var


def tensor_to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A copy of a (detached) tensor as numpy; bfloat16 kept exactly."""
    tensor = tensor.cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: go through its bits
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return tensor.numpy().copy()


def tensor_from_numpy(array: np.ndarray) -> torch.Tensor:
    """A tensor over ``array``'s memory, only ever read (the source of a copy)."""
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    bfloat16 = array.dtype.name == "bfloat16"
    with warnings.catch_warnings():  # read-only memory is fine: torch only reads it here
        warnings.simplefilter("ignore", UserWarning)
        tensor = torch.from_numpy(array.view(np.int16) if bfloat16 else array)
    return tensor.view(torch.bfloat16) if bfloat16 else tensor


ADAPTER = TorchAdapter()
