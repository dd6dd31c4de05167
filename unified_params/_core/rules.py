"""Rules that rename layer paths: a port's ``mapping`` (source layers to
destination layers) and a load's (a checkpoint's layers to the model's).

A mapping is exact pairs (``{"fc": "classifier.1"}``) or ordered rules
(``[(pattern, replacement), ...]``): regular expressions over whole layer
paths, the first that matches giving the new path (``\\1`` or ``\\g<name>``
for its groups), a replacement ``None`` leaving the layer out.

Examples:
    >>> rules = [(r"layer(\\d)\\.(\\d)\\.conv(\\d)", r"stage\\1.block\\2.conv\\3"), (r"aux.*", None)]
    >>> rename("layer1.0.conv2", compile_rules(rules))
    (0, 'stage1.block0.conv2')
    >>> rename("aux1.fc", compile_rules(rules))
    (1, None)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

from .errors import PortError, received

#: A rule: a pattern over layer paths and the path it gives (None: left out).
Rule: TypeAlias = tuple[str, str | None]
Compiled: TypeAlias = list[tuple[re.Pattern[str], str | None]]
#: What ``mapping`` may be: exact pairs, or ordered rules.
LayerMapping: TypeAlias = Mapping[str, str] | Sequence[Rule]


def compile_rules(
    rules: Sequence[Any], what: str = "mapping", error: type[Exception] = PortError
) -> Compiled:
    """Regular expressions of ``(pattern, replacement)`` rules, checked.

    Raises:
        PortError: A rule is no pair of strings, or its pattern does not
            compile (``error`` instead, where given).
    """
    out: Compiled = []
    for k, rule in enumerate(rules):
        ok = isinstance(rule, (tuple, list)) and len(rule) == 2 and isinstance(rule[0], str)
        if not ok or not (rule[1] is None or isinstance(rule[1], str)):
            raise error(
                f"{what} rule {k} must be a (pattern, replacement) pair of strings (replacement None: "
                f"leave the layer out). " + received(rule=rule)
            )
        try:
            out.append((re.compile(rule[0]), rule[1]))
        except re.error as err:
            raise error(f"{what} rule {k} is no regular expression: {err}. " + received(rule=rule)) from None
    return out


def rename(path: str, rules: Compiled, error: type[Exception] = PortError) -> tuple[int, str | None] | None:
    """The first rule that matches the whole ``path``, and what it makes of it;
    ``None`` when no rule matches."""
    for k, (pattern, replacement) in enumerate(rules):
        match = pattern.fullmatch(path)
        if match is not None:
            if replacement is None:
                return k, None
            try:
                return k, match.expand(replacement)
            except (re.error, IndexError) as err:
                raise error(
                    f"mapping rule {k} cannot rename {path!r}: {err}. "
                    + received(rule=(pattern.pattern, replacement))
                ) from None
    return None


class Renaming:
    """A load's ``mapping``: renames a state's keys (``layer.path.leaf``) by
    their layer, the key without its last name (``""`` for a key of the top
    layer, ``"cls_token"``). Keys of layers the mapping does not name keep
    their names; a rule's replacement ``None`` leaves a layer's keys out.

    Raises:
        PortError: A rule is malformed (``error`` instead, where given).

    Examples:
        >>> rules = [(r"transformer\\.h\\.(\\d+)", r"blocks.\\1"), (r"aux", None)]
        >>> Renaming(rules).keys(["transformer.h.0.weight", "aux.bias", "head.weight"])
        {'transformer.h.0.weight': 'blocks.0.weight', 'aux.bias': None}
        >>> Renaming({"fc": "classifier.1"}).layer("fc"), Renaming({"fc": "classifier.1"}).layer("head")
        ('classifier.1', 'head')
        >>> Renaming([(r"(.*)", r"model.\\1")]).keys(["cls_token", "blocks.0.weight"])
        {'cls_token': 'model.cls_token', 'blocks.0.weight': 'model.blocks.0.weight'}
    """

    def __init__(self, mapping: LayerMapping, error: type[Exception] = PortError) -> None:
        self._error = error
        if isinstance(mapping, Mapping):  # exact paths: each a rule that matches it alone
            pairs = [(str(k), v) for k, v in mapping.items()]
            self._rules: Compiled = [(re.compile(re.escape(k)), v.replace("\\", "\\\\")) for k, v in pairs]
        elif isinstance(mapping, (list, tuple)):
            self._rules = compile_rules(mapping, error=error)
        else:
            raise error(
                "mapping must be a dict of layer paths or a list of (pattern, replacement) rules. "
                + received(mapping=type(mapping).__name__)
            )

    def layer(self, path: str) -> str | None:
        """The new path of a layer (itself where no rule matches; ``None``: left out)."""
        found = rename(path, self._rules, self._error)
        return path if found is None else found[1]

    def keys(self, keys: Iterable[str]) -> dict[str, str | None]:
        """Each of ``keys`` that the mapping renames -> its new key (``None``: left out).

        Raises:
            PortError: Two keys would take one name (``error`` instead, where given).
        """
        keys = list(keys)
        out: dict[str, str | None] = {}
        for key in keys:
            layer, _, leaf = key.rpartition(".")
            new = self.layer(layer)
            if new != layer:  # a prefix added to the top layer "" ends in a dot: not doubled
                out[key] = None if new is None else f"{new.rstrip('.')}.{leaf}" if new.rstrip(".") else leaf
        taken: dict[str, list[str]] = {}
        for key in keys:
            name = out.get(key, key)
            if name is not None:
                taken.setdefault(name, []).append(key)
        twice = [(name, old) for name, old in taken.items() if len(old) > 1]
        if twice:
            said = "; ".join(f"{' and '.join(map(repr, old))} -> {name!r}" for name, old in twice[:4])
            raise self._error(
                f"The mapping gives two keys one name: {said}. Expected each key renamed to a name of "
                "its own (a rule's replacement None leaves a layer out). " + received(keys=len(twice))
            )
        return out
