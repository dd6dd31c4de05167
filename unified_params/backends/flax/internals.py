"""Every private or version-bound Flax NNX detail this adapter relies on,
checked against Flax 0.12.8 (JAX 0.10.2).

NNX keeps a module's children and variables as plain attributes in its
``__dict__``, next to its own bookkeeping (``_pytree__state``,
``_pytree__nodes``); ``nnx.List`` keeps its members under the keys ``"0"``,
``"1"``, ... and its length under ``_length``; a variable its value under
``_raw_value``. ``tests/test_internals.py``
fails loudly when a newer Flax changes one of them.
"""

from __future__ import annotations

from typing import Any

from flax import nnx
from flax.nnx.nn import recurrent as _recurrent

#: Flax 0.12.8: attributes of NNX's own bookkeeping on every module.
BOOKKEEPING_PREFIX = "_pytree__"
#: Flax 0.12.8: where ``nnx.List`` keeps its length (its members are under "0", "1", ...).
LIST_LENGTH = "_length"
#: Flax 0.12.8: ``nnx.Bidirectional``'s default ``merge_fn``, a private function
#: that concatenates both directions' features (as torch does).
CONCATENATE = _recurrent._concatenate

#: Attributes that switch a layer between training and inference (what
#: ``Module.train()`` / ``Module.eval()`` set): the value each takes in inference.
INFERENCE = {"deterministic": True, "use_running_average": True}


def list_member(members: Any, key: str) -> Any | None:
    """The member of an ``nnx.List`` at position ``key`` (digits), or ``None``:
    read where the list keeps it, as ``nnx.List.__getitem__`` does after its
    checks (a third of that call's cost, in a path look-up's every step)."""
    return vars(members).get(key)


def stored_shape(var: Any) -> tuple[int, ...]:
    """The shape of the value an ``nnx.Variable`` holds, read where Flax 0.12.8
    keeps it (``_raw_value``): ``Variable.shape`` first copies the value's tree
    (about 12 us here, most of a path look-up's step, where the adapter looks
    for a stack of layers)."""
    return var._raw_value.shape  # type: ignore[no-any-return]


def own_attributes(module: Any) -> dict[str, Any]:
    """A module's attributes by name: its children, variables and settings,
    NNX's bookkeeping left out."""
    return {k: v for k, v in vars(module).items() if not k.startswith(BOOKKEEPING_PREFIX)}


def put(parent: Any, key: str, value: Any) -> None:
    """``setattr(parent, key, value)``, also where the attribute held a static
    value before (a function such as ``nnx.relu`` at a position of an
    ``nnx.Sequential``): NNX 0.12 then wants the new value marked as data."""
    if isinstance(value, (nnx.Module, nnx.Variable)):
        value = nnx.data(value)
    setattr(parent, key, value)


class Modes:
    """Put every layer of a model in training or inference mode for one call,
    and give each its own mode back after it (``Module.train()``/``eval()``
    change the model for good)."""

    def __init__(self, model: Any, training: bool) -> None:
        self.saved: list[tuple[Any, str, Any]] = []
        for _, module in nnx.iter_modules(model):
            state = vars(module)
            for attr, inference in INFERENCE.items():
                if attr in state:
                    self.saved.append((module, attr, state[attr]))
                    setattr(module, attr, (not inference) if training else inference)

    def __enter__(self) -> Modes:
        return self

    def __exit__(self, *exc: object) -> None:
        for module, attr, value in reversed(self.saved):
            setattr(module, attr, value)
