"""Fans and gains, computed in the canonical (PyTorch) layout.

``fan_in = shape[1] * receptive field`` and ``fan_out = shape[0] * receptive
field``, where the receptive field is the product of the kernel axes: torch's
rule, which Keras and Paddle match once their kernels are in canonical layout.
"""

from __future__ import annotations

import math

from .errors import InitError, received

_GAINS = {
    "linear": 1.0,
    "identity": 1.0,
    "conv1d": 1.0,
    "conv2d": 1.0,
    "conv3d": 1.0,
    "conv_transpose1d": 1.0,
    "conv_transpose2d": 1.0,
    "conv_transpose3d": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4,
}
NONLINEARITIES = tuple(sorted([*_GAINS, "leaky_relu"]))


def fans(shape: tuple[int, ...], *, path: str = "") -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a canonical shape.

    Raises:
        InitError: The shape has fewer than 2 axes (a bias has no fans).

    Examples:
        >>> fans((16, 3, 5, 5))
        (75, 400)
    """
    if len(shape) < 2:
        where = f" of {path!r}" if path else ""
        raise InitError(
            f"Fan in and fan out cannot be computed for the {len(shape)}-D shape{where}. "
            "Expected a parameter with at least 2 axes (out, in, *kernel); 1-D parameters such "
            "as biases and norm scales take Zeros, Ones, Constant, Normal or Uniform. "
            + received(shape=tuple(shape))
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def channels_last_fans(shape: tuple[int, ...], *, path: str = "") -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a kernel as a channels-last framework lays it out
    and counts it (Keras): its last two axes are in and out, the others the
    receptive field. The same as `fans` of the canonical shape, except where
    the layouts group channels otherwise (a depthwise kernel ``(kH, kW, C, M)``
    counts ``C`` inputs, its canonical ``(C * M, 1, kH, kW)`` one).

    Examples:
        >>> channels_last_fans((3, 3, 32, 2)), fans((64, 1, 3, 3))
        ((288, 18), (9, 576))
    """
    if len(shape) < 2:
        return fans(shape, path=path)  # refused with the reason
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch's table).

    Args:
        nonlinearity: ``"linear"``, ``"conv2d"``, ``"sigmoid"``, ``"tanh"``,
            ``"relu"``, ``"leaky_relu"``, ``"selu"``, ...
        param: The negative slope of ``leaky_relu`` (default 0.01).

    Raises:
        InitError: Unknown nonlinearity or invalid slope.

    Examples:
        >>> round(calculate_gain("relu"), 4), calculate_gain("tanh")
        (1.4142, 1.6666666666666667)
    """
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise InitError(
                "calculate_gain: invalid leaky_relu slope. Expected a number. " + received(param=param)
            )
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity not in _GAINS:
        raise InitError(
            f"calculate_gain: unknown nonlinearity {nonlinearity!r}. Expected one of "
            f"{NONLINEARITIES}. " + received(nonlinearity=nonlinearity)
        )
    return _GAINS[nonlinearity]
