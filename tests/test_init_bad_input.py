"""Initialisation mistakes: clear errors naming argument and value; nothing written."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs
from tests.conftest import assert_unchanged, snapshot

I = up.init


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: I.Normal(0, -1), ["std", "-1"]),
        (lambda: I.Uniform(2, 1), ["low", "high", "2", "1"]),
        (lambda: I.TruncatedNormal(0, 1, 3, -3), ["a < b"]),
        (lambda: I.TruncatedNormal(0, 1, 8, 9), ["tail"]),
        (lambda: I.TruncatedNormal(0, 0), ["std", "> 0"]),
        (lambda: I.KaimingUniform(mode="fan_avg"), ["mode", "fan_avg"]),
        (lambda: I.KaimingNormal(nonlinearity="swish"), ["nonlinearity", "swish", "relu"]),
        (lambda: I.calculate_gain("swish"), ["swish"]),
        (lambda: I.Constant("one"), ["value", "one"]),
        (lambda: I.Constant(float("nan")), ["value", "nan"]),
        (lambda: I.XavierUniform(gain=-1), ["gain", "-1"]),
        (lambda: I.Dirac(groups=0), ["groups", "0"]),
    ],
)
def test_invalid_arguments_name_argument_and_value(make, words):
    with pytest.raises(ValueError) as info:
        make()
    assert isinstance(info.value, up.InitError)
    for word in words:
        assert word in str(info.value)
    assert "Received:" in str(info.value)


@pytest.mark.parametrize(
    ("rules", "error", "words"),
    [
        (
            [("*.weight", I.Normal()), ("*.bias", I.Orthogonal())],
            up.InitError,
            ["Orthogonal", "0.bias", "1 axes"],
        ),
        ([("*.weight", I.Normal()), ("*.bias", I.XavierUniform())], up.InitError, ["0.bias", "2 axes"]),
        ([("*.weight", I.Normal()), ("*.bias", I.Eye())], up.InitError, ["Eye", "exactly 2 axes"]),
        ([("2.weight", I.Ones()), ("0.weight", I.Dirac())], up.InitError, ["Dirac", "0.weight"]),
        (
            [("*.weight", I.Normal()), ("*.bias", lambda shape, rng: np.zeros(3))],
            up.ShapeError,
            ["0.bias", "(3,)", "(8,)"],
        ),
        (
            [("*.weight", I.Normal()), ("*.bias", lambda shape, rng: np.full(shape, "x"))],
            up.InitError,
            ["0.bias", "numbers"],
        ),
        (
            [("*.weight", I.Normal()), ("*.bias", lambda shape, rng: np.full(shape, np.nan))],
            up.InitError,
            ["0.bias", "non-finite"],
        ),
        ([("*.weight", lambda shape, rng: 1 / 0)], ZeroDivisionError, []),
    ],
)
def test_failed_initialisation_writes_nothing(backend, rules, error, words):
    model = specs.mlp().build(backend)
    before = snapshot(model)
    with pytest.raises(error) as info:
        up.initialize(model, rules, seed=0)
    for word in words:
        assert word in str(info.value)
    assert_unchanged(before, model)


def test_rule_that_matches_nothing_warns_or_raises(backend):
    model = specs.mlp().build(backend)
    with pytest.warns(UserWarning, match="matched no parameter"):
        up.initialize(model, {"*.weight": I.Ones(), "9.*": I.Zeros()})
    before = snapshot(model)
    with pytest.raises(KeyError) as info:
        up.initialize(model, {"*.weight": I.Zeros(), "0.weight": I.Ones()}, strict=True)
    assert isinstance(info.value, up.PathError) and "earlier rules" in str(info.value)
    assert_unchanged(before, model)


@pytest.mark.parametrize("bad", [-1, 1.5, "7", True])
def test_invalid_seed(backend, bad):
    model = specs.mlp().build(backend)
    with pytest.raises(up.InitError, match="seed"):
        up.initialize(model, I.Zeros(), seed=bad)


def test_rules_of_the_wrong_form(backend):
    model = specs.mlp().build(backend)
    with pytest.raises(up.UnsupportedError, match="pairs"):
        up.initialize(model, [I.Zeros()])
    with pytest.raises(up.InitError, match="Cannot use this as an initializer"):
        up.initialize(model, {"*": 42})
