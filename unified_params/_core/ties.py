"""Tying: share a layer or a parameter between two paths, and undo it.

- A **layer-level** tie puts the layer object at ``src`` at position ``dst``;
  the layer that was there, and its parameters, are gone from the model.
- A **parameter-level** tie makes the module at ``dst`` use the very same
  native variable as ``src``.
- ``untie`` gives one path its own copy, values kept.
- ``ties`` lists groups of paths that reach one native variable, whether the
  tie was made here or natively (a layer used twice, a parameter assigned to
  two modules).

Every check happens before the model is touched.
"""

from __future__ import annotations

from .errors import TieError, UnsupportedError, received
from .layouts import RECURRENT
from .paths import join, split
from .snapshot import structure_changed
from .tree import all_entries, group_by_variable, walk
from .view import Module, Param


def ties(model: Module) -> list[tuple[str, ...]]:
    """Groups of paths sharing one native variable, each in traversal order,
    groups ordered by their first path's position in the traversal."""
    groups = group_by_variable(all_entries(model.adapter, model.native, model.path))
    return [tuple(e.path for e in group) for group in groups.values() if len(group) > 1]


def tie(model: Module, src: str, dst: str) -> None:
    """Share ``src`` at ``dst``; see ``unified_params.tie``."""
    if src == dst:
        raise TieError(
            f"Cannot tie {src!r} to itself. Expected two different paths. " + received(src=src, dst=dst)
        )
    a, b = model[src], model[dst]
    if isinstance(a, Module) != isinstance(b, Module):
        raise TieError(
            f"Cannot tie a {_what(a)} to a {_what(b)}. Expected two layer paths or two parameter "
            "paths. " + received(src=src, dst=dst)
        )
    try:
        if isinstance(a, Param) and isinstance(b, Param):
            _tie_params(model, a, b)
        elif isinstance(a, Module) and isinstance(b, Module):
            _tie_layers(model, a, b)
    finally:
        structure_changed()  # cached walks of this model no longer hold
        model.adapter.after_structure_change(model.root.native)


def untie(model: Module, path: str) -> None:
    """Give ``path`` its own copy; see ``unified_params.untie``."""
    target = model[path]
    try:
        if isinstance(target, Module):
            _untie_layer(model, target)
        else:
            _untie_param(model, target)
    finally:
        structure_changed()
        model.adapter.after_structure_change(model.root.native)


# -- layers --------------------------------------------------------------------
def _tie_layers(model: Module, src: Module, dst: Module) -> None:
    if src.native is dst.native:
        return  # already one layer
    if _nested(src.path, dst.path):
        raise TieError(
            f"Cannot tie layer {src.path!r} to {dst.path!r}: one contains the other, so the model "
            "would contain itself. Expected two separate layers. " + received(src=src.path, dst=dst.path)
        )
    if not dst.path:
        raise TieError(
            "The root cannot be replaced by a tie. Expected a path below the root. " + received(dst="")
        )
    theirs, ours = _signature(src), _signature(dst)
    if src.kind != dst.kind or theirs != ours:
        raise TieError(
            f"Cannot tie layer {src.path!r} ({src.type_name}: {_shapes(theirs)}) to {dst.path!r} "
            f"({dst.type_name}: {_shapes(ours)}): the layers differ. Expected layers of the same "
            "kind with parameters of the same names and canonical shapes. "
            + received(src=src.path, dst=dst.path)
        )
    parent, key = _parent(model, dst.path)
    model.adapter.set_child(parent.native, key, src.native)


def _untie_layer(model: Module, layer: Module) -> None:
    positions = [p for p, n in walk(model.adapter, model.native, model.path) if n is layer.native]
    if len(positions) < 2:
        raise TieError(
            f"Layer {layer.path!r} is not tied: it is used at one position only. Expected a layer "
            "shared between positions. " + received(path=layer.path)
        )
    parent, key = _parent(model, layer.path)
    model.adapter.set_child(parent.native, key, model.adapter.copy_layer(layer.native))


# -- parameters ----------------------------------------------------------------
def _tie_params(model: Module, src: Param, dst: Param) -> None:
    if src.native is dst.native:
        return
    if src.shape != dst.shape or src.dtype != dst.dtype:
        raise TieError(
            f"Cannot tie parameter {src.path!r} (shape {src.shape}, {src.dtype}) to "
            f"{dst.path!r} (shape {dst.shape}, {dst.dtype}). Expected the same shape and "
            "dtype. " + received(src=src.path, dst=dst.path)
        )
    if src.native_shape != dst.native_shape or src.layout != dst.layout:
        # One variable, two layouts: the tied leaf would read the other's values in its
        # own layout (a square embedding's transpose for a Linear's weight), not as torch ties.
        raise TieError(
            f"Cannot tie parameter {src.path!r} to {dst.path!r}: both are {src.shape} canonically, "
            f"but {model.backend} keeps them in different layouts ({_layout_words(src)}; "
            f"{_layout_words(dst)}). One variable cannot be both: tied, {dst.path!r} would hold "
            f"{src.path!r}'s values in its own layout, not {src.path!r}'s canonical values as a tie "
            "in torch does. Expected two parameters of one layout (two Linear weights); to share an "
            "embedding with an output layer, apply the embedding's matrix transposed in the forward "
            "pass (keras_hub's ReversibleEmbedding, Flax NNX's Embed.attend). "
            + received(src=src.path, dst=dst.path, backend=model.backend)
        )
    if src.kind != dst.kind:
        raise TieError(
            f"Cannot tie {src.kind} {src.path!r} to {dst.kind} {dst.path!r}. Expected both of one "
            "kind. " + received(src=src.path, dst=dst.path)
        )
    _refuse_rnn_slot(model, dst)
    _refuse_shared_holder(model, dst, "tie")
    model.adapter.set_variable(dst.module.native, dst.native_name, src.native)


def _layout_words(param: Param) -> str:
    """How a parameter is kept, in words: ``"'1.weight' (Dense) kept as (4, 10),
    axes (1, 0) of it canonical"``."""
    kept = f"{param.path!r} ({param.module.type_name}) kept as {param.native_shape}"
    if param.layout.is_identity:
        return f"{kept}, the canonical layout"
    return f"{kept}, axes {param.layout.perm} of it canonical"


def _untie_param(model: Module, param: Param) -> None:
    # Reached at another path: an alias, or a layer that lays the variable out apart.
    if not any(param.path in group for group in ties(model)):
        raise TieError(
            f"Parameter {param.path!r} is not tied: no other path reaches it. Expected a tied "
            "parameter (see up.ties(model)). " + received(path=param.path)
        )
    _refuse_rnn_slot(model, param)
    _refuse_shared_holder(model, param, "untie")
    copy = model.adapter.copy_variable(param.native)
    model.adapter.set_variable(param.module.native, param.native_name, copy)


def _refuse_shared_holder(model: Module, param: Param, verb: str) -> None:
    """A parameter reached through a layer used twice is tied by its layer."""
    holders = [p for p, n in walk(model.adapter, model.native, model.path) if n is param.module.native]
    if len(holders) > 1:
        others = [h for h in holders if h != param.module.path]
        raise TieError(
            f"Cannot {verb} parameter {param.path!r} alone: its layer {param.module.path!r} is one "
            f"object shared with {others}. Expected a {verb} of the layer: "
            f"up.{verb}(model, {param.module.path!r}, ...). " + received(path=param.path)
        )


def _refuse_rnn_slot(model: Module, param: Param) -> None:
    if param.layer_kind in RECURRENT and not model.capabilities.rnn_param_ties:
        # Paddle's RNN layers keep a second reference to each weight inside their cells.
        raise UnsupportedError(
            f"Parameter-level ties inside a {model.backend} {param.layer_kind.upper()} are not supported: "
            "its cells keep their own references to the weights. Expected a layer-level tie of the "
            f"whole recurrent layer. " + received(path=param.path)
        )


# -- helpers -------------------------------------------------------------------
def _parent(model: Module, path: str) -> tuple[Module, str]:
    keys = split(path)
    relative = keys[len(split(model.path)) :] if model.path else keys
    parent = model[join(*relative[:-1])] if len(relative) > 1 else model
    if not isinstance(parent, Module):
        raise TieError(f"{path!r} is inside a parameter, not a layer. " + received(path=path))
    return parent, relative[-1]


def _signature(module: Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, p.shape) for key, p in module.params().items()]


def _shapes(signature: list[tuple[str, tuple[int, ...]]]) -> str:
    return ", ".join(f"{name} {shape}" for name, shape in signature) or "no parameters"


def _nested(a: str, b: str) -> bool:
    return not a or not b or a.startswith(b + ".") or b.startswith(a + ".")


def _what(x: Module | Param) -> str:
    return "layer" if isinstance(x, Module) else "parameter"
