"""What a Keras model records beyond its layers: the graph of its functional and
Sequential models, which tells a port where a layer's outputs go (Flatten order is in
tests/test_flatten_order.py), and its layers' names, which paths may use."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from unified_params import spec as S


def test_a_bias_folds_only_where_the_graph_sends_it_to_the_batchnorm_alone():
    """A Keras functional model records where a convolution's outputs go: one that
    also skips past its BatchNorm (a residual sum) keeps its bias's effect there,
    so its bias is not folded."""
    needs("keras")
    import keras

    L = keras.layers
    inputs = keras.Input((6, 6, 3))
    conv, norm = L.Conv2D(4, 3), L.BatchNormalization()
    y = conv(inputs)
    skipping = keras.Model(inputs, L.Add()([norm(y), y]))
    conv.bias.assign(np.full(4, 0.5, "float32"))
    dst = S.Sequential(S.Conv2d(3, 4, 3, bias=False), S.BatchNorm2d(4)).build("keras")
    with pytest.raises(
        up.PortError, match=r"no fold: the source's graph \(keras\) sends its outputs to 2 places"
    ):
        up.port(skipping, dst, fold_biases=True)
    conv_again, norm_again = L.Conv2D(4, 3), L.BatchNormalization(epsilon=1e-5)
    straight = keras.Model(inputs, L.ReLU()(norm_again(conv_again(inputs))))
    conv_again.bias.assign(np.full(4, 0.5, "float32"))
    with pytest.warns(UserWarning, match=r"2 -> 1: output_activation relu \(keras\) vs none \(keras\)"):
        report = up.port(straight, dst, fold_biases=True)  # the source's ReLU after its BatchNorm
    assert report.absent == [
        "1: bias folded into the running_mean of keras's '1' ('0' has no bias and feeds that BatchNorm "
        "alone: the source's graph shows it; the destination's graph shows it)"
    ]


def _functional():
    import keras

    L = keras.layers
    inputs = keras.Input((4,))
    hidden = L.Dense(8, name="hidden")(inputs)
    return keras.Model(inputs, L.Dense(2, name="head")(L.ReLU(name="act")(hidden)), name="mlp")


def test_a_keras_layer_name_is_a_path_to_the_layer_at_its_position():
    """``model.get_layer("head")`` in Keras is ``m["head"]`` here: the same module, at
    its canonical path (its position), and its parameters under it."""
    needs("keras")
    model = _functional()
    m = up.wrap(model)
    assert m["head"].path == "3" and m["head"].native is model.get_layer("head")
    assert m["head.weight"].path == "3.weight" and m["head.kernel"].native is model.get_layer("head").kernel
    assert m["hidden.bias"] is not None and m["1.bias"].native is m["hidden.bias"].native
    with pytest.raises(up.PathError):
        m["tail"]


def test_a_port_mapping_may_name_keras_layers_by_their_names():
    """Pairs pinned by Keras layer names, and rules matched against them, pair the
    same layers as positions do."""
    needs("keras")
    needs("torch")
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    in_order, pinned_first = (
        [("1", "0", "linear"), ("3", "2", "linear")],
        [("3", "2", "linear"), ("1", "0", "linear")],
    )
    cases = [
        ({"hidden": "0", "head": "2"}, in_order),
        ({"head": "2"}, pinned_first),
        ([(r"h\w+en", "0"), (r"head", "2")], in_order),
    ]
    for mapping, pairs in cases:
        assert up.port(_functional(), net, mapping=mapping, check_input=x).pairs == pairs
    report = up.port(net, _functional(), mapping={"2": "head", "0": "hidden"}, check_input=x)
    assert report.pairs == [("2", "3", "linear"), ("0", "1", "linear")]
    with pytest.raises(
        up.PortError, match=r"renamed to no parameterised layer of the destination: '0' -> 'tail'"
    ):
        up.port(net, _functional(), mapping=[(r"0", "tail"), (r"2", "head")])


def test_a_keras_graph_tells_what_a_dense_layers_outputs_become():
    """A map where a layer holding maps takes their reshape; a sequence (T, F), as
    torch orders it, where a recurrent layer does; a vector where a Dense does."""
    needs("keras")
    import keras

    from unified_params.backends.keras import graph

    L = keras.layers
    to_map = keras.Sequential(
        [keras.Input((8,)), L.Dense(36), L.Dropout(0.1), L.Reshape((3, 3, 4)), L.Conv2D(2, 3)]
    )
    first = keras.Sequential([
        keras.Input((8,)), L.Dense(36), L.Reshape((4, 3, 3)), L.Conv2D(2, 3, data_format="channels_first")
    ])  # fmt: skip
    to_sequence = keras.Sequential([keras.Input((8,)), L.Dense(36), L.Reshape((9, 4)), L.LSTM(3)])
    to_vector = keras.Sequential([keras.Input((8,)), L.Dense(36), L.Dense(3)])
    normed = keras.Sequential([
        keras.Input((8,)), L.Dense(36), L.Reshape((3, 3, 4)), L.BatchNormalization(), L.UpSampling2D(), L.Conv2D(2, 3)
    ])  # fmt: skip
    assert graph.unflattened_output(to_map.layers[0]) == (4, 9, True)
    assert graph.unflattened_output(first.layers[0]) == (4, 9, False)
    assert graph.unflattened_output(to_sequence.layers[0]) == (36, 1, True)
    assert graph.unflattened_output(to_vector.layers[0]) == (36, 1, True)
    assert graph.unflattened_output(normed.layers[0]) == (4, 9, True)  # past a norm of the map
    assert graph.unflattened_output(L.Dense(3)) is None  # never called in a graph
