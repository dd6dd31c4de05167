"""When a comparison of two models' outputs proves something of their weights.

``up.port(..., check_input=x)`` and ``up.testing.assert_same_outputs``
compare outputs by ``numpy.allclose``'s rule, ``|b - a| <= atol + rtol * |a|``
with ``a`` the first (source) model's output. The rule has blind spots that
random weights fall into: a deep network at its initial scales can answer
1e-12 for every input (any output near zero passes), or answer its last
layer's bias whatever the input, its features having faded on the way (a
model with every other weight wrong passes). Both callers refuse such a
comparison rather than call it a match. The other way round, a port refused
by a difference within float32 rounding of the outputs' scale says so
(`rounding_hint`): the rule's ``atol`` is absolute, rounding is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .values import as_array


def blind_spot(reference: Any, without_input: Callable[[], Any] | None, *, atol: float, rtol: float) -> str:
    """Why a comparison with ``reference`` proves nothing of the weights that
    act on the input, or ``""`` when it does.

    ``without_input`` gives the first model's output for an all-zero input of
    the same shape; it is called only when the outputs are not all near zero,
    and never when it is ``None`` (a forward pass in training mode would
    change the model's running statistics).

    Examples:
        >>> blind_spot(np.array([1e-12, -3e-12]), lambda: 0.0, atol=1e-5, rtol=1e-4)[:40]
        'every output is within atol=1e-05 of zer'
        >>> blind_spot(np.array([0.5, 0.25]), lambda: np.array([0.5, 0.25]), atol=1e-5, rtol=1e-4)[:38]
        'the output for this input is within to'
        >>> blind_spot(np.array([0.5, 0.25]), lambda: np.array([0.1, 0.2]), atol=1e-5, rtol=1e-4)
        ''
    """
    values = np.asarray(reference).astype(np.float64)
    if np.allclose(0.0, values, rtol=rtol, atol=atol):
        return (
            f"every output is within atol={atol:g} of zero (largest {_largest(values):.3g}), so a model "
            "that outputs zeros would pass too"
        )
    if without_input is None:
        return ""
    baseline = np.asarray(without_input()).astype(np.float64)
    if baseline.shape == values.shape and np.allclose(baseline, values, rtol=rtol, atol=atol):
        return (
            "the output for this input is within tolerance of the output for an all-zero input "
            f"(largest change {_largest(values - baseline):.3g}, largest output {_largest(values):.3g}), "
            "so a model that ignores its input would pass too"
        )
    return ""


#: Float32 rounding between two frameworks running one deep network with real
#: statistics, as a fraction of its largest output (torchvision -> paddle.vision
#: ResNet-50s differ by 6e-5 of it): a difference within it is no wrong weight.
ROUNDING = 1e-4


def rounding_hint(difference: float, reference: Any) -> str:
    """A sentence for a refusal whose difference is within float32 rounding
    of the outputs' scale (`ROUNDING`), else ``""``.

    Examples:
        >>> rounding_hint(2e-4, np.array([3.0, -1.0]))[:31]
        ' The largest difference is 7e-0'
        >>> rounding_hint(0.5, np.array([3.0, -1.0]))
        ''
    """
    scale = _largest(np.asarray(reference).astype(np.float64))
    if not 0 < difference <= ROUNDING * scale:
        return ""
    return (
        f" The largest difference is {difference / scale:.1g} of the largest output, the size of "
        "float32 rounding between frameworks in a deep network: if that is what you expect, pass "
        f"atol in proportion to the outputs (atol={ROUNDING * scale:.2g})."
    )


def zeros_like_input(inputs: Any) -> np.ndarray:
    """An all-zero input of the same shape and dtype, for ``without_input``."""
    return np.zeros_like(as_array(inputs, path="<inputs>"))


def _largest(values: np.ndarray) -> float:
    """The largest finite magnitude (0 when there is none)."""
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0
