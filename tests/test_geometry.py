"""Convolution geometry: a port warns of a stride or padding that differs exactly
when the two models' outputs differ.

The rule (`unified_params._core.geometry`) is checked on its own, then against
the frameworks themselves: for a grid of kernels, strides, paddings and input
sizes, a torch convolution is ported into a Keras, paddle or Flax one with no
check input, and the port's warning must agree with what running both models
shows.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from unified_params._core.geometry import SAME, Geometry, differences


def _conv(padding, stride=2, kernel=3, **more) -> Geometry:
    return Geometry((kernel,), (stride,), (1,), (padding,), **more)


def test_same_with_stride_two_agrees_with_one_on_each_side_on_odd_sizes_only():
    torch_like = _conv((1, 1))
    assert differences(torch_like, _conv(SAME, sizes=(9,))) == []
    assert differences(torch_like, _conv(SAME, sizes=(10,))) == [
        ("padding", "1/1", "same (0/1 for the recorded input, 10)")
    ]
    assert differences(torch_like, _conv(SAME)) == [  # no size recorded: it depends on it
        ("padding", "1/1", "same (0/1 or 1/1 per axis, by the input's size)")
    ]
    assert differences(_conv(SAME), _conv(SAME)) == []


def test_padding_the_windows_never_reach_is_no_difference():
    """At 10 positions, a 3-wide kernel with stride 2 takes windows at -1, 1, ..., 7
    whether or not one more zero follows the input: (1, 1) and (1, 0) agree."""
    assert differences(_conv((1, 1), sizes=(10,)), _conv((1, 0))) == []
    assert differences(_conv((1, 1), sizes=(9,)), _conv((1, 0))) != []  # there the last window needs it
    assert differences(_conv((1, 1)), _conv((1, 0))) != []  # for some size it does


def test_a_padding_layer_before_counts_as_the_convolution_s_own():
    padded = _conv((0, 0), before=((1, 1),))
    assert differences(padded, _conv((1, 1))) == []
    assert differences(padded, _conv((0, 0)))[0][:2] == ("padding", "1/1")
    # Its recorded size is of the padded map: the input both layers take is smaller.
    assert differences(_conv((0, 0), before=((0, 1),), sizes=(11,)), _conv(SAME)) == []  # "same" at 10: 0/1
    assert differences(_conv((0, 0), before=((1, 1),), sizes=(11,)), _conv(SAME)) == []  # "same" at 9: 1/1
    assert differences(_conv((0, 0), before=((0, 1),), sizes=(10,)), _conv(SAME)) != []  # "same" at 9: 1/1


def test_stride_one_same_is_fixed_and_an_even_kernel_pads_after():
    assert differences(_conv(SAME, stride=1), _conv((1, 1), stride=1)) == []
    assert differences(_conv(SAME, stride=1, kernel=2), _conv((0, 1), stride=1, kernel=2)) == []
    assert differences(_conv(SAME, stride=1, kernel=2), _conv((1, 0), stride=1, kernel=2)) == [
        ("padding", "same (0/1)", "1/0")
    ]


def test_stride_dilation_and_mode_are_reported_and_unknown_padding_is_not_compared():
    assert differences(_conv((1, 1)), _conv((1, 1), stride=1)) == [("stride", "2", "1")]
    dilated = Geometry((3,), (1,), (2,), ((2, 2),))
    assert differences(dilated, _conv((2, 2), stride=1)) == [("dilation", "2", "1")]
    assert differences(_conv((1, 1), mode="reflect"), _conv((1, 1))) == [("padding_mode", "reflect", "zeros")]
    assert differences(_conv((0, 0), mode="reflect"), _conv((0, 0))) == []  # nothing padded: no mode
    assert differences(_conv(None), _conv((5, 5))) == []  # an adapter that cannot say: no claim
    crop = Geometry((3,), (2,), (1,), ((1, 0),), transposed=True)  # torch's padding=1, output_padding=1
    assert differences(crop, Geometry((3,), (2,), (1,), ((1, 1),), transposed=True)) == [
        ("padding", "crop 1/0", "crop 1/1")
    ]
    assert differences(crop, Geometry((3,), (2,), (1,), (None,), transposed=True)) == []


def test_a_transposed_same_crops_by_the_input_s_size():
    """paddle's "SAME" transposed convolution crops what a "same" convolution pads on
    its input: 1/1 on odd sizes and 0/1 on even ones for a 3-wide kernel of stride 2;
    with stride 1 the crop is fixed."""
    same = _conv(SAME, transposed=True)
    assert differences(same, _conv((1, 1), transposed=True)) == [
        ("padding", "crop same (0/1 or 1/1 per axis, by the input's size)", "crop 1/1")
    ]
    assert differences(same, _conv(SAME, transposed=True)) == []
    assert differences(_conv(SAME, stride=1, transposed=True), _conv((1, 1), stride=1, transposed=True)) == []
    assert differences(_conv(SAME, stride=1, kernel=2, transposed=True),
                       _conv((1, 0), stride=1, kernel=2, transposed=True)) == [
        ("padding", "crop same (0/1)", "crop 1/0")
    ]  # fmt: skip


@pytest.mark.parametrize("size", [9, 10])
def test_same_pads_as_keras_and_torch_pad_it(size):
    """`Geometry.pads` for "same" against the frameworks: a Keras "same" convolution of
    a map of ones gives what torch gives with those zeros padded explicitly."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    for kernel, stride, dilation in itertools.product((1, 2, 3, 4), (1, 2, 3), (1, 2)):
        if stride > 1 and dilation > 1:
            continue  # Keras refuses both at once
        layer = keras.layers.Conv1D(1, kernel, strides=stride, dilation_rate=dilation, padding="same")
        x = np.random.default_rng(0).standard_normal((1, size, 1)).astype("float32")
        ours = keras.ops.convert_to_numpy(layer(x))[0, :, 0]
        lo, hi = Geometry((kernel,), (stride,), (dilation,), (SAME,)).pads(size)
        weight = torch.from_numpy(keras.ops.convert_to_numpy(layer.kernel)).permute(2, 1, 0)
        padded = torch.nn.functional.pad(torch.from_numpy(x).permute(0, 2, 1), (lo, hi))
        theirs = torch.nn.functional.conv1d(padded, weight, torch.from_numpy(keras.ops.convert_to_numpy(layer.bias)),
                                            stride=stride, dilation=dilation)[0, 0].numpy()  # fmt: skip
        assert ours.shape == theirs.shape and np.allclose(ours, theirs, atol=1e-5), (kernel, stride, dilation)


def _port_says(src, dst) -> list[str]:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        report = up.port(src, dst)
    changing = [
        line
        for line in report.differences
        if any(f": {n}" in line for n in ("padding", "stride", "dilation"))
    ]
    assert bool(changing) == any("will not compute" in str(w.message) for w in said)
    return changing


def _outputs_differ(src, dst, size) -> bool:
    x = np.random.default_rng(1).standard_normal((2, 3, size, size)).astype("float32")
    a, b = up.forward(src, x), up.forward(dst, x)
    return a.shape != b.shape or not np.allclose(a, b, atol=1e-5)


def _torch_conv(kernel, stride, padding, pad_layer=None):
    import torch

    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(3, 4, kernel, stride=stride, padding=padding)]
    return torch.nn.Sequential(*([pad_layer] if pad_layer is not None else []), *layers).eval()


@pytest.mark.parametrize("recorded", [True, False], ids=["size recorded", "size unknown"])
def test_a_port_into_keras_warns_exactly_when_the_outputs_differ(recorded):
    needs("torch")
    needs("keras")
    import keras

    checked, seen = 0, set()
    for kernel, stride, padding, keras_padding, zero_pad in itertools.product(
        (2, 3), (1, 2), (0, 1), ("valid", "same"), (None, ((0, 1), (0, 1)), 1)
    ):
        if zero_pad is not None and keras_padding == "same":
            continue
        sizes = (9, 10)
        for size in sizes if recorded else [None]:
            shape = (size, size, 3) if recorded else (None, None, 3)
            pads = [keras.layers.ZeroPadding2D(zero_pad)] if zero_pad is not None else []
            dst = keras.Sequential([keras.Input(shape), *pads, keras.layers.Conv2D(4, kernel, strides=stride,
                                                                                 padding=keras_padding)])  # fmt: skip
            src = _torch_conv(kernel, stride, padding)
            warned = _port_says(src, dst)
            differ = any(_outputs_differ(src, dst, n) for n in ([size] if recorded else sizes))
            assert bool(warned) == differ, (kernel, stride, padding, keras_padding, zero_pad, size, warned)
            checked, seen = checked + 1, seen | {differ}
    assert checked == (64 if recorded else 32) and seen == {True, False}


def test_a_torch_padding_layer_before_a_convolution_is_counted():
    needs("torch")
    needs("keras")
    import keras
    import torch

    src = _torch_conv(3, 2, 0, pad_layer=torch.nn.ZeroPad2d((0, 1, 0, 1)))  # left, right, top, bottom
    same = keras.Sequential([keras.Input((10, 10, 3)), keras.layers.Conv2D(4, 3, strides=2, padding="same")])
    assert _port_says(src, same) == [] and not _outputs_differ(src, same, 10)
    odd = keras.Sequential([keras.Input((9, 9, 3)), keras.layers.Conv2D(4, 3, strides=2, padding="same")])
    assert _port_says(src, odd) and _outputs_differ(src, odd, 9)

    # Before the Sequential that holds the convolution first, as torchvision nests its
    # blocks; a layer of another kind in between (a pad of ones) ends the search.
    def nested(*before):
        torch.manual_seed(0)
        return torch.nn.Sequential(*before, torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2)))

    zeros = torch.nn.ZeroPad2d((0, 1, 0, 1))
    assert _port_says(nested(zeros), same) == [] and not _outputs_differ(nested(zeros), same, 10)
    ones = nested(zeros, torch.nn.ConstantPad2d((1, 0, 1, 0), 1.0))
    assert _port_says(ones, same) == [
        "2.0 -> 0: padding 0/0, 0/0 (torch) vs same (0/1, 0/1 for the recorded input, 10 x 10) (keras)"
    ] and _outputs_differ(ones, same, 10)


def test_a_keras_padding_layer_before_a_nested_model_is_counted():
    """A Keras convolution that takes its nested model's input is padded by the
    ZeroPadding layers before that model's call in the one holding it: a Sequential
    in a Sequential, and a functional model called in a functional one (both
    deeper, and the padding split between the levels). The port warns exactly
    when the outputs differ."""
    needs("torch")
    needs("keras")
    import keras

    L = keras.layers

    def sequential(outer, inner, size):
        block = keras.Sequential([*inner, L.Conv2D(4, 3, strides=2)])
        return keras.Sequential([keras.Input((size, size, 3)), *outer, block])

    def functional(outer, inner, size):
        x = keras.Input((size + 2 * len(outer), size + 2 * len(outer), 3))
        y = x
        for layer in inner:
            y = layer(y)
        block = keras.Model(x, L.Conv2D(4, 3, strides=2)(y))
        x = keras.Input((size, size, 3))
        y = x
        for layer in outer:
            y = layer(y)
        middle = keras.Model(x, block(y))  # two levels: the conv is nested twice
        x = keras.Input((size, size, 3))
        return keras.Model(x, middle(x))

    checked, seen = 0, set()
    for build, padding, split, size in itertools.product(
        (sequential, functional), (0, 1), (0, 1, 2), (9, 10)
    ):
        outer = [L.ZeroPadding2D(1) for _ in range(min(split, 1))]
        inner = [L.ZeroPadding2D(1) for _ in range(split - len(outer))]
        src, dst = _torch_conv(3, 2, padding), build(outer, inner, size)
        warned = _port_says(src, dst)
        differ = _outputs_differ(src, dst, size)
        assert bool(warned) == differ, (build.__name__, padding, split, size, warned)
        checked, seen = checked + 1, seen | {differ}
    assert checked == 24 and seen == {True, False}


def test_a_port_into_paddle_warns_exactly_when_the_outputs_differ():
    needs("torch")
    needs("paddle")
    import paddle

    cases = [  # paddle's padding argument in its forms, and its modes
        ("SAME", "zeros"), ("VALID", "zeros"), (1, "zeros"), ([1, 1], "zeros"), ([0, 1, 0, 1], "zeros"),
        ([[0, 0], [0, 0], [1, 1], [1, 1]], "zeros"), (1, "reflect"),
    ]  # fmt: skip
    _warned_exactly_where_outputs_differ(
        ((padding, mode, torch_padding), _torch_conv(3, 2, torch_padding),
         paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, stride=2, padding=padding, padding_mode=mode)))
        for (padding, mode), torch_padding in itertools.product(cases, (0, 1))
    )  # fmt: skip


def test_paddle_same_runs_undilated_and_is_compared_as_such():
    """paddle 3.3.1's ``Conv2D(..., dilation=2, padding="SAME")`` computes what
    ``dilation=1`` does (measured): a torch dilated convolution ported into it
    must warn, and an undilated one must not."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    def torch_conv(stride, dilation, padding):
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, stride=stride, dilation=dilation, padding=padding)
        )

    _warned_exactly_where_outputs_differ(
        ((stride, dilation, padding, paddle_dilation), torch_conv(stride, dilation, padding),
         paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, stride=stride, dilation=paddle_dilation, padding="SAME")))
        for stride, dilation, padding, paddle_dilation in itertools.product((1, 2), (1, 2), (1, 2), (1, 2))
    )  # fmt: skip


def _warned_exactly_where_outputs_differ(ports) -> None:
    """For each ``(label, source, destination)``: the port warns if and only if the
    outputs differ at some size (neither model records one; a size per remainder of
    the stride shows every case); the grid must hold both outcomes."""
    seen = set()
    for label, src, dst in ports:
        warned = _port_says(src, dst)
        differ = any(_outputs_differ(src, dst, n) for n in (9, 10))
        assert bool(warned) == differ, (label, warned)
        seen.add(differ)
    assert seen == {True, False}


def test_a_port_into_flax_warns_exactly_when_the_outputs_differ():
    needs("torch")
    needs("flax")
    import torch
    from flax import nnx

    def torch_conv(padding, mode):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=padding, padding_mode=mode))

    _warned_exactly_where_outputs_differ(
        ((padding, torch_padding, mode), torch_conv(torch_padding, mode),
         nnx.Sequential(nnx.Conv(3, 4, (3, 3), strides=2, padding=padding, rngs=nnx.Rngs(0))))
        for padding, torch_padding, mode in itertools.product(
            ("SAME", "VALID", "CIRCULAR", 1, ((0, 1), (0, 1))), (0, 1), ("zeros", "circular")
        )
    )  # fmt: skip


def test_a_convolution_that_pads_in_its_own_forward_is_judged_by_what_is_known_of_it():
    """A torch convolution whose class replaces ``forward`` may pad otherwise than its
    settings say: its padding is not compared (``check_input`` measures it). timm's
    ``Conv2dSame`` (its ``tf_*`` models) pads by TensorFlow's "same" in its forward,
    with ``padding=0`` in its settings: it is known as "same"."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    from tests.zoo.models import import_torchvision

    import_torchvision()  # timm imports it
    from timm.layers import Conv2dSame

    class PadsItself(torch.nn.Conv2d):
        def forward(self, x):
            return super().forward(torch.nn.functional.pad(x, (1, 1, 1, 1)))

    def keras_conv(size, padding, pad=None):
        pads = [keras.layers.ZeroPadding2D(pad)] if pad else []
        conv = keras.layers.Conv2D(4, 3, strides=2, padding=padding)
        return keras.Sequential([keras.Input((size, size, 3)), *pads, conv])

    torch.manual_seed(0)
    own = torch.nn.Sequential(PadsItself(3, 4, 3, stride=2))
    assert up.wrap(own).adapter.geometry(own[0], [(own, "0")]).padding == (None, None)
    valid = keras_conv(10, "valid")
    assert _port_says(own, valid) == [] and _outputs_differ(own, valid, 10)  # not claimed either way

    same = torch.nn.Sequential(Conv2dSame(3, 4, 3, stride=2))
    for size in (9, 10):
        dst = keras_conv(size, "same")
        assert _port_says(same, dst) == [] and not _outputs_differ(same, dst, size)
    both_sides = keras_conv(10, "valid", pad=1)
    assert _port_says(same, both_sides) and _outputs_differ(same, both_sides, 10)


def _torch_transposed(kernel, stride, padding, extra):
    import torch

    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose2d(3, 4, kernel, stride=stride, padding=padding, output_padding=extra)
    return torch.nn.Sequential(conv)


def test_a_transposed_convolution_into_keras_warns_exactly_when_the_outputs_differ():
    """What a transposed convolution crops from its full output: torch's ``padding`` and
    ``output_padding`` against Keras' ``"valid"``/``"same"`` with and without an
    ``output_padding``; neither depends on the input's size."""
    needs("torch")
    needs("keras")
    import keras

    seen = set()
    for kernel, stride, keras_padding, keras_extra, padding, extra in itertools.product(
        (2, 3, 4), (1, 2, 3), ("valid", "same"), (None, 0, 1), (0, 1), (0, 1)
    ):
        if (keras_extra or 0) >= stride or extra >= stride:
            continue  # both frameworks refuse an output_padding of the stride or more
        if (
            keras_padding == "same"
            and keras_extra == 0
            and kernel % 2 == 0
            and keras.backend.backend() == "tensorflow"
        ):
            continue  # TensorFlow 2.21's oneDNN kernel fails to run these (an even kernel cropped by 0)
        src = _torch_transposed(kernel, stride, padding, extra)
        conv = keras.layers.Conv2DTranspose(
            4, kernel, strides=stride, padding=keras_padding, output_padding=keras_extra
        )
        dst = keras.Sequential([keras.Input((None, None, 3)), conv])
        warned = _port_says(src, dst)
        differ = any(_outputs_differ(src, dst, n) for n in (5, 6))
        assert bool(warned) == differ, (kernel, stride, keras_padding, keras_extra, padding, extra, warned)
        seen.add(differ)
    assert seen == {True, False}


def test_a_transposed_convolution_into_flax_warns_exactly_when_the_outputs_differ():
    needs("torch")
    needs("flax")
    from flax import nnx

    def nnx_conv(kernel, stride, padding):
        conv = nnx.ConvTranspose(3, 4, (kernel, kernel), strides=stride, padding=padding, transpose_kernel=True,
                                 rngs=nnx.Rngs(0))  # fmt: skip
        return nnx.Sequential(conv)

    _warned_exactly_where_outputs_differ(
        ((kernel, stride, nnx_padding, padding, extra), _torch_transposed(kernel, stride, padding, extra),
         nnx_conv(kernel, stride, nnx_padding))
        for kernel, stride, nnx_padding, padding, extra in itertools.product(
            (2, 3, 4), (1, 2, 3), ("SAME", "VALID", 0, 1, ((1, 0), (1, 0))), (0, 1), (0, 1)
        )
        if extra < stride
    )  # fmt: skip


def test_a_transposed_convolution_into_paddle_warns_exactly_when_the_outputs_differ():
    needs("torch")
    needs("paddle")
    import paddle

    def paddle_conv(kernel, stride, padding, extra):
        conv = paddle.nn.Conv2DTranspose(3, 4, kernel, stride=stride, padding=padding, output_padding=extra)
        return paddle.nn.Sequential(conv)

    _warned_exactly_where_outputs_differ(
        ((kernel, stride, theirs, ours), _torch_transposed(kernel, stride, *ours), paddle_conv(kernel, stride, *theirs))
        for kernel, stride, theirs, ours in itertools.product(
            (2, 3), (1, 2, 3), ((0, 0), (1, 0), (1, 1), ([1, 0, 1, 0], 0), ("SAME", 0), ("SAME", 1), ("VALID", 1)),
            ((0, 0), (1, 0), (1, 1)),
        )
        if ours[1] < stride and theirs[1] < stride
    )  # fmt: skip


def test_a_paddle_transposed_same_crops_what_same_pads_on_its_input():
    """`Geometry.pads` of the geometry the paddle adapter gives a "SAME" transposed
    convolution, against its output: the full transposed output (computed here in
    numpy, undilated as the geometry says) cropped by those pads, for every
    remainder of the stride; an output_padding gives back positions at the end
    (a negative end crop: positions that hold the bias alone)."""
    needs("paddle")
    import paddle

    rng = np.random.default_rng(0)
    checked = 0
    for kernel, stride, dilation, size, extra in itertools.product(
        (1, 2, 3, 4, 5), (1, 2, 3), (1, 2), (7, 8, 9), (0, 1, 2)
    ):
        if extra >= stride:
            continue  # paddle refuses an output_padding of the stride or more
        conv = paddle.nn.Conv1DTranspose(
            1, 1, kernel, stride=stride, padding="SAME", dilation=dilation, output_padding=extra
        )
        net = paddle.nn.Sequential(conv)
        g = up.wrap(net).adapter.geometry(conv, [(net, "0")])
        x = rng.standard_normal(size).astype("float32")
        w = conv.weight.numpy()[0, 0]
        step = g.dilation[0]
        full = np.zeros((size - 1) * stride + step * (kernel - 1) + 1, "float32")
        for i, j in itertools.product(range(size), range(kernel)):
            full[i * stride + j * step] += x[i] * w[j]
        lo, hi = g.pads(size)
        cropped = (
            full[lo : len(full) - hi] if hi >= 0 else np.concatenate([full[lo:], np.zeros(-hi, "float32")])
        )
        ours = cropped + conv.bias.numpy()
        theirs = conv(paddle.to_tensor(x[None, None])).numpy()[0, 0]
        assert ours.shape == theirs.shape and np.allclose(ours, theirs, atol=1e-5), (
            kernel, stride, dilation, size, extra
        )  # fmt: skip
        checked += 1
    assert checked == 180


def test_a_convolution_whose_holder_pads_with_a_function_is_not_compared_by_its_padding():
    """torch's model pads with ``F.pad`` in its forward before a valid strided
    convolution; Keras' convolution is valid too. Before, both paddings read
    0/0 and the port said nothing while the outputs differ (5 x 5 against
    4 x 4). Now the padding is not compared, and the notes say why; a model
    that does not pad in its forward is compared as before."""
    needs("torch")
    needs("keras")
    import keras
    import torch
    import torch.nn.functional as F

    class Padded(torch.nn.Module):
        def __init__(self, padding):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=padding)

        def forward(self, x):
            return self.conv(F.pad(x, (0, 1, 0, 1)))

    class Plain(Padded):
        def forward(self, x):
            return self.conv(x)

    dst = keras.Sequential([keras.Input((10, 10, 3)), keras.layers.Conv2D(4, 3, strides=2)])
    torch.manual_seed(0)
    src = Padded(0).eval()
    assert _outputs_differ(src, dst, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = up.port(src, dst)
    assert _port_says(src, dst) == []
    assert report.notes[0] == (
        "The padding of 1 paired convolutions was not compared: the code of <root> (Padded, torch) may pad "
        "with a function in its forward, which no layer shows. Pass check_input=x to compare outputs."
    )
    assert _port_says(Plain(1).eval(), dst) == ["conv -> 0: padding 1/1, 1/1 (torch) vs 0/0, 0/0 (keras)"]
