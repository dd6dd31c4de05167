"""Broken, hostile or mismatched checkpoints and ports: clear errors, nothing changed."""

from __future__ import annotations

import json
import pickle
import re
import struct
import time
import warnings

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs
from tests.conftest import assert_unchanged, needs, snapshot
from unified_params import spec as S


@pytest.fixture
def saved(tmp_path):
    def make(backend, name="mlp"):
        model = specs.BUILDERS[name]().build(backend)
        path = tmp_path / f"{name}.safetensors"
        up.save(model, path)
        return path

    return make


def _header(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _write(path, header, body):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)


def _load_fails(backend, path, words, error=up.CheckpointError):
    model = specs.mlp().build(backend)
    before = snapshot(model)
    with pytest.raises(error) as info:
        up.load(model, path)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert_unchanged(before, model)
    return info.value


def test_truncated_file(backend, saved):
    path = saved(backend)
    path.write_bytes(path.read_bytes()[:-10])
    _load_fails(backend, path, ["truncated", "mlp.safetensors"])
    path.write_bytes(b"\x01\x02")
    _load_fails(backend, path, ["shorter than the 8-byte header"])


def test_random_and_foreign_bytes(backend, tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    _load_fails(backend, path, ["not a valid safetensors file"])
    path.write_bytes(struct.pack("<Q", 6) + b"{oops}")
    _load_fails(backend, path, ["not JSON"])
    _load_fails(backend, tmp_path / "absent.safetensors", ["No checkpoint"])


def test_pickle_is_refused_without_being_unpickled(backend, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(Exploit(), protocol=4))
    _load_fails(backend, path, ["pickle", "refused without being unpickled"])
    assert not marker.exists()
    needs("torch")
    import torch

    torch.save({"0.weight": torch.zeros(8, 4)}, path)
    _load_fails(backend, path, ["pickle or torch.save", "torch.load(path, weights_only=True)"])
    assert not marker.exists()


def test_a_framework_s_own_checkpoint_is_refused_with_how_to_read_it_there(backend, tmp_path):
    """Keras' ``.keras`` archive and ``.weights.h5`` file, and paddle's
    ``.pdparams``, are told apart by their first bytes (a zip by the names it
    lists) and each refusal names the framework's own reader. Before: an HDF5
    file's first bytes read as a header length ("its header claims
    727,905,341,903,489,161 bytes"), and the archives as a torch.save."""
    zipped = tmp_path / "model.keras"
    import zipfile

    with zipfile.ZipFile(zipped, "w") as archive:  # what keras.saving writes: no framework needed
        for name in ("metadata.json", "config.json", "model.weights.h5"):
            archive.writestr(name, b"{}")
    _load_fails(backend, zipped, ["a Keras model archive", "keras.saving.load_model(path)"])
    hdf5 = tmp_path / "model.weights.h5"
    hdf5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(512))
    _load_fails(backend, hdf5, ["an HDF5 file", "model.load_weights(path)"])
    pickled = tmp_path / "model.pdparams"
    pickled.write_bytes(pickle.dumps({"0.weight": np.zeros((4, 8), "float32")}, protocol=4))
    _load_fails(backend, pickled, ["refused without being unpickled", "paddle.load(path)", "layout='native'"])


@pytest.mark.parametrize(
    ("lie", "words"),
    [
        (lambda h: h["0.weight"].update(data_offsets=[0, 10**15]), ["0.weight", "needs 128 bytes"]),
        (lambda h: h["0.weight"].update(shape=[10**6, 10**6]), ["0.weight", "needs"]),
        (lambda h: h["0.bias"].update(data_offsets=[0, 32]), ["overlap or leave gaps"]),
        (lambda h: h["0.weight"].update(dtype="Q99"), ["unknown dtype 'Q99'"]),
        (lambda h: h["0.weight"].update(shape=[-8, 4]), ["malformed shape"]),
        (lambda h: h.update({"__metadata__": {"a": 1}}), ["__metadata__"]),
    ],
)
def test_lying_headers_are_refused_quickly(backend, saved, lie, words):
    path = saved(backend)
    header, body = _header(path)
    lie(header)
    _write(path, header, body)
    start = time.perf_counter()
    _load_fails(backend, path, words)
    assert time.perf_counter() - start < 2  # nothing of the claimed size was allocated


def test_header_claiming_a_huge_length(backend, tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    _load_fails(backend, path, ["claims", "bytes but the file has 10"])


def test_missing_unexpected_and_mismatched_keys(backend, tmp_path):
    model = specs.mlp().build(backend)
    before = snapshot(model)
    good = up.state_dict(model)
    for state, words in [
        ({k: v for k, v in good.items() if k != "2.bias"}, ["missing '2.bias'"]),
        ({**good, "3.weight": np.zeros(2)}, ["unexpected '3.weight'"]),
        ({**good, "0.weight": np.zeros((4, 8), "float32")}, ["'0.weight' expects (8, 4) got (4, 8)"]),
    ]:
        with pytest.raises(up.CheckpointError) as info:
            up.load_state_dict(model, {k: v + 1 if k != "3.weight" else v for k, v in state.items()})
        for word in words:
            assert word in str(info.value)
        assert "nothing was written" in str(info.value)
        assert_unchanged(before, model)
    report = up.load_state_dict(model, {"0.weight": np.ones((4, 8)), "2.bias": np.full(1, 3.0)}, strict=False)
    assert report.loaded == ["2.bias"] and report.mismatched == [("0.weight", (8, 4), (4, 8))]
    assert report.missing == ["0.bias", "2.weight"] and not report.ok
    assert up.wrap(model)["2.bias"].numpy()[0] == 3.0


def test_dtype_that_cannot_be_cast(tmp_path):
    needs("torch")
    model = specs.cnn().build("torch")
    state = up.state_dict(model)
    state["1.num_batches_tracked"] = np.array(1.5)
    before = snapshot(model)
    with pytest.raises(up.CheckpointError, match="num_batches_tracked"):
        up.load_state_dict(model, state)
    assert_unchanged(before, model)


def test_checkpoint_of_another_architecture(backend, saved):
    path = saved(backend, "nested")
    _load_fails(backend, path, ["unexpected", "missing"])


def test_port_between_architectures_that_do_not_match(backend):
    src = S.Sequential(S.Linear(4, 8), S.Linear(8, 2)).build(backend)
    for dst_spec, words in [
        (S.Sequential(S.Linear(4, 8), S.Linear(8, 3)), ["Layer 1 does not match", "(2, 8)", "(3, 8)"]),
        (S.Sequential(S.Linear(4, 8)), ["2 parameterised layers", "destination 1"]),
        (S.Sequential(S.Linear(4, 8), S.LayerNorm(8)), ["Layer 1 does not match", "layernorm"]),
    ]:
        dst = dst_spec.build(backend)
        before = snapshot(dst)
        with pytest.raises(up.PortError) as info:
            up.port(src, dst)
        for word in words:
            assert word in str(info.value), str(info.value)
        assert_unchanged(before, dst)
    dst = S.Sequential(S.Linear(4, 8), S.Linear(8, 2)).build(backend)
    with pytest.raises(up.PortError, match="no parameterised layer"):
        up.port(src, dst, mapping={"5": "0"})


def test_a_port_between_layer_counts_says_where_the_models_part(backend):
    src = S.Sequential(S.Linear(4, 8), S.LayerNorm(8), S.Linear(8, 2)).build(backend)
    dst = S.Sequential(S.Linear(4, 8), S.Linear(8, 2)).build(backend)
    with pytest.raises(up.PortError) as info:
        up.port(src, dst)
    said = str(info.value)
    assert "the first 1 and the last 1 pair" in said, said
    assert "the source has 1 layer the destination lacks: '1' (" in said, said
    assert "layernorm: weight (8,), bias (8,))" in said, said
    with pytest.raises(up.PortError) as info:  # the other way round
        up.port(dst, src)
    assert "the destination has 1 layer the source lacks: '1' (" in str(info.value), str(info.value)
    # Both sides differ between the runs that pair: the first two that do not are named.
    dst = S.Sequential(S.Linear(4, 3), S.Linear(3, 3), S.Linear(3, 5), S.Linear(5, 2)).build(backend)
    with pytest.raises(up.PortError) as info:
        up.port(src, dst)
    said = str(info.value)
    assert "the first 0 and the last 0 pair" in said and "3 source and 4 destination layers" in said, said
    assert "from source '0' (" in said and "weight (8, 4)" in said and "weight (3, 4)" in said, said
    # A long model's paths are shortened in what the error received.
    long = S.Sequential(*[S.Linear(4, 4) for _ in range(12)]).build(backend)
    with pytest.raises(up.PortError) as info:
        up.port(long, S.Sequential(*[S.Linear(4, 4) for _ in range(11)]).build(backend))
    assert (
        "Received: source=['0', '1', '2', '...', '9', '10', '11'], destination=['0', '1', '2', '...'"
        in str(info.value)
    )


def test_an_attention_holding_some_biases_of_a_packed_entry_is_refused():
    """torch packs the query, key and value biases into one ``in_proj_bias``:
    a paddle attention whose query projection lost its bias cannot give it,
    and says which block it lacks."""
    needs("paddle")
    import paddle

    attention = paddle.nn.MultiHeadAttention(8, 2)
    attention.q_proj.bias = None
    with pytest.raises(up.UnsupportedError, match=r"'in_proj_bias' and lacks others \(\['q_proj.bias'\]\)"):
        up.state_dict(attention)


def test_port_whose_outputs_differ_restores_the_destination(backends):
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype("float32")
    src = S.Sequential(S.BatchNorm2d(4, eps=0.5)).build(backends[0])
    up.wrap(src)["0.running_var"].set(np.full(4, 0.1, "float32"))
    for backend in backends:
        dst = S.Sequential(S.BatchNorm2d(4)).build(backend)
        up.initialize(dst, up.init.Normal(), seed=1)
        before = snapshot(dst)
        with pytest.raises(up.PortError, match="destination was restored"):
            up.port(src, dst, check_input=x, atol=1e-4)
        assert_unchanged(before, dst)


def test_a_keras_gru_without_reset_after_is_a_kind_of_its_own():
    """A Keras GRU built with ``reset_after=False`` applies the reset gate before
    its recurrent kernel, which no torch or paddle GRU computes: it keeps
    Keras' names, pairs with no torch GRU, with or without biases, and ports
    between Keras models. Before, one without biases took torch's names and
    ported into a torch GRU with nothing said while the outputs differed
    (by 0.014 here)."""
    needs("keras")
    import keras

    def keras_gru(bias: bool):
        model = keras.Sequential(
            [
                keras.Input((4, 3)),
                keras.layers.GRU(5, use_bias=bias, reset_after=False, return_sequences=True),
            ]
        )
        up.initialize(model, up.init.Normal(0, 0.5), seed=3)
        return model

    assert list(up.state_dict(keras_gru(True))) == ["0.kernel", "0.recurrent_kernel", "0.bias"]
    assert list(up.state_dict(keras_gru(False))) == ["0.kernel", "0.recurrent_kernel"]
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype("float32")
    target = keras_gru(False)
    assert up.port(keras_gru(False), target, check_input=x).max_abs_diff <= 1e-6
    needs("torch")
    import torch

    for bias in (True, False):
        with pytest.raises(up.PortError, match="kinds gru and gru_reset_before"):
            up.port(torch.nn.GRU(3, 5, bias=bias, batch_first=True), keras_gru(bias))
        with pytest.raises(up.PortError, match="kinds gru_reset_before and gru"):
            up.port(keras_gru(bias), torch.nn.GRU(3, 5, bias=bias, batch_first=True))


def test_a_keras_layer_norm_that_computes_otherwise_is_a_kind_of_its_own():
    """A Keras LayerNormalization over an image's positions and channels keeps
    its scale laid out as the map is, (H, W, C), where torch's LayerNorm([C, H,
    W]) keeps (C, H, W); one built with the deprecated rms_scaling=True divides
    by the variance. Before, torch's weights went into both with nothing said
    while the outputs differed (by 3.8 and 13 here). Over the positions alone,
    or the channels alone, it is torch's LayerNorm and ports exactly."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    def torch_net(shape):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.LayerNorm(shape)).eval()
        with torch.no_grad():
            net[1].weight.normal_(), net[1].bias.normal_()
        return net

    def keras_net(**norm):
        conv = keras.layers.Conv2D(4, 3)
        return keras.Sequential(
            [keras.Input((6, 6, 3)), conv, keras.layers.LayerNormalization(epsilon=1e-5, **norm)]
        )

    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    with pytest.raises(up.PortError, match="kinds layernorm and layernorm_over_a_map"):
        up.port(torch_net([4, 4, 4]), keras_net(axis=[1, 2, 3]))
    assert list(up.state_dict(keras_net(axis=[1, 2, 3]))) == ["0.weight", "0.bias", "1.gamma", "1.beta"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras' own deprecation of rms_scaling
        with pytest.raises(up.PortError, match="kinds layernorm and layernorm_rms_scaling"):
            up.port(torch.nn.Sequential(torch.nn.LayerNorm(8)), keras.Sequential(
                [keras.Input((5, 8)), keras.layers.LayerNormalization(rms_scaling=True)]
            ))  # fmt: skip
    assert up.port(torch_net([4, 4]), keras_net(axis=[1, 2]), check_input=x).max_abs_diff <= 1e-5

    # Three axes: after a Conv1D, a map laid out (L, C); after an Embedding, a sequence, (T, C) as torch's.
    def norm_after(first):
        inputs = (
            keras.Input((6,), dtype="int32")
            if isinstance(first, keras.layers.Embedding)
            else keras.Input((6, 3))
        )
        return keras.Model(inputs, keras.layers.LayerNormalization(axis=[1, 2], epsilon=1e-5)(first(inputs)))

    assert up.wrap(norm_after(keras.layers.Conv1D(4, 3)))[2].kind == "layernorm_over_a_map"
    sequence = norm_after(keras.layers.Embedding(10, 4))
    assert up.wrap(sequence)[2].kind == "layernorm"
    torch_sequence = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.LayerNorm([6, 4])).eval()
    tokens = np.random.default_rng(1).integers(0, 10, (2, 6))
    assert up.port(torch_sequence, sequence, check_input=tokens).max_abs_diff <= 1e-5


def test_a_subclassed_keras_layer_norm_over_three_axes_is_a_kind_of_its_own():
    """A subclassed model records no graph, so a LayerNormalization(axis=[1, 2])
    of three axes may follow a Conv1D (its scale laid out (L, C), torch's (C,
    L)) or a sequence ((T, C), as torch's). Before, it was read as a sequence:
    torch's Conv1d and LayerNorm([6, 6]) ported into it with only an eps
    difference said while the outputs differed by 4.7. Now it pairs only
    with Keras' own, and the refusal says why."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    class Block(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv1D(6, 3, padding="same")
            self.norm = keras.layers.LayerNormalization(axis=[1, 2])

        def call(self, x):
            return self.norm(self.conv(x))

    block = Block()
    block(np.zeros((1, 6, 3), "float32"))
    assert up.wrap(block)["norm"].kind == "layernorm_over_a_map"
    net = torch.nn.Sequential(torch.nn.Conv1d(3, 6, 3, padding=1), torch.nn.LayerNorm([6, 6]))
    with pytest.raises(
        up.PortError, match="layernorm_over_a_map \\(a Keras LayerNormalization.*records none"
    ):
        up.port(net, block)
    twin = Block()
    twin(np.zeros((1, 6, 3), "float32"))
    x = np.random.default_rng(0).standard_normal((2, 3, 6)).astype("float32")
    assert up.port(block, twin, check_input=x).max_abs_diff == 0.0  # Keras to Keras, as any layer


def test_a_keras_batch_norm_over_another_axis_than_the_channels_is_a_kind_of_its_own():
    """``BatchNormalization(axis=1)`` after a channels-last convolution keeps one
    mean per row of the map: before, torch's BatchNorm2d values went into it
    with nothing said while the outputs differed (by 5.2 here). After a
    channels-first convolution (the graph says so), axis 1 is the channels,
    and the layer is a BatchNorm as before."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    def keras_net(axis, data_format="channels_last"):
        shape = (6, 6, 3) if data_format == "channels_last" else (3, 6, 6)
        conv = keras.layers.Conv2D(4, 3, data_format=data_format)
        return keras.Sequential([keras.Input(shape), conv, keras.layers.BatchNormalization(axis=axis)])

    torch_net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    kinds = {axis: up.wrap(keras_net(axis))[1].kind for axis in (-1, 1, 2, 3)}
    assert kinds == {-1: "batchnorm", 1: "batchnorm_over_another_axis", 2: "batchnorm_over_another_axis",
                     3: "batchnorm"}  # fmt: skip
    assert up.wrap(keras_net(1, "channels_first"))[1].kind == "batchnorm"  # built, not run
    with pytest.raises(up.PortError, match="kinds batchnorm and batchnorm_over_another_axis"):
        up.port(torch_net, keras_net(1))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    assert up.port(torch_net, keras_net(-1), check_input=x, align="hyperparameters").max_abs_diff <= 1e-5


def test_a_subclassed_keras_batch_norm_is_read_by_the_convolution_before_it():
    """A subclassed model records no graph. Before, its ``BatchNormalization``
    was read in Keras' ``image_data_format()``: after a channels-first
    convolution, axis 1 (the channels) made it a kind of its own, and a port
    from torch's twin was refused. Now either axis may be the channels, and a
    port compares the norm's with the convolution's before it: axis 1 after a
    channels-last convolution (one mean per row) is a difference, which warns,
    and which a check input refuses."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    class Net(keras.Model):
        def __init__(self, data_format, axis):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3, data_format=data_format)
            self.norm = keras.layers.BatchNormalization(axis=axis)

        def build(self, shape):  # built, not run: TensorFlow runs no channels-first convolution on a CPU
            self.conv.build(shape)
            self.norm.build(self.conv.compute_output_shape(shape))

        def call(self, x):
            return self.norm(self.conv(x))

    def net(data_format, axis):
        built = Net(data_format, axis)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Keras on a build() of one's own
            built.build((1, 3, 6, 6) if data_format == "channels_first" else (1, 6, 6, 3))
        return built

    torch_net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    with torch.no_grad():  # statistics that tell one axis from another
        torch_net[1].running_mean.uniform_(-1, 1)
        torch_net[1].weight.uniform_(0.5, 1.5)
    first = net("channels_first", 1)
    assert up.wrap(first)["norm"].kind == "batchnorm"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no difference to warn of
        report = up.port(torch_net, first, align="hyperparameters")
    assert report.differences == [] and report.pairs[1] == ("1", "norm", "batchnorm")
    rows = net("channels_last", 1)
    with pytest.warns(
        UserWarning, match="normalised_axis the map's channels \\(torch\\) vs axis 1 of a channels-last"
    ):
        up.port(torch_net, rows, align="hyperparameters")
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    with pytest.raises(up.PortError, match="normalised_axis"):
        up.port(torch_net, rows, check_input=x, align="hyperparameters")


def test_file_shrunk_after_its_header_was_read_is_refused(backend, tmp_path, monkeypatch):
    """A file cut short between reading its header and its data: a clear error, the model unchanged."""
    from unified_params._core import safetensors_io as st

    model = specs.mlp().build(backend)
    up.initialize(model, up.init.Normal(), seed=2)
    path = tmp_path / "m.safetensors"
    up.save(specs.mlp().build(backend), path)
    real = st.read_header

    def header_then_truncate(file):
        found = real(file)
        with open(file, "r+b") as f:  # another program cuts the file short, now
            f.truncate(found[1][-1].end - 2)  # the last tensor loses its last bytes
        return found

    monkeypatch.setattr(st, "read_header", header_then_truncate)
    before = snapshot(model)
    with pytest.raises(up.CheckpointError, match="cut short"):
        up.load(model, path)
    assert_unchanged(before, model)


def test_loaded_arrays_are_copies_the_loader_owns(tmp_path):
    needs("torch")
    import torch

    from unified_params._core import checkpoint

    path = tmp_path / "m.safetensors"
    up.save(torch.nn.Linear(4, 2), path)
    state, _ = checkpoint.read_state(path)
    weight = state["weight"].read()
    first = float(weight[0, 0])
    weight[0, 0] = first + 1.0  # a private copy: the file is never written through
    assert float(checkpoint.read_state(path)[0]["weight"].read()[0, 0]) == first


def test_a_file_that_shrinks_under_a_memory_map_kills_the_process_our_reads_do_not(tmp_path):
    """Why checkpoints are read with ordinary I/O, not safetensors.safe_open (which maps
    the file): truncation under a mapping is SIGBUS, a short read is an error."""
    needs("torch")
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import os, sys, numpy as np
        from safetensors.numpy import save_file
        from safetensors import safe_open
        path = {str(tmp_path / "big.safetensors")!r}
        save_file({{"w": np.ones((1 << 20,), "float32")}}, path)
        if sys.argv[1] == "mapped":
            f = safe_open(path, "numpy")
            os.truncate(path, 4096)
            f.get_tensor("w").sum()
        else:
            import unified_params as up
            from unified_params._core import safetensors_io as st
            _, infos = st.read_header(path)
            os.truncate(path, 4096)
            try:
                st.FileReader(path).tensor(infos[0])
            except up.CheckpointError as err:
                print("refused:", "cut short" in str(err))
        """
    )
    mapped = subprocess.run([sys.executable, "-c", script, "mapped"], capture_output=True, timeout=120)
    ours = subprocess.run([sys.executable, "-c", script, "ours"], capture_output=True, text=True, timeout=120)
    assert mapped.returncode == -7  # SIGBUS
    assert ours.returncode == 0 and ours.stdout.strip() == "refused: True", ours.stderr[-2000:]


def test_a_file_read_from_many_threads_is_opened_once(tmp_path, monkeypatch):
    """Loads read tensors on all cores; they share one descriptor, opened once (a second
    open would replace the first, whose closing pulls the descriptor from under a read)."""
    import threading
    import time as _time

    from safetensors.numpy import save_file

    from unified_params._core import checkpoint
    from unified_params._core import safetensors_io as st

    save_file({f"t{i}": np.full((8, 8), i, "float32") for i in range(8)}, tmp_path / "m.safetensors")
    state, _ = checkpoint.read_state(tmp_path / "m.safetensors")
    opened = []

    def slow_open(*args, **kwargs):
        opened.append(args[0])
        _time.sleep(0.05)  # every thread arrives while the first is still opening
        return open(*args, **kwargs)

    monkeypatch.setattr(st, "open", slow_open, raising=False)
    barrier, out, errors = threading.Barrier(8), {}, []

    def read(i):
        try:
            barrier.wait()
            out[i] = state[f"t{i}"].read()
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(opened) == 1
    assert all((out[i] == i).all() for i in range(8))


def test_the_files_keras_writes_are_told_apart(tmp_path):
    """The same refusals for the files Keras 3 itself writes."""
    needs("keras")
    model = specs.mlp().build("keras")
    model.save(tmp_path / "model.keras")
    model.save_weights(tmp_path / "model.weights.h5")
    _load_fails("keras", tmp_path / "model.keras", ["a Keras model archive"])
    _load_fails("keras", tmp_path / "model.weights.h5", ["an HDF5 file"])


def test_a_torch_file_of_the_same_layers_at_other_positions_names_the_renaming_that_loads_it(tmp_path):
    """torch's ``Sequential(Linear, ReLU, Linear)`` keys its second Linear ``2``;
    Keras' ``Sequential([Dense(activation="relu"), Dense])`` keys it ``1``. The
    refusal pairs the keys in order by leaf and shape and gives the renaming;
    loaded so, the outputs agree. Before: missing and unexpected keys, nothing more."""
    needs("torch")
    needs("keras")
    import keras
    import torch
    from safetensors.numpy import load_file

    source = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    up.save(source, tmp_path / "t.safetensors")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)]
    )
    with pytest.raises(
        up.CheckpointError, match=r"\('2' as '1'\).*renamed = \{'2.weight': '1.weight', '2.bias': '1.bias'\}"
    ) as info:
        up.load(model, tmp_path / "t.safetensors")
    renamed = eval(re.search(r"renamed = (\{[^}]*\})", str(info.value)).group(1))  # the hint's own dict
    state = load_file(tmp_path / "t.safetensors")
    up.load_state_dict(model, {renamed.get(k, k): v for k, v in state.items()})
    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), source(torch.from_numpy(x)).detach().numpy(), atol=1e-6)
