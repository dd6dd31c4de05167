"""Turning user values into arrays a parameter can take, with clear errors.

Validation happens here, before any adapter writes: a value that does not fit
never reaches the model, so a failed write changes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DTypeError, ShapeError, received

_NUMERIC_KINDS = "biufc"


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype for a dtype name, ``bfloat16`` included (via ml_dtypes).

    Examples:
        >>> numpy_dtype("float32")
        dtype('float32')
    """
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def as_array(value: Any, *, path: str) -> np.ndarray:
    """Read a number, list, numpy array, framework tensor or Param as an array.

    Tensors of any supported framework are read without importing it: a
    torch tensor through ``detach().cpu().numpy()``, others through
    ``.numpy()``.

    Raises:
        DTypeError: The value is not numeric.

    Examples:
        >>> as_array([[1, 2]], path="0.weight").shape
        (1, 2)
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise _not_numeric(value, path)
    try:
        if hasattr(value, "detach") and hasattr(value, "cpu"):
            value = value.detach().cpu()
        if str(getattr(value, "dtype", "")).endswith("bfloat16") and not isinstance(value, np.ndarray):
            value = _bfloat16_tensor(value)
        if callable(getattr(value, "numpy", None)):
            value = value.numpy()
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise _not_numeric(value, path) from err
    if array.dtype.kind not in _NUMERIC_KINDS and array.dtype.name != "bfloat16":
        raise _not_numeric(value, path)
    return array


def cast_to(array: np.ndarray, dtype: str, *, path: str, check_overflow: bool = True) -> np.ndarray:
    """Cast an array to a parameter's dtype, refusing lossy kinds of cast.

    Floats go into float parameters and integers into integer ones (numpy's
    ``same_kind`` rule); a float written to an integer buffer is refused. A
    finite value that the narrower dtype cannot hold (``1e39`` into float32)
    is refused too, instead of being written as infinity.

    Raises:
        DTypeError: The cast would change the kind of number, or overflow.

    Examples:
        >>> cast_to(np.array([1.5]), "float32", path="0.bias").dtype
        dtype('float32')
        >>> cast_to(np.array([1e39]), "float32", path="0.bias")
        Traceback (most recent call last):
        ...
        unified_params.DTypeError: Cannot write ...
    """
    target = numpy_dtype(dtype)
    if array.dtype == target:
        return array
    if not np.can_cast(array.dtype, target, casting="same_kind") and not _float_family(array, target):
        raise DTypeError(
            f"Cannot write a {array.dtype} value into parameter {path!r} of dtype "
            f"{dtype}: the cast would change the kind of number. Expected a value "
            f"castable to {dtype}. " + received(value_dtype=str(array.dtype))
        )
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(target)
    if check_overflow and _overflowed(array, cast):
        raise DTypeError(
            f"Cannot write parameter {path!r}: a finite value is too large for {dtype} and would "
            f"become infinity. Expected values within {dtype}'s range. "
            + received(
                value_dtype=str(array.dtype), largest=float(np.nanmax(np.abs(array.astype(np.float64))))
            )
        )
    return cast


def all_finite(array: np.ndarray) -> bool:
    """Whether every element is finite (integers always are).

    One vectorised reduction answers almost always (a NaN or an infinity makes
    it non-finite); only when it is not finite (a NaN, an infinity, or large
    finite values that overflow it) are the elements checked one by one. The
    reduction is `_total`.

    Examples:
        >>> all_finite(np.array([1.0, 2.0], "float32")), all_finite(np.array([1.0, np.nan]))
        (True, False)
        >>> all_finite(np.array([3e38, 3e38], "float32"))  # the reduction overflows; each is finite
        True
    """
    if array.dtype.kind not in "fV" or not array.size:
        return True
    wide = array.astype(np.float32) if array.dtype.name == "bfloat16" else array
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(_total(wide)):
            return True
    return bool(np.isfinite(wide).all())


def _total(array: np.ndarray) -> Any:
    """A number that is NaN or infinite whenever an element is: the sum of
    the elements (it overflows only for finite values near the dtype's limit,
    which `all_finite` then checks one by one).

    Contiguous float32 and float64 arrays are summed by ``np.einsum``, whose
    loop reads memory at the bus's pace where ``ndarray.sum``'s pairwise sum
    is bound by its additions (measured on this project's AVX-512 VM: 64 MiB
    of float32 on one core 3.7 ms against 7.0 ms, 1 GiB on both cores 45 ms
    against 61 ms). It stays in numpy's own loops. Not BLAS's dot product of
    the elements with themselves, though it read the 1 GiB in 41 ms: it was in
    use when a torch.distributed worker crashed in 2 of 8 two-process runs.
    """
    if array.dtype.type in (np.float32, np.float64) and (
        array.flags.c_contiguous or array.flags.f_contiguous
    ):
        return np.einsum("i->", array.ravel(order="K"))  # a view, for either order
    return array.sum()


def _overflowed(source: np.ndarray, cast: np.ndarray) -> bool:
    """Whether a narrowing float cast turned finite values infinite."""
    if cast.dtype.kind not in "fV" or source.dtype.kind not in "fiuV" or not source.size:
        return False
    if cast.dtype.itemsize >= source.dtype.itemsize and source.dtype.kind == "f":
        return False  # widening: nothing can overflow
    wide = cast.astype(np.float32) if cast.dtype.name == "bfloat16" else cast
    infinite = ~np.isfinite(wide)
    if not infinite.any():
        return False
    original = source.astype(np.float64) if source.dtype.name == "bfloat16" else source
    return bool((infinite & np.isfinite(original)).any())


def check_shape(shape: tuple[int, ...], expected: tuple[int, ...], *, path: str, layout: str) -> None:
    """Refuse a value whose shape differs from the parameter's.

    Raises:
        ShapeError: The shapes differ; the message names the path and both.

    Examples:
        >>> check_shape((8, 4), (8, 4), path="0.weight", layout="canonical")
    """
    if tuple(shape) != tuple(expected):
        raise ShapeError(
            f"Cannot set parameter {path!r}: the value has shape {tuple(shape)}. Expected the "
            f"parameter's {layout} shape {tuple(expected)}. "
            + received(path=path, shape=tuple(shape), layout=layout)
        )


def broadcast_to(array: np.ndarray, shape: tuple[int, ...], *, path: str, index: Any) -> np.ndarray:
    """Broadcast a value to the shape an index selects, as numpy would.

    Raises:
        ShapeError: The value does not broadcast to the selection.
    """
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ShapeError(
            f"Cannot assign to {path!r}[{index!r}]: a value of shape {array.shape} does not "
            f"broadcast there. Expected a value that broadcasts to the selected shape {shape}. "
            + received(index=index, shape=array.shape)
        ) from None


def _float_family(array: np.ndarray, target: np.dtype) -> bool:
    # numpy does not know ml_dtypes' bfloat16 as a float for can_cast.
    return (
        array.dtype.kind == "f"
        and target.name == "bfloat16"
        or (array.dtype.name == "bfloat16" and target.kind == "f")
    )


def _bfloat16_tensor(value: Any) -> Any:
    """A framework's bfloat16 tensor as an exact float32 one: torch's ``numpy()``
    refuses bfloat16 and paddle's gives the raw bits as uint16, which would be
    read as integers."""
    if callable(getattr(value, "float", None)):  # torch
        return value.float()
    if callable(getattr(value, "astype", None)):  # paddle
        return value.astype("float32")
    return value  # TensorFlow gives ml_dtypes' bfloat16, which numpy reads as it is


def _not_numeric(value: Any, path: str) -> DTypeError:
    return DTypeError(
        f"Cannot write to parameter {path!r}: the value is not numeric. Expected a "
        f"number, a nested list of numbers, a numpy array or a tensor. "
        + received(value=_short(value), type=type(value).__name__)
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
