"""``up.initialize``: rules, seeded streams, and a transactional write.

The rules:

- each parameter (kind ``"param"``; buffers are statistics, never initialised)
  takes the **first** rule whose selector matches; unmatched ones are untouched;
- with ``seed``, values are drawn in numpy in the canonical layout from one
  independent stream per parameter, keyed by its canonical path from the root
  (the first path of a tied parameter). The same spec and seed therefore give
  bitwise identical values on every backend, and re-initialising a subset gives
  those parameters the values a full initialisation gave them. Keying by path
  rather than by position keeps streams aligned where a backend has a
  parameter fewer (Keras keeps one LSTM bias where torch keeps two);
- nothing is written until every planned parameter has been checked, and
  values from custom (user) initializers have been drawn and validated.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from typing import Any, cast

import numpy as np

from .errors import InitError, NotBuiltError, PathError, ShapeError, UnsupportedError, at_path, received
from .initializers import Initializer, Law, as_initializer
from .parallel import run_all
from .selectors import compile_selector
from .sharding import Sharding, fill_box, group_of
from .view import Module, Param

#: Elements drawn from one stream; fixed, so values never depend on threads.
CHUNK = 1 << 20


def run(
    model: Module, init_or_rules: Any, *, where: Any = None, seed: int | None = None, strict: bool = False
) -> dict[str, str]:
    """Initialise a wrapped model by rules; see ``unified_params.initialize``."""
    rules = _parse_rules(init_or_rules)
    explicit = isinstance(init_or_rules, (dict, list, tuple))
    restrict = compile_selector(where, base=model.path)
    keyed = [(k, p) for k, p in model.params().items() if p.kind == "param" and restrict(p)]
    if where is not None and not keyed:
        _unmatched(
            f"where={where!r} matched no parameter of {model.type_name} ({model.backend}), so nothing "
            "is initialised. Expected a selector that matches a parameter (see model.params()). "
            + received(where=where),
            strict,
            stacklevel=4,
        )
    key_of = {id(p): k for k, p in keyed}
    params = [p for _, p in keyed]
    keys = _stream_keys(model)
    plan: list[tuple[Param, Initializer, Initializer]] = []
    used = [False] * len(rules)
    for param in params:
        for k, (_, match, init) in enumerate(rules):
            if match(param):
                used[k] = True
                plan.append((param, init, init.resolve(param)))
                break
    if explicit or strict:
        _report_unused(rules, used, strict, model)
    for param, _, chosen in plan:
        _checked(chosen, param)
    if seed is None:
        seed = int(cast(int, np.random.SeedSequence().entropy))
        group = group_of(p for p, _, _ in plan)
        if group is not None:  # one seed for every process: replicas must agree
            seed = int(group.broadcast(seed))
    else:
        seed = _valid_seed(seed)
    # Values of user code are drawn and validated before the first write.
    # Values that are not element-wise laws (user code, orthogonal, ...) are drawn
    # and validated before the first write; laws were range-checked above.
    drawn = {
        id(p): _validated(chosen, p, _sample(chosen, p, seed, keys[id(p.native)]))
        for p, _, chosen in plan
        if not chosen.elementwise
    }
    done: dict[str, str] = {}
    for param, init, chosen in plan:
        value = drawn.pop(id(param), None)
        sharding = param.sharding()
        if value is not None:
            param.set(value, layout="canonical")  # a sharded parameter takes its block
        elif sharding is not None and param.layout.is_identity:
            param.set_local(_local_values(chosen, param, seed, keys[id(param.native)], sharding), sharding)
        elif sharding is not None or not _fill_native(chosen, param, seed, keys[id(param.native)]):
            param.set(generate(chosen, param, seed, keys[id(param.native)]), layout="canonical")
        done[key_of[id(param)]] = repr(init) if chosen is init else f"{init!r} -> {chosen!r}"
    return done


def generate(init: Initializer, param: Param, seed: int, key: tuple[int, ...]) -> np.ndarray:
    """The values of one parameter, in canonical layout and the parameter's dtype."""
    shape = param.shape
    if not init.elementwise:
        value = _sample(init, param, seed, key)
    else:
        value = np.empty(shape, dtype=np.float64 if param.dtype == "float64" else np.float32)
        _fill_chunks(init.law(param), value.reshape(-1), seed, key)
    return value if value.dtype.name == param.dtype else value.astype(_np_dtype(param.dtype))


def _local_values(
    init: Initializer, param: Param, seed: int, key: tuple[int, ...], sharding: Sharding
) -> np.ndarray:
    """The block of a sharded parameter that this process holds, bitwise the
    values `generate` gives there: only the stream chunks over the block are drawn."""
    law = init.law(param)
    block = np.empty(sharding.local_shape, dtype=np.float64 if param.dtype == "float64" else np.float32)

    def draw(chunk: int, out: np.ndarray) -> None:
        law.fill(out, _rng(seed, *key, chunk))

    fill_box(block, param.shape, sharding.box, CHUNK, draw)
    return block if block.dtype.name == param.dtype else block.astype(_np_dtype(param.dtype))


def _fill_native(init: Initializer, param: Param, seed: int, key: tuple[int, ...]) -> bool:
    """Draw an element-wise law straight into the variable's memory, when its
    native layout is canonical and the framework offers a writable view."""
    if not init.elementwise or not param.layout.is_identity or param.dtype not in ("float32", "float64"):
        return False
    law = init.law(param)

    def fill(buffer: np.ndarray) -> None:
        _fill_chunks(law, buffer.reshape(-1), seed, key)

    try:
        return param.adapter.fill_in_place(param.native, fill)
    except NotBuiltError as err:  # a variable with a shape and no values (torch's meta device)
        raise at_path(param.path, err) from None


def _fill_chunks(law: Law, flat: np.ndarray, seed: int, key: tuple[int, ...]) -> None:
    """Fill ``flat`` chunk by chunk, one stream per chunk, in parallel when large."""
    n = flat.size

    def fill(chunk: int) -> None:
        law.fill(flat[chunk * CHUNK : (chunk + 1) * CHUNK], _rng(seed, *key, chunk))

    run_all(fill, range(max(1, -(-n // CHUNK))))


def _sample(init: Initializer, param: Param, seed: int, key: tuple[int, ...]) -> Any:
    return init.sample(param.shape, _rng(seed, *key), param)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence(seed, spawn_key=key)))


def _np_dtype(name: str) -> np.dtype:
    from .values import numpy_dtype

    return numpy_dtype(name)


def stream_key(path: str) -> tuple[int, ...]:
    """The stream key of a canonical path: four 32-bit words of its BLAKE2 hash.

    Examples:
        >>> stream_key("0.weight") == stream_key("0.weight") != stream_key("0.bias")
        True
    """
    digest = hashlib.blake2b(path.encode(), digest_size=16).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def _stream_keys(model: Module) -> dict[int, tuple[int, ...]]:
    """Each parameter's stream key, from its first path in the root model."""
    return {id(p.native): stream_key(path) for path, p in model.root.params().items()}


def _parse_rules(init_or_rules: Any) -> list[tuple[Any, Any, Initializer]]:
    if isinstance(init_or_rules, dict):
        pairs: Iterable[Any] = init_or_rules.items()
    elif isinstance(init_or_rules, (list, tuple)):
        pairs = init_or_rules
    else:
        pairs = [(None, init_or_rules)]
    rules = []
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise UnsupportedError(
                "Cannot read this rule. Expected a dict {selector: initializer} or a list of "
                "(selector, initializer) pairs. " + received(rule=pair)
            )
        selector, init = pair
        rules.append((selector, compile_selector(selector), as_initializer(init)))
    return rules


def _report_unused(rules: list[Any], used: list[bool], strict: bool, model: Module) -> None:
    for (selector, _, init), hit in zip(rules, used, strict=True):
        if hit:
            continue
        _unmatched(
            f"The rule {selector!r} -> {init!r} matched no parameter (earlier rules may have "
            f"taken them). Expected a selector that matches a parameter of {model.type_name}. "
            + received(selector=selector),
            strict,
            stacklevel=5,
        )


def _unmatched(message: str, strict: bool, stacklevel: int) -> None:
    """A selection that matched nothing: a warning (shown at the user's call),
    or with ``strict`` an error."""
    if strict:
        raise PathError(message)
    warnings.warn(message, UserWarning, stacklevel=stacklevel)


def _checked(init: Initializer, param: Param) -> None:
    try:
        init.check(param)
    except InitError:
        raise
    except Exception as err:  # a custom check failing its own way
        raise InitError(f"{init!r} cannot initialise {param.path!r}: {err}") from err
    if init.elementwise and param.dtype in ("float16", "bfloat16", "float32", "float64"):
        bound = init.law(param).bound()
        largest = float(np.finfo(_np_dtype(param.dtype) if param.dtype != "bfloat16" else np.float32).max)
        if param.dtype == "bfloat16":
            largest = 3.3895313892515355e38
        if not bound <= largest:
            raise InitError(
                f"{init!r} would draw values up to about {bound:.3g} for {param.path!r}, beyond "
                f"{param.dtype}'s largest {largest:.3g}: they would be written as infinity. Expected "
                f"parameters that fit {param.dtype}. " + received(path=param.path, dtype=param.dtype)
            )


def _validated(init: Initializer, param: Param, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as err:
        raise InitError(f"{init!r} returned a value numpy cannot read for {param.path!r}: {err}") from None
    if array.dtype.kind not in "biuf":
        raise InitError(
            f"{init!r} returned a {array.dtype} value for {param.path!r}. Expected numbers. "
            + received(dtype=str(array.dtype))
        )
    if array.shape != param.shape:
        raise ShapeError(
            f"{init!r} returned shape {array.shape} for {param.path!r}. Expected its canonical "
            f"shape {param.shape}. " + received(shape=array.shape)
        )
    if not np.isfinite(array).all():
        raise InitError(
            f"{init!r} returned non-finite values (nan or inf) for {param.path!r}. Expected finite "
            "numbers. " + received(nonfinite=int((~np.isfinite(array)).sum()))
        )
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(_np_dtype(param.dtype))
    if cast.dtype.kind == "f" and not np.isfinite(cast).all():
        raise InitError(
            f"{init!r} returned values too large for {param.dtype} for {param.path!r}: they would be "
            f"written as infinity. Expected values within {param.dtype}'s range. "
            + received(largest=float(np.abs(array).max()))
        )
    return cast


def _valid_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InitError("Invalid seed. Expected a non-negative integer or None. " + received(seed=seed))
    return int(seed)
