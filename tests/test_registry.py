"""The backend registry: the one list every part reads, detection order,
engines, and capabilities that match what the adapters do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from unified_params import spec as S
from unified_params._core.layouts import aligned_empty
from unified_params.backends import registry

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT, env=full)


def test_a_registered_backend_appears_in_test_parametrisation_and_cli_choices():
    """Registering is the only edit: the plugin adds a backend no one installed."""
    env = {"UP_TEST_BACKENDS": "torch,fakefw"}
    collected = _run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "tests.plugins.fake_backend",
         "tests/conformance/test_textbook_native.py", "-o", "addopts="], **env,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    ids = collected.stdout.splitlines()
    assert any(i.endswith("test_nested_blocks[fakefw]") for i in ids), ids[:20]
    assert any(i.endswith("test_nested_blocks[torch]") for i in ids)
    # Run, the requested but missing backend fails (never skips).
    ran = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.plugins.fake_backend", "-o", "addopts=",
         "tests/conformance/test_textbook_native.py::test_nested_blocks"], **env,
    )  # fmt: skip
    assert ran.returncode == 1 and "1 passed, 1 error" in ran.stdout, ran.stdout[-2000:]
    assert "'fakefw' was requested but cannot be imported" in ran.stdout
    code = (
        "import tests.plugins.fake_backend\nfrom unified_params.cli import main\nmain(['demo', '--help'])\n"
    )
    shown = _run([sys.executable, "-c", code])
    assert "torch,keras,keras-jax,keras-torch,paddle,flax,fakefw" in "".join(shown.stdout.split()), (
        shown.stdout
    )
    code = (
        "import tests.plugins.fake_backend\n"
        "from unified_params.cli import main\n"
        "raise SystemExit(main(['demo', '--backends', 'fakefw']))\n"
    )
    refused = _run([sys.executable, "-c", code])
    assert refused.returncode == 2 and "'fakefw' is not installed" in refused.stderr, refused.stderr


def test_registering_and_removing_a_backend_in_process():
    spare = registry.register(
        registry.Backend("spare", "spare_fw", "nn.Layer", "spare", "spare", "spare.x", 5, 5)
    )
    try:
        assert "spare" in registry.names() and "spare" in registry.targets()
        assert registry.import_order()[-1] == "spare" and not registry.installed("spare")
        with pytest.raises(up.BackendNotInstalledError, match=r"pip install 'unified-params\[spare\]'"):
            registry.get_adapter("spare")
    finally:
        registry.unregister(spare.name)
    assert "spare" not in registry.names()


def test_import_order_puts_paddle_before_tensorflow_and_detection_keras_before_torch():
    assert registry.import_order().index("paddle") < registry.import_order().index("keras")
    order = [b.name for b in registry.detection_order()]
    assert order.index("keras") < order.index("torch")


def test_keras_on_torch_is_detected_as_keras_not_torch():
    """Under KERAS_BACKEND=torch a Keras layer is a torch.nn.Module too."""
    needs("keras")
    needs("torch")
    code = (
        "import torch, keras, unified_params as up\n"
        "layer = keras.layers.Dense(2); layer.build((None, 3))\n"
        "print(isinstance(layer, torch.nn.Module), up.backend_of(layer), up.backend_of(torch.nn.Linear(2, 2)))\n"
        "m = up.wrap(keras.Sequential([keras.layers.Dense(2)]))\n"
        "print(keras.backend.backend(), up.wrap(layer)['weight'].shape, up.wrap(layer)['weight'].native_shape)\n"
    )
    done = _run([sys.executable, "-c", code], KERAS_BACKEND="torch")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "keras", "torch", "torch", "(2,", "3)", "(3,", "2)"]


def test_one_process_runs_one_engine_of_a_framework(backend):
    name, engine = registry.split_target(backend)
    other = next((e for e in registry.get(name).engines if e != registry.engine(name)), None)
    if other is None:
        assert registry.engine(name) is None  # a framework with one engine
        return
    with pytest.raises(up.UnsupportedError, match="one process per engine"):
        registry.use_target(f"{name}-{other}" if other != registry.get(name).engines[0] else name)


def test_unknown_targets_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="keras-jax"):
        registry.split_target("keras-mxnet")


def test_declared_capabilities_match_what_the_adapter_does(backend):
    """The registry's capabilities are what the core trusts: check each against the adapter."""
    model = S.Sequential(S.Linear(4, 3)).build(backend)
    m = up.wrap(model)
    caps, p = m.capabilities, m["0.weight"]
    adapter = p.adapter
    first, second = adapter.view(p.native), adapter.view(p.native)
    assert np.shares_memory(first, second) is caps.zero_copy_views
    seen: list[np.ndarray] = []
    assert adapter.fill_in_place(p.native, seen.append) is caps.in_place_fill
    if caps.in_place_fill:
        seen[0][...] = 0.5  # the buffer handed out is the variable's memory
        assert float(p.numpy().sum()) == 0.5 * p.size
    big = up.wrap(S.Sequential(S.Linear(512, 512)).build(backend))["0.weight"]  # 1 MiB
    given = aligned_empty(big.native_shape, np.float32)
    given[...] = 0.25
    big.adapter.assign(big.native, given, owned=True)
    assert np.shares_memory(big.adapter.view(big.native), given) is caps.keeps_owned_values
    assert float(big.numpy().sum()) == 0.25 * big.size
    before = adapter.view(p.native)
    p[0, 0] = 7.0
    after = adapter.view(p.native)
    assert p.numpy()[0, 0] == 7.0
    if caps.in_place_slices and caps.zero_copy_views:  # the slice landed in the same memory
        assert (
            np.shares_memory(before, after)
            and before.flat[p.layout.to_native(np.arange(12.0).reshape(3, 4)).reshape(-1).tolist().index(0.0)]
            == 7.0
        )
    x = np.ones((1, 3, 8, 8), "float32")
    conv = up.wrap(S.Sequential(S.Conv2d(3, 2, 3)).build(backend))
    assert conv(x).shape == (1, 2, 6, 6)  # channels-first in and out, whatever the framework takes
    assert registry.capabilities(backend).channels_last is caps.channels_last
