"""Weight norms in their canonical form, on torch (both forms) and paddle;
spectral norms between torch's two forms.

A weight norm computes a layer's weight on each call as ``g * v / ||v||``.
Torch keeps ``g`` with the weight's other axes of size one (``(out, 1, 1)``),
paddle as a vector (``(out,)``), and paddle keeps a Linear's ``v`` as its
weight, ``(in, out)``. Before, paddle's were leaves of its own layout: a port
or load from torch was refused even where the norms agree, paddle listed the
weight it computes as a buffer that a write could not change, and a paddle
``state_dict()`` given to a torch model loaded a square ``weight_v``
transposed with nothing said. Now both are laid out as torch's, so they
list, save, load and port alike; norms that keep other axes of the weight
show other shapes, and are refused by name.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs

X = np.random.default_rng(0).standard_normal((2, 3, 12)).astype("float32")
#: Per torch dim of a Linear's weight norm, paddle's that keeps the same axis
#: (paddle's Linear weight is (in, out)).
PADDLE_LINEAR_DIM = {0: 1, 1: 0, None: None}


@pytest.fixture(autouse=True)
def _frameworks():
    needs("torch")
    needs("paddle")
    warnings.filterwarnings("ignore", "`torch.nn.utils.weight_norm` is deprecated", FutureWarning)


def torch_net(form: str, dim: int | None = 0, conv_dim: int | None = 0):
    """Conv1d(3, 5, 3), ReLU, Flatten, Linear(50, 4), both weight-normed in ``form``."""
    import torch

    norm = torch.nn.utils.weight_norm if form == "hook" else torch.nn.utils.parametrizations.weight_norm
    torch.manual_seed(0)
    return torch.nn.Sequential(
        norm(torch.nn.Conv1d(3, 5, 3), dim=conv_dim),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        norm(torch.nn.Linear(50, 4), dim=dim),
    )


def paddle_net(dim: int | None = 1, conv_dim: int | None = 0):
    import paddle

    norm = paddle.nn.utils.weight_norm
    paddle.seed(0)
    return paddle.nn.Sequential(
        norm(paddle.nn.Conv1D(3, 5, 3), dim=conv_dim),
        paddle.nn.ReLU(),
        paddle.nn.Flatten(),
        norm(paddle.nn.Linear(50, 4), dim=dim),
    )


def outputs(net) -> np.ndarray:
    return np.asarray(up.wrap(net)(X))


def seeded(net):
    """Every canonical value set to its own seeded draw, away from the initial ones."""
    for k, p in enumerate(up.wrap(net).params().values()):
        p.set(np.random.default_rng(k).uniform(0.5, 1.5, p.shape).astype("float32"))
    return net


def native_values(net) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in up.state_dict(net, layout="native").items()}


@pytest.mark.parametrize("dim", [0, 1, None])
def test_paddle_lists_a_weight_norm_as_torch_does(dim):
    """Before, paddle's g kept its own shape ((4,), (50,), ()) under own_layout,
    after v (paddle registers v first), and the weight it computes was listed
    as a buffer besides."""
    mine = up.wrap(torch_net("hook", dim=dim)).params()
    theirs = up.wrap(paddle_net(PADDLE_LINEAR_DIM[dim])).params()
    assert [(k, p.shape) for k, p in theirs.items()] == [(k, p.shape) for k, p in mine.items()]  # in order
    assert not any(p.own_layout for p in theirs.values())
    assert "3.weight" not in theirs and "0.weight" not in theirs
    assert theirs["3.weight_v"].native_shape == (50, 4) and theirs["3.weight_v"].shape == (4, 50)
    assert theirs["0.weight_g"].native_shape == (5,) and theirs["0.weight_g"].shape == (5, 1, 1)


def test_a_canonical_magnitude_is_written_in_paddles_own_shape():
    net = paddle_net()
    g = up.wrap(net)["3.weight_g"]
    g.set(np.arange(4, dtype="float32").reshape(4, 1))
    np.testing.assert_array_equal(net[3].weight_g.numpy(), [0, 1, 2, 3])
    v = np.arange(200, dtype="float32").reshape(4, 50)
    up.wrap(net)["3.weight_v"].set(v)
    np.testing.assert_array_equal(net[3].weight_v.numpy(), v.T)


@pytest.mark.parametrize(
    ("source", "destination"),
    [
        ("hook", "paddle"),
        ("parametrization", "paddle"),
        ("paddle", "hook"),
        ("paddle", "parametrization"),
        ("hook", "parametrization"),
        ("parametrization", "hook"),
    ],
)
def test_a_port_between_weight_norms_gives_the_same_outputs(source, destination):
    """Before: refused between frameworks (paddle's g and v of its own
    layout), and between torch's two forms (a parametrization's variables were
    a layer of their own, 'parametrizations.weight')."""
    make = {"hook": lambda: torch_net("hook"), "parametrization": lambda: torch_net("parametrization")}
    make["paddle"] = paddle_net
    src, dst = seeded(make[source]()), make[destination]()
    before = outputs(dst)
    report = up.port(src, dst, check_input=X)
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-5
    assert np.abs(outputs(dst) - before).max() > 0.1  # the values moved, and they matter
    np.testing.assert_allclose(outputs(dst), outputs(src), rtol=1e-5, atol=1e-5)
    assert [pair[:2] for pair in report.pairs] == [("0", "0"), ("3", "3")]


def test_norms_over_other_axes_are_refused_by_their_shapes_before_a_write():
    """Paddle's default dim=0 norms a Linear's inputs (its weight is (in, out));
    torch's dim=0, its outputs."""
    src, dst = seeded(torch_net("hook", dim=0)), paddle_net(dim=0)
    before = native_values(dst)
    with pytest.raises(up.PortError) as err:
        up.port(src, dst)
    said = str(err.value)
    assert "weight_g is (4, 1) in the source, (1, 50) in the destination" in said
    assert "Both compute 'weight' by a weight norm, over other axes" in said
    assert "keeps axis 0, the destination's (1, 50) axis 1" in said
    after = native_values(dst)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    report = up.port(src, paddle_net(dim=1), check_input=X)  # the same axis as torch's dim=0
    assert report.max_abs_diff < 1e-5


def test_a_torch_file_loads_into_paddles_twin_and_back(tmp_path):
    """Before: the load was refused (own layout on one side only)."""
    src = seeded(torch_net("hook", dim=None, conv_dim=2))
    up.save(src, tmp_path / "t.safetensors")
    dst = paddle_net(dim=None, conv_dim=2)
    assert up.load(dst, tmp_path / "t.safetensors").ok
    np.testing.assert_allclose(outputs(dst), outputs(src), rtol=1e-5, atol=1e-5)
    back = torch_net("hook", dim=None, conv_dim=2)
    assert up.load_state_dict(back, up.state_dict(dst)).ok
    np.testing.assert_allclose(outputs(back), outputs(src), rtol=1e-5, atol=1e-5)


def test_a_paddle_state_dict_given_to_torch_is_not_read_as_canonical():
    """A square Linear's weight_v of paddle's own (in, out) fits torch's (out, in):
    before, it loaded transposed with nothing said."""
    import paddle
    import torch

    t = torch.nn.utils.weight_norm(torch.nn.Linear(4, 4), dim=None)
    p = paddle.nn.utils.weight_norm(paddle.nn.Linear(4, 4), dim=None)
    before = native_values(t)
    with pytest.raises(
        up.CheckpointError, match="'weight_v' \\(a paddle tensor: paddle keeps it \\(in, out\\)"
    ):
        up.load_state_dict(t, p.state_dict())
    after = native_values(t)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_the_weight_a_norm_computes_is_named_where_a_path_asks_for_it():
    for net, magnitude in ((paddle_net(), "'weight_g'"), (torch_net("parametrization"), "'parametrizations")):
        with pytest.raises(up.PathError, match="It computes 'weight' on each call by a weight norm") as err:
            up.wrap(net)["3.weight"]
        assert f"from {magnitude}" in str(err.value)


def test_a_spectral_norm_still_pairs_with_no_weight_norm():
    import paddle
    import torch

    src = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3))
    dst = paddle.nn.utils.weight_norm(paddle.nn.Linear(4, 3), dim=1)
    with pytest.raises(
        up.PortError, match="a weight norm pairs only with a weight norm, a spectral norm with"
    ):
        up.port(src, dst)


def test_torch_s_two_forms_of_a_spectral_norm_port_into_each_other():
    """Before, the newer form's variables were a layer of their own
    ('parametrizations.weight'), and the port was refused."""
    import torch
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    old = torch.nn.Sequential(torch.nn.utils.spectral_norm(torch.nn.Conv1d(3, 5, 3)), torch.nn.Flatten(),
                              torch.nn.utils.spectral_norm(torch.nn.Linear(50, 4))).eval()  # fmt: skip
    new = torch.nn.Sequential(spectral_norm(torch.nn.Conv1d(3, 5, 3)), torch.nn.Flatten(),
                              spectral_norm(torch.nn.Linear(50, 4))).eval()  # fmt: skip
    report = up.port(old, new, check_input=X)
    assert report.max_abs_diff == 0
    assert "0.parametrizations.weight.0._u" in report.load.loaded
    assert report.pairs == [("0", "0", "conv1d"), ("2", "2", "linear")]


def test_spectral_norms_that_keep_other_axes_do_not_pair_though_their_shapes_do():
    """A square layer's u and v have one shape whichever axis the norm keeps:
    paddle's dim=0 keeps a Linear's inputs (its weight is (in, out)), torch's
    dim=0 the outputs."""
    import paddle
    import torch

    src = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 4))
    for dst in (paddle.nn.utils.spectral_norm(paddle.nn.Linear(4, 4), dim=0),
                torch.nn.utils.spectral_norm(torch.nn.Linear(4, 4), dim=1)):  # fmt: skip
        with pytest.raises(up.PortError) as err:
            up.port(src, dst)
        said = str(err.value)
        assert "norms a spectral norm of 'weight' keeping axis 0 in the source, a spectral norm of " in said
        assert "'weight' keeping axis 1 in the destination" in said


def test_a_vocoder_style_generator_ports_with_its_transposed_convolution():
    """HiFi-GAN's shape: every convolution weight-normed (torch's newer form),
    an upsampling ConvTranspose1d (weight (in, out, k), normed per input
    channel by default on both sides), a dilated residual block. Before: refused."""
    import paddle
    import torch
    from torch.nn.utils.parametrizations import weight_norm

    tf, pf = torch.nn.functional, paddle.nn.functional

    class TorchGenerator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pre = weight_norm(torch.nn.Conv1d(8, 16, 7, padding=3))
            self.up = weight_norm(torch.nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1))
            self.res = weight_norm(torch.nn.Conv1d(8, 8, 3, padding=3, dilation=3))
            self.post = weight_norm(torch.nn.Conv1d(8, 1, 7, padding=3))

        def forward(self, x):
            x = self.up(tf.leaky_relu(self.pre(x), 0.1))
            x = x + self.res(tf.leaky_relu(x, 0.1))
            return torch.tanh(self.post(tf.leaky_relu(x, 0.1)))

    class PaddleGenerator(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            norm = paddle.nn.utils.weight_norm
            self.pre = norm(paddle.nn.Conv1D(8, 16, 7, padding=3))
            self.up = norm(paddle.nn.Conv1DTranspose(16, 8, 4, stride=2, padding=1))
            self.res = norm(paddle.nn.Conv1D(8, 8, 3, padding=3, dilation=3))
            self.post = norm(paddle.nn.Conv1D(8, 1, 7, padding=3))

        def forward(self, x):
            x = self.up(pf.leaky_relu(self.pre(x), 0.1))
            x = x + self.res(pf.leaky_relu(x, 0.1))
            return paddle.tanh(self.post(pf.leaky_relu(x, 0.1)))

    source, destination = TorchGenerator(), PaddleGenerator()
    assert up.wrap(destination)["up.weight_g"].shape == (16, 1, 1)  # per input channel, as torch's
    x = np.random.default_rng(1).standard_normal((2, 8, 20)).astype("float32")
    report = up.port(source, destination, check_input=x)
    assert report.max_abs_diff < 1e-5
    assert [kind for *_, kind in report.pairs] == ["conv1d", "conv_transpose1d", "conv1d", "conv1d"]
    assert "up.weight_g: paddle axes (0,) of (16,) as (16, 1, 1)" in " ".join(report.conversions)


def test_other_hooks_before_a_call_are_no_norms():
    """FSDP2 registers plain functions as a module's pre-hooks (a distributed
    run found a read of their ``name`` failing)."""
    import torch

    layer = torch.nn.utils.weight_norm(torch.nn.Linear(4, 3))
    layer.register_forward_pre_hook(lambda module, args: None)
    assert [n.make for n in up.wrap(layer).adapter.leaf_norms(layer)] == ["weight"]
    assert list(up.wrap(layer).params()) == ["bias", "weight_g", "weight_v"]


def test_a_pruned_layer_is_refused_with_the_call_that_makes_its_pruning_permanent():
    """``torch.nn.utils.prune`` computes ``weight`` from ``weight_orig`` and a
    mask on each call: a port into a layer without a mask says so and names
    ``prune.remove`` (before, it listed the leaves that differ, nothing more);
    after that call the port gives the pruned outputs."""
    import torch
    from torch.nn.utils import prune

    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    prune.l1_unstructured(source[0], "weight", amount=0.5)
    prune.random_unstructured(source[0], "weight", amount=0.2)  # two masks: one container hook
    dst = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    with pytest.raises(up.PortError, match=r"computes 'weight' .*pruning mask.*prune\.remove"):
        up.port(source, dst)
    prune.remove(source[0], "weight")
    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    assert up.port(source, dst, check_input=x).max_abs_diff == 0


def test_a_paddle_spectral_state_dict_given_to_torch_is_not_read_as_canonical():
    """A square Linear's weight_orig of paddle's own (in, out) fits torch's (out, in):
    before, it loaded transposed with nothing said (outputs off by 32 here)."""
    import paddle
    import torch

    t = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 4)).eval()
    p = paddle.nn.utils.spectral_norm(paddle.nn.Linear(4, 4))
    before = native_values(t)
    with pytest.raises(
        up.CheckpointError, match="'weight_orig' \\(a paddle tensor: paddle keeps it \\(in, out\\)"
    ):
        up.load_state_dict(t, p.state_dict())
    after = native_values(t)
    assert all(np.array_equal(before[k], after[k]) for k in before)


# -- spectral norms between torch and paddle: a port reads the axis on both sides --


def _spectral_pair(torch_form: str, dim: int = 0):
    """Conv2d(3, 4, 3), Flatten, Linear(16, 4) (square: its u and v alike in
    shape whichever axis), each spectral-normed keeping the canonical axis
    ``dim``; torch's in ``torch_form``, and paddle's twin."""
    import paddle
    import torch
    from torch.nn.utils.parametrizations import spectral_norm as newer

    norm = torch.nn.utils.spectral_norm if torch_form == "hook" else newer
    torch.manual_seed(0)
    t = torch.nn.Sequential(norm(torch.nn.Conv2d(3, 4, 3), dim=dim), torch.nn.Flatten(),
                            norm(torch.nn.Linear(16, 16), dim=dim))  # fmt: skip
    for _ in range(3):  # power iterations in training: u and v no longer their first draws
        t(torch.randn(2, 3, 4, 4))
    t.eval()
    spectral = paddle.nn.utils.spectral_norm
    paddle.seed(1)
    p = paddle.nn.Sequential(
        spectral(paddle.nn.Conv2D(3, 4, 3), dim=dim),
        paddle.nn.Flatten(),
        spectral(paddle.nn.Linear(16, 16), dim=1 - dim),
    )  # (in, out): 1 - dim keeps the same
    p.eval()
    return t, p


def _outputs(t, p, x):
    import paddle
    import torch

    with torch.no_grad():
        mine = t(torch.from_numpy(x)).numpy()
    return mine, p(paddle.to_tensor(x)).numpy()


@pytest.mark.parametrize("torch_form", ["hook", "parametrization"])
@pytest.mark.parametrize("dim", [0, 1])
def test_a_spectral_norm_ports_from_torch_to_paddle_and_back(torch_form, dim):
    """Before: refused ('its vectors tell no axis in a square layer, so they
    move only between models of one framework'), whichever axis both kept."""
    t, p = _spectral_pair(torch_form, dim)
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 4)).astype("float32")
    report = up.port(t, p)  # no check input: the values alone must be right
    mine, theirs = _outputs(t, p, x)
    assert np.abs(mine - theirs).max() < 1e-5
    assert report.pairs == [("0", "0", "conv2d"), ("2", "2", "linear")]
    orig = "2.weight_orig" if torch_form == "hook" else "2.parametrizations.weight.original"
    assert report.conversions == [f"{orig} -> 2.weight_orig: paddle axes (1, 0)"]
    native = up.state_dict(p, layout="native")
    np.testing.assert_array_equal(native["2.weight_orig"], t.state_dict()[orig].numpy().T)
    u = "2.weight_u" if torch_form == "hook" else "2.parametrizations.weight.0._u"
    np.testing.assert_array_equal(native["2.weight_u"], t.state_dict()[u].numpy())
    back = _spectral_pair(torch_form, dim)[0]
    assert up.port(p, back, check_input=x).max_abs_diff < 1e-5  # and back, checked
    np.testing.assert_array_equal(back.state_dict()[orig].numpy(), t.state_dict()[orig].numpy())


def test_spectral_norms_keeping_other_axes_of_a_square_layer_are_still_refused():
    """Moved in their common form, u and v of a square Linear still have one
    shape whichever axis: the axes themselves are compared."""
    t, _ = _spectral_pair("hook", 0)
    _, p = _spectral_pair("hook", 1)
    with pytest.raises(
        up.PortError, match="keeping axis 0 in the source, a spectral norm of 'weight' keeping"
    ):
        up.port(t, p, mapping={"2": "2"}, skip=["0"], keep=["0"])


def test_a_spectral_norm_s_v_follows_the_order_each_framework_flattens_its_other_axes_in():
    """The norm's matrix is its weight with the kept axis first and the others
    flattened in native order: a kernel laid out (k0, k1, in, out), normed over
    its outputs, flattens (k0, k1, in) where the canonical (out, in, k0, k1)
    flattens (in, k0, k1). Moved in the common form, u . (W v) is the same."""
    from unified_params._core import leaf_norms
    from unified_params._core.layouts import Leaf

    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((3, 2, 5, 4))  # (k0, k1, in, out)
    u, v = rng.standard_normal(4), rng.standard_normal(3 * 2 * 5)
    norm = leaf_norms.of_hook("spectral", "weight", 3)
    form = leaf_norms.spectral_form(norm, "conv2d", Leaf("weight", ("k0", "k1", "in", "out")), kernel.shape)
    assert form is not None
    native_matrix = np.moveaxis(kernel, 3, 0).reshape(4, -1)
    common = form.to_common("weight_orig", kernel)
    assert common.shape == (4, 5, 3, 2) == form.shape("weight_orig")
    common_v = form.to_common("weight_v", v)
    assert u @ native_matrix @ v == pytest.approx(u @ common.reshape(4, -1) @ common_v)
    assert not np.array_equal(common_v, v)  # reordered, not copied
    np.testing.assert_array_equal(form.to_native("weight_v", common_v), v)
    np.testing.assert_array_equal(form.to_native("weight_orig", common), kernel)
    mirrored = Leaf("weight", ("k0", "in", "out"), mirrored=True)
    assert leaf_norms.spectral_form(norm, "conv_transpose1d", mirrored, (3, 5, 4)) is None
