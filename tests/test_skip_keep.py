"""Ports between models that differ by layers one side lacks: ``skip`` leaves
source layers out (a classifier the destination lacks), ``keep`` leaves
destination layers as they are (a new head, a preprocessing layer the source
lacks: keras.applications' EfficientNet normalises its input in a layer of
its own). Before, such a port was refused with no way through: a mapping
must pair every layer of both sides.
"""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs, snapshot

X = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")


def _torch(*sizes: tuple[int, int]):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(*[torch.nn.Linear(i, o) for i, o in sizes])


def test_keep_leaves_a_new_head_as_it_is():
    needs("torch")
    src, dst = _torch((4, 8)), _torch((4, 8), (8, 3))
    with pytest.raises(
        up.PortError, match=r"the destination has 1 layer the source lacks: '1' .*keep=\['1'\]"
    ):
        up.port(src, dst)
    head = up.wrap(dst)["1.weight"].numpy().copy()
    report = up.port(src, dst, keep=["1"])
    assert report.pairs == [("0", "0", "linear")]
    assert report.kept == ["1 (Linear): weight, bias"]
    assert any(n.startswith("Left as they were: 1 (Linear)") for n in report.notes)
    np.testing.assert_array_equal(up.wrap(dst)["1.weight"].numpy(), head)
    np.testing.assert_array_equal(up.wrap(dst)["0.weight"].numpy(), up.wrap(src)["0.weight"].numpy())


def test_skip_leaves_a_classifier_out():
    needs("torch")
    needs("keras")
    import keras

    src = _torch((4, 8), (8, 3))
    dst = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    with pytest.raises(
        up.PortError, match=r"the source has 1 layer the destination lacks: '1' .*skip=\['1'\]"
    ):
        up.port(src, dst)
    report = up.port(src, dst, skip=["1"], check_input=None)
    assert report.pairs == [("0", "0", "linear")] and report.skipped == ["1 (Linear): weight, bias"]
    np.testing.assert_allclose(dst(X), src[0](__import__("torch").from_numpy(X)).detach().numpy(), atol=1e-6)


def test_keep_by_keras_layer_name_and_checked():
    """A preprocessing layer of mean 0 and variance 1 (an unadapted Keras
    Normalization) passes its input on: kept, and the outputs verify the port."""
    needs("torch")
    needs("keras")
    import keras

    inputs = keras.Input((4,))
    norm = keras.layers.Normalization(name="prep")
    dst = keras.Model(inputs, keras.layers.Dense(8, name="fc")(norm(inputs)))
    src = _torch((4, 8))
    report = up.port(src, dst, keep=["prep"], check_input=X)
    assert report.max_abs_diff < 1e-6
    assert report.kept == ["1 'prep' (Normalization): mean, variance, count"]


def test_keep_that_changes_the_outputs_is_caught_by_the_check():
    needs("torch")
    needs("keras")
    import keras

    inputs = keras.Input((4,))
    norm = keras.layers.Normalization(name="prep")
    dst = keras.Model(inputs, keras.layers.Dense(8, name="fc")(norm(inputs)))
    norm.adapt(2.0 + 3.0 * np.random.default_rng(1).standard_normal((64, 4)).astype("float32"))
    before = snapshot(dst)
    with pytest.raises(up.PortError, match="output differs"):
        up.port(_torch((4, 8)), dst, keep=["prep"], check_input=X)
    assert all(np.array_equal(before[k], v) for k, v in snapshot(dst).items())


@pytest.mark.parametrize(
    "kwargs, said",
    [
        ({"keep": ["7"]}, r"keep names '7', which is no parameterised layer of the destination\. Expected some of \['0', '1'\]"),
        ({"skip": ["2"]}, r"skip names '2', which is no parameterised layer of the source\. Expected some of \['0'\]"),
        ({"keep": "1"}, "keep must be a list of layer paths, not one string"),
    ],
)  # fmt: skip
def test_keep_and_skip_name_layers_that_exist(kwargs, said):
    needs("torch")
    src, dst = _torch((4, 8)), _torch((4, 8), (8, 3))
    before = snapshot(dst)
    with pytest.raises(up.PortError, match=said):
        up.port(src, dst, **kwargs)
    assert all(np.array_equal(before[k], v) for k, v in snapshot(dst).items())


def test_a_kept_layer_tied_to_a_written_one_is_refused():
    """One variable cannot be both left as it is and written."""
    needs("torch")
    src = _torch((4, 4))
    dst = _torch((4, 4), (4, 4), (4, 4))
    dst[2].weight = dst[0].weight
    before = snapshot(dst)
    with pytest.raises(
        up.PortError, match=r"keep names the torch layer that holds '2.weight', which is tied to '0.weight'"
    ):
        up.port(src, dst, keep=["1", "2"])
    assert all(np.array_equal(before[k], v) for k, v in snapshot(dst).items())


def test_a_head_of_other_classes_is_refused_with_skip_and_keep_named():
    needs("torch")
    src, dst = _torch((4, 8), (8, 1000)), _torch((4, 8), (8, 10))
    with pytest.raises(up.PortError, match=r"new head, pass skip=\['1'\] and keep=\['1'\] to port the rest"):
        up.port(src, dst)
    report = up.port(src, dst, skip=["1"], keep=["1"])
    assert report.pairs == [("0", "0", "linear")]
    assert any("not with a new head" in n for n in report.notes)
