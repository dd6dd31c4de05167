"""Window geometry: where a convolution's or a pooling layer's windows fall,
and whether two paired layers put them in the same places.

Two convolutions with the same weights compute the same map only if they
stride, dilate and pad alike. Frameworks spell padding differently: torch
and paddle pad a number of positions on both sides; Keras, paddle and Flax
also offer ``"same"``, which pads by a rule of the input's size (TensorFlow's:
``total = max((ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)``, ``total // 2``
before, the rest after); and a Keras or torch model may pad with a layer of
its own before a ``"valid"`` convolution (``ZeroPadding2D``, ``nn.ZeroPad2d``).
The rule here compares what matters: in the coordinates of the input both
layers take, where the first window starts and how many windows there are,
per spatial axis, for every input size (the comparison repeats with the
stride, so one size per remainder of the stride decides it), or for the one
size a framework records. With stride 2, ``padding=1`` and ``"same"`` agree
on odd sizes and disagree on even ones.

Pooling layers lay windows the same way, and add two settings: torch and
paddle may round the count of windows up (``ceil_mode``: one more window,
partly past the end, where the last would not fit), and an average pooling
may count padded positions in its divisor or not (torch's
``count_include_pad``, on by default; paddle's ``exclusive``, on by default,
is the reverse; Keras' ``"same"`` never counts them). A max pooling pads
with minus infinity, so its own padding never wins; the zeros of a padding
layer before it do win over negative inputs, and are compared unless the
input is known not to be negative (it comes out of a ReLU).

Adapters describe their layers (`Geometry`, `Pooling`); this module owns the
rules (`differences`, `pooling_differences`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

#: A spatial axis's padding: positions ``(before, after)``, `SAME` (the rule of
#: the input's size), or ``None`` where the adapter cannot say (not compared).
Pad = tuple[int, int] | str | None
SAME = "same"


@dataclass(frozen=True)
class Geometry:
    """How one convolution lays its windows over its input, per spatial axis.

    Attributes:
        kernel: The kernel's size.
        stride: The step between windows.
        dilation: The step between a window's taps.
        padding: The layer's own padding (see `Pad`).
        mode: What padding adds: ``"zeros"``, ``"reflect"``, ``"replicate"``
            or ``"circular"``.
        before: Zeros added by padding layers the framework shows feeding
            this one alone, ``(before, after)`` per axis.
        sizes: The size of each axis of the input the layer takes (its
            padding layers' included), where the framework records it.
        transposed: A transposed convolution: ``padding`` is then what it
            crops from the start and end of its full output
            (``(n - 1) * stride + span`` positions; a negative end adds
            positions), which does not depend on the input's size; or `SAME`
            (paddle's): what a "same" convolution pads on the input (`pads`),
            which does.
        ceil: The count of windows is rounded up (a pooling layer's
            ``ceil_mode``): one more window where the last would pass the
            end, if it starts inside the input or its padding before.
        output_padding: For a transposed convolution of `SAME` padding, the
            positions its ``output_padding`` gives back at the end of each
            axis (the crop's end less these: paddle's, measured); ``None``
            where there are none. A numeric crop holds them already.

    Examples:
        >>> g = Geometry(kernel=(3,), stride=(2,), dilation=(1,), padding=(SAME,))
        >>> g.windows(10), g.windows(9)
        ((0, 5), (-1, 5))
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[Pad, ...]
    mode: str = "zeros"
    before: tuple[tuple[int, int], ...] | None = None
    sizes: tuple[int | None, ...] | None = None
    transposed: bool = False
    ceil: bool = False
    output_padding: tuple[int, ...] | None = None

    @property
    def pointwise(self) -> bool:
        """Whether each output position is the input's at the same position, its
        channels mixed alone (a kernel of ones, stride one, no padding, not
        transposed): a Linear over the channels, at every position.

        Examples:
            >>> Geometry(kernel=(1, 1), stride=(1, 1), dilation=(1, 1), padding=(SAME, SAME)).pointwise
            True
            >>> Geometry(kernel=(1, 1), stride=(2, 2), dilation=(1, 1), padding=((0, 0), (0, 0))).pointwise
            False
        """
        unpadded = all(pad in ((0, 0), SAME) for pad in self.padding)
        no_layer = self.before is None or all(pads == (0, 0) for pads in self.before)
        ones = all(k == 1 for k in self.kernel) and all(s == 1 for s in self.stride)
        return ones and unpadded and no_layer and not self.transposed

    def said(self) -> str:
        """Its kernel, stride and padding in words.

        Examples:
            >>> Geometry(kernel=(1, 1), stride=(2, 2), dilation=(1, 1), padding=(SAME, SAME)).said()
            'kernel 1, 1, stride 2, 2, padding same'
        """
        padding = SAME if all(p == SAME for p in self.padding) else _said_padding(self.padding)
        layer = (
            f", padding layers {_pads(self.before)}"
            if self.before and any(lo or hi for lo, hi in self.before)
            else ""
        )
        return f"kernel {_numbers(self.kernel)}, stride {_numbers(self.stride)}, padding {padding}{layer}"

    def pads(self, raw: int, axis: int = 0) -> tuple[int, int] | None:
        """Positions padded before and after an axis of ``raw`` positions
        (the size before any padding layer), padding layers included."""
        lo, hi = self.before[axis] if self.before else (0, 0)
        own = self.padding[axis]
        if own is None:
            return None
        if own == SAME:
            n, k = raw + lo + hi, self.dilation[axis] * (self.kernel[axis] - 1) + 1
            total = max((math.ceil(n / self.stride[axis]) - 1) * self.stride[axis] + k - n, 0)
            given_back = self.output_padding[axis] if self.output_padding else 0
            own = (total // 2, total - total // 2 - given_back)
        assert isinstance(own, tuple)
        return lo + own[0], hi + own[1]

    def same_split_evenly(self) -> bool | None:
        """Whether its own ``SAME`` padding puts as many positions after an
        axis as before it on every axis: at the input size it records, else
        at every size (``None``: that depends on a size it does not record).
        Keras on torch averages over an evenly split padding leaving it out,
        and over an uneven one as over the input's edge values repeated.

        Examples:
            >>> Geometry((3,), (1,), (1,), (SAME,)).same_split_evenly()  # 1/1 at any size
            True
            >>> Geometry((3,), (2,), (1,), (SAME,)).same_split_evenly()  # 1/1 or 0/1 by the size
            >>> Geometry((3,), (2,), (1,), (SAME,), sizes=(10,)).same_split_evenly()
            False
        """
        found: bool | None = True
        for axis, own in enumerate(self.padding):
            if own != SAME:
                continue
            raw = self.raw_size(axis)
            sizes = [raw] if raw is not None else list(_representatives(self, axis))
            even = {self._even(n, axis) for n in sizes}
            if even == {False}:
                return False
            if len(even) > 1:
                found = None
        return found

    def _even(self, raw: int, axis: int) -> bool:
        """Whether its own padding of an axis of ``raw`` positions is as much after as before."""
        lo, hi = self.before[axis] if self.before else (0, 0)
        pads = self.pads(raw, axis)
        return pads is not None and pads[0] - lo == pads[1] - hi

    def windows(self, raw: int, axis: int = 0) -> tuple[int, int] | None:
        """Where the first window starts (``-p``: ``p`` positions of padding
        before the input) and how many there are, on an axis of ``raw``
        positions; ``None`` where the padding is unknown."""
        pads = self.pads(raw, axis)
        if pads is None:
            return None
        span = self.dilation[axis] * (self.kernel[axis] - 1) + 1
        room, step = raw + pads[0] + pads[1] - span, self.stride[axis]
        count = room // step + 1
        if self.ceil and room % step and count * step < raw + pads[0]:
            count += 1  # a last window past the end, starting inside the input
        return -pads[0], max(count, 0)

    def divisors(self, raw: int, axis: int, counts_padding: bool) -> tuple[int, ...] | None:
        """For an average pooling: how many positions each window divides by
        on an axis of ``raw`` positions. The input's, and the zeros of
        padding layers before it, always count; the layer's own padding
        when ``counts_padding``; a window's part past that (`ceil`) never
        does (torch's and paddle's rule)."""
        found, pads = self.windows(raw, axis), self.pads(raw, axis)
        if found is None or pads is None:
            return None
        layer = self.before[axis] if self.before else (0, 0)
        first, last = (-pads[0], raw + pads[1]) if counts_padding else (-layer[0], raw + layer[1])
        span, (start, count) = self.kernel[axis], found
        starts = (start + i * self.stride[axis] for i in range(count))
        return tuple(max(min(at + span, last) - max(at, first), 0) for at in starts)

    def zeros_taken(self, raw: int, axis: int) -> tuple[int, int] | None:
        """How many of the zeros padding layers add before and after an axis
        of ``raw`` positions some window takes (the layer's own padding left
        out)."""
        found = self.windows(raw, axis)
        if found is None:
            return None
        lo, hi = self.before[axis] if self.before else (0, 0)
        (start, count), span = found, self.dilation[axis] * (self.kernel[axis] - 1) + 1
        if count <= 0:
            return (0, 0)
        end = start + (count - 1) * self.stride[axis] + span
        return min(max(-start, 0), lo), min(max(end - raw, 0), hi)

    def raw_size(self, axis: int) -> int | None:
        """The size of the input before its padding layers, if recorded."""
        if self.sizes is None or self.sizes[axis] is None:
            return None
        lo, hi = self.before[axis] if self.before else (0, 0)
        return self.sizes[axis] - lo - hi  # type: ignore[operator]


def differences(a: Geometry, b: Geometry) -> list[tuple[str, str, str]]:
    """The settings in which two paired convolutions differ: ``(name, a's, b's)``
    for ``stride``, ``dilation``, ``padding`` and ``padding_mode``, the values
    as a report words them.

    Examples:
        >>> torch_like = Geometry((3, 3), (2, 2), (1, 1), ((1, 1), (1, 1)))
        >>> keras_like = Geometry((3, 3), (2, 2), (1, 1), (SAME, SAME), sizes=(10, 10))
        >>> differences(torch_like, keras_like)
        [('padding', '1/1, 1/1', 'same (0/1, 0/1 for the recorded input, 10 x 10)')]
        >>> differences(torch_like, Geometry((3, 3), (2, 2), (1, 1), (SAME, SAME), sizes=(9, 9)))
        []
    """
    found: list[tuple[str, str, str]] = []
    if len(a.stride) != len(b.stride):
        return found  # not the same kind of layer: the pairing says so
    if a.stride != b.stride:
        found.append(("stride", _numbers(a.stride), _numbers(b.stride)))
    if a.dilation != b.dilation:
        found.append(("dilation", _numbers(a.dilation), _numbers(b.dilation)))
    if found or a.kernel != b.kernel:
        return found  # windows of other steps or sizes: padding says nothing more
    sizes = [_known(a, b, axis) for axis in range(len(a.stride))]
    if a.transposed or b.transposed:  # crops from the full output, `pads` of a `SAME` one by the input's size
        if a.transposed and b.transposed and None not in a.padding + b.padding:
            if any(a.pads(n, axis) != b.pads(n, axis) for axis, n in _checked_sizes(a, b)):
                found.append(("padding", f"crop {_described(a, sizes)}", f"crop {_described(b, sizes)}"))
        return found
    if _same_windows(a, b) is None:
        return found  # a padding the adapter cannot say: not compared
    if not _same_windows(a, b):
        if not _same_windows(replace(a, ceil=False), replace(b, ceil=False)):
            found.append(("padding", _described(a, sizes), _described(b, sizes)))
        if a.ceil != b.ceil:
            found.append(("ceil_mode", str(a.ceil), str(b.ceil)))
    padded = any(p != (0, 0) for p in _effective(a, sizes) + _effective(b, sizes))
    if a.mode != b.mode and padded:
        found.append(("padding_mode", a.mode, b.mode))
    return found


def padding_unknown(g: Geometry) -> Geometry:
    """``g`` with a padding no one can say (its input may be padded elsewhere):
    `differences` then compares its steps, not where its windows fall.

    Examples:
        >>> padding_unknown(Geometry((3,), (2,), (1,), ((1, 1),))).padding
        (None,)
    """
    return replace(g, padding=(None,) * len(g.padding))


@dataclass(frozen=True)
class Pooling:
    """A pooling layer's windows and what it computes over each.

    Attributes:
        kind: ``"max"`` or ``"average"``.
        geometry: Its windows (a dilation of 1 but for torch's max pooling).
        counts_padding: For an average, whether padded positions count in the
            divisor; ``None`` where the adapter cannot say (a divisor of the
            user's own) or for a max.
        input_activation: The activation the input last went through, where
            the framework shows it (padding layers in between passed over);
            ``None`` where unknown.

    Examples:
        >>> g = Geometry((3,), (1,), (1,), ((1, 1),))
        >>> pooling_differences(Pooling("average", g, True), Pooling("average", g, False))
        [('count_include_pad', 'True', 'False')]
    """

    kind: str
    geometry: Geometry
    counts_padding: bool | None = None
    input_activation: str | None = None


#: Activations whose outputs are never negative, by the names adapters use.
NONNEGATIVE = frozenset({"relu", "relu6", "sigmoid", "hard_sigmoid"})


def pooling_differences(a: Pooling, b: Pooling) -> list[tuple[str, str, str]]:
    """The settings in which two paired pooling layers differ, as `differences`
    gives them, ``ceil_mode`` included; and, for two averages whose windows
    agree, ``count_include_pad`` where some window divides by another count.

    Examples:
        >>> torch_like = Pooling("max", Geometry((3, 3), (2, 2), (1, 1), ((0, 0),) * 2, ceil=True))
        >>> paddle_like = Pooling("max", Geometry((3, 3), (2, 2), (1, 1), ((0, 0),) * 2))
        >>> pooling_differences(torch_like, paddle_like)
        [('ceil_mode', 'True', 'False')]
    """
    found = differences(a.geometry, b.geometry)
    ga, gb = a.geometry, b.geometry
    if found or a.kind != b.kind or _same_windows(ga, gb) is None:
        return found  # a padding the adapter cannot say: not compared
    if a.kind == "max":
        if a.input_activation in NONNEGATIVE or b.input_activation in NONNEGATIVE:
            return found  # a zero never wins over such inputs: it pads as minus infinity does
        if any(ga.zeros_taken(n, axis) != gb.zeros_taken(n, axis) for axis, n in _checked_sizes(ga, gb)):
            return [("padding_mode", _padded_with(ga), _padded_with(gb))]
        return found
    if a.counts_padding is None or b.counts_padding is None:
        return found
    if any(
        ga.divisors(n, axis, a.counts_padding) != gb.divisors(n, axis, b.counts_padding)
        for axis, n in _checked_sizes(ga, gb)
    ):
        return [("count_include_pad", _counted(a), _counted(b))]
    return found


def _has_padding_layer(g: Geometry) -> bool:
    return g.before is not None and any(pad != (0, 0) for pad in g.before)


def _padded_with(g: Geometry) -> str:
    return "zeros (a padding layer before it)" if _has_padding_layer(g) else "minus infinity (its own)"


def _counted(p: Pooling) -> str:
    return f"{p.counts_padding}" + (
        " (a padding layer's zeros counted)" if _has_padding_layer(p.geometry) else ""
    )


def _checked_sizes(a: Geometry, b: Geometry) -> Iterator[tuple[int, int]]:
    """``(axis, size)`` for each size two paired layers are compared at: the
    recorded size of the axis, else one per remainder of the stride."""
    for axis in range(len(a.stride)):
        raw = _known(a, b, axis)
        yield from ((axis, n) for n in ([raw] if raw is not None else _representatives(a, axis)))


def _same_windows(a: Geometry, b: Geometry) -> bool | None:
    """Whether two layers' windows start and count alike at every size they
    are compared at; ``None`` where a padding is unknown."""
    agree = True
    for axis, n in _checked_sizes(a, b):
        wa, wb = a.windows(n, axis), b.windows(n, axis)
        if wa is None or wb is None:
            return None
        agree = agree and wa == wb
    return agree


def _known(a: Geometry, b: Geometry, axis: int) -> int | None:
    """The size of the input both layers take, if either framework records it."""
    found = a.raw_size(axis)
    return found if found is not None else b.raw_size(axis)


def _representatives(g: Geometry, axis: int) -> range:
    """One input size per remainder of the stride, each larger than a window
    (the windows' placement repeats with the stride)."""
    span = g.dilation[axis] * (g.kernel[axis] - 1) + 1
    base = g.stride[axis] * (span + 2)
    return range(base, base + g.stride[axis])


def _effective(g: Geometry, sizes: list[int | None]) -> list[tuple[int, int]]:
    """The padding at each axis's known size (or its first representative)."""
    out = []
    for axis, raw in enumerate(sizes):
        pads = g.pads(raw if raw is not None else _representatives(g, axis)[0], axis)
        out.append(pads if pads is not None else (0, 0))
    return out


def _described(g: Geometry, sizes: list[int | None]) -> str:
    """``"1/1, 1/1"`` (before/after per axis), or the rule with what it pads."""
    axes = range(len(g.stride))
    if SAME not in g.padding:
        return _pads([g.pads(0, axis) for axis in axes])  # type: ignore[misc]
    options = [{g.pads(n, axis) for n in _representatives(g, axis)} for axis in axes]
    if all(len(found) == 1 for found in options):  # the input's size does not matter (stride 1)
        return f"same ({_pads([found.pop() for found in options])})"  # type: ignore[misc]
    if all(raw is not None for raw in sizes):
        at = " x ".join(map(str, sizes))
        return f"same ({_pads(_effective(g, sizes))} for the recorded input, {at})"
    pads = sorted({pad for found in options for pad in found})  # type: ignore[type-var]
    return f"same ({' or '.join(_pads([p]) for p in pads)} per axis, by the input's size)"  # type: ignore[list-item]


def _said_padding(padding: tuple[Pad, ...]) -> str:
    return ", ".join(
        "unknown" if p is None else p if isinstance(p, str) else f"{p[0]}/{p[1]}" for p in padding
    )


def _pads(pads: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> str:
    return ", ".join(f"{lo}/{hi}" for lo, hi in pads)


def _numbers(values: tuple[int, ...]) -> str:
    return ", ".join(map(str, values))
