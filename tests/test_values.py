"""`values.all_finite`: every NaN and infinity found, wherever it sits and
whatever the array's dtype and memory order; large finite values that
overflow the fast reduction are checked one by one, not refused."""

from __future__ import annotations

import numpy as np
import pytest

from unified_params._core import values
from unified_params._core.values import all_finite

BAD = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where", [0, 4097, -1])
def test_a_non_finite_element_is_found_anywhere(dtype, bad, where):
    array = np.linspace(-1, 1, 8192).astype(values.numpy_dtype(dtype)).reshape(64, 128)
    assert all_finite(array)
    array.reshape(-1)[where] = bad
    assert not all_finite(array)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf", "-inf"])
def test_either_memory_order_and_strided_views_are_checked_whole(order, bad):
    array = np.ones((300, 200), np.float32, order=order)
    array[123, 45] = bad
    assert not all_finite(array)
    assert not all_finite(array.T)
    assert not all_finite(array[1::2, ::3])  # a view that is not contiguous: 123 and 45 are kept
    assert all_finite(array[::2])  # row 123 left out


def test_an_infinity_of_each_sign_is_not_cancelled_by_the_other():
    array = np.zeros(1000, np.float32)
    array[10], array[20] = np.inf, -np.inf
    assert not all_finite(array)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_finite_values_that_overflow_the_reduction_are_finite(dtype):
    big = np.finfo(dtype).max / 2
    array = np.full(4096, big, dtype)
    with np.errstate(over="ignore"):
        assert not np.isfinite(values._total(array))  # the fast path overflows: the elementwise check decides
    assert all_finite(array)
    array[-1] = np.nan
    assert not all_finite(array)


def test_integers_and_empty_arrays_are_finite():
    assert all_finite(np.arange(10))
    assert all_finite(np.empty((0, 3), np.float32))
    assert all_finite(np.float32(2.0).reshape(()))
    assert not all_finite(np.float32(np.nan).reshape(()))
