"""The names a module's own code uses: how a pooling or an interpolation that a
forward method runs as a function, which no layer shows, is noticed.

A module whose class (or a base class the framework did not write) has a
method naming ``max_pool2d``, or that holds such a function itself (a forward
replaced on the instance), may pool in its forward pass; a port then does not
pair the poolings it lists (`unified_params._core.port`). A name counts where
the code loads it as a global, imports it, or reads it as an attribute of
anything but the module itself (``F.max_pool2d``, not ``self.max_pool2d``, a
layer the walk lists); the functions it calls by a global name (a helper of
its module) are read too, and so are the functions the instance holds,
wherever they came from (a constructor's argument): a framework's function
held so (``self.pool = F.max_pool2d``, through ``functools.partial`` or in
a list) counts by its own name. What counts is what the code names, not
what it runs: a method that names a pooling it never calls counts, so that
nothing is claimed where something might pool; a function that reaches the
forward pass otherwise (an argument of the call itself) is not seen.
"""

from __future__ import annotations

import dis
from collections.abc import Iterator, Mapping
from functools import partial
from types import BuiltinFunctionType, CodeType, FunctionType, MethodType
from typing import Any


def kinds_named(
    module: Any, functions: Mapping[str, frozenset[str]], framework: tuple[str, ...]
) -> frozenset[str]:
    """The kinds in ``functions`` (kind -> the framework's function names, an
    adapter's ``WEIGHTLESS_FUNCTIONS``) of which ``module``'s own code
    (`names_used`) names a function: its forward may run one where no layer
    shows it.

    Examples:
        >>> class Block:
        ...     def forward(self, x):
        ...         return F.interpolate(self.pool(x), scale_factor=2)
        >>> functions = {"pooling": frozenset({"max_pool2d"}), "upsampling": frozenset({"interpolate"})}
        >>> kinds_named(Block(), functions, framework=("torch",))
        frozenset({'upsampling'})
    """
    used = names_used(module, framework)
    return frozenset(kind for kind, names in functions.items() if not used.isdisjoint(names))


def names_used(module: Any, framework: tuple[str, ...]) -> frozenset[str]:
    """Every name that ``module``'s own code loads as a global, imports, or reads
    as an attribute of something other than the module: the methods its class
    runs (an overridden one too where the override calls ``super()``), but
    not the framework's own, found in its top-level packages ``framework``
    (its layers are described by their settings); and the functions held by
    the instance itself.

    Examples:
        >>> class Block:
        ...     def forward(self, x):
        ...         return F.max_pool2d(self.pool(x), 2) + scaled(x, self.scale)
        >>> sorted(names_used(Block(), framework=("torch",)))
        ['F', 'max_pool2d', 'scaled']
    """
    cls = type(module)
    found = _BY_CLASS.get((cls, framework))
    if found is None:
        found = _BY_CLASS[cls, framework] = _class_names(cls, framework)
    own = getattr(module, "__dict__", None)
    if not own:
        return found
    held = frozenset(name for value in list(own.values()) for name in _held(value, framework))
    return found | held if held else found


def _held(value: Any, framework: tuple[str, ...], depth: int = 0) -> Iterator[str]:
    """The names of what an instance holds and its code may call, wherever it
    came from (a constructor's argument, say): a function of the user's own
    is read (`_names`); a framework's function, held as it is or through
    ``functools.partial``, is named by its own name (``max_pool2d``); a list,
    tuple, set or dict holding these is looked into, two levels deep.

    Examples:
        >>> import functools, math
        >>> sorted(_held([functools.partial(math.floor), print], framework=("math",)))
        ['floor']
    """
    while isinstance(value, partial):
        value = value.func
    if isinstance(value, _CONTAINERS):
        if depth < 2:
            items = value.values() if isinstance(value, dict) else value
            for item in list(items):  # a type check each: a layer's lists of variables hold none
                if isinstance(item, _CONTAINERS + _FUNCTIONS):
                    yield from _held(item, framework, depth + 1)
        return
    if not callable(value):
        return
    if _top_package(getattr(value, "__module__", None)) not in framework:
        yield from _names(value, framework)
    elif isinstance(value, _FUNCTIONS):
        yield getattr(value, "__name__", "")


#: What `_held` takes for a function; and the containers it looks into.
_FUNCTIONS = (FunctionType, BuiltinFunctionType, MethodType, partial)
_CONTAINERS = (list, tuple, set, frozenset, dict)


def _class_names(cls: type, framework: tuple[str, ...]) -> frozenset[str]:
    """The names used by the methods a class runs: for each attribute, the
    first definition along its bases, and the next one too where that code
    calls ``super()``, down to the framework's own classes."""
    bases = [(base, _top_package(base.__module__) in framework) for base in cls.__mro__]
    found: set[str] = set()
    for attribute in {name for base, _ in bases for name in vars(base)}:
        for base, frameworks in bases:
            if attribute not in vars(base):
                continue
            if frameworks:
                break
            names = set(_names(vars(base)[attribute], framework))
            found |= names
            if "super" not in names:
                break
    return frozenset(found)


#: Per class and framework: the names its own methods use.
_BY_CLASS: dict[tuple[type, tuple[str, ...]], frozenset[str]] = {}


def _top_package(module: str | None) -> str:
    """The top-level package of a module's name (``"torch"`` of ``"torch.nn"``)."""
    return (module or "").partition(".")[0]


def _names(value: Any, framework: tuple[str, ...], seen: set[int] | None = None) -> Iterator[str]:
    """The names used by the code of a function, method, property or wrapper,
    and by the functions of the user's own it calls by a global name (a
    helper of its module that pools), at any depth, each once."""
    seen = set() if seen is None else seen
    for part in (value, getattr(value, "fget", None), getattr(value, "fset", None)):
        function = getattr(part, "__func__", part)  # staticmethod, classmethod, bound method
        function = getattr(function, "__wrapped__", function)  # functools.wraps
        code = getattr(function, "__code__", None)
        if not isinstance(code, CodeType) or id(function) in seen:
            continue
        seen.add(id(function))
        found = getattr(function, "__globals__", {})
        for name in _in_code(code):
            yield name
            helper = found.get(name)
            if isinstance(helper, FunctionType) and _top_package(helper.__module__) not in framework:
                yield from _names(helper, framework, seen)


def _in_code(code: CodeType, owner: str | None = None) -> Iterator[str]:
    """The names a code object, and the code nested in it (inner functions,
    lambdas, comprehensions), loads as globals, imports or reads as attributes
    of anything but ``owner`` (the module: a method's first argument)."""
    if owner is None and code.co_argcount:
        owner = code.co_varnames[0]
    loaded = None  # the local or closure variable the step before loaded, if any
    for step in dis.get_instructions(code):
        if step.opname in _NAMED and isinstance(step.argval, str):
            if not (step.opname in _ATTRIBUTE and loaded == owner):
                yield step.argval
        loaded = _local(step)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _in_code(const, owner)


def _local(step: dis.Instruction) -> str | None:
    """The local or closure variable an instruction leaves on top of the stack:
    ``LOAD_FAST`` and its forms (3.12's ``LOAD_FAST_CHECK``; 3.13's
    ``LOAD_FAST_LOAD_FAST``, which loads two, the second on top), ``LOAD_DEREF``."""
    if not (step.opname.startswith("LOAD_FAST") or step.opname in ("LOAD_DEREF", "LOAD_CLOSURE")):
        return None
    value = step.argval
    return value[-1] if isinstance(value, tuple) else value


#: Instructions that load a name as a global, an import or an attribute.
_NAMED = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "IMPORT_FROM", "LOAD_ATTR", "LOAD_METHOD"})
#: Instructions that read an attribute of the value loaded before.
_ATTRIBUTE = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
