"""The activation a paired layer's output goes through: a Keras ``Dense(...,
activation="relu")`` against a torch or paddle ``Linear`` with or without a ReLU
after it. A port warns of a difference exactly when the outputs differ, where both
frameworks show what follows; where one cannot (a forward method), nothing is claimed."""

from __future__ import annotations

import itertools
import warnings

import numpy as np

import unified_params as up
from tests.conftest import needs

#: Activations as each framework spells them (torch module, paddle layer, Keras name).
ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "hard_sigmoid", "hard_swish", "elu")


def _says(src, dst) -> bool:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        report = up.port(src, dst)
    lines = [line for line in report.differences if ": output_activation " in line]
    assert bool(lines) == any("will not compute" in str(w.message) for w in said), lines
    return bool(lines)


def _differ(src, dst) -> bool:
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32") * 30  # past relu6's 6
    return not np.allclose(up.forward(src, x), up.forward(dst, x), atol=1e-5)


def _torch_activation(name):
    import torch

    return {
        "relu": torch.nn.ReLU(), "relu6": torch.nn.ReLU6(), "sigmoid": torch.nn.Sigmoid(), "tanh": torch.nn.Tanh(),
        "gelu": torch.nn.GELU(), "silu": torch.nn.SiLU(), "hard_sigmoid": torch.nn.Hardsigmoid(),
        "hard_swish": torch.nn.Hardswish(), "elu": torch.nn.ELU(), "leaky_relu": torch.nn.LeakyReLU(),
    }[name]  # fmt: skip


def test_a_fused_keras_activation_against_torch_layers_after_a_linear():
    needs("torch")
    needs("keras")
    import keras
    import torch

    keras_names = {"hard_swish": "hard_silu"}
    seen, checked = set(), 0
    for fused, after, torch_act, dropout in itertools.product(
        (None, "relu", "gelu", "hard_swish"), (None, "relu", "relu6"), (None, *ACTIVATIONS, "leaky_relu"),
        (False, True),
    ):  # fmt: skip
        keras_layers = [keras.layers.Dense(4, activation=keras_names.get(fused, fused))]
        if after == "relu6":
            keras_layers.append(keras.layers.ReLU(max_value=6))
        elif after:
            keras_layers.append(keras.layers.Activation(after))
        if fused and after:
            continue  # two activations in a row: not named, nothing claimed
        dst = keras.Sequential([keras.Input((3,)), *keras_layers])
        torch.manual_seed(0)
        between = [torch.nn.Dropout(0.5)] if dropout else []
        src = torch.nn.Sequential(
            torch.nn.Linear(3, 4), *between, *([_torch_activation(torch_act)] if torch_act else [])
        ).eval()
        said, differ = _says(src, dst), _differ(src, dst)
        if torch_act == "leaky_relu":
            assert not said and differ  # its slope differs by framework: not named, no claim
        else:
            assert said == differ, (fused, after, torch_act, dropout)
            seen.add(said)
        checked += 1
    assert seen == {True, False} and checked == 2 * (4 + 2) * 11


def test_what_a_forward_method_applies_is_not_claimed():
    needs("torch")
    needs("keras")
    import keras
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 4)

        def forward(self, x):
            return torch.relu(self.fc(x))

    dst = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    assert not _says(Net().eval(), dst)  # it differs, and only check_input can tell


def test_paddle_layers_after_a_linear():
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    layers = {
        "relu": paddle.nn.ReLU, "relu6": paddle.nn.ReLU6, "sigmoid": paddle.nn.Sigmoid, "tanh": paddle.nn.Tanh,
        "gelu": paddle.nn.GELU, "silu": paddle.nn.Silu, "hard_swish": paddle.nn.Hardswish, "elu": paddle.nn.ELU,
    }  # fmt: skip
    seen = set()
    for theirs, ours in itertools.product((None, *layers), (None, "relu", "gelu", "elu")):
        dst = paddle.nn.Sequential(paddle.nn.Linear(3, 4), *([layers[theirs]()] if theirs else []))
        dst.eval()
        torch.manual_seed(0)
        src = torch.nn.Sequential(torch.nn.Linear(3, 4), *([_torch_activation(ours)] if ours else [])).eval()
        said, differ = _says(src, dst), _differ(src, dst)
        assert said == differ, (theirs, ours)
        seen.add(said)
    assert seen == {True, False}


def test_a_layer_with_its_own_forward_is_not_judged_by_what_follows_it():
    """timm's ``BatchNormAct2d`` is a BatchNorm that applies its activation in its own
    forward: what follows it in the Sequential is not what follows its output."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    class NormThenReLU(torch.nn.BatchNorm1d):
        def forward(self, x):
            return torch.relu(super().forward(x))

    torch.manual_seed(0)
    src = torch.nn.Sequential(torch.nn.Linear(3, 4), NormThenReLU(4)).eval()
    dst = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4),
            keras.layers.BatchNormalization(epsilon=1e-5),
            keras.layers.ReLU(),
        ]
    )
    assert not _says(src, dst) and not _differ(src, dst)


def test_flax_functions_after_a_linear():
    """An ``nnx.Sequential`` holds activations as functions; jax's ``gelu``
    approximates by default, so it is not named (and not claimed)."""
    needs("torch")
    needs("flax")
    import jax
    import torch
    from flax import nnx

    functions = {
        "relu": nnx.relu, "relu6": nnx.relu6, "sigmoid": nnx.sigmoid, "tanh": nnx.tanh, "silu": nnx.silu,
        "hard_sigmoid": nnx.hard_sigmoid, "hard_swish": nnx.hard_swish, "elu": nnx.elu,
    }  # fmt: skip
    seen = set()
    for theirs, ours, dropout in itertools.product(
        (None, *functions, "gelu"), (None, "relu", "gelu", "elu"), (False, True)
    ):
        between = [nnx.Dropout(0.5, rngs=nnx.Rngs(1))] if dropout else []
        after = [functions.get(theirs, jax.nn.gelu)] if theirs else []
        dst = nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), *between, *after)
        torch.manual_seed(0)
        src = torch.nn.Sequential(torch.nn.Linear(3, 4), *([_torch_activation(ours)] if ours else [])).eval()
        said, differ = _says(src, dst), _differ(src, dst)
        if theirs == "gelu":
            assert not said, ours  # not named: no claim, whatever the outputs
        else:
            assert said == differ, (theirs, ours, dropout)
            seen.add(said)
    assert seen == {True, False}
