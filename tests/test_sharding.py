"""The framework-free rules of sharded parameters (``_core/sharding.py``),
checked against numpy on random shapes, blocks and indexes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from unified_params._core.errors import UnsupportedError
from unified_params._core.sharding import Sharding, agree, box_runs, fill_box, local_write


@st.composite
def blocks(draw, min_rank: int = 1):
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=min_rank, max_size=3)))
    offsets, sizes = [], []
    for n in shape:
        start = draw(st.integers(0, n))
        offsets.append(start)
        sizes.append(draw(st.integers(0, n - start)))
    return shape, Sharding(("test",), tuple(offsets), tuple(sizes), True)


def _item(draw, n):
    if draw(st.booleans()):
        return draw(st.integers(-n, n - 1))
    bound = st.none() | st.integers(-n - 1, n + 1)
    return slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3, -1, -2])))


@st.composite
def basic_indexes(draw, shape):
    """Integers and slices for the first axes; with ``...``, also for the last."""
    front = draw(st.integers(0, len(shape)))
    items = [_item(draw, n) for n in shape[:front]]
    if draw(st.booleans()):
        back = draw(st.integers(0, len(shape) - front))
        items += [Ellipsis] + [_item(draw, n) for n in shape[len(shape) - back :]]
    return tuple(items)


@given(st.data())
def test_a_write_lands_in_each_block_exactly_as_in_the_whole_array(data):
    shape, sharding = data.draw(blocks())
    index = data.draw(basic_indexes(shape))
    whole = np.zeros(shape)
    value = np.random.default_rng(0).random(whole[index].shape) + 1
    whole[index] = value
    block = np.zeros(sharding.local_shape)
    part = local_write(index, shape, sharding, "w")
    if part is not None:
        block_index, value_index = part
        block[block_index] = value[value_index] if value_index else value
    assert np.array_equal(block, whole[sharding.box])  # written where selected, untouched elsewhere


@given(st.data())
def test_box_runs_enumerate_the_block_in_c_order(data):
    shape, sharding = data.draw(blocks(min_rank=0))
    flat = np.arange(int(np.prod(shape))).reshape(shape)
    runs = [i for first, count in box_runs(shape, sharding.box) for i in range(first, first + count)]
    assert runs == flat[sharding.box].reshape(-1).tolist()


@given(st.data(), st.integers(1, 9))
def test_fill_box_gives_the_block_of_the_chunked_whole(data, chunk):
    shape, sharding = data.draw(blocks(min_rank=0))
    whole = np.asarray(np.random.default_rng(1).random(shape))
    drawn: list[int] = []

    def draw(c: int, out: np.ndarray) -> None:
        drawn.append(c)
        out[:] = whole.reshape(-1)[c * chunk : c * chunk + out.size]

    block = np.empty(sharding.local_shape)
    fill_box(block, shape, sharding.box, chunk, draw)
    assert np.array_equal(block, whole[sharding.box])
    needed = {i // chunk for first, n in box_runs(shape, sharding.box) for i in range(first, first + n)}
    assert set(drawn) == needed  # only the chunks over the block are drawn


def test_index_arrays_and_new_axes_are_no_box():
    sharding = Sharding((), (0, 0), (2, 3), True)
    for index in ([0, 1], np.array([True, False]), None):
        with pytest.raises(UnsupportedError, match="sharded"):
            local_write((index,), (4, 3), sharding, "w")


class _Group:
    rank = 0

    def __init__(self, others):
        self.others = others

    def broadcast(self, value):
        return value

    def gather(self, value):
        return [value, *self.others]


def test_agree_raises_everywhere_when_one_rank_failed():
    agree(_Group([None]), None, "Saving")  # every rank fine: nothing raised
    with pytest.raises(UnsupportedError, match="rank 1: OSError: disk full"):
        agree(_Group(["OSError: disk full"]), None, "Saving")
    with pytest.raises(KeyError):
        agree(_Group([None]), KeyError("mine"), "Saving")  # the rank's own error, unchanged
