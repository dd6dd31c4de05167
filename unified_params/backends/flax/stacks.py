"""Stacks of layers: what ``nnx.vmap`` over a layer's constructor makes, the
layers a scan over layers (``nnx.scan``) runs.

Such a stack is one module (a Linear, or a block of several layers) whose
every variable has a leading layer axis of the same size ``L``: its kernel
``(L, in, out)`` where one layer's is ``(in, out)``. Flax NNX records nothing
else about it, so the stack is known by its kernels, each one axis longer than
its layer's declared layout, with every variable in it of the same leading
size. A module that holds a stack and nothing else (a model whose one
attribute is the stack) is stacked as a whole too: the stack is the first
module down that holds more than one child, or variables, or is a layer of a
declared kind. So a block of a single layer lists as that layer's stack
(``blocks.lin.0.weight`` where torch's list of blocks has
``blocks.0.lin.weight``), an ambiguity its variables cannot settle. The
adapter shows the stack as torch shows ``nn.ModuleList`` of ``L`` layers: the
stacked module is a container (to the adapter, a `Stack`) whose children
``"0"`` to ``"L-1"`` are `Member`s, each variable of one a `Slice` of the
stacked variable at that index. A layer of a declared kind says whether it is
a stack at its first laid-out variable, so a walk of a model without stacks
reads one variable more per layer. A read gives the slice, a write replaces it
(a new array in the same ``nnx.Variable``).

What one layer of a stack cannot have alone is refused: its own trainable
flag or structure (the layers share one variable per leaf and one module), a
tie; a setting given to one layer is every layer's (a port reads each back).
The same objects stand for the same layer and slice as long as
the stack lives (the core compares identities).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

from flax import nnx

from ..._core.errors import UnsupportedError, received
from .._base import holds_layer


class Stack:
    """A stack of ``size`` layers at a position of the model: ``module`` is the
    stacked module, whose variables each have a leading axis of ``size``."""

    __slots__ = ("__weakref__", "module", "size")

    def __init__(self, module: Any, size: int) -> None:
        self.module = module
        self.size = size

    def __repr__(self) -> str:
        return f"Stack({type(self.module).__name__}, {self.size})"


class Member:
    """Layer ``index`` of a stack of ``size``: ``module`` is the stacked module
    (the stack itself, or a layer inside it)."""

    __slots__ = ("__weakref__", "index", "module", "size")

    def __init__(self, module: Any, index: int, size: int) -> None:
        self.module = module
        self.index = index
        self.size = size

    def __repr__(self) -> str:
        return f"Member({type(self.module).__name__}, {self.index})"


class Slice:
    """Layer ``index``'s part of the stacked ``var`` (an ``nnx.Variable``)."""

    __slots__ = ("index", "var")

    def __init__(self, var: Any, index: int) -> None:
        self.var = var
        self.index = index

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.var.shape[1:])

    def __repr__(self) -> str:
        return f"Slice({type(self.var).__name__}, {self.index})"


#: Per stacked module, the stack it is (made once: the same object each time).
_STACKS: weakref.WeakKeyDictionary[Any, Stack] = weakref.WeakKeyDictionary()
#: Per stacked module, its members by index (made once: the same object each time).
_MEMBERS: weakref.WeakKeyDictionary[Any, list[Member]] = weakref.WeakKeyDictionary()
#: Per module holding stacked variables, per (native name, index), its slice
#: (an ``nnx.Variable`` takes no weak reference: the holder keys them).
_SLICES: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], Slice]] = weakref.WeakKeyDictionary()


def stack(module: Any, size: int) -> Stack:
    """The stack of ``size`` layers that ``module`` holds.

    Examples:
        >>> from flax import nnx
        >>> layer = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        >>> stack(layer, 3) is stack(layer, 3)
        True
    """
    found = _STACKS.get(module)
    if found is None or found.size != size:
        found = _STACKS[module] = Stack(module, size)
    return found


def member(module: Any, index: int, size: int) -> Member:
    """Layer ``index`` of the stacked ``module`` of ``size`` layers.

    Examples:
        >>> from flax import nnx
        >>> layer = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        >>> member(layer, 1, 3) is member(layer, 1, 3)
        True
    """
    found = _MEMBERS.get(module)
    if found is None or len(found) != size:
        found = _MEMBERS[module] = [Member(module, i, size) for i in range(size)]
    return found[index]


def slice_of(holder: Any, name: str, var: Any, index: int) -> Slice:
    """The slice at ``index`` of ``holder``'s stacked variable ``name`` (``var``).

    Examples:
        >>> from flax import nnx
        >>> layer = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        >>> slice_of(layer, "kernel", layer.kernel, 0) is slice_of(layer, "kernel", layer.kernel, 0)
        True
    """
    slices = _SLICES.get(holder)
    if slices is None:
        slices = _SLICES[holder] = {}
    found = slices.get((name, index))
    if found is None or found.var is not var:
        found = slices[(name, index)] = Slice(var, index)
    return found


def size(
    module: Any,
    variables: Callable[[Any], Iterator[tuple[Any, str, Any]]],
    declared: Callable[[Any, str, int], bool | None],
    shape: Callable[[Any], tuple[int, ...]] = lambda var: var.shape,
) -> int | None:
    """``L`` when ``module`` is a stack of ``L`` layers, else ``None``.

    ``variables(module)`` yields every variable in the module, its layers'
    included, as ``(layer, native name, variable)``, in any order;
    ``declared(layer, name, ndim)`` says whether the variable's layout is
    declared for one axis fewer than it has (``False``: declared for its
    axes; ``None``: no layout declared); ``shape(variable)`` reads a shape.
    A stack: every variable has a leading axis of one size ``L``, and every
    variable with a declared layout has one axis more than declared (one at
    least). The first variable that says otherwise ends the search: most
    modules are no stack, and say so at their first kernel.

    Examples:
        >>> from flax import nnx
        >>> @nnx.split_rngs(splits=3)
        ... @nnx.vmap(in_axes=(0,), out_axes=0)
        ... def stack(rngs):
        ...     return nnx.Linear(4, 2, rngs=rngs)
        >>> walk = lambda m: iter([(m, "kernel", m.kernel), (m, "bias", m.bias)])
        >>> kernel = lambda layer, name, ndim: ndim == 3 if name == "kernel" else None
        >>> size(stack(nnx.Rngs(0)), walk, kernel), size(nnx.Linear(4, 2, rngs=nnx.Rngs(0)), walk, kernel)
        (3, None)
    """
    found: int | None = None
    stacked = False
    for layer, name, var in variables(module):
        dims = shape(var)
        if not dims or (found is not None and dims[0] != found):
            return None
        found = int(dims[0])
        more = declared(layer, name, len(dims))
        if more is False:
            return None
        stacked = stacked or bool(more)
    return found if stacked else None


def variables_in(module: Any, skipped: tuple[type, ...] = ()) -> Iterator[tuple[Any, str, Any]]:
    """Every ``nnx.Variable`` in ``module`` and the modules inside it (but of
    the ``skipped`` types), as ``(holder, attribute, variable)``, in no
    particular order: what `size` reads. Each attribute's class is asked once
    (`_ROLES`): NNX's classes answer ``isinstance`` in Python.

    Examples:
        >>> from flax import nnx
        >>> sorted(name for _, name, _ in variables_in(nnx.Linear(2, 3, rngs=nnx.Rngs(0))))
        ['bias', 'kernel']
    """
    todo = [module]
    while todo:
        holder = todo.pop()
        for key, value in vars(holder).items():
            cls = type(value)
            role = _ROLES.get(cls)
            if role is None:
                role = _ROLES[cls] = _role(cls)
            if role == "variable":
                if not isinstance(value, skipped):
                    yield holder, key, value
            elif role == "module":
                todo.append(value)
            elif role == "group":
                members = value.values() if isinstance(value, dict) else value
                todo += [v for v in members if holds_layer(v, nnx.Module)]


def seen_variable(value: Any) -> bool:
    """Whether ``value`` is an ``nnx.Variable`` of a class `variables_in` has
    met (a cheap test: one dict look-up, where ``isinstance`` runs Python)."""
    return _ROLES.get(type(value)) == "variable"


#: Per class of an attribute, what `variables_in` does with it (`_role`).
_ROLES: dict[type, str] = {}


def _role(cls: type) -> str:
    """``"variable"``, ``"module"``, ``"group"`` (a list, tuple or dict that may
    hold modules) or ``"other"``."""
    if issubclass(cls, nnx.Variable):
        return "variable"
    if issubclass(cls, nnx.Module):
        return "module"
    return "group" if issubclass(cls, (list, tuple, dict)) else "other"


def refused(what: str, layer: Any) -> UnsupportedError:
    """Why one layer of a stack cannot have ``what`` alone.

    Examples:
        >>> print(refused("its own trainable flag", "Linear").args[0].split(". ")[0])
        A layer of a stack (nnx.vmap over a layer's constructor) cannot have its own trainable flag
    """
    name = layer if isinstance(layer, str) else type(layer).__name__
    return UnsupportedError(
        f"A layer of a stack (nnx.vmap over a layer's constructor) cannot have {what}. The stack's "
        "layers share one module and one nnx.Variable per leaf, each with a leading layer axis: "
        "what one layer changes there would change every layer of the stack. Expected the same "
        "for every layer (change the stacked module itself), or the layers apart (a list of "
        "layers, each with its own variables). " + received(layer=name)
    )
