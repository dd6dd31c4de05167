"""The textbook chapter's models, written natively the way the chapter writes them.

One builder per model and framework, copied in spirit from the chapter's code
cells (PyTorch, TensorFlow/Keras and Paddle tabs). Keras models are called
once on an input, as the chapter does, so that their variables exist.
"""

from __future__ import annotations

from typing import Any

import numpy as np

X = np.random.default_rng(0).uniform(size=(2, 4)).astype("float32")


def mlp(backend: str) -> Any:
    """The chapter's first model: one hidden layer."""
    if backend == "torch":
        from torch import nn

        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    if backend == "paddle":
        from paddle import nn

        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    import keras

    net = keras.Sequential(
        [keras.layers.Flatten(), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    net(X)
    return net


def unbuilt_keras_mlp() -> Any:
    """The Keras MLP before its first call: no variables yet."""
    import keras

    return keras.Sequential(
        [keras.layers.Flatten(), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )


def rgnet(backend: str) -> Any:
    """The nested-blocks model: block2 holds four block1s, then a head."""
    if backend in ("torch", "paddle"):
        nn = _nn(backend)

        def block1():
            return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())

        def block2():
            net = nn.Sequential()
            for i in range(4):
                add = net.add_module if backend == "torch" else net.add_sublayer
                add(f"block {i}", block1())
            return net

        return nn.Sequential(block2(), nn.Linear(4, 1))
    import keras

    def block1(name):
        return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4, activation="relu")], name=name)

    def block2():
        net = keras.Sequential()
        for i in range(4):
            net.add(block1(name=f"block-{i}"))
        return net

    net = keras.Sequential()
    net.add(block2())
    net.add(keras.layers.Dense(1))
    net(X)
    return net


def shared_mlp(backend: str) -> Any:
    """The tying example: one layer object used at two positions."""
    if backend in ("torch", "paddle"):
        nn = _nn(backend)
        shared = nn.Linear(8, 8)
        return nn.Sequential(
            nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1)
        )
    import keras

    shared = keras.layers.Dense(4, activation="relu")
    net = keras.Sequential([keras.layers.Flatten(), shared, shared, keras.layers.Dense(1)])
    net(X)
    return net


def _nn(backend: str) -> Any:
    if backend == "torch":
        from torch import nn
    else:
        from paddle import nn
    return nn


#: What the chapter's models look like in each framework: positions and paths
#: differ (Keras starts with a Flatten and uses Dense(4)), counts are the
#: frameworks' own.
EXPECTED = {
    "mlp": {
        "torch": {"params": ["0.weight", "0.bias", "2.weight", "2.bias"], "count": 49},
        "paddle": {"params": ["0.weight", "0.bias", "2.weight", "2.bias"], "count": 49},
        "keras": {"params": ["1.weight", "1.bias", "2.weight", "2.bias"], "count": 25},
    },
    "rgnet": {
        "torch": {"first": "0.block 0.0.weight", "count": 309, "path_bias": "0.block 1.0.bias"},
        "paddle": {"first": "0.block 0.0.weight", "count": 309, "path_bias": "0.block 1.0.bias"},
        "keras": {"first": "0.0.1.weight", "count": 85, "path_bias": "0.1.1.bias"},
    },
    "shared": {
        "torch": {"a": "2.weight", "b": "4.weight", "children": 7, "unique_layers": 6, "count": 121},
        "paddle": {"a": "2.weight", "b": "4.weight", "children": 7, "unique_layers": 6, "count": 121},
        "keras": {"a": "1.weight", "b": "2.weight", "children": 4, "unique_layers": 3, "count": 25},
    },
}
