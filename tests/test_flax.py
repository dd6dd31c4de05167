"""What is Flax NNX's own: ties as nnx.find_duplicates sees them, the trainable
flag NNX lacks, refusals, gradients kept without weak references, detection."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from unified_params import spec as S

pytestmark = pytest.mark.usefixtures("_flax")


@pytest.fixture
def _flax():
    needs("flax")


def _duplicates(model) -> list[list[str]]:
    """nnx.find_duplicates as paths of the library (a Sequential's positions are its own)."""
    from flax import nnx

    def path(parts):
        return ".".join(str(p) for p in parts if p != "layers")

    return [[path(p) for p in group] for group in nnx.find_duplicates(model)]


def test_ties_are_what_nnx_find_duplicates_finds():
    from flax import nnx

    rngs = nnx.Rngs(0)
    shared = nnx.Linear(8, 8, rngs=rngs)
    net = nnx.Sequential(nnx.Linear(4, 8, rngs=rngs), nnx.relu, shared, nnx.relu, shared)
    assert _duplicates(net) == [["2", "4"]]
    assert up.ties(net) == [("2.weight", "4.weight"), ("2.bias", "4.bias")]
    assert len(up.wrap(net).params()) == 4 and up.wrap(net).count() == 40 + 72


def test_a_model_without_values_ties_and_unties_without_reading_any():
    """``nnx.eval_shape``'s model: untying copies a variable that holds a
    shape and no values into one that holds a shape and no values (before:
    a TypeError from reading the ``jax.ShapeDtypeStruct`` as an array)."""
    import jax
    from flax import nnx

    net = nnx.eval_shape(
        lambda: nnx.Sequential(
            nnx.Linear(4, 4, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(4, 4, rngs=nnx.Rngs(1))
        )
    )
    up.tie(net, "0.weight", "2.weight")
    assert up.ties(net) == [("0.weight", "2.weight")] and _duplicates(net) == [["0.kernel", "2.kernel"]]
    up.untie(net, "2.weight")
    assert up.ties(net) == [] and net.layers[2].kernel is not net.layers[0].kernel
    assert isinstance(net.layers[2].kernel.get_value(), jax.ShapeDtypeStruct)
    with pytest.raises(up.NotBuiltError, match="At path '2.weight'"):
        up.wrap(net)["2.weight"].numpy()


def test_layer_and_parameter_ties_change_what_nnx_sees():
    from flax import nnx

    net = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 8)).build("flax")
    up.initialize(net, up.init.Normal(0, 0.5), seed=1)
    assert nnx.find_duplicates(net) == []
    up.tie(net, "2", "4")  # layer level: one Linear at both positions
    assert _duplicates(net) == [["2", "4"]] and net.layers[2] is net.layers[4]
    up.untie(net, "4")
    assert nnx.find_duplicates(net) == [] and net.layers[2] is not net.layers[4]
    up.tie(net, "2.weight", "4.weight")  # parameter level: one kernel, two biases
    assert net.layers[2].kernel is net.layers[4].kernel
    assert net.layers[2].bias is not net.layers[4].bias
    assert _duplicates(net) == [["2.kernel", "4.kernel"]]
    params = nnx.state(net, nnx.Param)  # NNX's own state lists the shared kernel once
    assert len(nnx.to_flat_state(params)) == 5
    x = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    grads = up.gradients(net, x)
    assert "4.weight" not in grads and grads["2.weight"].shape == (8, 8)
    own = nnx.grad(lambda m: m(x).sum())(net)  # NNX sums the kernel's two uses too
    np.testing.assert_allclose(grads["2.weight"], np.asarray(own["layers"][2]["kernel"][...]).T, rtol=1e-6)


def test_trainable_is_metadata_an_optimizer_filter_reads():
    import optax
    from flax import nnx

    from unified_params.backends.flax import is_trainable

    net = S.Sequential(S.Linear(4, 3), S.ReLU(), S.Linear(3, 2)).build("flax")
    m = up.wrap(net)
    m["0.weight"].trainable = False
    assert net.layers[0].kernel.get_metadata()["trainable"] is False
    assert not m["0.weight"].trainable and m["0.bias"].trainable
    grads = up.gradients(net, np.ones((2, 4), "float32"))
    assert "0.weight" not in grads and set(grads) == {"0.bias", "2.weight", "2.bias"}
    before = np.asarray(net.layers[0].kernel[...]).copy()
    optimizer = nnx.Optimizer(net, optax.sgd(0.1), wrt=nnx.All(nnx.Param, lambda _, v: is_trainable(v)))
    step = nnx.grad(
        lambda model: model(np.ones((2, 4), "float32")).sum(), argnums=nnx.DiffState(0, optimizer.wrt)
    )
    optimizer.update(net, step(net))
    np.testing.assert_array_equal(np.asarray(net.layers[0].kernel[...]), before)  # frozen: untouched
    m["0.weight"].trainable = True
    assert "0.weight" in up.gradients(net, np.ones((2, 4), "float32"))


def test_batch_statistics_are_buffers_that_cannot_train():
    net = S.Sequential(S.Conv2d(3, 4, 3), S.BatchNorm2d(4)).build("flax")
    m = up.wrap(net)
    assert m["1.running_mean"].kind == "buffer" and not m["1.running_mean"].trainable
    with pytest.raises(up.UnsupportedError, match="buffer|state"):
        m["1.running_mean"].trainable = True


def test_an_unflipped_transposed_convolution_is_torch_s_weight_mirrored():
    """Flax's default ``ConvTranspose`` (``transpose_kernel=False``) applies a
    ``(*k, in, out)`` kernel as a plain convolution does: torch's weight,
    mirrored along its spatial axes. Its canonical weight is torch's, so a
    port between the two is exact both ways, a slice write lands where the
    canonical index says, and the native layout stays Flax's own. Before,
    every walk of a model holding one was refused."""
    needs("torch")
    import torch
    from flax import nnx

    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 4, (3, 2), stride=2)).eval()
    mirrored = nnx.Sequential(
        nnx.ConvTranspose(
            3, 4, (3, 2), strides=(2, 2), padding="VALID", transpose_kernel=False, rngs=nnx.Rngs(0)
        )
    )
    m = up.wrap(mirrored)
    assert m["0.weight"].shape == (3, 4, 3, 2) and m["0.weight"].native_shape == (3, 2, 3, 4)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6)).astype("float32")
    report = up.port(source, mirrored, check_input=x)
    assert report.max_abs_diff <= 1e-5
    assert report.conversions == ["0.weight -> 0.weight: flax axes (2, 3, 0, 1), mirrored along (2, 3)"]
    weight = source[0].weight.detach().numpy()
    np.testing.assert_array_equal(m["0.weight"].numpy(), weight)
    kernel = np.asarray(mirrored.layers[0].kernel.value)
    np.testing.assert_array_equal(kernel, weight.transpose(2, 3, 0, 1)[::-1, ::-1])  # Flax's own
    np.testing.assert_array_equal(m["0.weight"].numpy(layout="native"), kernel)
    m["0.weight"][1, 2, 0, 1] = 7.0  # the canonical index: kernel row 0, column 1, mirrored natively
    assert float(mirrored.layers[0].kernel.value[2, 0, 1, 2]) == 7.0
    back = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 4, (3, 2), stride=2)).eval()
    assert up.port(mirrored, back, check_input=x).max_abs_diff <= 1e-5
    built = S.Sequential(S.ConvTranspose2d(3, 4, 3, stride=2)).build("flax")
    assert built.layers[0].transpose_kernel and up.wrap(built)["0.weight"].shape == (3, 4, 3, 3)


def test_a_gru_is_refused_with_the_reason():
    with pytest.raises(up.UnsupportedError, match="b_hn"):
        S.Sequential(S.GRU(3, 5)).build("flax")


def test_gradients_live_until_the_model_goes():
    """NNX variables take no weak reference: the store keeps them with their
    gradients and lets both go with the model."""
    from unified_params.backends import get_adapter

    store = get_adapter("flax").grads
    net = S.Sequential(S.Linear(4, 3)).build("flax")
    up.gradients(net, np.ones((2, 4), "float32"))
    kernel = net.layers[0].kernel
    assert up.wrap(net)["0.weight"].grad is not None and id(kernel) in store._held
    gone = weakref.ref(net)
    del net, kernel
    gc.collect()
    assert gone() is None and not store._held


def test_flax_models_are_detected_without_importing_anything_else():
    from flax import nnx

    assert up.backend_of(nnx.Linear(2, 3, rngs=nnx.Rngs(0))) == "flax"
    with pytest.raises(up.UnsupportedError, match="flax.nnx.Module"):
        up.backend_of(nnx.Rngs(0))  # an NNX object, but not a module


def test_training_mode_moves_batch_statistics_and_the_mode_is_given_back():
    net = S.Sequential(S.Conv2d(3, 4, 3), S.BatchNorm2d(4)).build("flax")
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    mean = up.wrap(net)["1.running_mean"]
    before = mean.numpy().copy()
    up.forward(net, x)
    np.testing.assert_array_equal(mean.numpy(), before)  # inference: running statistics
    up.gradients(net, x, training=True)
    assert not np.array_equal(mean.numpy(), before)  # training: batch statistics moved them
    assert net.layers[1].use_running_average is False  # the layer's own mode, given back


def test_an_rnn_that_computes_otherwise_is_no_lstm():
    """A reversed or time-major nnx.RNN holds the same weights as torch's LSTM, and
    a residual SimpleCell those of torch's RNN, but each computes something else:
    it is a layer of no declared kind, and a port refuses it instead of copying
    weights into it."""
    from flax import nnx

    torch_lstm = S.Sequential(S.LSTM(3, 5)).build("flax")
    assert up.wrap(torch_lstm)[0].kind == "lstm"
    for options in ({"reverse": True}, {"return_carry": True}):
        odd = nnx.Sequential(nnx.RNN(nnx.OptimizedLSTMCell(3, 5, rngs=nnx.Rngs(0)), **options))
        assert up.wrap(odd)[0].kind == "other", options
        with pytest.raises(up.PortError, match="do not match"):
            up.port(torch_lstm, odd)
    # A SimpleCell that adds its carry before the activation is no Elman RNN either.
    elman = S.Sequential(S.RNN(3, 5)).build("flax")
    assert up.wrap(elman)[0].kind == "rnn"
    residual = nnx.Sequential(nnx.RNN(nnx.SimpleCell(5, 5, residual=True, rngs=nnx.Rngs(0))))
    assert up.wrap(residual)[0].kind == "other"
    with pytest.raises(up.PortError, match="do not match"):
        up.port(S.Sequential(S.RNN(5, 5)).build("flax"), residual)


def test_a_time_major_rnn_takes_canonical_batch_first_inputs():
    """``nnx.RNN(time_major=True)`` is an LSTM that takes (time, batch, features),
    as torch's default LSTM does: ``m(x)`` swaps batch and time on the way in and
    out, and a port from a batch-first LSTM verifies."""
    import jax.numpy as jnp
    from flax import nnx

    x = np.random.default_rng(2).standard_normal((2, 5, 3)).astype("float32")
    source = S.Sequential(S.LSTM(3, 4)).build("flax")
    up.initialize(source, up.init.Normal(0, 0.5), seed=1)
    time_first = nnx.Sequential(nnx.RNN(nnx.OptimizedLSTMCell(3, 4, rngs=nnx.Rngs(0)), time_major=True))
    assert up.wrap(time_first)[0].kind == "lstm"
    assert up.port(source, time_first, check_input=x).max_abs_diff <= 1e-6
    native = np.asarray(time_first(jnp.asarray(x.swapaxes(0, 1)))).swapaxes(0, 1)
    np.testing.assert_allclose(up.wrap(time_first)(x), native, atol=1e-6)
    np.testing.assert_allclose(native, up.wrap(source)(x), atol=1e-5)


def test_a_module_listed_by_name_runs_on_an_input_its_first_called_layer_takes():
    """``self.conv`` then ``self.bn``: NNX lists ``bn`` first, by name. Before,
    m(x) checked the image against the BatchNorm's 4 channels and refused it;
    now the first listed layer the input fits takes it, channels moved last."""
    import jax.numpy as jnp
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
            self.bn = nnx.BatchNorm(4, use_running_average=True, rngs=rngs)

        def __call__(self, x):
            return self.bn(self.conv(x))

    model = Block(nnx.Rngs(0))
    assert list(up.wrap(model).params())[0] == "bn.weight"
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype("float32")
    want = np.moveaxis(np.asarray(model(jnp.asarray(np.moveaxis(x, 1, -1)))), -1, 1)
    np.testing.assert_allclose(up.wrap(model)(x), want, rtol=1e-6)
    grads = up.gradients(model, x)
    assert grads["conv.weight"].shape == (4, 3, 3, 3)
    with pytest.raises(up.ShapeError, match="first batchnorm layer"):  # fits no layer: as before
        up.wrap(model)(np.zeros((2, 5, 8, 8), "float32"))


def test_an_nnx_param_is_refused_for_a_square_linear_and_a_bare_jax_array_is_not():
    """An nnx.Param of a Linear holds (in, out): for a square layer its shape
    fits the canonical (out, in) too, so it is refused until told; a bare
    jax.Array, as a numpy array, is taken as canonical."""
    import jax.numpy as jnp
    from flax import nnx

    needs("torch")
    import torch

    kernel = nnx.Linear(4, 4, rngs=nnx.Rngs(0)).kernel
    t = torch.nn.Linear(4, 4)
    with pytest.raises(up.ShapeError, match="flax keeps this leaf \\(in, out\\)"):
        up.wrap(t)["weight"].set(kernel)
    with pytest.raises(up.CheckpointError, match="flax tensor"):
        up.load_state_dict(t, {"weight": kernel, "bias": jnp.zeros(4)})
    up.load_state_dict(t, {"weight": jnp.asarray(kernel.value), "bias": jnp.zeros(4)})
    np.testing.assert_array_equal(t.weight.detach().numpy(), np.asarray(kernel.value))


@pytest.mark.parametrize(
    "wrapper, says",
    [
        ("WeightNorm", "scales it by arrays it keeps in a plain dict"),
        ("SpectralNorm", "writes the result back in their place"),
    ],
)
def test_a_norm_wrapper_whose_state_no_listed_variable_holds_is_refused(wrapper, says):
    """``nnx.WeightNorm`` normalises its layer's kernel on each call and scales
    it by plain arrays; ``nnx.SpectralNorm`` divides it by its largest singular
    value, from a vector kept in a plain dict, and writes it back in place.
    Before, a port from a torch Linear wrote the kernel as the weight, and the
    outputs differed (by 0.49 and 0.37 here) with nothing said; a listing left
    the scales (the vector and sigma) out."""
    needs("torch")
    import torch
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.lin = getattr(nnx, wrapper)(nnx.Linear(8, 4, rngs=rngs), rngs=rngs)

        def __call__(self, x):
            return self.lin(x)

    net = Net(nnx.Rngs(0))
    kernel = np.array(net.lin.layer_instance.kernel[...])
    for call in (
        lambda: up.wrap(net).params(),
        lambda: up.port(torch.nn.Sequential(torch.nn.Linear(8, 4)), net),
    ):
        with pytest.raises(up.UnsupportedError, match=f"An nnx.{wrapper} wraps a Linear") as err:
            call()
        assert says in str(err.value)
    np.testing.assert_array_equal(np.array(net.lin.layer_instance.kernel[...]), kernel)
