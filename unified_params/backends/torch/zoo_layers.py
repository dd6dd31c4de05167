"""Layers of torch model zoos that compute as a layer of a declared kind, known
by module and class name: nothing is imported to know them.

transformers' ``Conv1D`` (GPT-2's projections; checked against transformers
5.24) is a Linear, ``x @ weight + bias``, that keeps its weight ``(in, out)``
as paddle's Linear does; its constructor draws the weight from N(0, 0.02)
and zeros the bias. peft adds its LoRA update transposed (``fan_in_fan_out``).
"""

from __future__ import annotations

from ..._core.initializers import Initializer, Normal, Zeros
from ..._core.layouts import Leaf

#: transformers' ``Conv1D``, by module and class name.
CONV1D = ("transformers.pytorch_utils", "Conv1D")
#: Each zoo layer's kind.
KINDS = {CONV1D: "linear"}
#: How each keeps its leaves, by native name.
LEAVES: dict[tuple[str, str], dict[str, Leaf]] = {
    CONV1D: {"weight": Leaf("weight", ("in", "out")), "bias": Leaf("bias")}
}
#: How each draws its leaves at construction, by canonical name.
INIT: dict[tuple[str, str], dict[str, Initializer]] = {CONV1D: {"weight": Normal(0.0, 0.02), "bias": Zeros()}}
