"""The safetensors writer's pipeline (``_core/safetensors_io.write``): the next
large tensor is being made while one is written, and memory stays bounded."""

from __future__ import annotations

import io
import json
import struct

import numpy as np

from unified_params._core import recycling
from unified_params._core import safetensors_io as st


def _entries(sizes: list[int], fetched: list[str]) -> list[st.Entry]:
    """float32 entries of these lengths; each notes its name in ``fetched`` when asked for its value."""

    def fetch(name: str, n: int):
        def read() -> np.ndarray:
            fetched.append(name)
            return np.full(n, len(fetched), np.float32)

        return read

    return [st.Entry(f"t{k}", (n,), "float32", fetch(f"t{k}", n)) for k, n in enumerate(sizes)]


class _Recorder(io.BytesIO):
    """A stream that notes, at each tensor's write, which values were asked for by then."""

    def __init__(self, fetched: list[str]) -> None:
        super().__init__()
        self.fetched, self.seen = fetched, []

    def write(self, data) -> int:
        if self.tell():  # not the header
            self.seen.append(len(self.fetched))
        return super().write(data)


def test_the_next_large_tensor_is_made_while_a_small_one_waits_between():
    """Kernels and biases alternate: while kernel k is written, kernel k+1 is on its
    way (it is asked for before the write starts), not only the bias between."""
    big, small = 1 << 16, 16
    fetched: list[str] = []
    entries = _entries([big, small, big, small, big, small], fetched)
    stream = _Recorder(fetched)
    st.write(stream, entries, {})
    # writing t0 (a kernel): t0, t1 (its bias) and t2 (the next kernel) were asked for
    assert stream.seen == [3, 3, 5, 5, 6, 6]
    values = _read_back(stream.getvalue())
    assert [int(values[f"t{k}"][0]) for k in range(6)] == [1, 2, 3, 4, 5, 6]


def test_values_held_ahead_stay_within_about_one_largest_tensor():
    """Equal tensors: one written, one made ahead; never more."""
    fetched: list[str] = []
    stream = _Recorder(fetched)
    st.write(stream, _entries([1 << 12] * 5, fetched), {})
    assert stream.seen == [2, 3, 4, 5, 5]


def test_the_writer_reuses_memory_it_lets_go():
    """Transposed copies are made in memory the previous ones let go (warm pages):
    the writer opens a recycling scope."""
    seen: list[bool] = []
    entries = [
        st.Entry(f"k{k}", (512, 1024), "float32",
                 lambda: (seen.append(recycling.active()), np.ones((1024, 512), np.float32).T)[1])
        for k in range(3)
    ]  # fmt: skip
    st.write(io.BytesIO(), entries, {})
    assert seen == [True, True, True] and not recycling.active()


def _read_back(data: bytes) -> dict[str, np.ndarray]:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    return {
        k: np.frombuffer(body[v["data_offsets"][0] : v["data_offsets"][1]], np.float32)
        for k, v in header.items()
        if k != "__metadata__"
    }
