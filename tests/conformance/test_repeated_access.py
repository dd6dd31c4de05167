"""A view reuses its walk while the model is unchanged, and never shows a stale one.

Each structural change is made the framework's own way; a view that has
already answered twice (so its walk is kept) must see it on the next call.
"""

from __future__ import annotations

import gc
import itertools

import numpy as np
import pytest

import unified_params as up
from tests.conftest import FRAMEWORKS, REQUESTED, needs
from tests.native import for_backend
from unified_params import spec as S
from unified_params._core.errors import NotBuiltError


def mlp(backend):
    return S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 2)).build(backend)


def warm(view):
    """Ask twice: from the second walk on, the view keeps it."""
    view.params()
    return view.params()


def test_unchanged_model_answers_from_the_kept_walk(backend):
    m = up.wrap(mlp(backend))
    first = warm(m)
    again = m.params()
    assert again == first and all(again[k] is first[k] for k in first)  # the same views
    again["0.weight"].set(np.full((8, 4), 2.0, "float32"))  # canonical on every backend
    assert float(m.params()["0.weight"].numpy().sum()) == 64.0  # values are read live
    assert again is not m.params()  # each call hands out its own dict


def test_a_one_use_collect_all_is_freed_when_dropped(backend):
    """``up.wrap(m).params()`` keeps no walk, so its Params and their view form
    no reference cycle: dropping the dict frees them at once, not at the
    collector's next full pass (tens of thousands of objects for a large model)."""
    net = mlp(backend)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds unreachable stays in gc.garbage
    try:
        found = up.wrap(net).params()
        assert list(found) == ["0.weight", "0.bias", "2.weight", "2.bias"]
        del found
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, (up.Param, up.Module))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []
    m = up.wrap(net)
    warm(m)  # a kept walk keeps its Params: the view answers from them again
    assert m.params()["0.weight"] is m.params()["0.weight"]


@pytest.mark.parametrize("framework", [t for t in REQUESTED if for_backend(t).open_state])
def test_a_variable_added_natively_shows_at_once(framework):
    """Frameworks that let a built layer gain variables (Keras locks a built
    layer's state: there, variables appear by building, tested below)."""
    needs(FRAMEWORKS[framework])
    native = for_backend(framework)
    net = mlp(FRAMEWORKS[framework])
    m = up.wrap(net)
    warm(m)
    m["0.bias"], m["0.bias"]  # indexed
    native.add_variable(native.layer(net, 0), "extra")
    assert "0.extra" in m.params()
    assert m.params()["0.extra"].shape == (3,) and m["0.extra"].shape == (3,)
    native.add_variable(native.layer(net, 0), "bias")  # a new variable in an existing slot
    assert m["0.bias"].native is m.params()["0.bias"].native and m["0.bias"].shape == (3,)


@pytest.mark.parametrize("framework", [t for t in REQUESTED if for_backend(t).reorderable])
def test_variables_reordered_natively_show_at_once(framework):
    """The kept walk's check sees a layer's own order change, not only its members."""
    needs(FRAMEWORKS[framework])
    native = for_backend(framework)
    net = mlp(FRAMEWORKS[framework])
    m = up.wrap(net)
    assert list(warm(m))[:2] == ["0.weight", "0.bias"]
    native.reorder_variables(native.layer(net, 0))
    assert list(m.params())[:2] == ["0.bias", "0.weight"]
    assert m["0.weight"].native is getattr(native.layer(net, 0), native.kernel_name)


def test_a_layer_replaced_natively_shows_at_once(backend, native):
    net = mlp(backend)
    m = up.wrap(net)
    before = warm(m)["2.weight"]
    assert before.shape == (2, 8)
    native.replace_last_layer(net)
    after = m.params()["2.weight"]
    assert after.shape == (3, 8) and after.native is not before.native
    assert [x.path for x in m.modules()] == ["", "0", "1", "2"]


def test_a_tie_made_here_shows_at_once_in_every_view(backend):
    net = S.Sequential(S.Linear(4, 4), S.Linear(4, 4)).build(backend)
    m, other = up.wrap(net), up.wrap(net)
    warm(m), warm(other)
    up.tie(net, "0.weight", "1.weight")
    for view in (m, other):
        assert "1.weight" not in view.params() and view.params()["0.weight"].aliases == ("1.weight",)
    up.untie(net, "1.weight")
    assert "1.weight" in m.params() and m.params()["0.weight"].aliases == ()


def test_a_sub_view_keeps_its_own_walk_and_paths(backend, native):
    net = mlp(backend)
    sub = up.wrap(net)[2]
    assert list(warm(sub)) == ["weight", "bias"]  # relative keys, as net[2].named_parameters()
    assert [p.path for p in sub.params().values()] == ["2.weight", "2.bias"]  # paths stay absolute
    native.replace_last_layer(net)
    assert sub.params()["weight"].shape == (2, 8)  # the view holds the old layer
    assert up.wrap(net)[2].params()["weight"].shape == (3, 8)


def test_keras_variables_created_by_a_build_show_at_once():
    needs("keras")
    import keras

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = keras.layers.Dense(3)
            self.b = keras.layers.Dense(2)

        def call(self, x):
            return self.b(self.a(x))

    net = Net()
    m = up.wrap(net)
    with pytest.raises(NotBuiltError):
        m.params()
    net.a.build((None, 2))
    assert list(warm(m[0])) == ["weight", "bias"]
    with pytest.raises(NotBuiltError):
        m.params()  # b is not built yet
    net(np.zeros((1, 2), "float32"))
    assert list(warm(m)) == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_look_ups_after_a_native_change_find_the_new_variables(backend, native):
    net = mlp(backend)
    m = up.wrap(net)
    for _ in range(3):  # indexed from the second look-up on
        old = m["2.weight"].native
        assert m["2.bias"].native is not old
    native.replace_last_layer(net)
    new = m["2.weight"]
    assert new.native is not old and new.shape == (3, 8)
    assert m[f"2.{native.kernel_name}"].native is new.native  # native leaf names too


def test_look_ups_after_a_tie_see_the_shared_variable(backend):
    net = S.Sequential(S.Linear(4, 4), S.Linear(4, 4)).build(backend)
    m = up.wrap(net)
    m["0.weight"], m["1.weight"], m["1.weight"]
    up.tie(net, "0.weight", "1.weight")
    assert m["1.weight"].native is m["0.weight"].native
    up.untie(net, "1.weight")
    assert m["1.weight"].native is not m["0.weight"].native


def test_look_ups_in_a_sub_view_use_relative_paths(backend):
    net = S.Sequential(S.Sequential(S.Linear(4, 4), S.ReLU()), S.Linear(4, 2)).build(backend)
    sub = up.wrap(net)[0]
    for _ in range(3):
        p = sub["0.weight"]
        assert p.path == "0.0.weight" and p.native is up.wrap(net)["0.0.weight"].native
    with pytest.raises(up.PathError):
        sub["1.weight"]


def test_a_large_value_set_is_copied_never_adopted(backend):
    """Keras adopts the copies made for a write; a caller's array is never one."""
    net = S.Sequential(S.Linear(512, 512)).build(backend)
    p = up.wrap(net)["0.weight"]
    mine = np.ones((512, 512), "float32")  # 1 MiB: the zero-copy hand-over path
    p.set(mine)
    mine[:] = 5
    assert (p.numpy() == 1).all()
    canonical = np.arange(512 * 512, dtype="float32").reshape(512, 512)
    p.set(canonical, layout="canonical")  # transposed on the way for keras and paddle
    canonical[:] = 0
    np.testing.assert_array_equal(p.numpy("canonical"), np.arange(512 * 512).reshape(512, 512))


def test_writing_a_transposed_view_of_the_variable_into_itself(backend):
    """A strided source that overlaps the destination is copied first, not smeared."""
    net = S.Sequential(S.Linear(512, 512)).build(backend)
    p = up.wrap(net)["0.weight"]
    before = p.numpy()
    p._write(p._adapter.view(p.native).T)  # the variable's own memory, transposed
    np.testing.assert_array_equal(p.numpy(), before.T)


def test_holds_agrees_with_the_variables_a_layer_lists(backend):
    """The one-step slot check of a look-up says what listing the variables says
    (a recurrent layer's too: some frameworks keep its variables in a cell)."""
    net = S.Sequential(S.Linear(4, 3), S.LayerNorm(3), S.LSTM(3, 2)).build(backend)
    m = up.wrap(net)
    adapter = m._adapter
    layers = [m[i].native for i in range(3)]
    for layer, other in itertools.permutations(layers, 2):
        others = [v for _, v, _ in adapter.variables(other)]
        own = adapter.variables(layer)
        assert own
        for name, var, _ in own:
            assert adapter.holds(layer, name, var)
            assert not adapter.holds(layer, name + "_no_such_slot", var)
            assert not any(adapter.holds(layer, slot, var) for slot, held, _ in own if held is not var)
            assert not any(adapter.holds(layer, name, other) for other in others)


def test_holds_agrees_after_a_parameter_tie(backend):
    net = S.Sequential(S.Linear(4, 4), S.Linear(4, 4)).build(backend)
    up.tie(net, "0.weight", "1.weight")
    m = up.wrap(net)
    adapter, second = m._adapter, m[1].native
    listed = adapter.variables(second)
    assert any(var is m["0.weight"].native for _, var, _ in listed)
    for name, var, _ in listed:
        assert adapter.holds(second, name, var)
    m["1.weight"], m["1.weight"]  # indexed look-ups find the shared variable
    assert m["1.weight"].native is m["0.weight"].native


def test_collect_all_leaves_the_collector_as_it_found_it(backend):
    """A walk pauses the cyclic collector (`gc_pause`): on again after a
    collect-all, after one that fails, and still off if the caller turned it off."""
    assert gc.isenabled()
    up.wrap(mlp(backend)).params()
    assert gc.isenabled()
    net = for_backend(backend).unbuilt_mlp()
    if net is not None:
        with pytest.raises(NotBuiltError):
            up.wrap(net).params()
        assert gc.isenabled()
    gc.disable()
    try:
        up.wrap(mlp(backend)).params()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_collect_alls_params_hold_what_a_constructed_param_holds(backend):
    """A first collect-all sets each Param's fields without calling ``__init__``
    (one call less per variable): every slot must be set, or left unset, as
    ``Param(...)`` does it, in a root view and in a sub-view."""
    from unified_params._core import view

    m = up.wrap(mlp(backend))
    for holder in (m, m[2]):
        found = up.wrap(m.native).params() if holder is m else holder.params()
        assert found, holder
        for param in found.values():
            made = view.Param(param.adapter, param._row, param._root, param._aliases)
            for field in view.Param.__slots__:
                assert hasattr(param, field) == hasattr(made, field), (holder.path, field)
                if hasattr(made, field):
                    assert getattr(param, field) is getattr(made, field), (holder.path, field)
            assert param.aliases == () and param.shape == made.shape


def test_a_walks_plain_rows_read_the_same_as_its_entries(backend):
    """The walk makes plain tuples (`tree.Row`), which a Param reads by index;
    an `Entry` names the same fields. Both must give every Param the same answers."""
    from unified_params._core import tree

    assert [tree._PATH, tree._MODULE_PATH, tree._MODULE, tree._VAR, tree._SLOT] == [
        tree.Entry._fields.index(field) for field in ("path", "module_path", "module", "var", "slot")
    ]
    net = S.Sequential(S.Conv2d(3, 4, 3), S.BatchNorm2d(4), S.ReLU()).build(backend)
    m = up.wrap(net)
    _, rows = tree.walk_rows(m.adapter, net)
    entries = tree.all_entries(m.adapter, net)
    assert [row[tree._PATH] for row in rows] == [entry.path for entry in entries]
    assert {entry.kind for entry in entries} == {"param", "buffer"}  # running statistics included
    facts = ("path", "native_path", "name", "native_name", "layer_kind", "kind", "persistent", "shape")
    for row, entry in zip(rows, entries, strict=True):
        slot = entry.slot
        assert (
            entry.name,
            entry.native_name,
            entry.layer_kind,
            entry.kind,
            entry.leaf,
            entry.persistent,
        ) == (
            slot.name,
            slot.native_name,
            slot.layer_kind,
            slot.kind,
            slot.leaf,
            slot.persistent,
        )
        assert entry.native_path == tree.extend(entry.module_path, slot.native_name)
        by_row, by_entry = up.Param(m.adapter, row, m, None), up.Param(m.adapter, entry, m, None)
        assert [getattr(by_row, f) for f in facts] == [getattr(by_entry, f) for f in facts]
        assert by_row.native is by_entry.native is entry.var
        np.testing.assert_array_equal(by_row.numpy(), by_entry.numpy())
