"""A model's walk, kept for as long as the model's structure is unchanged.

Collecting every parameter walks every module. Asked again on an unchanged
model, a view answers from a :class:`Snapshot` instead: the entries of the
last walk plus a *fingerprint* of the structure they came from. The
fingerprint lists, for every unique module, the containers its framework
keeps children and variables in (``Adapter.containers``), and their lengths,
keys and members. Checking it runs in C loops over those containers, a
fraction of the walk; a change made through the framework (a layer replaced,
a parameter re-registered, variables created by a build) changes a member, a
key or a length. A change this library makes itself (a tie) is announced with
:func:`structure_changed`.

Members and containers are compared by identity, never by ``==`` (a tensor's
``==`` is elementwise). The snapshot holds them, so no identity can be reused
while it lives.
"""

from __future__ import annotations

from collections.abc import Sized
from itertools import chain
from operator import is_
from typing import TYPE_CHECKING, Any

from .tree import Entry, own_entries, walk

if TYPE_CHECKING:
    from ..backends._base import Adapter

_generation = 0


def structure_changed() -> None:
    """Invalidate every snapshot: this library has changed a model's structure.

    Examples:
        >>> before = generation()
        >>> structure_changed()
        >>> generation() == before + 1
        True
    """
    global _generation
    _generation += 1


def generation() -> int:
    """How many structural changes this library has made so far."""
    return _generation


class Snapshot:
    """The entries below one module at one moment, and the means to tell
    whether they still describe the model.

    Args:
        adapter: The model's adapter.
        root: The native module to walk.
        prefix: The path of ``root``.
        reusable: Record the fingerprint; without it :meth:`current` is
            always False (a snapshot for a single use costs less).

    Examples:
        >>> import torch
        >>> from unified_params.backends import adapter_for
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8))
        >>> snap = Snapshot(adapter_for(net), net)
        >>> [e.path for e in snap.entries], snap.current()
        (['0.weight', '0.bias'], True)
        >>> net[0].bias = torch.nn.Parameter(torch.zeros(8))
        >>> snap.current()
        False
    """

    __slots__ = ("_adapter", "_modules", "_generation", "_fingerprint", "entries", "modules", "memo")

    def __init__(self, adapter: Adapter, root: Any, prefix: str = "", *, reusable: bool = True) -> None:
        self._adapter = adapter
        self._generation = _generation
        entries: list[Entry] = []
        unique: dict[int, tuple[str, Any]] = {}
        for position in walk(adapter, root, prefix):
            path, module = position
            entries += own_entries(adapter, module, path)
            if id(module) not in unique:
                unique[id(module)] = position
        #: Unique modules (first path wins) as ``(path, native)``, in walk order.
        self.modules = list(unique.values())
        self._modules = [module for _, module in self.modules]
        # A snapshot taken for one use skips the fingerprint: it is never current.
        self._fingerprint = _fingerprint(adapter, self._modules) if reusable else None
        #: Every variable occurrence, aliases included, in walk order.
        self.entries = entries
        #: Whatever a caller derives from the entries, kept with them.
        self.memo: dict[str, Any] = {}

    def current(self) -> bool:
        """Whether the model still has the structure this snapshot recorded."""
        if self._generation != _generation or self._fingerprint is None:
            return False
        old, new = self._fingerprint, _fingerprint(self._adapter, self._modules)
        return _same(old[0], new[0]) and old[1] == new[1] and old[2] == new[2] and _same(old[3], new[3])


def _fingerprint(adapter: Adapter, modules: list[Any]) -> tuple[tuple[Any, ...], ...]:
    containers: tuple[Sized, ...] = tuple(chain.from_iterable(map(adapter.containers, modules)))
    dicts = [c for c in containers if isinstance(c, dict)]
    return (
        containers,
        tuple(map(len, containers)),
        tuple(chain.from_iterable(dicts)),  # keys; compared by value
        tuple(
            chain.from_iterable(
                chain(map(dict.values, dicts), (c for c in containers if not isinstance(c, dict)))
            )
        ),
    )


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(map(is_, a, b))
