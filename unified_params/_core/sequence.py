"""What runs just before and just after a layer, where containers run their
children in order, each on the one before's output (torch's ``nn.Sequential``).

After a container's last child comes what follows the container in the one
holding it, and so on up to the model's output; before its first child, what
precedes the container. Where a holder runs no sequence (a forward method
decides), what comes next is unknown: the walks give ``None`` there and stop.
Adapters say which containers run in order (``sequence``); the walk is here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

#: The children a container runs in order, ``(key, native)`` each, or ``None``
#: for a container that runs no sequence.
Order = Callable[[Any], "list[tuple[str, Any]] | None"]


def after(ancestors: Sequence[tuple[Any, str]], sequence: Order) -> Iterator[Any | None]:
    """The layers that run after the one ``ancestors`` lead to (the holders from
    the root, each with the key of the next), nearest first; ``None`` last
    where a holder runs no sequence. Nothing more past the model's output.

    Examples:
        >>> runs = {"root": [("0", "conv"), ("1", "block")], "block": [("0", "relu")]}
        >>> list(after([("root", "0")], runs.get)), list(after([("root", "1"), ("block", "0")], runs.get))
        (['block'], [])
        >>> list(after([("forward", "a")], runs.get))
        [None]
    """
    return _walk(ancestors, sequence, later=True)


def before(ancestors: Sequence[tuple[Any, str]], sequence: Order) -> Iterator[Any | None]:
    """As `after`, for the layers that run before it, nearest first.

    Examples:
        >>> runs = {"root": [("0", "pad"), ("1", "block")], "block": [("0", "conv")]}
        >>> list(before([("root", "1"), ("block", "0")], runs.get))
        ['pad']
    """
    return _walk(ancestors, sequence, later=False)


def in_order(layers: Iterable[Any], sequence: Order) -> Iterator[Any]:
    """``layers``, each container among them that runs a sequence replaced
    by what it runs, in order, at any depth (``None`` passed on).

    Examples:
        >>> runs = {"block": [("0", "relu"), ("1", "conv")]}
        >>> list(in_order(["block", "flatten", None], runs.get))
        ['relu', 'conv', 'flatten', None]
    """
    for layer in layers:
        kids = None if layer is None else sequence(layer)
        if kids is None:
            yield layer
        else:
            yield from in_order((child for _, child in kids), sequence)


def _walk(ancestors: Sequence[tuple[Any, str]], sequence: Order, later: bool) -> Iterator[Any | None]:
    for parent, key in reversed(ancestors):
        kids = sequence(parent)
        keys = [k for k, _ in kids or ()]
        if kids is None or key not in keys:
            yield None
            return
        at = keys.index(key)
        yield from (child for _, child in (kids[at + 1 :] if later else reversed(kids[:at])))
