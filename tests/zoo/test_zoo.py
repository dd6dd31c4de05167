"""Real zoo models round-trip exactly: paths, seeded init, state, checkpoint, outputs."""

from __future__ import annotations

import re

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from tests.zoo.models import (
    KERAS,
    PADDLE,
    SMALL,
    TIMM,
    TV,
    ZooModel,
    _keras,
    _paddle,
    _timm,
    _tv,
    import_torchvision,
    round_trip,
)
from tests.zoo.pairs import _RESNET_NAMES, PAIRS, SMALL_PAIRS, TOLERANCE, Pair, port_pair, seed

FRAMEWORK = {TV: "torch", TIMM: "torch", KERAS: "keras", PADDLE: "paddle"}


@pytest.mark.parametrize("model", SMALL, ids=lambda m: f"{m.family}:{m.name}")
def test_zoo_model_round_trips_exactly(model: ZooModel, tmp_path):
    needs(FRAMEWORK[model.family])
    result = round_trip(model, tmp_path)
    assert result.ok, result.error
    assert result.max_diff <= 1e-5 and result.params > 100_000


@pytest.mark.parametrize("pair", SMALL_PAIRS, ids=lambda p: p.name)
def test_zoo_pair_ports_across_frameworks(pair: Pair):
    """torchvision -> paddle.vision and -> keras.applications, and back from Keras: verified on outputs."""
    for family, _, _ in (pair.source, pair.destination):
        needs(FRAMEWORK[family])
    import_torchvision()
    result = port_pair(pair)
    assert result.verdict == "verified", result.reason
    assert result.warned == []  # paired layers set alike: no false alarm without a check input
    assert result.largest >= 0.1 and result.params > 1_000_000  # outputs that a wrong weight moves
    assert result.max_diff <= 2 * TOLERANCE * result.largest


def test_a_zoo_pair_whose_padding_differs_is_refused_on_outputs():
    """torchvision pads mobilenet_v2's stride-2 convolutions on every side; Keras,
    on an even-sized map, on the bottom and right only. With the frameworks' own
    initial scales the outputs were the classifier's bias and the port passed."""
    needs("torch")
    needs("keras")
    import_torchvision()
    even, odd = (next(p for p in PAIRS if p.name == name and p.size == size) for name, size in (
        ("mobilenet_v2 (torchvision) -> MobileNetV2 (keras.applications)", 32),
        ("mobilenet_v2 (torchvision) -> MobileNetV2 (keras.applications)", 33),
    ))  # fmt: skip
    refused = port_pair(even)
    assert refused.verdict == "refused" and "output differs" in refused.reason, refused.reason
    assert refused.max_diff > 0.1 * refused.largest
    # Said without a check input too: the first convolution pads "same" (the recorded 32 x 32
    # input), later ones through a ZeroPadding2D before a "valid" convolution.
    assert refused.warned[0] == (
        "features.0.0 -> 1: padding 1/1, 1/1 (torch) vs same (0/1, 0/1 for the recorded input, 32 x 32) (keras)"
    ), refused.warned
    assert "features.2.conv.1.0 -> 13: padding 1/1, 1/1 (torch) vs 0/1, 0/1 (keras)" in refused.warned
    assert all(": padding " in line for line in refused.warned)
    assert odd in SMALL_PAIRS  # the same weights verify, with no warning, where both pad every side


def test_a_zoo_pair_whose_strides_differ_is_warned_of_without_a_check_input():
    """torchvision's resnet50 (v1.5) strides a bottleneck's 3 x 3 convolution, Keras'
    ResNet50 (v1) its first 1 x 1: the weights fit, the maps do not. Without a check
    input the port copies them and warns, naming each convolution."""
    needs("torch")
    needs("keras")
    import warnings

    import_torchvision()
    pair = next(p for p in PAIRS if p.name == "resnet50 (torchvision) -> ResNet50 (keras.applications)")
    src, dst = pair.source[2](), pair.destination[2]()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        report = up.port(src, dst, mapping=pair.mapping_for(src, dst), **pair.options)
    strides = [line for line in report.differences if ": stride " in line]
    assert strides[:2] == ["layer2.0.conv1 -> 39: stride 1, 1 (torch) vs 2, 2 (keras)",
                           "layer2.0.conv2 -> 42: stride 2, 2 (torch) vs 1, 1 (keras)"], strides  # fmt: skip
    assert len(strides) == 6  # the first bottleneck of layers 2, 3 and 4
    assert any("will not compute what the source does" in str(w.message) for w in said)


def test_inception_v3_s_pooling_in_forward_is_compared_without_a_check_input():
    """torchvision's Inception v3 blocks average-pool a branch with ``F.avg_pool2d``
    (padding counted), Keras' with ``AveragePooling2D("same")`` (not counted): the
    port names each of the 9 blocks. Where the block's forward is replaced (the
    gallery's "pooling as TensorFlow" model), nothing is claimed, and the port
    verifies."""
    needs("torch")
    needs("keras")
    import warnings

    import_torchvision()
    results = {}
    for name in ("inception_v3 (torchvision)", "inception_v3, pooling as TensorFlow (torchvision)"):
        pair = next(p for p in PAIRS if p.name == f"InceptionV3 (keras.applications) -> {name}")
        src, dst = pair.source[2](), pair.destination[2]()
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            report = up.port(src, dst, mapping=pair.mapping_for(src, dst), **pair.options)
        results[name] = [line for line in report.differences if "count_include_pad" in line]
    pools = results["inception_v3 (torchvision)"]
    assert (
        len(pools) == 9 and pools[0] == "27 -> Mixed_5b: count_include_pad False (keras) vs True (torch)"
    ), pools
    assert results["inception_v3, pooling as TensorFlow (torchvision)"] == []


def test_inception_s_auxiliary_head_pools_in_training_only_and_is_known_so():
    """torchvision's Inception v3 runs its auxiliary classifier in training only,
    and that head pools with ``F.avg_pool2d``: known by module and class name, it
    leaves the other poolings compared. A class of the user's own that runs the
    same code is not known, so its pooling stops the comparison."""
    needs("torch")
    import warnings

    import torch

    inception = import_torchvision().models.inception

    class OwnAux(inception.InceptionAux):
        pass

    class Net(torch.nn.Module):
        def __init__(self, aux, ceil):
            super().__init__()
            self.conv, self.pool = torch.nn.Conv2d(3, 4, 1), torch.nn.MaxPool2d(2, ceil_mode=ceil)
            self.aux = aux(4, 2)

        def forward(self, x):
            x = self.pool(self.conv(x))
            return (x, self.aux(x)) if self.training else x

    said = {}
    for aux in (inception.InceptionAux, OwnAux):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the ceil_mode difference
            report = up.port(Net(aux, False), Net(aux, True))
        said[aux.__name__] = (
            [line for line in report.differences if "ceil_mode" in line],
            [note for note in report.notes if "with a function" in note],
        )
    assert said["InceptionAux"] == (["pool -> pool: ceil_mode False (torch) vs True (torch)"], [])
    assert said["OwnAux"][0] == [] and "the code of aux (OwnAux, torch) may pool" in said["OwnAux"][1][0]


#: A small model of each zoo class the torch adapter knows to return its last
#: child's output (`RETURNS_CHILD`), with the input size it takes.
_RETURNING_MODELS = {
    ("torchvision.models.resnet", "ResNet"): (_tv("resnet18"), 64),
    ("torchvision.models.vgg", "VGG"): (_tv("vgg11"), 64),
    ("torchvision.models.alexnet", "AlexNet"): (_tv("alexnet"), 64),
    ("torchvision.models.densenet", "DenseNet"): (_tv("densenet121"), 64),
    ("torchvision.models.mobilenetv2", "MobileNetV2"): (_tv("mobilenet_v2"), 64),
    ("torchvision.models.mobilenetv3", "MobileNetV3"): (_tv("mobilenet_v3_small"), 64),
    ("torchvision.models.efficientnet", "EfficientNet"): (_tv("efficientnet_b0"), 64),
    ("torchvision.models.shufflenetv2", "ShuffleNetV2"): (_tv("shufflenet_v2_x0_5"), 64),
    ("torchvision.models.squeezenet", "SqueezeNet"): (_tv("squeezenet1_1"), 64),
    ("torchvision.models.googlenet", "GoogLeNet"): (_tv("googlenet", aux_logits=False, init_weights=False), 64),
    ("torchvision.models.inception", "Inception3"): (_tv("inception_v3", aux_logits=False, init_weights=False), 96),
    ("torchvision.models.regnet", "RegNet"): (_tv("regnet_y_400mf"), 64),
    ("torchvision.models.convnext", "ConvNeXt"): (_tv("convnext_tiny"), 64),
    ("torchvision.models.mnasnet", "MNASNet"): (_tv("mnasnet0_5"), 64),
    ("torchvision.models.vision_transformer", "VisionTransformer"): (_tv("vit_b_16", image_size=32), 32),
    ("torchvision.models.swin_transformer", "SwinTransformer"): (_tv("swin_t"), 64),
    ("timm.models.resnet", "ResNet"): (_timm("resnet18"), 64),
    ("timm.models.efficientnet", "EfficientNet"): (_timm("efficientnet_b0"), 64),
    ("timm.models.densenet", "DenseNet"): (_timm("densenet121"), 64),
    ("timm.models.inception_v3", "InceptionV3"): (_timm("inception_v3"), 96),
    ("timm.models.mobilenetv3", "MobileNetV3"): (_timm("mobilenetv3_small_100"), 64),
    ("paddle.vision.models.resnet", "ResNet"): (_paddle("resnet18"), 64),
    ("paddle.vision.models.vgg", "VGG"): (_paddle("vgg11"), 64),
    ("paddle.vision.models.mobilenetv1", "MobileNetV1"): (_paddle("mobilenet_v1"), 64),
    ("paddle.vision.models.mobilenetv2", "MobileNetV2"): (_paddle("mobilenet_v2"), 64),
    ("paddle.vision.models.mobilenetv3", "MobileNetV3Small"): (_paddle("mobilenet_v3_small"), 64),
    ("paddle.vision.models.mobilenetv3", "MobileNetV3Large"): (_paddle("mobilenet_v3_large"), 64),
    ("paddle.vision.models.densenet", "DenseNet"): (_paddle("densenet121"), 64),
    ("paddle.vision.models.shufflenetv2", "ShuffleNetV2"): (_paddle("shufflenet_v2_x0_25"), 64),
    ("paddle.vision.models.alexnet", "AlexNet"): (_paddle("alexnet"), 224),  # its classifier takes 6 x 6 maps
    ("paddle.vision.models.inceptionv3", "InceptionV3"): (_paddle("inception_v3"), 96),
}  # fmt: skip


def test_a_zoo_classifier_known_to_end_with_its_last_child_returns_that_child_s_output():
    """What the torch and paddle adapters declare of each zoo class
    (`RETURNS_CHILD`): in inference, the model's output is what its child at
    that key gives (flattened at most). Checked by running each, so a zoo
    release that changes its forward fails here."""
    needs("torch")
    needs("paddle")
    import paddle
    import torch

    from unified_params.backends import get_adapter

    tables = {name: get_adapter(name).RETURNS_CHILD for name in ("torch", "paddle")}
    assert {k for table in tables.values() for k in table} == set(_RETURNING_MODELS)
    import_torchvision()
    for name, table in tables.items():
        for (module, cls), key in table.items():
            build, size = _RETURNING_MODELS[module, cls]
            model = build()
            model.eval()
            assert (type(model).__module__, type(model).__name__) == (module, cls)
            seen: list = []
            x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype("float32")
            if name == "torch":
                getattr(model, key).register_forward_hook(
                    lambda _, __, out, seen=seen: seen.append(out.numpy())
                )
                with torch.no_grad():
                    out = model(torch.from_numpy(x)).numpy()
            else:
                getattr(model, key).register_forward_post_hook(
                    lambda _, __, out, seen=seen: seen.append(out.numpy())
                )
                with paddle.no_grad():
                    out = model(paddle.to_tensor(x)).numpy()
            assert len(seen) == 1 and np.array_equal(out, seen[0].reshape(out.shape)), (module, cls)


def test_a_keras_classifier_s_softmax_against_a_torchvision_one_is_listed_without_a_check_input():
    """keras.applications' ResNet50 ends in a softmax by default, torchvision's in
    the logits: the port lists it (before, "a forward method decides" left it
    out); without the softmax, nothing is listed and the fc is compared. A
    forward replaced on the class by code of another module claims nothing."""
    needs("torch")
    needs("keras")
    import warnings

    import keras

    import_torchvision()

    def port(activation):
        src = keras.applications.ResNet50(
            weights=None, input_shape=(64, 64, 3), classifier_activation=activation
        )
        dst = next(p for p in PAIRS if p.source[1] == "ResNet50" and p.destination[0] == TV).destination[2]()
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            report = up.port(src, dst, mapping=_RESNET_NAMES(src, dst), align="hyperparameters")
        blind = [int(n) for note in report.notes for n in re.findall(r"^What follows (\d+) of", note)]
        return [line for line in report.differences if "output_activation" in line], blind

    listed, blind = port("softmax")
    assert listed == ["176 -> fc: output_activation softmax (keras) vs none (torch)"]
    assert port(None) == ([], blind)  # the fc is compared either way
    resnet = import_torchvision().models.resnet.ResNet
    kept = resnet.forward
    resnet.forward = lambda self, x: kept(self, x).softmax(-1)  # this module's code: not known
    try:
        assert port("softmax") == ([], [blind[0] + 1])  # what follows the fc: not compared
    finally:
        resnet.forward = kept


def test_a_zoo_destination_with_a_layer_the_source_lacks_is_refused_naming_it_and_ported_keeping_it():
    needs("torch")
    needs("keras")
    source = _tv("efficientnet_b0")().eval()
    destination = _keras("EfficientNetB0")()  # Rescaling, then a Normalization of mean and variance
    with pytest.raises(up.PortError) as info:
        up.port(source, destination)
    said = str(info.value)
    assert "The source has 131 parameterised layers and the destination 132" in said, said
    assert "the first 0 and the last 131 pair by kind and shape" in said, said
    assert "the destination has 1 layer the source lacks: '2' (Normalization, other: mean (3,)" in said, said

    with pytest.warns(UserWarning, match="will not compute what the source does"):
        report = up.port(source, destination, keep=["2"])  # its Normalization left as it is
    kept = destination.layers[2]  # Keras numbers a name taken already in this process: 'normalization_2'
    assert type(kept).__name__ == "Normalization"
    assert report.kept == [f"2 {kept.name!r} (Normalization): mean, variance, count"]
    assert len(report.pairs) == 131
    # the Rescaling before it takes inputs of 0 to 255: listed, though it holds no weight
    assert [d for d in report.differences if ": inference_" in d] == [
        "1: inference_scale 0.00392157 (keras) vs 1 (torch)"
    ]


def test_every_refused_pair_of_the_gallery_says_why():
    refused = [p for p in PAIRS if p.expect == "refused"]
    assert refused and all(p.why for p in refused)
    assert all(p.expect in ("verified", "refused") for p in PAIRS)


def test_unnamed_keras_variables_have_structural_names():
    needs("keras")
    import keras

    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.gamma = self.add_weight(shape=(shape[-1],), initializer="ones")  # no name
            self.add_weight(shape=(), initializer="zeros")  # no name, no attribute

        def call(self, x):
            return x * self.gamma

    class Shift(keras.layers.Layer):
        def build(self, shape):
            self.beta = self.add_weight(shape=(shape[-1],), initializer="zeros", name="beta")
            self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False)  # no name

        def call(self, x):
            return x + self.beta

    names = []
    for _ in range(2):  # Keras numbers unnamed variables process-wide: variable, variable_1, ...
        net = keras.Sequential([keras.Input((3,)), Scale(), Shift()])
        params = up.wrap(net).params()
        names.append([(path, p.kind) for path, p in params.items()])
    assert names[0] == names[1] == [
        ("0.gamma", "param"), ("0.variable_1", "param"), ("1.beta", "param"), ("1.steps", "buffer")
    ]  # fmt: skip
    assert up.wrap(net)["0.gamma"].native is net.layers[0].gamma
    assert up.wrap(net)["1.steps"].native is net.layers[1].steps


def test_a_keras_normalization_uses_loaded_statistics():
    needs("keras")
    import keras

    def model():
        norm = keras.layers.Normalization()
        norm.adapt(np.random.default_rng(1).normal(3.0, 2.0, size=(50, 4)).astype("float32"))
        return keras.Sequential([keras.Input((4,)), norm, keras.layers.Dense(2)])

    a, b = model(), model()
    up.initialize(a, up.init.Normal(), seed=1)
    up.wrap(a)["0.mean"].set(np.full(4, 10.0))  # a write, then finalize_state, as Keras' own load does
    assert up.load_state_dict(b, up.state_dict(a)).ok
    x = np.ones((3, 4), "float32")
    np.testing.assert_allclose(up.forward(b, x), up.forward(a, x), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(a(x)), up.forward(a, x), rtol=1e-6)


def test_a_keras_image_model_starting_with_preprocessing_takes_channels_first():
    needs("keras")
    import keras

    net = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(0.5),
            keras.layers.Conv2D(4, 3),
            keras.layers.Flatten(),
        ]
    )
    x = np.random.default_rng(0).uniform(size=(2, 3, 8, 8)).astype("float32")  # canonical: channels first
    native = np.asarray(net(np.moveaxis(x, 1, -1)))
    np.testing.assert_allclose(up.forward(net, x), native, rtol=1e-6)
    assert set(up.gradients(net, x)) == {"1.weight", "1.bias"}


def test_non_persistent_torch_buffers_are_listed_reachable_and_never_saved(tmp_path):
    needs("torch")
    import torch

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 4)
            self.register_buffer("index", torch.arange(4), persistent=False)
            self.register_buffer("stat", torch.zeros(4))

        def forward(self, x):
            return self.linear(x)[..., self.index] + self.stat

    m = up.wrap(Block())
    assert list(m.params()) == ["index", "stat", "linear.weight", "linear.bias"]
    assert m["index"].persistent is False and m["stat"].persistent is True and m["index"].kind == "buffer"
    np.testing.assert_array_equal(m["index"].numpy(), np.arange(4))
    assert "index" not in up.state_dict(m) and "stat" in up.state_dict(m)
    up.save(m, tmp_path / "b.safetensors")
    assert "index" not in up.load(Block(), tmp_path / "b.safetensors").loaded


def test_keras_separable_convolution_is_torch_depthwise_then_pointwise():
    needs("keras")
    needs("torch")
    import keras
    import torch

    layer = keras.layers.SeparableConv2D(6, 3, depth_multiplier=2)
    net = keras.Sequential([keras.Input((7, 7, 3)), layer])
    up.initialize(net, up.init.Normal(), seed=3)
    state = up.state_dict(net)
    assert {k: v.shape for k, v in state.items()} == {
        "0.depthwise_weight": (6, 1, 3, 3),
        "0.pointwise_weight": (6, 6, 1, 1),
        "0.bias": (6,),
    }
    depthwise = torch.nn.Conv2d(3, 6, 3, groups=3, bias=False)
    pointwise = torch.nn.Conv2d(6, 6, 1)
    with torch.no_grad():
        depthwise.weight.copy_(torch.from_numpy(state["0.depthwise_weight"]))
        pointwise.weight.copy_(torch.from_numpy(state["0.pointwise_weight"]))
        pointwise.bias.copy_(torch.from_numpy(state["0.bias"]))
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7)).astype("float32")
    expected = pointwise(depthwise(torch.from_numpy(x))).detach().numpy()
    np.testing.assert_allclose(up.forward(net, x), expected, rtol=1e-4, atol=1e-5)


def test_a_deep_port_passes_a_relative_tolerance_and_a_refusal_keeps_its_report():
    needs("torch")
    needs("paddle")
    import paddle

    source = import_torchvision().models.resnet18(weights=None)
    seed(source)  # outputs that depend on the input, as the gallery's
    dst = paddle.vision.models.resnet18()
    x = np.random.default_rng(0).uniform(size=(2, 3, 64, 64)).astype("float32")
    scale = float(np.abs(up.forward(source, x)).max())
    report = up.port(source, dst, check_input=x, atol=TOLERANCE * scale)
    assert report.max_abs_diff is not None and report.max_abs_diff < TOLERANCE * scale
    with pytest.raises(up.PortError, match="float32 rounding .* atol in proportion") as info:
        up.port(source, paddle.vision.models.resnet18(), check_input=x, atol=0, rtol=0)
    assert info.value.report.pairs and info.value.report.max_abs_diff > 0
