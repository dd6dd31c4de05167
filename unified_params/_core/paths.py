"""Dotted paths: parsing, joining, and suggestions for a mistyped path.

A path is data: ``"0.block 0.2.weight"`` parses to the key tuple
``("0", "block 0", "2", "weight")``. Keys are container positions or
attribute names; the last key of a parameter path is its leaf name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

SEP = "."


def split(path: str) -> tuple[str, ...]:
    """Split a dotted path into its keys; the empty path is the root.

    Examples:
        >>> split("0.block 1.2.weight")
        ('0', 'block 1', '2', 'weight')
        >>> split("")
        ()
    """
    if not path:
        return ()
    return tuple(path.split(SEP))


def join(*keys: str) -> str:
    """Join keys (empty ones skipped) into a dotted path.

    Examples:
        >>> join("", "2", "bias")
        '2.bias'
    """
    return SEP.join(k for k in keys if k != "")


def positions(n: int) -> list[str]:
    """Keys for ``n`` positions, ``"0"``, ``"1"``, ..., or more: made once per
    process, so keying a container's children (``zip(positions(n), layers)``)
    makes no string. The list is shared: read it, never change it.

    Examples:
        >>> list(zip(positions(2), "ab"))
        [('0', 'a'), ('1', 'b')]
    """
    if len(_POSITIONS) < n:
        _POSITIONS.extend(map(str, range(len(_POSITIONS), n)))
    return _POSITIONS


_POSITIONS: list[str] = []


def relative(path: str, base: str) -> str | None:
    """``path`` as seen from the module at ``base``, or ``None`` when it is not below it.

    Examples:
        >>> relative("2.weight", "2"), relative("2.weight", ""), relative("0.bias", "2")
        ('weight', '2.weight', None)
    """
    if not base:
        return path
    if path.startswith(base + SEP):
        return path[len(base) + 1 :]
    return None


def nearest(wanted: str, existing: Iterable[str], limit: int = 5) -> list[str]:
    """The existing paths closest to ``wanted``, best first.

    Paths that share the longest prefix of keys with ``wanted`` come first,
    then close spellings of the whole path.

    Examples:
        >>> nearest("2.wieght", ["0.weight", "0.bias", "2.weight", "2.bias"])
        ['2.weight', '2.bias', '0.weight']
    """
    pool = list(dict.fromkeys(existing))
    close = difflib.get_close_matches(wanted, pool, n=limit, cutoff=0.5)
    siblings: list[str] = []
    keys = split(wanted)
    for depth in range(len(keys) - 1, 0, -1):
        prefix = join(*keys[:depth]) + SEP
        siblings = [p for p in pool if p.startswith(prefix)]
        if siblings:
            break
    ranked = [p for p in close if p in siblings]
    ranked += [p for p in siblings if p not in ranked]
    ranked += [p for p in close if p not in ranked]
    return ranked[:limit]
