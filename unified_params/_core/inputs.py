"""What input a model expects, and the axes each framework wants.

Canonical inputs are PyTorch's: images channels-first. A model whose first
layer takes them channels last (Keras, unless built channels first; a paddle
layer built with ``data_format="NHWC"``) gets image axes moved on the way in
and its outputs moved back on the way out, so ``m(x)``, ``up.gradients`` and ``up.port``'s check
take and give the same arrays on every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import takewhile
from typing import Any, NamedTuple

import numpy as np

from . import values
from .errors import ShapeError, received
from .flatten import holds_channels_last
from .layouts import CHANNEL_NORMS, RECURRENT
from .view import Module, Param

#: What the first parameterised layer needs of an input: a description, a
#: check, and that layer's kind.
Expected = tuple[str, Callable[[np.ndarray], bool], str]


class Placement(NamedTuple):
    """Where a model wants a canonical input's axes, read from one walk of it.

    Attributes:
        expected: What its first parameterised layer needs of an input (a
            description, a check and that layer's kind), if anything is known.
        channels_last: Whether that layer takes images channels last.
        time_major: Whether its first recurrent layer takes ``(time, batch, ...)``
            (torch's ``batch_first=False``, its default).
        gives_channels_last: The number of axes of the maps its last
            parameterised layer gives channels last, where that layer is a
            convolution that does (a generator's, whose input is no map);
            else 0.
    """

    expected: Expected | None
    channels_last: bool
    time_major: bool
    gives_channels_last: int = 0

    def channels_moved(self, model: Module, ndim: int) -> bool:
        """Whether an input of ``ndim`` axes goes to ``model`` with its channels
        moved last: the first parameterised layer says so (a convolution, a
        batch norm), or, when that layer cannot (a Keras model that starts
        with Normalization), the rank of the input the model declares (4 or
        5: images or volumes)."""
        if ndim < 3:
            return False
        if self.expected is not None:
            return moves_channels(self.expected[2], ndim) and self.channels_last
        last = model.capabilities.channels_last
        return last and ndim >= 4 and model.adapter.input_rank(model.native) == ndim

    def output_moved(self, model: Module, ndim: int, input_ndim: int) -> bool:
        """Whether an output (or a target) of ``ndim`` axes is a map the model
        gives channels last, for an input of ``input_ndim`` axes: where its last
        layer is a convolution that gives them so, or where its input's
        channels were moved and the output has as many axes."""
        if ndim == self.gives_channels_last:  # not a map reshaped after it (a ViT's patches)
            return True
        return ndim == input_ndim and self.channels_moved(model, input_ndim)


def placement(model: Module, inputs: Any = None) -> Placement:
    """Where ``model`` wants a canonical input's axes (one walk of the model).

    The first listed layer takes the input, where the framework lists layers
    in the order it calls them. Where it does not (Flax NNX lists a module's
    attributes by name), and ``inputs`` does not fit that layer, the first
    listed layer that it fits takes it instead.

    Examples:
        >>> from unified_params import spec as S, wrap
        >>> placement(wrap(S.Sequential(S.Conv2d(3, 4, 3)).build("torch")))[1:]
        (False, False, 0)
    """
    params = list(model.params().values())
    if not params:
        return Placement(None, False, False)
    first = _weight_of_first(params)
    if inputs is not None and not model.capabilities.call_order:
        first = _first_fitting(model, params, first, values.as_array(inputs, path="<inputs>"))
    recurrent = next((p for p in params if p.layer_kind in RECURRENT), None)
    time_major = recurrent is not None and model.adapter.input_layout(recurrent.module.native) == "time_major"
    last = params[-1]
    rank = _map_rank(last.layer_kind)
    gives = rank if rank and holds_channels_last(last.module) else 0
    return Placement(_expected(model, first), holds_channels_last(first.module), time_major, gives)


def _map_rank(kind: str) -> int:
    """The axes of the maps a convolution of ``kind`` gives (``conv2d``: 4), else 0."""
    if kind.startswith(("conv", "separable_conv")) and kind[-1] == "d" and kind[-2].isdigit():
        return int(kind[-2]) + 2
    return 0


def _weight_of_first(params: list[Param]) -> Param:
    """The first layer's weight, which tells its input, wherever the layer lists
    it (a Keras Dense quantized to int8 lists its frozen kernel after its bias);
    its first variable when it has none so named."""
    holder = params[0].path.rpartition(".")[0]
    own = takewhile(lambda p: p.path.rpartition(".")[0] == holder, params)
    return next((p for p in own if p.name == "weight"), params[0])


def _first_fitting(model: Module, params: list[Param], first: Param, x: np.ndarray) -> Param:
    """The first listed layer's weight whose expectation ``x`` fits, if
    ``first``'s does not (a layer listed first by name, not by call)."""
    expected = _expected(model, first)
    if expected is None or expected[1](x):
        return first
    by_layer: dict[str, list[Param]] = {}  # each layer's variables, layers in listing order
    for p in params:
        by_layer.setdefault(p.path.rpartition(".")[0], []).append(p)
    for own in by_layer.values():
        weight = _weight_of_first(own)
        found = _expected(model, weight)
        if found is not None and found[1](x):
            return weight
    return first


def _expected(model: Module, first: Param) -> Expected | None:
    shape, kind = first.shape, first.layer_kind
    if len(shape) < (2 if kind == "linear" or kind.startswith("conv") or kind in RECURRENT else 1):
        return None  # not the variable that tells the input (a layer without its weight)
    if kind == "linear":
        return f"(batch, ..., {shape[1]})", lambda x: x.ndim >= 1 and x.shape[-1] == shape[1], kind
    if kind.startswith("conv"):
        dims = int(kind[-2])
        groups = int(model.adapter.hyperparameters(first.module.native).get("groups", 1))
        channels = shape[0] if kind.startswith("conv_transpose") else shape[1] * groups
        spatial = ["L", "H, W", "D, H, W"][dims - 1]
        description = f"(batch, {channels}, {spatial}) channels first"
        return description, lambda x: x.ndim == dims + 2 and x.shape[1] == channels, kind
    if kind in CHANNEL_NORMS:
        c = shape[0]
        return f"(batch, {c}, ...) channels first", lambda x: x.ndim >= 2 and x.shape[1] == c, kind
    if kind in RECURRENT:
        return f"(batch, time, {shape[1]})", lambda x: x.ndim == 3 and x.shape[-1] == shape[1], kind
    if kind == "embedding":
        return "integer indices", lambda x: x.dtype.kind in "iu", kind
    return None


def moves_channels(kind: str, ndim: int) -> bool:
    """Whether a channels-last framework takes this input with channels moved last."""
    return (kind.startswith("conv") or kind in CHANNEL_NORMS) and ndim >= 3


def prepare_input(model: Module, inputs: Any, where: Placement | None = None) -> np.ndarray:
    """Validate the input against the first layer and put image axes where the
    framework wants them (canonical inputs are channels first); ``where``:
    the model's `placement`, when the caller has it.

    Raises:
        ShapeError: The input does not fit the model's first layer.
    """
    where = placement(model, inputs) if where is None else where
    x = values.as_array(inputs, path="<inputs>")
    if where.expected is not None:
        description, fits, kind = where.expected
        if not fits(x):
            raise ShapeError(
                f"The input does not fit the model's first {kind} layer. Expected an input of shape "
                f"{description}. " + received(shape=x.shape, dtype=str(x.dtype))
            )
        if x.dtype.kind == "f" and x.dtype != np.float32:
            x = x.astype(np.float32)
    if where.channels_moved(model, x.ndim):
        x = np.moveaxis(x, 1, -1)
    if x.ndim >= 2 and where.time_major:
        x = np.swapaxes(x, 0, 1)
    return np.ascontiguousarray(x)


def restore_output(model: Module, x: np.ndarray, output: Any, where: Placement) -> np.ndarray:
    """A native output as numpy, channels first where the model gives a map
    channels last (`Placement.output_moved`), batch first where the input's
    time axis was moved first."""
    out = np.asarray(output)
    if out.ndim >= 3 and out.shape[:2] == x.shape[:2] and where.time_major:
        return np.swapaxes(out, 0, 1)  # (time, batch, ...) as the layer gives it, batch first again
    return np.moveaxis(out, -1, 1) if where.output_moved(model, out.ndim, x.ndim) else out
