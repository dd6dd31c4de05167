"""What a framework's recorded graph tells a port: Keras keeps one for its
functional and Sequential models (Flatten order is in tests/test_flatten_order.py)."""

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
    report = up.port(straight, dst, fold_biases=True)
    assert report.absent == [
        "1: bias folded into the running_mean of keras's '1' ('0' has no bias and feeds that BatchNorm "
        "alone: the source's graph shows it; the destination's graph shows it)"
    ]
