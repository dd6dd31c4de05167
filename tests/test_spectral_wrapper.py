"""Keras' SpectralNormalization against torch's and paddle's spectral norms.

Keras' wrapper normalizes its layer's kernel in training and keeps the
normalized kernel in the layer: at inference the layer computes with it as it
is, and the wrapper keeps only ``u``. Torch and paddle keep the original and
``u``, ``v``, and compute ``orig / sigma`` on each call. Before, a port
between them was refused ("1 parameterised layers and the destination 2").
Now the wrapped layer and the wrapper's ``u`` pair with the other's norm:
into Keras, the kernel is the weight the norm computes; out of Keras, the
kernel is the original and ``v`` makes ``sigma`` 1 (`leaf_norms.unit_v`).
"""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4)).astype("float32")
IMAGES = RNG.standard_normal((2, 3, 8, 8)).astype("float32")


@pytest.fixture(autouse=True)
def _frameworks():
    needs("torch")
    needs("keras")


def trained(net, x, steps: int = 3):
    """``net`` after a few calls in training (u and v refined, Keras' kernel normalized)."""
    import torch

    if isinstance(net, torch.nn.Module):
        net.train()
        with torch.no_grad():
            for _ in range(steps):
                net(torch.from_numpy(x))
        return net.eval()
    for _ in range(steps):
        net(x, training=True)
    return net


def torch_dense(form: str):
    import torch
    from torch.nn.utils.parametrizations import spectral_norm as newer

    norm = torch.nn.utils.spectral_norm if form == "hook" else newer
    torch.manual_seed(0)
    return torch.nn.Sequential(norm(torch.nn.Linear(4, 3)), torch.nn.Tanh(), norm(torch.nn.Linear(3, 2)))


def keras_dense():
    import keras

    wrap = keras.layers.SpectralNormalization
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [keras.Input((4,)), wrap(keras.layers.Dense(3, activation="tanh")), wrap(keras.layers.Dense(2))]
    )


def torch_weight(layer) -> np.ndarray:
    """The weight a torch spectral norm computes at inference."""
    import torch

    with torch.no_grad():
        return layer.weight.detach().numpy().copy()


def keras_numpy(value) -> np.ndarray:
    """A Keras tensor or variable's value, on any engine."""
    import keras

    return keras.ops.convert_to_numpy(value)


def keras_out(net, x, training=False) -> np.ndarray:
    return keras_numpy(net(x, training=training))


def torch_out(net, x, training=False) -> np.ndarray:
    import torch

    net.train(training)
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy()
    net.eval()
    return out


@pytest.mark.parametrize("form", ["hook", "parametrization"])
def test_a_torch_spectral_norm_ports_into_keras_as_the_weight_it_computes(form):
    src, dst = trained(torch_dense(form), X), trained(keras_dense(), X)
    report = up.port(src, dst, check_input=X)
    assert report.pairs == [("0", "0.layer", "linear"), ("2", "1.layer", "linear")]
    assert report.max_abs_diff < 1e-6
    kernel = keras_numpy(dst.layers[0].layer.kernel)  # Keras' (in, out)
    np.testing.assert_allclose(kernel.T, torch_weight(src[0]), rtol=1e-6, atol=1e-7)
    u = "0.weight_u" if form == "hook" else "0.parametrizations.weight.0._u"
    np.testing.assert_array_equal(keras_numpy(dst.layers[0].vector_u)[0], src.state_dict()[u].numpy())
    assert any("divided by the sigma its spectral norm computes" in note for note in report.notes)
    if form == "hook":  # trained on from here, both refine v from the same u, then u, alike
        np.testing.assert_allclose(
            keras_out(dst, X, training=True), torch_out(src, X, training=True), atol=1e-5
        )


@pytest.mark.parametrize("form", ["hook", "parametrization"])
def test_a_keras_spectral_normalization_ports_into_torch_computing_its_kernel(form):
    src, dst = trained(keras_dense(), X), trained(torch_dense(form), X)
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff < 1e-6
    kernel = keras_numpy(src.layers[0].layer.kernel)
    orig = "0.weight_orig" if form == "hook" else "0.parametrizations.weight.original"
    np.testing.assert_array_equal(dst.state_dict()[orig].numpy(), kernel.T)
    np.testing.assert_allclose(torch_weight(dst[0]), kernel.T, rtol=1e-6, atol=1e-7)  # sigma is 1
    assert any("chosen so that u . (W v) is 1" in note for note in report.notes)
    if form == "hook":  # refines v from u, then u, as Keras does (the newer form u from v first)
        np.testing.assert_allclose(
            torch_out(dst, X, training=True), keras_out(src, X, training=True), atol=1e-5
        )


def torch_conv(seed: int):
    import torch
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        spectral_norm(torch.nn.Conv2d(3, 4, 3)),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        spectral_norm(torch.nn.Linear(4, 5)),
    )
    return trained(net, IMAGES)


def keras_conv(images: np.ndarray = IMAGES, flatten: bool = False):
    """A normed Conv2D(4, 3) and Dense(5), a global average pooling (or a
    Flatten) between them, called in training on ``images`` (channels first)."""
    import keras

    wrap = keras.layers.SpectralNormalization
    between = keras.layers.Flatten() if flatten else keras.layers.GlobalAveragePooling2D()
    net = keras.Sequential(
        [
            keras.Input(images.shape[2:] + images.shape[1:2]),
            wrap(keras.layers.Conv2D(4, 3, activation="relu")),
            between,
            wrap(keras.layers.Dense(5)),
        ]
    )
    return trained(net, images.transpose(0, 2, 3, 1))


def test_convolutions_with_spectral_norms_port_both_ways():
    """A Conv2d's norm keeps its outputs: axis 0 of torch's (out, in, kh, kw),
    the last of Keras' (kh, kw, in, out) kernel, the axis Keras' norm keeps."""
    t, k = torch_conv(0), keras_conv()
    forth = up.port(t, k, check_input=IMAGES)
    assert [p[2] for p in forth.pairs] == ["conv2d", "linear"] and forth.max_abs_diff < 1e-5
    kernel = keras_numpy(k.layers[0].layer.kernel)
    np.testing.assert_allclose(kernel.transpose(3, 2, 0, 1), torch_weight(t[0]), rtol=1e-5, atol=1e-6)
    other = keras_conv()
    assert up.port(k, other, check_input=IMAGES).max_abs_diff == 0  # Keras to Keras: as they are
    back = torch_conv(1)
    assert up.port(other, back, check_input=IMAGES).max_abs_diff < 1e-5
    np.testing.assert_allclose(torch_weight(back[0]), torch_weight(t[0]), rtol=1e-5, atol=1e-6)


def test_a_paddle_spectral_norm_keeping_the_outputs_ports_both_ways():
    """Paddle's Linear is (in, out): its norm keeps the outputs with dim=1."""
    needs("paddle")
    import paddle

    paddle.seed(0)
    p = paddle.nn.Sequential(paddle.nn.utils.spectral_norm(paddle.nn.Linear(4, 3), dim=1))
    p.train()
    for _ in range(3):
        p(paddle.to_tensor(X))
    p.eval()
    import keras

    k = keras.Sequential([keras.Input((4,)), keras.layers.SpectralNormalization(keras.layers.Dense(3))])
    trained(k, X)
    assert up.port(p, k, check_input=X).max_abs_diff < 1e-6
    kernel = keras_numpy(k.layers[0].layer.kernel)
    assert up.port(k, p, check_input=X).max_abs_diff < 1e-6
    np.testing.assert_array_equal(np.asarray(p[0].weight_orig), kernel)  # paddle's own (in, out)


def test_an_embedding_s_norm_keeps_its_last_axis_in_keras():
    """Keras' norm keeps an Embedding's last axis (its features): torch's with dim=1."""
    import keras
    import torch

    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.utils.spectral_norm(torch.nn.Embedding(10, 4), dim=1))
    ids = np.array([[1, 2], [3, 9]])
    t.train()
    t(torch.from_numpy(ids))
    t.eval()
    wrapped = keras.layers.SpectralNormalization(keras.layers.Embedding(10, 4))
    k = keras.Sequential([keras.Input((2,), dtype="int32"), wrapped])
    k(ids, training=True)
    up.port(t, k)  # no check input: Keras' wrapper casts an Embedding's output to the ids' dtype
    embeddings = keras_numpy(wrapped.layer.embeddings)
    np.testing.assert_allclose(embeddings, torch_weight(t[0]), rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        expected = t(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(keras_numpy(k.layers[0].layer(ids)), expected, atol=1e-6)  # the wrapped layer
    wrong = torch.nn.Sequential(torch.nn.utils.spectral_norm(torch.nn.Embedding(10, 4)))  # dim 0: the ids
    with pytest.raises(up.PortError, match="keeps axis 1 of the canonical .* the destination's axis 0"):
        up.port(k, wrong)


def test_a_wrapped_layer_does_not_pair_with_a_plain_one_and_the_hint_ports():
    """A plain layer keeps no norm: the port says so and how to port the
    wrapped layers; following it, outputs at inference agree."""
    import keras
    import torch

    src = trained(keras_dense(), X)
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    with pytest.raises(
        up.PortError, match=r"spectrally normalized in training by '0'.*the wrapper's \.layer"
    ) as err:
        up.port(src, plain, check_input=X)
    assert "new head" not in str(err.value)
    inner = keras.Sequential([keras.Input((4,)), *(wrapper.layer for wrapper in src.layers)])
    assert up.port(inner, plain, check_input=X).max_abs_diff < 1e-6
    np.testing.assert_allclose(torch_out(plain, X), keras_out(src, X), atol=1e-6)


def test_a_kernel_of_zeros_is_refused_into_a_norm_that_computes_it():
    """No v makes u . (W v) equal 1 for W = 0: the port says so, writes nothing."""
    src, dst = trained(keras_dense(), X), torch_dense("hook")
    src.layers[0].layer.kernel.assign(np.zeros((4, 3), "float32"))
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(up.PortError, match="keeps a spectral norm's weight of zeros"):
        up.port(src, dst)
    assert all(np.array_equal(before[k].numpy(), v.numpy()) for k, v in dst.state_dict().items())


def test_a_transposed_convolution_pairs_when_torch_keeps_the_axis_keras_does():
    """Keras' norm keeps the last axis of a Conv2DTranspose's (kh, kw, out, in)
    kernel, its inputs: axis 0 of torch's (in, out, kh, kw), where torch's
    default dim is 1. That is refused with the axes named; dim=0 ports."""
    import keras
    import torch

    x = np.random.default_rng(4).standard_normal((2, 3, 5, 5)).astype("float32")
    k = keras.Sequential(
        [keras.Input((5, 5, 3)), keras.layers.SpectralNormalization(keras.layers.Conv2DTranspose(4, 3))]
    )
    trained(k, x.transpose(0, 2, 3, 1))
    for dim in (1, 0):
        torch.manual_seed(0)
        t = trained(
            torch.nn.Sequential(torch.nn.utils.spectral_norm(torch.nn.ConvTranspose2d(3, 4, 3), dim=dim)), x
        )
        if dim == 1:
            with pytest.raises(
                up.PortError, match="the source's keeps axis 0 of the canonical .* the destination's axis 1"
            ):
                up.port(k, t, check_input=x)
        else:
            assert up.port(k, t, check_input=x).max_abs_diff < 1e-5
            assert up.port(t, k, check_input=x).max_abs_diff < 1e-5


def test_a_file_of_the_other_form_is_refused_with_the_port_that_converts_it(tmp_path):
    """A load moves values as they are: between torch's form (weight_orig, u,
    v) and Keras' (the normalized kernel, vector_u) it refuses and says to
    port, where before it said only to pass strict=False, which loads nothing
    of the norms."""
    src, dst = trained(torch_dense("hook"), X), trained(keras_dense(), X)
    up.save(src, tmp_path / "torch.safetensors", progress=False)
    with pytest.raises(
        up.CheckpointError, match="the state keeps spectral norms as weight_orig, u and v.*then port"
    ):
        up.load(dst, tmp_path / "torch.safetensors", progress=False)
    up.save(dst, tmp_path / "keras.safetensors", progress=False)
    with pytest.raises(
        up.CheckpointError, match="this model keeps spectral norms as weight_orig, u and v.*then port"
    ):
        up.load(torch_dense("hook"), tmp_path / "keras.safetensors", progress=False)
    twin = torch_dense("hook")  # the hint: the file into a model of its framework, then a port
    up.load(twin, tmp_path / "torch.safetensors", progress=False)
    assert up.port(twin, dst, check_input=X).max_abs_diff < 1e-6


def test_wrappers_in_a_functional_model_and_a_nested_one_pair_at_their_paths():
    import keras
    import torch
    from torch.nn.utils.parametrizations import spectral_norm

    wrap = keras.layers.SpectralNormalization
    inputs = keras.Input((4,))
    block = keras.Sequential(
        [keras.Input((8,)), wrap(keras.layers.Dense(8, activation="relu")), keras.layers.Dense(3)],
        name="block",
    )
    k = keras.Model(inputs, block(wrap(keras.layers.Dense(8, activation="relu"), name="sn")(inputs)))
    trained(k, X)
    torch.manual_seed(0)
    t = torch.nn.Sequential(
        spectral_norm(torch.nn.Linear(4, 8)),
        torch.nn.ReLU(),
        torch.nn.Sequential(spectral_norm(torch.nn.Linear(8, 8)), torch.nn.ReLU(), torch.nn.Linear(8, 3)),
    )
    report = up.port(k, t, check_input=X)
    assert report.pairs == [
        ("1.layer", "0", "linear"),
        ("2.0.layer", "2.0", "linear"),
        ("2.1", "2.2", "linear"),
    ]
    assert report.max_abs_diff < 1e-6
    hidden = np.random.default_rng(5).standard_normal((3, 8)).astype("float32")
    back = up.port(up.wrap(t)["2"], up.wrap(k)["2"], check_input=hidden)  # a part of each
    assert back.pairs == [("0", "0.layer", "linear"), ("2", "1", "linear")] and back.max_abs_diff < 1e-6


@pytest.mark.parametrize("other", ["torch", "paddle"])
def test_a_normed_linear_after_a_flattened_map_ports_with_its_inputs_reordered(other):
    """Keras flattens (H, W, C), torch and paddle (C, H, W): the kernel's
    inputs are reordered, and v with them, so the norm still computes the
    kernel. Before, v came from the kernel in Keras' order: outputs off by
    7.98 (torch); paddle's (in, out) original was read as (out, in) and the
    declared map refused ("5 inputs")."""
    import torch
    from torch.nn.utils.parametrizations import spectral_norm

    x = np.random.default_rng(6).standard_normal((2, 3, 6, 6)).astype("float32")
    k = keras_conv(x, flatten=True)
    if other == "torch":
        torch.manual_seed(0)
        layers = [spectral_norm(torch.nn.Conv2d(3, 4, 3)), torch.nn.ReLU(), torch.nn.Flatten()]
        net = trained(torch.nn.Sequential(*layers, spectral_norm(torch.nn.Linear(64, 5))), x)
    else:
        needs("paddle")
        import paddle

        norm = paddle.nn.utils.spectral_norm
        net = paddle.nn.Sequential(
            norm(paddle.nn.Conv2D(3, 4, 3), dim=0),
            paddle.nn.ReLU(),
            paddle.nn.Flatten(),
            norm(paddle.nn.Linear(64, 5), dim=1),
        )
        net.train()
        net(paddle.to_tensor(x))
        net.eval()
    declared = {"2.layer": (4, 4, 4)}
    assert up.port(k, net, check_input=x, flatten=declared).max_abs_diff < 1e-5
    assert up.port(net, k, check_input=x, flatten=declared).max_abs_diff < 1e-5


def test_a_normed_linear_whose_outputs_make_a_map_ports_with_them_and_u_reordered():
    import keras
    import torch
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    t = torch.nn.Sequential(
        spectral_norm(torch.nn.Linear(4, 18)),
        torch.nn.Unflatten(1, (2, 3, 3)),
        torch.nn.Conv2d(2, 3, 3, padding=1),
        torch.nn.Flatten(),
    )
    trained(t, X)
    k = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.SpectralNormalization(keras.layers.Dense(18)),
            keras.layers.Reshape((3, 3, 2)),
            keras.layers.Conv2D(3, 3, padding="same"),
            keras.layers.Permute((3, 1, 2)),
            keras.layers.Flatten(),
        ]
    )
    trained(k, X)
    assert up.port(t, k, check_input=X, unflatten={"0": (2, 3, 3)}).max_abs_diff < 1e-6
    assert up.port(k, t, check_input=X, unflatten={"0.layer": (2, 3, 3)}).max_abs_diff < 1e-6


def test_power_iterations_that_differ_are_listed_as_a_setting():
    """How many power iterations a norm runs per call in training is a setting
    of the pair, as a BatchNorm's momentum is: listed, with no warning, since
    outputs at inference do not depend on it."""
    import warnings

    import keras
    import torch
    from torch.nn.utils.parametrizations import spectral_norm

    wrap = keras.layers.SpectralNormalization
    k = keras.Sequential([keras.Input((4,)), wrap(keras.layers.Dense(3), power_iterations=2)])
    trained(k, X)
    for form in ("hook", "parametrization"):
        norm = torch.nn.utils.spectral_norm if form == "hook" else spectral_norm
        t = torch.nn.Sequential(norm(torch.nn.Linear(4, 3)))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            report = up.port(k, t)
        assert report.differences == ["0.layer -> 0: power_iterations 2 (keras) vs 1 (torch)"]
        same = torch.nn.Sequential(norm(torch.nn.Linear(4, 3), n_power_iterations=2))
        assert up.port(k, same).differences == []
