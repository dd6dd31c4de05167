"""Keras 3, natively, on whichever engine this process runs (TensorFlow, JAX or
torch): the conformance suite's fixture (see `tests.native`)."""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np

from . import Native, X

L = keras.layers


class KerasNative(Native):
    textbook = {
        # Keras' chapter starts with a Flatten and uses Dense(4) hidden layers.
        "mlp": {"params": ["1.weight", "1.bias", "2.weight", "2.bias"], "count": 25},
        "rgnet": {"first": "0.0.1.weight", "count": 85, "path_bias": "0.1.1.bias"},
        "shared": {"a": "1.weight", "b": "2.weight", "children": 4, "unique_layers": 3, "count": 25},
    }
    linear_type = "Dense"
    kernel_name = "kernel"
    first_linear = 1
    block_linear = 1
    summed_biases = frozenset({"rnn", "lstm"})  # a SimpleRNN's and an LSTM's cell keep one bias
    converts_axes = ("cnn", "norm")
    depthwise = ((3, 3, 3, 2), "depthwise_kernel")
    native_grad_slot = False  # a Keras variable has no gradient slot
    open_state = False  # Keras locks a built layer's state
    records_flatten = True  # a built Sequential or functional model keeps its graph

    def mlp(self) -> Any:
        net = keras.Sequential([L.Flatten(), L.Dense(4, activation="relu"), L.Dense(1)])
        net(X)
        return net

    def unbuilt_mlp(self) -> Any:
        return keras.Sequential([L.Flatten(), L.Dense(4, activation="relu"), L.Dense(1)])

    def with_an_unused_layer(self) -> Any:
        class Net(keras.Model):
            def __init__(self) -> None:
                super().__init__()
                self.used, self.unused = L.Dense(2), L.Dense(3)

            def call(self, x):
                return self.used(x)

        net = Net()
        with warnings.catch_warnings():  # Keras warns of the unbuilt state this model is made to have
            warnings.simplefilter("ignore", UserWarning)
            net(X)
        return net

    def rgnet(self) -> Any:
        def block1(name):
            return keras.Sequential([L.Flatten(), L.Dense(4, activation="relu")], name=name)

        def block2():
            net = keras.Sequential()
            for i in range(4):
                net.add(block1(name=f"block-{i}"))
            return net

        net = keras.Sequential()
        net.add(block2())
        net.add(L.Dense(1))
        net(X)
        return net

    def shared_mlp(self) -> Any:
        shared = L.Dense(4, activation="relu")
        net = keras.Sequential([L.Flatten(), shared, shared, L.Dense(1)])
        net(X)
        return net

    def shared_dense(self) -> Any:
        return self.shared_mlp()

    def subclassed(self) -> Any:
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.encoder = L.Dense(6)
                self.blocks = [L.Dense(6), L.Dense(6)]
                self.head = L.Dense(2)

            def call(self, x):
                x = self.encoder(x)
                for block in self.blocks:
                    x = block(x)
                return self.head(x)

        net = Net()
        net(np.zeros((1, 4), "float32"))
        return net

    held_kernel = "kernel"  # a Keras layer's variables go by their own names

    def wrapper_holding_kernel(self, width: int) -> Any:
        class Wrapper(L.Layer):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.layer = L.Dense(width)

            def build(self, input_shape):
                self.layer.build(input_shape)
                self.w = self.layer.kernel  # tracked by the wrapper too

            def call(self, x):
                return self.layer(x)

        return keras.Sequential([keras.Input((4,)), Wrapper()])

    def sibling_holding_kernel(self, width: int) -> Any:
        layer = L.Dense(width)
        layer.build((None, 4))

        class Holder(L.Layer):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.w = layer.kernel  # tracked by the holder too

            def call(self, x):
                return x

        return keras.Sequential([keras.Input((4,)), layer, Holder()])

    def two_attributes(self) -> Any:
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.first = L.Dense(6)
                self.second = L.Dense(6)

            def call(self, x):
                return self.second(self.first(x))

        net = Net()
        net(np.zeros((1, 6), "float32"))
        return net

    def conv(self, dims: int) -> Any:
        layer = {1: L.Conv1D, 3: L.Conv3D}[dims](5, 3)
        layer.build((None,) + (None,) * dims + (2,))
        return layer

    def flatten_in_forward(self) -> Any:
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.conv, self.fc = L.Conv2D(4, 3), L.Dense(2)

            def call(self, x):
                h = keras.ops.relu(self.conv(x))
                return self.fc(keras.ops.reshape(h, (keras.ops.shape(h)[0], -1)))

        net = Net()
        net(np.zeros((1, 6, 6, 3), "float32"))
        return net

    def recurrent_stack(self, kind: str, input_size: int, hidden: int) -> Any | None:
        cls = {"rnn": L.SimpleRNN, "lstm": L.LSTM, "gru": L.GRU}[kind]
        both = [L.Bidirectional(cls(hidden, return_sequences=True)) for _ in range(2)]
        return keras.Sequential([keras.Input((None, input_size)), *both])

    def pools_in_code(self) -> Any:
        class Own(L.Layer):
            def call(self, x):
                return keras.ops.image.resize(keras.ops.max_pool(x, 2), (8, 8))

        return Own()

    def weightless_layers(self) -> list[Any]:
        return [L.MaxPooling2D(2), L.AveragePooling2D(2), L.UpSampling2D(2)]

    def prelu(self) -> tuple[Any, str]:
        layer = L.PReLU()
        layer.build((None, 3))
        return layer, "alpha"

    def typed(self, dtype: str) -> Any:
        layer = L.Dense(3, dtype=dtype)
        layer.build((None, 4))
        return keras.Sequential([layer])

    def forward(self, model: Any, x: np.ndarray, channels: bool | None = None) -> np.ndarray:
        # Keras takes images channels-last: the input's axis 1 moves last, the output's back.
        if x.ndim == 4 if channels is None else channels:
            out = keras.ops.convert_to_numpy(model(np.moveaxis(x, 1, -1), training=False))
            return np.moveaxis(out, -1, 1) if out.ndim == x.ndim else out
        return keras.ops.convert_to_numpy(model(x, training=False))

    def attention(self, layer: Any, x: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(layer(x, x, training=False))

    def named_params(self, model: Any) -> list[tuple[str, tuple[int, ...]]]:
        return [(v.path, tuple(v.shape)) for v in model.weights]

    def values(self, model: Any) -> list[np.ndarray]:
        return model.get_weights()

    def count(self, model: Any) -> int:
        return sum(int(np.prod(v.shape)) for v in model.weights if not v.name.startswith("moving_"))

    def variable_count(self, model: Any) -> int:
        return len(model.weights)

    def optimizer_params(self, model: Any) -> list[Any]:
        if keras.backend.backend() == "torch":  # a Keras model is a torch module: torch's own list
            return [p for _, p in model.named_parameters()]
        return list(model.trainable_weights)

    def as_listed(self, var: Any) -> Any:
        return var.value if keras.backend.backend() == "torch" else var

    def layer(self, model: Any, position: int) -> Any:
        return model.layers[position]

    def with_lora(self, model: Any, position: int, rank: int) -> Any:
        layer = model.layers[position]
        layer.enable_lora(rank, lora_alpha=2 * rank)
        layer.lora_kernel_b.assign(np.random.default_rng(1).standard_normal(layer.lora_kernel_b.shape))
        return model

    def sum_backward(self, model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        variables = model.trainable_weights
        engine = keras.backend.backend()  # the one place an engine is named: the native backward differs
        if engine == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(model(x))
            grads = [g.numpy() for g in tape.gradient(loss, variables)]
        elif engine == "jax":
            import jax

            def loss(values):
                out, _ = model.stateless_call(values, [v.value for v in model.non_trainable_weights], x)
                return out.sum()

            grads = [np.asarray(g) for g in jax.grad(loss)([v.value for v in variables])]
        else:
            import torch

            loss = model(torch.from_numpy(x)).sum()
            grads = [g.numpy() for g in torch.autograd.grad(loss, [v.value for v in variables])]
        return {v.path: g for v, g in zip(variables, grads, strict=True)}

    def seed(self, value: int) -> None:
        keras.utils.set_random_seed(value)

    def add_variable(self, layer: Any, name: str) -> None:
        raise NotImplementedError("Keras locks a built layer's state (open_state is False)")

    def replace_last_layer(self, model: Any) -> None:
        model.pop()
        model.add(L.Dense(3))
        model.build((None, 4))

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return keras.ops.convert_to_numpy(tensor)


NATIVE = KerasNative()
