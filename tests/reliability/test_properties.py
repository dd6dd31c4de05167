"""Property-based conformance over random architectures, on every backend.

Profiles: ``ci`` (200 examples per property, derandomized) and ``fuzz``
(``make fuzz``: 2000 examples, random), chosen by ``HYPOTHESIS_PROFILE``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given

import unified_params as up
from tests.conformance.specs import able
from tests.conftest import NAMES as REQUESTED
from tests.frameworks import forward, native_count, native_named_params
from tests.native import for_backend
from tests.reliability.architectures import architectures


@given(arch=architectures)
def test_view_agrees_with_each_framework(arch):
    """params()/count()/ties() against the framework's own deduplicated view; set/get round trips."""
    tie_groups = set()
    for backend in able(REQUESTED, arch.spec):
        model = arch.spec.build(backend)
        m = up.wrap(model)
        tie_groups.add(tuple(up.ties(model)))
        params = m.params()
        native = native_named_params(backend, model)
        assert len(params) == len(native)
        assert sorted(p.size for p in params.values()) == sorted(int(np.prod(s)) for _, s in native)
        assert m.count() == native_count(backend, model)
        own = for_backend(backend).native_ties(model)
        if own is not None:
            assert up.ties(model) == own
        rng = np.random.default_rng(0)
        for p in params.values():
            value = rng.standard_normal(p.shape).astype(p.dtype)
            p.set(value, layout="canonical")
            assert p.numpy("canonical").tobytes() == value.tobytes(), p.path
    assert len(tie_groups) == 1  # one spec, the same tie groups on every backend


@given(arch=architectures)
def test_seeded_init_save_load_and_port_agree_across_backends(arch):
    """Seeded init is bitwise identical; save/load round-trips bitwise; the port
    cycle through every backend is bitwise identity; ported outputs agree."""
    x = arch.example_input()
    backends = able(REQUESTED, arch.spec)  # Flax NNX refuses a GRU (asserted)
    models = {b: arch.spec.build(b) for b in backends}
    states = {}
    for backend, model in models.items():
        up.initialize(model, up.init.Normal(0, 0.5), seed=7)
        states[backend] = _params_state(model)
    first = backends[0]
    for backend in backends[1:]:
        for key, value in states[first].items():
            if key in states[backend]:
                assert states[backend][key].tobytes() == value.tobytes(), (backend, key)
    with tempfile.TemporaryDirectory() as tmp:
        for backend, model in models.items():
            path = Path(tmp) / f"{backend}.safetensors"
            up.save(model, path)
            fresh = arch.spec.build(backend)
            assert up.load(fresh, path).ok
            for key, value in up.state_dict(model).items():
                assert up.state_dict(fresh)[key].tobytes() == value.tobytes(), (backend, key)
    want = forward(first, models[first], x, channels=arch.family == "conv")
    chain = [models[first]] + [arch.spec.build(b) for b in backends[1:]] + [arch.spec.build(first)]
    for src, dst in zip(chain, chain[1:], strict=False):
        up.port(src, dst)
        got = forward(up.backend_of(dst), dst, x, channels=arch.family == "conv")
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    start, end = up.state_dict(chain[0]), up.state_dict(chain[-1])
    kinds = {p.layer_kind for p in up.wrap(chain[0]).params().values()}
    merged = any(for_backend(b).summed_biases & kinds for b in backends)
    for key, value in start.items():
        if merged and "bias_" in key:
            continue  # Keras keeps b_ih + b_hh as one bias: the sum survives, not the split
        assert end[key].tobytes() == value.tobytes(), key
    if merged:
        for ih in [k for k in start if "bias_ih" in k]:
            hh = ih.replace("bias_ih", "bias_hh")
            np.testing.assert_array_equal(end[ih] + end[hh], start[ih] + start[hh])


def _params_state(model) -> dict[str, np.ndarray]:
    return {k: p.numpy("canonical") for k, p in up.wrap(model).params().items() if p.kind == "param"}
