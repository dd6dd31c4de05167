"""Canonical state, round trips and ports across the three frameworks."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import unified_params as up
from tests import memory
from tests.conformance import specs
from tests.conftest import needs
from tests.frameworks import forward
from tests.native import for_backend, naive_flatten
from unified_params import spec as S

NAMES = sorted(specs.EXPECTED)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_is_canonical_on_every_backend(backend, name):
    if specs.refused(backend, specs.BUILDERS[name]()):
        return
    model = specs.BUILDERS[name]().build(backend)
    state = up.state_dict(model)
    expected = specs.EXPECTED[name]
    got = {k: v.shape for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert got == expected  # Keras' single LSTM bias and stacked GRU bias are split
    assert [k for k in state if k in expected] == list(expected)
    native = up.state_dict(model, layout="native")
    assert list(native) == [k for k, p in up.wrap(model).params().items() if p.persistent]


def test_state_dict_has_one_entry_per_tie_group(backend):
    model = specs.shared().build(backend)
    state = up.state_dict(model)
    assert "2.weight" in state and "4.weight" not in state and len(state) == 6


def test_a_shared_layer_ports_at_each_of_its_positions(backends):
    """The textbook's shared layer (one Linear at positions 2 and 4) into the
    same architecture without the share, and back: every position is paired,
    as a file's aliases load it. Before, the port counted 3 layers against 4
    and refused. Into the shared model, a source whose two layers differ is
    refused with the destination as it was: one variable cannot take both."""
    from tests.conformance.test_tying import untied

    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    for a in backends:
        for b in backends:
            shared = specs.shared().build(a)
            up.initialize(shared, up.init.Normal(0, 0.5), seed=4)
            separate = untied().build(b)
            report = up.port(shared, separate, check_input=x)
            assert report.max_abs_diff <= 1e-5 and [p[:2] for p in report.pairs][1:3] == [
                ("2", "2"),
                ("4", "4"),
            ]
            m = up.wrap(separate)
            np.testing.assert_array_equal(m["4.weight"].numpy(), m["2.weight"].numpy())
            # The share is not carried over, and the report says so and how to make it.
            (note,) = [n for n in report.notes if n.startswith("Tied in the source")]
            assert "'2.weight' and '4.weight'; '2.bias' and '4.bias'" in note
            assert note.endswith("up.tie(model, '2.weight', '4.weight').")
            up.tie(separate, "2.weight", "4.weight")
            up.tie(separate, "2.bias", "4.bias")
            assert not [n for n in up.port(shared, separate).notes if n.startswith("Tied")]
            back = specs.shared().build(a)
            again = up.port(separate, back, check_input=x)
            assert again.max_abs_diff <= 1e-5  # the two agree: one value
            assert not [n for n in again.notes if n.startswith("Tied")]
            differing = untied().build(b)
            up.initialize(differing, up.init.Normal(0, 0.5), seed=5)
            before = up.state_dict(back)
            with pytest.raises(
                up.PortError, match=r"'4.weight' \(from the source's '4'\) against '2.weight'"
            ):
                up.port(differing, back)
            assert all(np.array_equal(v, before[k]) for k, v in up.state_dict(back).items()), (a, b)


def test_a_tie_the_destination_cannot_make_is_noted_without_offering_it(backend):
    """A torch language model's output layer tied to its embedding, ported into
    the same architecture untied: where the two weights share a layout (torch),
    the note offers the ``up.tie`` call, which then ties them; where they do not
    (a Dense kernel is the embedding's transpose), it says so instead."""
    needs("torch")
    spec = S.Sequential(S.Embedding(10, 4), S.Linear(4, 4), S.Linear(4, 10, bias=False))
    source = spec.build("torch")
    source[2].weight = source[0].weight
    dst = spec.build(backend)
    report = up.port(source, dst, check_input=np.array([[1, 2, 3]]))
    (note,) = [n for n in report.notes if n.startswith("Tied in the source")]
    assert f"apart in the {backend} model: '0.weight' and '2.weight'." in note
    if up.wrap(dst)["2.weight"].native_shape == up.wrap(dst)["0.weight"].native_shape:
        assert note.endswith("up.tie(model, '0.weight', '2.weight').")
        up.tie(dst, "0.weight", "2.weight")
        assert up.ties(dst) == [("0.weight", "2.weight")]
    else:
        assert "keeps them in different layouts, so one variable cannot be both" in note
        assert "up.tie" not in note


def _round_trip(name: str, through: list[str]) -> None:
    """Port a seeded torch model through ``through`` and back to torch: outputs agree
    at every step, and torch gets its values back bit for bit (where a framework
    keeps one LSTM bias, the sum of the two)."""
    spec = specs.BUILDERS[name]()
    x = specs.example_input(name)
    start = spec.build("torch")
    up.initialize(start, up.init.Normal(0, 0.3), seed=9)
    # He-normal Linear weights keep eight stacked ReLU layers (nested) from fading: the
    # outputs then depend on the input, which the check input needs to prove anything.
    up.initialize(start, {up.where(kind="linear", name="weight"): up.init.KaimingNormal()}, seed=9)
    chain = [start, *(spec.build(b) for b in through), spec.build("torch")]
    for src, dst in zip(chain, chain[1:], strict=False):
        report = up.port(src, dst, check_input=x, atol=1e-5)
        assert report.max_abs_diff <= 1e-5 and report.load.ok
    a, b = up.state_dict(start), up.state_dict(chain[-1])
    assert list(a) == list(b)
    merged = any(name in for_backend(x).summed_biases for x in through)
    for key in a:
        if merged and "bias" in key:
            continue  # one LSTM bias (b_ih + b_hh) on the way: checked below
        assert a[key].tobytes() == b[key].tobytes(), key
    if merged:
        np.testing.assert_array_equal(
            b["0.bias_ih_l0"] + b["0.bias_hh_l0"], a["0.bias_ih_l0"] + a["0.bias_hh_l0"]
        )
        assert not b["0.bias_hh_l0"].any()


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_every_backend(backends, name):
    """torch -> every other requested backend, in turn -> torch."""
    if "torch" not in backends or len(backends) < 2:
        pytest.skip("the round trip starts and ends on torch, through another backend")
    _round_trip(name, specs.able([b for b in backends if b != "torch"], specs.BUILDERS[name]()))


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_torch_nnx_keras_torch(backends, name):
    """The Flax NNX evidence: torch -> NNX -> Keras -> torch ends bitwise equal."""
    if not {"torch", "flax", "keras"} <= set(backends):
        pytest.skip("needs torch, flax and keras")
    if specs.refused("flax", specs.BUILDERS[name]()):
        return
    _round_trip(name, ["flax", "keras"])


@pytest.mark.parametrize("name", ["cnn", "lstm", "gru", "embedding", "norm"])
def test_ported_models_give_equal_outputs(backends, name):
    spec = specs.BUILDERS[name]()
    x = specs.example_input(name)
    backends = specs.able(backends, spec)
    if not backends:  # the one backend requested refuses this model (asserted)
        return
    source = spec.build(backends[0])
    up.initialize(source, up.init.Normal(0, 0.3), seed=4)
    if name == "cnn":  # running statistics are ported too
        up.wrap(source)["1.running_mean"].set(np.linspace(-1, 1, 4).astype("float32"))
        up.wrap(source)["1.running_var"].set(np.linspace(0.5, 2, 4).astype("float32"))
    want = forward(backends[0], source, x)
    for backend in backends[1:]:
        dst = spec.build(backend)
        report = up.port(source, dst)
        np.testing.assert_allclose(forward(backend, dst, x), want, rtol=1e-4, atol=1e-5, err_msg=backend)
        if any(name in for_backend(b).summed_biases for b in (backends[0], backend)):
            assert report.lossy and "one bias" in report.lossy[0]
        if name in for_backend(backend).converts_axes:
            assert any("axes" in c for c in report.conversions)


def test_port_matches_layers_whose_names_differ(backends):
    """A Keras model starting with a Flatten, a subclassed torch/paddle model."""
    from tests.conformance.test_model_styles import subclassed

    src_spec = S.Sequential(S.Linear(4, 6), S.Linear(6, 6), S.Linear(6, 6), S.Linear(6, 2))
    for backend in backends:
        source = src_spec.build(backends[0])
        up.initialize(source, up.init.Normal(0, 0.5), seed=1)
        dst = subclassed(backend)
        if for_backend(backend).sorted_listing:
            # NNX orders attributes by name (blocks, encoder, head), not by call: matched by
            # order, the layers disagree in shape, and the port refuses rather than guess.
            with pytest.raises(up.PortError, match="does not match"):
                up.port(source, dst)
            continue
        report = up.port(source, dst)
        assert [p[1] for p in report.pairs] == ["encoder", "blocks.0", "blocks.1", "head"]
        ref = S.Sequential(S.Linear(4, 6), S.Linear(6, 6), S.Linear(6, 6), S.Linear(6, 2)).build(backend)
        up.port(source, ref)
        for path, p in up.wrap(ref).params().items():
            target = {"0": "encoder", "1": "blocks.0", "2": "blocks.1", "3": "head"}[path.split(".")[0]]
            np.testing.assert_array_equal(up.wrap(dst)[target + "." + path.split(".")[1]].numpy(), p.numpy())


def test_port_with_a_flatten_first_keras_model(backends):
    if "keras" not in backends:
        pytest.skip("needs keras")
    import keras

    net = keras.Sequential(
        [keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    x = np.random.default_rng(1).standard_normal((3, 4)).astype("float32")
    net(x)
    for backend in backends:
        dst = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 1)).build(backend)
        report = up.port(net, dst, check_input=x)
        assert report.pairs == [("1", "0", "linear"), ("2", "2", "linear")]
        assert report.max_abs_diff < 1e-5


def test_mapping_overrides_the_order(backend):
    a = S.Sequential(S.Linear(4, 4), S.Linear(4, 4)).build(backend)
    b = S.Sequential(S.Linear(4, 4), S.Linear(4, 4)).build(backend)
    up.initialize(a, up.init.Normal(), seed=3)
    report = up.port(a, b, mapping={"0": "1", "1": "0"})
    assert report.pairs == [("0", "1", "linear"), ("1", "0", "linear")]
    np.testing.assert_array_equal(up.wrap(b)["1.weight"].numpy(), up.wrap(a)["0.weight"].numpy())


def test_batchnorm_hyperparameter_differences_are_reported(backends):
    """Listed in the report; an eps that differs (other outputs) also warns at the
    user's call when neither align nor a check input deals with it. A momentum
    that differs changes only training, and warns of nothing."""
    import warnings

    for backend in backends:
        src = S.Sequential(S.BatchNorm2d(4, eps=1e-3, momentum=0.01)).build(backends[0])
        dst = S.Sequential(S.BatchNorm2d(4)).build(backend)
        with pytest.warns(UserWarning, match=r"will not compute what the source does: 0 -> 0: eps") as said:
            report = up.port(src, dst)
        assert said[0].filename == __file__
        assert any("eps 0.001" in d and "1e-05" in d for d in report.differences), report.differences
        assert any("momentum 0.01" in d for d in report.differences)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            up.port(S.Sequential(S.BatchNorm2d(4, momentum=0.01)).build(backends[0]), dst)  # momentum only
            up.port(src, S.Sequential(S.BatchNorm2d(4)).build(backend), align="hyperparameters")


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_stacked_bidirectional_recurrent_layers_port_part_by_part(backends, kind):
    """torch and paddle keep two layers of both directions in one module; Keras and
    Flax NNX one module per layer and direction (in Bidirectional wrappers). A
    port pairs them part by part, forward before reverse, both ways; a pair run
    the wrong way round, or the wrong layer, would change the outputs."""
    x = np.random.default_rng(3).standard_normal((2, 5, 3)).astype("float32")
    able = [b for b in backends if for_backend(b).recurrent_stack(kind, 3, 4) is not None]
    for a in able:
        source = for_backend(a).recurrent_stack(kind, 3, 4)
        up.initialize(source, up.init.Normal(0, 0.5), seed=5)
        for b in able:
            report = up.port(source, for_backend(b).recurrent_stack(kind, 3, 4), check_input=x)
            assert report.max_abs_diff <= 1e-5, (a, b)
            assert len(report.pairs) == 4 and report.differences == [], (a, b, report.differences)


def test_a_recurrent_layer_taking_time_first_takes_canonical_batch_first_inputs(backends):
    """torch's LSTM takes (time, batch, features) by default, paddle's with
    time_major=True: ``m(x)``, a port's check and ``up.gradients`` give it the
    canonical batch-first input with those axes swapped, and its sequence comes
    back batch first. (Before, the layer read the batch as time: outputs off by
    0.15, and a right port refused on them.)"""
    x = np.random.default_rng(4).standard_normal((2, 5, 3)).astype("float32")
    batch_first = S.Sequential(S.LSTM(3, 4))
    for backend in backends:
        native = for_backend(backend)
        model = native.time_major_lstm(3, 4)
        if model is None:
            continue  # Keras and Flax NNX LSTMs of a declared kind are batch first
        up.initialize(model, up.init.Normal(0, 0.5), seed=6)
        want = native.forward(model, np.ascontiguousarray(x.swapaxes(0, 1))).swapaxes(0, 1)
        np.testing.assert_allclose(up.wrap(model)(x), want, atol=1e-6, err_msg=backend)
        for other in backends:
            dst = batch_first.build(other)
            assert up.port(model, dst, check_input=x).max_abs_diff <= 1e-5, (backend, other)
            np.testing.assert_allclose(up.forward(dst, x), want, atol=1e-5, err_msg=f"{backend}->{other}")
            back = native.time_major_lstm(3, 4)
            assert up.port(dst, back, check_input=x).max_abs_diff <= 1e-5, (other, backend)
        targets = np.ones((2, 5, 4), "float32")
        grads = up.gradients(model, x, loss="mse", targets=targets)
        twin = batch_first.build(backend)
        up.port(model, twin)
        for path, grad in up.gradients(twin, x, loss="mse", targets=targets).items():
            np.testing.assert_allclose(grads[path.removeprefix("0.")], grad, atol=1e-5, err_msg=path)


def test_an_rmsnorm_s_default_eps_is_torch_s_on_every_backend(backends):
    """``RMSNorm(eps=None)`` is torch's float32 machine epsilon, on every backend;
    against Keras' and NNX's own default (1e-6) the port says so, and align sets it."""
    x = np.random.default_rng(2).standard_normal((3, 5)).astype("float32") * 1e-3  # eps matters
    spec = S.Sequential(S.RMSNorm(5))
    for a in specs.able(backends, spec):
        source = spec.build(a)
        up.initialize(source, up.init.Normal(1, 0.5), seed=4)
        for b in specs.able(backends, spec):
            assert up.port(source, spec.build(b), check_input=x, atol=0, rtol=1e-6).max_abs_diff <= 1e-6
            dst = S.Sequential(S.RMSNorm(5, eps=1e-6)).build(b)
            with pytest.warns(UserWarning, match=r"0 -> 0: eps 1.19209e-07 \(\w+\) vs 1e-06"):
                up.port(source, dst)
            with pytest.raises(up.PortError, match="differ"):
                up.port(source, dst, check_input=x, atol=0, rtol=1e-3)
            report = up.port(source, dst, align="hyperparameters", check_input=x, atol=0, rtol=1e-6)
            assert report.aligned == [f"0: eps 1e-06 -> 1.19209e-07 (as {up.backend_of(source)}'s 0)"]


def test_settings_no_align_can_set_are_reported_and_warned_of(backends):
    """An RNN's nonlinearity, a GroupNorm's number of groups and a convolution's
    stride and padding change what the same weights compute, and no framework
    lets a port change them: the port
    copies the weights, lists the difference, warns at the user's call (also
    with align, which sets eps alone) and, with a check input, is refused on
    outputs. The same settings on both sides verify."""
    import warnings

    x_seq = np.random.default_rng(0).standard_normal((2, 4, 3)).astype("float32")
    x_map = np.random.default_rng(1).standard_normal((2, 8, 4, 4)).astype("float32")
    cases = [  # source spec, destination spec, input, the difference's words
        (S.RNN(3, 5, nonlinearity="relu"), S.RNN(3, 5), x_seq, "activation relu"),
        (S.GroupNorm(2, 8, eps=1e-3), S.GroupNorm(4, 8), x_map, "num_groups 2"),
        (S.Conv2d(8, 4, 3, stride=2), S.Conv2d(8, 4, 3), x_map, "stride 2, 2"),
        (S.Conv2d(8, 4, 3, padding="same"), S.Conv2d(8, 4, 3), x_map, "padding same (1/1, 1/1)"),
    ]
    for source_spec, dst_spec, x, words in cases:
        for a in backends:
            source = S.Sequential(source_spec).build(a)
            up.initialize(source, up.init.Normal(0, 0.5), seed=3)
            for b in backends:
                dst = S.Sequential(dst_spec).build(b)
                with pytest.warns(
                    UserWarning, match=rf"will not compute what the source does: 0 -> 0: {re.escape(words)}"
                ):
                    report = up.port(source, dst, align="hyperparameters")
                assert any(words in d for d in report.differences), (a, b, report.differences)
                assert not any("eps" in d for d in report.differences)  # aligned, as listed
                assert [line.split(":")[1].split()[0] for line in report.aligned] == (
                    ["eps"] if isinstance(source_spec, S.GroupNorm) else []
                ), report.aligned
                with pytest.raises(up.PortError, match="differ"):
                    up.port(source, S.Sequential(dst_spec).build(b), check_input=x)
                same = S.Sequential(source_spec).build(b)
                with warnings.catch_warnings():
                    warnings.simplefilter("error", UserWarning)
                    assert up.port(source, same, check_input=x).max_abs_diff <= 1e-5, (a, b)


def test_a_flattened_map_ports_without_a_check_input_where_a_framework_records_it(backends):
    """conv -> Flatten -> Linear: a channels-last framework (Keras, Flax NNX) orders the
    Linear's inputs (H, W, C), a channels-first one (C, H, W). Where the framework records
    its Flatten (a built Keras Sequential), the weight is canonical and the port is exact
    with no check input, both ways; where none does (an NNX Sequential), a port to a
    canonical model refuses (destination untouched) unless ``flatten=`` declares the map;
    after a 1 x 1 map (global pooling) every port verifies."""
    from tests.conftest import assert_unchanged, snapshot

    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    spatial = S.Sequential(S.Conv2d(3, 4, 3), S.ReLU(), S.Flatten(), S.Linear(64, 2))
    pooled = S.Sequential(S.Conv2d(3, 4, 6), S.ReLU(), S.Flatten(), S.Linear(4, 2))
    for a in backends:
        for b in backends:
            source = spatial.build(a, input_shape=(3, 6, 6))
            up.initialize(source, up.init.Normal(0, 0.3), seed=1)
            dst = spatial.build(b, input_shape=(3, 6, 6))
            if naive_flatten(a) == naive_flatten(b):
                report = up.port(source, dst)
                assert report.notes == [], (a, b)
            else:
                before = snapshot(dst)
                with pytest.raises(
                    up.PortError, match=r"4 channels at 16 positions.*flatten=\{'3': \(4, H, W\)\}"
                ):
                    up.port(source, dst)
                assert_unchanged(before, dst)
                report = up.port(source, dst, flatten={"3": (4, 4, 4)})
                assert report.notes == [
                    f"3 -> 3: inputs reordered as a 4-channel map at 16 positions "
                    f"({'(C, H, W) to (H, W, C)' if naive_flatten(b) else '(H, W, C) to (C, H, W)'}), as declared"
                ]
            np.testing.assert_allclose(
                forward(b, dst, x), forward(a, source, x), atol=1e-5, err_msg=f"{a}->{b}"
            )
            source = pooled.build(a)
            up.initialize(source, up.init.Normal(0, 0.3), seed=1)
            assert up.port(source, pooled.build(b), check_input=x).max_abs_diff <= 1e-5, (a, b)


def test_a_recorded_flatten_makes_the_canonical_weight_torch_ordered(backends):
    """The canonical weight of a Linear after a recorded Flatten is the same array on
    every framework that records it (and every channels-first one): state_dict and
    p.numpy() agree with torch's, and a native write round-trips."""
    spatial = S.Sequential(S.Conv2d(3, 4, 3), S.ReLU(), S.Flatten(), S.Linear(64, 2))
    value = np.random.default_rng(3).standard_normal((2, 64)).astype("float32")
    for backend in backends:
        model = spatial.build(backend, input_shape=(3, 6, 6))
        p = up.wrap(model)["3.weight"]
        p.set(value)
        np.testing.assert_array_equal(p.numpy(), value)
        np.testing.assert_array_equal(up.state_dict(model)["3.weight"], value)
        p[0, :5] = 1.0  # an index write through the permuted layout
        assert (p.numpy()[0, :5] == 1).all() and (p.numpy()[1] == value[1]).all()
        if up.wrap(model).capabilities.channels_last and not naive_flatten(backend):
            p.set(value)  # natively (H*W*C, out): input q*C + c is canonical input c*H*W + q
            expected = value.reshape(2, 4, 16).transpose(2, 1, 0).reshape(64, 2)
            np.testing.assert_array_equal(p.numpy(layout="native"), expected)


def test_a_declared_flatten_checks_what_it_declares(backends):
    """flatten= names a paired Linear of either model with a (C, H, W) that fits its inputs."""
    spatial = S.Sequential(S.Conv2d(3, 4, 3), S.ReLU(), S.Flatten(), S.Linear(64, 2))
    a, b = (
        spatial.build(backends[0], input_shape=(3, 6, 6)),
        spatial.build(backends[-1], input_shape=(3, 6, 6)),
    )
    with pytest.raises(up.PortError, match=r"flatten names \['0'\], which pair no Linear"):
        up.port(a, b, flatten={"0": (4, 4, 4)})
    with pytest.raises(up.PortError, match=r"C x H x W = 64"):
        up.port(a, b, flatten={"3": (4, 5, 5)})
    with pytest.raises(up.PortError, match=r"C x H x W = 64"):
        up.port(a, b, flatten={"3": 64})


def test_a_flatten_inside_forward_is_refused_unless_declared_or_outputs_verify(backends):
    """conv -> a flatten done in forward -> Linear, written natively: no Flatten layer
    or graph tells the order. Between frameworks that flatten alike the port verifies;
    between the others it refuses without a check input; with one, a wrong order is
    refused on outputs, and a declared map verifies, noted in the report."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    for a in backends:
        for b in backends:
            source, dst = for_backend(a).flatten_in_forward(), for_backend(b).flatten_in_forward()
            up.initialize(source, up.init.Normal(0, 0.3), seed=3)
            if up.wrap(source).capabilities.channels_last == up.wrap(dst).capabilities.channels_last:
                assert up.port(source, dst, check_input=x).max_abs_diff <= 1e-5, (a, b)
                continue
            with pytest.raises(
                up.PortError, match=r"'fc' of the \w+ model may take a flattened map of 4 channels at 16"
            ):
                up.port(source, dst)
            with pytest.raises(up.PortError, match="output differs") as refused:
                up.port(source, dst, check_input=x)
            assert "no Flatten layer; nothing was declared" in refused.value.report.notes[0]
            report = up.port(source, dst, check_input=x, flatten={"fc": (4, 4, 4)})
            assert report.max_abs_diff <= 1e-5 and "as declared" in report.notes[0], (a, b)
            with pytest.raises(up.PortError, match="output differs"):
                up.port(source, dst, check_input=x, flatten={"fc": None})  # "no map": wrong here


def test_align_hyperparameters_makes_a_port_between_differing_defaults_verify(backends):
    """A BatchNorm with eps 1e-3 and momentum 0.01 (Keras' defaults, in torch's terms) into
    one with torch's 1e-5 and 0.1: refused on outputs, destination as it was; with
    align="hyperparameters" the destination takes the source's settings, in its own
    convention, the report lists them, and the outputs agree."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    source_spec = S.Sequential(S.Conv2d(3, 4, 3), S.BatchNorm2d(4, eps=1e-3, momentum=0.01))
    dest_spec = S.Sequential(S.Conv2d(3, 4, 3), S.BatchNorm2d(4))
    for a in backends:
        for b in backends:
            source = source_spec.build(a)
            up.initialize(source, up.init.Normal(0, 0.3), seed=5)
            up.wrap(source)["1.running_var"].set(np.full(4, 0.002, "float32"))  # eps matters
            dst = dest_spec.build(b)
            before = up.state_dict(dst)
            with pytest.raises(up.PortError, match="eps 0.001") as refused:
                up.port(source, dst, check_input=x)
            assert refused.value.report.aligned == []
            assert all(v.tobytes() == before[k].tobytes() for k, v in up.state_dict(dst).items())
            assert dst_settings(dst) == {"eps": pytest.approx(1e-5), "momentum": pytest.approx(0.1)}
            report = up.port(source, dst, check_input=x, align="hyperparameters")
            assert report.max_abs_diff <= 1e-5 and report.differences == [], (a, b)
            assert report.aligned == [
                f"1: eps 1e-05 -> 0.001 (as {a}'s 1)",
                f"1: momentum 0.1 -> 0.01 (as {a}'s 1)",
            ]
            assert dst_settings(dst) == {"eps": pytest.approx(1e-3), "momentum": pytest.approx(0.01)}
    with pytest.raises(up.PortError, match="align"):
        up.port(source, dst, align="everything")


def dst_settings(model) -> dict[str, float]:
    m = up.wrap(model)
    found = m.adapter.hyperparameters(m[1].native)
    return {k: found[k] for k in ("eps", "momentum")}


def test_rules_pair_layers_whose_order_and_names_differ(backends):
    """Ordered regex rules over source paths, with groups: the first that matches a
    whole path names the destination layer; None leaves a source layer out."""
    square = S.Sequential(S.Linear(4, 4), S.ReLU(), S.Linear(4, 4), S.ReLU(), S.Linear(4, 4))
    with_head = S.Sequential(
        S.Linear(4, 4), S.ReLU(), S.Linear(4, 4), S.ReLU(), S.Linear(4, 4), S.Linear(4, 3)
    )
    for a in backends:
        for b in backends:
            source = with_head.build(a)
            up.initialize(source, up.init.Normal(), seed=8)
            dst = square.build(b)
            rules = [(r"0", "4"), (r"4", "0"), (r"5", None), (r"(\d)", r"\1")]
            with warnings.catch_warnings():
                # Layers 0 and 4 trade places: a ReLU follows one and not the other, which
                # the port warns of where a framework shows it (test_output_activation.py).
                warnings.simplefilter("ignore", UserWarning)
                report = up.port(source, dst, mapping=rules)
            assert report.pairs == [("0", "4", "linear"), ("2", "2", "linear"), ("4", "0", "linear")]
            got, want = up.state_dict(dst), up.state_dict(source)
            for s_path, d_path in (("0", "4"), ("2", "2"), ("4", "0")):
                for leaf in ("weight", "bias"):
                    assert got[f"{d_path}.{leaf}"].tobytes() == want[f"{s_path}.{leaf}"].tobytes(), (a, b)


def test_rules_that_leave_layers_unmatched_name_both_sides_in_one_error(backends):
    from tests.conftest import assert_unchanged, snapshot

    spec = S.Sequential(S.Linear(4, 4), S.Linear(4, 4), S.Linear(4, 4))
    source, dst = spec.build(backends[0]), spec.build(backends[-1])
    before = snapshot(dst)
    with pytest.raises(up.PortError) as refused:
        up.port(source, dst, mapping=[(r"0", "0"), (r"1", "7")])
    message = str(refused.value)
    assert "source layers no rule matches: ['2']" in message
    assert "'1' -> '7' (rule 1)" in message
    assert "destination layers no rule reaches: ['1', '2']" in message
    assert_unchanged(before, dst)
    with pytest.raises(up.PortError, match=r"reached twice: '0' and '1' -> '0'"):
        up.port(source, dst, mapping=[(r"[01]", "0"), (r"2", "2")])
    with pytest.raises(up.PortError, match="no regular expression"):
        up.port(source, dst, mapping=[(r"(", "0")])
    with pytest.raises(up.PortError, match=r"rule 0 must be a \(pattern, replacement\)"):
        up.port(source, dst, mapping=[("0",)])


def test_a_pair_that_cannot_match_says_what_differs(backends):
    """Layers whose canonical shapes differ are refused, naming the leaf."""
    for a in backends:
        for b in backends:
            source = S.Sequential(S.Conv2d(3, 4, 3)).build(a)
            with pytest.raises(up.PortError, match=r"weight is \(4, 3, 3, 3\) in the source, \(5, 3, 3, 3\)"):
                up.port(source, S.Sequential(S.Conv2d(3, 5, 3)).build(b))


MAP = {"4": (4, 4, 4)}  # the Linear takes the flattened (C, H, W) map


def _lean_or_full(full: bool) -> S.Sequential:
    """A convolution, a BatchNorm and a Linear, with their biases and the BatchNorm's
    scale and shift, or with none of them."""
    return S.Sequential(
        S.Conv2d(3, 4, 3, bias=full), S.BatchNorm2d(4, affine=full), S.ReLU(), S.Flatten(),
        S.Linear(4 * 4 * 4, 2, bias=full),
    )  # fmt: skip


def test_a_leaf_one_side_lacks_is_filled_or_left_out_by_its_neutral_value(backends):
    """A bias or a BatchNorm scale on one side only (torchvision's convolutions have no
    bias, keras.applications' do): the destination's is set to its neutral value (zeros,
    ones), and the models compute the same; a source's is left out when it holds that
    value, and refused, with nothing written, when not."""
    from tests.conftest import assert_unchanged, snapshot

    x = np.random.default_rng(0).uniform(size=(2, 3, 6, 6)).astype("float32")
    for a in backends:
        for b in backends:
            lean, full = _lean_or_full(False).build(a), _lean_or_full(True).build(b)
            up.initialize(lean, up.init.Normal(std=0.5), seed=1)
            up.initialize(full, up.init.Normal(std=0.5), seed=2)
            report = up.port(lean, full, check_input=x, flatten=MAP)
            assert report.absent == [
                f"0: bias set to zeros ({a}'s '0' has none)",
                f"1: weight set to ones ({a}'s '1' has none)",
                f"1: bias set to zeros ({a}'s '1' has none)",
                f"4: bias set to zeros ({a}'s '4' has none)",
            ]
            params = up.wrap(full).params()
            assert not params["0.bias"].numpy().any() and not params["4.bias"].numpy().any()
            np.testing.assert_array_equal(params["1.weight"].numpy(), np.ones(4, "float32"))
            np.testing.assert_allclose(forward(b, full, x), forward(a, lean, x), atol=1e-5)

            report = up.port(full, lean, flatten=MAP)  # back: every extra leaf holds its neutral value
            assert report.absent == [
                f"0: bias is all zeros, left out ({a}'s '0' has none)",
                f"1: weight is all ones, left out ({a}'s '1' has none)",
                f"1: bias is all zeros, left out ({a}'s '1' has none)",
                f"4: bias is all zeros, left out ({a}'s '4' has none)",
            ]

            up.initialize(full, up.init.Normal(std=0.5), seed=3)
            before = snapshot(lean)
            with pytest.raises(
                up.PortError, match=rf"{b}'s '0' bias is not all zeros \(off by up to [0-9.]+\) and {a}'s '0' "
                r"\(Conv\w*\) has no bias; .*'1' weight is not all ones .*\(1 more\)"
            ):  # fmt: skip
                up.port(full, lean, flatten=MAP)
            assert_unchanged(before, lean)


def _conv_bn(bias: bool) -> S.Sequential:
    return S.Sequential(
        S.Conv2d(3, 4, 3, bias=bias), S.BatchNorm2d(4), S.ReLU(), S.Flatten(), S.Linear(64, 2)
    )


def test_a_bias_before_a_batchnorm_folds_into_its_running_mean(backends):
    """A convolution's bias the destination lacks, of other values than zeros, is
    refused, with the way out named; with ``fold_biases=True`` it goes into the next
    BatchNorm's running mean, and the models agree in inference and in training,
    where the running means then move in step (the source's minus the bias)."""
    x = np.random.default_rng(0).uniform(size=(2, 3, 6, 6)).astype("float32")
    for a in backends:
        for b in backends:
            src, dst = _conv_bn(True).build(a), _conv_bn(False).build(b)
            up.initialize(src, up.init.Normal(std=0.5), seed=1)
            stats = up.wrap(src).params()
            stats["1.running_mean"].set(np.linspace(-0.3, 0.3, 4))
            stats["1.running_var"].set(np.linspace(0.5, 2.0, 4))
            bias = stats["0.bias"].numpy()
            with pytest.raises(up.PortError, match=r"'0' bias is not all zeros .* pass fold_biases=True"):
                up.port(src, dst, flatten=MAP)
            report = up.port(src, dst, flatten=MAP, check_input=x, fold_biases=True)
            (line,) = report.absent
            assert line.startswith(f"0: bias folded into the running_mean of {b}'s '1' ('0' has no bias")
            mean = up.wrap(dst).params()["1.running_mean"].numpy()
            np.testing.assert_allclose(mean, np.linspace(-0.3, 0.3, 4) - bias, atol=1e-6)

            # In training, a batch's mean absorbs the bias: the same outputs, and running
            # means that stay the bias apart.
            np.testing.assert_allclose(
                up.wrap(dst)(x, training=True), up.wrap(src)(x, training=True), atol=1e-4
            )
            moved_src = up.wrap(src).params()["1.running_mean"].numpy()
            moved_dst = up.wrap(dst).params()["1.running_mean"].numpy()
            assert not np.allclose(moved_src, np.linspace(-0.3, 0.3, 4))  # a step was taken
            np.testing.assert_allclose(moved_dst, moved_src - bias, atol=1e-5)

            # No BatchNorm after the bias: nothing to fold into, and the port says so.
            plain = S.Sequential(S.Conv2d(3, 4, 3), S.ReLU()).build(a)
            up.initialize(plain, up.init.Normal(std=0.5), seed=1)
            target = S.Sequential(S.Conv2d(3, 4, 3, bias=False), S.ReLU()).build(b)
            # (A framework with a graph says what the convolution feeds instead.)
            why = r"no BatchNorm follows it on both sides|the \w+'s graph \(\w+\) sends its outputs to a ReLU first"
            with pytest.raises(up.PortError, match=rf"no fold: ({why})"):
                up.port(plain, target, fold_biases=True)


def test_leaf_rules_rename_the_leaves_of_a_kind_the_library_does_not_know(backends):
    """A PReLU keeps each framework's own leaf name; ``leaves`` renames the source's so
    the pair compares, and the value arrives where the destination keeps it."""
    for a in backends:
        for b in backends:
            (src, name_a), (dst, name_b) = for_backend(a).prelu(), for_backend(b).prelu()
            shape_a = up.wrap(src)[name_a].shape
            if shape_a != up.wrap(dst)[name_b].shape:
                continue  # PReLU slopes per channel on one side, shared on the other
            up.wrap(src)[name_a].set(np.full(shape_a, 0.75, "float32"))
            report = up.port(src, dst, leaves=[(name_a, name_b)])
            assert report.pairs == [("", "", "other")]
            np.testing.assert_array_equal(up.wrap(dst)[name_b].numpy(), np.full(shape_a, 0.75, "float32"))


def test_a_port_without_check_input_keeps_no_copy_of_the_destination(backends):
    """Every value is validated before the first write, so a port with nothing to
    verify afterwards holds at most about one tensor more at a time (tracemalloc sees
    the library's numpy buffers; TensorFlow adopts those it is handed); with a check input it keeps the destination's values,
    one copy of the model, to give back if the outputs differ. Traced in a process
    of its own: see `tests.memory`."""
    for a, b, without, checked, same in memory.result(_port_peaks, backends):
        assert without < 2 * (1 << 20), (a, b, without)  # the largest tensor is 1 MiB
        assert checked >= 4 << 20, (a, b, checked)  # the whole model, 4 MiB
        assert same, (a, b)


@memory.measured
def _port_peaks(backends: list[str]) -> list[tuple[str, str, int, int, bool]]:
    """For each pair of backends: what a port held at its peak beyond what it left
    in place (buffers a framework adopted), without and with a check input, and
    whether the destination holds the source's values (traced in a process of its own)."""
    spec = S.Sequential(*[S.Linear(512, 512, bias=False) for _ in range(4)])  # 4 x 1 MiB
    x = np.random.default_rng(0).standard_normal((2, 512)).astype("float32")  # zeros check nothing
    out = []
    for a in backends:
        for b in backends:
            source, dst = spec.build(a), spec.build(b)
            up.initialize(source, up.init.Normal(0, 512**-0.5), seed=9)  # outputs of order one
            up.port(source, dst)  # warm: layouts and kernels chosen
            held = []
            for check in (None, x):
                heap = memory.traced(lambda s=source, d=dst, c=check: up.port(s, d, check_input=c))
                held.append(heap.peak - heap.kept)
            same = up.state_dict(dst)["3.weight"].tobytes() == up.state_dict(source)["3.weight"].tobytes()
            out.append((a, b, held[0], held[1], same))
    return out


def test_a_check_input_that_cannot_tell_the_weights_apart_is_refused(backends):
    """A check passes by numpy.allclose's rule; where the source's outputs are all within
    atol of zero, or where they do not move with the input, any model near zero, or any
    that answers the head's bias, would pass too. The port refuses and gives the
    destination back, on every pair of backends."""
    net = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 3))
    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    for a in backends:
        for b in backends:
            faded = net.build(a)  # every output about 1e-8: below atol
            up.initialize(faded, {"*.weight": up.init.Normal(0, 1e-4), "*.bias": up.init.Zeros()}, seed=1)
            deaf = net.build(a)  # the output is the last bias, whatever the input
            up.initialize(deaf, {"*.weight": up.init.Zeros(), "*.bias": up.init.Normal(0, 1)}, seed=2)
            for source, said in ((faded, "within atol=1e-05 of zero"), (deaf, "ignores its input")):
                dst = net.build(b)
                before = up.state_dict(dst)
                with pytest.raises(up.PortError, match="cannot verify this port") as refused:
                    up.port(source, dst, check_input=x)
                assert said in str(refused.value), (a, b)
                assert refused.value.report.max_abs_diff <= 1e-5  # the outputs did agree
                assert all(v.tobytes() == before[k].tobytes() for k, v in up.state_dict(dst).items())
            up.port(faded, dst, check_input=x, atol=0)  # compared relatively: it proves something now
            assert up.state_dict(dst)["2.weight"].tobytes() == up.state_dict(faded)["2.weight"].tobytes()


def _lora_factors(model) -> tuple[str, str]:
    """The keys of a LoRA MLP's ``a`` and ``b`` factors: its parameters beyond
    the plain MLP's, ``a`` the one whose last axis is the rank."""
    plain = set(up.wrap(_LORA_MLP.build(up.wrap(model).backend)).params())
    extra = {k: p.shape for k, p in up.wrap(model).params().items() if k not in plain}
    (a, _), (b, _) = sorted(extra.items(), key=lambda item: item[1][-1] != _LORA_RANK)
    return a, b


_LORA_MLP, _LORA_RANK = S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 1)), 2


def test_a_lora_update_is_merged_when_ported_out_and_reset_when_ported_in(backends):
    """A Linear with a LoRA update (Keras' ``enable_lora``, NNX's ``LoRALinear``)
    ports into one without: its weight moves with the update merged in, so the
    outputs agree. Before: refused for the factors the destination lacks (on
    NNX with a hint to skip the update, which would have dropped it unnoticed).
    Ported into, the LoRA layer gets the source's weight, its ``b`` factor zeros
    and its ``a`` kept: the same outputs, the update trains on from zero."""
    x = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    lora = [a for a in backends if for_backend(a).with_lora(_LORA_MLP.build(a), 0, _LORA_RANK) is not None]
    if not lora:
        pytest.skip(f"no LoRA layer in {backends}")
    for a in lora:
        for b in backends:
            source = for_backend(a).with_lora(_LORA_MLP.build(a), 0, _LORA_RANK)
            dst = _LORA_MLP.build(b)
            report = up.port(source, dst, check_input=x)
            assert report.max_abs_diff <= 1e-5, (a, b)
            assert [n for n in report.notes if n.startswith("LoRA merged: the source's layer '0' adds")]
            base = up.wrap(source)["0.weight"].numpy()
            assert not np.allclose(up.wrap(dst)["0.weight"].numpy(), base, atol=1e-3)  # the update counted
            back = for_backend(a).with_lora(_LORA_MLP.build(a), 0, _LORA_RANK)
            key_a, key_b = _lora_factors(back)
            kept = up.wrap(back)[key_a].numpy()
            report = up.port(dst, back, check_input=x)
            assert report.max_abs_diff <= 1e-5, (b, a)
            assert [n for n in report.notes if n.startswith("LoRA reset: the destination's layer '0' adds")]
            m = up.wrap(back)
            assert not m[key_b].numpy().any() and np.array_equal(m[key_a].numpy(), kept)
