"""``unified_params.testing``: each assertion passes on equal models (across
backends) and fails with a message that names what differs."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from unified_params import spec as S
from unified_params.testing import assert_roundtrip, assert_same_outputs, assert_same_params, assert_ties

NET = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3))


def _seeded(backend: str, spec=NET, seed: int = 0):
    model = spec.build(backend)
    up.initialize(model, up.init.Normal(0, 0.5), seed=seed)
    return model


def test_the_same_spec_and_seed_are_the_same_params_on_every_backend(backends):
    reference = _seeded(backends[0])
    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    for backend in backends[1:]:
        other = _seeded(backend)
        assert_same_params(reference, other)
        assert_same_outputs(reference, other, x)


def test_a_changed_value_is_named_with_its_largest_difference(backend):
    a, b = _seeded(backend), _seeded(backend)
    up.wrap(b)["2.weight"][1, 5] = 9.0
    with pytest.raises(AssertionError) as caught:
        assert_same_params(a, b)
    message = str(caught.value)
    assert "values differ at 1 of 4 paths" in message
    assert "2.weight: max |difference|" in message and "at (1, 5)" in message


def test_a_missing_path_is_named(backend):
    a = _seeded(backend)
    b = _seeded(backend, S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3, bias=False)))
    with pytest.raises(AssertionError, match=r"paths only in the first model: 2\.bias"):
        assert_same_params(a, b)


def test_a_transposed_kernel_is_named_as_transposed():
    needs("torch")
    a = _seeded("torch", S.Sequential(S.Linear(4, 8, bias=False)))  # 0.weight (8, 4)
    b = _seeded("torch", S.Sequential(S.Linear(8, 4, bias=False)))  # 0.weight (4, 8)
    up.wrap(b)["0.weight"].set(up.wrap(a)["0.weight"].numpy().T)  # a native (in, out) kernel
    with pytest.raises(
        AssertionError, match=r"shape \(8, 4\) vs \(4, 8\); the second is the first transposed"
    ):
        assert_same_params(a, b)
    square = S.Sequential(S.Linear(4, 4))
    c, d = _seeded("torch", square), _seeded("torch", square)
    up.wrap(d)["0.weight"].set(up.wrap(c)["0.weight"].numpy().T)
    with pytest.raises(AssertionError, match=r"the second holds the first transposed"):
        assert_same_params(c, d)


def test_outputs_that_differ_are_reported_with_where(backend):
    a, b = _seeded(backend), _seeded(backend, seed=1)
    with pytest.raises(AssertionError, match=r"The outputs differ: max \|difference\| .* at \(\d, \d\)"):
        assert_same_outputs(a, b, np.ones((2, 4), "float32"))


def test_outputs_that_any_model_would_match_fail_the_comparison(backend):
    """Outputs all within atol of zero, or the same for the input as for zeros,
    prove nothing of the weights: the assertion says so instead of passing."""
    faded, other = _seeded(backend), _seeded(backend, seed=1)  # other weights altogether
    for model in (faded, other):
        up.initialize(model, {"*.weight": up.init.Normal(0, 1e-4), "*.bias": up.init.Zeros()}, seed=3)
    up.wrap(other)["0.weight"][0, 0] = 0.01  # 100 times the others: the faded outputs hide it
    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    with pytest.raises(AssertionError, match=r"cannot tell the models apart: .* within atol=1e-06 of zero"):
        assert_same_outputs(faded, other, x)
    assert_same_outputs(faded, faded, x, atol=0)  # compared relatively, the same model matches
    deaf = _seeded(backend)
    up.initialize(deaf, {"*.weight": up.init.Zeros()}, seed=3)  # the output is the last bias
    with pytest.raises(AssertionError, match="would pass too"):
        assert_same_outputs(deaf, deaf, x)


def test_a_round_trip_whose_outputs_cannot_tell_models_apart_rests_on_the_parameters(backend):
    """``assert_roundtrip`` compares the parameters first: outputs all zero (a ReLU
    of negatives) then fail nothing, where `assert_same_outputs` alone refuses."""
    dead = S.Sequential(S.Linear(4, 3), S.ReLU())
    model = dead.build(backend)
    up.initialize(model, {"*.weight": up.init.Constant(-1.0), "*.bias": up.init.Constant(-1.0)}, seed=0)
    x = np.abs(np.random.default_rng(0).standard_normal((2, 4))).astype(
        "float32"
    )  # every output relu(<0) = 0
    with pytest.raises(AssertionError, match="cannot tell the models apart"):
        assert_same_outputs(model, model, x)
    assert_roundtrip(model, via=("file", "state_dict"), spec=dead, x=x)


def test_a_comparison_in_training_mode_runs_each_model_once(backend):
    """No extra pass on zeros in training mode: it would move running statistics."""
    net = S.Sequential(S.Conv2d(3, 4, 3), S.BatchNorm2d(4))
    a, b, once = (_seeded(backend, net) for _ in range(3))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    assert_same_outputs(a, b, x, training=True)
    up.forward(once, x, training=True)
    for model in (a, b):
        np.testing.assert_array_equal(up.wrap(model)["1.running_var"], up.wrap(once)["1.running_var"])


def test_round_trips_through_a_file_a_state_and_another_backend(backend, backends):
    model = _seeded(backend)
    other = next((b for b in backends if b != backend), backend)
    x = np.ones((2, 4), "float32")
    assert_roundtrip(model, via=("file", "state_dict", f"port:{other}"), spec=NET, x=x)
    assert_roundtrip(model, via=("file",))  # the fresh model is a copy of this one


def test_a_round_trip_that_loses_weights_is_named(backend, monkeypatch):
    model = _seeded(backend)
    monkeypatch.setattr(up, "load", lambda *args, **kwargs: None)  # a load that writes nothing
    with pytest.raises(AssertionError, match=r"Round trip via 'file' changed the model"):
        assert_roundtrip(model, via=("file",), spec=NET)


def test_ties_are_checked_by_identity(backend):
    shared = S.Linear(4, 4)
    model = S.Sequential(shared, S.ReLU(), shared).build(backend)
    assert_ties(model, [("0.weight", "2.weight")])
    assert_ties(model, [("0", "2")], exact=True)
    untied = S.Sequential(S.Linear(4, 4), S.ReLU(), S.Linear(4, 4)).build(backend)
    with pytest.raises(AssertionError, match="'0.weight' and '2.weight' are not tied"):
        assert_ties(untied, [("0.weight", "2.weight")])
    with pytest.raises(AssertionError, match="'9.weight' is no path of the model"):
        assert_ties(model, [("0.weight", "9.weight")])
    with pytest.raises(AssertionError, match="an unlisted tie group"):
        assert_ties(model, [], exact=True)
