"""PyTorch adapter: ``torch.nn.Module`` models.

PyTorch's names and layout are the canonical ones, so this adapter declares no
leaves: it only reads and writes.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sized
from typing import Any

import numpy as np
import torch
from torch import nn

from .._core.errors import NotBuiltError, UnsupportedError, received
from .._core.gradients import Backward, reduce_loss
from .._core.initializers import FanInUniform, Normal, Ones, RecurrentUniform, Zeros
from ._base import (
    Adapter,
    KindTable,
    NativeVariable,
    first_output,
    registered_containers,
    registered_holds,
    registered_variables,
    training_mode,
)

_KINDS: dict[type, str] = {
    nn.Linear: "linear",
    nn.Conv1d: "conv1d",
    nn.Conv2d: "conv2d",
    nn.Conv3d: "conv3d",
    nn.ConvTranspose1d: "conv_transpose1d",
    nn.ConvTranspose2d: "conv_transpose2d",
    nn.MultiheadAttention: "mha",
    nn.modules.batchnorm._BatchNorm: "batchnorm",
    nn.LayerNorm: "layernorm",
    nn.Embedding: "embedding",
    nn.LSTM: "lstm",
    nn.GRU: "gru",
    nn.ReLU: "relu",
    nn.Flatten: "flatten",
    nn.Sequential: "container",
    nn.ModuleList: "container",
    nn.ModuleDict: "container",
}
_KIND = KindTable(_KINDS)


_SHARED_DTYPES = (torch.float32, torch.float64)
_RECURRENT = {leaf: RecurrentUniform() for leaf in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
_AFFINE = {"weight": FanInUniform(), "bias": FanInUniform()}  # kaiming_uniform(a=sqrt(5)) and its bias
_NORM = {"weight": Ones(), "bias": Zeros()}


class TorchAdapter(Adapter):
    name = "torch"
    DEFAULT_INIT = {
        **{
            kind: _AFFINE
            for kind in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d")
        },
        "batchnorm": _NORM,
        "layernorm": _NORM,
        "embedding": {"weight": Normal(0.0, 1.0)},
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
        inner = model.__dict__.get("_modules", {}).get("_orig_mod")
        if type(model).__name__ == "OptimizedModule" and isinstance(inner, nn.Module):
            return inner  # torch.compile's wrapper shares the original module and its parameters
        return model

    def type_name(self, module: Any) -> str:
        return type(module).__name__

    def kind(self, module: Any) -> str:
        return _KIND(type(module))

    def children(self, module: Any) -> list[tuple[str, Any]]:
        return [(k, c) for k, c in module._modules.items() if c is not None]

    def child(self, module: Any, key: str) -> Any | None:
        return module._modules.get(key)

    def containers(self, module: Any) -> tuple[Sized, ...]:
        return registered_containers(
            module._modules, module._parameters, module._buffers, module._non_persistent_buffers_set
        )

    def container_getter(self, module: Any) -> Callable[[Any], tuple[Sized, ...]]:
        return self.containers

    def variables(self, module: Any) -> list[NativeVariable]:
        return registered_variables(module._parameters, module._buffers, module._non_persistent_buffers_set)

    def holds(self, module: Any, native_name: str, var: Any) -> bool:
        return registered_holds(module._parameters, module._buffers, native_name, var)

    def shape(self, var: Any) -> tuple[int, ...]:
        return tuple(var.shape)

    def dtype(self, var: Any) -> str:
        return str(var.dtype).removeprefix("torch.")

    def trainable(self, var: Any) -> bool:
        return bool(var.requires_grad)

    def set_trainable(self, var: Any, flag: bool) -> None:
        var.requires_grad_(flag)

    def to_numpy(self, var: Any) -> np.ndarray:
        return _to_numpy(_materialized(var).detach())

    def view(self, var: Any) -> np.ndarray:
        if _materialized(var).device.type != "cpu" or var.dtype == torch.bfloat16:
            return self.to_numpy(var)
        return var.detach().numpy()

    def assign(self, var: Any, value: np.ndarray, owned: bool = False) -> None:
        with torch.no_grad():
            _materialized(var).copy_(_from_numpy(value))

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> None:
        with torch.no_grad():
            _materialized(var)[index] = _from_numpy(value)

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        if (
            _materialized(var).device.type != "cpu"
            or not var.is_contiguous()
            or var.dtype not in _SHARED_DTYPES
        ):
            return False
        with torch.no_grad():
            fill(var.detach().numpy())  # shares the parameter's memory
        torch.autograd.graph.increment_version(var)  # as an in-place op would
        return True

    def grad(self, var: Any) -> np.ndarray | None:
        return None if var.grad is None else _to_numpy(var.grad.detach())

    def after_write(self, module: Any) -> None:
        pass  # torch and paddle layers read their parameters afresh on every call

    def input_rank(self, model: Any) -> int | None:
        return None  # inputs are channels-first already: nothing to decide

    def hyperparameters(self, module: Any) -> dict[str, float]:
        found = {k: getattr(module, k, None) for k in ("eps", "momentum", "groups")}
        return {
            k: float(v) for k, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }

    def forward(self, model: Any, inputs: np.ndarray, training: bool) -> Any:
        with training_mode(model.modules(), training), torch.no_grad():
            return _to_numpy(first_output(model(torch.from_numpy(inputs))))

    def set_child(self, parent: Any, key: str, child: Any) -> None:
        parent._modules[key] = child

    def copy_layer(self, layer: Any) -> Any:
        return copy.deepcopy(layer)

    def set_variable(self, module: Any, native_name: str, var: Any) -> None:
        if native_name in module._buffers:
            module._buffers[native_name] = var
        else:
            setattr(module, native_name, var)  # RNN layers refresh their flat weight list here

    def copy_variable(self, var: Any) -> Any:
        value = var.detach().clone()
        return (
            nn.Parameter(value, requires_grad=var.requires_grad) if isinstance(var, nn.Parameter) else value
        )

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        t = None if request.targets is None else torch.from_numpy(request.targets)
        with training_mode(model.modules(), request.training):
            out = first_output(model(torch.from_numpy(request.inputs)))
            value = reduce_loss(out, request.loss, t, torch.sum, torch.mean)
        for v in variables:
            v.grad = None
        value.backward()
        return [self.grad(v) for v in variables]


def _materialized(var: Any) -> Any:
    """The variable, if it holds values: a meta tensor (a model built on
    ``device="meta"``) has a shape but no values to read or write."""
    if var.is_meta:
        raise NotBuiltError(
            f"A parameter of shape {tuple(var.shape)} is on torch's meta device: it has a shape but no "
            "values, so there is nothing to read, and a write would be lost. Expected a model with "
            "values: call model.to_empty(device='cpu') first (then load or initialise it). "
            + received(device="meta")
        )
    return var


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: go through its bits
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return tensor.numpy().copy()


def _from_numpy(array: np.ndarray) -> torch.Tensor:
    """A tensor over ``array``'s memory, only ever read (the source of a copy)."""
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    bfloat16 = array.dtype.name == "bfloat16"
    with warnings.catch_warnings():  # read-only memory is fine: torch only reads it here
        warnings.simplefilter("ignore", UserWarning)
        tensor = torch.from_numpy(array.view(np.int16) if bfloat16 else array)
    return tensor.view(torch.bfloat16) if bfloat16 else tensor


ADAPTER = TorchAdapter()
