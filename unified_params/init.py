"""Initialisation by rule: the initializer catalogue and [initialize][unified_params.initialize].

Examples:
    >>> import torch
    >>> import unified_params as up
    >>> nn = torch.nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> rules = {"*.weight": up.init.Normal(0, 0.01), "*.bias": up.init.Zeros()}
    >>> up.initialize(net, rules, seed=0)["0.bias"]
    'Zeros()'
"""

from __future__ import annotations

from typing import Any

from ._core import initialize as _engine
from ._core.fans import calculate_gain, fans
from ._core.initializers import (
    Constant,
    Default,
    Dirac,
    Eye,
    FanInUniform,
    FunctionInitializer,
    Initializer,
    KaimingNormal,
    KaimingUniform,
    LecunNormal,
    LecunUniform,
    Normal,
    Ones,
    Orthogonal,
    RecurrentUniform,
    TruncatedNormal,
    Uniform,
    UnitForgetBias,
    XavierNormal,
    XavierUniform,
    Zeros,
)
from .access import wrap

__all__ = [
    "Constant", "Default", "Dirac", "Eye", "FanInUniform", "FunctionInitializer", "Initializer",
    "KaimingNormal", "KaimingUniform", "LecunNormal", "LecunUniform", "Normal", "Ones", "Orthogonal",
    "RecurrentUniform", "TruncatedNormal", "Uniform", "UnitForgetBias", "XavierNormal", "XavierUniform",
    "Zeros", "calculate_gain", "fans", "initialize",
]  # fmt: skip


def initialize(
    model: Any, init_or_rules: Any, *, where: Any = None, seed: int | None = None, strict: bool = False
) -> dict[str, str]:
    """Initialise parameters in place by rule, the same way on every backend.

    Args:
        model: A native model or a view (``up.wrap(model)`` or a part of it).
        init_or_rules: One initializer (or a function ``(shape, rng) ->
            array`` in canonical layout), or ordered rules: a dict
            ``{selector: initializer}`` or a list of ``(selector,
            initializer)`` pairs. Each parameter takes the first rule that
            matches; parameters no rule matches are left as they are.
        where: A selector restricting the whole call (see ``up.where``).
        seed: With a seed, values are reproducible and bitwise identical
            across backends; without, a fresh seed is drawn.
        strict: Raise instead of warn when a rule matches nothing.

    Returns:
        Path -> the initializer that filled it.

    Raises:
        InitError: Invalid seed, or an initializer that cannot fill a selected
            parameter (nothing is written).
        ShapeError: A custom initializer returned the wrong shape (nothing is
            written).
        PathError: With ``strict=True``, a rule that matched nothing.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> nn = torch.nn
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> rules = [("0.weight", up.init.XavierUniform()), ("2.weight", 42)]
        >>> done = up.initialize(net, rules)
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        unified_params.InitError: Cannot use this as an initializer. ...
        >>> up.initialize(net, up.init.Constant(1), where="*.weight", seed=1)
        {'0.weight': 'Constant(value=1.0)', '2.weight': 'Constant(value=1.0)'}
    """
    return _engine.run(wrap(model), init_or_rules, where=where, seed=seed, strict=strict)
