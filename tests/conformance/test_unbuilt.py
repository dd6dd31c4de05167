"""Models whose variables do not exist yet (an unbuilt Keras model, a torch
lazy module before its first call) or have a shape and no values (torch's
meta device, ``paddle.LazyGuard``, ``nnx.eval_shape``): their structure reads
as a built model's, a parameter prints that it has no values, and every read
of a value is refused with `NotBuiltError`, naming the path, on every backend (before: a paddle or Flax read gave an
empty array of another shape, or a ``jax.ShapeDtypeStruct``, with no error,
and a torch lazy module raised torch's own errors)."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.native import X
from unified_params._core.summary import rows as summary_rows

#: Every refusal names where, and says there are no values (or no shape) yet.
NO_VALUES = r"At path '[\w.]+': .*no values"


def _shapes(model) -> dict[str, tuple[int, ...]]:
    return {path: p.shape for path, p in up.wrap(model).params().items()}


def _summary_rows(model) -> dict[str, tuple[str, str]]:
    """The rows `up.summary` prints, by path: (shapes, count)."""
    return {label.strip(): (shapes, count) for label, _, shapes, count, _ in summary_rows(up.wrap(model))}


def test_an_unbuilt_model_reads_its_structure_and_says_how_to_build(native, tmp_path):
    net = native.unbuilt_mlp()
    if net is None:
        pytest.skip("this framework makes every variable when its layer is made")
    m = up.wrap(net)
    assert len(m) == len(up.wrap(native.mlp()))  # the structure reads before the build
    for ask in (m.params, m.count, lambda: up.save(net, tmp_path / "w.safetensors")):
        with pytest.raises(up.NotBuiltError, match=r"At path '\d+': .*model\(x\)"):
            ask()
    assert not list(tmp_path.iterdir())
    # The summary shows the structure, marks what is not built and counts nothing
    # it cannot count (as Keras' own marks a layer "(unbuilt)"); so does a notebook.
    summary, built = _summary_rows(net), _summary_rows(native.mlp())
    assert list(summary) == list(built)  # every position, as built
    for label, (shapes, _) in built.items():
        if "weight" in shapes:  # a layer with variables: not built, counted as not known
            assert summary[label] == ("not built", "?")
    assert summary["Sequential"][1] == "?"  # nor is the model's total a number that leaves them out
    total, how = up.summary(net).splitlines()[-2:]
    assert total.startswith("Total params: not known yet: ") and f"'{native.first_linear}'" in total
    assert (
        how
        == "Build them to count them: call the model once on an input, and build a layer its call does not use on its own"
    )
    shown = m._repr_html_()  # a notebook shows the same table, raising nothing
    assert "not built" in shown and "call the model once on an input" in shown
    native.forward(net, X)
    assert _shapes(net) == _shapes(native.mlp())


def test_a_layer_the_forward_pass_does_not_use_is_named_as_such_and_the_rest_is_summed_up(native):
    """After the model's first call, a layer that call does not use is still
    unbuilt: the refusal says so (calling the model again would not help), and
    the summary shows the built layers' counts, as Keras' own does."""
    net = native.with_an_unused_layer()
    if net is None:
        pytest.skip("this framework makes every variable when its layer is made")
    with pytest.raises(up.NotBuiltError, match=r"At path 'unused': .*does not use stays"):
        up.wrap(net).params()
    rows = _summary_rows(net)
    assert rows["used"] == ("weight (2, 4)  bias (2,)", "10") and rows["unused"] == ("not built", "?")
    assert "1 layer is not built: 'unused'" in up.summary(net)
    assert up.wrap(net)["used"].count() == 10  # the built part answers on its own


def test_a_model_with_shapes_and_no_values_lists_them_and_refuses_every_read(native, tmp_path):
    net = native.valueless_mlp()
    if net is None:
        pytest.skip("this framework makes no model with shapes and no values")
    built = native.mlp()
    assert _shapes(net) == _shapes(built)  # canonical, as a built model's
    assert str(up.summary(net)) == str(up.summary(built))
    p = up.wrap(net)[f"{native.first_linear}.weight"]
    # Printed, it says so, the same on every backend (as torch prints a meta tensor).
    assert repr(p) == f"Param '{native.first_linear}.weight', shape (8, 4), float32, with no values yet"
    assert "none yet" in p._repr_html_()
    twin = native.mlp()
    before = up.state_dict(twin)
    reads = {
        "numpy": p.numpy,
        "a slice": lambda: float(p[0, 0]),
        "a slice write": lambda: p.__setitem__((0, 0), 1.0),
        "state_dict": lambda: up.state_dict(net),
        "save": lambda: up.save(net, tmp_path / "w.safetensors"),
        "port from it": lambda: up.port(net, twin),
        "port into it, checked": lambda: up.port(twin, net, check_input=X),
    }
    for what, read in reads.items():
        with pytest.raises(up.NotBuiltError, match=NO_VALUES):
            read()
            pytest.fail(f"{what} read a model without values")
    assert not list(tmp_path.iterdir())  # no file, no temporary one
    for path, value in up.state_dict(twin).items():
        np.testing.assert_array_equal(value, before[path])


def test_a_whole_write_gives_a_model_without_values_its_values_where_the_framework_keeps_them(native):
    net = native.valueless_mlp()
    if net is None:
        pytest.skip("this framework makes no model with shapes and no values")
    built = native.mlp()
    state = up.state_dict(built)
    if not native.valueless_takes_writes:
        for write in (
            lambda: up.load_state_dict(net, state),
            lambda: up.initialize(net, up.init.Constant(0.5)),
        ):
            with pytest.raises(up.NotBuiltError, match=NO_VALUES):
                write()
        return
    up.load_state_dict(net, state)
    for path, value in up.state_dict(net).items():
        np.testing.assert_array_equal(value, state[path])
    np.testing.assert_allclose(native.forward(net, X), native.forward(built, X), rtol=1e-6)
    fresh = native.valueless_mlp()
    up.initialize(fresh, up.init.Constant(0.5))
    assert all(np.all(p.numpy() == 0.5) for p in up.wrap(fresh).params().values())
