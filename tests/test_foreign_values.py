"""Values handed over as another framework's tensors (`unified_params._core.foreign`).

A paddle model's ``state_dict()`` holds its Linear weights ``(in, out)``; a
Keras Dense's kernel is ``(in, out)`` too. Before, such a tensor given to
``up.load_state_dict`` or ``Param.set`` for a square weight was taken as
canonical, loaded transposed with nothing said (a paddle ``Linear(4, 4)``'s
``state_dict()`` into torch's twin: output difference 1.09). Now a value
whose own framework's layout fits the same shape is refused until the
caller says its layout; a shape that fits one reading only, numpy, torch
and bare jax arrays, and Params are taken as before."""

from __future__ import annotations

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs, snapshot

X = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")


def _twins(n_out: int = 4):
    import paddle
    import torch

    paddle.seed(0)
    torch.manual_seed(1)
    return paddle.nn.Sequential(paddle.nn.Linear(4, n_out)), torch.nn.Sequential(torch.nn.Linear(4, n_out))


def _torch_out(net) -> np.ndarray:
    import torch

    return net(torch.from_numpy(X)).detach().numpy()


def _paddle_out(net) -> np.ndarray:
    import paddle

    return net(paddle.to_tensor(X)).numpy()


@pytest.fixture(autouse=True)
def _frameworks():
    needs("paddle")
    needs("torch")


def test_a_paddle_state_dict_for_a_square_linear_is_refused_and_nothing_is_written():
    p, t = _twins()
    before = snapshot(t)
    with pytest.raises(up.CheckpointError, match="paddle keeps it \\(in, out\\).*layout='canonical'") as err:
        up.load_state_dict(t, p.state_dict())
    assert [(key, r.backends, r.native) for key, r in err.value.report.ambiguous] == [
        ("0.weight", ("paddle",), "(in, out)")
    ]
    assert snapshot(t).keys() == before.keys()
    assert all(np.array_equal(snapshot(t)[k], before[k]) for k in before)


def test_non_strict_loads_what_is_unambiguous_and_reports_the_rest():
    p, t = _twins()
    report = up.load_state_dict(t, p.state_dict(), strict=False)
    assert report.loaded == ["0.bias"] and [k for k, _ in report.ambiguous] == ["0.weight"]
    assert not report.ok


def test_saying_canonical_loads_the_values_as_they_are():
    p, t = _twins()
    up.load_state_dict(t, p.state_dict(), layout="canonical")
    assert np.array_equal(t[0].weight.detach().numpy(), p[0].weight.numpy())  # taken as given


def test_the_ways_to_move_paddle_weights_into_torch_agree_with_paddle():
    p, t = _twins()
    up.load_state_dict(t, up.state_dict(p))  # numpy, canonical: what the refusal points to
    np.testing.assert_allclose(_torch_out(t), _paddle_out(p), rtol=1e-5, atol=1e-6)
    p2, t2 = _twins()
    up.port(p2, t2)
    np.testing.assert_allclose(_torch_out(t2), _paddle_out(p2), rtol=1e-5, atol=1e-6)


def test_a_paddle_state_dict_into_a_paddle_model_points_to_the_native_layout():
    import paddle

    p, _ = _twins()
    paddle.seed(5)
    other = paddle.nn.Sequential(paddle.nn.Linear(4, 4))
    with pytest.raises(up.CheckpointError, match="layout='native' if (they are|it is) in paddle's own"):
        up.load_state_dict(other, p.state_dict())
    up.load_state_dict(other, p.state_dict(), layout="native")
    np.testing.assert_array_equal(_paddle_out(other), _paddle_out(p))


def test_a_shape_that_fits_one_reading_only_is_checked_as_before():
    import paddle

    p, t = _twins(n_out=3)
    with pytest.raises(
        up.CheckpointError,
        match="mismatched '0.weight' expects \\(3, 4\\) got \\(4, 3\\) \\('0.weight' is a paddle tensor in "
        "paddle's own layout, \\(in, out\\)",
    ):
        up.load_state_dict(t, p.state_dict())  # paddle's (in, out): refused by its shape, and said
    canonical = {k: paddle.to_tensor(v) for k, v in up.state_dict(p).items()}  # paddle tensors, (out, in)
    up.load_state_dict(t, canonical)
    np.testing.assert_allclose(_torch_out(t), _paddle_out(p), rtol=1e-5, atol=1e-6)


def test_arrays_and_torch_tensors_are_canonical_whatever_their_shape():
    import torch

    _, t = _twins()
    w = np.arange(16, dtype="float32").reshape(4, 4)
    up.load_state_dict(t, {"0.weight": w, "0.bias": np.zeros(4, "float32")})
    assert np.array_equal(t[0].weight.detach().numpy(), w)
    up.load_state_dict(t, {"0.weight": torch.from_numpy(w.T.copy()), "0.bias": torch.zeros(4)})
    assert np.array_equal(t[0].weight.detach().numpy(), w.T)


def test_param_set_refuses_a_paddle_weight_until_told():
    p, t = _twins()
    weight = up.wrap(t)["0.weight"]
    before = weight.numpy()
    with pytest.raises(up.ShapeError, match="paddle tensor.*up.port from the paddle model"):
        weight.set(p[0].weight)
    with pytest.raises(up.ShapeError, match="paddle tensor"):
        weight[:] = p[0].weight  # the whole value, as set takes it
    assert np.array_equal(weight.numpy(), before)
    weight.set(p[0].weight, layout="canonical")
    assert np.array_equal(weight.numpy(), p[0].weight.numpy())
    weight[0] = p[0].weight[0]  # a part: indexed canonically, as any value
    up.wrap(t)["0.bias"].set(p[0].bias)  # one axis: one layout


def test_param_set_of_a_paddle_model_s_own_weight_points_to_the_native_layout():
    p, _ = _twins()
    weight = up.wrap(p)["0.weight"]
    with pytest.raises(up.ShapeError, match="layout='native'"):
        weight.set(p[0].weight)
    weight.set(p[0].weight * 2, layout="native")
    np.testing.assert_allclose(weight.numpy("native"), p[0].weight.numpy())


def test_a_keras_kernel_is_refused_for_a_square_linear_and_a_fitting_conv():
    needs("keras")
    import keras
    import torch

    dense = keras.layers.Dense(4)
    dense.build((None, 4))
    t = torch.nn.Linear(4, 4)
    with pytest.raises(up.ShapeError, match="keras tensor.*\\(in, out\\)"):
        up.wrap(t)["weight"].set(dense.kernel)
    conv = keras.layers.Conv2D(3, 3)
    conv.build((None, 8, 8, 3))  # kernel (3, 3, 3, 3): (k0, k1, in, out) has the canonical shape too
    tc = torch.nn.Conv2d(3, 3, 3)
    with pytest.raises(up.CheckpointError, match="keras keeps it \\(k0, k1, in, out\\)") as err:
        up.load_state_dict(tc, {"weight": conv.kernel, "bias": conv.bias})
    assert [k for k, _ in err.value.report.ambiguous] == ["weight"]


def test_the_registry_says_whose_values_a_type_holds():
    import paddle

    from unified_params.backends import registry

    assert registry.value_backends(paddle.zeros([2])) == ("paddle",)
    assert registry.value_backends(np.zeros(2)) == ()
    spare = registry.register(
        registry.replace(registry.get("torch"), name="spare", detect_priority=99, value_modules=("numpy",))
    )
    try:
        assert registry.value_backends(np.zeros(2)) == ("spare",)  # the cache follows the registry
    finally:
        registry.unregister(spare.name)
    assert registry.value_backends(np.zeros(2)) == ()


def test_a_native_state_loads_into_its_own_framework_only():
    """``up.state_dict(m, layout="native")`` was a plain dict of numpy arrays,
    so a canonical load took a paddle Linear's (in, out) weight as (out, in)."""
    import paddle

    p, t = _twins()
    native = up.state_dict(p, layout="native")
    assert native.layout == "native" and native.source_backend == "paddle"
    for layout in (None, "canonical"):
        with pytest.raises(up.CheckpointError, match="in paddle's own layout.*only into a paddle model"):
            up.load_state_dict(t, native, layout=layout)
    paddle.seed(7)
    other = paddle.nn.Sequential(paddle.nn.Linear(4, 4))
    with pytest.raises(up.CheckpointError, match="layout='native' or none"):
        up.load_state_dict(other, native, layout="canonical")
    up.load_state_dict(other, native)  # it says its layout itself
    np.testing.assert_array_equal(_paddle_out(other), _paddle_out(p))


def test_a_native_state_of_canonical_layouts_is_canonical():
    import torch

    _, t = _twins()
    native = up.state_dict(t, layout="native")  # torch's layout is the canonical one
    assert native.layout == "canonical"
    p, _ = _twins()
    up.load_state_dict(p, native)
    np.testing.assert_allclose(_paddle_out(p), t(torch.from_numpy(X)).detach().numpy(), rtol=1e-5, atol=1e-6)


def _paddle_file(tmp_path, metadata):
    """A paddle MLP of square Linears and its state written as PaddleNLP does:
    numpy arrays of paddle's layouts under torch's names, ``format`` "np"."""
    import paddle
    from safetensors.numpy import save_file

    paddle.seed(3)
    p = paddle.nn.Sequential(paddle.nn.Linear(4, 4), paddle.nn.ReLU(), paddle.nn.Linear(4, 4))
    path = tmp_path / "model.safetensors"
    save_file({k: v.numpy() for k, v in p.state_dict().items()}, str(path), metadata=metadata)
    return p, path


def test_a_file_of_another_writer_is_refused_where_its_layout_may_differ(tmp_path):
    import torch

    p, path = _paddle_file(tmp_path, {"format": "np"})
    t = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
    before = snapshot(t)
    with pytest.raises(
        up.CheckpointError, match="'0.weight', '2.weight' \\(tensors of a file whose writer is 'np'"
    ):
        up.load(t, path)
    assert all(np.array_equal(snapshot(t)[k], v) for k, v in before.items())
    report = up.load(t, path, strict=False)
    assert sorted(report.loaded) == ["0.bias", "2.bias"]
    assert [r.backends for _, r in report.ambiguous] == [("keras", "paddle", "flax")] * 2
    up.load(t, path, layout="canonical")  # said: taken as it is
    assert np.array_equal(t[0].weight.detach().numpy(), p[0].weight.numpy())


def test_a_file_in_a_framework_s_own_layout_loads_into_that_framework_as_native(tmp_path):
    import paddle

    p, path = _paddle_file(tmp_path, {"format": "np"})
    paddle.seed(9)
    other = paddle.nn.Sequential(paddle.nn.Linear(4, 4), paddle.nn.ReLU(), paddle.nn.Linear(4, 4))
    with pytest.raises(up.CheckpointError, match="layout='native' if (they are|it is) in paddle's own"):
        up.load(other, path)
    up.load(other, path, layout="native")
    np.testing.assert_array_equal(_paddle_out(other), _paddle_out(p))


@pytest.mark.parametrize("metadata", [{"format": "pt"}, None])
def test_a_file_of_torch_or_of_no_named_writer_is_canonical(tmp_path, metadata):
    import paddle
    from safetensors.numpy import save_file

    p, _ = _twins()
    path = tmp_path / "torch.safetensors"
    save_file(dict(up.state_dict(p)), str(path), metadata=metadata)
    paddle.seed(4)
    other = paddle.nn.Sequential(paddle.nn.Linear(4, 4))
    up.load(other, path)
    np.testing.assert_array_equal(_paddle_out(other), _paddle_out(p))


def test_layout_tables_are_read_without_importing_a_framework():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from unified_params.backends import registry\n"
        "tables = {n: registry.declared_leaves(n) for n in registry.names()}\n"
        "assert tables['paddle']['linear']['weight'].axes == ('in', 'out'), tables\n"
        "loaded = [m for m in ('torch', 'paddle', 'keras', 'tensorflow', 'jax', 'flax') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_each_adapter_declares_the_registry_s_tables():
    from unified_params.backends import registry

    for name in ("paddle", "torch"):
        assert registry.get_adapter(name).LEAVES == registry.declared_leaves(name)


def test_a_param_given_to_a_native_load_is_read_in_its_canonical_layout():
    """As ``p.set`` reads a Param: before, a square paddle weight given as a
    Param to ``load_state_dict(layout="native")`` was converted twice and
    loaded transposed (off by 1.33 here)."""
    import paddle

    paddle.seed(0)
    source, target = paddle.nn.Linear(4, 4), paddle.nn.Linear(4, 4)
    given = up.wrap(source).params()
    up.load_state_dict(target, {"weight": given["weight"], "bias": given["bias"]}, layout="native")
    np.testing.assert_array_equal(target.weight.numpy(), source.weight.numpy())


def _paddle_cnn(seed: int):
    import paddle

    paddle.seed(seed)
    net = paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4), paddle.nn.Flatten(), paddle.nn.Linear(144, 144)
    )
    net[1]._mean.set_value(paddle.rand([4]))
    net[1]._variance.set_value(paddle.rand([4]) + 0.5)
    net.eval()
    return net


def test_a_native_load_takes_the_framework_s_own_leaf_names(tmp_path):
    """paddle's state_dict() keys its BatchNorm statistics ``_mean`` and
    ``_variance``: before, a native load of it reported them unexpected."""
    import paddle
    from safetensors.numpy import save_file

    source, target, other = _paddle_cnn(0), _paddle_cnn(1), _paddle_cnn(2)
    assert "1._mean" in source.state_dict()
    report = up.load_state_dict(target, source.state_dict(), layout="native")
    assert "1.running_mean" in report.loaded and report.ok
    x = paddle.rand([2, 3, 8, 8])
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())
    path = tmp_path / "paddle.safetensors"
    save_file({k: v.numpy() for k, v in source.state_dict().items()}, str(path), metadata={"format": "np"})
    up.load(other, path, layout="native")
    np.testing.assert_array_equal(other(x).numpy(), source(x).numpy())
