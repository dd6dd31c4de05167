"""Layout conversions derived from axis roles: pure numpy, no framework."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import NAMES, needs
from unified_params._core import layouts
from unified_params._core.layouts import Layout, Leaf, plan


def test_square_dense_kernel_is_transposed_not_reshaped():
    kernel = np.arange(16, dtype="float32").reshape(4, 4)  # Keras (in, out), square
    layout = plan("linear", Leaf("weight", ("in", "out")), 2)
    np.testing.assert_array_equal(layout.to_canonical(kernel), kernel.T)
    np.testing.assert_array_equal(layout.to_native(layout.to_canonical(kernel)), kernel)


def test_cubic_conv_kernel_moves_axes_by_role():
    hwio = np.random.default_rng(0).standard_normal((3, 3, 3, 3))
    layout = plan("conv2d", Leaf("weight", ("k0", "k1", "in", "out")), 4)
    oihw = layout.to_canonical(hwio)
    assert layout.perm == (3, 2, 0, 1)
    for o, i, h, w in [(0, 1, 2, 0), (2, 0, 1, 2)]:
        assert oihw[o, i, h, w] == hwio[h, w, i, o]


def test_conv1d_and_conv3d_roles():
    assert plan("conv1d", Leaf("weight", ("k0", "in", "out")), 3).canonical_shape((5, 2, 7)) == (7, 2, 5)
    leaf = Leaf("weight", ("k0", "k1", "k2", "in", "out"))
    assert plan("conv3d", leaf, 5).canonical_shape((2, 3, 4, 5, 6)) == (6, 5, 2, 3, 4)


def test_gru_gates_reordered_zrn_to_rzn():
    hidden = 2
    blocks = {g: np.full((3, hidden), ord(g), dtype="float32") for g in "zrn"}
    native = np.concatenate([blocks[g] for g in "zrn"], axis=1)  # Keras kernel (in, 3H)
    layout = plan("gru", Leaf("weight_ih_l0", ("in", "gates"), "zrn"), 2)
    canonical = layout.to_canonical(native)
    assert canonical.shape == (3 * hidden, 3)
    assert [chr(int(canonical[k * hidden, 0])) for k in range(3)] == ["r", "z", "n"]
    np.testing.assert_array_equal(layout.to_native(canonical), native)


def test_stacked_gru_bias_picks_roles_by_rank():
    leaf = Leaf("bias", {1: ("gates",), 2: ("stack", "gates")}, "zrn")
    assert plan("gru", leaf, 2).gate_axis == 1
    assert plan("gru", leaf, 1).gate_axis == 0
    with pytest.raises(layouts.ShapeError, match="3-D"):
        plan("gru", leaf, 3)


def test_lstm_gates_need_no_reorder():
    assert plan("lstm", Leaf("weight_hh_l0", ("hidden", "gates")), 2) == Layout((1, 0))


@pytest.mark.parametrize("name", NAMES)
def test_every_declared_leaf_round_trips(name):
    needs(name)
    from unified_params.backends import get_adapter

    rng = np.random.default_rng(1)
    for kind, leaves in get_adapter(name).LEAVES.items():
        for leaf in leaves.values():
            ranks = leaf.axes.keys() if isinstance(leaf.axes, dict) else [len(leaf.axes or (0,))]
            for ndim in ranks:
                shape = tuple(6 for _ in range(ndim))  # every axis the same size: no shape hints
                native = rng.standard_normal(shape)
                layout = plan(kind, leaf, ndim)
                np.testing.assert_array_equal(
                    layout.to_native(layout.to_canonical(native), native.shape), native
                )


_perms = st.integers(1, 4).flatmap(lambda n: st.permutations(range(n)))


def _item(draw, size):
    if draw(st.booleans()):
        return draw(st.integers(-size, size - 1))
    return slice(draw(st.integers(0, size)), None, draw(st.sampled_from([1, 2])))


@st.composite
def _index_case(draw):
    perm = tuple(draw(_perms))
    shape = tuple(draw(st.integers(1, 4)) for _ in perm)
    start = draw(st.integers(0, len(shape)))
    items = [_item(draw, size) for size in shape[:start]]
    if draw(st.booleans()):  # an Ellipsis, then indices for the last axes
        end = draw(st.integers(start, len(shape)))
        items += [Ellipsis] + [_item(draw, size) for size in shape[end:]]
    return perm, shape, tuple(items)


@settings(max_examples=300, deadline=None)
@given(_index_case())
def test_native_index_writes_what_a_canonical_write_would(case):
    perm, canonical_shape, index = case
    layout = Layout(perm)
    native_shape = layout.native_shape(canonical_shape)
    native = np.arange(np.prod(native_shape), dtype="float64").reshape(native_shape)
    canonical = layout.to_canonical(native).copy()
    mapped = layout.native_index(index, len(perm))
    assert mapped is not None
    native_index, value_axes = mapped
    value = -1.0 - np.arange(np.prod(canonical[index].shape)).reshape(canonical[index].shape)
    canonical[index] = value
    native[native_index] = np.transpose(value, value_axes)
    np.testing.assert_array_equal(layout.to_canonical(native), canonical)


@pytest.mark.parametrize("shape", [(1000, 777), (64, 512), (513, 65), (2048, 31), (7, 9000)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "float16"])
def test_blocked_transpose_copies_every_value_at_every_band_edge(shape, dtype):
    source = (np.arange(np.prod(shape)) % 2000).reshape(shape).astype(dtype)  # exact in float16
    fresh = layouts.contiguous(source.T)
    assert fresh.flags.c_contiguous and fresh.ctypes.data % layouts.ALIGNMENT == 0
    np.testing.assert_array_equal(fresh, source.T)
    into = np.full(source.T.shape, -1, dtype)
    assert layouts.contiguous(source.T, out=into) is into
    np.testing.assert_array_equal(into, source.T)
    strided = source[::2, ::3]  # not a transpose: still copied right
    np.testing.assert_array_equal(layouts.contiguous(strided), strided)


def test_a_kernel_flattened_on_both_sides_reorders_its_inputs_and_its_outputs():
    """A Keras Dense between two maps (a Flatten of (2, 2, 3) before, a Reshape to
    (1, 2, 5) after): its kernel (in, out) runs (H, W, C) on both axes natively,
    (C, H, W) on both canonically."""
    native = np.arange(12 * 10, dtype="float32").reshape(12, 10)
    layout = Layout((1, 0)).with_flat(0, positions=4, channels=3).with_flat(1, positions=2, channels=5)
    canonical = layout.to_canonical(native)
    want = native.reshape(4, 3, 2, 5).transpose(3, 2, 1, 0).reshape(10, 12)  # (c_out, p_out, c_in, p_in)
    np.testing.assert_array_equal(canonical, want)
    np.testing.assert_array_equal(layout.to_native(canonical), native)
    assert layout.canonical_shape((12, 10)) == (10, 12) and not layout.is_identity
