"""Every private framework API the adapters use still means what they rely on.

Each adapter keeps its framework's private API in one file
(``unified_params/backends/<framework>/internals.py``), each with the version
it was checked against. These tests fail loudly, naming the internal, when a
framework release changes one of them. The Keras ones run on every Keras
engine (``make test`` runs this file once per engine). The torch internals of
sharded parameters need DTensors, which need a process group: they are
checked in ``tests/distributed/cases.py`` (``torch_internals_still_mean_what_is_used``).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import needs


def test_torch_internals():
    needs("torch")
    import torch
    from torch import nn

    from unified_params.backends.torch import internals

    layer = nn.BatchNorm1d(3)
    layer.register_buffer("scratch", torch.zeros(1), persistent=False)
    seq = nn.Sequential(nn.Linear(2, 2), layer)
    slots = internals.SLOTS
    assert list(getattr(seq, slots.children)) == ["0", "1"], "nn.Module._modules"
    assert list(getattr(seq[0], slots.params)) == ["weight", "bias"], "nn.Module._parameters"
    assert "running_mean" in getattr(layer, slots.buffers), "nn.Module._buffers"
    assert getattr(layer, slots.transient) == {"scratch"}, "nn.Module._non_persistent_buffers_set"
    assert issubclass(nn.BatchNorm2d, internals.BATCH_NORM), "nn.modules.batchnorm._BatchNorm"
    for norm in (nn.utils.weight_norm, nn.utils.spectral_norm):
        hooks = getattr(norm(nn.Linear(2, 2)), slots.pre_hooks)
        assert [(type(h), h.name) for h in hooks.values() if isinstance(h, internals.NORM_HOOKS)] == [
            (type(next(iter(hooks.values()))), "weight")
        ], f"nn.Module._forward_pre_hooks: {norm.__name__}'s hook, naming its leaf"
    hooked = nn.utils.weight_norm(nn.Conv1d(2, 3, 4), dim=2)
    hooks = internals.LEAF_NORM_HOOKS
    hook = next(h for h in getattr(hooked, slots.pre_hooks).values() if isinstance(h, hooks["weight"]))
    assert (hook.dim, tuple(hooked.weight_g.shape)) == (2, (1, 1, 4)), "WeightNorm.dim; g keeps size-1 axes"
    whole = next(iter(getattr(nn.utils.weight_norm(nn.Linear(2, 2), dim=None), slots.pre_hooks).values()))
    assert whole.dim == -1, "WeightNorm.dim: None kept as -1, the whole weight"
    spectral = nn.utils.spectral_norm(nn.ConvTranspose1d(2, 3, 4))
    hook = next(iter(getattr(spectral, slots.pre_hooks).values()))
    assert isinstance(hook, hooks["spectral"]) and hook.dim == 1, "SpectralNorm.dim (1 for a transposed conv)"
    for make, (cls, parts) in internals.LEAF_NORM_PARAMETRIZATIONS.items():
        norm = getattr(nn.utils.parametrizations, f"{make}_norm")
        chain = norm(nn.Linear(2, 3), dim=1).parametrizations.weight
        assert isinstance(chain[0], cls) and chain[0].dim == 1, (
            f"nn.utils.parametrizations: {make}_norm's dim"
        )
        names = dict(chain.named_parameters()) | dict(chain.named_buffers())
        assert set(parts.values()) <= set(names), f"{make}_norm keeps {sorted(parts.values())}"
    from torch.nn.utils import prune

    pruned = prune.l1_unstructured(nn.Conv1d(2, 3, 4), "bias", amount=0.5)
    assert internals.pruned_leaves(getattr(pruned, slots.pre_hooks)) == ("bias",), (
        "nn.utils.prune.BasePruningMethod._tensor_name: the leaf a pruning hook computes"
    )
    lazy = nn.LazyLinear(2)
    assert isinstance(lazy, internals.LAZY_MODULE) and getattr(lazy, slots.pre_hooks), (
        "nn.modules.lazy.LazyModuleMixin: shapes its parameters in a pre-hook"
    )
    lazy(torch.zeros(1, 3))
    assert type(lazy) is nn.Linear and not getattr(lazy, slots.pre_hooks), "a built lazy layer drops its hook"
    compiled = torch.compile(seq)
    assert internals.compiled_original(compiled) is seq, "torch.compile's OptimizedModule._orig_mod"
    assert internals.compiled_original(seq) is None
    weight = seq[0].weight
    assert internals.storage_users(weight) == 1, "torch._C._storage_Use_Count: a parameter alone"
    view, array = weight[0], weight.detach().numpy()
    assert internals.storage_users(weight) == 3, "torch._C._storage_Use_Count: a view and an array"
    del view, array
    assert internals.storage_users(weight) == 1


def test_paddle_internals():
    needs("paddle")
    import paddle
    from paddle import nn

    from unified_params.backends.paddle import internals

    layer = nn.BatchNorm2D(3, momentum=0.8, epsilon=1e-4)
    layer.register_buffer("scratch", paddle.zeros([1]), persistable=False)
    seq = nn.Sequential(nn.Linear(2, 2), layer)
    slots = internals.SLOTS
    assert list(getattr(seq, slots.children)) == ["0", "1"], "nn.Layer._sub_layers"
    assert list(getattr(seq[0], slots.params)) == ["weight", "bias"], "nn.Layer._parameters"
    assert "scratch" in getattr(layer, slots.buffers), "nn.Layer._buffers"
    assert getattr(layer, slots.transient) == {"scratch"}, "nn.Layer._non_persistable_buffer_names_set"
    assert issubclass(nn.BatchNorm1D, internals.BATCH_NORM), "nn.layer.norm._BatchNormBase"
    for norm in (nn.utils.weight_norm, nn.utils.spectral_norm):
        hooks = getattr(norm(nn.Linear(2, 2)), slots.pre_hooks)
        assert [h.name for h in hooks.values() if isinstance(h, internals.NORM_HOOKS)] == ["weight"], (
            f"nn.Layer._forward_pre_hooks: {norm.__name__}'s hook, naming its leaf"
        )
    for dim, kept in ((1, 1), (-2, 0), (None, -1), (-1, -1)):
        hooked = nn.utils.weight_norm(nn.Linear(2, 3), dim=dim)
        hook = next(iter(getattr(hooked, slots.pre_hooks).values()))
        assert isinstance(hook, internals.LEAF_NORM_HOOKS["weight"]) and hook.dim == kept, (
            "WeightNorm.dim >= -1"
        )
        assert hooked.weight_g.shape == ([] if kept == -1 else [[2, 3][kept]]), "g: a vector along dim"
    assert "weight" in getattr(hooked, slots.transient), "the weight it computes: a transient buffer"
    spectral = nn.utils.spectral_norm(nn.Linear(2, 3))
    hook = next(iter(getattr(spectral, slots.pre_hooks).values()))
    assert isinstance(hook, internals.LEAF_NORM_HOOKS["spectral"]) and hook.dim == 1, "SpectralNorm.dim"
    assert internals.initialized(seq[0].weight), "Tensor._is_initialized"
    with paddle.LazyGuard():
        unset = nn.Linear(2, 3)
    assert not internals.initialized(unset.weight), "Tensor._is_initialized: False under paddle.LazyGuard"
    unset.weight.set_value(np.zeros((2, 3), "float32"))
    assert internals.initialized(unset.weight), "Tensor._is_initialized: True once set"
    assert internals.hyperparameter(layer, "epsilon") == pytest.approx(1e-4), "_epsilon"
    assert internals.hyperparameter(layer, "momentum") == pytest.approx(0.8), "_momentum"
    assert internals.hyperparameter(nn.Conv2D(4, 4, 3, groups=2), "groups") == 2, "_groups"
    assert internals.hyperparameter(nn.GroupNorm(2, 8), "num_groups") == 2, "_num_groups"
    assert internals.hyperparameter(nn.GroupNorm(2, 8, epsilon=1e-4), "epsilon") == pytest.approx(1e-4)
    conv = nn.Conv2D(3, 4, (3, 5), stride=2, padding=[0, 1, 2, 3], dilation=(1, 2), data_format="NHWC")
    assert internals.convolution(conv) == ([3, 5], [2, 2], [1, 2], [0, 1, 2, 3], "zeros", "NHWC"), (
        "Conv*D._kernel_size, _stride, _dilation, _padding, _padding_mode, _data_format"
    )
    assert internals.convolution(nn.Conv2D(3, 4, 3, padding=1, padding_mode="reflect"))[4] == "reflect"
    assert internals.convolution(nn.Conv1DTranspose(3, 4, 3, padding="same"))[3] == "same"
    assert internals.pad_layer(nn.ZeroPad2D([1, 2, 3, 4])) == ([1, 2, 3, 4], "constant", 0.0), "ZeroPad2D"
    assert internals.pad_layer(nn.Pad1D([1, 0], mode="reflect")) == ([1, 0], "reflect", 0.0), "Pad1D._mode"
    assert internals.pad_layer(nn.ReLU()) is None
    pool = nn.AvgPool2D(
        3, padding="SAME", ceil_mode=True, exclusive=False, divisor_override=4, data_format="NHWC"
    )
    assert internals.pooling(pool) == (3, None, "SAME", True, False, 4, "NHWC"), (
        "AvgPool2D.ksize, stride, padding, ceil_mode, exclusive, divisor, data_format"
    )
    assert internals.pooling(nn.MaxPool1D(2, 1, padding=1)) == (2, 1, 1, False, None, None, "NCL"), (
        "MaxPool1D.kernel_size"
    )
    assert internals.pooling(nn.AvgPool1D(2))[4] is True, "AvgPool1D.exclusive"
    formats = {  # each layer that keeps a data format, as it keeps it
        nn.Conv2D(3, 4, 3, data_format="NHWC"): "NHWC", nn.Conv1D(3, 4, 3, data_format="NLC"): "NLC",
        nn.Conv3DTranspose(3, 4, 3, data_format="NDHWC"): "NDHWC", nn.BatchNorm2D(3, data_format="NHWC"): "NHWC",
        nn.MaxPool2D(2, data_format="NHWC"): "NHWC", nn.AvgPool3D(2, data_format="NDHWC"): "NDHWC",
        nn.Conv2D(3, 4, 3): "NCHW", nn.Linear(2, 2): None,
    }  # fmt: skip
    for layer, expected in formats.items():
        assert internals.data_format(layer) == expected, f"{type(layer).__name__}._data_format or data_format"
    assert internals.hyperparameter(nn.GELU(approximate=True), "approximate") is True, "GELU._approximate"
    assert internals.hyperparameter(nn.ELU(alpha=0.5), "alpha") == 0.5, "ELU._alpha"
    given = {  # each activation setting the adapter reads, at a value of its own
        nn.LeakyReLU(0.2): {"negative_slope": 0.2}, nn.CELU(0.4): {"alpha": 0.4},
        nn.SELU(scale=1.5, alpha=2.5): {"scale": 1.5, "alpha": 2.5}, nn.Hardtanh(-2.0, 3.0): {"min": -2.0, "max": 3.0},
        nn.Softshrink(0.7): {"threshold": 0.7}, nn.Softplus(beta=2, threshold=10): {"beta": 2, "threshold": 10},
        nn.Softmax(axis=1): {"axis": 1}, nn.LogSoftmax(axis=2): {"axis": 2},
        nn.LayerNorm([3, 4], epsilon=1e-3): {"normalized_shape": [3, 4], "epsilon": 1e-3},
        nn.GroupNorm(2, 6, data_format="NHWC"): {"num_groups": 2, "num_channels": 6, "data_format": "NHWC"},
        nn.InstanceNorm2D(4, epsilon=1e-4, data_format="NHWC"): {"epsilon": 1e-4, "data_format": "NHWC"},
    }  # fmt: skip
    for layer, values in given.items():
        read = {name: internals.hyperparameter(layer, name) for name in values}
        numbers = {k: v for k, v in values.items() if isinstance(v, float)}
        assert read == {**values, **{k: pytest.approx(v) for k, v in numbers.items()}}, (
            f"{type(layer).__name__}._{'/_'.join(values)}"
        )


def test_flax_internals():
    needs("flax")
    from flax import nnx

    from unified_params.backends.flax import internals

    rngs = nnx.Rngs(0)
    seq = nnx.Sequential(nnx.Linear(2, 3, rngs=rngs), nnx.relu, nnx.BatchNorm(3, rngs=rngs))
    hidden = [k for k in vars(seq.layers[0]) if k.startswith("_")]
    assert hidden and all(k.startswith(internals.BOOKKEEPING_PREFIX) for k in hidden), "_pytree__ bookkeeping"
    assert set(internals.own_attributes(seq.layers[0])) >= {"kernel", "bias"}
    assert internals.LIST_LENGTH in vars(seq.layers) and vars(seq.layers)["0"] is seq.layers[0], "nnx.List"
    assert internals.list_member(seq.layers, "2") is seq.layers[2], "nnx.List members under '0', '1', ..."
    assert internals.list_member(seq.layers, "3") is None
    # A static attribute (nnx.relu at a position) takes a module only marked as data.
    with pytest.raises(ValueError, match="nnx.data"):
        seq.layers[1] = nnx.Linear(3, 3, rngs=rngs)
    internals.put(seq.layers, "1", nnx.Linear(3, 3, rngs=rngs))
    assert isinstance(seq.layers[1], nnx.Linear), "nnx.data"
    bn = seq.layers[2]
    assert set(internals.INFERENCE) <= set(vars(bn)) | {"deterministic"}, "train()/eval() attributes"
    with internals.Modes(seq, training=False):
        assert bn.use_running_average is True
    assert bn.use_running_average is False, "the layer's own mode, given back"
    cell = nnx.SimpleCell(2, 3, rngs=rngs)
    both = nnx.Bidirectional(nnx.RNN(cell), nnx.RNN(cell))
    assert both.merge_fn is internals.CONCATENATE, "flax.nnx.nn.recurrent._concatenate"
    assert internals.CONCATENATE(np.zeros((1, 2)), np.ones((1, 3))).shape == (1, 5)
    kernel = nnx.Linear(2, 3, rngs=rngs).kernel
    assert internals.stored_shape(kernel) == (2, 3) == kernel.shape, "Variable._raw_value"


def _dense(units: int, inputs: int):
    import keras

    layer = keras.layers.Dense(units)
    layer.build((None, inputs))
    return layer


def test_keras_records_the_input_shape_a_layer_was_built_for():
    needs("keras")
    import keras

    from unified_params.backends.keras import internals

    norm = keras.layers.LayerNormalization(axis=[1, 2, 3])
    norm.build((None, 4, 5, 6))
    assert internals.built_input_shape(norm) == (None, 4, 5, 6), "Layer._build_shapes_dict['input_shape']"
    assert internals.built_input_shape(keras.layers.LayerNormalization()) is None  # not built


def test_keras_variable_and_layer_bookkeeping():
    needs("keras")
    import keras

    from unified_params.backends.keras import internals

    layer = _dense(3, 2)
    trained, frozen = internals.own_variables(layer)
    assert [v.name for v in trained] == ["kernel", "bias"] and frozen == [], "_trainable_variables"
    assert [internals.variable_name(v) for v in trained] == ["kernel", "bias"], "Variable._name"
    norm = keras.layers.BatchNormalization()
    norm.build((None, 3))
    assert [v.name for v in internals.own_variables(norm)[1]] == ["moving_mean", "moving_variance"]
    model = keras.Sequential([keras.Input((2,)), layer, _dense(1, 3)])
    assert len(internals.sublayers(model)) == 3, "Sequential._layers holds the InputLayer and the layers"
    assert isinstance(internals.sublayers(model)[0], keras.layers.InputLayer)
    inputs = keras.Input((2,))
    functional = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    assert isinstance(functional, internals.Functional), "keras.src.models.functional.Functional"
    assert len(internals.operations(functional)) == 2, "Functional._operations"


def test_keras_replace_tracked_variable_swaps_by_identity():
    needs("keras")
    import keras

    from unified_params.backends.keras import internals

    first, second = _dense(3, 3), _dense(3, 3)
    model = keras.Sequential([keras.Input((3,)), first, second])
    internals.replace_tracked_variable(second, second.bias, first.bias)  # not the store's first member
    internals.replace_tracked_variable(second, second.kernel, first.kernel)
    assert internals.own_variables(second)[0][0] is first.kernel, "Tracker.config[store][1]"
    assert len(model.trainable_weights) == 2, "Keras' own dedup sees the shared variables once"
    out = keras.ops.convert_to_numpy(model(np.ones((1, 3), "float32")))
    assert out.shape == (1, 3)


def test_keras_replace_in_sequential_and_unbuild():
    needs("keras")
    import keras

    from unified_params.backends.keras import internals

    model = keras.Sequential([_dense(4, 2), _dense(3, 4), _dense(1, 3)])
    model.build((None, 2))
    new = _dense(3, 4)
    internals.replace_in_sequential(model, 1, new)  # pop(rebuild=False), add(rebuild=False), _maybe_rebuild
    assert model.layers[1] is new and len(model.layers) == 3
    assert keras.ops.convert_to_numpy(model(np.ones((2, 2), "float32"))).shape == (2, 1)
    lazy = keras.Sequential([_dense(4, 2), _dense(1, 4)])  # layers built, the container not
    assert hasattr(lazy, "_functional"), "Sequential._functional (the traced graph)"
    internals.unbuild(lazy)  # built = False, _functional = None: built on the first call
    assert not lazy.built
    assert keras.ops.convert_to_numpy(lazy(np.ones((2, 2), "float32"))).shape == (2, 1)


def test_keras_replace_attribute_untracks_the_old_layer():
    needs("keras")
    import keras

    from unified_params.backends.keras import internals

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.first = keras.layers.Dense(3)
            self.second = keras.layers.Dense(3)

        def call(self, x):
            return self.second(self.first(x))

    net = Net()
    net(np.ones((1, 3), "float32"))
    assert set(internals.attributes(net)) >= {"first", "second"}, (
        "a layer's attributes (torch engine: _modules)"
    )
    internals.replace_attribute(net, "second", net.first)  # Tracker.unlock/untrack/lock
    assert net.second is net.first and len(net.trainable_weights) == 2


def test_keras_graph_nodes_record_what_feeds_a_layer():
    """internals.inbound_nodes: the nodes of a layer's calls in a functional graph, each
    with the operation, its parent nodes and the input and output tensors' shapes."""
    needs("keras")
    import keras

    from unified_params.backends.keras import internals

    inputs = keras.Input((4, 4, 3))
    flat = keras.layers.Flatten()
    dense = keras.layers.Dense(2)
    keras.Model(inputs, dense(flat(keras.layers.Conv2D(5, 3)(inputs))))
    (node,) = internals.inbound_nodes(dense)
    assert node.operation is dense
    (parent,) = node.parent_nodes
    assert parent.operation is flat
    assert tuple(parent.input_tensors[0].shape) == (None, 2, 2, 5)
    assert tuple(node.input_tensors[0].shape) == tuple(parent.output_tensors[0].shape) == (None, 20)
    assert internals.inbound_nodes(keras.layers.Dense(2)) == []  # never called in a graph


def test_keras_graph_nodes_record_where_a_layer_s_outputs_go():
    """internals.outbound_nodes: one node per call that takes a layer's outputs, its
    operation the consumer; none for a layer never called in a graph."""
    needs("keras")
    import keras

    from unified_params.backends.keras import internals

    inputs = keras.Input((6, 6, 3))
    conv, norm, add = keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(), keras.layers.Add()
    y = conv(inputs)
    keras.Model(inputs, add([norm(y), y]))
    assert [node.operation for node in internals.outbound_nodes(conv)] == [norm, add]
    assert [node.operation for node in internals.outbound_nodes(norm)] == [add]
    assert internals.outbound_nodes(keras.layers.Dense(2)) == []
