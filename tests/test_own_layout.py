"""Leaves the library knows no canonical form of (`Param.own_layout`): a
variable a layer holds beyond what its backend declares of the layer's kind.

A spectral norm's ``weight_orig``, ``weight_u`` and ``weight_v`` on a paddle
Linear, which keeps its weights ``(in, out)``, share torch's names, and for
square layers its shapes. Before, a save, port or state load from torch's twin
filled them in with nothing said while the outputs differed. Now they move
only between models of one framework, and are refused from any other before
anything is written, but by a port, which reads the norm's axis on both sides
and converts them. (A weight norm's ``weight_g`` and ``weight_v`` were such
leaves too; they now have a canonical form: tests/test_weight_norms.py.)

A layer that computes its weight from such variables on each call (a weight
norm, spectral norm or torch parametrization) pairs with no layer that holds
the weight itself; the refusal then says what to remove."""

from __future__ import annotations

import json

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs

X = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")


def _pair(norm: str):
    """A torch Linear(4, 4) under ``norm`` and its paddle twin, both in eval mode."""
    import paddle
    import torch

    torch.manual_seed(0)
    paddle.seed(1)
    if norm == "spectral_norm":
        t = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 4))
        p = paddle.nn.utils.spectral_norm(paddle.nn.Linear(4, 4))
    else:  # a norm over the whole weight: g is a scalar on both sides
        t = torch.nn.utils.weight_norm(torch.nn.Linear(4, 4), dim=None)
        p = paddle.nn.utils.weight_norm(paddle.nn.Linear(4, 4), dim=None)
    t.eval()
    p.eval()
    return t, p


def _paddle_out(net) -> np.ndarray:
    import paddle

    return net(paddle.to_tensor(X)).numpy()


def _values(net) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in up.state_dict(net, layout="native").items()}


def _same(before: dict[str, np.ndarray], net) -> bool:
    after = _values(net)
    return before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)


@pytest.fixture(autouse=True)
def _frameworks():
    needs("torch")
    needs("paddle")


def test_a_paddle_linears_extra_leaves_keep_paddles_layout():
    _, p = _pair("spectral_norm")
    params = up.wrap(p).params()
    extras = {"weight_orig", "weight_u", "weight_v"}
    assert {k for k, q in params.items() if q.own_layout} == extras
    assert not params["bias"].own_layout
    assert params["weight_orig"].shape == params["weight_orig"].native_shape == (4, 4)
    assert up.state_dict(p).own_layout == dict.fromkeys(extras, "paddle")
    linear = up.wrap(up.spec.Linear(4, 3).build("paddle")).params()
    assert not any(q.own_layout for q in linear.values())  # what the kind declares: canonical


def test_extra_leaves_from_torch_are_refused_where_they_loaded_silently(tmp_path):
    """These wrote all the values and said nothing on the code before; the
    outputs then differed (3.9 here)."""
    t, p = _pair("spectral_norm")
    before = _values(p)
    extras = [k for k, q in up.wrap(p).params().items() if q.own_layout]
    up.save(t, tmp_path / "t.safetensors")
    with pytest.raises(up.CheckpointError, match="own layout on one side only") as err:
        up.load(p, tmp_path / "t.safetensors")
    assert sorted(err.value.report.own_layout) == sorted(extras)
    with pytest.raises(up.CheckpointError, match="own layout"):
        up.load_state_dict(p, t.state_dict())
    assert _same(before, p)
    partial = up.load(p, tmp_path / "t.safetensors", strict=False)
    assert partial.loaded == ["bias"] and sorted(partial.own_layout) == sorted(extras)


def test_a_port_between_spectral_norms_converts_them():
    """torch's spectral norm and paddle's pair by name and shape: a port wrote
    every value as it was once, and the outputs differed by 2.9; then it was
    refused. A port reads the axis each keeps: it now transposes the original
    (tests/test_leaf_norms.py has the rest)."""
    import torch

    t, p = _pair("spectral_norm")
    report = up.port(t, p)
    with torch.no_grad():
        want = t(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(_paddle_out(p), want, rtol=1e-5, atol=1e-6)
    assert report.conversions == ["weight_orig -> weight_orig: paddle axes (1, 0)"]


def test_a_port_of_extra_leaves_that_pair_by_name_and_shape_is_refused_naming_the_layers():
    """A variable a layer holds beyond its kind's (here a Linear's ``scale``,
    (4, 2) on both sides) is canonical in torch and paddle's own in paddle:
    nothing tells how paddle lays it out."""
    import paddle
    import torch

    t, p = torch.nn.Linear(4, 4), paddle.nn.Linear(4, 4)
    t.register_parameter("scale", torch.nn.Parameter(torch.ones(4, 2)))
    p.scale = p.create_parameter([4, 2])
    before = _values(p)
    with pytest.raises(up.PortError, match="may lay them out differently") as err:
        up.port(t, p)
    assert "'scale' of the paddle layer at the root (from the torch Linear at the root)" in str(err.value)
    assert "fold or remove them first" in str(err.value)
    assert _same(before, p)


@pytest.mark.parametrize("norm", ["weight_norm", "spectral_norm"])
def test_extra_leaves_move_between_models_of_one_framework(norm, tmp_path):
    _, p = _pair(norm)
    p(__import__("paddle").to_tensor(X))  # a spectral norm's u and v move on a call
    want = _paddle_out(p)
    ways = {
        "file": lambda q: up.load(q, up.save(p, tmp_path / "p.safetensors")[0]),
        "state": lambda q: up.load_state_dict(q, up.state_dict(p)),
        "params": lambda q: up.load_state_dict(q, up.wrap(p).params()),  # its unsaved buffers: skipped
        "native": lambda q: up.load_state_dict(q, up.state_dict(p, layout="native"), layout="native"),
        "port": lambda q: up.port(p, q).load,
    }
    for way, load in ways.items():
        _, q = _pair(norm)
        report = load(q)
        assert report.ok and "weight_v" in report.loaded, way
        np.testing.assert_allclose(_paddle_out(q), want, rtol=1e-6, atol=1e-6, err_msg=way)


def test_a_plain_copy_of_a_state_forgets_its_own_layout_and_is_refused():
    _, p = _pair("spectral_norm")
    _, q = _pair("spectral_norm")
    with pytest.raises(up.CheckpointError, match="own layout"):
        up.load_state_dict(q, dict(up.state_dict(p)))


def test_a_file_that_does_not_say_its_own_layout_is_its_backends(tmp_path):
    """A file of a version before files named these leaves: from the same
    backend, they are that backend's; from another writer, canonical."""
    import safetensors.numpy

    _, p = _pair("spectral_norm")
    file = up.save(p, tmp_path / "p.safetensors")[0]
    tensors = safetensors.numpy.load_file(file)
    with open(file, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]
    assert json.loads(header["own_layout"]) == dict.fromkeys(
        ["weight_orig", "weight_u", "weight_v"], "paddle"
    )
    older = {k: v for k, v in header.items() if k != "own_layout"}
    safetensors.numpy.save_file(tensors, tmp_path / "older.safetensors", metadata=older)
    _, q = _pair("spectral_norm")
    assert up.load(q, tmp_path / "older.safetensors").ok
    np.testing.assert_allclose(_paddle_out(q), _paddle_out(p), rtol=1e-6, atol=1e-6)
    safetensors.numpy.save_file(tensors, tmp_path / "other.safetensors")  # no metadata at all
    with pytest.raises(up.CheckpointError, match="own layout"):
        up.load(q, tmp_path / "other.safetensors")


def test_a_keras_dense_with_lora_keeps_its_lora_kernels_in_keras_layout():
    """``enable_lora`` adds ``lora_kernel_a (in, rank)`` and ``lora_kernel_b
    (rank, out)`` beside the kernel the Dense kind declares."""
    needs("keras")
    import keras

    def build():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.layers[0].enable_lora(2)
        return model

    source, destination = build(), build()
    params = up.wrap(source).params()
    assert [k for k, q in params.items() if q.own_layout] == ["0.lora_kernel_a", "0.lora_kernel_b"]
    assert params["0.lora_kernel_a"].shape == (4, 2) and params["0.weight"].shape == (3, 4)
    source.layers[0].lora_kernel_b.assign(np.ones((2, 3), "float32"))  # zeros at first: a visible change
    report = up.port(source, destination, check_input=X)
    assert "0.lora_kernel_b" in report.load.loaded and report.max_abs_diff == 0


def test_the_summary_of_a_file_marks_the_leaves_in_their_frameworks_layout(tmp_path, capsys):
    from unified_params import cli

    _, p = _pair("spectral_norm")
    up.save(p, tmp_path / "p.safetensors")
    assert cli.main(["summary", str(tmp_path / "p.safetensors")]) == 0
    shown = capsys.readouterr().out
    assert "weight_orig (4, 4) (paddle's own layout)" in shown and "bias (4,)  " in shown


@pytest.mark.parametrize("style", ["parametrization", "hook"])
def test_a_port_refused_by_a_computed_weight_says_to_remove_its_norm(style):
    """Before, a ParametrizedLinear was named with its bias alone, and a hooked
    Linear with weight_g and weight_v, and nothing said why neither pairs."""
    import paddle
    import torch

    norm = (
        torch.nn.utils.parametrizations.weight_norm
        if style == "parametrization"
        else torch.nn.utils.weight_norm
    )
    source = torch.nn.Sequential(norm(torch.nn.Linear(4, 3)), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    plain = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.ReLU(), paddle.nn.Linear(3, 2))
    said = (
        "The source's '0' (ParametrizedLinear) computes 'weight'"
        if style == "parametrization"
        else ("The source's '0' (Linear) computes 'weight'")
    )
    for src, dst, side in ((source, plain, "source"), (plain, source, "destination")):
        with pytest.raises(up.PortError, match="remove it first, which folds it into the weight") as err:
            up.port(src, dst)
        assert said.replace("source", side) in str(err.value)
    assert up.wrap(plain).adapter.computed(plain[0]) == ()
    hooked = paddle.nn.utils.spectral_norm(paddle.nn.Linear(4, 3))
    assert up.wrap(hooked).adapter.computed(hooked) == ("weight",)


def test_a_keras_dense_quantized_to_int8_runs_and_ports_between_keras_models():
    """Its frozen int8 kernel is listed after its bias, beside ``kernel_scale``.
    Before, a forward or a port with a check input read the bias as the layer's
    weight and failed inside the library (IndexError)."""
    needs("keras")
    import keras
    import torch

    def build():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
        model.quantize("int8")
        return model

    source, destination = build(), build()
    params = up.wrap(source).params()
    assert list(params)[:3] == ["0.bias", "0.weight", "0.kernel_scale"] and params["0.weight"].dtype == "int8"
    assert params["0.kernel_scale"].own_layout and not params["0.weight"].own_layout
    np.testing.assert_allclose(up.wrap(source)(X), np.asarray(source(X)), rtol=1e-6)
    source.layers[0].kernel_scale.assign(np.full((3,), 0.5, "float32"))
    assert up.port(source, destination, check_input=X).max_abs_diff == 0
    with pytest.raises(up.PortError, match="the destination has \\['kernel_scale'\\]"):
        up.port(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)), destination)
