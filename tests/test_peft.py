"""peft's LoRA layers (torch) in ports: each adapter's update merged out of a
peft model into any backend, reset in a peft model ported into, and the
forms the library does not merge refused with what to do. Each expected
weight is peft's own: ``merge_and_unload()`` of a copy of the model."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from tests.zoo.models import import_torchvision
from unified_params import spec as S

RNG = np.random.default_rng(0)
X = RNG.standard_normal((5, 4)).astype("float32")


def _peft():
    needs("torch")
    import_torchvision()  # transformers, which peft imports, imports it
    import peft

    return peft


def _mlp():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _with_lora(net, targets=("0", "2"), name="default", **settings):
    """``net`` with a LoRA adapter on ``targets``, its factors random
    (``init_lora_weights=False``), as after fine-tuning."""
    peft = _peft()
    config = peft.LoraConfig(
        r=2, lora_alpha=4, target_modules=list(targets), init_lora_weights=False, **settings
    )
    if isinstance(net, peft.PeftModel):
        net.add_adapter(name, config)
        return net
    return peft.get_peft_model(net, config)


def _merged_weights(model) -> list[np.ndarray]:
    """The weights peft's own merge gives, in order."""
    merged = copy.deepcopy(model).merge_and_unload()
    return [p.detach().numpy() for p in merged.parameters()]


def _weights(model) -> list[np.ndarray]:
    return [p.numpy() for p in up.wrap(model).params().values()]


def test_a_peft_model_ports_into_every_backend_with_its_updates_merged(backend):
    """A peft model's layer adds ``scaling * lora_B @ lora_A`` to its weight:
    the destination gets the weights peft's ``merge_and_unload`` gives, and
    computes the peft model's outputs. Before: refused, its factors counted
    as layers."""
    source = _with_lora(_mlp())
    dst = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build(backend)
    report = up.port(source, dst, check_input=X)
    assert report.max_abs_diff <= 1e-5
    assert report.pairs[0][:2] == ("base_model.model.0.base_layer", "0")
    assert report.notes[0].startswith("LoRA merged: the source's layers 'base_model.model.0.base_layer'")
    for got, want in zip(_weights(dst), _merged_weights(source), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_a_peft_model_ported_into_gets_the_weights_and_its_updates_reset(backend):
    """Into a peft model, each base layer gets the source's weights and
    ``lora_B`` zeros (the factor peft starts at zero), ``lora_A`` kept: it
    computes the source's outputs and its adapter trains on from zero."""
    source = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build(backend)
    dst = _with_lora(_mlp())
    kept = dst.base_model.model[0].lora_A["default"].weight.detach().clone()
    report = up.port(source, dst, check_input=X)
    assert report.max_abs_diff <= 1e-5 and report.notes[-1].startswith("LoRA reset")
    layer = dst.base_model.model[0]
    assert not layer.lora_B["default"].weight.detach().numpy().any()
    np.testing.assert_array_equal(layer.lora_A["default"].weight.detach().numpy(), kept.numpy())
    np.testing.assert_array_equal(layer.base_layer.weight.detach().numpy(), _weights(source)[0])


def test_a_keras_lora_ports_into_a_peft_lora_merged_and_reset():
    """Both sides with an update: the source's merged, the destination's reset."""
    needs("keras")
    source = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build("keras")
    source.layers[0].enable_lora(2)
    source.layers[0].lora_kernel_b.assign(RNG.standard_normal((2, 8)).astype("float32"))
    dst = _with_lora(_mlp())
    report = up.port(source, dst, check_input=X)
    assert report.max_abs_diff <= 1e-5
    assert [note[:11] for note in report.notes] == ["LoRA merged", "LoRA reset:"]


def test_a_peft_embedding_and_convolutions_port_with_their_updates_merged():
    """peft's Embedding adds the transpose of ``lora_embedding_B @
    lora_embedding_A`` (its ``(dim, rank)`` and ``(rank, num)`` factors); a
    convolution's ``lora_B`` is pointwise, ``lora_A`` the kernel's size."""
    import torch

    torch.manual_seed(0)
    embedding = _with_lora(torch.nn.Sequential(torch.nn.Embedding(10, 6), torch.nn.Linear(6, 3)), ["0"])
    dst = S.Sequential(S.Embedding(10, 6), S.Linear(6, 3)).build("torch")
    report = up.port(embedding, dst, check_input=np.array([[1, 2, 3], [4, 5, 9]]))
    assert report.max_abs_diff <= 1e-5
    for got, want in zip(_weights(dst), _merged_weights(embedding), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    back = _with_lora(torch.nn.Sequential(torch.nn.Embedding(10, 6), torch.nn.Linear(6, 3)), ["0"])
    kept = back.base_model.model[0].lora_embedding_B["default"].detach().clone()
    report = up.port(
        dst, back, check_input=np.array([[1, 2, 3], [4, 5, 9]])
    )  # reset: A zero, as peft starts it
    assert report.max_abs_diff <= 1e-5 and report.notes[0].startswith("LoRA reset")
    assert not back.base_model.model[0].lora_embedding_A["default"].detach().numpy().any()
    torch.testing.assert_close(
        back.base_model.model[0].lora_embedding_B["default"].detach(), kept, rtol=0, atol=0
    )
    conv = _with_lora(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()), ["0"])
    dst = S.Sequential(S.Conv2d(3, 4, 3, padding=1), S.ReLU()).build("torch")
    report = up.port(conv, dst, check_input=RNG.standard_normal((2, 3, 8, 8)).astype("float32"))
    assert report.max_abs_diff <= 1e-5
    for got, want in zip(_weights(dst), _merged_weights(conv), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.filterwarnings("ignore:All adapters are already merged")
@pytest.mark.parametrize("state", ["both active", "one active", "disabled", "merged"])
def test_only_the_updates_a_peft_model_adds_now_are_merged(state):
    """Of two adapters, the active ones add their updates; a disabled model
    adds none; one merged into the weight by ``merge_adapter`` is in it
    already. The destination computes what the peft model does in each."""
    model = _with_lora(_with_lora(_mlp()), name="second")
    dst = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build("torch")
    base = [p.detach().numpy().copy() for n, p in model.named_parameters() if ".base_layer." in n]
    if state == "both active":
        model.base_model.set_adapter(["default", "second"])
    elif state == "merged":
        model.merge_adapter()
    if state == "disabled":
        with model.disable_adapter():
            report = up.port(model, dst, check_input=X)
        want = base
    else:
        report = up.port(model, dst, check_input=X)
        want = _merged_weights(model)  # its active adapters merged, as peft merges them
    assert report.max_abs_diff <= 1e-5
    assert (state in ("disabled", "merged")) == (not report.notes)  # nothing merged by the port, nothing said
    for got, expected in zip(_weights(dst), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    if state == "both active":  # each adapter's update counted: not the base, not one alone
        assert not np.allclose(_weights(dst)[0], base[0])


@pytest.mark.parametrize("form", ["AdaLoRA", "DoRA, its norms cached", "merged, then disabled"])
def test_a_form_of_lora_the_library_does_not_merge_is_refused_with_what_to_do(form, monkeypatch):
    """AdaLoRA's SVD form keeps singular values between its factors; DoRA
    with peft's norm cache on keeps norms a write would leave stale; a
    disabled layer with an adapter merged takes it out of the weight on its
    next call. None is read as a low-rank update: the factors are left over
    as layers, and the refusal says so, names peft's own merge and offers no
    skip, which would drop the update (before, AdaLoRA's listed its factors
    to skip); after the merge the port goes through."""
    peft = _peft()
    if form == "AdaLoRA":
        source = peft.get_peft_model(
            _mlp(), peft.AdaLoraConfig(init_r=2, target_modules=["0"], total_step=10)
        )
    elif form.startswith("DoRA"):
        source = _with_dora(_mlp())
        monkeypatch.setattr("peft.tuners.lora.dora.ENABLE_DORA_CACHING", True)
    else:
        source = _with_lora(_mlp())
        source.merge_adapter()
    dst = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build("torch")
    if form.startswith("merged"):  # its weights hold the update until its next call takes it out
        with source.disable_adapter():
            with pytest.raises(up.PortError, match=r"lora_B.*model\.unmerge_adapter\(\)"):
                up.port(source, dst, check_input=X)
            source.unmerge_adapter()  # as the hint says: then the base layers alone run
            report = up.port(source, dst, check_input=X)
        assert report.max_abs_diff <= 1e-6 and not report.notes
        return
    with pytest.raises(up.PortError, match=r"lora_B.*model\.merge_and_unload\(\)") as refused:
        up.port(source, dst, check_input=X)
    assert "skip=" not in str(refused.value)
    report = up.port(source.merge_and_unload(), dst, check_input=X)
    assert report.max_abs_diff <= 1e-5


def _with_dora(net, targets=("0", "2"), name="default", **settings):
    """``net`` with a DoRA adapter on ``targets``: random factors and a
    magnitude moved off its start (the weight's norms), as after fine-tuning."""
    import torch

    model = _with_lora(net, targets, name, use_dora=True, **settings)
    with torch.no_grad():
        for module in model.modules():
            if name in getattr(module, "lora_magnitude_vector", {}):
                magnitude = module.lora_magnitude_vector[name].weight
                magnitude.mul_(torch.rand(magnitude.shape) + 0.5)
    return model


def _plain_merge(layer, name="default") -> np.ndarray:
    """A Linear LoRA layer's weight with its update added, no magnitude."""
    product = layer.lora_B[name].weight @ layer.lora_A[name].weight
    return (layer.base_layer.weight + layer.scaling[name] * product).detach().numpy()


def test_a_peft_dora_model_ports_into_every_backend_as_it_computes(backend):
    """DoRA scales each output row of ``W + scaling * lora_B @ lora_A`` by its
    magnitude over that row's norm: the destination gets the weights peft's
    ``merge_and_unload`` gives, not the plain LoRA sum. Before: refused."""
    source = _with_dora(_mlp())
    dst = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build(backend)
    report = up.port(source, dst, check_input=X)
    assert report.max_abs_diff <= 1e-5
    assert "a DoRA update's rows then scaled by its magnitude" in report.notes[0]
    got = _weights(dst)
    for got_one, want in zip(got, _merged_weights(source), strict=True):
        np.testing.assert_allclose(got_one, want, rtol=1e-5, atol=1e-6)
    plain = _plain_merge(source.base_model.model[0])
    assert np.abs(got[0] - plain).max() > 1e-2  # the magnitude counted


def test_several_dora_and_lora_adapters_merge_in_the_order_they_run():
    """Each active DoRA adapter scales what the layer computes with so far:
    the order of ``active_adapters`` counts. Two DoRA adapters and a plain one,
    in two orders: each port computes its model's outputs and gets peft's
    merge; the two orders give other weights."""
    weights = []
    for order in (["second", "plain", "default"], ["default", "second", "plain"]):
        model = _with_dora(_with_dora(_mlp()), name="second")
        _with_lora(model, name="plain")
        model.base_model.set_adapter(order)
        dst = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build("torch")
        report = up.port(model, dst, check_input=X)
        assert report.max_abs_diff <= 1e-5
        for got, want in zip(_weights(dst), _merged_weights(model), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        weights.append(_weights(dst)[0])
    assert np.abs(weights[0] - weights[1]).max() > 1e-3


def test_a_peft_dora_embedding_and_convolution_port_as_they_compute():
    """An Embedding's DoRA magnitude is per embedding dimension (a column of
    the table), a convolution's per output channel; each ported as
    ``merge_and_unload`` merges it, and reset when ported into: the zeroed
    factor zeros, the magnitude the new weight's norms."""
    import torch

    torch.manual_seed(0)
    ids = np.array([[1, 2, 3], [4, 5, 9]])
    embedding = _with_dora(torch.nn.Sequential(torch.nn.Embedding(10, 6), torch.nn.Linear(6, 3)), ["0"])
    dst = S.Sequential(S.Embedding(10, 6), S.Linear(6, 3)).build("torch")
    report = up.port(embedding, dst, check_input=ids)
    assert report.max_abs_diff <= 1e-5
    for got, want in zip(_weights(dst), _merged_weights(embedding), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    back = _with_dora(torch.nn.Sequential(torch.nn.Embedding(10, 6), torch.nn.Linear(6, 3)), ["0"])
    report = up.port(dst, back, check_input=ids)
    assert report.max_abs_diff <= 1e-5 and "a DoRA magnitude the norms" in report.notes[0]
    layer = back.base_model.model[0]
    assert not layer.lora_embedding_A["default"].detach().numpy().any()
    table = layer.base_layer.weight.detach().numpy()
    np.testing.assert_allclose(
        layer.lora_magnitude_vector["default"].weight.detach().numpy(),
        np.linalg.norm(table, axis=0),
        rtol=1e-6,
    )
    conv = _with_dora(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()), ["0"])
    dst = S.Sequential(S.Conv2d(3, 4, 3, padding=1), S.ReLU()).build("torch")
    images = RNG.standard_normal((2, 3, 8, 8)).astype("float32")
    report = up.port(conv, dst, check_input=images)
    assert report.max_abs_diff <= 1e-5
    for got, want in zip(_weights(dst), _merged_weights(conv), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    back = _with_dora(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()), ["0"])
    report = up.port(dst, back, check_input=images)
    assert report.max_abs_diff <= 1e-5
    layer = back.base_model.model[0]
    kernel = layer.base_layer.weight.detach().numpy()
    np.testing.assert_allclose(
        layer.lora_magnitude_vector["default"].weight.detach().numpy().reshape(-1),
        np.linalg.norm(kernel.reshape(4, -1), axis=1),
        rtol=1e-6,
    )


def test_a_peft_dora_model_ported_into_computes_the_source(backend):
    """Into a DoRA model: each base layer gets the source's weight, ``lora_B``
    zeros and the magnitude the norms of the weight's rows, as peft starts a
    DoRA adapter; it computes the source's outputs. Before: refused."""
    source = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build(backend)
    dst = _with_dora(_mlp())
    report = up.port(source, dst, check_input=X)
    assert report.max_abs_diff <= 1e-5 and report.notes[-1].startswith("LoRA reset")
    layer = dst.base_model.model[0]
    assert not layer.lora_B["default"].weight.detach().numpy().any()
    weight = layer.base_layer.weight.detach().numpy()
    np.testing.assert_array_equal(weight, _weights(source)[0])
    np.testing.assert_allclose(
        layer.lora_magnitude_vector["default"].weight.detach().numpy(),
        np.linalg.norm(weight, axis=1),
        rtol=1e-6,
    )


def test_a_layer_with_an_adapter_merged_computes_with_the_weight_alone():
    """Once one adapter is merged into the weight, peft's layer runs the base
    layer alone, its other active adapters not added. Before, the port added
    the unmerged one: its outputs were off by that update."""
    model = _with_lora(_with_lora(_mlp()), name="second")
    model.base_model.set_adapter(["default", "second"])
    model.merge_adapter(["default"])
    stored = [p.detach().numpy().copy() for n, p in model.named_parameters() if ".base_layer." in n]
    dst = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build("torch")
    report = up.port(model, dst, check_input=X)
    assert report.max_abs_diff <= 1e-6 and not report.notes
    for got, want in zip(_weights(dst), stored, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dora", [False, True])
def test_a_peft_model_s_file_keeps_its_factors_and_loads_back(dora):
    """``save`` keeps the factors (and DoRA's magnitudes), as peft's state
    dict does; a load into a peft model of the same configuration gives its
    outputs back."""
    import tempfile

    import torch

    make = _with_dora if dora else _with_lora
    source = make(_mlp())
    with tempfile.TemporaryDirectory() as folder:
        up.save(source, f"{folder}/lora.safetensors")
        again = make(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)))
        x = torch.from_numpy(X)
        assert not torch.allclose(again(x), source(x))
        up.load(again, f"{folder}/lora.safetensors")
    torch.testing.assert_close(again(x), source(x), rtol=0, atol=0)


def _with_head_trained_whole(**settings):
    """An MLP with LoRA on its first Linear and its head trained whole
    (``modules_to_save``): peft runs a trained copy of the head, keeping the
    original beside it; the copy's weights made to differ from the original's."""
    import torch

    model = _with_lora(_mlp(), targets=("0",), modules_to_save=["2"], **settings)
    with torch.no_grad():
        model.base_model.model[2].modules_to_save["default"].weight.add_(1.0)
    return model


def test_a_layer_peft_trains_whole_ports_as_the_copy_it_runs(backend):
    """Before, the original head and its trained copy were two layers, and the
    refusal said to skip the copy: a port that followed it moved the original,
    untrained head without a word (no check input). Now the port pairs the
    copy the model runs and says it left the original out; outputs equal."""
    import torch

    source = _with_head_trained_whole()
    dst = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build(backend)
    report = up.port(source, dst)  # no check input: right by itself
    assert report.pairs[1][0] == "base_model.model.2.modules_to_save.default"
    assert any(
        n.startswith("Not ported: the source's 'base_model.model.2.original_module'") for n in report.notes
    )
    for got, want in zip(_weights(dst), _merged_weights(source), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    want = source(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(np.asarray(up.wrap(dst)(X)), want, rtol=1e-5, atol=1e-5)
    with source.disable_adapter():  # runs the original head and no update
        report = up.port(source, dst, check_input=X)
    assert report.pairs[1][0] == "base_model.model.2.original_module"


def test_a_peft_model_ported_into_writes_the_copy_it_runs_and_leaves_the_original():
    import torch

    source = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3)).build("torch")
    dst = _with_head_trained_whole()
    original = dst.base_model.model[2].original_module.weight.detach().clone()
    report = up.port(source, dst, check_input=X)
    assert report.max_abs_diff <= 1e-5
    assert any(
        n.startswith("Not ported: the destination's 'base_model.model.2.original_module'")
        for n in report.notes
    )
    torch.testing.assert_close(
        dst.base_model.model[2].original_module.weight.detach(), original, rtol=0, atol=0
    )
    torch.testing.assert_close(
        dst.base_model.model[2].modules_to_save["default"].weight.detach(), source[2].weight.detach()
    )


@pytest.mark.parametrize("make", ["LoRA", "DoRA"])
def test_a_torchvision_resnet_fine_tuned_with_peft_ports_into_paddle_vision(make):
    """The fine-tuning a user does: LoRA (or DoRA) on every 3x3 convolution of
    torchvision's resnet18 and its classifier trained whole. The port into
    paddle.vision's resnet18 merges 16 updates, takes the trained head, and
    the outputs agree with the peft model's and with its ``merge_and_unload()``."""
    import torch

    from tests.zoo.pairs import TOLERANCE, seed

    needs("paddle")
    tv = import_torchvision()
    import paddle
    from paddle.vision.models import resnet18

    torch.manual_seed(0)
    net = tv.models.resnet18(weights=None)
    seed(net)
    convs = [n for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    source = (_with_dora if make == "DoRA" else _with_lora)(net, targets=convs, modules_to_save=["fc"])
    with torch.no_grad():
        source.base_model.model.fc.modules_to_save["default"].weight.mul_(1.5)
    source.eval()
    x = RNG.standard_normal((2, 3, 64, 64)).astype("float32")
    largest = float(source(torch.from_numpy(x)).detach().abs().max())
    dst = resnet18()
    report = up.port(source, dst, check_input=x, atol=TOLERANCE * largest)
    assert len(convs) == 16 and report.max_abs_diff <= TOLERANCE * largest
    assert report.pairs[-1][:2] == ("base_model.model.fc.modules_to_save.default", "fc")
    dst.eval()
    merged = source.merge_and_unload()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(dst(paddle.to_tensor(x)).numpy(), merged, atol=TOLERANCE * largest)


def test_a_lora_on_a_tied_embedding_moves_as_the_peft_model_computes():
    """peft's update of a tied embedding applies to the lookup, not to the head
    that shares its weight: into an untied model each gets what the peft
    model computes with; a tied destination, which cannot hold both, refuses."""
    import torch

    class LM(torch.nn.Module):
        def __init__(self, tied: bool) -> None:
            super().__init__()
            self.emb, self.head = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False)
            if tied:
                self.head.weight = self.emb.weight

        def forward(self, x):
            return self.head(torch.tanh(self.emb(x)))

    torch.manual_seed(0)
    source = _with_lora(LM(tied=True), targets=("emb",))
    x = np.array([[1, 2, 3], [4, 5, 9]])
    untied = LM(tied=False)
    report = up.port(source, untied, check_input=x)
    assert report.max_abs_diff <= 1e-6
    base = source.base_model.model.emb.base_layer.weight.detach()
    torch.testing.assert_close(untied.head.weight.detach(), base, rtol=0, atol=0)
    assert not torch.allclose(untied.emb.weight.detach(), base)
    with pytest.raises(up.PortError, match="an update at one of them only"):
        up.port(source, LM(tied=True), check_input=x)


def test_an_adapter_file_of_peft_is_refused_with_the_peft_call_that_loads_it(tmp_path):
    """peft's ``save_pretrained`` writes an adapter alone, its factors keyed
    without the adapter's name. Before, the refusal said they were factors a
    checkpoint lacks and to pass strict=False, which loads none of them. The
    hint's own call then loads it: outputs equal the saved model's."""
    import safetensors.torch
    import torch

    peft = _peft()
    source = _with_lora(_mlp())
    source.save_pretrained(tmp_path)
    fresh = _with_lora(_mlp())  # the same base weights (seeded); its factors made other below
    with torch.no_grad():
        fresh.base_model.model[0].lora_B["default"].weight.zero_()
    x = torch.from_numpy(X)
    assert not torch.allclose(fresh(x), source(x))
    file = tmp_path / "adapter_model.safetensors"
    with pytest.raises(up.CheckpointError, match=r"without the adapter's name.*set_peft_model_state_dict"):
        up.load(fresh, file)
    peft.set_peft_model_state_dict(fresh, safetensors.torch.load_file(file))
    torch.testing.assert_close(fresh(x), source(x), rtol=0, atol=0)
