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


def test_mlp_direct_access_by_position(backend):
    net = textbook.mlp(backend)
    m = up.wrap(net)
    assert m.backend == up.backend_of(net) == backend
    layer = m[2]  # the chapter's net[2] / net.layers[2]: the output layer
    assert layer.kind == "linear"
    assert layer.type_name == ("Dense" if backend == "keras" else "Linear")
    assert [p.name for p in layer.params().values()] == ["weight", "bias"]
    bias = layer["bias"]
    assert bias.shape == (1,) and bias.dtype == "float32" and bias.kind == "param"
    native_bias = net.layers[2].weights[1] if backend == "keras" else net[2].bias
    assert bias.native is native_bias
    np.testing.assert_array_equal(bias.numpy(), to_numpy(native_bias))


def test_mlp_all_at_once_matches_framework(backend):
    net = textbook.mlp(backend)
    m = up.wrap(net)
    expected = textbook.EXPECTED["mlp"][backend]
    params = m.params()
    assert list(params) == expected["params"]
    assert m.count() == expected["count"] == native_count(backend, net)
    own = native_named_params(backend, net)
    assert [p.native_shape for p in params.values()] == [shape for _, shape in own]
    for key, p in params.items():  # canonical: a Linear weight is (out, in), out = its bias' length
        if p.name == "weight":
            assert p.shape[0] == params[key.replace("weight", "bias")].shape[0], key
        assert p.shape == p.numpy().shape == np.asarray(p).shape
    # A sub-view keys by relative names, as net[0].named_parameters() does.
    first = m[0 if backend != "keras" else 1]
    assert list(first.params()) == ["weight", "bias"]
    assert [p.path for p in first.params().values()] == expected["params"][:2]


def test_mlp_values_match_native_listing(backend):
    net = textbook.mlp(backend)
    values = [p.numpy("native") for p in up.wrap(net).params().values()]
    if backend == "keras":
        native = net.get_weights()
    else:
        native = [to_numpy(t) for t in net.state_dict().values()]
    assert len(values) == len(native)
    for ours, theirs in zip(values, native, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_mlp_access_by_path_like_state_dict(backend):
    net = textbook.mlp(backend)
    m = up.wrap(net)
    native = net.weights[3] if backend == "keras" else net.state_dict()["2.bias"]
    np.testing.assert_array_equal(m["2.bias"].numpy(), to_numpy(native))
    if backend == "keras":  # native names are accepted as aliases
        assert m["2.kernel"].native is m["2.weight"].native


def test_grad_is_none_before_backward(backend):
    m = up.wrap(textbook.mlp(backend))
    assert all(p.grad is None for p in m.params().values())


def test_grad_after_native_backward(backend):
    net = textbook.mlp(backend)
    if backend == "keras":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(net(textbook.X))
        native = tape.gradient(loss, net.trainable_weights)
        assert native[3].numpy().tolist() == [2.0]
        # A Keras variable has no gradient slot: a native tape leaves p.grad empty.
        assert up.wrap(net)["2.bias"].grad is None
        return
    fw = __import__(backend)
    x = fw.to_tensor(textbook.X) if backend == "paddle" else fw.from_numpy(textbook.X)
    net(x).sum().backward()
    grad = up.wrap(net)["2.bias"].grad
    assert grad is not None and grad.shape == (1,)
    np.testing.assert_allclose(grad, [2.0])  # d(sum over 2 rows)/d(bias)


def test_nested_blocks(backend):
    net = textbook.rgnet(backend)
    m = up.wrap(net)
    expected = textbook.EXPECTED["rgnet"][backend]
    params = m.params()
    assert next(iter(params)) == expected["first"]
    assert m.count() == expected["count"] == native_count(backend, net)
    assert len(params) == len(native_named_params(backend, net))
    # The chapter's rgnet[0][1][0].bias, by chained positions and by path.
    chained = m[0][1][1 if backend == "keras" else 0]["bias"]
    assert chained.path == expected["path_bias"]
    assert m[expected["path_bias"]].native is chained.native
    assert len(m[0]) == 4 and all(len(block) in (2, 4) for block in m[0])


def test_direct_set_increment_and_item(backend):
    net = textbook.mlp(backend)
    m = up.wrap(net)
    path = "1.weight" if backend == "keras" else "0.weight"
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
    expected = textbook.EXPECTED["shared"][backend]
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
