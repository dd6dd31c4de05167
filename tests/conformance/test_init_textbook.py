"""The chapter's initialisation cells on every backend, natively written and spec-built."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs, textbook
from tests.conftest import needs
from tests.native import for_backend


class _First(dict):
    """The position of the chapter MLP's first Linear, per backend (Keras' starts with a Flatten)."""

    def __missing__(self, backend: str) -> str:
        return str(for_backend(backend).first_linear)


FIRST = _First()
LAST = "2"


def test_builtin_normal_weights_zero_bias(backend):
    net = textbook.mlp(backend)
    done = up.initialize(net, {"*.weight": up.init.Normal(0, 0.01), "*.bias": up.init.Zeros()})
    m = up.wrap(net)
    assert set(done) == set(m.params())
    assert done[f"{FIRST[backend]}.bias"] == "Zeros()"
    for p in m.params().values():
        value = p.numpy()
        if p.name == "bias":
            assert not value.any()
        else:
            assert value.any() and np.abs(value).max() < 0.06  # 6 std of N(0, 0.01)


def test_constant_one(backend):
    net = textbook.mlp(backend)
    up.initialize(net, {"*.weight": up.init.Constant(1), "*.bias": up.init.Zeros()})
    m = up.wrap(net)
    np.testing.assert_array_equal(m[f"{FIRST[backend]}.weight"][0], np.ones(4))
    assert m[f"{FIRST[backend]}.bias"][0] == 0


def test_per_layer_xavier_and_constant_42(backend):
    net = textbook.mlp(backend)
    first, before = f"{FIRST[backend]}.weight", up.wrap(net)[f"{LAST}.bias"].numpy()
    done = up.initialize(net, [(first, up.init.XavierUniform()), (f"{LAST}.weight", up.init.Constant(42))])
    m = up.wrap(net)
    fan_in, fan_out = m[first].shape[1], m[first].shape[0]
    assert np.abs(m[first].numpy()).max() <= math.sqrt(6 / (fan_in + fan_out))
    assert (m[f"{LAST}.weight"].numpy() == 42).all()
    assert list(done) == [first, f"{LAST}.weight"]
    np.testing.assert_array_equal(m[f"{LAST}.bias"].numpy(), before)  # no rule: untouched


def test_custom_init_function_then_direct_set(backend):
    net = textbook.mlp(backend)

    def my_init(shape, rng):
        w = rng.uniform(-10, 10, shape)
        return w * (np.abs(w) >= 5)

    up.initialize(net, {"*.weight": my_init})
    m = up.wrap(net)
    w = m[f"{FIRST[backend]}.weight"]
    value = w.numpy("canonical")
    assert ((value == 0) | ((np.abs(value) >= 5) & (np.abs(value) < 10))).all()
    w[:] += 1
    w[0, 0] = 42
    expected = value + 1
    expected[0, 0] = 42
    np.testing.assert_array_equal(w[0], expected[0])


def test_custom_initializer_subclass_reads_the_parameter(backend):
    seen = []

    class MyInit(up.init.Initializer):
        def sample(self, shape, rng, param):
            seen.append((param.name, param.layer_kind, shape))  # the chapter prints "Init weight (8, 4)"
            w = rng.uniform(-10, 10, shape)
            return w * (np.abs(w) >= 5)

    net = specs.mlp().build(backend)
    up.initialize(net, MyInit(), where="*.weight", seed=0)
    assert seen == [("weight", "linear", (8, 4)), ("weight", "linear", (1, 8))]


SEEDED_RULES = [
    ("0.weight", up.init.Orthogonal()),
    (up.where(kind="conv2d", name="weight"), up.init.KaimingNormal(mode="fan_out", nonlinearity="relu")),
    (up.where(kind="lstm"), up.init.TruncatedNormal(0, 0.1, -0.15, 0.2)),
    (up.where(kind="gru"), up.init.Uniform(-0.3, 0.3)),
    (up.where(kind="embedding"), up.init.LecunNormal()),
    ("*.bias", up.init.Normal(0.1, 0.02)),
    (lambda p: len(p.shape) >= 2, up.init.XavierUniform()),
    ("*", up.init.Constant(0.5)),
]


@pytest.mark.parametrize("name", sorted(specs.EXPECTED))
def test_seeded_init_is_bitwise_identical_across_backends(backends, name):
    states = {}
    backends = specs.able(backends, specs.BUILDERS[name]())
    if not backends:  # the one backend requested refuses this model (asserted)
        return
    for backend in backends:
        model = specs.BUILDERS[name]().build(backend)
        with warnings.catch_warnings():  # most models lack some of the rules' layer kinds
            warnings.simplefilter("ignore", UserWarning)
            up.initialize(model, SEEDED_RULES, seed=1234)
        states[backend] = {
            k: p.numpy("canonical") for k, p in up.wrap(model).params().items() if p.kind == "param"
        }
    first = states[backends[0]]
    for backend in backends[1:]:
        common = set(first) & set(states[backend])
        assert common >= {k for k in specs.EXPECTED[name] if "bias_" not in k and "running" not in k}
        for path in common:
            assert first[path].dtype == states[backend][path].dtype == np.float32
            assert first[path].tobytes() == states[backend][path].tobytes(), (backend, path)


def test_subset_reinit_gives_the_full_init_values(backend):
    full = specs.nested().build(backend)
    up.initialize(full, up.init.Normal(0, 1), seed=7)
    other = specs.nested().build(backend)
    up.initialize(other, up.init.Normal(0, 1), seed=99)
    up.initialize(other, up.init.Normal(0, 1), where="0.2.*", seed=7)
    a, b = up.wrap(full), up.wrap(other)
    for path, p in b.params().items():
        same = np.array_equal(p.numpy(), a[path].numpy())
        assert same == path.startswith("0.2."), path
    # A sub-view keys streams by the root's paths too.
    up.initialize(b[0][3], up.init.Normal(0, 1), seed=7)
    np.testing.assert_array_equal(b["0.3.2.weight"].numpy(), a["0.3.2.weight"].numpy())


def test_tied_parameter_is_drawn_once(backend):
    model = specs.shared().build(backend)
    done = up.initialize(model, up.init.Normal(0, 1), seed=3)
    m = up.wrap(model)
    assert "2.weight" in done and "4.weight" not in done
    alone = specs.shared().build(backend)
    up.initialize(alone, up.init.Normal(0, 1), where="2.*", seed=3)
    np.testing.assert_array_equal(m["4.weight"].numpy(), up.wrap(alone)["2.weight"].numpy())


def test_without_seed_each_call_draws_fresh_values(backend):
    model = specs.mlp().build(backend)
    p = up.wrap(model)["0.weight"]
    up.initialize(model, up.init.Normal())
    first = p.numpy()
    up.initialize(model, up.init.Normal())
    assert not np.array_equal(first, p.numpy())


def test_buffers_are_never_initialised(backend):
    model = specs.cnn().build(backend)
    stats = up.wrap(model)["1.running_var"].numpy()
    done = up.initialize(model, up.init.Constant(3))
    assert "1.running_var" not in done and "1.weight" in done
    np.testing.assert_array_equal(up.wrap(model)["1.running_var"].numpy(), stats)


def test_large_parameter_chunks_do_not_change_values(backend, monkeypatch):
    from unified_params._core import initialize as engine

    model = specs.embedding().build(backend)
    up.initialize(model, up.init.Normal(), where="0.weight", seed=11)
    whole = up.wrap(model)["0.weight"].numpy()
    up.initialize(model, up.init.Normal(), where="0.weight", seed=11)
    np.testing.assert_array_equal(up.wrap(model)["0.weight"].numpy(), whole)
    monkeypatch.setattr(engine, "CHUNK", 7)  # many chunks, drawn in threads
    up.initialize(model, up.init.Normal(), where="0.weight", seed=11)
    chunked = up.wrap(model)["0.weight"].numpy()
    assert chunked.shape == whole.shape and not np.array_equal(chunked, whole)
    up.initialize(model, up.init.Normal(), where="0.weight", seed=11)
    np.testing.assert_array_equal(up.wrap(model)["0.weight"].numpy(), chunked)


def test_in_place_init_keeps_torch_autograd_honest():
    needs("torch")
    import torch

    model = specs.mlp().build("torch")
    out = model(torch.ones(2, 4)).sum()  # the graph saved 2.weight's value
    up.initialize(model, up.init.Normal(), where="2.weight", seed=0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()
    grad_free = model(torch.ones(2, 4)).sum()
    grad_free.backward()  # a fresh graph sees the new values
    assert model[2].weight.grad is not None


def _chapter_cells(backend):
    """Every init cell of the chapter in order, on a spec MLP; returns what each shows."""
    model = specs.mlp().build(backend)
    m = up.wrap(model)
    shown = []
    up.initialize(model, {"*.weight": up.init.Normal(0, 0.01), "*.bias": up.init.Zeros()}, seed=5)
    shown += [m["0.weight"][0].numpy(), m["0.bias"][0].numpy()]  # slices are live views: keep copies
    up.initialize(model, {"*.weight": up.init.Constant(1), "*.bias": up.init.Zeros()}, seed=5)
    shown += [m["0.weight"][0].numpy(), m["0.bias"][0].numpy()]
    up.initialize(model, [("0.weight", up.init.XavierUniform()), ("2.weight", up.init.Constant(42))], seed=5)
    shown += [m["0.weight"][0].numpy(), m["2.weight"].numpy()]

    def my_init(shape, rng):
        w = rng.uniform(-10, 10, shape)
        return w * (np.abs(w) >= 5)

    up.initialize(model, {"*.weight": my_init}, seed=5)
    shown.append(m["0.weight"][:2].numpy())
    m["0.weight"][:] += 1
    m["0.weight"][0, 0] = 42
    shown.append(m["0.weight"][0].numpy())
    return shown


def test_chapter_init_cells_agree_across_backends(backends):
    results = {b: _chapter_cells(b) for b in backends}
    first = results[backends[0]]
    assert first[1] == 0 and (first[2] == 1).all() and (first[5] == 42).all() and first[7][0] == 42
    for backend in backends[1:]:
        for k, (a, b) in enumerate(zip(first, results[backend], strict=True)):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (backend, k)
