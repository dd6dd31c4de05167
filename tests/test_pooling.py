"""Pooling geometry: a port warns of a pooling layer's stride, padding,
``ceil_mode`` or ``count_include_pad`` that differs exactly when the two
models' outputs differ.

Pooling layers hold no weights: a port pairs them by their order among the
pooling layers of each model (`unified_params._core.port`), and the rule
(`unified_params._core.geometry`) is checked first against torch's own output
sizes, then against the frameworks: for a grid of settings a torch model
ending in a pooling layer is ported into a paddle or Keras one with no check
input, and the port's warning must agree with what running both models shows.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from unified_params._core.geometry import Geometry, Pooling, pooling_differences

SIZES = (9, 10, 11)


def test_ceil_mode_counts_windows_as_torch_does():
    needs("torch")
    import torch

    checked = 0
    for kernel, stride, padding, ceil, size in itertools.product(
        (2, 3), (1, 2, 3), (0, 1), (False, True), SIZES
    ):
        pool = torch.nn.MaxPool1d(kernel, stride, padding, ceil_mode=ceil)
        torch_count = pool(torch.zeros(1, 1, size)).shape[-1]
        ours = Geometry((kernel,), (stride,), (1,), ((padding, padding),), ceil=ceil).windows(size)
        assert ours == (-padding, torch_count), (kernel, stride, padding, ceil, size)
        checked += 1
    assert checked == 72


def test_count_include_pad_matters_only_where_a_window_reaches_padding():
    padded = Geometry((3,), (1,), (1,), ((1, 1),))
    assert pooling_differences(Pooling("average", padded, True), Pooling("average", padded, False)) == [
        ("count_include_pad", "True", "False")
    ]
    bare = Geometry((3,), (1,), (1,), ((0, 0),))
    assert pooling_differences(Pooling("average", bare, True), Pooling("average", bare, False)) == []
    # A padding layer's zeros always count: torch's own padding, counted, is the same.
    zeros_before = Geometry((3,), (1,), (1,), ((0, 0),), before=((1, 1),))
    assert (
        pooling_differences(Pooling("average", padded, True), Pooling("average", zeros_before, False)) == []
    )
    assert pooling_differences(
        Pooling("average", padded, False), Pooling("average", zeros_before, False)
    ) == [("count_include_pad", "False", "False (a padding layer's zeros counted)")]
    # Unknown (a divisor of the user's own) or a max: not compared.
    assert pooling_differences(Pooling("average", padded, None), Pooling("average", padded, False)) == []
    assert pooling_differences(Pooling("max", padded), Pooling("max", bare)) == [("padding", "1/1", "0/0")]


def _port_says(src, dst) -> list[str]:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        report = up.port(src, dst)
    lines = [line for line in report.differences if any(f": {n} " in line for n in _NAMES)]
    assert bool(lines) == any("will not compute" in str(w.message) for w in said)
    return lines


_NAMES = ("padding", "padding_mode", "stride", "pooling", "ceil_mode", "count_include_pad")


def _outputs_differ(src, dst, sizes=SIZES) -> bool:
    return any(_outputs_differ_at(src, dst, n) for n in sizes)


def _torch_model(kind, kernel, stride, padding, ceil, counts=True):
    import torch

    torch.manual_seed(0)
    if kind == "max":
        pool = torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil)
    else:
        pool = torch.nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil, count_include_pad=counts)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), pool).eval()


def _warned_exactly_where_outputs_differ(ports) -> int:
    seen, checked = set(), 0
    for label, src, dst in ports:
        warned = _port_says(src, dst)
        differ = _outputs_differ(src, dst)
        assert bool(warned) == differ, (label, warned)
        seen.add(differ)
        checked += 1
    assert seen == {True, False}
    return checked


def test_a_port_into_paddle_warns_exactly_when_the_outputs_differ():
    needs("torch")
    needs("paddle")
    import paddle

    def paddle_model(kind, padding, ceil, exclusive):
        pool = (
            paddle.nn.MaxPool2D(3, 2, padding, ceil_mode=ceil)
            if kind == "max"
            else paddle.nn.AvgPool2D(3, 2, padding, ceil_mode=ceil, exclusive=exclusive)
        )
        return paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), pool)

    grid = [
        (kind, torch_padding, torch_ceil, counts, padding, ceil, exclusive)
        for kind in ("max", "avg")
        for torch_padding, torch_ceil, padding, ceil in itertools.product((0, 1), (False, True), (0, 1, "SAME"), (False, True))
        for counts, exclusive in (itertools.product((True, False), (True, False)) if kind == "avg" else [(True, True)])
        if not (padding == "SAME" and kind == "avg" and not exclusive)  # not compared: see the adapter
    ]  # fmt: skip
    checked = _warned_exactly_where_outputs_differ(
        (
            label,
            _torch_model(label[0], 3, 2, label[1], label[2], label[3]),
            paddle_model(label[0], *label[4:]),
        )
        for label in grid
    )
    assert checked == len(grid) == 104
    for torch_padding, counts in itertools.product((0, 1), (True, False)):  # paddle's "SAME" counting padding
        src = _torch_model("avg", 3, 2, torch_padding, False, counts)
        dst = paddle_model("avg", "SAME", False, False)
        assert not any("count_include_pad" in line for line in _port_says(src, dst))  # not compared


@pytest.mark.parametrize("recorded", [True, False], ids=["size recorded", "size unknown"])
def test_a_port_into_keras_warns_exactly_when_the_outputs_differ(recorded):
    needs("torch")
    needs("keras")
    import keras

    def keras_model(kind, stride, padding, zero_pad, size):
        pool = (keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D)(
            3, stride, padding
        )
        pads = [keras.layers.ZeroPadding2D(zero_pad)] if zero_pad else []
        return keras.Sequential([keras.Input((size, size, 3)), keras.layers.Conv2D(4, 1), *pads, pool])

    checked = 0
    for size in SIZES if recorded else [None]:
        grid = [
            (kind, stride, torch_padding, ceil, counts, padding, zero_pad)
            for kind, stride, torch_padding, ceil, padding, zero_pad in itertools.product(
                ("max", "avg"), (1, 2), (0, 1), (False, True), ("valid", "same"), (0, 1)
            )
            for counts in ((True, False) if kind == "avg" else (True,))
            if not (zero_pad and padding == "same")
        ]
        sizes = (size,) if recorded else SIZES
        for label in grid:
            kind, stride, torch_padding, ceil, counts, padding, zero_pad = label
            src = _torch_model(kind, 3, stride, torch_padding, ceil, counts)
            dst = keras_model(kind, stride, padding, zero_pad, size)
            warned = _port_says(src, dst)
            assert bool(warned) == _outputs_differ(src, dst, sizes), (label, size, warned)
            checked += 1
    assert checked == (72 * 3 if recorded else 72)


def _outputs_differ_at(src, dst, size) -> bool:
    x = np.random.default_rng(1).standard_normal((2, 3, size, size)).astype("float32")
    a, b = up.forward(src, x), up.forward(dst, x)
    return a.shape != b.shape or not np.allclose(a, b, atol=1e-5)


def test_pools_are_not_compared_when_the_two_models_list_them_differently():
    """Two max poolings against one: which pairs with which is not known, so
    nothing is claimed (the check input is what proves such a port)."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    torch.manual_seed(0)
    src = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 1), torch.nn.MaxPool2d(2), torch.nn.MaxPool2d(3, 2, ceil_mode=True)
    )
    dst = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), paddle.nn.MaxPool2D(3, 2))
    assert _port_says(src, dst) == []
    assert up.port(src, dst).notes == [  # said in the report
        "The pooling layers with a window were not compared (torch lists 2, paddle 1): which pairs "
        "with which is not known. Pass check_input=x to compare outputs."
    ]
    same_count = paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 4, 1), paddle.nn.MaxPool2D(2), paddle.nn.MaxPool2D(3, 2)
    )
    assert _port_says(src, same_count) == ["2 -> 2: ceil_mode True (torch) vs False (paddle)"]


def test_a_max_pooling_against_an_average_of_the_same_window_is_listed():
    """Poolings paired by position (as many, of the same window sizes) are
    compared by kind too; of other window sizes, nothing is claimed."""
    needs("torch")
    needs("keras")
    needs("paddle")
    import keras
    import paddle

    def paddle_model(kind, kernel):
        pool = (paddle.nn.MaxPool2D if kind == "max" else paddle.nn.AvgPool2D)(kernel, 2)
        return paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), pool)

    def keras_model(kind, kernel):
        pool = (keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D)(kernel, 2)
        return keras.Sequential([keras.Input((10, 10, 3)), keras.layers.Conv2D(4, 1), pool])

    ports = [
        ((ours, theirs, to.__name__), _torch_model(ours, 3, 2, 0, False), to(theirs, 3))
        for ours, theirs in itertools.product(("max", "avg"), repeat=2)
        for to in (paddle_model, keras_model)
    ]
    assert _warned_exactly_where_outputs_differ(ports) == 8
    assert _port_says(_torch_model("max", 3, 2, 0, False), paddle_model("avg", 3)) == [
        "1 -> 1: pooling max (torch) vs average (paddle)"
    ]
    assert _port_says(_torch_model("max", 3, 2, 0, False), paddle_model("avg", 2)) == []  # other windows


def test_a_padding_layer_s_zeros_before_a_max_pooling_matter_only_for_negative_inputs():
    """keras.applications' ResNet50 pads with zeros before its max pooling,
    torchvision's pools with padding=1 (minus infinity): the same after a ReLU."""
    needs("torch")
    needs("keras")
    import keras
    import torch

    def torch_model(*relu):
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 1), *relu, torch.nn.MaxPool2d(3, 2, padding=1)
        ).eval()

    def keras_model(activation):
        inputs = keras.Input((10, 10, 3))
        padded = keras.layers.ZeroPadding2D(1)(keras.layers.Conv2D(4, 1, activation=activation)(inputs))
        return keras.Model(inputs, keras.layers.MaxPooling2D(3, 2)(padded))

    for relu, activation in [((), None), ((torch.nn.ReLU(),), "relu")]:
        src, dst = torch_model(*relu), keras_model(activation)
        warned = _port_says(src, dst)
        assert bool(warned) == _outputs_differ_at(src, dst, 10) == (activation is None), (activation, warned)
    assert _port_says(torch_model(), keras_model(None)) == [
        "1 -> 3: padding_mode minus infinity (its own) (torch) vs zeros (a padding layer before it) (keras)"
    ]


def test_a_keras_same_average_is_compared_where_its_engine_leaves_the_padding_out():
    """Runs on each Keras engine (``make test`` runs this file on JAX and torch too):
    the adapter claims TensorFlow's rule only where the engine computes it."""
    needs("keras")
    import keras

    pool = keras.layers.AveragePooling2D((1, 3), (1, 2), padding="same")
    model = keras.Sequential([keras.Input((1, 10, 1)), pool])
    got = np.asarray(
        keras.ops.convert_to_numpy(model(np.arange(1, 11, dtype="float32").reshape(1, 1, 10, 1)))
    )
    padding_left_out = np.allclose(got.ravel(), [2, 4, 6, 8, 9.5])  # the last window: the mean of 9 and 10
    found = up.wrap(model).adapter.pooling(pool, [(model, "0")])
    assert found is not None and found.geometry.padding == ("same", "same")
    assert (found.counts_padding is False) == padding_left_out, (keras.backend.backend(), got)
    assert padding_left_out == (keras.backend.backend() != "torch")  # measured with Keras 3.15.1


def test_a_pooling_subclass_is_judged_by_its_base_unless_it_pools_in_its_own_forward():
    """timm's ``MaxPool2dSame`` pads in its own forward: nothing is claimed of it.
    A subclass that keeps torch's forward is its base, whatever its name."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    class PadsItself(torch.nn.MaxPool2d):
        def forward(self, x):
            return super().forward(torch.nn.functional.pad(x, (0, 1, 0, 1), value=-float("inf")))

    class Renamed(torch.nn.MaxPool2d):
        pass

    def torch_model(pool):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), pool).eval()

    paddle_model = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), paddle.nn.MaxPool2D(3, 2))
    assert _port_says(torch_model(PadsItself(3, 2)), paddle_model) == []
    assert _port_says(torch_model(Renamed(3, 2, ceil_mode=True)), paddle_model) == [
        "1 -> 1: ceil_mode True (torch) vs False (paddle)"
    ]


class _PoolsInForward:
    """torch models whose own forward runs their poolings: by the layers it holds
    (``self.first(x)``), or, given ``functional``, with one more pooling that
    only its code shows (``F.avg_pool2d``)."""

    @staticmethod
    def build(functional: bool, last_ceil: bool = False):
        import torch
        import torch.nn.functional as F

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 1)
                self.first, self.last = torch.nn.MaxPool2d(2), torch.nn.MaxPool2d(2, ceil_mode=last_ceil)

            def forward(self, x):
                x = self.first(self.conv(x))
                return self.last(F.avg_pool2d(x, 3, 1, 1) if functional else x)

        class Plain(Net):
            def forward(self, x):
                return self.last(self.first(self.conv(x)))

        torch.manual_seed(0)
        return (Net if functional else Plain)().eval()


def test_a_pooling_only_a_forward_method_shows_is_noted_and_stops_the_pairing():
    """torch's model pools three times, one of them with ``F.avg_pool2d`` in its
    forward; Keras' lists the other two. Before, the two listed pairs were
    compared and found alike, and the port said nothing of its poolings while
    the outputs differ. A forward that only calls the layers it holds is not
    taken for one that pools (its poolings are still compared)."""
    needs("torch")
    needs("keras")
    import keras

    def keras_model():
        pools = [keras.layers.MaxPooling2D(2), keras.layers.MaxPooling2D(2)]
        return keras.Sequential([keras.Input((10, 10, 3)), keras.layers.Conv2D(4, 1), *pools])

    src, dst = _PoolsInForward.build(functional=True), keras_model()
    assert _outputs_differ_at(src, dst, 10)
    report = up.port(src, dst)
    assert _port_says(src, dst) == []  # nothing is claimed of the poolings ...
    assert report.notes[0] == (  # ... and the report says why
        "The pooling layers with a window were not compared: the code of <root> (Net, torch) may pool "
        "with a function in its forward, which no layer shows. Pass check_input=x to compare outputs."
    )
    plain = _PoolsInForward.build(functional=False, last_ceil=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ceil_mode below
        assert not any("pool with a function" in n for n in up.port(plain, keras_model()).notes)
    assert _port_says(plain, keras_model()) == ["last -> 2: ceil_mode True (torch) vs False (keras)"]


def test_each_framework_s_own_code_that_pools_with_a_function_is_seen(native):
    """A module of the user's own that pools and interpolates with its
    framework's functions, on each backend; the framework's own layers are
    described by their settings, never read as code."""
    from unified_params._core.code_names import kinds_named
    from unified_params.backends import adapter_for

    def kinds(module):
        adapter = adapter_for(module)
        return kinds_named(module, adapter.WEIGHTLESS_FUNCTIONS, adapter.FRAMEWORK_PACKAGES)

    assert kinds(native.pools_in_code()) == frozenset({"pooling", "upsampling"})
    for layer in native.weightless_layers():
        assert kinds(layer) == frozenset(), type(layer).__name__


def test_a_pooling_in_a_helper_function_the_forward_calls_is_seen():
    """A helper of the model's module that pools, called by a global name from
    the forward (at any depth), counts as the forward's own code; a helper that
    does not pool does not."""
    needs("torch")
    import torch

    from unified_params._core.code_names import kinds_named
    from unified_params.backends import adapter_for

    class Pools(torch.nn.Module):
        def forward(self, x):
            return _through(x)

    class Scales(torch.nn.Module):
        def forward(self, x):
            return _scaled(x)

    adapter = adapter_for(torch.nn.Linear(1, 1))
    kinds = {
        type(m).__name__: kinds_named(m, adapter.WEIGHTLESS_FUNCTIONS, adapter.FRAMEWORK_PACKAGES)
        for m in (Pools(), Scales())
    }
    assert kinds == {"Pools": frozenset({"pooling"}), "Scales": frozenset()}


def test_a_pooling_function_the_module_was_handed_is_seen():
    """A forward that pools with a function the module was given (a
    constructor's argument, held as it is, through ``functools.partial`` or in
    a list), which neither a layer nor the module's own code names. Before,
    such a model's two listed max poolings were compared against Keras' and
    found alike: the port said nothing of its poolings while the outputs
    differ. A module handed no function (an identity) is still compared."""
    needs("torch")
    needs("keras")
    import functools

    import keras
    import torch
    import torch.nn.functional as F

    from unified_params._core.code_names import kinds_named
    from unified_params.backends import adapter_for

    class Given(torch.nn.Module):
        def __init__(self, pool=None, steps=()):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 1)
            self.first, self.last = torch.nn.MaxPool2d(2), torch.nn.MaxPool2d(2)
            self.pool, self.steps = pool, list(steps)

        def forward(self, x):
            x = self.first(self.conv(x))
            for step in self.steps:
                x = step(x)
            return self.last(x if self.pool is None else self.pool(x))

    def keras_model():
        pools = [keras.layers.MaxPooling2D(2), keras.layers.MaxPooling2D(2)]
        return keras.Sequential([keras.Input((10, 10, 3)), keras.layers.Conv2D(4, 1), *pools])

    adapter = adapter_for(Given())
    handed = [
        Given(F.avg_pool2d),  # a builtin of torch._C
        Given(functools.partial(F.max_pool2d, kernel_size=3, stride=1, padding=1)),
        Given(steps=[functools.partial(F.avg_pool2d, kernel_size=3, stride=1, padding=1)]),
        Given(steps={"up": functools.partial(F.interpolate, scale_factor=2)}.values()),
    ]
    kinds = [kinds_named(m, adapter.WEIGHTLESS_FUNCTIONS, adapter.FRAMEWORK_PACKAGES) for m in handed]
    assert kinds == [{"pooling"}, {"pooling"}, {"pooling"}, {"upsampling"}]
    assert kinds_named(Given(), adapter.WEIGHTLESS_FUNCTIONS, adapter.FRAMEWORK_PACKAGES) == frozenset()
    src = handed[2].eval()
    assert _outputs_differ_at(src, keras_model(), 10)
    report = up.port(src, keras_model())
    assert _port_says(src, keras_model()) == []  # nothing is claimed of the poolings ...
    assert report.notes[0].startswith(  # ... and the report says why
        "The pooling layers with a window were not compared: the code of <root> (Given, torch) may pool"
    )


def _through(x):
    return _halved(x)  # the pooling is two calls away


def _halved(x):
    import torch.nn.functional as F

    return F.avg_pool2d(x, 2)


def _scaled(x):
    return x * 2


def test_a_pooling_whose_holder_pads_with_a_function_is_not_compared_by_its_padding():
    """torch's model pads with ``F.pad`` before its max pooling, Keras' pools
    with no padding: both poolings read 0/0, and before the port said nothing
    while the outputs differ. Now their padding is not compared, and the notes
    say why."""
    needs("torch")
    needs("keras")
    import keras
    import torch
    import torch.nn.functional as F

    class Padded(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.pool = torch.nn.Conv2d(3, 4, 1), torch.nn.MaxPool2d(3, 2)

        def forward(self, x):
            return self.pool(F.pad(self.conv(x), (1, 1, 1, 1), value=-1.0))

    torch.manual_seed(0)
    src = Padded().eval()
    dst = keras.Sequential(
        [keras.Input((10, 10, 3)), keras.layers.Conv2D(4, 1), keras.layers.MaxPooling2D(3, 2)]
    )
    assert _outputs_differ_at(src, dst, 10)
    assert _port_says(src, dst) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        notes = up.port(src, dst).notes
    assert (
        "The padding of 1 paired poolings was not compared: the code of <root> (Padded, torch) may pad with a "
        "function in its forward, which no layer shows. Pass check_input=x to compare outputs."
    ) in notes


def test_an_average_whose_count_one_side_does_not_say_is_said_not_compared():
    """Paddle's ``divisor_override`` divides every window by a number of the
    user's: the port cannot compare it with torch's count, and says so where
    before it said nothing while the edge outputs differed."""
    needs("torch")
    needs("paddle")
    import paddle

    src = _torch_model("avg", 3, 1, 1, False, counts=False)
    pool = paddle.nn.AvgPool2D(3, 1, 1, exclusive=False, divisor_override=9)
    dst = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), pool)
    assert _port_says(src, dst) == []  # no difference the port can name
    assert _outputs_differ(src, dst)  # the weights ported, the edges divided otherwise
    report = up.port(src, dst)
    assert any(
        "the average poolings 1 -> 1 divide a window at an edge by was not compared" in n
        for n in report.notes
    )
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 9)).astype("float32")
    with pytest.raises(up.PortError, match="output differs"):
        up.port(src, dst, check_input=x)
