"""Upsampling layers: what each computes, and how two of them differ.

An upsampling layer holds no weights, so a port does not pair it with the
layers that do; it pairs the n-th of one model with the n-th of the other
(``port``) and compares what they compute: how a value between the input's
positions is interpolated, where the output's positions fall on the input's
(the coordinate rule), and the scale per spatial axis. Measured at integer
scales (torch 2.13, paddle 3.3.1, Keras 3.15.1 on TensorFlow): nearest
agrees everywhere; linear with half-pixel centres (torch's
``align_corners=False``, paddle's default ``align_mode=0``, Keras'
``"bilinear"``) agrees everywhere; torch's and paddle's ``align_corners=True``
agree with each other only, as do their cubic ones (a = -0.75, end values
repeated past the ends), which differ from TensorFlow's and JAX's (a = -0.5,
positions past the ends left out and the other weights rescaled).

Examples:
    >>> torch_like = Upsampling("linear", (2.0,), "align_corners")
    >>> keras_like = Upsampling("linear", (2.0, 2.0))
    >>> differences(torch_like, keras_like)
    [('upsampling', 'linear, corners aligned', 'linear')]
    >>> differences(Upsampling("nearest", (2.0,)), Upsampling("nearest", (2.0, 3.0)))
    [('scale_factor', '2', '2 x 3')]
"""

from __future__ import annotations

from dataclasses import dataclass

#: How each coordinate rule but the half-pixel one reads in a report.
_RULES = {"align_corners": "corners aligned", "asymmetric": "asymmetric"}


@dataclass(frozen=True)
class Upsampling:
    """What an upsampling layer computes.

    Attributes:
        interpolation: ``"nearest"``, ``"linear"`` (per axis: bilinear,
            trilinear), ``"cubic(a=-0.75)"`` (torch's, paddle's),
            ``"cubic(a=-0.5)"`` (TensorFlow's, JAX's), or another method by the
            framework's name (``"lanczos3"``, ``"area"``): equal only to itself.
        scale: The factor per spatial axis, first axis first; one factor for
            every axis; ``None`` for a layer that resizes to a fixed size.
        rule: Where output positions fall on the input: ``"half_pixel"``
            (centres map to centres), ``"align_corners"`` (corner positions
            map to corners) or ``"asymmetric"`` (position i to i / scale).
    """

    interpolation: str
    scale: tuple[float, ...] | None
    rule: str = "half_pixel"

    def describe(self) -> str:
        """The method as a report names it (``"linear, corners aligned"``)."""
        rule = _RULES.get(self.rule) if self._rule_matters() else None
        return f"{self.interpolation}, {rule}" if rule else self.interpolation

    def _rule_matters(self) -> bool:
        # Nearest at integer scales takes the same positions under every rule.
        integer = self.scale is not None and all(float(s).is_integer() for s in self.scale)
        return self.interpolation != "nearest" or not integer


def differences(a: Upsampling, b: Upsampling) -> list[tuple[str, str, str]]:
    """``(setting, a's, b's)`` for each way two paired upsampling layers differ:
    the method (``"upsampling"``), and the scale (``"scale_factor"``) where
    both layers have one."""
    found = []
    if a.describe() != b.describe():
        found.append(("upsampling", a.describe(), b.describe()))
    if a.scale is not None and b.scale is not None:
        n = max(len(a.scale), len(b.scale))
        sa, sb = (s * n if len(s) == 1 else s for s in (a.scale, b.scale))
        if len(sa) != len(sb) or any(x != y for x, y in zip(sa, sb, strict=True)):
            found.append(("scale_factor", _scale(a.scale), _scale(b.scale)))
    return found


def _scale(scale: tuple[float, ...]) -> str:
    return " x ".join(f"{s:g}" for s in scale)
