"""Spec-built models: the same paths, shapes, values and outputs on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs
from tests.frameworks import forward, native_count, native_named_params

NAMES = sorted(specs.EXPECTED)


@pytest.mark.parametrize("name", NAMES)
def test_canonical_paths_and_shapes(backend, name):
    if specs.refused(backend, specs.BUILDERS[name]()):
        return
    model = specs.BUILDERS[name]().build(backend)
    m = up.wrap(model)
    got = {path: p.shape for path, p in m.params().items()}
    expected = specs.expected_for(backend, name)
    assert got == expected
    canonical = [k for k in specs.EXPECTED[name] if k in got]
    assert [k for k in got if k in specs.EXPECTED[name]] == canonical  # depth-first order


@pytest.mark.parametrize("name", NAMES)
def test_view_agrees_with_framework(backend, name):
    if specs.refused(backend, specs.BUILDERS[name]()):
        return
    model = specs.BUILDERS[name]().build(backend)
    m = up.wrap(model)
    native = native_named_params(backend, model)
    assert len(m.params()) == len(native)
    assert sorted(p.size for p in m.params().values()) == sorted(int(np.prod(s)) for _, s in native)
    assert m.count() == native_count(backend, model)


@pytest.mark.parametrize("name", NAMES)
def test_same_values_same_outputs_across_backends(backends, name):
    x = specs.example_input(name)
    outputs, states = {}, {}
    backends = specs.able(backends, specs.BUILDERS[name]())
    if not backends:  # the one backend requested refuses this model (asserted)
        return
    for backend in backends:
        model = specs.BUILDERS[name]().build(backend)
        specs.load_reference(backend, name, model)
        states[backend] = {k: p.numpy("canonical") for k, p in up.wrap(model).params().items()}
        outputs[backend] = forward(backend, model, x)
    first = backends[0]
    for backend in backends[1:]:
        shared = set(states[first]) & set(states[backend])
        for path in shared:
            np.testing.assert_array_equal(states[backend][path], states[first][path], err_msg=path)
        np.testing.assert_allclose(outputs[backend], outputs[first], rtol=1e-4, atol=1e-5, err_msg=backend)


@pytest.mark.parametrize("path", ["0.weight", "3.weight"])
def test_item_writes_agree_across_backends(backends, path):
    results = {}
    for backend in backends:
        model = specs.cnn().build(backend)
        specs.load_reference(backend, "cnn", model)
        p = up.wrap(model)[path]
        p[:] += 1
        p[0, 0] = 42  # a whole kernel slice: axes differ natively (OIHW vs HWIO)
        p[1, :, 0] = -1
        p[..., 1] *= 2
        results[backend] = p.numpy("canonical")
    expected = specs.reference_values("cnn")[path] + 1
    expected[0, 0] = 42
    expected[1, :, 0] = -1
    expected[..., 1] *= 2
    for backend, value in results.items():
        np.testing.assert_array_equal(value, expected, err_msg=backend)


def test_shared_spec_layer_is_one_native_layer(backends):
    counts = set()
    for backend in backends:
        m = up.wrap(specs.shared().build(backend))
        assert m[2].native is m[4].native
        assert [c.path for c in m.children()] == [str(i) for i in range(7)]
        assert [x.path for x in m.modules()] == ["", "0", "1", "2", "3", "5", "6"]
        assert m["2.weight"].aliases == ("4.weight",) and m["4.bias"].aliases == ("2.bias",)
        counts.add(m.count())
    assert counts == {40 + 72 + 9}


def test_batchnorm_statistics_are_buffers(backend):
    m = up.wrap(specs.cnn().build(backend))
    kinds = {p.name: p.kind for p in m[1].params().values()}
    assert kinds["running_mean"] == kinds["running_var"] == "buffer"
    assert kinds["weight"] == kinds["bias"] == "param"
    assert not m["1.running_var"].trainable
    assert m.count() == 4 * 3 * 9 + 4 + 4 + 4 + 2 * 4 * 6 + 2
    with pytest.raises(up.UnsupportedError, match="buffer"):
        m["1.running_mean"].trainable = True


def test_native_leaf_names_are_aliases(backend):
    m = up.wrap(specs.cnn().build(backend))
    natives = {"torch": "running_var", "keras": "moving_variance", "paddle": "_variance", "flax": "var"}
    assert m[f"1.{natives[backend]}"].path == "1.running_var"
    assert m["1.running_var"].native_name == natives[backend]


def test_selectors_and_trainable_filter(backend):
    m = up.wrap(specs.mlp().build(backend))
    assert list(m.params("*.weight")) == ["0.weight", "2.weight"]
    assert list(m.params(["0.*", "*.bias"])) == ["0.weight", "0.bias", "2.bias"]
    assert list(m.params(up.where(kind="linear", name="bias"))) == ["0.bias", "2.bias"]
    assert list(m.params(lambda p: p.shape == (1, 8))) == ["2.weight"]
    m["0.weight"].trainable = False
    assert list(m.params(trainable=False)) == ["0.weight"]
    assert list(m.params(trainable=True)) == ["0.bias", "2.weight", "2.bias"]
    assert m.count() == 49  # frozen parameters still count
    m["0.weight"].trainable = True
    assert m["0.weight"].trainable


@pytest.mark.parametrize("name", NAMES)
def test_printed_model_is_the_same_on_every_backend(backends, name):
    """``print(m)`` names layers by kind, sized from canonical shapes (GroupNorm's
    groups from the layer), as torch prints the model."""
    printed = {
        b: str(up.wrap(specs.BUILDERS[name]().build(b))) for b in specs.able(backends, specs.BUILDERS[name]())
    }
    assert len(set(printed.values())) <= 1, printed
    expected = {"groupnorm": "(1): GroupNorm(2, 8)", "rnn": "(0): RNN(3, 5)", "lstm": "(0): LSTM(3, 5)"}
    for text in printed.values():
        assert expected.get(name, "") in text, text
