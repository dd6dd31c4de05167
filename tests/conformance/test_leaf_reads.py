"""A walk reads a container's plain layers in one adapter call
(`Adapter.leaf_variables`); what it finds is what the general walk finds.

Each model is walked twice: as the walk does it, and with every layer read
one by one (the base contract's ``leaf_variables``, which reads none). The
positions and rows, in order, must be the same objects with the same slots.
"""

from __future__ import annotations

import pytest

from tests.conformance import specs, textbook
from unified_params import spec as S
from unified_params._core.tree import walk_rows
from unified_params.backends import adapter_for
from unified_params.backends._base import Adapter


def mixed():
    """Leaves and containers side by side, and a layer used at two positions."""
    shared = S.Linear(4, 4)
    return S.Sequential(
        S.Linear(4, 4), S.Sequential(S.Linear(4, 4), S.ReLU(), shared), S.ReLU(), shared, S.Linear(4, 2)
    )


SPECS = {
    "mixed": mixed,
    **{name: specs.BUILDERS[name] for name in ("mlp", "nested", "shared", "cnn", "lstm")},
}


def walks(net, monkeypatch):
    """The walk as it runs, and the walk that reads every layer on its own."""
    adapter = adapter_for(net)
    batched = walk_rows(adapter, net)
    with monkeypatch.context() as patch:
        patch.setattr(type(adapter), "leaf_variables", Adapter.leaf_variables)
        one_by_one = walk_rows(adapter, net)
    return batched, one_by_one


def same(found, expected):
    (positions, rows), (positions_1, rows_1) = found, expected
    assert [(p, id(m)) for p, m in positions] == [(p, id(m)) for p, m in positions_1]
    assert [(r[0], r[1], id(r[2]), id(r[3]), r[4]) for r in rows] == [
        (r[0], r[1], id(r[2]), id(r[3]), r[4]) for r in rows_1
    ]


@pytest.mark.parametrize("name", SPECS)
def test_a_container_s_leaves_read_together_are_what_the_walk_finds_one_by_one(backend, name, monkeypatch):
    spec = SPECS[name]()
    if specs.refused(backend, spec):
        pytest.skip(f"{backend} refuses {name}")
    found, expected = walks(spec.build(backend), monkeypatch)
    assert found[1], "a model with parameters"
    same(found, expected)


@pytest.mark.parametrize("model", ["mlp", "rgnet", "shared_mlp"])
def test_the_textbook_models_walk_the_same_either_way(backend, model, monkeypatch):
    same(*walks(getattr(textbook, model)(backend), monkeypatch))


def test_the_batched_read_is_used(backend):
    """The fast path is taken: a Sequential of plain layers is read in one call
    per container on every backend whose adapter declares it (a backend without
    it reads every layer one by one, which the tests above cover)."""
    net = mixed().build(backend)
    adapter = adapter_for(net)
    if type(adapter).leaf_variables is Adapter.leaf_variables:
        pytest.skip(f"{backend}'s adapter reads every layer on its own")
    read = adapter.leaf_variables([child for _, child in adapter.children(net)])
    # Linear, Sequential (not a leaf), ReLU (a leaf with no variables), Linear, Linear
    assert [None if r is None else len(r) for r in read] == [2, None, 0, 2, 2]
