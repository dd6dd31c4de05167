"""Every private Keras API this adapter uses, checked against Keras 3.15.1
(on TensorFlow 2.21, JAX 0.10 and torch 2.13).

Keras 3 keeps no public way to list a layer's own variables without its
sublayers', to swap one tracked variable for another after build, or to
replace a Sequential's layer without rebuilding it; these functions do it
through Keras' own bookkeeping. ``tests/test_internals.py`` fails loudly when
a newer Keras changes one of them.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from keras.src.models.functional import Functional

__all__ = ["Functional"]

#: Keras 3.15.1: a layer keeps its own variables (not its sublayers') in the
#: lists ``_trainable_variables`` and ``_non_trainable_variables``.
own_variables = attrgetter("_trainable_variables", "_non_trainable_variables")
#: Keras 3.15.1: a variable's name, as its ``name`` property gives it, read without
#: the property's call (a collect-all reads every variable's name).
variable_name = attrgetter("_name")
#: Keras 3.15.1: the sublayers Keras tracks on a layer, in order, in ``_layers``
#: (a Sequential's list starts with its InputLayer once built).
LAYERS = "_layers"
#: Keras 3.15.1: attributes of its own bookkeeping that hold tracked layers.
BOOKKEEPING = frozenset({"_layers", "_tracked", "_functional", "_operations", "_modules", "_torch_params"})


def sublayers(layer: Any) -> list[Any]:
    """The sublayers Keras tracks on ``layer`` (its ``_layers`` list, not a copy)."""
    return layer.__dict__.get(LAYERS) or []


def attributes(layer: Any) -> dict[str, Any]:
    """A layer's attributes by name. On the torch engine a Keras layer is a
    ``torch.nn.Module``, whose ``__setattr__`` (torch 2.13) keeps attributes that
    hold layers in its ``_modules`` dict, not in the instance's own."""
    own = vars(layer)
    modules = own.get("_modules")
    return {**own, **modules} if modules else own


def built_input_shape(layer: Any) -> tuple[Any, ...] | None:
    """The input shape a layer was built for (Keras 3.15.1 keeps it in
    ``_build_shapes_dict["input_shape"]``), or ``None`` when not recorded."""
    shapes = getattr(layer, "_build_shapes_dict", None)
    found = shapes.get("input_shape") if isinstance(shapes, dict) else None
    return tuple(found) if isinstance(found, (tuple, list)) else None


def operations(model: Any) -> list[Any]:
    """A functional model's graph nodes (Keras 3.15.1 ``Functional._operations``)."""
    return model._operations


def replace_tracked_variable(owner: Any, old: Any, new: Any) -> None:
    """Swap ``old`` for ``new`` in a built layer's tracker, in place.

    Keras refuses new state after build ("cannot add new elements of state").
    Keras 3.15.1 ``Tracker.replace_tracked_value`` finds ``old`` with
    ``list.index``, which compares variables with ``==`` (elementwise), so
    the swap is done by identity here: the store list (``config[store][1]``)
    and the ids Keras keeps (``stored_ids``). ``_post_untrack_variable`` /
    ``_post_track_variable`` keep the engine's own registry in step (on
    torch, the layer's ``torch_params``, so ``named_parameters()`` lists the
    new variable and not the old one).
    """
    tracker = owner._tracker
    store = (
        "trainable_variables"
        if tracker.is_in_store("trainable_variables", old)
        else "non_trainable_variables"
    )
    members = tracker.config[store][1]
    members[next(i for i, v in enumerate(members) if v is old)] = new
    tracker.stored_ids[store].discard(id(old))
    tracker.stored_ids[store].add(id(new))
    owner._post_untrack_variable(old)
    owner._post_track_variable(new)


def retrack_engine_mirrors(model: Any) -> None:
    """Keras 3.15.1 on torch: every layer, the model and its traced graph
    (``_functional``) included, mirrors the variables it reaches in a torch
    ``ParameterDict`` (``_torch_params``), built once by ``_track_variables``.
    Rebuild each mirror so torch's ``named_parameters()`` lists what the layers
    now hold. Nothing to do on the other engines (no mirrors)."""
    modules = getattr(model, "modules", None)
    if not callable(modules) or not hasattr(model, "_track_variables"):
        return  # not the torch engine: a Keras layer is no torch module there
    for module in modules():
        if "_torch_params" in getattr(module, "_modules", {}):
            module._track_variables()


def replace_in_sequential(model: Any, index: int, layer: Any) -> None:
    """Put ``layer`` at a position of a Sequential, through its ``pop``/``add``
    without the rebuild each would do (Keras 3.15.1 ``rebuild=False``), then
    one rebuild."""
    tail = [model.pop(rebuild=False) for _ in range(len(model.layers) - index)][::-1]
    tail[0] = layer
    for item in tail:
        model.add(item, rebuild=False)
    model._maybe_rebuild()


def replace_attribute(parent: Any, key: str, child: Any) -> None:
    """Point an attribute of a built subclassed layer at another layer (the
    tracker is unlocked for it), dropping the old one from Keras' tracking
    when nothing else holds it."""
    old = getattr(parent, key)
    tracker = parent._tracker
    was_locked = tracker.locked
    tracker.unlock()
    try:
        setattr(parent, key, child)
        if not any(v is old for v in attributes(parent).values()):
            tracker.untrack(old)
    finally:
        if was_locked:
            tracker.lock()


def unbuild(model: Any) -> None:
    """Leave a Sequential unbuilt (its layers built), to be built on its first
    call: Keras 3.15.1 keeps the traced graph in ``_functional``."""
    model.built = False
    model._functional = None


def inbound_nodes(layer: Any) -> list[Any]:
    """The graph nodes where ``layer`` is called in a functional or Sequential
    model (Keras 3.15.1 ``Operation._inbound_nodes``; empty for a layer only
    ever called eagerly). Each node (``keras.src.ops.node.Node``) has
    ``operation``, ``parent_nodes``, ``input_tensors`` and ``output_tensors``."""
    return list(getattr(layer, "_inbound_nodes", None) or ())


def outbound_nodes(layer: Any) -> list[Any]:
    """The graph nodes that take ``layer``'s outputs, one per call of a consumer
    (Keras 3.15.1 ``Operation._outbound_nodes``; empty for a layer never called
    in a graph). Each node's ``operation`` is the consumer."""
    return list(getattr(layer, "_outbound_nodes", None) or ())
