"""``up.load(model, file, mapping=...)`` and ``up.load_state_dict(...,
mapping=...)``: a checkpoint's layers renamed to the model's, by exact paths
or rules, as a port pairs layers. A file of another framework's model loads
without that model; what the file's metadata says of its keys (tie groups,
leaves in a framework's own layout, Linears kept in a framework's order of a
flattened map) follows them to their new names; a mapping that gives two
keys one name is refused before anything is read."""

from __future__ import annotations

import re

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs, snapshot


@pytest.fixture
def _torch():
    needs("torch")


#: Llama's layer paths as the Keras Llama of tests/test_transformers.py names them.
_LLAMA_TO_KERAS = [
    (r"model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)", r"blocks.\1.\2"),
    (r"model\.layers\.(\d+)\.(\w+)", r"blocks.\1.\2"),
    (r"model\.(\w+)", r"\1"),
]


@pytest.mark.parametrize("shards", [1, 6])
def test_a_llama_checkpoint_saved_by_transformers_loads_into_a_keras_llama(tmp_path, shards):
    """Llama's own ``save_pretrained`` checkpoint (one file, or six shards
    and transformers' index), its layers renamed to a Llama written in
    Keras: the Keras model computes Llama's logits, with no port and no
    torch model beside it."""
    from tests.test_transformers import IDS, _keras_llama, _llama, _logits, _numpy

    llama = _llama()
    llama.save_pretrained(tmp_path, max_shard_size="20KB" if shards > 1 else "1GB")
    assert len(list(tmp_path.glob("model*.safetensors"))) == shards
    keras_llama = _keras_llama(epsilon=1e-5)
    assert np.abs(_numpy(keras_llama(IDS)) - _logits(llama)).max() > 1e-2
    with pytest.raises(up.CheckpointError, match="missing 'embed_tokens.weight'"):
        up.load(keras_llama, tmp_path / "model.safetensors")
    report = up.load(keras_llama, tmp_path / "model.safetensors", mapping=_LLAMA_TO_KERAS)
    assert report.ok and len(report.loaded) == len(up.wrap(keras_llama).params())
    np.testing.assert_allclose(_numpy(keras_llama(IDS)), _logits(llama), atol=1e-5)


def test_a_gpt2_checkpoint_saved_by_transformers_loads_into_a_keras_gpt_as_it_is_laid_out(tmp_path):
    """GPT-2's own file keeps its Conv1D weights ``(in, out)``, a Dense
    kernel's layout: with the rules that port GPT-2 into a GPT written in
    Keras and ``layout="native"``, the Keras model computes GPT-2's logits.
    Read as canonical, the file's (in, out) weights mismatch, and the square
    ones, whose shape cannot tell, are not loaded with what fits
    (``strict=False``): asked, not transposed silently."""
    from tests.test_transformers import _TO_FLAT, IDS, _gpt2, _keras_gpt, _logits, _numpy

    gpt2 = _gpt2()
    gpt2.save_pretrained(tmp_path)
    keras_gpt = _keras_gpt()
    file = tmp_path / "model.safetensors"
    asked = (
        r"mismatched 'h\.0\.c_attn\.weight' expects \(96, 32\).*layout='native' if they are in keras's own"
    )
    with pytest.raises(up.CheckpointError, match=asked):
        up.load(keras_gpt, file, mapping=_TO_FLAT)
    report = up.load(keras_gpt, file, mapping=_TO_FLAT, strict=False)
    assert [key for key, _ in report.ambiguous] == ["h.0.c_proj.weight", "h.1.c_proj.weight"]
    assert "h.0.c_proj.weight" not in report.loaded and "h.0.ln_1.weight" in report.loaded
    report = up.load(keras_gpt, file, mapping=_TO_FLAT, layout="native")
    assert report.ok
    np.testing.assert_allclose(_numpy(keras_gpt(IDS)), _logits(gpt2), atol=1e-5)
    np.testing.assert_array_equal(  # the file's (in, out) Conv1D weight, a Dense kernel as it is
        _numpy(keras_gpt.h[1].c_proj.kernel), gpt2.transformer.h[1].attn.c_proj.weight.detach().numpy()
    )


def test_the_hint_for_a_compiled_models_state_is_a_mapping_that_loads_it(tmp_path, _torch):
    """A torch.compile'd model's own state keeps its keys behind
    ``_orig_mod.``: the refusal names the mapping that loads it, and that
    mapping does (read from the message, as a user copies it)."""
    import safetensors.torch
    import torch

    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    safetensors.torch.save_file(torch.compile(source).state_dict(), tmp_path / "compiled.safetensors")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with pytest.raises(up.CheckpointError) as refused:
        up.load(model, tmp_path / "compiled.safetensors")
    said = re.search(r"mapping=(\[\(r'.*?', r'.*?'\)\])", str(refused.value))
    assert said, str(refused.value)
    report = up.load(model, tmp_path / "compiled.safetensors", mapping=eval(said.group(1)))
    assert report.ok and report.loaded == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = torch.randn(3, 4)
    torch.testing.assert_close(model(x), source(x), rtol=0, atol=0)


def test_exact_paths_rename_their_layers_and_none_leaves_a_layer_out(_torch):
    """A dict renames exactly the layers it names (the others keep their
    paths); a rule's ``None`` leaves a layer's keys out, listed in
    ``skipped``, so a strict load of the rest goes through."""
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    state = {
        "encoder.weight": np.full((8, 4), 1.0, "float32"), "encoder.bias": np.zeros(8, "float32"),
        "1.weight": np.full((2, 8), 2.0, "float32"), "1.bias": np.ones(2, "float32"),
    }  # fmt: skip
    report = up.load_state_dict(model, state, mapping={"encoder": "0"})
    assert report.loaded == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert model[0].weight[0, 0].item() == 1.0 and model[1].bias[0].item() == 1.0
    extra = {**state, "aux.head.weight": np.ones((3, 3), "float32")}
    with pytest.raises(up.CheckpointError, match="unexpected 'aux.head.weight'"):
        up.load_state_dict(model, extra, mapping={"encoder": "0"})
    report = up.load_state_dict(model, extra, mapping=[(r"encoder", "0"), (r"aux\..*", None)])
    assert report.ok and report.skipped == ["aux.head.weight"]


def test_a_mapping_that_gives_two_keys_one_name_is_refused_before_a_read(_torch):
    """Two layers renamed onto one would load one of them: refused, naming
    both, with the model unchanged; so is a rule that is no pair of strings."""
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    before = snapshot(model)
    state = {"a.weight": np.ones((2, 4), "float32"), "b.weight": np.zeros((2, 4), "float32")}
    with pytest.raises(up.CheckpointError, match=r"'a.weight' and 'b.weight' -> '0.weight'"):
        up.load_state_dict(model, state, mapping=[(r"a|b", "0")], strict=False)
    with pytest.raises(up.CheckpointError, match="rule 0 must be a"):
        up.load_state_dict(model, state, mapping=[("a",)], strict=False)
    after = snapshot(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_what_a_state_says_of_its_keys_follows_them_to_their_new_names(_torch):
    """A Keras CNN's state says its Linear takes the flattened map in Keras'
    (H, W, C) order: loaded under a prefix into a torch model, the Linear at
    its new path is refused as any such load is (before the mapping, it was
    said of a path the model does not have, and the weights went in
    silently wrong)."""
    needs("keras")
    import torch

    S = up.spec
    keras_cnn = S.Sequential(S.Conv2d(3, 4, 3), S.Flatten(), S.Linear(4 * 4 * 4, 2)).build("keras")
    state = up.state_dict(keras_cnn)
    assert state.flattened_naive == ["2"]
    torch_cnn = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(64, 2))
    )
    with pytest.raises(up.CheckpointError, match=r"Layer '0\.2' of the torch model takes a map"):
        up.load_state_dict(torch_cnn, state, mapping=[(r"(.*)", r"0.\1")])


def test_a_file_s_tie_groups_follow_its_renamed_keys(tmp_path, _torch):
    """A file keeps a tie group once, its other paths in its metadata: under
    a mapping, a model whose two layers are not tied gets the value at both."""
    import torch

    tied = torch.nn.Sequential(
        torch.nn.Linear(4, 4, bias=False), torch.nn.ReLU(), torch.nn.Linear(4, 4, bias=False)
    )
    tied[2].weight = tied[0].weight
    up.save(tied, tmp_path / "tied.safetensors")
    apart = torch.nn.Module()
    apart.first, apart.last = torch.nn.Linear(4, 4, bias=False), torch.nn.Linear(4, 4, bias=False)
    report = up.load(apart, tmp_path / "tied.safetensors", mapping={"0": "first", "2": "last"})
    assert report.ok
    torch.testing.assert_close(apart.first.weight, tied[0].weight, rtol=0, atol=0)
    torch.testing.assert_close(apart.last.weight, tied[0].weight, rtol=0, atol=0)


#: The Keras Llama's layer paths as transformers' Llama names them: `_LLAMA_TO_KERAS` the other way.
_KERAS_TO_LLAMA = [
    (r"blocks\.(\d+)\.([qkvo]_proj)", r"model.layers.\1.self_attn.\2"),
    (r"blocks\.(\d+)\.(gate_proj|up_proj|down_proj)", r"model.layers.\1.mlp.\2"),
    (r"blocks\.(\d+)\.(\w+)", r"model.layers.\1.\2"),
    (r"embed_tokens|norm", r"model.\g<0>"),
]


@pytest.mark.parametrize("sharded", [False, True])
def test_a_keras_llama_saves_a_checkpoint_that_transformers_loads(tmp_path, sharded):
    """The Keras Llama saved under transformers' names (``mapping``), one
    file or shards with their index, beside the Llama's ``config.json``:
    ``LlamaForCausalLM.from_pretrained`` loads it, every weight found, and
    computes the Keras model's logits. A layer left out (``None``) is not
    written."""
    import transformers

    from tests.test_transformers import IDS, _keras_llama, _llama, _logits, _numpy

    keras_llama = _keras_llama(epsilon=1e-5)
    up.initialize(keras_llama, up.init.Normal(0.0, 0.2), where="*.weight", seed=3)
    _llama().config.save_pretrained(tmp_path)
    written = up.save(
        keras_llama, tmp_path / "model.safetensors", mapping=_KERAS_TO_LLAMA,
        max_shard_size="30KB" if sharded else None,
    )  # fmt: skip
    assert (written[-1].name, len(written) > 2) == (
        ("model.safetensors.index.json", True) if sharded else ("model.safetensors", False)
    )
    llama, info = transformers.LlamaForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    np.testing.assert_allclose(_logits(llama.eval()), _numpy(keras_llama(IDS)), atol=1e-5)
    up.save(
        keras_llama, tmp_path / "part.safetensors", mapping=[*_KERAS_TO_LLAMA[:-1], (r"embed_tokens", None)]
    )
    from safetensors import safe_open

    with safe_open(tmp_path / "part.safetensors", "np") as f:
        keys = set(f.keys())
    assert "model.layers.0.self_attn.q_proj.weight" in keys and "lm_head.weight" in keys
    assert not any("embed_tokens" in k for k in keys) and "norm.weight" in keys
