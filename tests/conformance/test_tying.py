"""Tying on every backend: shared layers, parameter ties, untie, summed gradients."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conformance import specs, textbook
from tests.conftest import needs
from tests.frameworks import forward
from unified_params import spec as S

X = np.random.default_rng(3).standard_normal((5, 4)).astype("float32")
Y = np.random.default_rng(4).standard_normal((5, 1)).astype("float32")


def untied():
    """The shared spec's architecture with its own layer at position 4."""
    return S.Sequential(
        S.Linear(4, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 1)
    )


def load_from(model, source):
    """Write ``source``'s values into ``model`` by canonical path (aliases resolved)."""
    src = up.wrap(source)
    for path, p in up.wrap(model).params().items():
        p.set(src[path].numpy("canonical"), layout="canonical")


def test_textbook_shared_layer_is_detected_natively(backend):
    net = textbook.shared_mlp(backend)
    a, b = textbook.expected(backend, "shared")["a"], textbook.expected(backend, "shared")["b"]
    bias_a, bias_b = a.replace("weight", "bias"), b.replace("weight", "bias")
    assert up.ties(net) == [(a, b), (bias_a, bias_b)]
    m = up.wrap(net)
    m[a][0, 0] = 100
    assert m[b][0, 0] == 100


def test_a_kernel_a_wrapper_also_holds_is_listed_at_its_layer(native):
    """Listed where a layer lays it out, canonical, the same path on every
    backend; the wrapper's path is an alias, and a look-up there answers with
    the layer's parameter (never the framework's layout under a canonical name)."""
    m = up.wrap(native.wrapper_holding_kernel(3))
    params = m.params()
    assert list(params) == ["0.layer.weight", "0.layer.bias"]
    weight, held = params["0.layer.weight"], f"0.{native.held_kernel}"
    assert weight.shape == (3, 4) and weight.aliases == (held,)
    # A view's first look-ups step through the model; from its second on, it reads its index.
    for view in (up.wrap(m.native), m[0]):
        for _ in range(3):
            found = view[held[2:] if view.path else held]
            assert found.native is weight.native
            assert (found.path, found.shape, found.native_shape) == (
                "0.layer.weight",
                (3, 4),
                weight.native_shape,
            )
    state = up.state_dict(m.native)
    assert list(state) == ["0.layer.weight", "0.layer.bias"] and state["0.layer.weight"].shape == (3, 4)
    assert list(m[0].params()) == ["layer.weight", "layer.bias"]  # a sub-view lists it so too
    wrapper_row = up.summary(m.native).splitlines()[1]  # the wrapper's own row prints it canonical too
    assert f"{native.held_kernel} (3, 4)" in wrapper_row, wrapper_row


def test_a_kernel_a_layer_beside_it_holds_is_shown_in_that_layers_layout(native):
    """The holder of unknown kind comes after the Linear, not above it. A
    look-up at the holder's path from the model answers as the collect-all
    lists the variable, at the Linear. A view of the holder alone lists it at
    the holder's own path, in the Linear's layout, and answers, prints and
    keeps its state so. Before, both answered in the framework's own layout
    ((4, 3) on Keras, paddle and Flax) under a canonical name."""
    m = up.wrap(native.sibling_holding_kernel(3))
    params = m.params()
    assert list(params) == ["0.weight", "0.bias"]
    weight, held = params["0.weight"], f"1.{native.held_kernel}"
    assert weight.shape == (3, 4) and weight.aliases == (held,)
    for view in (up.wrap(m.native), up.wrap(m.native)[1]):
        for _ in range(3):  # the first look-ups step through the model, the later read the index
            found = view[held[2:] if view.path else held]
            assert found.native is weight.native
            assert (found.path, found.shape) == (("1." if view.path else "0.") + found.name, (3, 4))
    holder = m[1]
    listed = holder.params()
    assert list(listed) == [native.held_kernel] and listed[native.held_kernel].shape == (3, 4)
    np.testing.assert_array_equal(listed[native.held_kernel].numpy(), weight.numpy())
    state = up.state_dict(holder)
    assert list(state) == [native.held_kernel] and state[native.held_kernel].shape == (3, 4)
    for summary in (up.summary(m.native).splitlines()[2], up.summary(holder).splitlines()[0]):
        assert f"{native.held_kernel} (3, 4)" in summary, summary


def test_tied_gradient_is_the_sum_of_per_use_gradients(backend):
    tied = specs.shared().build(backend)
    up.initialize(tied, up.init.Normal(0, 0.5), seed=0)
    alone = untied().build(backend)
    load_from(alone, tied)
    g_tied = up.gradients(tied, X, "mse", Y)
    g_alone = up.gradients(alone, X, "mse", Y)
    assert "4.weight" not in g_tied and set(g_alone) == set(g_tied) | {"4.weight", "4.bias"}
    for leaf in ("weight", "bias"):
        np.testing.assert_allclose(
            g_tied[f"2.{leaf}"], g_alone[f"2.{leaf}"] + g_alone[f"4.{leaf}"], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(g_tied[f"0.{leaf}"], g_alone[f"0.{leaf}"], rtol=1e-5, atol=1e-6)
    m = up.wrap(tied)
    for path, grad in g_tied.items():  # p.grad holds what gradients returned, Keras included
        np.testing.assert_array_equal(m[path].grad, grad)
    np.testing.assert_array_equal(m["4.weight"].grad, g_tied["2.weight"])


def test_tied_gradients_agree_across_backends(backends):
    grads = {}
    for backend in backends:
        model = specs.shared().build(backend)
        up.initialize(model, up.init.Normal(0, 0.5), seed=1)
        grads[backend] = up.gradients(model, X, "mean", layout="canonical")
    first = grads[backends[0]]
    for backend in backends[1:]:
        assert list(grads[backend]) == list(first)
        for path, grad in first.items():
            np.testing.assert_allclose(
                grads[backend][path], grad, rtol=1e-5, atol=1e-6, err_msg=f"{backend} {path}"
            )


def test_chapter_exercise_training_keeps_the_tie(backends):
    """Train an MLP with a shared layer for a few SGD steps through up.gradients and set."""
    finals = {}
    for backend in backends:
        model = specs.shared().build(backend)
        up.initialize(model, up.init.XavierUniform(), where="*.weight", seed=2)
        up.initialize(model, up.init.Zeros(), where="*.bias")
        m = up.wrap(model)
        losses = []
        for _ in range(5):
            losses.append(float(np.mean((forward(backend, model, X) - Y) ** 2)))
            grads = up.gradients(model, X, "mse", Y)
            for path, p in m.params().items():
                p.set(p.numpy() - 0.05 * grads[path])
        assert losses[-1] < losses[0]
        assert m[2].native is m[4].native and up.ties(model) == [
            ("2.weight", "4.weight"),
            ("2.bias", "4.bias"),
        ]
        np.testing.assert_array_equal(m["2.weight"].numpy(), m["4.weight"].numpy())
        finals[backend] = {k: p.numpy("canonical") for k, p in m.params().items()}
    first = finals[backends[0]]
    for backend in backends[1:]:
        for path, value in first.items():
            np.testing.assert_allclose(finals[backend][path], value, rtol=1e-4, atol=1e-6)


def test_layer_level_tie_and_untie(backend):
    model = untied().build(backend)
    up.initialize(model, up.init.Normal(0, 0.5), seed=5)
    m = up.wrap(model)
    src_weight = m["2.weight"].numpy()
    up.tie(model, "2", "4")
    assert m[2].native is m[4].native
    assert up.ties(model) == [("2.weight", "4.weight"), ("2.bias", "4.bias")]
    assert m.count() == 40 + 72 + 9
    np.testing.assert_array_equal(m["4.weight"].numpy(), src_weight)
    out = forward(backend, model, X)  # the framework runs the tied model
    reference = specs.shared().build(backend)
    load_from(reference, model)
    np.testing.assert_allclose(out, forward(backend, reference, X), rtol=1e-6)
    assert "4.weight" not in up.gradients(model, X)
    up.untie(model, "4")
    assert m[2].native is not m[4].native and up.ties(model) == []
    np.testing.assert_array_equal(m["4.weight"].numpy(), src_weight)
    m["4.weight"][0, 0] = 123
    assert m["2.weight"][0, 0] != 123
    np.testing.assert_allclose(forward(backend, model, X).shape, (5, 1))


def test_parameter_level_tie_and_untie(backend):
    model = untied().build(backend)
    up.initialize(model, up.init.Normal(0, 0.5), seed=6)
    m = up.wrap(model)
    up.tie(model, "2.weight", "4.weight")
    assert m["4.weight"].native is m["2.weight"].native
    assert m[2].native is not m[4].native
    assert up.ties(model) == [("2.weight", "4.weight")]
    assert m["4.weight"].aliases == ("2.weight",) and m["4.weight"].name == "weight"
    assert m.count() == 40 + 72 + 72 - 64 + 9
    m["2.weight"][0, 0] = 7
    assert m["4.weight"][0, 0] == 7
    # The framework's forward uses the shared variable at both positions.
    reference = untied().build(backend)
    load_from(reference, model)
    np.testing.assert_allclose(
        forward(backend, model, X), forward(backend, reference, X), rtol=1e-5, atol=1e-6
    )
    g_tied = up.gradients(model, X, "mse", Y)
    g_ref = up.gradients(reference, X, "mse", Y)
    np.testing.assert_allclose(
        g_tied["2.weight"], g_ref["2.weight"] + g_ref["4.weight"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(g_tied["4.bias"], g_ref["4.bias"], rtol=1e-5, atol=1e-6)
    up.untie(model, "4.weight")
    assert up.ties(model) == [] and m["4.weight"].native is not m["2.weight"].native
    assert m["4.weight"][0, 0] == 7 and m["4.weight"].trainable
    m["4.weight"][0, 0] = -1
    assert m["2.weight"][0, 0] == 7
    np.testing.assert_allclose(forward(backend, model, X).shape, (5, 1))


@pytest.mark.parametrize("vocabulary", [10, 4], ids=["non-square", "square"])
def test_an_embedding_tied_to_a_linear_means_one_canonical_matrix_or_is_refused(backend, vocabulary):
    """A language model's output layer tied to its embedding (torch's
    ``head.weight = embedding.weight``): both ``(vocabulary, 4)`` canonically.
    Where the framework keeps them in one layout (torch), the tie holds one
    canonical matrix at both paths; where the Linear's kernel is kept
    transposed, one variable cannot be both: refused, the model unchanged,
    whether the matrix is square or not (before: a square one was tied, and
    the Linear read the embedding's transpose, with no error)."""
    model = S.Sequential(S.Embedding(vocabulary, 4), S.Linear(4, vocabulary)).build(backend)
    up.initialize(model, up.init.Normal(0, 1), seed=3)
    m = up.wrap(model)
    before = up.state_dict(model)
    kept_as_canonical = up.wrap(S.Linear(4, 10).build(backend))["weight"].native_shape == (10, 4)
    if not kept_as_canonical:  # a kernel (in, out), the embedding (rows, dim)
        with pytest.raises(up.TieError, match="different layouts.*Embedding|different layouts.*Embed"):
            up.tie(model, "0.weight", "1.weight")
        assert up.ties(model) == []
        for path, value in up.state_dict(model).items():
            np.testing.assert_array_equal(value, before[path])
        return
    up.tie(model, "0.weight", "1.weight")
    assert up.ties(model) == [("0.weight", "1.weight")]
    np.testing.assert_array_equal(m["1.weight"].numpy(), m["0.weight"].numpy())


def test_one_variable_two_layers_lay_out_apart_is_listed_at_each(native, tmp_path):
    """A square embedding whose matrix a Linear also holds, natively, as its
    weight. In torch both lay it out alike: a tie, one canonical matrix at
    both paths. Where the Linear keeps its kernel ``(in, out)``, it computes
    with the embedding's transpose: the two paths hold two canonical
    matrices, so each is listed, counted once as one variable, and saved, and
    a file claims no tie the model does not compute (before: listed once, the
    head as its alias; saved once; and loaded into torch's tied twin, the
    outputs differed with no error)."""
    net = native.embedding_in_a_linear()
    if net is None:
        pytest.skip("this framework has no native way to give a Linear an embedding's matrix")
    m = up.wrap(net)
    tokens = np.array([[0, 1, 2, 3, 1]])
    e, h = m["emb.weight"].numpy(), m["head.weight"].numpy()
    # What the model computes is what the canonical values say, as torch computes it.
    np.testing.assert_allclose(native.forward(net, tokens), e[tokens] @ h.T, rtol=1e-5, atol=1e-6)
    if np.array_equal(e, h):
        assert list(m.params()) == ["emb.weight"] and m["head.weight"].aliases == ("emb.weight",)
    else:
        np.testing.assert_array_equal(e, h.T)
        assert list(m.params()) == ["emb.weight", "head.weight"] and m["head.weight"].aliases == ()
    assert up.ties(net) == [("emb.weight", "head.weight")]  # one native variable
    assert m.count() == 16
    assert "Total params: 16 " in str(up.summary(net)) and "Shared: 1 " in str(up.summary(net))
    up.save(net, tmp_path / "lm.safetensors")
    again = native.embedding_in_a_linear()
    up.load(again, tmp_path / "lm.safetensors")
    np.testing.assert_allclose(native.forward(again, tokens), native.forward(net, tokens), rtol=1e-6)
    up.untie(net, "head.weight")  # a tie all the same (before: "not tied" where listed apart)
    assert up.ties(net) == [] and list(m.params()) == ["emb.weight", "head.weight"]
    np.testing.assert_array_equal(m["head.weight"].numpy(), h)
    np.testing.assert_allclose(native.forward(net, tokens), native.forward(again, tokens), rtol=1e-6)


def test_a_tied_models_state_loads_into_its_untied_twin_as_its_file_does(backend, tmp_path):
    """``up.state_dict`` keeps one entry per tie group, as a file does; its
    ``aliases`` name the group's other paths, so that an untied twin loads
    them from the state as from the file (before: the file loaded, the state
    was refused, "missing '4.weight'", where torch's own state_dict loads)."""
    model = untied().build(backend)
    up.initialize(model, up.init.Normal(0, 0.5), seed=2)
    up.tie(model, "2.weight", "4.weight")
    state = up.state_dict(model)
    assert "4.weight" not in state and state.aliases == {"4.weight": "2.weight"}
    up.save(model, tmp_path / "tied.safetensors")
    native = up.state_dict(model, layout="native")  # in the framework's own layout: says so too
    assert native.aliases == {"4.weight": "2.weight"}
    for load in (
        lambda twin: up.load_state_dict(twin, state),
        lambda twin: up.load_state_dict(twin, native),
        lambda twin: up.load(twin, tmp_path / "tied.safetensors"),
    ):
        twin = untied().build(backend)
        assert load(twin).loaded == [
            "0.weight",
            "0.bias",
            "2.weight",
            "2.bias",
            "4.weight",
            "4.bias",
            "6.weight",
            "6.bias",
        ]
        np.testing.assert_array_equal(up.wrap(twin)["4.weight"].numpy(), up.wrap(model)["2.weight"].numpy())
        np.testing.assert_allclose(
            forward(backend, twin, X), forward(backend, model, X), rtol=1e-5, atol=1e-6
        )
    with pytest.raises(up.CheckpointError, match="missing '4.weight'"):
        up.load_state_dict(untied().build(backend), dict(state))  # a plain copy drops what it says


def test_a_tied_parameter_ports_at_each_layer_that_holds_it(backends):
    """Layer 4's weight tied to layer 2's (its bias its own), into the same
    architecture untied and back: layer 4 is paired with its tied weight and
    its own bias, in its own order. Before, layer 4 listed its bias alone and
    the pair was refused; a file's aliases loaded it."""
    for a in backends:
        for b in backends:
            tied = untied().build(a)
            up.initialize(tied, up.init.Normal(0, 0.5), seed=6)
            up.tie(tied, "2.weight", "4.weight")
            separate = untied().build(b)
            report = up.port(tied, separate, check_input=X)
            assert report.max_abs_diff <= 1e-5, (a, b)
            m = up.wrap(separate)
            np.testing.assert_array_equal(m["4.weight"].numpy(), m["2.weight"].numpy())
            np.testing.assert_array_equal(m["4.bias"].numpy(), up.wrap(tied)["4.bias"].numpy())
            again = untied().build(a)
            up.tie(again, "2.weight", "4.weight")
            assert up.port(separate, again, check_input=X).max_abs_diff <= 1e-5, (a, b)


def test_a_shared_layer_ports_into_a_model_that_lists_it_once():
    """A Keras functional model calls its shared Dense twice but lists it once:
    a torch Sequential that holds it at two positions is paired layer by
    layer, as before positions were paired."""
    needs("torch")
    needs("keras")
    import keras

    inputs = keras.Input((4,))
    shared = keras.layers.Dense(8, activation="relu")
    hidden = shared(shared(keras.layers.Dense(8, activation="relu")(inputs)))
    functional = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    assert len(functional.layers) == 4  # the input, and each Dense once
    source = specs.shared().build("torch")
    up.initialize(source, up.init.Normal(0, 0.5), seed=7)
    report = up.port(source, functional, check_input=X)
    assert report.max_abs_diff <= 1e-5 and len(report.pairs) == 3


def test_parameter_tie_inside_a_shared_layer_is_refused(backend):
    model = specs.shared().build(backend)
    with pytest.raises(up.TieError, match="shared"):
        up.untie(model, "4.weight")
    up.untie(model, "4")
    assert up.ties(model) == []


def test_tie_attributes_of_subclassed_models(backend, native):
    net = native.two_attributes()
    m = up.wrap(net)
    up.tie(net, "first", "second")
    assert net.first is net.second
    assert up.ties(net) == [("first.weight", "second.weight"), ("first.bias", "second.bias")]
    assert m.count() == 42
    x = np.ones((2, 6), "float32")
    assert up.gradients(net, x)["first.weight"].shape == m["first.weight"].shape
    up.untie(net, "second")
    assert net.first is not net.second and m.count() == 84
    assert native.variable_count(net) == 4  # the framework tracks both layers again


def test_keras_functional_models_tie_parameters_not_layers():
    from tests.conftest import needs

    needs("keras")
    import keras

    inputs = keras.Input((6,))
    h = keras.layers.Dense(6)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(6)(h))
    with pytest.raises(up.UnsupportedError, match="functional"):
        up.tie(model, "1", "2")
    up.tie(model, "1.weight", "2.weight")
    assert up.ties(model) == [("1.weight", "2.weight")]
    assert len(model.trainable_weights) == 3  # Keras' own view dedups the shared kernel
    grads = up.gradients(model, np.ones((2, 6), "float32"))
    assert set(grads) == {"1.weight", "1.bias", "2.bias"}


def test_keras_shared_dense_example_counts_three_layers_everywhere(backend, native):
    """The chapter's Keras cell: Flatten, a shared Dense twice, Dense(1)."""
    net = native.shared_dense()
    m = up.wrap(net)
    assert len(m.children()) == 4
    assert len(m.modules()) - 1 == 3
    assert m.count() == 25
    assert up.ties(net) == [("1.weight", "2.weight"), ("1.bias", "2.bias")]
    assert "shared with 1" in up.summary(net)


def test_a_parameter_tie_changes_what_the_framework_hands_an_optimiser(backend, native):
    """The replaced variable leaves the framework's own parameter list (on Keras
    over torch: torch's ``named_parameters()``), the shared one is listed once."""
    model = S.Sequential(S.Linear(4, 4), S.Linear(4, 4)).build(backend)
    m = up.wrap(model)
    replaced, shared = m["1.weight"].native, m["0.weight"].native
    up.tie(model, "0.weight", "1.weight")
    listed = native.optimizer_params(model)
    assert len(listed) == 3  # one shared weight, two biases
    assert sum(x is native.as_listed(shared) for x in listed) == 1
    assert not any(x is native.as_listed(replaced) for x in listed)
    up.untie(model, "1.weight")
    listed = native.optimizer_params(model)
    assert len(listed) == 4 and any(x is native.as_listed(m["1.weight"].native) for x in listed)


def test_a_native_state_keyed_at_a_shared_layers_second_path_loads_as_its_layer_lays_it_out(backend):
    """A state may key a shared layer's variables at any of its paths. In the
    framework's own layout, a value at the second path was taken as canonical
    unconverted: a square Keras or paddle kernel loaded transposed, no error."""
    src, dst = specs.shared().build(backend), specs.shared().build(backend)
    up.initialize(src, up.init.Normal(0, 1.0), seed=0)
    state = up.state_dict(src, layout="native")
    at_alias = {k.replace("2.", "4.", 1) if k.startswith("2.") else k: v for k, v in state.items()}
    assert "4.weight" in at_alias and "2.weight" not in at_alias
    report = up.load_state_dict(dst, at_alias, layout="native")
    assert report.ok and "2.weight" in report.loaded
    mine = up.wrap(dst)
    for path, p in up.wrap(src).params().items():
        np.testing.assert_array_equal(mine[path].numpy(), p.numpy(), err_msg=path)
