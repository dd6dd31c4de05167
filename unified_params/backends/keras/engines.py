"""What differs between Keras' engines: reading, writing and differentiating variables.

Keras 3 runs on TensorFlow, JAX or torch (``KERAS_BACKEND``, fixed at the
first import). A Keras variable's value is then a ``tf.Variable``'s tensor, an
immutable ``jax.Array`` (a write rebinds it) or a ``torch.nn.Parameter`` (a
write copies into it). `engine_for` gives the operations of the engine this
process runs; the adapter calls nothing engine-specific itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from ..._core import layouts
from ..._core.errors import UnsupportedError, received
from ..._core.gradients import Backward, reduce_loss
from ..._core.layouts import aligned_empty, contiguous


class Engine:
    """Value operations on one Keras engine (the defaults suit any engine)."""

    name = ""
    #: Whether an ``AveragePooling*D(padding="same")`` averages each window
    #: over the input's positions in it alone, as TensorFlow does (measured
    #: with Keras 3.15.1: over 1..10, the last window of a 3-wide, stride 2
    #: pooling gives 9.5 on TensorFlow and JAX, the mean of 9 and 10, and 9.67
    #: on torch). On torch, Keras 3.15.1 leaves a padding split evenly on
    #: every axis out (torch's ``count_include_pad=False``) and pads an uneven
    #: one with the input's edge values, which count (``_apply_same_padding``,
    #: ``mode="replicate"``): 9.67 is the mean of 9, 10 and 10.
    same_average_excludes_padding = True
    #: What ``UpSampling2D(interpolation="bicubic")`` computes, as `Upsampling`
    #: names it (measured with Keras 3.15.1: TensorFlow's and JAX's kernel has
    #: a = -0.5 and leaves out positions past the ends; on torch, Keras calls
    #: torch's, a = -0.75, which repeats the end values).
    cubic = "cubic(a=-0.5)"

    def whole(self, var: Any) -> Any:
        """The variable, if this process holds all of its value (every replica
        of a ``tf.distribute.MirroredStrategy``, every device of a JAX mesh);
        else `UnsupportedError` (the default holds all)."""
        return var

    def view(self, var: Any) -> np.ndarray:
        return np.asarray(var.value)

    def assign(self, var: Any, value: np.ndarray, owned: bool) -> None:
        var.assign(value)

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> bool:
        """Write ``var[index]`` in place; False when the engine cannot (the
        adapter then writes the whole value)."""
        return False

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        return False

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        raise NotImplementedError


class TensorFlow(Engine):
    name = "tensorflow"

    def view(self, var: Any) -> np.ndarray:
        import tensorflow as tf

        try:  # the variable's current buffer, read through DLPack
            return np.from_dlpack(tf.convert_to_tensor(var.value))
        except (TypeError, RuntimeError, BufferError, AttributeError):
            return var.numpy()

    def assign(self, var: Any, value: np.ndarray, owned: bool) -> None:
        import tensorflow as tf

        tensor: Any = value
        if value.dtype in (np.float32, np.float64) and value.nbytes >= 1 << 20:
            # The variable adopts the tensor it is given, so it gets memory of its own,
            # 64-byte aligned as TF's kernels require, through DLPack (TF's own
            # conversion would copy twice). A copy made for this call is handed over
            # as it is; any other array is copied into memory of ours first, which
            # the variable lets go at its next write: within one write of many values
            # (`recycling.scope`) that memory takes the next value, where TF's
            # `DeepCopy` would take new memory every time. For 16 x 64 MiB written
            # again on an AVX2 VM: 1.8-2.2x memcpy's time against 5.0-6.1x with
            # `DeepCopy`; written the first time, 5.1-5.6x against 5.2-6.8x.
            handed = value if owned and layouts.adoptable(value) else _fresh_copy(value)
            tensor = tf.experimental.dlpack.from_dlpack(handed.__dlpack__())
        var.assign(tensor)

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        import tensorflow as tf

        t = None if request.targets is None else tf.convert_to_tensor(request.targets)
        with tf.GradientTape() as tape:
            out = model(tf.convert_to_tensor(request.inputs), training=request.training)
            value = reduce_loss(out, request.loss, t, keras.ops.sum, keras.ops.mean)
        grads = tape.gradient(value, variables)
        # An embedding's gradient comes as IndexedSlices: convert_to_tensor densifies it.
        return [None if g is None else tf.convert_to_tensor(g).numpy() for g in grads]


def _fresh_copy(value: np.ndarray) -> np.ndarray:
    """A copy into aligned memory of ours (memory let go earlier in the same
    write when there is some: `recycling.aligned_empty`)."""
    return contiguous(value, out=aligned_empty(value.shape, value.dtype))  # flat_copy's cores when large


class Jax(Engine):
    name = "jax"

    def whole(self, var: Any) -> Any:
        value = var.value
        if not getattr(value, "is_fully_addressable", True):
            raise UnsupportedError(
                f"The Keras variable {var.path!r} is a JAX array spread over processes "
                f"({value.sharding}): this process holds only part of it, and unified-params reads "
                "and writes no such variable, so nothing was read or written. Supported: Keras "
                "variables laid out over the devices of one process (keras.distribution on one "
                "host), and torch DTensors over processes. Expected a variable this process holds "
                "whole. " + received(path=var.path, sharding=str(value.sharding))
            )
        return var

    def assign(self, var: Any, value: np.ndarray, owned: bool) -> None:
        import jax.numpy as jnp

        # On CPU, converting an aligned numpy array shares its memory, and a copy
        # reads the array after the call returns: the caller's array, changed next,
        # would change the variable. So a copy, waited for; a copy made for this
        # call is taken as is.
        var.assign(value if owned else jnp.array(value, copy=True).block_until_ready())

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> bool:
        # jax arrays are immutable: a new one, waited for (it reads ``value``, as in `assign`).
        var.assign(var.value.at[index].set(value).block_until_ready())
        return True

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        import jax
        import jax.numpy as jnp

        trainable = model.trainable_variables
        frozen = model.non_trainable_variables
        x = jnp.asarray(request.inputs)
        t = None if request.targets is None else jnp.asarray(request.targets)

        flags = {"training": request.training} if _takes_training(model) else {}

        def loss(values: list[Any], fixed: list[Any]) -> tuple[Any, list[Any]]:
            out, updates = model.stateless_call(values, fixed, x, **flags)
            return reduce_loss(out, request.loss, t, jnp.sum, jnp.mean), updates

        grad_of = jax.grad(loss, has_aux=True)
        grads, updates = grad_of([v.value for v in trainable], [v.value for v in frozen])
        for var, value in zip(frozen, updates, strict=True):
            var.assign(value)  # batch statistics a training-mode call moves, as a real call would
        by_id = {id(v): g for v, g in zip(trainable, grads, strict=True)}
        return [None if id(v) not in by_id else np.array(by_id[id(v)]) for v in variables]


class Torch(Engine):
    name = "torch"
    same_average_excludes_padding = False
    cubic = "cubic(a=-0.75)"

    def view(self, var: Any) -> np.ndarray:
        import torch

        from ..torch.adapter import tensor_to_numpy

        value = var.value
        if value.device.type != "cpu" or value.dtype == torch.bfloat16:
            return tensor_to_numpy(value.detach())
        return value.detach().numpy()

    def assign(self, var: Any, value: np.ndarray, owned: bool) -> None:
        from ..torch.adapter import write_tensor

        write_tensor(var.value, value, owned)  # the same Parameter, new values

    def assign_slice(self, var: Any, index: tuple[Any, ...], value: np.ndarray) -> bool:
        import torch

        from ..torch.adapter import tensor_from_numpy

        with torch.no_grad():
            var.value[index] = tensor_from_numpy(value)
        return True

    def fill_in_place(self, var: Any, fill: Callable[[np.ndarray], None]) -> bool:
        from ..torch.adapter import fill_tensor

        return fill_tensor(var.value, fill)

    def gradients(self, model: Any, variables: list[Any], request: Backward) -> list[np.ndarray | None]:
        import torch

        from ..torch.adapter import tensor_to_numpy

        t = None if request.targets is None else torch.from_numpy(request.targets)
        out = model(torch.from_numpy(request.inputs), training=request.training)
        value = reduce_loss(out, request.loss, t, torch.sum, torch.mean)
        leaves = [v.value for v in variables]
        grads = torch.autograd.grad(value, leaves, allow_unused=True)
        return [None if g is None else tensor_to_numpy(g.detach()) for g in grads]


def _takes_training(model: Any) -> bool:
    """Whether the model's ``call`` takes ``training`` (Keras passes it only then;
    ``stateless_call`` passes what it is given)."""
    parameters = inspect.signature(model.call).parameters
    return "training" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


_ENGINES: dict[str, type[Engine]] = {"tensorflow": TensorFlow, "jax": Jax, "torch": Torch}


def engine_for(name: str) -> Engine:
    """The operations of a Keras engine by the name ``keras.backend.backend()`` gives."""
    return _ENGINES[name]()
