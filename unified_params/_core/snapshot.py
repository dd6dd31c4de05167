"""A model's walk, kept for as long as the model's structure is unchanged.

Collecting every parameter walks every module. Asked again on an unchanged
model, a view answers from a `Snapshot` instead: the variables of the
last walk plus a *fingerprint* of the structure they came from. The
fingerprint lists, for every unique module, the lengths and the members of
the containers its framework keeps children and variables in
(`Adapter.container_getter`: dict keys, dict values, lists). Checking it
runs in C loops over those containers, a fraction of the walk; a change
made through the framework (a layer replaced, a parameter re-registered,
variables created by a build) changes a member, a key or a length. A change
this library makes itself (a tie) is announced with `structure_changed`.

This module is the whole of the cache: its one adapter hook is
`Adapter.container_getter`.

Members are compared by identity, never by ``==`` (a tensor's ``==`` is
elementwise). The snapshot holds them, so no identity can be reused while it
lives; the price is that a view keeps a replaced layer alive until its next
call notices the change.
"""

from __future__ import annotations

from itertools import chain
from operator import is_
from typing import TYPE_CHECKING, Any

from .tree import Row, walk_rows

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
    """The variables below one module at one moment, and the means to tell
    whether they still describe the model.

    Args:
        adapter: The model's adapter.
        root: The native module to walk.
        prefix: The path of ``root``.
        reusable: Record the fingerprint; without it `current` is
            always False (a snapshot for a single use costs less).

    Examples:
        >>> import torch
        >>> from unified_params.backends import adapter_for
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8))
        >>> snap = Snapshot(adapter_for(net), net)
        >>> [row[0] for row in snap.rows], snap.current()  # row[0]: the path
        (['0.weight', '0.bias'], True)
        >>> net[0].bias = torch.nn.Parameter(torch.zeros(8))
        >>> snap.current()
        False
    """

    __slots__ = ("_groups", "_generation", "_fingerprint", "_positions", "_modules", "rows", "memo")

    def __init__(self, adapter: Adapter, root: Any, prefix: str = "", *, reusable: bool = True) -> None:
        self._generation = _generation
        positions, rows = walk_rows(adapter, root, prefix)
        self._positions = positions
        self._modules: list[tuple[str, Any]] | None = None
        # Modules grouped by the getter of their containers (C-level where the
        # adapter has one), so a check calls Python once per group, not per module.
        groups: dict[Any, list[Any]] = {}
        if reusable:
            for _, module in self.modules:
                groups.setdefault(adapter.container_getter(module), []).append(module)
        self._groups = list(groups.items())
        # A snapshot taken for one use skips the fingerprint: it is never current.
        self._fingerprint = _fingerprint(self._groups) if reusable else None
        #: Every variable occurrence, aliases included, in walk order, as `Row` s.
        self.rows: list[Row] = rows
        #: Whatever a caller derives from the rows, kept with them.
        self.memo: dict[str, Any] = {}

    @property
    def reusable(self) -> bool:
        """Whether this walk is kept for later calls (it has a fingerprint)."""
        return self._fingerprint is not None

    @property
    def modules(self) -> list[tuple[str, Any]]:
        """Unique modules (first path wins) as ``(path, native)``, in walk order."""
        if self._modules is None:
            unique: dict[int, tuple[str, Any]] = {}
            for position in self._positions:
                unique.setdefault(id(position[1]), position)
            self._modules = list(unique.values())
        return self._modules

    @property
    def positions(self) -> dict[str, Any]:
        """Every module position (shared modules at each), path -> native."""
        return dict(self._positions)

    def same_generation(self) -> bool:
        """Whether this library has changed no structure since the snapshot."""
        return self._generation == _generation

    def current(self) -> bool:
        """Whether the model still has the structure this snapshot recorded."""
        if self._generation != _generation or self._fingerprint is None:
            return False
        old_sizes, old_members = self._fingerprint
        containers = _containers(self._groups)
        # Same lengths, so the members line up: compare them as they are read, without
        # gathering them first (at 32,000 variables that tuple cost 15% of the check).
        return old_sizes == tuple(map(len, containers)) and all(
            map(is_, old_members, chain.from_iterable(containers))
        )


def _containers(groups: list[tuple[Any, list[Any]]]) -> list[Any]:
    """Every container of every module, in order (C loops only)."""
    return list(chain.from_iterable(chain.from_iterable(map(get, ms)) for get, ms in groups))


def _fingerprint(groups: list[tuple[Any, list[Any]]]) -> tuple[tuple[int, ...], tuple[Any, ...]]:
    """Every container's length, and all their members in order."""
    containers = _containers(groups)
    return tuple(map(len, containers)), tuple(chain.from_iterable(containers))
