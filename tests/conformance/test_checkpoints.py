"""safetensors checkpoints: canonical, readable by plain torch, sharded, atomic, typed."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

import unified_params as up
from tests import memory
from tests.conformance import specs
from tests.conftest import needs
from tests.native import for_backend, naive_flatten
from unified_params import spec as S

UNTIED = [n for n in sorted(specs.EXPECTED) if n != "shared"]


@pytest.mark.parametrize("name", UNTIED)
def test_file_from_any_backend_loads_into_plain_torch(backend, name, tmp_path):
    needs("torch")
    import safetensors.torch

    if specs.refused(backend, specs.BUILDERS[name]()):
        return
    model = specs.BUILDERS[name]().build(backend)
    up.initialize(model, up.init.Normal(0, 0.2), seed=2)
    path = tmp_path / f"{name}.safetensors"
    assert up.save(model, path) == [path]
    torch_model = specs.BUILDERS[name]().build("torch")
    state = safetensors.torch.load_file(path)
    for key, value in torch_model.state_dict().items():
        if key.endswith("num_batches_tracked"):  # a torch-only counter, not in other frameworks' files
            state.setdefault(key, value)
    torch_model.load_state_dict(state, strict=True)
    ours = up.state_dict(model)
    for key, value in up.state_dict(torch_model).items():
        if key in ours:
            assert value.tobytes() == ours[key].tobytes(), key


@pytest.mark.parametrize("name", UNTIED)
def test_state_dict_arrays_are_c_contiguous_as_torch_s_tensors(backend, name, tmp_path):
    """A reader of raw buffers reads them right: safetensors.numpy 0.8 writes an
    array's memory as it lies, so a transposed copy (paddle's and Keras' Linear
    weights, before) was written transposed with nothing said."""
    import safetensors.numpy

    if specs.refused(backend, specs.BUILDERS[name]()):
        return
    model = specs.BUILDERS[name]().build(backend)
    up.initialize(model, up.init.Normal(0, 0.2), seed=2)
    state = up.state_dict(model)
    assert all(v.flags.c_contiguous for v in state.values())
    path = tmp_path / f"{name}.safetensors"
    safetensors.numpy.save_file(dict(state), str(path))
    assert all(np.array_equal(v, state[k]) for k, v in safetensors.numpy.load_file(str(path)).items())


def test_tied_file_loads_with_safetensors_load_model(backend, tmp_path):
    needs("torch")
    import safetensors.torch

    model = specs.shared().build(backend)
    up.initialize(model, up.init.Normal(), seed=3)
    path = tmp_path / "shared.safetensors"
    up.save(model, path)
    torch_model = specs.shared().build("torch")
    missing, unexpected = safetensors.torch.load_model(torch_model, path, strict=True)
    assert not missing and not unexpected  # safetensors' own tie handling
    np.testing.assert_array_equal(torch_model[4].weight.detach().numpy(), up.state_dict(model)["2.weight"])


def test_metadata_describes_the_file(backend, tmp_path):
    from safetensors import safe_open

    model = specs.shared().build(backend)
    path = tmp_path / "m.safetensors"
    up.save(model, path)
    with safe_open(path, "np") as f:
        meta = f.metadata()
        keys = list(f.keys())
    # "pt": PyTorch's names and layout, what Hugging Face's loaders require of a torch checkpoint.
    assert meta["format"] == "pt" and meta["writer"] == "unified-params" and meta["format_version"] == "1"
    assert meta["source_backend"] == backend and meta["library_version"] == up.__version__
    assert json.loads(meta["aliases"]) == {"4.weight": "2.weight", "4.bias": "2.bias"}
    assert json.loads(meta["layer_kinds"]) == {"0": "linear", "2": "linear", "6": "linear"}
    assert sorted(keys) == sorted(["0.weight", "0.bias", "2.weight", "2.bias", "6.weight", "6.bias"])


def test_save_load_round_trip_across_backends(backends, tmp_path):
    source = specs.cnn().build(backends[0])
    up.initialize(source, up.init.Normal(0, 0.2), seed=8)
    up.wrap(source)["1.running_var"].set(np.full(4, 1.5, "float32"))
    path = tmp_path / "cnn.safetensors"
    up.save(source, path)
    for backend in backends:
        dst = specs.cnn().build(backend)
        report = up.load(dst, path)
        assert report.ok and "0.weight" in report.loaded
        for key, value in up.state_dict(dst).items():
            if key.endswith("num_batches_tracked"):
                continue
            assert value.tobytes() == up.state_dict(source)[key].tobytes(), (backend, key)


def test_tied_file_loads_into_an_untied_model_through_aliases(backends, tmp_path):
    from tests.conformance.test_tying import untied

    source = specs.shared().build(backends[0])
    up.initialize(source, up.init.Normal(), seed=5)
    up.save(source, tmp_path / "s.safetensors")
    for backend in backends:
        dst = untied().build(backend)
        report = up.load(dst, tmp_path / "s.safetensors")
        assert report.ok
        m = up.wrap(dst)
        np.testing.assert_array_equal(m["4.weight"].numpy(), m["2.weight"].numpy())


def _tied_lm():
    """A language model's ends: an embedding and an output Linear of the same
    (vocabulary, width) matrix, tied in torch as its language models tie them."""
    return S.Sequential(S.Embedding(10, 4), S.Linear(4, 4), S.Linear(4, 10, bias=False))


@pytest.mark.parametrize("writer", ["safetensors.torch.save_model", "up.save"])
def test_a_torch_file_of_a_tied_embedding_and_head_loads_both_into_an_untied_model(backend, writer, tmp_path):
    """Each writer stores the tied matrix once and says where else it goes:
    safetensors' ``save_model`` as a metadata entry per dropped tensor
    (``{"2.weight": "0.weight"}``), this library in its ``aliases`` field. An
    untied model takes the value at both paths, each in its own layout (before:
    ``save_model``'s file was missing ``2.weight``; this library's file was
    refused by Keras as of unknown layout, the embedding's matrix being square
    to the Dense kernel's shape)."""
    needs("torch")
    import safetensors.torch
    import torch

    source = _tied_lm().build("torch")
    source[2].weight = source[0].weight
    torch.manual_seed(0)
    torch.nn.init.normal_(source[0].weight)
    path = tmp_path / "lm.safetensors"
    if writer == "up.save":
        up.save(source, path)
    else:
        safetensors.torch.save_model(source, str(path))
    assert "2.weight" not in safetensors.torch.load_file(path)  # stored once
    dst = _tied_lm().build(backend)
    report = up.load(dst, path)
    assert report.ok and {"0.weight", "2.weight"} <= set(report.loaded)
    m = up.wrap(dst)
    np.testing.assert_array_equal(m["2.weight"].numpy(), source[0].weight.detach().numpy())
    tokens = np.array([[1, 2, 3], [9, 0, 4]])
    expected = source(torch.from_numpy(tokens)).detach().numpy()
    np.testing.assert_allclose(up.forward(dst, tokens), expected, rtol=1e-5, atol=1e-6)


def test_a_sharded_torch_checkpoint_of_huggingface_hub_loads_with_its_dropped_duplicates(backend, tmp_path):
    """``huggingface_hub.save_torch_model`` shards a tied model and says in its
    index's metadata which tensors it dropped as duplicates; a load of the
    index fills them (before: 'missing'), and a load of the folder names it."""
    needs("torch")
    import torch
    from huggingface_hub import save_torch_model

    source = _tied_lm().build("torch")
    source[2].weight = source[0].weight
    save_torch_model(source, tmp_path, max_shard_size=100)  # a shard per tensor
    index = tmp_path / "model.safetensors.index.json"
    assert json.loads(index.read_text())["metadata"]["2.weight"] == "0.weight"
    assert len(list(tmp_path.glob("*.safetensors"))) > 1
    dst = _tied_lm().build(backend)
    with pytest.raises(up.CheckpointError, match=r"is a folder\. It holds 'model\.safetensors\.index\.json'"):
        up.load(dst, tmp_path)
    for path in (index, tmp_path / "model.safetensors"):  # the index, or its base name
        report = up.load(dst, path)
        assert report.ok and "2.weight" in report.loaded
    tokens = np.array([[1, 2, 3]])
    expected = source(torch.from_numpy(tokens)).detach().numpy()
    np.testing.assert_allclose(up.forward(dst, tokens), expected, rtol=1e-5, atol=1e-6)


def test_a_state_whose_keys_differ_by_a_prefix_is_refused_saying_which_and_how_to_load_it(backend, tmp_path):
    """torch.compile's state keys every tensor behind ``_orig_mod.``: the refusal
    says so, and what it suggests loads; a state of one part of the model
    (keys without the part's path) is pointed at that part."""
    needs("torch")
    import safetensors.torch
    import torch

    compiled = torch.compile(specs.mlp().build("torch"))
    path = tmp_path / "compiled.safetensors"
    safetensors.torch.save_file(compiled.state_dict(), str(path))
    dst = specs.mlp().build(backend)
    with pytest.raises(up.CheckpointError, match=r"each missing key is in the state behind '_orig_mod\.'"):
        up.load(dst, path)
    import safetensors.numpy

    state = safetensors.numpy.load_file(str(path))
    assert up.load_state_dict(dst, {k[10:]: v for k, v in state.items() if k.startswith("_orig_mod.")}).ok
    np.testing.assert_array_equal(up.wrap(dst)["2.bias"].numpy(), compiled.state_dict()["_orig_mod.2.bias"])

    nested = specs.nested().build(backend)
    part = up.state_dict(specs.nested().build(backend))
    part = {k.removeprefix("0."): v for k, v in part.items() if k.startswith("0.")}
    with pytest.raises(
        up.CheckpointError, match=r"the state is of the part at '0'.*up\.wrap\(model\)\['0'\]"
    ):
        up.load_state_dict(nested, part)
    assert up.load_state_dict(up.wrap(nested)["0"], part).ok


def test_sharded_checkpoint(backend, tmp_path):
    model = specs.nested().build(backend)
    up.initialize(model, up.init.Normal(), seed=6)
    files = up.save(model, tmp_path / "model.safetensors", max_shard_size=400)
    index = files[-1]
    assert index.name == "model.safetensors.index.json" and len(files) > 3
    # Shard names carry the save's id, so a new save never overwrites the files an index names.
    assert re.fullmatch(rf"model-\d+x[0-9a-f]{{8}}-00001-of-{len(files) - 1:05d}\.safetensors", files[0].name)
    content = json.loads(index.read_text())
    assert set(content["weight_map"]) == set(up.state_dict(model))
    assert content["metadata"]["total_size"] == sum(v.nbytes for v in up.state_dict(model).values())
    for target in (index, tmp_path / "model.safetensors"):  # the index, or the base name
        fresh = specs.nested().build(backend)
        assert up.load(fresh, target).ok
        for key, value in up.state_dict(fresh).items():
            np.testing.assert_array_equal(value, up.state_dict(model)[key])
    with pytest.raises(up.CheckpointError, match="max_shard_size"):
        up.save(model, tmp_path / "x.safetensors", max_shard_size="lots")
    assert len(up.save(model, tmp_path / "y.safetensors", max_shard_size="1KB")) >= 2


def test_huggingface_hub_loads_a_file_of_any_backend_into_the_torch_model(backend, tmp_path):
    """``huggingface_hub.load_torch_model`` (as transformers' loaders) refuses a
    safetensors file whose ``format`` is not ``"pt"``: the library's files,
    single or sharded, say ``"pt"`` (before: ``"unified-params"``, refused)."""
    needs("torch")
    from huggingface_hub import load_torch_model

    model = specs.cnn().build(backend)
    up.initialize(model, up.init.Normal(0, 0.2), seed=6)
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    single.mkdir(), sharded.mkdir()
    up.save(model, single / "model.safetensors")
    up.save(model, sharded / "model.safetensors", max_shard_size=200)
    assert len(list(sharded.glob("*.safetensors"))) > 1
    for folder in (single, sharded):
        torch_model = specs.cnn().build("torch")
        missing, unexpected = load_torch_model(torch_model, folder, strict=False)
        assert not unexpected and set(missing) <= {"1.num_batches_tracked"}
        for key, value in up.state_dict(torch_model).items():
            if not key.endswith("num_batches_tracked"):
                assert value.tobytes() == up.state_dict(model)[key].tobytes(), (folder.name, key)


def test_a_file_of_an_earlier_version_still_reads_as_canonical(backend, tmp_path):
    """Files written before said ``"format": "unified-params"``: still this
    library's canonical files, a square Linear weight read as such, where a
    file of another writer (``"np"``) is refused until the layout is said."""
    from safetensors.numpy import save_file

    model = specs.BUILDERS["shared"]().build(backend)
    up.initialize(model, up.init.Normal(), seed=8)
    state = dict(up.state_dict(model))
    save_file(
        state, tmp_path / "old.safetensors", metadata={"format": "unified-params", "format_version": "1"}
    )
    fresh = specs.BUILDERS["shared"]().build(backend)
    assert up.load(fresh, tmp_path / "old.safetensors").ok
    assert all(np.array_equal(v, state[k]) for k, v in up.state_dict(fresh).items())


def test_our_reader_reads_the_safetensors_library(backend, tmp_path):
    from safetensors.numpy import save_file

    model = specs.mlp().build(backend)
    state = {k: np.full(v.shape, 0.25, v.dtype) for k, v in up.state_dict(model).items()}
    save_file(state, tmp_path / "lib.safetensors")
    assert up.load(model, tmp_path / "lib.safetensors").ok
    assert (up.wrap(model)["2.weight"].numpy() == 0.25).all()


def test_save_replaces_atomically_and_cleans_up(backend, tmp_path, monkeypatch):
    model = specs.mlp().build(backend)
    path = tmp_path / "m.safetensors"
    up.save(model, path)
    before = path.read_bytes()
    up.initialize(model, up.init.Ones())

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(up.CheckpointError, match="No space left"):
        up.save(model, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    up.save(model, path)
    assert path.read_bytes() != before


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_round_trips_bitwise(backends, dtype, tmp_path):
    import ml_dtypes  # noqa: F401  (numpy's bfloat16)

    source = for_backend(backends[0]).typed(dtype)
    up.initialize(source, up.init.Normal(), seed=1)
    state = up.state_dict(source)
    assert state["0.weight"].dtype.name == dtype
    up.save(source, tmp_path / "h.safetensors")
    for backend in backends:
        for how in ("file", "port"):
            dst = for_backend(backend).typed(dtype)
            if how == "file":
                up.load(dst, tmp_path / "h.safetensors")
            else:
                up.port(source, dst)
            got = up.state_dict(dst)
            assert got["0.weight"].dtype.name == dtype
            assert got["0.weight"].tobytes() == state["0.weight"].tobytes(), (backend, how)


def test_float32_values_load_into_half_precision(backend, native):
    dst = native.typed("float16")
    state = {"0.weight": np.full((3, 4), 0.5, "float32"), "0.bias": np.zeros(3, "float64")}
    assert up.load_state_dict(dst, state).ok
    assert up.state_dict(dst)["0.weight"].dtype == np.float16


def test_integer_buffer_survives_a_round_trip(tmp_path):
    needs("torch")
    import torch

    model = specs.cnn().build("torch")
    model.train()
    model(torch.ones(2, 3, 6, 7))
    model(torch.ones(2, 3, 6, 7))
    up.save(model, tmp_path / "bn.safetensors")
    fresh = specs.cnn().build("torch")
    up.load(fresh, tmp_path / "bn.safetensors")
    assert int(fresh[1].num_batches_tracked) == 2 and fresh[1].num_batches_tracked.dtype == torch.int64


def test_large_writes_copy_the_value_and_keep_the_model_usable(backend):
    """Large tensors take each framework's fast write path (DLPack for Keras), and
    the caller's array, changed right after a write (whole or slice), leaves the
    model's values alone (on JAX a conversion may share an aligned array's memory,
    or read it after the call returns)."""
    model = S.Sequential(S.Linear(1024, 512)).build(backend)
    p = up.wrap(model)["0.weight"]
    value = np.random.default_rng(0).standard_normal((512, 1024)).astype("float32")
    p.set(value, layout="canonical")
    value[:] = 0  # the model holds its own copy
    x = np.random.default_rng(1).standard_normal((2, 1024)).astype("float32")
    from tests.frameworks import forward

    expected = x @ p.numpy("canonical").T + up.wrap(model)["0.bias"].numpy()
    np.testing.assert_allclose(forward(backend, model, x), expected, rtol=1e-4, atol=1e-4)
    assert np.abs(p.numpy()).sum() > 0
    # Native-layout values, 64-byte aligned (copied by the framework on Keras-on-TF)
    # or not (copied into aligned memory first): the model keeps its own copy of each.
    from unified_params._core.layouts import aligned_empty

    for offset in (0, 1):
        raw = aligned_empty((p.size + 1,), np.float32)
        native = raw[offset : offset + p.size].reshape(p.native_shape)
        native[...] = np.arange(p.size, dtype=np.float32).reshape(p.native_shape) + offset
        p.set(native, layout="native")
        native[...] = -1
        assert np.array_equal(p.numpy(layout="native").ravel(), np.arange(p.size) + offset)
        rows = raw[offset : offset + 256 * p.shape[1]].reshape(256, p.shape[1])
        rows[...] = 7 + offset
        p[:256] = rows  # a slice write copies too
        rows[...] = -1
        assert (p.numpy()[:256] == 7 + offset).all() and (p.numpy()[256:] != 7 + offset).all()


def test_a_load_holds_no_copy_of_the_checkpoint(backend, backends):
    """Every value is checked as it streams through a small buffer, then read
    again when it is written: straight into the parameter's memory where the
    framework lends it, else into memory the value before let go (a Keras
    variable keeps the array it is handed; a paddle kernel is transposed into
    the parameter's memory). So a load holds at most about one tensor more at a
    time, not the checkpoint (tracemalloc sees the library's numpy buffers; it
    traces in a process of its own, see `tests.memory`)."""
    held, same = memory.result(_load_peaks, backends)[backend]
    assert held < 2 * (4 << 20) + (1 << 20), held  # the largest tensor is 4 MiB; the model 16
    assert same


@memory.measured
def _load_peaks(backends: list[str]) -> dict[str, tuple[int, bool]]:
    """Per backend: what a load of a 4 x 4 MiB model held at its peak beyond what
    it left in place (arrays a framework keeps as its memory), and whether it
    loaded the values."""
    spec = S.Sequential(*[S.Linear(1024, 1024, bias=False) for _ in range(4)])  # 4 x 4 MiB
    out = {}
    for backend in backends:
        source, model = spec.build(backend), spec.build(backend)
        up.initialize(source, up.init.Normal(), seed=4)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "m.safetensors"
            up.save(source, path)
            up.load(
                model, path
            )  # warm: a framework that keeps the arrays it is handed now holds the library's
            up.initialize(model, up.init.Zeros())
            heap = memory.traced(lambda m=model, p=path: up.load(m, p))
        state = up.state_dict(model)
        same = heap.value.ok and all(
            state[k].tobytes() == v.tobytes() for k, v in up.state_dict(source).items()
        )
        out[backend] = (heap.peak - heap.kept, same)
    return out


def test_a_flattened_map_loads_only_from_a_file_that_orders_it_alike(backends, tmp_path):
    """A file records which Linears its writer kept in its framework's own (H, W, C)
    order (a flatten no graph records): conv -> Flatten -> Linear weights load bitwise
    between models that order them alike (torch's order: every channels-first model and
    every one whose framework records its Flatten), and are refused, the destination
    untouched, between the others."""
    from tests.conftest import assert_unchanged, snapshot

    spatial = S.Sequential(S.Conv2d(3, 4, 3), S.ReLU(), S.Flatten(), S.Linear(64, 2))
    for a in backends:
        source = spatial.build(a, input_shape=(3, 6, 6))
        up.initialize(source, up.init.Normal(0, 0.3), seed=1)
        path = tmp_path / f"{a}.safetensors"
        up.save(source, path)
        for b in backends:
            dst = spatial.build(b, input_shape=(3, 6, 6))
            if naive_flatten(a) == naive_flatten(b):
                assert up.load(dst, path).ok
                assert up.state_dict(dst)["3.weight"].tobytes() == up.state_dict(source)["3.weight"].tobytes()
            else:
                before = snapshot(dst)
                with pytest.raises(up.CheckpointError, match=r"4 channels at 16 positions"):
                    up.load(dst, path)
                assert_unchanged(before, dst)


def test_a_file_that_names_no_writer_is_read_as_torch_laid_out(backend, tmp_path):
    """A plain safetensors file (no metadata: torch's own save) holds torch's (C, H, W)
    order: a model that keeps a flattened map's Linear in (H, W, C) order refuses it;
    every other loads it."""
    import safetensors.numpy

    spatial = S.Sequential(S.Conv2d(3, 4, 3), S.ReLU(), S.Flatten(), S.Linear(64, 2))
    model = spatial.build(backend, input_shape=(3, 6, 6))
    path = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in up.state_dict(model).items()}, path)
    if naive_flatten(backend):
        with pytest.raises(up.CheckpointError, match=r"written by torch\) in \(C, H, W\) order"):
            up.load(model, path)
    else:
        assert up.load(model, path).ok
