"""Every layout rule: native -> canonical -> native is identity, and a port gives
equal outputs in all three frameworks (grouped, depthwise and transposed
convolutions; multi-head attention)."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.frameworks import forward
from tests.native import for_backend
from unified_params import spec as S

RNG = np.random.default_rng(11)
CASES = {
    "grouped": (S.Sequential(S.Conv2d(4, 6, 3, groups=2)), (2, 4, 7, 7)),
    "depthwise": (S.Sequential(S.Conv2d(3, 6, 3, groups=3)), (2, 3, 7, 7)),
    "transpose2d": (S.Sequential(S.ConvTranspose2d(3, 4, 3, stride=2)), (2, 3, 5, 5)),
    "transpose1d": (S.Sequential(S.ConvTranspose1d(3, 4, 3, stride=2)), (2, 3, 6)),
    "transpose3d": (S.Sequential(S.ConvTranspose3d(2, 3, (2, 3, 3), stride=2)), (2, 2, 3, 4, 4)),
    "conv_rect": (S.Sequential(S.Conv2d(3, 3, (3, 3))), (2, 3, 6, 6)),
    "conv1d": (S.Sequential(S.Conv1d(3, 5, 3, stride=2)), (2, 3, 9)),
    "conv3d": (S.Sequential(S.Conv3d(2, 4, (2, 3, 3))), (2, 2, 4, 5, 5)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_native_canonical_native_is_identity(backend, case):
    model = CASES[case][0].build(backend)
    up.initialize(model, up.init.Normal(), seed=0)
    for path, p in up.wrap(model).params().items():
        before = p.numpy("native")
        p.set(p.numpy())  # canonical in, native out
        assert p.numpy("native").tobytes() == before.tobytes(), path
        p.set(before, layout="native")
        assert p.numpy("native").tobytes() == before.tobytes(), path


@pytest.mark.parametrize("case", sorted(CASES))
def test_port_gives_equal_outputs(backends, case):
    spec, shape = CASES[case]
    x = RNG.standard_normal(shape).astype("float32")
    source = spec.build(backends[0])
    up.initialize(source, up.init.Normal(0, 0.5), seed=1)
    want = forward(backends[0], source, x, channels=True)
    for backend in backends[1:]:
        dst = spec.build(backend)
        report = up.port(source, dst, check_input=x, atol=1e-4)
        got = forward(backend, dst, x, channels=True)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=backend)
        assert report.max_abs_diff < 1e-4
        assert up.state_dict(dst).keys() == up.state_dict(source).keys()


def test_depthwise_kernel_is_torch_grouped_layout(backends):
    for backend in backends:
        m = up.wrap(CASES["depthwise"][0].build(backend))
        assert m["0.weight"].shape == (6, 1, 3, 3)
        shape, name = for_backend(backend).depthwise
        assert m["0.weight"].native_shape == shape and m["0.weight"].native_name == name


def test_attention_ports_between_packed_and_separate_projections(backends):
    x = RNG.standard_normal((2, 5, 8)).astype("float32")
    source = S.MultiheadAttention(8, 2).build(backends[0])
    up.initialize(source, up.init.Normal(0, 0.3), seed=2)
    state = up.state_dict(source)
    assert {k: v.shape for k, v in state.items()} == {
        "in_proj_weight": (24, 8), "in_proj_bias": (24,), "out_proj.weight": (8, 8), "out_proj.bias": (8,)
    }  # fmt: skip
    want = for_backend(backends[0]).attention(source, x)
    for backend in backends:
        dst = S.MultiheadAttention(8, 2).build(backend)
        report = up.port(source, dst)
        assert report.pairs == [("", "", "mha")]
        np.testing.assert_allclose(
            for_backend(backend).attention(dst, x), want, rtol=1e-4, atol=1e-5, err_msg=backend
        )
        for key, value in up.state_dict(dst).items():
            assert value.tobytes() == state[key].tobytes(), (backend, key)


def test_attention_without_biases_ports_and_saves(backends, tmp_path):
    """Projections without biases: the state has no ``in_proj_bias`` or
    ``out_proj.bias``, as torch's ``bias=False`` lists. Before, every state of
    a Keras or Paddle attention without biases failed on the biases its
    packed entries expected (a PathError from inside the library)."""
    x = RNG.standard_normal((2, 5, 8)).astype("float32")
    source = S.MultiheadAttention(8, 2, bias=False).build(backends[0])
    up.initialize(source, up.init.Normal(0, 0.3), seed=4)
    state = up.state_dict(source)
    assert {k: v.shape for k, v in state.items()} == {"in_proj_weight": (24, 8), "out_proj.weight": (8, 8)}
    up.save(source, tmp_path / "attention.safetensors")
    want = for_backend(backends[0]).attention(source, x)
    for backend in backends:
        dst = S.MultiheadAttention(8, 2, bias=False).build(backend)
        up.port(source, dst)
        np.testing.assert_allclose(
            for_backend(backend).attention(dst, x), want, rtol=1e-4, atol=1e-5, err_msg=backend
        )
        again = S.MultiheadAttention(8, 2, bias=False).build(backend)
        assert up.load(again, tmp_path / "attention.safetensors").ok
        assert all(v.tobytes() == state[k].tobytes() for k, v in up.state_dict(again).items()), backend


def test_attention_round_trip_through_a_file(backends, tmp_path):
    source = S.MultiheadAttention(8, 4).build(backends[-1])
    up.initialize(source, up.init.XavierUniform(), where=lambda p: len(p.shape) > 1, seed=3)
    up.save(source, tmp_path / "attention.safetensors")
    for backend in backends:
        dst = S.MultiheadAttention(8, 4).build(backend)
        assert up.load(dst, tmp_path / "attention.safetensors").ok
        for key, value in up.state_dict(dst).items():
            np.testing.assert_array_equal(value, up.state_dict(source)[key])
