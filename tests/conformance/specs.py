"""Spec models for the conformance suite, with their expected canonical shapes.

The expected paths and shapes are written out by hand from PyTorch's
conventions: they are the reference the three backends are held to.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from tests.native import for_backend
from unified_params import spec as S
from unified_params._core.errors import UnsupportedError


def mlp():
    return S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 1))


def nested():
    def block1():
        return S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 4), S.ReLU())

    return S.Sequential(S.Sequential(*[block1() for _ in range(4)]), S.Linear(4, 1))


def shared():
    layer = S.Linear(8, 8)
    return S.Sequential(S.Linear(4, 8), S.ReLU(), layer, S.ReLU(), layer, S.ReLU(), S.Linear(8, 1))


def cnn():
    return S.Sequential(S.Conv2d(3, 4, 3), S.BatchNorm2d(4), S.ReLU(), S.Conv2d(4, 2, (2, 3), padding="same"))


def norm():
    return S.Sequential(S.Linear(6, 5), S.LayerNorm(5))


def embedding():
    return S.Sequential(S.Embedding(10, 6), S.Linear(6, 3))


def groupnorm():
    return S.Sequential(S.Conv2d(3, 8, 3), S.GroupNorm(2, 8), S.ReLU())


def rmsnorm():
    return S.Sequential(S.Linear(6, 5), S.RMSNorm(5))


def rnn():
    return S.Sequential(S.RNN(3, 5))


def lstm():
    return S.Sequential(S.LSTM(3, 5))


def gru():
    return S.Sequential(S.GRU(3, 5))


def _rnn(gates: int) -> dict[str, tuple[int, ...]]:
    return {
        "0.weight_ih_l0": (gates * 5, 3),
        "0.weight_hh_l0": (gates * 5, 5),
        "0.bias_ih_l0": (gates * 5,),
        "0.bias_hh_l0": (gates * 5,),
    }


def _linear(prefix: str, i: int, o: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (o, i), f"{prefix}.bias": (o,)}


#: Canonical path -> canonical shape, as PyTorch lays them out.
EXPECTED: dict[str, dict[str, tuple[int, ...]]] = {
    "mlp": {**_linear("0", 4, 8), **_linear("2", 8, 1)},
    "nested": {
        **{
            k: v
            for b in range(4)
            for k, v in {**_linear(f"0.{b}.0", 4, 8), **_linear(f"0.{b}.2", 8, 4)}.items()
        },
        **_linear("1", 4, 1),
    },
    "shared": {**_linear("0", 4, 8), **_linear("2", 8, 8), **_linear("6", 8, 1)},
    "cnn": {
        "0.weight": (4, 3, 3, 3),
        "0.bias": (4,),
        "1.weight": (4,),
        "1.bias": (4,),
        "1.running_mean": (4,),
        "1.running_var": (4,),
        "3.weight": (2, 4, 2, 3),
        "3.bias": (2,),
    },
    "norm": {**_linear("0", 6, 5), "1.weight": (5,), "1.bias": (5,)},
    "groupnorm": {"0.weight": (8, 3, 3, 3), "0.bias": (8,), "1.weight": (8,), "1.bias": (8,)},
    "rmsnorm": {**_linear("0", 6, 5), "1.weight": (5,)},
    "embedding": {"0.weight": (10, 6), **_linear("1", 6, 3)},
    "rnn": _rnn(1),
    "lstm": _rnn(4),
    "gru": _rnn(3),
}
BUILDERS = {name: globals()[name] for name in EXPECTED}

#: Where a backend legitimately differs from the canonical list: torch keeps a
#: batch counter, Keras keeps one merged RNN and LSTM bias and a stacked GRU
#: bias, NNX's RNN and LSTM cells one bias.
DIFFERENCES = {
    ("torch", "cnn"): {"add": {"1.num_batches_tracked": ()}},
    **{
        (backend, "rnn"): {"drop": ["0.bias_ih_l0", "0.bias_hh_l0"], "add": {"0.bias": (5,)}}
        for backend in ("keras", "flax")
    },
    ("keras", "lstm"): {"drop": ["0.bias_ih_l0", "0.bias_hh_l0"], "add": {"0.bias": (20,)}},
    ("keras", "gru"): {"drop": ["0.bias_ih_l0", "0.bias_hh_l0"], "add": {"0.bias": (2, 15)}},
    ("flax", "lstm"): {"drop": ["0.bias_ih_l0", "0.bias_hh_l0"], "add": {"0.bias": (20,)}},
}


def expected_for(backend: str, name: str) -> dict[str, tuple[int, ...]]:
    """Canonical path -> shape that ``backend`` should show for spec ``name``."""
    out = dict(EXPECTED[name])
    diff = DIFFERENCES.get((backend, name), {})
    for path in diff.get("drop", []):
        out.pop(path)
    out.update(diff.get("add", {}))
    return out


def reference_values(name: str) -> dict[str, np.ndarray]:
    """Deterministic float32 values for every canonical path of a spec model."""
    out = {}
    for path, shape in EXPECTED[name].items():
        rng = np.random.default_rng(zlib.crc32(f"{name}:{path}".encode()))
        value = rng.standard_normal(shape).astype("float32") * 0.5
        if path.endswith("running_var"):
            value = np.abs(value) + 0.5
        out[path] = value
    return out


def load_reference(backend: str, name: str, model) -> None:
    """Write the reference values into a model (canonical state, as torch names it)."""
    import unified_params as up

    up.load_state_dict(model, reference_values(name))  # merges recurrent biases where a framework keeps one


def example_input(name: str) -> np.ndarray:
    """A canonical (channels-first, batch-first) input for spec ``name``."""
    rng = np.random.default_rng(7)
    shapes = {
        "cnn": (2, 3, 6, 7),
        "groupnorm": (2, 3, 6, 7),
        "rnn": (2, 4, 3),
        "lstm": (2, 4, 3),
        "gru": (2, 4, 3),
        "norm": (3, 6),
        "rmsnorm": (3, 6),
    }
    if name == "embedding":
        return rng.integers(0, 10, size=(2, 5)).astype("int64")
    return rng.standard_normal(shapes.get(name, (3, 4))).astype("float32")


def refused(backend: str, spec: S.Layer) -> bool:
    """Whether ``backend`` cannot express ``spec`` by design (a layer its fixture
    lists in ``refused_layers``); then asserts that building it refuses, with
    the reason, and leaves nothing half built."""
    reasons = for_backend(backend).refused_layers
    found = [reasons[type(layer)] for layer in _layers(spec) if type(layer) in reasons]
    if not found:
        return False
    with pytest.raises(UnsupportedError, match=found[0]):
        spec.build(backend)
    return True


def able(backends: tuple[str, ...] | list[str], spec: S.Layer) -> list[str]:
    """The backends that can express ``spec``; each other one is checked to refuse it."""
    return [b for b in backends if not refused(b, spec)]


def _layers(spec: S.Layer) -> list[S.Layer]:
    if isinstance(spec, S.Sequential):
        return [x for layer in spec.layers for x in _layers(layer)]
    return [spec]
