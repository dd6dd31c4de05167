"""``m(x)`` and ``up.forward``: the model's own forward pass, numpy in and out.

The core validates the input against the model's first layer and lays image
axes out for the framework; the adapter only runs the call (inference mode,
no gradient tape, unless ``training``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .inputs import placement, prepare_input, restore_output
from .view import Module


def run(model: Module, inputs: Any, *, training: bool = False) -> np.ndarray:
    """The output of ``model`` for a canonical (channels-first) input, channels first.

    Raises:
        ShapeError: The input does not fit the model's first layer.
    """
    where = placement(model, inputs)
    x = prepare_input(model, inputs, where)
    return restore_output(model, x, model.adapter.forward(model.native, x, bool(training)), where)
