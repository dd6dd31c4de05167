"""Low-rank updates (LoRA) beyond the conformance suite's MLP: every Keras
layer with ``enable_lora``, NNX's ``LoRA`` wrapped around a Linear, the
factors in files, and the refusal of a checkpoint without them."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from unified_params import spec as S

RNG = np.random.default_rng(0)


def _non_zero_b(layer) -> None:
    """Set a Keras layer's LoRA ``b`` factor to random values (Keras starts it at zero)."""
    for var in layer.trainable_variables:
        if var.path.endswith("_b") and "lora_" in var.path:
            var.assign(RNG.standard_normal(var.shape).astype("float32"))


def _keras_layers():
    import keras

    L = keras.layers
    return [
        (L.Embedding(10, 4), (3,), np.array([[1, 2, 3]]), S.Embedding(10, 4)),
        (L.Conv2D(3, 3), (6, 6, 2), RNG.standard_normal((1, 2, 6, 6)).astype("float32"), S.Conv2d(2, 3, 3)),
        (L.Conv1D(3, 3), (6, 2), RNG.standard_normal((1, 2, 6)).astype("float32"), S.Conv1d(2, 3, 3)),
    ]


@pytest.mark.parametrize("position", range(3))
def test_every_keras_layer_with_lora_ports_to_torch_with_its_update_merged(position):
    """Keras' Embedding and convolutions add ``(alpha / rank) * a @ b`` to their
    kernels as Dense does (Keras 3.15.1): each ports into torch's layer with the
    update merged, outputs equal. Before: refused."""
    needs("keras")
    needs("torch")
    import keras

    layer, shape, x, spec = _keras_layers()[position]
    source = keras.Sequential([keras.Input(shape, dtype=x.dtype), layer])
    layer.enable_lora(2, lora_alpha=3)
    _non_zero_b(layer)
    dst = S.Sequential(spec).build("torch")
    report = up.port(source, dst, check_input=x)
    assert report.max_abs_diff <= 1e-5
    assert report.notes[0].startswith("LoRA merged: the source's layer '0' adds a low-rank update")


def test_a_keras_einsum_dense_with_lora_ports_into_keras_without():
    """EinsumDense's factors are ``kernel.shape[:-1] + (rank,)`` and ``(rank, out)``:
    merged as the layer computes its kernel."""
    needs("keras")
    import keras

    def model():
        return keras.Sequential(
            [keras.Input((4,)), keras.layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c")]
        )

    source, dst = model(), model()
    source.layers[0].enable_lora(2)
    _non_zero_b(source.layers[0])
    x = RNG.standard_normal((2, 4)).astype("float32")
    report = up.port(source, dst, check_input=x)
    assert report.max_abs_diff <= 1e-5 and report.notes[0].startswith("LoRA merged")
    np.testing.assert_allclose(np.asarray(dst(x)), np.asarray(source(x)), atol=1e-5)


def test_an_nnx_lora_around_a_linear_ports_with_its_update_merged_and_back_reset():
    """``nnx.LoRA(..., base_module=linear)`` keeps the factors beside the Linear
    it wraps: they are that Linear's update. Before: the wrapper was a layer of
    its own the port asked to skip, which would drop the update unnoticed."""
    needs("flax")
    needs("torch")
    from flax import nnx

    def model():
        rngs = nnx.Rngs(0)
        wrapped = nnx.LoRA(4, 2, 3, base_module=nnx.Linear(4, 3, rngs=rngs), rngs=rngs)
        return nnx.Sequential(wrapped, nnx.relu, nnx.Linear(3, 2, rngs=rngs))

    source = model()
    source.layers[0].lora_b[...] = RNG.standard_normal((2, 3)).astype("float32")
    dst = S.Sequential(S.Linear(4, 3), S.ReLU(), S.Linear(3, 2)).build("torch")
    x = RNG.standard_normal((2, 4)).astype("float32")
    report = up.port(source, dst, check_input=x)
    assert report.pairs[0][:2] == ("0.base_module", "0") and report.max_abs_diff <= 1e-5
    back = model()
    a = np.asarray(back.layers[0].lora_a[...])
    report = up.port(dst, back, check_input=x)
    assert report.max_abs_diff <= 1e-5 and report.notes[0].startswith("LoRA reset")
    assert not np.asarray(back.layers[0].lora_b[...]).any()
    np.testing.assert_array_equal(np.asarray(back.layers[0].lora_a[...]), a)


def _keras_lora_mlp(rank: int | None):
    net = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 1)).build("keras")
    if rank is not None:
        net.layers[0].enable_lora(rank)
        _non_zero_b(net.layers[0])
    return net


def test_a_file_keeps_the_factors_and_loads_back_exactly(tmp_path):
    """``save`` keeps a LoRA layer's factors as parameters of their own (as
    Keras' variables and torch's state dicts keep adapters), unmerged."""
    needs("keras")
    source, again = _keras_lora_mlp(2), _keras_lora_mlp(2)
    up.save(source, tmp_path / "lora.safetensors")
    up.load(again, tmp_path / "lora.safetensors")
    want = up.state_dict(source)
    assert {"0.lora_kernel_a", "0.lora_kernel_b"} <= set(want)
    for key, value in up.state_dict(again).items():
        np.testing.assert_array_equal(value, want[key], err_msg=key)


def test_a_checkpoint_without_the_factors_is_refused_with_what_to_do(tmp_path):
    """A file of the model before ``enable_lora`` lacks the factors: the refusal
    says they are a LoRA update's and how to load the rest."""
    needs("keras")
    up.save(_keras_lora_mlp(None), tmp_path / "base.safetensors")
    lora = _keras_lora_mlp(2)
    with pytest.raises(up.CheckpointError, match=r"are the factors of a low-rank update \(LoRA\)"):
        up.load(lora, tmp_path / "base.safetensors")
    report = up.load(lora, tmp_path / "base.safetensors", strict=False)
    assert report.missing == ["0.lora_kernel_a", "0.lora_kernel_b"]


def test_a_quantized_keras_layer_s_update_is_not_merged():
    """A quantized kernel is stored as integers with a scale: not merged, and the
    port refuses for the leaves the destination lacks, not silently."""
    needs("keras")
    import warnings

    net = _keras_lora_mlp(None)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # Keras: "Layer InputLayer does not have a `quantize` method"
        net.quantize("int8")
    net.layers[0].enable_lora(2)
    dst = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 1)).build("keras")
    with pytest.raises(up.PortError, match="kernel_scale"):
        up.port(net, dst)


def test_a_file_with_factors_given_to_a_model_without_says_to_port(tmp_path):
    """A file of a LoRA model holds the factors apart, which a load cannot merge:
    the refusal says so and points at the port, which does."""
    needs("keras")
    needs("torch")
    source = _keras_lora_mlp(2)
    up.save(source, tmp_path / "lora.safetensors")
    plain = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 1)).build("torch")
    with pytest.raises(
        up.CheckpointError, match=r"look like the factors of a low-rank update \(LoRA\).*up\.port"
    ):
        up.load(plain, tmp_path / "lora.safetensors")
    x = RNG.standard_normal((2, 4)).astype("float32")
    assert up.port(source, plain, check_input=x).max_abs_diff <= 1e-5
