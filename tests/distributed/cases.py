"""The distributed cases: each runs on every rank of a two-process gloo group.

A case asserts on its own rank; `launch.py` records each rank's outcome. Every
sharded model here has an unsharded twin built from the same seed, the
reference each sharded answer must equal (bitwise where values are copied or
drawn, not computed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import Replicate, Shard, distribute_tensor

import unified_params as up
from tests.memory import traced

CASES: dict[str, Callable[[Context], None]] = {}


@dataclass(frozen=True)
class Context:
    rank: int
    world: int
    folder: Path  # shared by the ranks, fresh for each case


def case(fn: Callable[[Context], None]) -> Callable[[Context], None]:
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


def mlp() -> nn.Module:
    """Uneven shards (5 rows over 2 ranks), a weight with fewer rows than ranks,
    a batch norm (its buffers stay whole), a convolution-free MLP FSDP2 shards."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Linear(6, 1))


def sharded(model: nn.Module) -> nn.Module:
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for layer in model:
        if any(True for _ in layer.parameters()):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def placed(placements: list, shape: tuple[int, int] = (5, 7)) -> tuple[nn.Module, nn.Module]:
    """A Linear whose weight is a DTensor with ``placements``, and its whole twin."""
    torch.manual_seed(1)
    whole = nn.Linear(shape[1], shape[0])
    twin = nn.Linear(shape[1], shape[0])
    twin.load_state_dict(whole.state_dict())
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    twin.weight = nn.Parameter(distribute_tensor(twin.weight.detach(), mesh, placements))
    return whole, twin


PLACEMENTS = {"Shard(0)": [Shard(0)], "Shard(1)": [Shard(1)], "Replicate()": [Replicate()]}


@case
def case_global_shapes_and_local_blocks(ctx: Context) -> None:
    whole, model = up.wrap(mlp()), up.wrap(sharded(mlp()))
    assert [p.shape for p in model.params().values()] == [p.shape for p in whole.params().values()]
    w = model["0.weight"]
    assert w.placements == (Shard(0),)
    assert w.local_shape == ((3, 4) if ctx.rank == 0 else (2, 4))
    assert model["4.weight"].local_shape == ((1, 6) if ctx.rank == 0 else (0, 6))
    assert np.array_equal(
        w.local(), whole["0.weight"].numpy()[(slice(0, 3) if ctx.rank == 0 else slice(3, 5))]
    )
    assert model["3.running_mean"].placements is None  # a buffer FSDP2 leaves whole
    assert model.count() == whole.count()


@case
def case_torch_internals_still_mean_what_is_used(ctx: Context) -> None:
    """`unified_params/backends/torch/internals.py`, checked on real DTensors (torch 2.13)."""
    from torch.distributed.tensor import DTensor

    from unified_params.backends.torch import internals

    assert internals.dtensor_type() is DTensor, "torch.distributed.tensor.DTensor"
    _, model = placed([Shard(1)])
    offsets, sizes = internals.local_chunk(model.weight)
    assert sizes == tuple(model.weight.to_local().shape), "DTensor.__create_chunk_list__ sizes"
    assert offsets == (0, 4 * ctx.rank), "DTensor.__create_chunk_list__ offsets (torch.chunk: 4 + 3 columns)"


@case
def case_gathered_values_state_and_forward(ctx: Context) -> None:
    whole, model = up.wrap(mlp()), up.wrap(sharded(mlp()))
    for path, p in whole.params().items():
        assert np.array_equal(model[path].numpy(), p.numpy()), path
    ours, theirs = up.state_dict(model), up.state_dict(whole)
    assert list(ours) == list(theirs) and all(np.array_equal(ours[k], theirs[k]) for k in ours)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x), whole(x), rtol=1e-6, atol=1e-6)


@case
def case_gradients_gathered(ctx: Context) -> None:
    whole_native, native = mlp(), sharded(mlp())
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32))
    for m in (whole_native, native):
        m(x).sum().backward()
    whole, model = up.wrap(whole_native), up.wrap(native)
    for path, p in whole.params().items():
        if p.kind == "param":
            np.testing.assert_allclose(model[path].grad, p.grad, rtol=1e-5, atol=1e-6, err_msg=path)
    x2 = x.numpy()[:4]  # the library's own forward and backward pass, on both
    ours, theirs = up.gradients(native, x2), up.gradients(whole_native, x2)
    assert list(ours) == list(theirs)
    for path in theirs:
        np.testing.assert_allclose(ours[path], theirs[path], rtol=1e-5, atol=1e-6, err_msg=path)


@case
def case_whole_writes_reach_every_placement(ctx: Context) -> None:
    for name, placements in PLACEMENTS.items():
        whole, model = (up.wrap(m) for m in placed(placements))
        value = np.arange(35, dtype=np.float32).reshape(5, 7)
        model["weight"].set(value)
        whole["weight"].set(value)
        assert np.array_equal(model["weight"].numpy(), value), name
        assert np.array_equal(model["weight"].local(), value[_box(model["weight"])]), name


@case
def case_slice_writes_only_touch_owning_ranks(ctx: Context) -> None:
    indexes = [(0, 0), (4, 6), (slice(1, 4), 2), (slice(None, None, -2), slice(1, 6, 2)), (-1,), (..., 3)]
    for name, placements in PLACEMENTS.items():
        whole, model = (up.wrap(m) for m in placed(placements))
        for k, index in enumerate(indexes):
            before = model["weight"].local()
            value = np.float32(100 + k)
            model["weight"][index] = value
            whole["weight"][index] = value
            assert np.array_equal(model["weight"].numpy(), whole["weight"].numpy()), (name, index)
            expected = whole["weight"].numpy()[_box(model["weight"])]
            assert np.array_equal(model["weight"].local(), expected), (name, index)
            if not np.array_equal(before, expected):  # the write reached this rank's block
                assert _touches(index, model["weight"]), (name, index)
        model["weight"][1:3] += 1  # read (gathered), modify, write blocks
        whole["weight"][1:3] += 1
        assert np.array_equal(model["weight"].numpy(), whole["weight"].numpy()), name


@case
def case_index_arrays_write_through_a_gather(ctx: Context) -> None:
    whole, model = (up.wrap(m) for m in placed([Shard(0)]))
    model["weight"][[0, 3]] = 1.0  # not a box: the value is gathered, changed, and written back
    whole["weight"][[0, 3]] = 1.0
    model["weight"][model["weight"].numpy() > 0.2] = 0.5
    whole["weight"][whole["weight"].numpy() > 0.2] = 0.5
    assert np.array_equal(model["weight"].numpy(), whole["weight"].numpy())
    assert np.array_equal(model["weight"].local(), whole["weight"].numpy()[_box(model["weight"])])


@case
def case_seeded_init_is_bitwise_the_unsharded_one(ctx: Context) -> None:
    rules = {up.where(kind="linear", name="weight"): up.init.XavierNormal(), "*": up.init.Uniform(-0.1, 0.1)}
    whole, model = up.wrap(mlp()), up.wrap(sharded(mlp()))
    up.initialize(whole, rules, seed=7)
    up.initialize(model, rules, seed=7)
    for path, p in whole.params().items():
        assert np.array_equal(model[path].numpy(), p.numpy()), path
    # The blocks written are the ones FSDP computes with: the forward pass agrees.
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x), whole(x), rtol=1e-6, atol=1e-6)
    # Streams chunked by 2**20 elements: blocks cut across chunks on both axes;
    # an orthogonal matrix is drawn whole on each rank and cut.
    for name, placements in PLACEMENTS.items():
        for init in (up.init.TruncatedNormal(0.0, 0.02), up.init.Orthogonal()):
            whole_big, big = (up.wrap(m) for m in placed(placements, shape=(1100, 1000)))
            up.initialize(whole_big, init, where="weight", seed=3)
            up.initialize(big, init, where="weight", seed=3)
            assert np.array_equal(big["weight"].numpy(), whole_big["weight"].numpy()), (name, init)


@case
def case_init_without_seed_agrees_across_replicas(ctx: Context) -> None:
    _, model = (up.wrap(m) for m in placed([Replicate()]))
    up.initialize(model, up.init.Normal())
    mine = model["weight"].local()
    both = [None, None]
    dist.all_gather_object(both, mine)
    assert np.array_equal(both[0], both[1])


@case
def case_save_from_sharded_equals_save_from_unsharded(ctx: Context) -> None:
    whole, model = up.wrap(mlp()), up.wrap(sharded(mlp()))
    ours = ctx.folder / "sharded.safetensors"
    written = up.save(model, ours)
    assert written == [ours] and ours.exists()
    if ctx.rank == 0:
        up.save(whole, ctx.folder / "whole.safetensors")
    dist.barrier()
    assert ours.read_bytes() == (ctx.folder / "whole.safetensors").read_bytes()
    # Shards and an index: the same split, and each shard the same tensors, byte for byte
    # (the files differ only in the save's checkpoint id).
    parts = up.save(model, ctx.folder / "split.safetensors", max_shard_size=200)
    if ctx.rank == 0:
        up.save(whole, ctx.folder / "split-whole.safetensors", max_shard_size=200)
    dist.barrier()
    from safetensors.numpy import load_file

    theirs = sorted((ctx.folder).glob("split-whole-*.safetensors"))
    assert len(parts) - 1 == len(theirs) > 2
    for mine, other in zip(parts[:-1], theirs, strict=True):
        a, b = load_file(mine), load_file(other)
        assert list(a) == list(b) and all(a[k].tobytes() == b[k].tobytes() for k in a), mine.name
    reference = up.state_dict(whole)
    reloaded = up.wrap(mlp())
    up.initialize(reloaded, up.init.Zeros())
    up.load(reloaded, ctx.folder / "split.safetensors")
    got = up.state_dict(reloaded)
    assert all(np.array_equal(got[k], reference[k]) for k in reference)
    # Memory: a rank holds one block at a time, never a whole 4 MiB weight.
    _, big = (up.wrap(m) for m in placed([Shard(0)], shape=(1024, 1024)))
    peak = traced(lambda: up.save(big, ctx.folder / "big.safetensors")).peak
    assert peak < 2 * 2**20 + (1 << 19), peak  # the 2 MiB block, not the 4 MiB weight


@case
def case_save_places_shard1_and_replicated_blocks(ctx: Context) -> None:
    for name, placements in PLACEMENTS.items():
        whole, model = (up.wrap(m) for m in placed(placements))
        path = ctx.folder / f"{name}.safetensors"
        up.save(model, path)
        if ctx.rank == 0:
            up.save(whole, ctx.folder / "whole.safetensors")
        dist.barrier()
        assert path.read_bytes() == (ctx.folder / "whole.safetensors").read_bytes(), name
        dist.barrier()


@case
def case_load_into_sharded_reads_only_its_blocks(ctx: Context) -> None:
    source = up.wrap(mlp())
    up.initialize(source, up.init.Normal(), seed=11)
    file = ctx.folder / "full.safetensors"
    if ctx.rank == 0:
        up.save(source, file)
    dist.barrier()
    model = up.wrap(sharded(mlp()))
    report = up.load(model, file)
    assert report.ok and sorted(report.loaded) == sorted(up.state_dict(source))
    for path, p in source.params().items():
        assert np.array_equal(model[path].numpy(), p.numpy()), path
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x), source(x), rtol=1e-6, atol=1e-6)  # FSDP computes with them
    for name, placements in PLACEMENTS.items():  # a 4 MB weight: memory read is this rank's block
        whole, big = (up.wrap(m) for m in placed(placements, shape=(1024, 1024)))
        up.initialize(whole, up.init.Normal(), seed=5)
        big_file = ctx.folder / f"big-{name}.safetensors"
        if ctx.rank == 0:
            up.save(whole, big_file)
        dist.barrier()
        peak = traced(lambda b=big, f=big_file: up.load(b, f)).peak
        block = int(np.prod(big["weight"].local_shape)) * 4
        assert peak < block + (1 << 20), (name, peak, block)  # the block, and not the whole 4 MiB
        assert np.array_equal(big["weight"].numpy(), whole["weight"].numpy()), name


@case
def case_load_state_dict_and_port_into_sharded(ctx: Context) -> None:
    source = up.wrap(mlp())
    up.initialize(source, up.init.Normal(), seed=12)
    model = up.wrap(sharded(mlp()))
    up.load_state_dict(model, up.state_dict(source))
    assert all(np.array_equal(model[k].numpy(), p.numpy()) for k, p in source.params().items())
    up.initialize(source, up.init.Normal(), seed=13)
    up.port(source, model)
    back = up.wrap(mlp())
    up.port(model, back)  # from sharded: each tensor gathered
    assert all(np.array_equal(back[k].numpy(), p.numpy()) for k, p in source.params().items())


@case
def case_dcp_and_safetensors_convert_both_ways(ctx: Context) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    source = mlp()
    up.initialize(up.wrap(source), up.init.Normal(), seed=21)
    native = sharded(mlp())
    set_model_state_dict(native, source.state_dict(), options=_full_options())
    folder = ctx.folder / "dcp"
    dcp.save(get_model_state_dict(native), checkpoint_id=str(folder))
    converted = ctx.folder / "from-dcp.safetensors"
    if ctx.rank == 0:
        up.convert(folder, converted)
        up.save(up.wrap(source), ctx.folder / "whole.safetensors")
    dist.barrier()
    theirs = up.wrap(mlp())
    up.load(theirs, converted)
    assert all(np.array_equal(theirs[k].numpy(), v.detach().numpy()) for k, v in source.state_dict().items())
    back = ctx.folder / "dcp-again"
    if ctx.rank == 0:
        up.convert(ctx.folder / "whole.safetensors", back)
    dist.barrier()
    fresh = sharded(mlp())
    state = get_model_state_dict(fresh)
    dcp.load(state, checkpoint_id=str(back))
    set_model_state_dict(fresh, state)
    gathered = up.state_dict(up.wrap(fresh))
    assert all(np.array_equal(gathered[k], v.detach().numpy()) for k, v in source.state_dict().items())


def _full_options():  # a whole state dict, loaded into a sharded model
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True)


def _box(param: up.Param) -> tuple[slice, ...]:
    sharding = param.sharding()
    return tuple(slice(None) for _ in param.shape) if sharding is None else sharding.box


def _touches(index: tuple, param: up.Param) -> bool:
    probe = np.zeros(param.shape, dtype=bool)
    probe[index] = True
    return bool(probe[_box(param)].any())


@case
def case_a_distributed_data_parallel_model_keeps_its_wrapper_and_its_averaged_gradients(ctx: Context) -> None:
    """DistributedDataParallel is listed as torch lists it, its module behind
    ``module`` (unlike torch.compile's wrapper and DataParallel, it is not
    looked through): its backward averages the ranks' gradients, and
    ``up.gradients`` gives those, as DDP's own backward leaves them. The module
    inside saves and loads as the plain model; the whole, behind ``module.``,
    is refused by the plain model, saying where its keys are."""
    from torch.nn.parallel import DistributedDataParallel

    plain = mlp()
    model = DistributedDataParallel(mlp())
    assert list(up.wrap(model).params()) == [f"module.{k}" for k in up.wrap(plain).params()]
    up.initialize(model, up.init.Normal(), seed=21)
    up.save(up.wrap(model)["module"], ctx.folder / "inner.safetensors")
    assert up.load(plain, ctx.folder / "inner.safetensors").ok
    assert all(np.array_equal(plain.state_dict()[k], v) for k, v in model.module.state_dict().items())
    up.save(model, ctx.folder / "whole.safetensors")
    try:
        up.load(plain, ctx.folder / "whole.safetensors")
        raise AssertionError("a state behind 'module.' loaded into the plain model")
    except up.CheckpointError as err:
        assert "each missing key is in the state behind 'module.'" in str(err)
    x = np.random.default_rng(ctx.rank).standard_normal((4, 4)).astype("float32")  # each rank its own
    grads = up.gradients(model, x)
    model.zero_grad()
    model.train(False)
    model(torch.from_numpy(x)).sum().backward()
    np.testing.assert_allclose(grads["module.0.weight"], model.module[0].weight.grad.numpy(), rtol=1e-6)
    other = torch.empty(5, 4)
    dist.all_reduce(other.copy_(torch.from_numpy(grads["module.0.weight"])))
    assert torch.allclose(
        other / ctx.world, torch.from_numpy(grads["module.0.weight"])
    )  # the same on every rank
