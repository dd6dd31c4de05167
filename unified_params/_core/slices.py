"""What ``p[index]`` returns: a live, write-through view of part of a parameter.

``p[0]`` reads like a numpy array (it prints, compares and computes as one),
but it remembers where it came from, so every way a PyTorch user writes
through ``net[0].weight.data`` writes the parameter here too::

    p[0][0] = 42        # chained indexing
    p[1][:2] += 1       # in-place arithmetic on a selection
    row = p[0]; row *= 2

Reading methods (``p[0].sum()``, ``p[0].round(4)``) answer from a copy;
numpy's mutating methods (``fill``, ``sort``) are refused, since they could
only change a copy. A read is always live (the parameter as it is now, in canonical layout); a
write goes to the parameter at once. A selection that numpy would copy (an
index array inside a chain) is refused rather than written nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .errors import PositionError, received

if TYPE_CHECKING:
    from .view import Param

Chain = tuple[Any, ...]
#: numpy array methods and attributes that only read: a slice answers them from a copy.
_READS = frozenset(
    {
        "T", "all", "any", "argmax", "argmin", "astype", "clip", "copy", "cumsum", "dot", "flatten",
        "max", "mean", "min", "nonzero", "prod", "ravel", "reshape", "round", "squeeze", "std", "sum",
        "transpose", "var", "nbytes", "itemsize", "strides",
    }
)  # fmt: skip


class ParamSlice(NDArrayOperatorsMixin):
    """A selection of a parameter, in canonical layout; writes go through.

    Get one by indexing a [Param][unified_params.Param]. Arithmetic gives
    plain numpy arrays; in-place arithmetic (``+=``) and item assignment write
    the parameter. ``np.asarray(s)`` or `numpy` gives a copy.

    Examples:
        >>> p = m["0.weight"]
        >>> p[0][0] = 42
        >>> float(p[0, 0])
        42.0
        >>> p[0][1] += 1
        >>> bool(p[0, 1] == p.numpy()[0, 1])
        True
    """

    __slots__ = ("_param", "_chain", "shape")

    def __init__(self, param: Param, chain: Chain) -> None:
        self._param = param
        self._chain = chain
        #: The selection's shape (checked when the slice is made).
        self.shape: tuple[int, ...] = selection_shape(param.shape, chain, param.path)

    # -- reading -------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """A copy of the selected values, as a numpy array."""
        value = self._param.canonical_view()
        for index in self._chain:
            value = value[index]
        return np.array(value, copy=True)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the values."""
        from .values import numpy_dtype

        return numpy_dtype(self._param.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def item(self) -> Any:
        return self.numpy().item()

    def __getattr__(self, name: str) -> Any:
        # numpy's reading methods (`s.sum()`, `s.round(4)`, `s.T`) work on a copy;
        # a mutating one (`fill`, `sort`) would change only that copy, so it is refused.
        if name in _READS:
            return getattr(self.numpy(), name)
        if hasattr(np.ndarray, name):
            raise AttributeError(
                f"{name!r} would change a copy, not the parameter. Expected a write through "
                f"indexing: p[index] = value, or p[index] += value. Received: method={name!r}"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d parameter slice")
        return self.shape[0]

    def __iter__(self) -> Iterator[ParamSlice]:
        if not self.shape:
            raise TypeError("iteration over a 0-d parameter slice")
        return (self[i] for i in range(self.shape[0]))

    def __contains__(self, value: Any) -> bool:
        return bool((self.numpy() == value).any())

    def __float__(self) -> float:
        return float(self.numpy())

    def __int__(self) -> int:
        return int(self.numpy())

    def __bool__(self) -> bool:
        return bool(self.numpy())

    def __repr__(self) -> str:
        return repr(self.numpy())

    def __str__(self) -> str:
        return str(self.numpy())

    def __format__(self, spec: str) -> str:
        return format(self.numpy().item() if not self.shape else self.numpy(), spec)

    # -- writing -------------------------------------------------------------
    def __getitem__(self, index: Any) -> ParamSlice:
        return ParamSlice(self._param, (*self._chain, index))

    def __setitem__(self, index: Any, value: Any) -> None:
        self._param._set_chain((*self._chain, index), value)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.pop("out", None)
        if not out or len(out) != 1 or not isinstance(out[0], ParamSlice):
            arrays = [x.numpy() if isinstance(x, ParamSlice) else x for x in inputs]
            if not out:
                return getattr(ufunc, method)(*arrays, **kwargs)
            outs = tuple(x.numpy() if isinstance(x, ParamSlice) else x for x in out)
            return getattr(ufunc, method)(*arrays, out=outs, **kwargs)
        target = out[0]  # in place: `s += 1` reads and writes the parameter under its lock
        from .view import write_lock

        with write_lock(target._param.native):
            arrays = [x.numpy() if isinstance(x, ParamSlice) else x for x in inputs]
            result = getattr(ufunc, method)(*arrays, **kwargs)
            target._param._set_chain(target._chain, result, in_place_of=target)
        return target


def compose(chain: Chain) -> Any | None:
    """One index equal to a chain of indices, when every index but the last
    only picks integers (each then drops its axes): ``p[0][1:3]`` is
    ``p[0, 1:3]``. ``None`` when the chain does not reduce so simply.

    Examples:
        >>> compose((0, (1, slice(None))))
        (0, 1, slice(None, None, None))
        >>> compose((slice(1, 3), 0)) is None
        True
    """
    if len(chain) == 1:
        return chain[0]
    out: list[Any] = []
    for index in chain[:-1]:
        items = index if isinstance(index, tuple) else (index,)
        if not all(_is_int(i) for i in items):
            return None
        out.extend(items)
    last = chain[-1]
    out.extend(last if isinstance(last, tuple) else (last,))
    return tuple(out)


def selection_shape(shape: tuple[int, ...], chain: Chain, path: str) -> tuple[int, ...]:
    """The shape a chain of indices selects from an array of ``shape``.

    Computed on a zero-strided stand-in, so nothing of the parameter's size
    is allocated; numpy validates every index on the way.

    Raises:
        PositionError: An index does not fit (the message names the path).

    Examples:
        >>> selection_shape((8, 4), (0, slice(1, 3)), "0.weight")
        (2,)
    """
    value = np.lib.stride_tricks.as_strided(np.zeros(1, np.int8), shape=shape, strides=(0,) * len(shape))
    for index in chain:
        try:
            value = value[index]
        except (IndexError, TypeError) as err:
            raise PositionError(
                f"Index {index!r} does not fit parameter {path!r}: {err}. Expected an index into "
                f"its canonical shape {shape}. " + received(index=index)
            ) from None
    return tuple(np.shape(value))


def _is_int(item: Any) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, bool)
