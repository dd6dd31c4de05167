"""Sharded variables of the other frameworks: what works, and what is refused.

Across processes only torch DTensors are supported (``tests/test_distributed.py``).
A Keras model laid out over the devices of one process (``keras.distribution``
on JAX, ``tf.distribute.MirroredStrategy`` on TensorFlow) is held whole by the
process, and works; a JAX array spread over processes, and a paddle
distributed tensor, are refused on every read and write, never read in part.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs

ROOT = Path(__file__).resolve().parents[1]


def _run(parts: list[str], **env: str) -> str:
    code = "".join(textwrap.dedent(part) for part in parts)
    ran = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    return ran.stdout


def test_paddle_distributed_tensors_are_refused_on_every_call():
    needs("paddle")
    import paddle
    import paddle.distributed as dist

    net = paddle.nn.Sequential(paddle.nn.Linear(4, 6))
    net[0].weight = dist.shard_tensor(net[0].weight, dist.ProcessMesh([0], dim_names=["x"]), [dist.Shard(0)])
    m = up.wrap(net)
    assert m["0.weight"].shape == (6, 4)  # shapes are known without reading a value
    calls = {
        "numpy": lambda: m["0.weight"].numpy(),
        "set": lambda: m["0.weight"].set(np.zeros((6, 4))),
        "index": lambda: m["0.weight"].__setitem__((0, 0), 1.0),
        "local": lambda: m["0.weight"].local(),
        "placements": lambda: m["0.weight"].placements,
        "state_dict": lambda: up.state_dict(net),
        "initialize": lambda: up.initialize(net, up.init.Zeros(), seed=1),
    }
    for name, call in calls.items():
        try:
            call()
        except up.UnsupportedError as err:
            assert re.search("paddle distributed tensor.*torch DTensors", str(err)), (name, str(err))
        else:
            pytest.fail(f"{name} read or wrote a paddle distributed tensor")
    assert float(paddle.abs(dist.unshard_dtensor(net[0].weight)).sum()) > 0, "nothing was written"


def test_keras_refuses_a_jax_array_spread_over_processes():
    needs("keras")
    from unified_params.backends.keras.engines import Jax

    spread = SimpleNamespace(
        value=SimpleNamespace(is_fully_addressable=False, sharding="P('model')"), path="d/kernel"
    )
    with pytest.raises(up.UnsupportedError, match="spread over processes.*torch DTensors"):
        Jax().whole(spread)
    held = SimpleNamespace(value=SimpleNamespace(is_fully_addressable=True), path="d/kernel")
    assert Jax().whole(held) is held


CHECKS = """
    ref = np.arange(24, dtype="float32").reshape(6, 4)
    p = up.wrap(model)["0.weight"]
    p.set(ref)
    p[1, 2] = -5.0
    ref[1, 2] = -5.0
    print("values", np.array_equal(p.numpy(), ref), p.placements, p.local_shape)
    up.initialize(model, up.init.Normal(), seed=1)
    folder = tempfile.mkdtemp()
    up.save(model, folder + "/m.safetensors")
    again = up.wrap(build())
    up.load(again.native, folder + "/m.safetensors")
    print("reload", np.array_equal(again["0.weight"].numpy(), p.numpy()))
"""


def test_keras_on_jax_over_the_devices_of_one_process():
    needs("keras")
    code = [
        """
        import tempfile
        import numpy as np, keras
        import unified_params as up
        mesh = keras.distribution.DeviceMesh((2,), ["model"], keras.distribution.list_devices("cpu"))
        layout = keras.distribution.LayoutMap(mesh)
        layout[".*kernel"] = (None, "model")
        keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout))
        build = lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(6)])
        model = build()
    """,
        CHECKS,
        """
    print("sharding", model.layers[0].kernel.value.sharding.spec)
    """,
    ]
    out = _run(code, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert "values True None (6, 4)" in out and "reload True" in out, out
    assert "sharding P(None, 'model')" in out, out  # the layout outlives every write


def test_keras_on_tensorflow_mirrored_replicas_stay_equal():
    needs("keras")
    code = [
        """
        import tempfile
        import paddle  # noqa: F401 (imported before tensorflow)
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        import unified_params as up
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        def build():
            with strategy.scope():
                return keras.Sequential([keras.Input((4,)), keras.layers.Dense(6)])
        model = build()
    """,
        CHECKS,
        """
    replicas = [v.numpy() for v in model.layers[0].kernel.value.values]
    print("replicas", len(replicas), np.array_equal(replicas[0], replicas[1]))
    """,
    ]
    out = _run(code, KERAS_BACKEND="tensorflow")
    assert "values True None (6, 4)" in out and "reload True" in out, out
    assert "replicas 2 True" in out, out
