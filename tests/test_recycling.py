"""Memory a write lets go is used again within the write, and only once nothing holds it."""

from __future__ import annotations

import gc

import numpy as np

from unified_params._core import recycling
from unified_params._core.recycling import ALIGNMENT, aligned_empty, scope, waiting_bytes

MIB = 1 << 20
SHAPE = (512, 1024)  # 2 MiB of float32: above `RECYCLE_FROM`


def test_memory_let_go_in_a_scope_takes_the_next_request_of_its_size():
    with scope():
        first = aligned_empty(SHAPE, np.float32)
        where = first.ctypes.data
        del first
        assert waiting_bytes() == 2 * MIB + ALIGNMENT
        again = aligned_empty(SHAPE, np.float32)
        assert again.ctypes.data == where and again.ctypes.data % ALIGNMENT == 0
        assert waiting_bytes() == 0
        other = aligned_empty((256, 1024), np.float32)  # another size: new memory
        assert other.ctypes.data != where


def test_memory_anything_still_holds_is_never_handed_out_again():
    with scope():
        first = aligned_empty(SHAPE, np.float32)
        first[:] = 7
        row = first[3]  # a view keeps the memory
        del first
        assert waiting_bytes() == 0
        second = aligned_empty(SHAPE, np.float32)
        second[:] = 1
        assert (row == 7).all()
        del row
        assert waiting_bytes() == 2 * MIB + ALIGNMENT  # now let go: kept for the next request


def test_no_more_than_the_largest_request_waits_and_none_after_the_scope():
    with scope():
        blocks = [aligned_empty(SHAPE, np.float32) for _ in range(4)]
        del blocks
        gc.collect()
        assert waiting_bytes() == 2 * MIB + ALIGNMENT  # one block of the largest size, not four
        small = [aligned_empty((256, 1024), np.float32) for _ in range(3)]
        del small
        assert waiting_bytes() <= 2 * MIB + ALIGNMENT
    assert waiting_bytes() == 0 and not recycling.active()
    outside = aligned_empty(SHAPE, np.float32)
    del outside
    assert waiting_bytes() == 0  # outside a scope, memory goes back to numpy


def test_small_requests_are_left_to_numpy():
    with scope():
        small = aligned_empty((16, 16), np.float32)
        assert small.ctypes.data % ALIGNMENT == 0
        del small
        assert waiting_bytes() == 0
