"""Nothing silently wrong: each way a load, save, write or port could quietly give a
wrong model now either works or raises, on every backend. One test (or more) per
finding; the plain bad-input cases are in the catalogue."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs
from tests.conftest import assert_unchanged, needs, needs_target, snapshot
from unified_params import spec as S
from unified_params._core import recycling

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _filled(backend, value, spec=specs.nested):
    model = spec().build(backend)
    up.initialize(model, up.init.Constant(value))
    return model


def _values(model):
    return {k: v for k, v in up.state_dict(model).items()}


# -- 1, 2: a sharded checkpoint is one unit; one name is one checkpoint ------------
def test_a_sharded_save_failing_midway_leaves_the_old_checkpoint_whole(backend, tmp_path, monkeypatch):
    from unified_params._core import safetensors_io as st

    path = tmp_path / "m.safetensors"
    up.save(_filled(backend, 1.0), path, max_shard_size=200)
    before = sorted(p.name for p in tmp_path.iterdir())
    real, calls = st.write, []

    def fail_on_second_shard(stream, *rest):
        calls.append(1)
        if len(calls) == 2:
            stream.write(b"partial")
            raise OSError(28, "No space left on device")
        return real(stream, *rest)

    monkeypatch.setattr(st, "write", fail_on_second_shard)
    with pytest.raises(up.CheckpointError, match="No space left"):
        up.save(_filled(backend, 2.0), path, max_shard_size=200)
    monkeypatch.setattr(st, "write", real)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # the new save left nothing
    fresh = specs.nested().build(backend)
    assert up.load(fresh, path).ok
    assert all((v == 1.0).all() for v in _values(fresh).values())


def test_a_resave_with_fewer_shards_leaves_no_stale_shard(backend, tmp_path):
    path = tmp_path / "m.safetensors"
    many = up.save(_filled(backend, 1.0), path, max_shard_size=100)
    few = up.save(_filled(backend, 2.0), path, max_shard_size=10_000)
    assert len(many) > len(few) >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in few)
    fresh = specs.nested().build(backend)
    assert up.load(fresh, path).ok and all((v == 2.0).all() for v in _values(fresh).values())


def test_one_name_means_the_newest_checkpoint_in_either_form(backend, tmp_path):
    path = tmp_path / "m.safetensors"
    up.save(_filled(backend, 1.0), path)
    up.save(_filled(backend, 2.0), path, max_shard_size=200)  # sharded replaces single
    assert not path.exists()
    fresh = specs.nested().build(backend)
    assert up.load(fresh, path).ok and all((v == 2.0).all() for v in _values(fresh).values())
    up.save(_filled(backend, 3.0), path)  # single replaces sharded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    assert up.load(fresh, path).ok and all((v == 3.0).all() for v in _values(fresh).values())


def test_both_forms_under_one_name_are_refused_not_guessed(backend, tmp_path):
    path = tmp_path / "m.safetensors"
    up.save(_filled(backend, 1.0), tmp_path / "other.safetensors", max_shard_size=200)
    (tmp_path / "other.safetensors.index.json").rename(tmp_path / "m.safetensors.index.json")
    up.save(_filled(backend, 2.0), tmp_path / "single.safetensors")
    (tmp_path / "single.safetensors").rename(path)  # as an interrupted save could leave them
    model = _filled(backend, 5.0)
    before = snapshot(model)
    with pytest.raises(up.CheckpointError, match="names two checkpoints"):
        up.load(model, path)
    assert_unchanged(before, model)
    assert up.load(model, tmp_path / "m.safetensors.index.json").ok  # explicit: no doubt


def test_a_shard_of_another_save_is_refused(backend, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    files_a = up.save(_filled(backend, 1.0), a, max_shard_size=200)
    files_b = up.save(_filled(backend, 2.0), b, max_shard_size=200)
    files_b[1].replace(files_a[1])  # a shard swapped in by hand
    model = _filled(backend, 5.0)
    before = snapshot(model)
    with pytest.raises(up.CheckpointError, match="belongs to another save"):
        up.load(model, a)
    assert_unchanged(before, model)


def test_killed_sharded_saves_always_leave_one_whole_model(tmp_path):
    """Kill a process that saves two models in turn, sharded, at random moments;
    every time, the name loads as one whole model, the old or the new."""
    needs("torch")
    path = tmp_path / "m.safetensors"
    script = textwrap.dedent(
        f"""
        import torch, unified_params as up
        def model(value):
            net = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(8)])
            up.initialize(net, up.init.Constant(value))
            return net
        a, b = model(1.0), model(2.0)
        print("ready", flush=True)
        while True:
            up.save(a, {str(path)!r}, max_shard_size="5MB")
            up.save(b, {str(path)!r}, max_shard_size="3MB")
        """
    )
    import torch

    rng = random.Random(0)
    for _ in range(4):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT)
        try:
            assert child.stdout.readline().strip() == b"ready"
            time.sleep(rng.uniform(0.3, 1.5))
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
        net = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(8)])
        if not (tmp_path / "m.safetensors.index.json").exists():
            continue  # killed before the first commit: nothing to load yet
        assert up.load(net, path).ok
        values = {float(v) for t in net.state_dict().values() for v in t.unique()}
        assert values in ({1.0}, {2.0}), values  # never a mix of the two saves
    up.save(net, path, max_shard_size="3MB")  # cleans what killed saves left behind
    index = json.loads((tmp_path / "m.safetensors.index.json").read_text())
    listed = set(index["weight_map"].values())
    assert {p.name for p in tmp_path.iterdir()} == listed | {"m.safetensors.index.json"}


# -- 3: a Param as a value is read in its own canonical layout -----------------------
def test_a_param_of_another_backend_is_read_in_its_canonical_layout(backends):
    models = {b: S.Sequential(S.Linear(4, 4)).build(b) for b in backends}
    source = models[backends[0]]
    up.initialize(source, up.init.Normal(), seed=3)
    expected = up.wrap(source)["0.weight"].numpy()
    assert not np.array_equal(expected, expected.T)  # a square kernel: a transpose would show
    for backend in backends:
        target = S.Sequential(S.Linear(4, 4)).build(backend)
        p = up.wrap(target)["0.weight"]
        p.set(up.wrap(source)["0.weight"])
        np.testing.assert_array_equal(p.numpy(), expected)
        p[1] = up.wrap(source)["0.weight"][2]
        np.testing.assert_array_equal(p.numpy()[1], expected[2])
        assert up.load_state_dict(target, {"0.weight": up.wrap(source)["0.weight"], "0.bias": np.zeros(4)}).ok
        np.testing.assert_array_equal(p.numpy(), expected)


# -- 4: a port checks its input first and restores on any error ------------------
def test_a_port_with_a_bad_check_input_writes_nothing(backends):
    source = specs.mlp().build(backends[0])
    up.initialize(source, up.init.Normal(), seed=1)
    for backend in backends:
        dst = specs.mlp().build(backend)
        before = snapshot(dst)
        with pytest.raises(up.ShapeError, match="does not fit"):
            up.port(source, dst, check_input=np.ones((2, 5), "float32"))
        assert_unchanged(before, dst)


@pytest.mark.parametrize("handler", ["python", "ignored"])
def test_ctrl_c_during_a_ports_writes_is_held_until_they_are_done(backend, handler, monkeypatch):
    """Every value is validated before the first write; a SIGINT that arrives while
    writing is held: the writes finish (the destination holds all the source's
    values, never a mix), then KeyboardInterrupt is raised. Where the program
    ignores SIGINT (a process started in the background by a shell without job
    control inherits that), the writes finish and nothing is raised."""
    import os
    import signal

    from unified_params._core import state

    source = specs.nested().build(backend)
    up.initialize(source, up.init.Normal(), seed=1)
    dst = specs.nested().build(backend)
    real, calls = state.Slot.write, []

    def interrupted(self, arrays, **options):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, delivered between two writes
        return real(self, arrays, **options)

    monkeypatch.setattr(state.Slot, "write", interrupted)
    chosen = signal.default_int_handler if handler == "python" else signal.SIG_IGN
    previous = signal.signal(signal.SIGINT, chosen)  # whatever this process inherited
    try:
        if handler == "python":
            with pytest.raises(KeyboardInterrupt):
                up.port(source, dst)
        else:
            up.port(source, dst)
        assert signal.getsignal(signal.SIGINT) is chosen  # given back as it was
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(calls) > 5
    want = up.state_dict(source)
    assert all(v.tobytes() == want[k].tobytes() for k, v in up.state_dict(dst).items())


def test_a_write_the_framework_fails_midway_is_never_silent(backend, monkeypatch):
    """Without a check input, a framework error after some writes raises PortError
    naming what was written (the values were all valid; there is no copy to give
    back); with one, the destination's kept values are restored."""
    from unified_params._core import state

    source = specs.nested().build(backend)
    up.initialize(source, up.init.Normal(), seed=1)
    dst = specs.nested().build(backend)
    before = snapshot(dst)
    real, calls = state.Slot.write, []

    def failing(self, arrays, **options):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("out of device memory")
        return real(self, arrays, **options)

    monkeypatch.setattr(state.Slot, "write", failing)
    with pytest.raises(up.PortError, match=r"Writing .* failed .* after 4 of \d+ values were written") as err:
        up.port(source, dst)
    assert isinstance(err.value.__cause__, RuntimeError)
    calls.clear()
    up.initialize(dst, up.init.Normal(), seed=2)
    before = snapshot(dst)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    with pytest.raises(up.PortError, match="Writing .* failed"):
        up.port(source, dst, check_input=x)
    assert_unchanged(before, dst)


# -- 5: strict means the same in both layouts ------------------------------------------
def test_a_native_layout_load_reports_unexpected_keys(backend):
    model = specs.mlp().build(backend)
    native = up.state_dict(model, layout="native")
    before = snapshot(model)
    with pytest.raises(up.CheckpointError, match="unexpected '9.weight'"):
        up.load_state_dict(model, {**native, "9.weight": np.zeros(3)}, layout="native")
    assert_unchanged(before, model)
    report = up.load_state_dict(model, {**native, "9.weight": np.zeros(3)}, layout="native", strict=False)
    assert report.unexpected == ["9.weight"] and not report.ok
    with pytest.raises(up.CheckpointError, match="mismatched '0.weight'"):
        up.load_state_dict(model, {**native, "0.weight": np.zeros(3)}, layout="native")


# -- 6: overflow and NaN -----------------------------------------------------------------
@pytest.mark.parametrize(
    "write",
    [
        lambda m: up.wrap(m)["0.weight"].set(np.full((8, 4), 1e39)),
        lambda m: up.wrap(m)["0.weight"].__setitem__((0, 0), 1e39),
        lambda m: up.initialize(m, up.init.Constant(1e39)),
        lambda m: up.initialize(m, up.init.Normal(0, 1e38)),
        lambda m: up.initialize(m, {"*": lambda shape, rng: np.full(shape, 1e39)}),
    ],
    ids=["set", "item", "Constant", "Normal", "custom"],
)
def test_a_value_too_large_for_the_dtype_is_refused_not_written_as_inf(backend, write):
    model = specs.mlp().build(backend)
    before = snapshot(model)
    with pytest.raises((up.DTypeError, up.InitError), match="infinity"):
        write(model)
    assert_unchanged(before, model)


def test_a_state_with_nan_or_overflow_is_refused_unless_allowed(backend, tmp_path):
    model = specs.mlp().build(backend)
    state = up.state_dict(model)
    before = snapshot(model)
    for bad in (np.full((8, 4), np.nan, "float32"), np.full((8, 4), 1e39, "float64")):
        with pytest.raises(up.CheckpointError, match="not finite"):
            up.load_state_dict(model, {**state, "0.weight": bad})
        assert_unchanged(before, model)
        report = up.load_state_dict(model, {**state, "0.weight": bad}, strict=False)
        assert report.nonfinite == ["0.weight"] and "0.weight" not in report.loaded
        assert_unchanged(before, model)
    nan_state = {**state, "0.weight": np.full((8, 4), np.nan, "float32")}
    report = up.load_state_dict(model, nan_state, allow_nonfinite=True)
    assert report.ok and np.isnan(up.wrap(model)["0.weight"].numpy()).all()
    from safetensors.numpy import save_file

    save_file(nan_state, tmp_path / "nan.safetensors")
    with pytest.raises(up.CheckpointError, match="allow_nonfinite=True"):
        up.load(specs.mlp().build(backend), tmp_path / "nan.safetensors")
    assert up.load(specs.mlp().build(backend), tmp_path / "nan.safetensors", allow_nonfinite=True).ok


# -- 7: a subclass that overrides sample is what runs -----------------------------
def test_a_subclass_of_a_builtin_initializer_runs_its_own_sample(backends):
    class Halves(up.init.Normal):
        def sample(self, shape, rng, param):
            return np.full(shape, 0.5)

    class Wider(up.init.Normal):  # no sample: the built-in law, with its own arguments
        def __init__(self):
            super().__init__(0.0, 3.0)

    for backend in backends:
        model = specs.mlp().build(backend)
        up.initialize(model, Halves(), seed=0)
        assert all((v == 0.5).all() for v in up.state_dict(model).values()), backend
        up.initialize(model, Wider(), seed=0)
        assert 1.5 < float(np.std(up.wrap(model)["0.weight"].numpy())) < 5


# -- 8: an untied file into a tied model ---------------------------------------------------
def test_an_untied_state_with_different_values_for_a_tie_group_is_refused(backend):
    tied = specs.shared().build(backend)
    untied = S.Sequential(
        S.Linear(4, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 1)
    ).build(backend)
    up.initialize(untied, up.init.Normal(), seed=4)
    before = snapshot(tied)
    with pytest.raises(up.CheckpointError, match="tied in this model but given different values '4.weight'"):
        up.load_state_dict(tied, up.state_dict(untied))
    assert_unchanged(before, tied)
    report = up.load_state_dict(tied, up.state_dict(untied), strict=False)
    assert set(report.conflicting) == {"4.weight", "4.bias"} and not report.ok
    np.testing.assert_array_equal(up.wrap(tied)["4.weight"].numpy(), up.wrap(untied)["2.weight"].numpy())
    agreeing = {**up.state_dict(tied), "4.weight": up.wrap(tied)["2.weight"].numpy()}
    report = up.load_state_dict(tied, agreeing)  # the same value twice: fine, and said
    assert report.ok and "4.weight" in report.skipped


# -- 10: concurrent writes -------------------------------------------------------------
def test_concurrent_item_writes_lose_no_row(backend):
    model = S.Sequential(S.Linear(16, 32)).build(backend)
    up.initialize(model, up.init.Zeros())
    p = up.wrap(model)["0.weight"]
    barrier = threading.Barrier(8)
    errors = []

    def write(rows):
        try:
            barrier.wait()
            for row in rows:
                p[row] = float(row + 1)
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(range(k, 32, 8),)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    np.testing.assert_array_equal(p.numpy()[:, 0], np.arange(1, 33, dtype="float32"))


def test_concurrent_in_place_additions_lose_no_update(backend):
    model = S.Sequential(S.Linear(4, 4)).build(backend)
    up.initialize(model, up.init.Zeros())
    p = up.wrap(model)["0.weight"]
    barrier = threading.Barrier(4)

    def add():
        barrier.wait()
        for _ in range(25):
            p[0] += 1

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(p.numpy()[0], np.full(4, 100.0, "float32"))


# -- 11: torch specials, and negative steps everywhere ------------------------------
def test_torch_compiled_scripted_meta_and_bfloat16(backends):
    if "torch" not in backends:
        pytest.skip("torch not requested")
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    compiled = torch.compile(net)
    m = up.wrap(compiled)  # the compiled wrapper shares the module: same paths, same tensors
    assert list(m.params()) == ["0.weight", "0.bias"] and m["0.weight"].native is net[0].weight
    m["0.bias"][0] = 5.0
    assert float(net[0].bias.detach()[0]) == 5.0
    # So does DataParallel (torch keys its state behind 'module.'), a file saved from it loads
    # into the plain model, and its gradients are the module's (its backward sums into them).
    parallel = torch.nn.DataParallel(net)
    assert list(parallel.state_dict())[0] == "module.0.weight"
    assert list(up.wrap(parallel).params()) == ["0.weight", "0.bias"]
    assert up.wrap(torch.compile(parallel))["0.weight"].native is net[0].weight
    x = np.ones((2, 4), "float32")
    np.testing.assert_array_equal(up.gradients(parallel, x)["0.weight"], up.gradients(net, x)["0.weight"])
    with pytest.raises(up.UnsupportedError, match="torch.jit"):
        up.wrap(torch.jit.script(net))
    with torch.device("meta"):
        meta = torch.nn.Sequential(torch.nn.Linear(4, 3))
    with pytest.raises(up.NotBuiltError, match="meta device.*to_empty"):
        up.state_dict(meta)
    with pytest.raises(up.NotBuiltError, match="meta device"):
        up.wrap(meta)["0.weight"].set(np.zeros((3, 4)))
    value = torch.arange(12, dtype=torch.bfloat16).reshape(3, 4)
    up.wrap(net)["0.weight"].set(value)
    np.testing.assert_array_equal(net[0].weight.detach().numpy(), np.arange(12).reshape(3, 4))


def test_a_recurrent_layer_that_runs_backwards_is_no_forward_one(backends):
    """A Keras LSTM with ``go_backwards`` holds a torch LSTM's weights but reads the
    sequence last to first (and returns it so): the port says so and warns. A
    torch LSTM of two layers or directions pairs part by part: with fewer Keras
    layers the port says so; into a Bidirectional that sums the directions, or
    into two layers one after the other, it warns that the outputs differ."""
    if not {"torch", "keras"} <= set(backends):
        pytest.skip("needs torch and keras")
    import keras
    import torch

    source = S.Sequential(S.LSTM(3, 5)).build("torch")
    backwards = keras.Sequential(
        [keras.Input((4, 3)), keras.layers.LSTM(5, go_backwards=True, return_sequences=True)]
    )
    with pytest.warns(UserWarning, match=r"0 -> 0: direction forward \(torch\) vs reverse \(keras\)"):
        up.port(source, backwards)
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype("float32")
    with pytest.raises(up.PortError, match="differ"):
        up.port(source, backwards, check_input=x)
    both = torch.nn.LSTM(3, 5, batch_first=True, bidirectional=True)
    assert up.wrap(both).adapter.hyperparameters(both)["direction"] == "bidirectional"
    assert up.wrap(source).adapter.hyperparameters(source[0])["direction"] == "forward"
    with pytest.raises(up.PortError, match=r"each paired as a layer of its own: \['\[l0\]', '\[l1\]'\]"):
        up.port(
            torch.nn.LSTM(3, 5, num_layers=2, batch_first=True), S.Sequential(S.LSTM(3, 5)).build("keras")
        )
    two = keras.Sequential(
        [
            keras.Input((4, 3)),
            *[keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True)) for _ in "ab"],
        ]
    )
    parts = torch.nn.Sequential()
    parts.add_module("lstm", torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True))
    rules = [(r"lstm\[l(\d)\]", r"\1.forward_layer"), (r"lstm\[l(\d)_reverse\]", r"\1.backward_layer")]
    report = up.port(parts, two, mapping=rules, check_input=x)  # a part is a layer a mapping names
    assert [p[:2] for p in report.pairs][1:3] == [
        ("lstm[l0_reverse]", "0.backward_layer"),
        ("lstm[l1]", "1.forward_layer"),
    ]
    assert report.max_abs_diff <= 1e-5
    summed = keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True), merge_mode="sum")
    with pytest.warns(
        UserWarning, match=r"\[l0\] -> 0.forward_layer: merge concat \(torch\) vs sum \(keras\)"
    ):
        up.port(both, keras.Sequential([keras.Input((4, 3)), summed]))
    with pytest.warns(UserWarning, match=r"merge concat \(torch\) vs none \(keras\)"):  # one after the other
        up.port(
            torch.nn.LSTM(5, 5, batch_first=True, bidirectional=True),
            keras.Sequential(
                [keras.Input((4, 5)), keras.layers.LSTM(5, return_sequences=True), keras.layers.LSTM(5)]
            ),
        )


def test_a_paddle_bfloat16_tensor_is_read_as_numbers_not_bits(backends):
    if "paddle" not in backends:
        pytest.skip("paddle not requested")
    import paddle

    model = S.Sequential(S.Linear(4, 3)).build(backends[0])
    value = paddle.to_tensor(np.arange(12, dtype="float32").reshape(3, 4)).astype("bfloat16")
    up.wrap(model)["0.weight"].set(value)
    np.testing.assert_array_equal(up.wrap(model)["0.weight"].numpy(), np.arange(12).reshape(3, 4))


@pytest.mark.parametrize(
    "index", [np.s_[::-1], np.s_[1, ::-2], np.s_[::-1, 1:3]], ids=["rows", "row", "block"]
)
def test_negative_step_writes_behave_like_numpy(backend, index):
    model = S.Sequential(S.Linear(4, 6)).build(backend)
    up.initialize(model, up.init.Normal(), seed=2)
    p = up.wrap(model)["0.weight"]
    expected = p.numpy()
    value = np.arange(expected[index].size, dtype="float32").reshape(expected[index].shape)
    expected[index] = value
    p[index] = value
    np.testing.assert_array_equal(p.numpy(), expected)


# -- 12: Keras ties of any variable of a layer ----------------------------------------
def test_a_parameter_tie_of_a_layers_second_variable(backend):
    model = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 8)).build(backend)
    up.tie(model, "2.bias", "4.bias")
    assert up.ties(model) == [("2.bias", "4.bias")]
    m = up.wrap(model)
    m["2.bias"][3] = 7.0
    assert float(m["4.bias"][3]) == 7.0
    assert m.count() == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 8  # the tied bias counted once
    up.untie(model, "4.bias")
    assert up.ties(model) == []


# -- 13: temporary files ---------------------------------------------------------------------
def test_a_symlink_planted_at_the_temporary_name_is_never_followed(backend, tmp_path, monkeypatch):
    from unified_params._core import safetensors_io as st

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    monkeypatch.setattr(st, "temp_name", lambda name, pid: ".planted.tmp")
    (tmp_path / ".planted.tmp").symlink_to(victim)
    with pytest.raises(up.CheckpointError, match="Could not write"):
        up.save(specs.mlp().build(backend), tmp_path / "m.safetensors")
    assert victim.read_text() == "keep me"


def test_a_long_target_name_and_stale_temporaries_of_dead_processes(backend, tmp_path):
    from unified_params._core import safetensors_io as st

    path = tmp_path / ("x" * 240 + ".safetensors")  # a legal 252-byte name
    dead = tmp_path / st.temp_name(path.name, 2**22 + 4321)  # a pid no process has
    dead.write_bytes(b"left by a killed save")
    alive = tmp_path / st.temp_name(path.name, os.getpid())
    alive.write_bytes(b"another save, still running")
    up.save(specs.mlp().build(backend), path)
    assert up.load(specs.mlp().build(backend), path).ok
    assert not dead.exists() and alive.exists()


def test_a_fifo_or_folder_is_refused_at_once(backend, tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    model = specs.mlp().build(backend)
    start = time.perf_counter()
    with pytest.raises(up.CheckpointError, match="not a regular file"):
        up.load(model, fifo)
    with pytest.raises(up.CheckpointError, match="is a folder"):
        up.load(model, tmp_path)
    with pytest.raises(up.CheckpointError, match="Could not write"):
        up.save(model, tmp_path)  # a folder as the file
    assert time.perf_counter() - start < 5  # no wait for a writer on the FIFO


def test_a_folder_that_is_a_file_is_a_checkpoint_error(backend, tmp_path):
    (tmp_path / "file.txt").write_text("not a folder")
    with pytest.raises(up.CheckpointError, match="Not a directory"):
        up.save(specs.mlp().build(backend), tmp_path / "file.txt" / "m.safetensors")
    with pytest.raises(up.CheckpointError, match="Not a directory|No checkpoint"):
        up.load(specs.mlp().build(backend), tmp_path / "file.txt" / "m.safetensors")


# -- 15: the tied-file claim of the README ---------------------------------------------
def test_a_tied_file_loads_into_torch_with_the_safetensors_library(backends, tmp_path):
    if "torch" not in backends:
        pytest.skip("torch not requested")
    from safetensors.torch import load_file, load_model

    for backend in backends:
        source = specs.shared().build(backend)
        up.initialize(source, up.init.Normal(), seed=8)
        up.save(source, tmp_path / f"{backend}.safetensors")
        net = specs.shared().build("torch")
        missing, unexpected = load_model(net, tmp_path / f"{backend}.safetensors")
        assert not unexpected and set(missing) <= {"4.weight", "4.bias"}
        for key, value in up.state_dict(source).items():
            np.testing.assert_array_equal(net.state_dict()[key].numpy(), value)
        assert net[4].weight is net[2].weight
        untied_file = tmp_path / f"{backend}-plain.safetensors"
        up.save(specs.mlp().build(backend), untied_file)
        plain = specs.mlp().build("torch")
        plain.load_state_dict(load_file(untied_file))  # an untied model: plain load_state_dict


# -- 16: a load keeps the file's tensors only where nothing could tell ------------------
@pytest.mark.parametrize("leased", [True, False], ids=["file-leased", "file-open-for-writing"])
def test_a_torch_load_keeps_the_tensors_it_read_only_where_nothing_could_tell(backends, tmp_path, leased):
    """A load reads a file that no other process can write (a read lease)
    straight into the parameters' memory. Without that proof (here: the file
    is open for writing), it may make the tensors it read a torch parameter's
    memory instead of copying them again. Either way, whatever holds the old
    memory must see the new values: a view, an array, another process; a
    graph that saved the old value must refuse backward, as after an in-place
    copy."""
    if "torch" not in backends:
        pytest.skip("torch not requested")
    import torch

    file = tmp_path / "m.safetensors"
    up.initialize(source := torch.nn.Sequential(torch.nn.Linear(64, 64)), up.init.Normal(), seed=3)
    up.save(source, file)
    want = source[0].weight.detach().numpy().copy()
    writer = contextlib.nullcontext() if leased else open(file, "r+b")  # noqa: SIM115

    def fresh():
        net = torch.nn.Sequential(torch.nn.Linear(64, 64))
        return net, net[0].weight, net[0].weight.data_ptr()

    with writer:
        check_loads_that_keep_or_copy(torch, file, want, fresh, kept=not leased)


def check_loads_that_keep_or_copy(torch, file, want, fresh, kept):
    net, weight, before = fresh()  # nothing else holds the memory: kept unless read in place
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    assert up.load(net, file).ok
    assert net[0].weight is weight and weight.requires_grad and (weight.data_ptr() != before) == kept
    np.testing.assert_array_equal(weight.detach().numpy(), want)
    net(torch.ones(1, 64)).sum().backward()
    optimizer.step()  # the optimizer still updates the parameter the model uses
    np.testing.assert_allclose(weight.detach().numpy(), want - 0.5, rtol=1e-6)

    net, weight, before = fresh()  # a view and an array hold it: copied into
    row, array = weight[0], weight.detach().numpy()
    up.load(net, file)
    assert weight.data_ptr() == before
    np.testing.assert_array_equal(row.detach().numpy(), want[0])
    np.testing.assert_array_equal(array, want)

    net, weight, before = fresh()  # shared with other processes: copied into
    net.share_memory()
    shared = weight.data_ptr()
    up.load(net, file)
    assert weight.is_shared() and weight.data_ptr() == shared
    np.testing.assert_array_equal(weight.detach().numpy(), want)

    net, weight, before = fresh()  # a graph that saved the old value (the parameter itself)
    loss = (weight**2).sum()
    up.load(net, file)
    assert (weight.data_ptr() != before) == kept
    np.testing.assert_array_equal(weight.detach().numpy(), want)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_a_keras_port_reuses_memory_only_once_no_read_holds_it(monkeypatch):
    """A port into Keras on TensorFlow hands each variable a copy, and the memory
    the variables let go takes the next copies of the same port: a tensor read
    before the port must keep its values, and the model must get the new ones."""
    needs("torch")
    needs_target("keras")
    import tensorflow as tf

    def tables():
        return S.Sequential(*[S.Embedding(4096, 256) for _ in range(3)])  # 4 MiB each, one layout everywhere

    source, model = tables().build("torch"), tables().build("keras")
    kernels = [layer.embeddings for layer in model.layers]
    mapped = []
    monkeypatch.setattr(
        recycling, "_mapped", lambda size, new=recycling._mapped: mapped.append(size) or new(size)
    )

    up.initialize(source, up.init.Normal(), seed=1)
    up.port(source, model)  # the variables now hold memory of the library's
    assert len(mapped) == 3
    up.initialize(source, up.init.Normal(), seed=2)
    up.port(source, model)
    assert len(mapped) == 4, "one new block; the others were let go in the same port"
    held = tf.convert_to_tensor(kernels[0].value)  # a read: its memory must not be written again
    want = held.numpy().copy()
    for seed in (3, 4):
        up.initialize(source, up.init.Normal(), seed=seed)
        up.port(source, model)
        np.testing.assert_array_equal(held.numpy(), want)
        for name, value in up.state_dict(source).items():
            np.testing.assert_array_equal(up.wrap(model)[name].numpy(), value)


def test_a_load_into_the_parameters_memory_checks_every_value_before_the_first_write(backend, tmp_path):
    """Where a framework lends its parameters' memory, a load checks every value
    as it streams through a small buffer, then reads the file again straight
    into the parameters. A NaN in the file's last tensor still leaves the model
    as it was; allowed, it is loaded."""
    from unified_params._core import safetensors_io as st

    model = specs.mlp().build(backend)
    up.initialize(model, up.init.Normal(), seed=4)
    path = tmp_path / "m.safetensors"
    up.save(model, path)
    _, infos = st.read_header(path)
    last = max(infos, key=lambda i: i.begin)
    with open(path, "r+b") as f:  # the last value's last element: NaN
        f.seek(last.end - 4)
        f.write(np.array([np.nan], np.float32).tobytes())
    up.initialize(model, up.init.Ones())
    before = snapshot(model)
    with pytest.raises(up.CheckpointError, match="not finite"):
        up.load(model, path)
    assert_unchanged(before, model)
    assert up.load(model, path, allow_nonfinite=True).loaded
    loaded = up.state_dict(model)[last.name]
    assert np.isnan(loaded.reshape(-1)[-1]) and np.isfinite(loaded.reshape(-1)[:-1]).all()


def test_a_load_whose_file_may_have_changed_writes_nothing(backend, tmp_path, monkeypatch):
    """Past the time the system holds a writer back, a file read twice may have
    changed between the reads: the load refuses before its first write."""
    from unified_params._core import leases

    model = specs.mlp().build(backend)
    path = tmp_path / "m.safetensors"
    up.save(model, path)
    up.initialize(model, up.init.Ones())
    before = snapshot(model)
    monkeypatch.setattr(leases.Lease, "unchanged", lambda self: False)
    with pytest.raises(up.CheckpointError, match="opened for writing by another process"):
        up.load(model, path)
    assert_unchanged(before, model)


def test_a_second_read_that_fails_says_what_the_model_holds(backend, tmp_path, monkeypatch):
    """The second read of a value goes straight into its parameter's memory
    where the framework lends it, else into memory of the load's. If it fails
    (an I/O error): part way into a parameter, the error says that parameter
    holds part of the value; into the load's memory, the parameter was not
    written, and when it was the first, the model is unchanged."""
    from unified_params._core import safetensors_io as st

    model = specs.mlp().build(backend)
    up.initialize(model, up.init.Normal(), seed=2)
    path = tmp_path / "m.safetensors"
    up.save(model, path)
    up.initialize(model, up.init.Zeros())
    before = snapshot(model)
    real_fill, real_tensor = st.FileReader.fill, st.FileReader.tensor

    def fill_then_fail(self, info, out):  # the check reads pieces: only second reads get here
        real_fill(self, info, out)
        raise up.CheckpointError("disk error (made up)")

    def read_then_fail(self, info):
        real_tensor(self, info)
        raise up.CheckpointError("disk error (made up)")

    monkeypatch.setattr(st.FileReader, "fill", fill_then_fail)
    monkeypatch.setattr(st.FileReader, "tensor", read_then_fail)
    with pytest.raises(up.CheckpointError) as info:
        up.load(model, path)
    assert "disk error (made up)" in str(info.value)
    first = up.wrap(model).params()["0.weight"]
    if up.wrap(model).adapter.capabilities.in_place_fill and first.layout.is_identity:
        assert "now holds part of the file's value" in str(info.value)
    else:
        assert "it was not written" in str(info.value)
        assert_unchanged(before, model)
