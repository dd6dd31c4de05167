"""The chapter's access scenarios on models written natively in each framework.

Paths and counts differ between frameworks here because the chapter's models
differ (its Keras MLP starts with a Flatten); what must hold everywhere is that
the unified view agrees with the framework's own view of the same model.
"""

from __future__ import annotations

import numpy as np

import unified_params as up
from tests.conformance import textbook
from tests.frameworks import native_count, native_named_params, to_numpy


def test_mlp_direct_access_by_position(backend, native):
    net = textbook.mlp(backend)
    m = up.wrap(net)
    assert m.backend == up.backend_of(net) == backend
    layer = m[2]  # the chapter's net[2] / net.layers[2]: the output layer
    assert layer.kind == "linear"
    assert layer.type_name == native.linear_type
    assert [p.name for p in layer.params().values()] == ["weight", "bias"]
    bias = layer["bias"]
    assert bias.shape == (1,) and bias.dtype == "float32" and bias.kind == "param"
    native_bias = native.layer(net, 2).bias
    assert bias.native is native_bias
    np.testing.assert_array_equal(bias.numpy(), to_numpy(native_bias))


def test_mlp_all_at_once_matches_framework(backend, native):
    net = textbook.mlp(backend)
    m = up.wrap(net)
    expected = textbook.expected(backend, "mlp")
    params = m.params()
    assert list(params) == expected["params"]
    assert m.count() == expected["count"] == native_count(backend, net)
    own = native_named_params(backend, net)
    ours = [p.native_shape for p in params.values()]
    if native.sorted_listing:  # the framework lists by path: the same variables, by native path
        ours = [p.native_shape for p in sorted(params.values(), key=lambda p: p.native_path)]
    assert ours == [shape for _, shape in own]
    for key, p in params.items():  # canonical: a Linear weight is (out, in), out = its bias' length
        if p.name == "weight":
            assert p.shape[0] == params[key.replace("weight", "bias")].shape[0], key
        assert p.shape == p.numpy().shape == np.asarray(p).shape
    # A sub-view keys by relative names, as net[0].named_parameters() does.
    first = m[native.first_linear]
    assert list(first.params()) == ["weight", "bias"]
    assert [p.path for p in first.params().values()] == expected["params"][:2]


def test_mlp_values_match_native_listing(backend, native):
    net = textbook.mlp(backend)
    params = list(up.wrap(net).params().values())
    if native.sorted_listing:
        params.sort(key=lambda p: p.native_path)
    values = [p.numpy("native") for p in params]
    theirs_all = native.values(net)
    assert len(values) == len(theirs_all)
    for ours, theirs in zip(values, theirs_all, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_mlp_access_by_path_like_state_dict(backend, native):
    net = textbook.mlp(backend)
    m = up.wrap(net)
    np.testing.assert_array_equal(m["2.bias"].numpy(), native.to_numpy(native.layer(net, 2).bias))
    # native names are accepted as aliases
    assert m[f"2.{native.kernel_name}"].native is m["2.weight"].native


def test_grad_is_none_before_backward(backend):
    m = up.wrap(textbook.mlp(backend))
    assert all(p.grad is None for p in m.params().values())


def test_grad_after_native_backward(backend, native):
    net = textbook.mlp(backend)
    grads = native.sum_backward(net, textbook.X)
    bias = up.wrap(net)["2.bias"]
    output_bias = next(n for n, shape in native.named_params(net) if shape == (1,))
    assert grads[output_bias].tolist() == [2.0]  # d(sum over 2 rows)/d(bias)
    if not native.native_grad_slot:  # a Keras variable has no gradient slot: p.grad stays empty
        assert bias.grad is None
        return
    assert bias.grad is not None and bias.grad.shape == (1,)
    np.testing.assert_allclose(bias.grad, [2.0])


def test_nested_blocks(backend, native):
    net = textbook.rgnet(backend)
    m = up.wrap(net)
    expected = textbook.expected(backend, "rgnet")
    params = m.params()
    assert next(iter(params)) == expected["first"]
    assert m.count() == expected["count"] == native_count(backend, net)
    assert len(params) == len(native_named_params(backend, net))
    # The chapter's rgnet[0][1][0].bias, by chained positions and by path.
    chained = m[0][1][native.block_linear]["bias"]
    assert chained.path == expected["path_bias"]
    assert m[expected["path_bias"]].native is chained.native
    assert len(m[0]) == 4 and all(len(block) in (2, 4) for block in m[0])


def test_direct_set_increment_and_item(backend, native):
    net = textbook.mlp(backend)
    m = up.wrap(net)
    path = f"{native.first_linear}.weight"
    p = m[path]
    native_before = p.native
    expected = p.numpy("canonical") + 1
    expected[0, 0] = 42
    p[:] += 1
    p[0, 0] = 42
    np.testing.assert_array_equal(p.numpy("canonical"), expected)
    np.testing.assert_array_equal(m[path][0], expected[0])
    assert m[path].native is native_before  # written in place
    assert p.trainable


def test_shared_layer_positions_and_dedup(backend):
    net = textbook.shared_mlp(backend)
    m = up.wrap(net)
    expected = textbook.expected(backend, "shared")
    a, b = expected["a"], expected["b"]
    assert len(m.children()) == len(m) == expected["children"]
    assert len(m.modules()) - 1 == expected["unique_layers"]
    params = m.params()
    assert a in params and b not in params
    assert params[a].aliases == (b,)
    assert m[b].aliases == (a,)
    assert m.count() == expected["count"] == native_count(backend, net)
    np.testing.assert_array_equal(m[a][0], m[b][0])
    m[a][0, 0] = 100
    assert m[b][0, 0] == 100 and m[b].native is m[a].native
    assert "shared with" in up.summary(net)
