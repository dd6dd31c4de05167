"""PaddlePaddle adapter: ``paddle.nn.Layer`` models.

Paddle stores Linear weights ``(in, out)`` and BatchNorm statistics as
parameters named ``_mean`` / ``_variance`` with ``stop_gradient=True``; the
LSTM/GRU layers keep their flattened ``weight_ih_l0``-style parameters on the
layer itself (their inner cell sublayers reuse the same objects).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sized
from typing import Any

import numpy as np
import paddle
from paddle import nn

from .._core.gradients import Backward, reduce_loss
from .._core.initializers import KaimingNormal, Ones, RecurrentUniform, XavierUniform, Zeros
from .._core.layouts import Leaf
from .._core.state import Part
from ._base import (
    Adapter,
    KindTable,
    NativeVariable,
    assign_slice_by_copy,
    first_output,
    registered_containers,
    registered_holds,
    registered_variables,
    training_mode,
)

_KINDS: dict[type, str] = {
    nn.Linear: "linear",
    nn.Conv1D: "conv1d",
    nn.Conv2D: "conv2d",
    nn.Conv3D: "conv3d",
    nn.Conv1DTranspose: "conv_transpose1d",
    nn.Conv2DTranspose: "conv_transpose2d",
    nn.MultiHeadAttention: "mha",
    nn.layer.norm._BatchNormBase: "batchnorm",
    nn.BatchNorm: "batchnorm",
    nn.LayerNorm: "layernorm",
    nn.Embedding: "embedding",
    nn.LSTM: "lstm",
    nn.GRU: "gru",
    nn.ReLU: "relu",
    nn.Flatten: "flatten",
    nn.Sequential: "container",
    nn.LayerList: "container",
    nn.LayerDict: "container",
}
_KIND = KindTable(_KINDS)
_LEAF_ONLY = frozenset({"lstm", "gru"})


_TRANSPOSE = ("conv_transpose1d", "conv_transpose2d")
_PROJECTIONS = {"q_proj": 0, "k_proj": 1, "v_proj": 2}
_RECURRENT = {leaf: RecurrentUniform() for leaf in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
_CONV = {"weight": KaimingNormal(nonlinearity="relu"), "bias": Zeros()}  # Normal(0, sqrt(2 / fan_in))
_NORM = {"weight": Ones(), "bias": Zeros()}


class PaddleAdapter(Adapter):
    name = "paddle"
    DEFAULT_INIT = {
        "linear": {"weight": XavierUniform(), "bias": Zeros()},
        **{kind: _CONV for kind in ("conv1d", "conv2d", "conv3d")},
        # Paddle scales transposed kernels by in_channels x kernel: fan_out in canonical terms.
        **{
            k: {"weight": KaimingNormal(mode="fan_out", nonlinearity="relu"), "bias": Zeros()}
            for k in _TRANSPOSE
        },
        "batchnorm": _NORM,
        "layernorm": _NORM,
        "embedding": {"weight": XavierUniform()},
        "lstm": _RECURRENT,
        "gru": _RECURRENT,
    }
    LEAVES = {
        "linear": {"weight": Leaf("weight", ("in", "out"))},
        "batchnorm": {"_mean": Leaf("running_mean"), "_variance": Leaf("running_var")},
    }
    GATHERS = {
        "mha": {
            **{f"{proj}.weight": Part("in_proj_weight", i) for proj, i in _PROJECTIONS.items()},
            **{f"{proj}.bias": Part("in_proj_bias", i) for proj, i in _PROJECTIONS.items()},
            "out_proj.weight": Part("out_proj.weight", 0),
            "out_proj.bias": Part("out_proj.bias", 0),
        }
    }

    def unwrap(self, model: Any) -> Any:
        return model  # no wrapper types to see through

    def type_name(self, module: Any) -> str:
        return type(module).__name__

    def kind(self, module: Any) -> str:
        return _KIND(type(module))

    def children(self, module: Any) -> list[tuple[str, Any]]:
        if self.kind(module) in _LEAF_ONLY:
            return []
        return [(k, c) for k, c in module._sub_layers.items() if c is not None]

    def child(self, module: Any, key: str) -> Any | None:
        return None if self.kind(module) in _LEAF_ONLY else module._sub_layers.get(key)

    def containers(self, module: Any) -> tuple[Sized, ...]:
        return registered_containers(
            module._sub_layers, module._parameters, module._buffers, module._non_persistable_buffer_names_set
        )

    def container_getter(self, module: Any) -> Callable[[Any], tuple[Sized, ...]]:
        return self.containers

    def variables(self, module: Any) -> list[NativeVariable]:
        return registered_variables(
            module._parameters, module._buffers, module._non_persistable_buffer_names_set
        )

    def holds(self, module: Any, native_name: str, var: Any) -> bool:
        return registered_holds(module._parameters, module._buffers, native_name, var)

    def shape(self, var: Any) -> tuple[int, ...]:
        return tuple(int(d) for d in var.shape)

    def dtype(self, var: Any) -> str:
        return str(var.dtype).removeprefix("paddle.")

    def trainable(self, var: Any) -> bool:
        return not var.stop_gradient

    def set_trainable(self, var: Any, flag: bool) -> None:
        var.stop_gradient = not flag

    def to_numpy(self, var: Any) -> np.ndarray:
        array = np.array(var.numpy(), copy=True)
        return _as_bfloat16(array) if self.dtype(var) == "bfloat16" else array

    def view(self, var: Any) -> np.ndarray:
        shared = _shared(var)
        return self.to_numpy(var) if shared is None else shared

    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        # Paddle takes and gives bfloat16 as its raw uint16 bits.
        var.set_value(value.view(np.uint16) if value.dtype.name == "bfloat16" else value)

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        assign_slice_by_copy(self, var, index, value)

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        shared = _shared(var)
        if shared is None or shared.dtype not in (np.float32, np.float64):
            return False
        fill(shared)  # writes through DLPack into the parameter's own memory
        return True

    def grad(self, var: Any) -> np.ndarray | None:
        grad = var.grad
        return None if grad is None else np.array(grad.numpy(), copy=True)

    def after_write(self, module: Any) -> None:
        pass  # paddle layers read their parameters afresh on every call

    def input_rank(self, model: Any) -> int | None:
        return None  # inputs are channels-first already: nothing to decide

    def hyperparameters(self, module: Any) -> dict[str, float]:
        out = {}
        if isinstance(getattr(module, "_epsilon", None), float):
            out["eps"] = module._epsilon
        if isinstance(getattr(module, "_momentum", None), float):
            out["momentum"] = 1.0 - module._momentum  # paddle keeps 1 - torch's momentum
        if isinstance(getattr(module, "_groups", None), int):
            out["groups"] = float(module._groups)
        return out

    def forward(self, model: Any, inputs: np.ndarray, training: bool) -> Any:
        with training_mode(model.sublayers(include_self=True), training), paddle.no_grad():
            return np.array(first_output(model(paddle.to_tensor(inputs))).numpy())

    def set_child(self, parent: Any, key: str, child: Any) -> None:
        parent._sub_layers[key] = child

    def copy_layer(self, layer: Any) -> Any:
        return copy.deepcopy(layer)

    def set_variable(self, module: Any, native_name: str, var: Any) -> None:
        slots = module._buffers if native_name in module._buffers else module._parameters
        slots[native_name] = var

    def copy_variable(self, var: Any) -> Any:
        return copy.deepcopy(var)

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        t = None if request.targets is None else paddle.to_tensor(request.targets)
        layers = model.sublayers(include_self=True)
        # Paddle's rnn kernel keeps nothing for backward in eval mode ("Tensor holds no
        # memory" in RnnGradNode); without dropout its training mode computes the same.
        rnns = [x for x in layers if self.kind(x) in _LEAF_ONLY and not getattr(x, "dropout", 0)]
        with training_mode(layers, request.training), training_mode(rnns, True):
            out = first_output(model(paddle.to_tensor(request.inputs)))
            value = reduce_loss(out, request.loss, t, paddle.sum, paddle.mean)
        for v in variables:
            v.clear_gradient(False)
        value.backward()
        return [self.grad(v) for v in variables]


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


ADAPTER = PaddleAdapter()
