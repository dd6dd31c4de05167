"""What `up.spec` builds on Flax NNX that NNX itself lacks: a Flatten step and
a Sequential with named positions."""

from __future__ import annotations

from typing import Any

from flax import nnx


def flatten(x: Any) -> Any:
    """Flatten all axes but the first: what `up.spec`'s Flatten builds into an
    ``nnx.Sequential`` (NNX has no Flatten layer).

    Examples:
        >>> import numpy as np
        >>> flatten(np.zeros((2, 3, 4))).shape
        (2, 12)
    """
    return x.reshape(x.shape[0], -1)


class NamedSequential(nnx.Module):
    """An ``nnx.Sequential`` whose positions have names (`up.spec` named
    children): ``layers`` is an ``nnx.Dict``, called in order.

    Examples:
        >>> net = NamedSequential({"first": nnx.Linear(2, 3, rngs=nnx.Rngs(0))})
        >>> list(net.layers)
        ['first']
    """

    def __init__(self, layers: dict[str, Any]) -> None:
        self.layers = nnx.Dict(layers)

    def __call__(self, x: Any) -> Any:
        for layer in self.layers.values():
            x = layer(x)
        return x
