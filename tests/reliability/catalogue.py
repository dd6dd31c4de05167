"""The bad-input catalogue: every mistake a user can make, what it raises, and
what the message must say. ``test_catalogue.py`` runs it on every backend;
``errors_doc.py`` renders it into ``docs/errors.md``.
"""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import unified_params as up
from tests.conformance import specs
from unified_params import spec as S

I = up.init


@dataclass(frozen=True)
class Case:
    """One mistake: the call that makes it, what it raises, what the message says."""

    area: str
    mistake: str
    call: Callable[[Any, Path], Any]
    error: type[Exception]
    words: tuple[str, ...] = ()
    model: Callable[[str], Any] = field(default=lambda backend: specs.mlp().build(backend))


def _file(model: Any, tmp: Path, mutate: Callable[[bytes], bytes]) -> Path:
    path = tmp / "model.safetensors"
    up.save(model, path)
    path.write_bytes(mutate(path.read_bytes()))
    return path


def _lie(data: bytes, old: bytes, new: bytes) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + n].replace(old, new)
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data[8 + n :]


class _Pickled:
    def __reduce__(self):
        return (print, ("unpickled!",))


def _cnn(backend: str) -> Any:
    return specs.cnn().build(backend)


def _untied(backend: str) -> Any:
    return S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 2)).build(backend)


def _nested(backend: str) -> Any:
    return specs.nested().build(backend)


def _shared(backend: str) -> Any:
    return specs.shared().build(backend)


def _index(model: Any, tmp: Path, mutate: Callable[[dict], dict]) -> Path:
    """A sharded checkpoint whose index JSON is changed by ``mutate``."""
    files = up.save(model, tmp / "model.safetensors", max_shard_size=100)
    files[-1].write_text(json.dumps(mutate(json.loads(files[-1].read_text()))))
    return files[-1]


def _shard_named(name: Any) -> Callable[[dict], dict]:
    def mutate(index: dict) -> dict:
        first = next(iter(index["weight_map"]))
        return {**index, "weight_map": {**index["weight_map"], first: name}}

    return mutate


def _utf16(data: bytes) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + n].decode().strip().encode("utf-16")
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data[8 + n :]


def _untied_state(backend: str) -> dict:
    untied = S.Sequential(
        S.Linear(4, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 8), S.ReLU(), S.Linear(8, 1)
    ).build(backend)
    up.initialize(untied, I.Normal(), seed=3)
    return up.state_dict(untied)


def _written_as(model: Any, tmp: Path, writer: str) -> Path:
    """The model's canonical state in a file whose metadata names another writer."""
    from safetensors.numpy import save_file

    path = tmp / "written.safetensors"
    save_file(dict(up.state_dict(model)), str(path), metadata={"format": writer})
    return path


def _deaf(backend: str) -> Any:
    """A model whose output is its last bias, whatever the input."""
    model = specs.mlp().build(backend)
    up.initialize(model, {"*.weight": I.Zeros(), "*.bias": I.Constant(0.5)}, seed=0)
    return model


def _port_to(spec: Any) -> Callable[[Any, Path], Any]:
    def call(model: Any, tmp: Path) -> Any:
        backend = up.backend_of(model)
        return up.port(spec.build(backend), model)

    return call


CASES: list[Case] = [
    # -- access ------------------------------------------------------------------
    Case("access", "unknown path", lambda m, t: up.wrap(m)["3.weight"], up.PathError, ("'3.weight'", "nearest")),
    Case("access", "mistyped leaf name", lambda m, t: up.wrap(m)["2.wieght"], up.PathError, ("nearest: '2.weight'",)),
    Case("access", "path through a leaf layer", lambda m, t: up.wrap(m)["0.0.weight"], up.PathError, ("has no child",)),
    Case("access", "position out of range", lambda m, t: up.wrap(m)[3], up.PositionError, ("-3..2",)),
    Case("access", "position in a layer without children", lambda m, t: up.wrap(m)[0][0], up.PositionError, ("no children",)),
    Case("access", "key that is neither position nor path", lambda m, t: up.wrap(m)[1.5], up.UnsupportedError, ("float",)),
    Case("access", "param() of a module path", lambda m, t: up.wrap(m).param("2"), up.PathError, ("names a module",)),
    Case("access", "selector of an unknown form", lambda m, t: up.wrap(m).params(where=3), up.UnsupportedError, ("selector",)),
    Case("access", "object that is no model", lambda m, t: up.wrap(np.zeros(3)), up.UnsupportedError, ("torch.nn.Module",)),
    # -- set ---------------------------------------------------------------------
    Case("set", "value of the wrong shape", lambda m, t: up.wrap(m)["0.weight"].set(np.zeros((4, 4)), layout="canonical"), up.ShapeError, ("'0.weight'", "(4, 4)", "(8, 4)")),
    Case("set", "string value", lambda m, t: up.wrap(m)["0.bias"].set("eight"), up.DTypeError, ("not numeric",)),
    Case("set", "None value", lambda m, t: up.wrap(m)["0.bias"].set(None), up.DTypeError, ("not numeric",)),
    Case("set", "complex value", lambda m, t: up.wrap(m)["0.bias"].set(np.ones(8) * 1j), up.DTypeError, ("complex128",)),
    Case("set", "item value that does not broadcast", lambda m, t: up.wrap(m)["0.weight"].__setitem__(0, np.ones(5)), up.ShapeError, ("broadcast",)),
    Case("set", "item index out of range", lambda m, t: up.wrap(m)["0.weight"].__setitem__((8, 0), 1.0), up.PositionError, ("(8, 4)",)),
    Case("set", "unknown layout", lambda m, t: up.wrap(m)["0.weight"].set(np.zeros((8, 4)), layout="nchw"), ValueError, ("layout",)),
    Case("set", "a value too large for float32", lambda m, t: up.wrap(m)["0.weight"].set(np.full((8, 4), 1e39)), up.DTypeError, ("too large for float32", "infinity")),
    Case("set", "trainable as a string", lambda m, t: setattr(up.wrap(m)["0.weight"], "trainable", "yes"), up.UnsupportedError, ("True or False", "'yes'")),
    Case("set", "a write through a copy (index array in a chain)", lambda m, t: up.wrap(m)["0.weight"][[0, 1]].__setitem__(0, 5.0), up.UnsupportedError, ("index array",)),
    Case("set", "freeze a buffer", lambda m, t: setattr(up.wrap(m)["1.running_mean"], "trainable", True), up.UnsupportedError, ("buffer",), _cnn),
    # -- init --------------------------------------------------------------------
    Case("init", "negative std", lambda m, t: up.initialize(m, I.Normal(0, -1)), up.InitError, ("std", "-1")),
    Case("init", "low above high", lambda m, t: up.initialize(m, I.Uniform(2, 1)), up.InitError, ("low", "high")),
    Case("init", "truncation bounds reversed", lambda m, t: up.initialize(m, I.TruncatedNormal(0, 1, 2, -2)), up.InitError, ("a", "b")),
    Case("init", "unknown fan mode", lambda m, t: up.initialize(m, I.KaimingUniform(mode="fan_avg")), up.InitError, ("mode", "fan_avg")),
    Case("init", "unknown nonlinearity", lambda m, t: up.initialize(m, I.KaimingNormal(nonlinearity="swish")), up.InitError, ("swish",)),
    Case("init", "orthogonal on a bias", lambda m, t: up.initialize(m, [("*.weight", I.Normal()), ("*.bias", I.Orthogonal())]), up.InitError, ("'0.bias'", "at least 2 axes")),
    Case("init", "fan-based init on a bias", lambda m, t: up.initialize(m, I.XavierUniform()), up.InitError, ("'0.bias'", "fan")),
    Case("init", "custom init returns the wrong shape", lambda m, t: up.initialize(m, [("*.weight", I.Ones()), ("*", lambda s, r: np.zeros(3))]), up.ShapeError, ("'0.bias'", "(3,)")),
    Case("init", "custom init returns nan", lambda m, t: up.initialize(m, [("*.weight", I.Ones()), ("*", lambda s, r: np.full(s, np.nan))]), up.InitError, ("non-finite",)),
    Case("init", "custom init returns strings", lambda m, t: up.initialize(m, {"*": lambda s, r: np.full(s, "x")}), up.InitError, ("numbers",)),
    Case("init", "a constant beyond float32", lambda m, t: up.initialize(m, I.Constant(1e39)), up.InitError, ("infinity", "float32")),
    Case("init", "custom init beyond float32", lambda m, t: up.initialize(m, {"*": lambda s, r: np.full(s, 1e39)}), up.InitError, ("too large for float32",)),
    Case("init", "seed that is not an integer", lambda m, t: up.initialize(m, I.Zeros(), seed=1.5), up.InitError, ("seed",)),
    Case("init", "rules of the wrong form", lambda m, t: up.initialize(m, [I.Zeros()]), up.UnsupportedError, ("pairs",)),
    Case("init", "strict rule that matches nothing", lambda m, t: up.initialize(m, {"*": I.Ones(), "0.*": I.Zeros()}, strict=True), up.PathError, ("matched no parameter",)),
    # -- tie ---------------------------------------------------------------------
    Case("tie", "parameters of different shapes", lambda m, t: up.tie(m, "0.weight", "2.weight"), up.TieError, ("'0.weight'", "'2.weight'", "(8, 4)", "(8, 8)"), _untied),
    Case("tie", "layers of different shapes", lambda m, t: up.tie(m, "2", "4"), up.TieError, ("'2'", "'4'", "differ"), _untied),
    Case("tie", "a path to itself", lambda m, t: up.tie(m, "2.weight", "2.weight"), up.TieError, ("itself",), _untied),
    Case("tie", "a layer to a parameter", lambda m, t: up.tie(m, "2", "2.weight"), up.TieError, ("layer", "parameter"), _untied),
    Case("tie", "a layer into its container", lambda m, t: up.tie(m, "2", ""), up.TieError, ("contains",), _untied),
    Case("tie", "untie what is not tied", lambda m, t: up.untie(m, "2.weight"), up.TieError, ("not tied",), _untied),
    Case("tie", "untie one parameter of a shared layer", lambda m, t: up.untie(m, "4.weight"), up.TieError, ("shared",), _shared),
    Case("tie", "tie an unknown path", lambda m, t: up.tie(m, "2.weight", "9.weight"), up.PathError, ("'9.weight'",), _untied),
    # -- gradients ---------------------------------------------------------------
    Case("gradients", "input of the wrong shape", lambda m, t: up.gradients(m, np.ones((2, 5), "float32")), up.ShapeError, ("(batch, ..., 4)", "(2, 5)")),
    Case("gradients", "image input channels last", lambda m, t: up.gradients(m, np.ones((2, 6, 7, 3), "float32")), up.ShapeError, ("channels first",), _cnn),
    Case("gradients", "mse without targets", lambda m, t: up.gradients(m, np.ones((2, 4), "float32"), "mse"), up.UnsupportedError, ("targets",)),
    Case("gradients", "unknown loss", lambda m, t: up.gradients(m, np.ones((2, 4), "float32"), "l3"), up.UnsupportedError, ("'l3'",)),
    # -- save --------------------------------------------------------------------
    Case("save", "shard size that is no size", lambda m, t: up.save(m, t / "m.safetensors", max_shard_size="lots"), up.CheckpointError, ("max_shard_size",)),
    Case("save", "a number as the file name", lambda m, t: up.save(m, 123), up.CheckpointError, ("non-empty path", "123")),
    Case("save", "an empty file name", lambda m, t: up.save(m, ""), up.CheckpointError, ("non-empty path",)),
    Case("save", "a folder as the file", lambda m, t: up.save(m, t), up.CheckpointError, ("Could not write",)),
    Case("save", "folder that does not exist", lambda m, t: up.save(m, t / "no" / "m.safetensors"), up.CheckpointError, ("previous file",)),
    # -- load --------------------------------------------------------------------
    Case("load", "missing file", lambda m, t: up.load(m, t / "absent.safetensors"), up.CheckpointError, ("No checkpoint",)),
    Case("load", "truncated file", lambda m, t: up.load(m, _file(m, t, lambda d: d[:-7])), up.CheckpointError, ("truncated",)),
    Case("load", "random bytes", lambda m, t: up.load(m, _file(m, t, lambda d: bytes(range(256)) * 4)), up.CheckpointError, ("not a valid safetensors file",)),
    Case("load", "a pickle", lambda m, t: up.load(m, _file(m, t, lambda d: pickle.dumps(_Pickled()))), up.CheckpointError, ("refused without being unpickled",)),
    Case("load", "a Keras weights file (HDF5)", lambda m, t: up.load(m, _file(m, t, lambda d: b"\x89HDF\r\n\x1a\n" + d[8:])), up.CheckpointError, ("an HDF5 file", "model.load_weights(path)")),
    Case("load", "header offsets that lie", lambda m, t: up.load(m, _file(m, t, lambda d: _lie(d, b'"data_offsets":[0,128]', b'"data_offsets":[0,999999999999]'))), up.CheckpointError, ("'0.weight'", "needs 128 bytes")),
    Case("load", "header that claims a huge size", lambda m, t: up.load(m, _file(m, t, lambda d: struct.pack("<Q", 2**60) + d[8:])), up.CheckpointError, ("claims",)),
    Case("load", "state with a key missing", lambda m, t: up.load_state_dict(m, {k: v for k, v in up.state_dict(m).items() if k != "2.bias"}), up.CheckpointError, ("missing '2.bias'",)),
    Case("load", "state with an unexpected key", lambda m, t: up.load_state_dict(m, {**up.state_dict(m), "9.weight": np.zeros(1)}), up.CheckpointError, ("unexpected '9.weight'",)),
    Case("load", "state of a torch.compile'd model (keys behind '_orig_mod.')", lambda m, t: up.load_state_dict(m, {f"_orig_mod.{k}": v for k, v in up.state_dict(m).items()}), up.CheckpointError, ("each missing key is in the state behind '_orig_mod.'", r"mapping=[(r'_orig_mod\.?(.*)', r'\1')]")),
    Case("load", "state of the same layers at other positions", lambda m, t: up.load_state_dict(m, {k.replace("2.", "3.", 1): v for k, v in up.state_dict(m).items()}), up.CheckpointError, ("pair in order with the missing ones", "'3' as '2'", "renamed = {'3.weight': '2.weight', '3.bias': '2.bias'}")),
    Case("load", "state of one part of the model", lambda m, t: up.load_state_dict(m, up.state_dict(up.wrap(m)["0"])), up.CheckpointError, ("the state is of the part at '0'", "up.wrap(model)['0']"), _nested),
    Case("load", "state with a wrong shape", lambda m, t: up.load_state_dict(m, {**up.state_dict(m), "0.weight": np.zeros((4, 8))}), up.CheckpointError, ("'0.weight' expects (8, 4) got (4, 8)",)),
    Case("load", "checkpoint of another model", lambda m, t: up.load(m, (up.save(specs.nested().build(up.backend_of(m)), t / "n.safetensors"))[0]), up.CheckpointError, ("unexpected", "missing")),
    Case("load", "a folder as the file", lambda m, t: up.load(m, t), up.CheckpointError, ("is a folder",)),
    Case("load", "a folder that holds a checkpoint", lambda m, t: up.load(m, up.save(m, t / "model.safetensors")[0].parent), up.CheckpointError, ("is a folder. It holds 'model.safetensors': pass its path",)),
    Case("load", "a tensor dtype that is a list", lambda m, t: up.load(m, _file(m, t, lambda d: _lie(d, b'"dtype":"F32"', b'"dtype":["F32"]'))), up.CheckpointError, ("unknown dtype ['F32']",)),
    Case("load", "a UTF-16 header", lambda m, t: up.load(m, _file(m, t, _utf16)), up.CheckpointError, ("not JSON",)),
    Case("load", "metadata aliases that are a list", lambda m, t: up.load(m, _file(m, t, lambda d: _lie(d, b'"aliases":"{}"', b'"aliases":"[]"'))), up.CheckpointError, ("wrong type",)),
    Case("load", "metadata aliases that are a string", lambda m, t: up.load(m, _file(m, t, lambda d: _lie(d, b'"aliases":"{}"', b'"aliases":"\\"x\\""'))), up.CheckpointError, ("wrong type",)),
    Case("load", "metadata aliases that are a number", lambda m, t: up.load(m, _file(m, t, lambda d: _lie(d, b'"aliases":"{}"', b'"aliases":"3"'))), up.CheckpointError, ("wrong type",)),
    Case("load", "index whose weight_map is a list", lambda m, t: up.load(m, _index(m, t, lambda i: {**i, "weight_map": list(i["weight_map"])})), up.CheckpointError, ("weight_map is not an object",)),
    *[
        Case("load", f"index naming the shard {name!r}", lambda m, t, name=name: up.load(m, _index(m, t, _shard_named(name))), up.CheckpointError, ("no file name",))
        for name in ("..", ".", "", None, 1, "../outside.safetensors")
    ],
    Case("load", "file of a writer that may lay a square Linear out otherwise", lambda m, t: up.load(m, _written_as(m, t, "np")), up.CheckpointError, ("'2.weight'", "writer is 'np'", "layout='canonical'"), model=_untied),
    Case("load", "state that is None", lambda m, t: up.load_state_dict(m, None), up.CheckpointError, ("mapping",)),
    Case("load", "state that is a list", lambda m, t: up.load_state_dict(m, list(up.state_dict(m).values())), up.CheckpointError, ("mapping",)),
    Case("load", "state keyed by numbers", lambda m, t: up.load_state_dict(m, {1: np.zeros(3)}), up.CheckpointError, ("mapping", "(str)")),
    Case("load", "state with NaN", lambda m, t: up.load_state_dict(m, {**up.state_dict(m), "0.bias": np.full(8, np.nan)}), up.CheckpointError, ("not finite", "'0.bias'", "allow_nonfinite")),
    Case("load", "state with a value beyond float32", lambda m, t: up.load_state_dict(m, {**up.state_dict(m), "0.bias": np.full(8, 1e39)}), up.CheckpointError, ("not finite", "'0.bias'")),
    Case("load", "native state with an unexpected key", lambda m, t: up.load_state_dict(m, {**up.state_dict(m, layout="native"), "9.weight": np.zeros(1)}, layout="native"), up.CheckpointError, ("unexpected '9.weight'",)),
    Case("load", "native value of the wrong rank", lambda m, t: up.load_state_dict(m, {**up.state_dict(m, layout="native"), "0.weight": np.zeros(32)}, layout="native"), up.CheckpointError, ("mismatched '0.weight'",)),
    Case("load", "untied state into a tied model", lambda m, t: up.load_state_dict(m, _untied_state(up.backend_of(m))), up.CheckpointError, ("tied in this model but given different values", "'4.weight'"), _shared),
    # -- port --------------------------------------------------------------------
    Case("port", "destination with fewer layers", _port_to(S.Sequential(S.Linear(4, 8), S.Linear(8, 1), S.Linear(1, 1))), up.PortError, ("3 parameterised layers",)),
    Case("port", "layer of another shape", _port_to(S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 2))), up.PortError, ("Layer 1 does not match", "(2, 8)")),
    Case("port", "layer of another kind", _port_to(S.Sequential(S.Linear(4, 8), S.LayerNorm(8))), up.PortError, ("layernorm",)),
    Case("port", "a Linear against a convolution that is not pointwise", _port_to(S.Sequential(S.Conv2d(3, 4, 3), S.Flatten(), S.Linear(4, 5))), up.PortError, ("pairs only with a pointwise convolution's (5, 4, 1, 1), not (5, 4, 3, 3)",), lambda b: S.Sequential(S.Conv2d(3, 4, 3), S.Conv2d(4, 5, 3)).build(b)),
    Case("port", "mapping to a layer that does not exist", lambda m, t: up.port(specs.mlp().build(up.backend_of(m)), m, mapping={"0": "7"}), up.PortError, ("'7'",)),
    Case("port", "check input that does not fit", lambda m, t: up.port(specs.mlp().build(up.backend_of(m)), m, check_input=np.ones((2, 5), "float32")), up.ShapeError, ("(batch, ..., 4)",)),
    Case("port", "check input the outputs do not depend on", lambda m, t: up.port(_deaf(up.backend_of(m)), m, check_input=np.ones((2, 4), "float32")), up.PortError, ("cannot verify", "ignores its input", "restored")),
    Case("port", "outputs that differ", lambda m, t: up.port(S.Sequential(S.BatchNorm2d(4, eps=0.5)).build(up.backend_of(m)), m, check_input=np.ones((2, 4, 3, 3), "float32"), atol=1e-9), up.PortError, ("restored",), lambda b: S.Sequential(S.BatchNorm2d(4)).build(b)),
]  # fmt: skip
