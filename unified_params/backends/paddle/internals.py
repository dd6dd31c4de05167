"""Every private PaddlePaddle API this adapter uses, checked against paddle 3.3.1.

``tests/test_internals.py`` fails loudly when a newer paddle changes one.
"""

from __future__ import annotations

from typing import Any

from paddle import nn

from .._dicts import Slots

#: paddle 3.3.1: ``nn.Layer`` keeps children in ``_sub_layers``, parameters in
#: ``_parameters``, buffers in ``_buffers`` (all dicts) and the names of
#: ``persistable=False`` buffers in ``_non_persistable_buffer_names_set``.
SLOTS = Slots(
    children="_sub_layers",
    params="_parameters",
    buffers="_buffers",
    transient="_non_persistable_buffer_names_set",
)
#: paddle 3.3.1: the private base of BatchNorm1D/2D/3D.
BATCH_NORM = nn.layer.norm._BatchNormBase


def hyperparameter(module: Any, name: str) -> Any:
    """paddle 3.3.1 keeps eps, momentum, groups and a GroupNorm's groups as
    ``_epsilon``, ``_momentum``, ``_groups``, ``_num_groups`` (no public attribute)."""
    return getattr(module, f"_{name}", None)


def set_hyperparameter(module: Any, name: str, value: float) -> None:
    """Set ``_epsilon`` or ``_momentum`` (paddle 3.3.1), read by every forward."""
    setattr(module, f"_{name}", value)
