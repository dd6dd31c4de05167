"""Every distribution has the right mean, spread and bounds at the right fan, on
every backend; ``Default()`` matches what each framework itself draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs
from tests.conftest import needs
from unified_params import spec as S

I = up.init
# Canonical shapes: Linear (400, 300); Conv2d (64, 32, 3, 3); both large enough
# that a sample std is within 1% of the truth.
LINEAR = ("linear", S.Sequential(S.Linear(300, 400)), "0.weight", 300, 400)
CONV = ("conv", S.Sequential(S.Conv2d(32, 64, 3)), "0.weight", 32 * 9, 64 * 9)


def _draw(backend, model_spec, path, init, seed=0):
    model = model_spec.build(backend)
    up.initialize(model, init, where=path, seed=seed)
    return up.wrap(model)[path].numpy("canonical").astype("float64")


def _assert_stats(x, mean, std, low=None, high=None):
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / math.sqrt(n) + 1e-12
    assert abs(x.std() / std - 1) < 0.03
    if low is not None:
        assert x.min() >= low and x.min() < low + 0.01 * (high - low)
    if high is not None:
        assert x.max() <= high and x.max() > high - 0.01 * (high - low)


@pytest.mark.parametrize("layer", [LINEAR, CONV], ids=lambda layer: layer[0])
def test_fan_based_distributions(backend, layer):
    _, model_spec, path, fan_in, fan_out = layer
    x = _draw(backend, model_spec, path, I.XavierUniform(gain=2.0))
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    _assert_stats(x, 0, bound / math.sqrt(3), -bound, bound)
    x = _draw(backend, model_spec, path, I.XavierNormal())
    _assert_stats(x, 0, math.sqrt(2 / (fan_in + fan_out)))
    x = _draw(backend, model_spec, path, I.KaimingUniform(nonlinearity="relu"))
    bound = math.sqrt(6 / fan_in)
    _assert_stats(x, 0, bound / math.sqrt(3), -bound, bound)
    x = _draw(backend, model_spec, path, I.KaimingUniform(a=math.sqrt(5)))  # torch's Linear default
    bound = 1 / math.sqrt(fan_in)
    _assert_stats(x, 0, bound / math.sqrt(3), -bound, bound)
    x = _draw(backend, model_spec, path, I.KaimingNormal(mode="fan_out", nonlinearity="tanh"))
    _assert_stats(x, 0, (5 / 3) / math.sqrt(fan_out))
    x = _draw(backend, model_spec, path, I.LecunUniform())
    bound = math.sqrt(3 / fan_in)
    _assert_stats(x, 0, bound / math.sqrt(3), -bound, bound)
    x = _draw(backend, model_spec, path, I.LecunNormal())
    std = math.sqrt(1 / fan_in)
    _assert_stats(x, 0, std)
    assert np.abs(x).max() <= 2 * std / 0.87962566103423978 + 1e-7


def test_location_scale_distributions(backend):
    _, model_spec, path, _, _ = LINEAR
    _assert_stats(_draw(backend, model_spec, path, I.Normal(0.5, 2.0)), 0.5, 2.0)
    _assert_stats(_draw(backend, model_spec, path, I.Uniform(-3, 1)), -1, 4 / math.sqrt(12), -3, 1)
    x = _draw(backend, model_spec, path, I.TruncatedNormal(0.0, 1.0, -1.0, 2.0))
    phi = [math.exp(-(v**2) / 2) / math.sqrt(2 * math.pi) for v in (-1.0, 2.0)]
    mass = 0.5 * (math.erf(2 / math.sqrt(2)) - math.erf(-1 / math.sqrt(2)))
    mean = (phi[0] - phi[1]) / mass
    var = 1 + (-1 * phi[0] - 2 * phi[1]) / mass - mean**2
    _assert_stats(x, mean, math.sqrt(var), -1.0, 2.0)
    assert (_draw(backend, model_spec, path, I.Constant(-2.5)) == -2.5).all()
    assert (_draw(backend, model_spec, path, I.Zeros()) == 0).all()
    assert (_draw(backend, model_spec, path, I.Ones()) == 1).all()


@pytest.mark.parametrize("shape_spec", ["wide", "tall", "conv"])
def test_orthogonal(backend, shape_spec):
    model_spec, path = {
        "wide": (S.Sequential(S.Linear(300, 40)), "0.weight"),
        "tall": (S.Sequential(S.Linear(40, 300)), "0.weight"),
        "conv": (S.Sequential(S.Conv2d(8, 16, 3)), "0.weight"),
    }[shape_spec]
    w = _draw(backend, model_spec, path, I.Orthogonal(gain=1.5))
    flat = w.reshape(w.shape[0], -1)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(gram, 2.25 * np.eye(gram.shape[0]), atol=1e-5)


def test_dirac_and_eye(backend):
    w = _draw(backend, S.Sequential(S.Conv2d(4, 6, 3)), "0.weight", I.Dirac())
    expected = np.zeros((6, 4, 3, 3))
    for d in range(4):
        expected[d, d, 1, 1] = 1
    np.testing.assert_array_equal(w, expected)
    w = _draw(backend, S.Sequential(S.Conv2d(4, 6, 3)), "0.weight", I.Dirac(groups=2))
    assert w.sum() == 6 and w[3, 0, 1, 1] == 1 and w[0, 0, 1, 1] == 1
    np.testing.assert_array_equal(
        _draw(backend, S.Sequential(S.Linear(5, 5)), "0.weight", I.Eye()), np.eye(5)
    )


def test_gains_and_fans_match_torch():
    needs("torch")
    import torch

    for name in ("linear", "conv2d", "sigmoid", "tanh", "relu", "selu"):
        assert I.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert I.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2)
    )
    for shape in [(7, 3), (16, 3, 5, 5), (4, 2, 3), (8, 4, 2, 3, 3)]:
        assert I.fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


DEFAULT_LAYERS = {
    "linear": S.Linear(256, 512),
    "conv2d": S.Conv2d(32, 64, 3),
    "conv1d": S.Conv1d(32, 64, 3),
    "conv3d": S.Conv3d(16, 32, 3),
    "depthwise": S.Conv2d(32, 64, 3, groups=32),
    "conv_transpose1d": S.ConvTranspose1d(32, 64, 3),
    "conv_transpose2d": S.ConvTranspose2d(16, 32, 3),
    "grouped": S.Conv2d(32, 64, 3, groups=4),
    "conv_transpose3d": S.ConvTranspose3d(16, 32, 3),
    "embedding": S.Embedding(1000, 64),
    "rnn": S.RNN(64, 128),
    "lstm": S.LSTM(64, 128),
    "gru": S.GRU(64, 128),
    "batchnorm": S.BatchNorm2d(64),
    "layernorm": S.LayerNorm(64),
    "groupnorm": S.GroupNorm(8, 64),
    "rmsnorm": S.RMSNorm(64),
}


@pytest.mark.parametrize("kind", sorted(DEFAULT_LAYERS))
def test_default_matches_the_framework_own_initialisation(backend, kind, native):
    native.seed(0)  # the framework's own draw, made repeatable
    if specs.refused(backend, S.Sequential(DEFAULT_LAYERS[kind])):
        return
    model = S.Sequential(DEFAULT_LAYERS[kind]).build(backend)
    m = up.wrap(model)
    drawn = {k: p.numpy("canonical").astype("float64") for k, p in m.params().items() if p.kind == "param"}
    done = up.initialize(model, I.Default(), seed=0)
    assert set(done) == set(drawn) and all(v.startswith("Default() -> ") for v in done.values())
    for path, theirs in drawn.items():
        ours = m[path].numpy("canonical").astype("float64")
        assert ours.shape == theirs.shape
        if np.unique(theirs).size <= 2:  # constants, or Keras' unit forget bias
            np.testing.assert_array_equal(ours, theirs, err_msg=path)
            continue
        assert not np.array_equal(ours, theirs)  # drawn anew, from our seed
        noise = 5 / math.sqrt(ours.size)  # five standard errors of two samples
        assert abs(ours.std() / theirs.std() - 1) < noise, (path, ours.std(), theirs.std())
        assert abs(ours.mean() - theirs.mean()) < noise * theirs.std(), path
        assert abs(np.abs(ours).max() / np.abs(theirs).max() - 1) < max(0.2, noise), path


def test_default_refuses_unknown_layer_kinds(backend, native):
    layer, _ = native.prelu()
    snapshot = {k: p.numpy() for k, p in up.wrap(layer).params().items()}
    with pytest.raises(up.InitError, match="no .* default is known"):
        up.initialize(layer, I.Default())
    for k, p in up.wrap(layer).params().items():
        np.testing.assert_array_equal(p.numpy(), snapshot[k])
