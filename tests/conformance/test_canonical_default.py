"""One call, one answer: what a user sees by default is canonical (PyTorch's) on every backend.

Shapes, values, gradients, summaries and printed parameters agree with the
torch model of the same spec; writes of every spelling (``set``, ``[]=``,
chained ``[][]=``, ``+=``) go through in place; ``m(x)`` is the framework's
own forward pass; a sub-view keys by relative names.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs
from tests.frameworks import forward
from unified_params import spec as S

MODELS = {
    "mlp": (specs.mlp, (3, 4)),
    "cnn": (specs.cnn, (2, 3, 6, 6)),
    "norm": (specs.norm, (3, 6)),
    "lstm": (specs.lstm, (2, 5, 3)),
    "gru": (specs.gru, (2, 5, 3)),
    "depthwise": (lambda: S.Sequential(S.Conv2d(3, 6, 3, groups=3)), (2, 3, 7, 7)),
    "transposed": (lambda: S.Sequential(S.ConvTranspose2d(3, 4, 3, stride=2)), (2, 3, 5, 5)),
    "conv1d": (lambda: S.Sequential(S.Conv1d(3, 5, 3, stride=2)), (2, 3, 9)),
}
RNG = np.random.default_rng(7)


def _seeded(spec, backend):
    model = spec().build(backend)
    up.initialize(model, up.init.Normal(0, 0.3), seed=3)
    return model


@pytest.mark.parametrize("case", ["mlp", "cnn", "lstm"])
def test_a_whole_parameter_is_its_own_local_block(backend, case):
    """The sharding accessors on a parameter held whole by this process."""
    spec, _ = MODELS[case]
    if specs.refused(backend, spec()):
        return
    for path, p in up.wrap(_seeded(spec, backend)).params().items():
        assert p.placements is None and p.sharding() is None, path
        assert p.local_shape == p.shape, path
        local = p.local()
        assert np.array_equal(local, p.numpy()) and local.shape == p.shape, path


@pytest.mark.parametrize("case", sorted(MODELS))
def test_every_view_of_a_parameter_has_the_torch_shape(backend, case):
    spec, shape = MODELS[case]
    if specs.refused(backend, spec()):
        return
    torch_shapes = {k: tuple(p.shape) for k, p in up.wrap(spec().build("torch")).params().items()}
    model = _seeded(spec, backend)
    m = up.wrap(model)
    up.gradients(model, RNG.standard_normal(shape).astype("float32"))
    for path, p in m.params().items():
        if path not in torch_shapes:  # a leaf only some frameworks keep (Keras' one LSTM bias)
            continue
        expected = torch_shapes[path]
        assert p.shape == p.numpy().shape == np.asarray(p).shape == expected, path
        assert p[...].shape == expected and p.size == int(np.prod(expected)), path
        if p.kind == "param":
            assert p.grad is not None and p.grad.shape == expected, path
            native_grad = p.native_grad
            assert native_grad is not None and native_grad.shape == p.native_shape, path


@pytest.mark.parametrize("case", sorted(MODELS))
def test_values_and_printed_parameters_are_the_same_on_every_backend(backends, case):
    spec, _ = MODELS[case]
    seen = {}
    backends = specs.able(backends, spec())
    if not backends:  # the one backend requested refuses this model (asserted)
        return
    for backend in backends:
        m = up.wrap(_seeded(spec, backend))
        with np.printoptions(precision=4, suppress=True):
            seen[backend] = {k: (p.numpy().tobytes(), repr(p), str(p[...])) for k, p in m.params().items()}
    first = seen[backends[0]]
    for backend in backends[1:]:
        shared = set(first) & set(seen[backend])
        assert shared, backend
        for key in shared:
            assert seen[backend][key] == first[key], (backend, key)


def test_repr_shows_the_value_like_torch(backend):
    m = up.wrap(_seeded(specs.mlp, backend))
    text = repr(m["2.bias"])
    assert re.match(r"Param '2\.bias', shape \(1,\), float32, containing:\n\[-?\d", text), text
    assert str(m["0.weight"].numpy()[0, 0])[:5] in repr(m["0.weight"]).replace("\n", " ")


def test_summary_shapes_are_canonical(backends):
    for backend in backends:
        text = up.summary(specs.mlp().build(backend))
        assert "weight (8, 4)  bias (8,)" in text and "weight (1, 8)  bias (1,)" in text, backend


def test_native_is_opt_in_and_always_spelled_native(backend):
    m = up.wrap(_seeded(specs.mlp, backend))
    p = m["0.weight"]
    native = p.numpy(layout="native")
    assert native.shape == p.native_shape
    np.testing.assert_array_equal(p.layout.to_canonical(native), p.numpy())
    p.set(native * 2, layout="native")
    np.testing.assert_array_equal(p.numpy(layout="native"), native * 2)
    assert set(up.state_dict(m, layout="native")) == set(m.params())
    if p.native_shape != p.shape:  # a wrong layout is refused, never taken transposed
        with pytest.raises(up.ShapeError, match="canonical shape"):
            p.set(native)


# -- writes -------------------------------------------------------------------
WRITES = {
    "set": lambda p: p.set(np.full(p.shape, 3.0)),
    "item": lambda p: p.__setitem__((0, 1), 3.0),
    "slice": lambda p: p.__setitem__((slice(None), 1), 3.0),
    "chained": lambda p: p[0].__setitem__(1, 3.0),
    "chained_slice": lambda p: p[1].__setitem__(slice(0, 2), 3.0),
}


def _chained_iadd(p):
    p[0][1] += 1  # as in net[0].weight.data[0][1] += 1


def _whole_iadd(p):
    p[:] += 1


def _row_iadd(p):
    row = p[1]
    row *= 2


@pytest.mark.parametrize("how", sorted(WRITES))
def test_every_write_spelling_changes_the_parameter_in_place(backend, how):
    model = _seeded(specs.shared, backend)
    m = up.wrap(model)
    p, alias = m["2.weight"], m["4.weight"]
    native = p.native
    expected = p.numpy()
    WRITES[how](p)
    after = p.numpy()
    probe = np.array(expected)
    {
        "set": lambda: probe.__setitem__(..., 3.0),
        "item": lambda: probe.__setitem__((0, 1), 3.0),
        "slice": lambda: probe.__setitem__((slice(None), 1), 3.0),
        "chained": lambda: probe.__setitem__((0, 1), 3.0),
        "chained_slice": lambda: probe.__setitem__((1, slice(0, 2)), 3.0),
    }[how]()
    np.testing.assert_array_equal(after, probe)
    assert not np.array_equal(after, expected)
    assert m["2.weight"].native is native  # the same variable, written in place
    np.testing.assert_array_equal(alias.numpy(), after)  # the tied position sees it


@pytest.mark.parametrize("how", [_chained_iadd, _whole_iadd, _row_iadd], ids=["p[0][1]+=", "p[:]+=", "row*="])
def test_in_place_arithmetic_writes_through(backend, how):
    model = _seeded(specs.shared, backend)
    m = up.wrap(model)
    p = m["2.weight"]
    native, before = p.native, p.numpy()
    how(p)
    after = p.numpy()
    probe = np.array(before)
    if how is _chained_iadd:
        probe[0, 1] += 1
    elif how is _whole_iadd:
        probe += 1
    else:
        probe[1] *= 2
    np.testing.assert_allclose(after, probe, rtol=0, atol=0)
    assert m["2.weight"].native is native
    np.testing.assert_array_equal(m["4.weight"].numpy(), after)


def test_torch_writes_keep_the_tensor_and_its_autograd(backends):
    if "torch" not in backends:
        pytest.skip("torch not requested")
    import torch

    model = _seeded(specs.mlp, "torch")
    weight = model[0].weight
    pointer = weight.data_ptr()
    p = up.wrap(model)["0.weight"]
    p[0][0] = 42
    p[1] += 1
    p.set(p.numpy() * 0.5)
    assert model[0].weight is weight and weight.data_ptr() == pointer and weight.requires_grad
    assert float(weight.detach()[0, 0]) == 21.0
    model(torch.ones(1, 4)).sum().backward()
    assert weight.grad is not None


def test_a_slice_is_a_live_view(backend):
    m = up.wrap(_seeded(specs.mlp, backend))
    row = m["0.weight"][0]
    m["0.weight"].set(np.zeros((8, 4)))
    np.testing.assert_array_equal(np.asarray(row), np.zeros(4))
    assert row.shape == (4,) and len(row) == 4 and float(row[0]) == 0.0
    assert (row + 1).tolist() == [1.0] * 4  # arithmetic gives plain arrays


def test_a_chained_write_that_numpy_would_copy_is_refused(backend):
    m = up.wrap(_seeded(specs.mlp, backend))
    p = m["0.weight"]
    before = p.numpy()
    with pytest.raises(up.UnsupportedError, match="index array"):
        p[[0, 1]][0] = 5.0  # fancy indexing makes a copy: the write would go nowhere
    np.testing.assert_array_equal(p.numpy(), before)
    with pytest.raises(up.PositionError, match="does not fit"):
        p[8]


# -- running -------------------------------------------------------------------
@pytest.mark.parametrize("case", ["mlp", "cnn", "lstm", "gru", "norm", "transposed"])
def test_forward_call_equals_the_frameworks_own_call(backend, case):
    spec, shape = MODELS[case]
    if specs.refused(backend, spec()):
        return
    model = _seeded(spec, backend)
    x = RNG.standard_normal(shape).astype("float32")
    ours = up.wrap(model)(x)
    assert isinstance(ours, np.ndarray)
    theirs = forward(backend, model, x, channels=len(shape) >= 3 and case not in ("lstm", "gru"))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(up.forward(model, x), ours)
    np.testing.assert_array_equal(up.wrap(model)(x.tolist()), ours)  # any array-like in


def test_forward_gives_the_same_numbers_on_every_backend(backends):
    x = RNG.standard_normal((2, 3, 6, 6)).astype("float32")
    outs = {b: up.wrap(_seeded(specs.cnn, b))(x) for b in backends}
    first = outs[backends[0]]
    assert first.shape == (2, 2, 4, 4)  # channels first on every backend
    for backend in backends[1:]:
        np.testing.assert_allclose(outs[backend], first, rtol=1e-5, atol=1e-5)


def test_forward_refuses_an_input_that_does_not_fit(backend):
    m = up.wrap(specs.mlp().build(backend))
    with pytest.raises(up.ShapeError, match=r"\(batch, \.\.\., 4\)"):
        m(np.zeros((2, 5), "float32"))


def test_forward_in_training_mode_updates_batch_statistics(backend):
    model = _seeded(specs.cnn, backend)
    m = up.wrap(model)
    before = m["1.running_mean"].numpy()
    x = RNG.standard_normal((4, 3, 6, 6)).astype("float32") + 3
    m(x)  # inference: statistics untouched
    np.testing.assert_array_equal(m["1.running_mean"].numpy(), before)
    m(x, training=True)
    assert not np.array_equal(m["1.running_mean"].numpy(), before)


# -- sub-views -------------------------------------------------------------------
def test_a_sub_view_keys_by_relative_names_and_loads_them(backend):
    m = up.wrap(_seeded(specs.mlp, backend))
    sub = m[2]
    assert list(sub.params()) == ["weight", "bias"]
    assert [p.path for p in sub.params().values()] == ["2.weight", "2.bias"]
    state = up.state_dict(sub)
    assert list(state) == ["weight", "bias"] and state["weight"].shape == (1, 8)
    report = up.load_state_dict(sub, {"weight": np.full((1, 8), 2.0), "bias": np.ones(1)})
    assert report.ok and report.loaded == ["weight", "bias"]
    np.testing.assert_array_equal(m["2.weight"].numpy(), np.full((1, 8), 2.0, "float32"))
    assert list(sub.params("weight")) == ["weight"] and list(sub.params("*.bias")) == ["bias"]
    grads = up.gradients(m, np.ones((2, 4), "float32"))
    assert "2.weight" in grads


def test_named_children_give_one_path_everywhere(backends):
    def block():
        return S.Sequential(S.Linear(4, 4), S.ReLU())

    spec = S.Sequential({"block 0": block(), "block 1": block()}, S.Linear(4, 1)) if False else None
    spec = S.Sequential(S.Sequential(("block 0", block()), ("block 1", block())), S.Linear(4, 1))
    keys = {}
    for backend in backends:
        model = spec.build(backend)
        up.initialize(model, up.init.Normal(), seed=1)
        m = up.wrap(model)
        keys[backend] = list(m.params())
        assert m["0.block 1.0.bias"].path == "0.block 1.0.bias"
        assert [c.path for c in m[0].children()] == ["0.block 0", "0.block 1"]
        up.tie(model, "0.block 0", "0.block 1")  # a named child can be tied
        assert up.ties(model)[0] == ("0.block 0.0.weight", "0.block 1.0.weight")
    assert len({tuple(k) for k in keys.values()}) == 1
    assert keys[backends[0]][:2] == ["0.block 0.0.weight", "0.block 0.0.bias"]


def test_a_dict_names_children_too():
    spec = S.Sequential({"encoder": S.Linear(4, 8), "act": S.ReLU(), "head": S.Linear(8, 1)})
    assert spec.keys == ["encoder", "act", "head"]
    assert "('encoder', Linear(" in repr(spec)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: S.Linear(-1, 3), r"in_features must be a positive integer.*in_features=-1"),
        (lambda: S.Linear(4, 0), r"out_features must be a positive integer"),
        (lambda: S.Conv2d(3, 4, 0), r"kernel_size must be a positive"),
        (lambda: S.Conv2d(3, 4, 3, groups=2), r"groups=2 must divide in_channels=3"),
        (lambda: S.MultiheadAttention(6, 4), r"not a multiple of num_heads"),
        (
            lambda: S.Sequential(S.Linear(4, 8), S.Linear(5, 1)),
            r"Layer '0' \(Linear\(in_features=4, out_features=8.*gives 8 features.*'1' \(Linear\(in_features=5",
        ),
        (
            lambda: S.Sequential(S.Linear(4, 8), S.ReLU(), S.LayerNorm(6)),
            r"gives 8 features, but the next layer '2'",
        ),
        (lambda: S.Sequential(S.Conv2d(3, 4, 3), S.BatchNorm2d(5)), r"gives 4 channels"),
        (lambda: S.Sequential(("a", S.ReLU()), ("a", S.ReLU())), r"'a' repeats"),
        (lambda: S.Sequential(("a.b", S.ReLU())), r"has a dot"),
        (lambda: S.Sequential(("", S.ReLU())), r"is empty"),
    ],
)
def test_the_spec_refuses_what_cannot_build(make, message):
    with pytest.raises(up.UnsupportedError, match=message):
        make()


def test_sizes_across_a_flatten_or_another_axis_are_not_compared():
    S.Sequential(S.Conv2d(3, 4, 3), S.Flatten(), S.Linear(100, 2))  # sizes change at the flatten
    S.Sequential(S.Conv2d(3, 4, 3), S.Linear(7, 2))  # a Linear on the width, not the channels
    S.Sequential(S.Sequential(S.Linear(4, 8), S.ReLU()), S.Linear(8, 2))
    with pytest.raises(up.UnsupportedError, match="gives 8 features"):
        S.Sequential(S.Sequential(S.Linear(4, 8), S.ReLU()), S.Linear(9, 2))


# -- initialisation ----------------------------------------------------------
def test_a_function_initializer_may_take_the_parameter(backends, capsys):
    def my_init(shape, rng, param):
        print("Init", param.name, param.shape)
        return rng.uniform(-1, 1, shape)

    values = {}
    for backend in backends:
        model = specs.mlp().build(backend)
        up.initialize(model, {"*.weight": my_init}, seed=4)
        assert capsys.readouterr().out == "Init weight (8, 4)\nInit weight (1, 8)\n"
        values[backend] = up.wrap(model)["0.weight"].numpy()
    for backend in backends[1:]:
        assert values[backend].tobytes() == values[backends[0]].tobytes()


def test_a_where_that_matches_nothing_warns_or_raises_with_strict(backend):
    model = specs.mlp().build(backend)
    before = up.wrap(model)["0.weight"].numpy()
    with pytest.warns(UserWarning, match=r"where='\*\.kernel_typo' matched no parameter"):
        assert up.initialize(model, up.init.Zeros(), where="*.kernel_typo") == {}
    with pytest.raises(up.PathError, match="matched no parameter"):
        up.initialize(model, up.init.Zeros(), where="*.kernel_typo", strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a where that matches warns nothing
        up.initialize(model, up.init.Zeros(), where="*.bias")
    np.testing.assert_array_equal(up.wrap(model)["0.weight"].numpy(), before)


def test_initialising_a_sub_view_gives_the_values_a_full_init_gives(backend):
    full, part = specs.mlp().build(backend), specs.mlp().build(backend)
    up.initialize(full, up.init.XavierUniform(), where="*.weight", seed=9)
    done = up.initialize(up.wrap(part)[0], up.init.XavierUniform(), where="weight", seed=9)
    assert done == {"weight": "XavierUniform(gain=1.0)"}
    np.testing.assert_array_equal(up.wrap(part)["0.weight"].numpy(), up.wrap(full)["0.weight"].numpy())


def test_a_slice_reads_like_an_array_and_refuses_methods_that_would_change_a_copy(backend):
    m = up.wrap(_seeded(specs.mlp, backend))
    row = m["0.weight"][0]
    values = m["0.weight"].numpy()[0]
    assert row.sum() == values.sum() and np.array_equal(row.round(2), values.round(2))
    assert row.T.shape == (4,) and row.astype("float64").dtype == np.float64
    with pytest.raises(AttributeError, match="would change a copy"):
        row.fill(0)
    with pytest.raises(AttributeError, match="would change a copy"):
        row.sort()
    np.testing.assert_array_equal(m["0.weight"].numpy()[0], values)
