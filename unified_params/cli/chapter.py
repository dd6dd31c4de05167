"""The textbook chapter on parameter management, cell by cell.

Each `Cell` holds one unified version of a code cell of the chapter,
run on every backend, beside the native code each framework needs for the
same step. The demo (``unified-params demo``), the generated docs page
(``docs/chapter.md``) and the conformance test of the chapter all run these
cells, so they show the same code, the same seed and the same numbers.

Examples:
    >>> [cell.key for cell in CELLS][:3]
    ['forward', 'state_dict', 'targeted']
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Native tabs, in the order they are shown: label -> backend it runs on.
FRAMEWORKS = {"PyTorch": "torch", "Keras 3": "keras", "PaddlePaddle": "paddle", "JAX (Flax NNX)": "flax"}


@dataclass(frozen=True)
class Cell:
    """One code cell of the chapter.

    Attributes:
        key: A short name (tests refer to cells by it).
        title: The heading the cell comes under (``"## ..."``), or ``""``.
        text: What the cell shows, in a sentence or two.
        code: The unified version, run on every backend.
        native: The same step in each framework's own API, by tab label.
    """

    key: str
    title: str
    text: str
    code: str
    native: dict[str, str]


CELLS: tuple[Cell, ...] = (
    Cell(
        "forward",
        "## A multilayer perceptron",
        "One hidden layer, built from one spec on any backend, initialised with a seed (the same "
        "values everywhere), and run forward on a batch: numpy in, numpy out.",
        """\
S = up.spec
net = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 1)).build(backend)
up.initialize(net, up.init.Uniform(-0.5, 0.5), seed=0)
m = up.wrap(net)
X = np.random.default_rng(0).uniform(size=(2, 4)).astype("float32")
print(m(X))""",
        {
            "PyTorch": """\
import torch
from torch import nn

net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
X = torch.rand(size=(2, 4))
print(net(X))""",
            "Keras 3": """\
import keras

L = keras.layers
net = keras.Sequential([keras.Input((4,)), L.Dense(8), L.ReLU(), L.Dense(1)])
X = keras.random.uniform((2, 4))
print(net(X))""",
            "PaddlePaddle": """\
import paddle
from paddle import nn

net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
X = paddle.rand([2, 4])
print(net(X))""",
            "JAX (Flax NNX)": """\
import jax
import jax.numpy as jnp
from flax import nnx

rngs = nnx.Rngs(0)
net = nnx.Sequential(
    nnx.Linear(4, 8, rngs=rngs), nnx.relu, nnx.Linear(8, 1, rngs=rngs)
)
X = jax.random.uniform(jax.random.key(0), (2, 4))
print(net(X))""",
        },
    ),
    Cell(
        "state_dict",
        "## Parameter access",
        "A model is a list of layers: position 2 is the output layer. Its state holds a weight "
        "and a bias, named and shaped as in PyTorch on every backend.",
        """\
for name, value in up.state_dict(m[2]).items():
    print(name, value)""",
        {
            "PyTorch": "print(net[2].state_dict())",
            "Keras 3": "print(net.layers[2].weights)  # kernel (in, out), bias",
            "PaddlePaddle": "print(net[2].state_dict())  # weight (in, out), bias",
            "JAX (Flax NNX)": """\
print(nnx.state(net.layers[2]))  # kernel (in, out), bias""",
        },
    ),
    Cell(
        "targeted",
        "### Targeted parameters",
        "A parameter is an object with a value, a gradient and metadata; its value prints in "
        "canonical layout. Before any backward pass there is no gradient.",
        """\
bias = m[2]["bias"]
print(type(bias).__name__)
print(bias)
print(bias.numpy())
print(m[2]["weight"].grad is None)""",
        {
            "PyTorch": """\
print(type(net[2].bias))
print(net[2].bias)
print(net[2].bias.data)
print(net[2].weight.grad is None)""",
            "Keras 3": """\
bias = net.layers[2].bias
print(type(bias))
print(bias)
print(keras.ops.convert_to_numpy(bias))
# a Keras variable keeps no gradient: it comes from a GradientTape""",
            "PaddlePaddle": """\
print(type(net[2].bias))
print(net[2].bias)
print(net[2].bias.numpy())
print(net[2].weight.grad is None)""",
            "JAX (Flax NNX)": """\
bias = net.layers[2].bias
print(type(bias))
print(bias)
print(bias[...])
# an NNX variable keeps no gradient: nnx.grad returns them""",
        },
    ),
    Cell(
        "all_at_once",
        "### All parameters at once",
        "One listing of a layer and one of the whole model, keyed as PyTorch keys them: a "
        "sub-view lists relative names, the model absolute paths.",
        """\
print(*[(name, p.shape) for name, p in m[0].params().items()])
print(*[(name, p.shape) for name, p in m.params().items()])""",
        {
            "PyTorch": """\
print(*[(name, param.shape) for name, param in net[0].named_parameters()])
print(*[(name, param.shape) for name, param in net.named_parameters()])""",
            "Keras 3": """\
print(*[(w.path, w.shape) for w in net.layers[0].weights])
print(*[(w.path, w.shape) for w in net.weights])""",
            "PaddlePaddle": """\
print(*[(name, param.shape) for name, param in net[0].named_parameters()])
print(*[(name, param.shape) for name, param in net.named_parameters()])""",
            "JAX (Flax NNX)": """\
first = nnx.to_flat_state(nnx.state(net.layers[0], nnx.Param))
print(*[(path, v.shape) for path, v in first])
every = nnx.to_flat_state(nnx.state(net, nnx.Param))
print(*[(path, v.shape) for path, v in every])  # sorted by path""",
        },
    ),
    Cell(
        "by_name",
        "",
        "Another way in: the whole state, by path.",
        'print(up.state_dict(m)["2.bias"])',
        {
            "PyTorch": "print(net.state_dict()['2.bias'].data)",
            "Keras 3": "print(net.get_weights()[3])",
            "PaddlePaddle": "print(net.state_dict()['2.bias'])",
            "JAX (Flax NNX)": """\
print(nnx.state(net)["layers"][2]["bias"][...])""",
        },
    ),
    Cell(
        "nested",
        "### Parameters of nested blocks",
        "A block factory nests four named blocks in a larger one. Named children keep their "
        "names on every backend, so paths read the same everywhere.",
        """\
def block1():
    return S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 4), S.ReLU())

def block2():
    return S.Sequential(*[(f"block {i}", block1()) for i in range(4)])

rgnet = S.Sequential(block2(), S.Linear(4, 1)).build(backend)
up.initialize(rgnet, up.init.Uniform(-0.5, 0.5), seed=0)
rg = up.wrap(rgnet)
print(rg(X))""",
        {
            "PyTorch": """\
def block1():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())

def block2():
    net = nn.Sequential()
    for i in range(4):
        net.add_module(f"block {i}", block1())
    return net

rgnet = nn.Sequential(block2(), nn.Linear(4, 1))
print(rgnet(X))""",
            "Keras 3": """\
def block1(name):
    layers = [L.Dense(8), L.ReLU(), L.Dense(4), L.ReLU()]
    return keras.Sequential(layers, name=name)

def block2():
    return keras.Sequential([block1(f"block {i}") for i in range(4)])

rgnet = keras.Sequential([keras.Input((4,)), block2(), L.Dense(1)])
print(rgnet(X))""",
            "PaddlePaddle": """\
def block1():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())

def block2():
    net = nn.Sequential()
    for i in range(4):
        net.add_sublayer(f"block {i}", block1())
    return net

rgnet = nn.Sequential(block2(), nn.Linear(4, 1))
print(rgnet(X))""",
            "JAX (Flax NNX)": """\
def block1():
    return nnx.Sequential(
        nnx.Linear(4, 8, rngs=rngs), nnx.relu,
        nnx.Linear(8, 4, rngs=rngs), nnx.relu,
    )

def block2():  # an nnx.Sequential keys its layers by position
    return nnx.Sequential(*[block1() for _ in range(4)])

rgnet = nnx.Sequential(block2(), nnx.Linear(4, 1, rngs=rngs))
print(rgnet(X))""",
        },
    ),
    Cell(
        "print_nested",
        "",
        "How the network is organised: layers by kind, sizes from their canonical shapes.",
        "print(rg)",
        {
            "PyTorch": "print(rgnet)",
            "Keras 3": "rgnet.summary(expand_nested=True)",
            "PaddlePaddle": "print(rgnet)",
            "JAX (Flax NNX)": """\
print(rgnet)""",
        },
    ),
    Cell(
        "nested_access",
        "",
        "Layers are nested lists: the bias of the first layer of the second block.",
        """\
bias = rg[0][1][0]["bias"]
print(bias.path)
print(bias.numpy())""",
        {
            "PyTorch": "print(rgnet[0][1][0].bias.data)",
            "Keras 3": "print(rgnet.layers[0].layers[1].layers[0].bias)",
            "PaddlePaddle": "print(rgnet[0][1][0].bias)",
            "JAX (Flax NNX)": """\
print(rgnet.layers[0].layers[1].layers[0].bias[...])""",
        },
    ),
    Cell(
        "init_normal",
        "## Parameter initialisation\n\n### Built-in initialisation",
        "Weights from N(0, 0.01), biases zero. Values are drawn in canonical layout from a "
        "seed, so they are the same on every backend.",
        """\
rules = {"*.weight": up.init.Normal(0, 0.01), "*.bias": up.init.Zeros()}
up.initialize(net, rules, seed=42)
print(m[0]["weight"][0], m[0]["bias"][0])""",
        {
            "PyTorch": """\
def init_normal(module):
    if type(module) == nn.Linear:
        nn.init.normal_(module.weight, mean=0, std=0.01)
        nn.init.zeros_(module.bias)

net.apply(init_normal)
print(net[0].weight.data[0], net[0].bias.data[0])""",
            "Keras 3": """\
for layer in (net.layers[0], net.layers[2]):
    layer.kernel.assign(keras.random.normal(layer.kernel.shape, stddev=0.01))
    layer.bias.assign(keras.ops.zeros(layer.bias.shape))
# torch's row 0 is column 0 of a Keras kernel (in, out)
print(net.layers[0].kernel[:, 0], net.layers[0].bias[0])""",
            "PaddlePaddle": """\
def init_normal(layer):
    if type(layer) == nn.Linear:
        nn.initializer.Normal(mean=0.0, std=0.01)(layer.weight)
        nn.initializer.Constant(0.0)(layer.bias)

net.apply(init_normal)
print(net[0].weight[:, 0], net[0].bias[0])  # torch's row 0 is column 0 here""",
            "JAX (Flax NNX)": """\
normal = jax.nn.initializers.normal(stddev=0.01)
for i, layer in enumerate((net.layers[0], net.layers[2])):
    key = jax.random.key(42 + i)
    layer.kernel[...] = normal(key, layer.kernel.shape)
    layer.bias[...] = jnp.zeros(layer.bias.shape)
# torch's row 0 is column 0 of an NNX kernel (in, out)
print(net.layers[0].kernel[:, 0], net.layers[0].bias[0])""",
        },
    ),
    Cell(
        "init_constant",
        "",
        "Every weight 1, every bias 0.",
        """\
rules = {"*.weight": up.init.Constant(1), "*.bias": up.init.Zeros()}
up.initialize(net, rules)
print(m[0]["weight"][0], m[0]["bias"][0])""",
        {
            "PyTorch": """\
def init_constant(module):
    if type(module) == nn.Linear:
        nn.init.constant_(module.weight, 1)
        nn.init.zeros_(module.bias)

net.apply(init_constant)
print(net[0].weight.data[0], net[0].bias.data[0])""",
            "Keras 3": """\
for layer in (net.layers[0], net.layers[2]):
    layer.kernel.assign(keras.ops.ones(layer.kernel.shape))
    layer.bias.assign(keras.ops.zeros(layer.bias.shape))
print(net.layers[0].kernel[:, 0], net.layers[0].bias[0])""",
            "PaddlePaddle": """\
def init_constant(layer):
    if type(layer) == nn.Linear:
        nn.initializer.Constant(1.0)(layer.weight)
        nn.initializer.Constant(0.0)(layer.bias)

net.apply(init_constant)
print(net[0].weight[:, 0], net[0].bias[0])""",
            "JAX (Flax NNX)": """\
for layer in (net.layers[0], net.layers[2]):
    layer.kernel[...] = jnp.ones(layer.kernel.shape)
    layer.bias[...] = jnp.zeros(layer.bias.shape)
print(net.layers[0].kernel[:, 0], net.layers[0].bias[0])""",
        },
    ),
    Cell(
        "init_per_layer",
        "",
        "Different initialisers per block: Xavier on the first layer, the constant 42 on the "
        "last, each applied to a sub-view.",
        """\
up.initialize(m[0], up.init.XavierUniform(), where="weight", seed=42)
up.initialize(m[2], up.init.Constant(42), where="weight")
print(m[0]["weight"][0])
print(m[2]["weight"].numpy())""",
        {
            "PyTorch": """\
def init_xavier(module):
    if type(module) == nn.Linear:
        nn.init.xavier_uniform_(module.weight)

def init_42(module):
    if type(module) == nn.Linear:
        nn.init.constant_(module.weight, 42)

net[0].apply(init_xavier)
net[2].apply(init_42)
print(net[0].weight.data[0])
print(net[2].weight.data)""",
            "Keras 3": """\
first, last = net.layers[0], net.layers[2]
first.kernel.assign(keras.initializers.GlorotUniform()(first.kernel.shape))
last.kernel.assign(keras.ops.full(last.kernel.shape, 42.0))
print(first.kernel[:, 0])
print(last.kernel)""",
            "PaddlePaddle": """\
nn.initializer.XavierUniform()(net[0].weight)
nn.initializer.Constant(42.0)(net[2].weight)
print(net[0].weight[:, 0])
print(net[2].weight)""",
            "JAX (Flax NNX)": """\
first, last = net.layers[0], net.layers[2]
xavier = jax.nn.initializers.xavier_uniform()
first.kernel[...] = xavier(jax.random.key(42), first.kernel.shape)
last.kernel[...] = jnp.full(last.kernel.shape, 42.0)
print(first.kernel[:, 0])
print(last.kernel[...])""",
        },
    ),
    Cell(
        "init_custom",
        "### Custom initialisation",
        "U(5, 10) with probability 1/4, 0 with probability 1/2, U(-10, -5) with probability "
        "1/4: a plain function of the canonical shape and a random generator, which may also "
        "take the parameter it fills.",
        """\
def my_init(shape, rng, param):
    print("Init", param.name, param.shape)
    w = rng.uniform(-10, 10, shape)
    return w * (np.abs(w) >= 5)

up.initialize(net, {"*.weight": my_init}, seed=42)
print(m[0]["weight"][:2])""",
        {
            "PyTorch": """\
def my_init(module):
    if type(module) == nn.Linear:
        name, param = next(iter(module.named_parameters()))
        print("Init", name, param.shape)
        nn.init.uniform_(module.weight, -10, 10)
        module.weight.data *= module.weight.data.abs() >= 5

net.apply(my_init)
print(net[0].weight[:2])""",
            "Keras 3": """\
class MyInit(keras.initializers.Initializer):
    def __call__(self, shape, dtype=None):
        data = keras.random.uniform(shape, -10, 10, dtype=dtype)
        return data * keras.ops.cast(keras.ops.abs(data) >= 5, data.dtype)

for layer in (net.layers[0], net.layers[2]):
    print("Init", layer.kernel.path, layer.kernel.shape)
    layer.kernel.assign(MyInit()(layer.kernel.shape))
print(net.layers[0].kernel[:, :2])""",
            "PaddlePaddle": """\
def my_init(layer):
    if type(layer) == nn.Linear:
        print("Init", layer.weight.name, layer.weight.shape)
        w = paddle.uniform(layer.weight.shape, min=-10.0, max=10.0)
        layer.weight.set_value(w * (w.abs() >= 5).astype(w.dtype))

net.apply(my_init)
print(net[0].weight[:, :2])""",
            "JAX (Flax NNX)": """\
def my_init(key, shape, dtype=jnp.float32):
    w = jax.random.uniform(key, shape, dtype, -10, 10)
    return w * (jnp.abs(w) >= 5)

for i, layer in enumerate((net.layers[0], net.layers[2])):
    print("Init", "kernel", layer.kernel.shape)
    layer.kernel[...] = my_init(jax.random.key(i), layer.kernel.shape)
print(net.layers[0].kernel[:, :2])""",
        },
    ),
    Cell(
        "set_directly",
        "### Setting parameters directly",
        "Writes go to the parameter in place, indexing the canonical layout: whole slices, "
        "in-place arithmetic, single elements, and chained indexing alike.",
        """\
w = m[0]["weight"]
w[:] += 1
w[0, 0] = 42
w[1][0] = 7
print(w[:2])""",
        {
            "PyTorch": """\
net[0].weight.data[:] += 1
net[0].weight.data[0, 0] = 42
net[0].weight.data[1][0] = 7
print(net[0].weight.data[:2])""",
            "Keras 3": """\
kernel = net.layers[0].kernel
kernel.assign(kernel + 1)
value = keras.ops.convert_to_numpy(kernel)
value[0, 0] = 42  # torch's [0, 0]: input 0 to unit 0
value[0, 1] = 7   # torch's [1][0]: input 0 to unit 1
kernel.assign(value)
print(kernel[:, :2])""",
            "PaddlePaddle": """\
net[0].weight.set_value(net[0].weight.numpy() + 1)
value = net[0].weight.numpy()
value[0, 0] = 42  # torch's [0, 0]
value[0, 1] = 7   # torch's [1][0]
net[0].weight.set_value(value)
print(net[0].weight[:, :2])""",
            "JAX (Flax NNX)": """\
kernel = net.layers[0].kernel
kernel[...] = kernel[...] + 1
kernel[0, 0] = 42  # torch's [0, 0]: input 0 to unit 0
kernel[0, 1] = 7   # torch's [1][0]: input 0 to unit 1
print(kernel[:, :2])""",
        },
    ),
    Cell(
        "tied",
        "## Tied parameters",
        "One layer used at two positions is one object: equal values, a write through one "
        "position seen at the other, and counted once.",
        """\
shared = S.Linear(8, 8)
tied = S.Sequential(
    S.Linear(4, 8), S.ReLU(), shared, S.ReLU(), shared, S.ReLU(), S.Linear(8, 1)
).build(backend)
up.initialize(tied, up.init.Uniform(-0.5, 0.5), seed=0)
t = up.wrap(tied)
print(t(X))
print(t[2]["weight"][0] == t[4]["weight"][0])
t[2]["weight"][0, 0] = 100
print(t[2]["weight"][0] == t[4]["weight"][0])
print(len(t.children()), len(t.modules()) - 1, t.count(), up.ties(tied))""",
        {
            "PyTorch": """\
shared = nn.Linear(8, 8)
tied = nn.Sequential(
    nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(),
    shared, nn.ReLU(), nn.Linear(8, 1),
)
print(tied(X))
print(tied[2].weight.data[0] == tied[4].weight.data[0])
tied[2].weight.data[0, 0] = 100
print(tied[2].weight.data[0] == tied[4].weight.data[0])""",
            "Keras 3": """\
shared = L.Dense(8)
tied = keras.Sequential([
    keras.Input((4,)), L.Dense(8), L.ReLU(), shared, L.ReLU(),
    shared, L.ReLU(), L.Dense(1),
])
print(tied(X))
print(tied.layers[2].kernel is tied.layers[4].kernel, len(tied.weights))""",
            "PaddlePaddle": """\
shared = nn.Linear(8, 8)
tied = nn.Sequential(
    nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(),
    shared, nn.ReLU(), nn.Linear(8, 1),
)
print(tied(X))
print(tied[2].weight[:, 0] == tied[4].weight[:, 0])""",
            "JAX (Flax NNX)": """\
shared = nnx.Linear(8, 8, rngs=rngs)
tied = nnx.Sequential(
    nnx.Linear(4, 8, rngs=rngs), nnx.relu, shared, nnx.relu,
    shared, nnx.relu, nnx.Linear(8, 1, rngs=rngs),
)
print(tied(X))
print(tied.layers[2].kernel[:, 0] == tied.layers[4].kernel[:, 0])
print(nnx.find_duplicates(tied))  # [[('layers', 2), ('layers', 4)]]""",
        },
    ),
    Cell(
        "tied_gradient",
        "",
        "When parameters are tied, what happens to their gradients? The shared layer has one "
        "gradient, the sum over both uses.",
        """\
grads = up.gradients(tied, X)
print(sorted(grads))
print(np.round(grads["2.bias"], 4))
print(np.array_equal(t["4.weight"].grad, grads["2.weight"]))""",
        {
            "PyTorch": """\
tied(X).sum().backward()
print(tied[2].bias.grad)
print(tied[4].weight.grad is tied[2].weight.grad)""",
            "Keras 3": """\
import tensorflow as tf

with tf.GradientTape() as tape:
    loss = keras.ops.sum(tied(X))
kernel_grad, bias_grad = tape.gradient(loss, [shared.kernel, shared.bias])
print(bias_grad)  # one gradient for both uses""",
            "PaddlePaddle": """\
tied(X).sum().backward()
print(tied[2].bias.grad)""",
            "JAX (Flax NNX)": """\
grads = nnx.grad(lambda model: model(X).sum())(tied)
print(grads["layers"][2]["bias"][...])  # one gradient for both uses""",
        },
    ),
)


def namespace(backend: str) -> dict:
    """A fresh namespace for running the unified cells on ``backend``."""
    import unified_params as up

    return {"up": up, "np": np, "backend": backend}


def run(backend: str, cells: Sequence[Cell] = CELLS) -> list[str]:
    """Run the unified cells in order on one backend; what each printed.

    Numbers print with four decimals, as in the chapter.
    """
    space = namespace(backend)
    outputs = []
    with np.printoptions(precision=4, suppress=True, linewidth=64):
        for cell in cells:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(cell.code, f"<chapter cell {cell.key}>", "exec"), space)  # noqa: S102
            outputs.append(out.getvalue().rstrip())
    return outputs
