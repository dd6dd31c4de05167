"""The activation a paired layer's output goes through: a Keras ``Dense(...,
activation="relu")`` against a torch or paddle ``Linear`` with or without a ReLU
after it. A port warns of a difference exactly when the outputs differ, where both
frameworks show what follows; where one cannot (a forward method, a softmax over
an axis that is the channels only at some ranks), nothing is claimed."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

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
        dst = keras.Sequential([keras.Input((3,)), *keras_layers])
        torch.manual_seed(0)
        between = [torch.nn.Dropout(0.5)] if dropout else []
        src = torch.nn.Sequential(
            torch.nn.Linear(3, 4), *between, *([_torch_activation(torch_act)] if torch_act else [])
        ).eval()
        said, differ = _says(src, dst), _differ(src, dst)
        assert said == differ, (fused, after, torch_act, dropout)
        seen.add(said)
        checked += 1
    assert seen == {True, False} and checked == 2 * 4 * 3 * 11


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        notes = up.port(Net().eval(), dst).notes
    assert notes == [  # but the report says what it did not compare
        "What follows 1 of 1 paired layers was not compared: a forward method decides it, or a "
        "layer after it has no name here (fc -> 0 (torch)). Pass check_input=x to compare outputs."
    ]
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    with pytest.raises(up.PortError):  # a check input compares outputs: a refusal
        up.port(Net().eval(), dst, check_input=x)
    same = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu")])
    assert up.port(Net().eval(), same, check_input=x).notes == []  # verified: nothing to note


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
    approximates by default, and is named so: against torch's exact one it differs."""
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
        assert said == differ, (theirs, ours, dropout)
        seen.add(said)
    assert seen == {True, False}


# -- every named activation, in each framework -------------------------------
#: Each activation's canonical name -> how each framework builds it (after a
#: dense layer), where it has it.
def _torch_zoo():
    from torch import nn

    return {
        "relu": nn.ReLU(), "relu6": nn.ReLU6(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "silu": nn.SiLU(),
        "hard_sigmoid": nn.Hardsigmoid(), "hard_swish": nn.Hardswish(), "elu": nn.ELU(),
        "elu(alpha=0.5)": nn.ELU(0.5), "selu": nn.SELU(), "softplus": nn.Softplus(), "softsign": nn.Softsign(),
        "mish": nn.Mish(), "log_sigmoid": nn.LogSigmoid(), "celu": nn.CELU(), "hard_tanh": nn.Hardtanh(),
        "soft_shrink": nn.Softshrink(), "tanh_shrink": nn.Tanhshrink(), "gelu": nn.GELU(),
        "gelu(approximate=tanh)": nn.GELU("tanh"), "leaky_relu(negative_slope=0.01)": nn.LeakyReLU(),
        "leaky_relu(negative_slope=0.2)": nn.LeakyReLU(0.2), "leaky_relu(negative_slope=0.3)": nn.LeakyReLU(0.3),
        "softmax": nn.Softmax(-1), "log_softmax": nn.LogSoftmax(-1),
    }  # fmt: skip


def _paddle_zoo():
    from paddle import nn

    return {
        "relu": nn.ReLU(), "relu6": nn.ReLU6(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "silu": nn.Swish(),
        "hard_sigmoid": nn.Hardsigmoid(), "hard_swish": nn.Hardswish(), "elu": nn.ELU(),
        "elu(alpha=0.5)": nn.ELU(0.5), "selu": nn.SELU(), "softplus": nn.Softplus(), "softsign": nn.Softsign(),
        "mish": nn.Mish(), "log_sigmoid": nn.LogSigmoid(), "celu": nn.CELU(), "hard_tanh": nn.Hardtanh(),
        "soft_shrink": nn.Softshrink(), "tanh_shrink": nn.Tanhshrink(), "gelu": nn.GELU(),
        "gelu(approximate=tanh)": nn.GELU(True), "leaky_relu(negative_slope=0.01)": nn.LeakyReLU(),
        "leaky_relu(negative_slope=0.3)": nn.LeakyReLU(0.3), "softmax": nn.Softmax(), "log_softmax": nn.LogSoftmax(),
    }  # fmt: skip


def _keras_zoo():
    from keras import layers as L

    functions = (
        "relu", "relu6", "sigmoid", "tanh", "silu", "hard_sigmoid", "elu", "selu", "softplus", "softsign", "mish",
        "log_sigmoid", "celu", "hard_tanh", "soft_shrink", "tanh_shrink", "gelu", "softmax", "log_softmax",
    )  # fmt: skip
    return {
        **{name: L.Activation(name) for name in functions},
        "hard_swish": L.Activation("hard_silu"), "elu(alpha=0.5)": L.ELU(alpha=0.5),
        "leaky_relu(negative_slope=0.2)": L.Activation("leaky_relu"),
        "leaky_relu(negative_slope=0.3)": L.LeakyReLU(), "leaky_relu(negative_slope=0.01)": L.ReLU(negative_slope=0.01),
    }  # fmt: skip


def _flax_zoo():
    import jax

    names = (
        "relu", "relu6", "sigmoid", "tanh", "silu", "hard_sigmoid", "elu", "selu", "softplus", "mish",
        "log_sigmoid", "celu", "hard_tanh", "softmax", "log_softmax",
    )  # fmt: skip
    return {
        **{name: getattr(jax.nn, name) for name in names},
        "hard_swish": jax.nn.hard_swish, "softsign": jax.nn.soft_sign, "gelu(approximate=tanh)": jax.nn.gelu,
        "leaky_relu(negative_slope=0.01)": jax.nn.leaky_relu,
    }  # fmt: skip


def _dense_then(framework: str, activation):
    """A dense layer of 3 -> 4 inputs, then ``activation`` (none when ``None``)."""
    after = [] if activation is None else [activation]
    if framework == "paddle":
        import paddle

        net = paddle.nn.Sequential(paddle.nn.Linear(3, 4), *after)
        net.eval()
        return net
    if framework == "keras":
        import keras

        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), *after])
    from flax import nnx

    return nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), *after)


ZOOS = {"paddle": _paddle_zoo, "keras": _keras_zoo, "flax": _flax_zoo}


@pytest.mark.parametrize("framework", list(ZOOS))
def test_every_named_activation_against_torch_s(framework):
    """Each activation a framework names, against torch's of the same name (no
    claim, same outputs), of the next name in the list and no activation at all
    (a claim exactly where the outputs differ)."""
    needs("torch")
    needs(framework)
    import torch

    theirs = ZOOS[framework]()
    torch_zoo = _torch_zoo()
    names = [name for name in torch_zoo if name in theirs]
    assert len(names) >= 15, names
    seen = set()
    for i, name in enumerate(names):
        for other in (name, names[(i + 1) % len(names)], None):
            torch.manual_seed(0)
            src = torch.nn.Sequential(torch.nn.Linear(3, 4), *([torch_zoo[name]] if name else [])).eval()
            built = {"paddle": _paddle_zoo, "keras": _keras_zoo, "flax": _flax_zoo}[
                framework
            ]()  # fresh layers
            dst = _dense_then(framework, None if other is None else built[other])
            said, differ = _says(src, dst), _differ(src, dst)
            assert said == differ, (name, other)
            assert said == (other != name), (name, other)  # the names differ exactly when the functions do
            seen.add(said)
    assert seen == {True, False}


def test_a_softmax_is_named_over_the_channels_only():
    """Over the channels (a dense layer's last axis; a convolution's axis 1 in
    torch, its last in Keras) a softmax is named; over an axis that is the
    channels only at some ranks (torch's ``dim=1`` after a Linear) or over
    another axis, nothing is claimed."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")

    def conv_pair(dim, keras_after, channels_first=False):
        torch.manual_seed(0)
        after = [] if dim is None else [torch.nn.Softmax(dim)]
        src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), *after).eval()
        data_format = "channels_first" if channels_first else "channels_last"
        shape = (3, 6, 6) if channels_first else (6, 6, 3)
        dst = keras.Sequential(
            [keras.Input(shape), keras.layers.Conv2D(4, 3, data_format=data_format), *keras_after]
        )
        said = _says(src, dst)
        differ = (
            not np.allclose(up.forward(src, x), up.forward(dst, x), atol=1e-5) if not channels_first else None
        )
        return said, differ

    assert conv_pair(1, [keras.layers.Softmax()]) == (False, False)
    assert conv_pair(-3, [keras.layers.Activation("softmax")]) == (False, False)  # -3 of a 2D map: not named
    assert conv_pair(1, []) == (True, True)
    assert conv_pair(None, [keras.layers.Softmax()]) == (True, True)
    assert conv_pair(-1, [keras.layers.Softmax()]) == (False, True)  # over the width: not named, no claim
    assert conv_pair(1, [keras.layers.Softmax(axis=1)]) == (False, True)  # over the height in Keras
    assert conv_pair(None, [keras.layers.Softmax()], channels_first=True)[0] is False  # Keras' -1: the width

    def dense_pair(dim, activation):
        torch.manual_seed(0)
        src = torch.nn.Sequential(
            torch.nn.Linear(3, 4), *([] if dim is None else [torch.nn.Softmax(dim)])
        ).eval()
        dst = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation=activation)])
        return _says(src, dst), _differ(src, dst)

    # keras.applications' default head: a Dense with a softmax, against torchvision's plain Linear
    assert dense_pair(None, "softmax") == (True, True)
    assert dense_pair(-1, "softmax") == (False, False)
    assert dense_pair(1, "softmax") == (False, False)  # the same here, at rank 2, but not named: no claim
    assert dense_pair(1, None) == (False, True)


def test_a_softmax_after_a_paddle_layer_built_channels_last_is_named_over_its_last_axis():
    """paddle's ``Conv2D(data_format="NHWC")`` gives its channels last: a softmax
    over axis -1 runs over them, as torch's ``dim=1`` does; over axis 1, the
    height. Before, axis 1 was taken for the channels there too, so a torch
    softmax over the channels against a paddle one over the height was called
    alike while the outputs differ."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")

    def pair(dim, axis):
        torch.manual_seed(0)
        after = [] if dim is None else [torch.nn.Softmax(dim)]
        src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), *after).eval()
        dst = paddle.nn.Sequential(
            paddle.nn.Conv2D(3, 4, 3, data_format="NHWC"),
            *([] if axis is None else [paddle.nn.Softmax(axis)]),
        )
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            report = up.port(src, dst)
        said = [line for line in report.differences if ": output_activation " in line]
        blind = any("What follows" in note for note in report.notes)
        differ = not np.allclose(up.forward(src, x), up.forward(dst, x), atol=1e-5)
        return bool(said), blind, differ

    assert pair(1, -1) == (False, False, False)  # both over the channels
    assert pair(1, 1) == (False, True, True)  # paddle's over the height: not named, and noted
    assert pair(None, -1) == (True, False, True)  # a softmax on one side only: listed
    assert pair(1, None) == (True, False, True)


@pytest.mark.parametrize("framework", list(ZOOS))
def test_activations_in_a_row_are_named_in_order(framework):
    """A ReLU then a sigmoid is not a ReLU, nor a sigmoid then a ReLU; a ReLU
    then a ReLU6 is a ReLU6."""
    needs("torch")
    needs(framework)
    import torch

    def torch_net(*names):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(3, 4), *(_torch_zoo()[n] for n in names)).eval()

    def theirs(*names):
        layers = [ZOOS[framework]()[n] for n in names]  # one layer per position
        if framework == "keras":
            import keras

            return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), *layers])
        if framework == "paddle":
            import paddle

            return paddle.nn.Sequential(paddle.nn.Linear(3, 4), *layers)
        from flax import nnx

        return nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), *layers)

    cases = [
        (("relu", "sigmoid"), ("relu",), True),
        (("relu", "sigmoid"), ("sigmoid", "relu"), True),
        (("relu", "sigmoid"), ("relu", "sigmoid"), False),
        (("relu", "relu6"), ("relu6",), False),
        (("tanh",), ("tanh", "tanh"), True),
    ]
    for ours, other, expected in cases:
        src, dst = torch_net(*ours), theirs(*other)
        said, differ = _says(src, dst), _differ(src, dst)
        assert said == differ == expected, (ours, other)


def test_a_normalisation_without_weights_after_a_layer_is_named():
    """A layer norm, group norm or instance norm without weights holds no
    variable, so it pairs with nothing: it is named, with its eps, as what
    follows the layer before it, where it runs over the channels."""
    needs("torch")
    needs("keras")
    needs("paddle")
    import keras
    import paddle
    import torch

    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype("float32")
    torch.manual_seed(0)
    instance = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.InstanceNorm2d(4, eps=1e-3)).eval()
    no = {"weight_attr": False, "bias_attr": False}
    conv_cases = {
        "paddle instance norm": (paddle.nn.InstanceNorm2D(4, epsilon=1e-3, **no), False),
        "paddle group norm of 2": (paddle.nn.GroupNorm(2, 4, epsilon=1e-3, **no), True),
        "paddle group norm of 4": (paddle.nn.GroupNorm(4, 4, epsilon=1e-3, **no), False),
        "keras group norm of -1": (keras.layers.GroupNormalization(-1, epsilon=1e-3, center=False, scale=False), False),
        "keras group norm of 2": (keras.layers.GroupNormalization(2, epsilon=1e-3, center=False, scale=False), True),
        "keras nothing": (None, True),
    }  # fmt: skip
    for label, (layer, expected) in conv_cases.items():
        after = [] if layer is None else [layer]
        if label.startswith("paddle"):
            dst = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), *after)
        else:
            dst = keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Conv2D(4, 1), *after])
        said = _says(instance, dst)
        differ = not np.allclose(up.forward(instance, x), up.forward(dst, x), atol=1e-4)
        assert said == differ == expected, label

    torch.manual_seed(0)
    layer_norm = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.LayerNorm(4, eps=1e-3, elementwise_affine=False)
    )
    from flax import nnx

    dense_cases = {
        "keras": (keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                                    keras.layers.LayerNormalization(epsilon=1e-3, center=False, scale=False)]), False),
        "keras, eps 1e-5": (keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                                    keras.layers.LayerNormalization(epsilon=1e-5, center=False, scale=False)]), True),
        "paddle": (paddle.nn.Sequential(paddle.nn.Linear(3, 4), paddle.nn.LayerNorm(4, epsilon=1e-3, **no)), False),
        "flax": (nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)),
                                nnx.LayerNorm(4, epsilon=1e-3, use_bias=False, use_scale=False, rngs=nnx.Rngs(0))), False),
        "keras nothing": (keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)]), True),
    }  # fmt: skip
    small = np.random.default_rng(1).standard_normal((8, 3)).astype("float32") * 0.01  # where eps tells
    for label, (dst, expected) in dense_cases.items():
        said = _says(layer_norm, dst)
        differ = not np.allclose(up.forward(layer_norm, small), up.forward(dst, small), atol=1e-4)
        assert said == differ == expected, label
    # over the width of a feature map, not its channels: not named, nothing claimed
    torch.manual_seed(0)
    over_width = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 1), torch.nn.LayerNorm(5, elementwise_affine=False)
    )
    assert not _says(over_width, keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Conv2D(4, 1)]))


def test_what_follows_is_read_into_nested_sequentials_and_past_reshapes_only():
    """A Sequential that follows a layer runs its first child next; a Flatten
    keeps the values (an activation after it still counts, a softmax over
    channels no longer does); a layer without weights of no known kind may
    change the values, so nothing is claimed past it, and the report says so."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    def keras_dense(*activations):
        layers = [
            keras.layers.Dense(8, activation=activations[0] if activations else None),
            keras.layers.Dense(2),
        ]
        return keras.Sequential([keras.Input((4,)), *layers])

    def torch_net(*middle):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 8), *middle).eval()

    def says_and_differs(src, dst):
        x = np.random.default_rng(0).standard_normal((8, 4)).astype("float32") * 3
        return _says(src, dst), not np.allclose(up.forward(src, x), up.forward(dst, x), atol=1e-5)

    nested = torch_net(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(8, 2)))
    assert says_and_differs(nested, keras_dense()) == (True, True)
    assert says_and_differs(nested, keras_dense("relu")) == (False, False)
    flat = torch_net(torch.nn.Flatten(), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    assert says_and_differs(flat, keras_dense("relu")) == (False, False)
    assert says_and_differs(flat, keras_dense()) == (True, True)

    class Scale(torch.nn.Module):  # a layer of the user's own, without weights
        def forward(self, x):
            return x * 3

    scaled = torch_net(Scale(), torch.nn.Linear(8, 2))
    assert says_and_differs(scaled, keras_dense()) == (False, True)  # not known: not claimed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "What follows 1 of 2 paired layers was not compared" in up.port(scaled, keras_dense()).notes[0]
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.Flatten(), torch.nn.Softmax(-1))
    dst = keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Conv2D(4, 1, activation="softmax")])
    assert not _says(conv, dst)  # over the flattened map, not the channels: not named


def test_timm_s_own_activation_layers_are_named():
    """timm builds GELU, GELUTanh, Swish, ... as layers of its own: known by
    module and class name, each agrees with the framework's of its name."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    from tests.zoo.models import import_torchvision

    import_torchvision()
    from timm.layers import activations as A
    from timm.layers import activations_me as M

    ours = {
        "gelu": A.GELU(), "gelu(approximate=tanh)": A.GELUTanh(), "silu": A.Swish(), "mish": A.Mish(),
        "sigmoid": A.Sigmoid(), "tanh": A.Tanh(), "hard_swish": A.HardSwish(), "hard_sigmoid": A.HardSigmoid(),
    }  # fmt: skip
    ours_me = {
        "silu": M.SwishMe(),
        "mish": M.MishMe(),
        "hard_swish": M.HardSwishMe(),
        "hard_sigmoid": M.HardSigmoidMe(),
    }
    theirs = _paddle_zoo()
    seen = set()
    for name, layer in [*ours.items(), *ours_me.items()]:
        for other in (name, None):
            torch.manual_seed(0)
            src = torch.nn.Sequential(torch.nn.Linear(3, 4), layer).eval()
            dst = paddle.nn.Sequential(paddle.nn.Linear(3, 4), *([theirs[name]] if other else []))
            said, differ = _says(src, dst), _differ(src, dst)
            assert said == differ == (other is None), (name, other)
            seen.add(said)
    assert seen == {True, False}


def _against_a_torch_mlp():
    """A torch Linear-ReLU-Linear, and ``check(dst)``: whether a port into ``dst`` says
    the outputs differ, and whether they do (on an input where ReLU matters)."""
    import torch

    torch.manual_seed(0)
    src = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    x = np.random.default_rng(0).standard_normal((8, 4)).astype("float32") * 3

    def check(dst):
        return _says(src, dst), not np.allclose(up.forward(src, x), up.forward(dst, x), atol=1e-5)

    return src, check


def test_a_keras_graph_is_read_past_reshapes_and_stops_at_unknown_layers():
    needs("torch")
    needs("keras")
    import keras

    src, says_and_differs = _against_a_torch_mlp()

    def keras_net(*middle):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), *middle, keras.layers.Dense(2)])

    assert says_and_differs(keras_net(keras.layers.Flatten(), keras.layers.ReLU())) == (False, False)
    assert says_and_differs(keras_net(keras.layers.Reshape((8,)), keras.layers.Activation("sigmoid"))) == (
        True,
        True,
    )
    scaled = keras_net(keras.layers.Lambda(lambda t: t * 3), keras.layers.ReLU())
    assert says_and_differs(scaled) == (False, True)  # a Lambda may change the values: not claimed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "0 -> 0 (keras)" in up.port(src, scaled).notes[0]


def test_an_nnx_sequential_is_read_into_nested_sequentials_and_past_flatten():
    needs("torch")
    needs("flax")
    from flax import nnx

    from unified_params.backends.flax.layers import flatten

    _, says_and_differs = _against_a_torch_mlp()

    class Scale(nnx.Module):  # a module of the user's own, without variables
        def __call__(self, t):
            return t * 3

    def nnx_net(*middle):
        return nnx.Sequential(nnx.Linear(4, 8, rngs=nnx.Rngs(0)), *middle, nnx.Linear(8, 2, rngs=nnx.Rngs(1)))

    assert says_and_differs(nnx_net(nnx.Sequential(nnx.relu))) == (False, False)
    assert says_and_differs(nnx_net(nnx.Sequential(nnx.sigmoid))) == (True, True)
    assert says_and_differs(nnx_net(flatten, nnx.relu)) == (False, False)
    assert says_and_differs(nnx_net(Scale(), nnx.relu)) == (False, True)  # not known: not claimed
