"""Assertions for tests of models in any framework, like ``numpy.testing``.

Every helper takes native models of any backend (or views) and compares them
in the canonical layout, so one test reads the same for a torch, Keras,
paddle or Flax NNX model. A failure raises ``AssertionError`` whose message
lists the first differing paths and the largest differences.

Examples:
    >>> import torch
    >>> import unified_params as up
    >>> from unified_params.testing import assert_same_params
    >>> a, b = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    >>> _ = up.port(a, b)
    >>> assert_same_params(a, b)

Also here: `unified_params.testing.strategies` (Hypothesis strategies of
random architectures and their inputs) and the pytest plugin
(`unified_params.testing.plugin`, loaded by pytest when the package is
installed: the ``backend`` and ``build`` fixtures, ``--up-backends``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._core.outputs import blind_spot, zeros_like_input

__all__ = ["assert_roundtrip", "assert_same_outputs", "assert_same_params", "assert_ties"]

#: How many differing paths a message lists.
SHOWN = 5


def assert_same_params(
    a: Any, b: Any, *, rtol: float = 1e-7, atol: float = 0.0, check_dtype: bool = True
) -> None:
    """Assert that two models hold the same canonical state: the same paths, and
    at each the same canonical shape, dtype and values (within ``atol + rtol *
    |a|``, ``numpy.allclose``'s rule). Buffers (running statistics) count.

    The models may be of different backends: what is compared is each one's
    canonical state (`unified_params.state_dict`), where a Keras LSTM's single
    bias stands as ``bias_ih = bias, bias_hh = 0``; two recurrent models that
    split their biases differently compare equal by their outputs
    (`assert_same_outputs`), not here.

    Raises:
        AssertionError: Listing missing and unexpected paths, shapes and
            dtypes that differ (a kernel with the other's shape reversed is
            named as transposed), and the paths whose values differ most.

    Examples:
        >>> import torch
        >>> a = torch.nn.Linear(3, 2)
        >>> assert_same_params(a, a)
    """
    import unified_params as up

    mine, theirs = up.state_dict(a), up.state_dict(b)
    lines: list[str] = []
    missing = [k for k in mine if k not in theirs]
    extra = [k for k in theirs if k not in mine]
    if missing:
        lines.append(f"paths only in the first model: {_listed(missing)}")
    if extra:
        lines.append(f"paths only in the second model: {_listed(extra)}")
    values: list[tuple[float, str, str]] = []
    for path in (k for k in mine if k in theirs):
        x, y = mine[path], theirs[path]
        if x.shape != y.shape:
            hint = "; the second is the first transposed" if _transposed(x, y) else ""
            lines.append(f"{path}: shape {x.shape} vs {y.shape}{hint}")
            continue
        if check_dtype and x.dtype != y.dtype:
            lines.append(f"{path}: dtype {x.dtype} vs {y.dtype}")
        same, worst, where = _compare(x, y, rtol, atol)
        if not same:
            hint = " (the second holds the first transposed)" if _transposed(x, y) else ""
            values.append((worst, path, f"{path}: max |difference| {worst:.3g} at {where}{hint}"))
    if values:
        values.sort(key=lambda v: -v[0])
        lines.append(f"values differ at {len(values)} of {len(mine)} paths, largest first:")
        lines += ["  " + text for _, _, text in values[:SHOWN]]
    if lines:
        raise AssertionError(f"The parameters differ (rtol={rtol:g}, atol={atol:g}):\n" + "\n".join(lines))


def assert_same_outputs(
    a: Any, b: Any, x: Any, *, rtol: float = 1e-5, atol: float = 1e-6, training: bool = False
) -> None:
    """Assert that two models give the same output for ``x`` (canonical:
    images channels first, on every backend), within ``atol + rtol * |a(x)|``.

    A comparison that any model would pass proves nothing, so it fails too:
    when every output of ``a`` is within ``atol`` of zero, or (in inference
    mode) its output for ``x`` is within the tolerance of its output for an
    all-zero input (the output does not depend on ``x``, as at random weights
    whose features fade).

    Raises:
        AssertionError: The shapes, the largest difference and where it is;
            or why the comparison cannot tell the models apart.

    Examples:
        >>> import torch
        >>> a = torch.nn.Linear(3, 2)
        >>> assert_same_outputs(a, a, np.ones((4, 3), "float32"))
    """
    import unified_params as up

    ya = _outputs_agree(a, b, x, training=training, rtol=rtol, atol=atol)
    # In training mode another forward pass would move `a`'s running statistics again.
    without_input = None if training else (lambda: up.forward(a, zeros_like_input(x)))
    blind = blind_spot(ya, without_input, atol=atol, rtol=rtol)
    if blind:
        raise AssertionError(
            f"The comparison cannot tell the models apart: on the first model, {blind}. Use an input "
            f"that moves the outputs by more than atol={atol:g} + rtol={rtol:g} x |first| (random "
            "values, not zeros), weights whose outputs depend on it, or a smaller atol."
        )


def _outputs_agree(a: Any, b: Any, x: Any, *, training: bool, rtol: float, atol: float) -> np.ndarray:
    """``a``'s output for ``x``, after asserting that ``b``'s is the same."""
    import unified_params as up

    ya = np.asarray(up.forward(a, x, training=training))
    yb = np.asarray(up.forward(b, x, training=training))
    if ya.shape != yb.shape:
        raise AssertionError(f"The outputs differ in shape: {ya.shape} vs {yb.shape}.")
    same, worst, where = _compare(ya, yb, rtol, atol)
    if not same:
        raise AssertionError(
            f"The outputs differ: max |difference| {worst:.3g} at {where} (shape {ya.shape}; "
            f"allowed atol={atol:g} + rtol={rtol:g} x |first|; largest |first| {np.abs(ya).max():.3g})."
        )
    return ya


def assert_roundtrip(
    model: Any,
    via: Sequence[str] = ("file", "state_dict"),
    *,
    spec: Any = None,
    x: Any = None,
    rtol: float = 1e-6,
    atol: float = 1e-6,
) -> None:
    """Assert that the model's weights survive each way out and back in.

    For each way in ``via``, a fresh model of the same architecture (built
    from ``spec`` if given, else a copy of ``model``), first scrambled, takes
    the weights back, and must then equal ``model`` (`assert_same_params`, and
    the same outputs on ``x`` if given; the parameters were compared already,
    so outputs that could not tell two models apart, all near zero at random
    weights, fail nothing here, unlike in `assert_same_outputs`):

    - ``"file"``: `unified_params.save`, then `unified_params.load`;
    - ``"state_dict"``: `unified_params.state_dict`, then `unified_params.load_state_dict`;
    - ``"port:<backend>"`` (``"port:keras"``): `unified_params.port` into
      ``spec`` built on that backend, and back (needs ``spec``).

    Raises:
        AssertionError: Naming the way that failed, and what differs.

    Examples:
        >>> import unified_params as up
        >>> net = up.spec.Sequential(up.spec.Linear(3, 2))
        >>> assert_roundtrip(net.build("torch"), via=("file", "state_dict"), spec=net)
    """
    import unified_params as up

    view = up.wrap(model)

    def fresh() -> Any:
        other = spec.build(view.backend) if spec is not None else view.adapter.copy_layer(view.native)
        up.initialize(other, up.init.Normal(0.0, 3.0), seed=12345)  # nothing left of the original
        return other

    for way in via:
        back = fresh()
        try:
            if way == "file":
                with tempfile.TemporaryDirectory() as folder:
                    up.save(view, Path(folder) / "roundtrip.safetensors")
                    up.load(back, Path(folder) / "roundtrip.safetensors")
            elif way == "state_dict":
                up.load_state_dict(back, up.state_dict(view))
            elif way.startswith("port:"):
                if spec is None:
                    raise ValueError(f"{way!r} builds the other model from a spec: pass spec=")
                twin = spec.build(way.removeprefix("port:"))
                up.port(view, twin)
                up.port(twin, back)
            else:
                raise ValueError(f"Unknown way {way!r}. Expected 'file', 'state_dict' or 'port:<backend>'.")
            assert_same_params(view, back, rtol=rtol, atol=atol)
            if x is not None:
                _outputs_agree(view, back, x, training=False, rtol=rtol, atol=atol)
        except AssertionError as err:
            raise AssertionError(f"Round trip via {way!r} changed the model:\n{err}") from None


def assert_ties(model: Any, groups: Iterable[Sequence[str]], *, exact: bool = False) -> None:
    """Assert that each group of paths reaches one shared variable (or layer:
    a path of a layer stands for all its parameters).

    With ``exact``, the model may have no other tie group.

    Raises:
        AssertionError: The paths of a group that are not tied, or (with
            ``exact``) the tie groups that were not listed.

    Examples:
        >>> import torch
        >>> shared = torch.nn.Linear(3, 3)
        >>> assert_ties(torch.nn.Sequential(shared, shared), [("0.weight", "1.weight")])
    """
    import unified_params as up

    view = up.wrap(model)
    lines = []
    listed: set[frozenset[str]] = set()
    for group in groups:
        group = list(group)
        for path in group:
            if path not in view:
                lines.append(f"{path!r} is no path of the model")
        found = [p for p in group if p in view]
        if len(found) < 2:
            continue
        first = view[found[0]]
        for other in found[1:]:
            if not _same(first, view[other]):
                lines.append(f"{found[0]!r} and {other!r} are not tied")
        listed.add(frozenset(p for path in found for p in _parameter_paths(view, path)))
    if exact:
        for tied in up.ties(view):
            if not any(set(tied) <= group for group in listed):
                lines.append(f"an unlisted tie group: {list(tied)}")
    if lines:
        raise AssertionError("The ties differ:\n" + "\n".join(lines[: 2 * SHOWN]))


def _parameter_paths(view: Any, path: str) -> list[str]:
    """The parameter paths a path stands for: itself, or a layer's parameters."""
    node = view[path]
    if not hasattr(node, "params"):
        return [path]
    return [f"{path}.{key}" for key in node.params()]


def _same(a: Any, b: Any) -> bool:
    """Whether two views (layers or parameters) are one native object."""
    return a.native is b.native


def _compare(x: np.ndarray, y: np.ndarray, rtol: float, atol: float) -> tuple[bool, float, tuple[int, ...]]:
    """Whether ``y`` is within ``atol + rtol * |x|`` of ``x`` everywhere, the
    largest difference, and its index."""
    if x.size == 0:
        return True, 0.0, ()
    xf, yf = x.astype(np.float64), y.astype(np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(xf - yf)
    nan_same = np.isnan(xf) & np.isnan(yf)
    diff = np.where(nan_same, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)
    ok = bool(np.all(diff <= atol + rtol * np.abs(np.where(nan_same, 0.0, xf))))
    at = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return ok, float(diff[at]), tuple(int(i) for i in at)


def _transposed(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether ``y`` is ``x`` with its axes reversed (a native kernel given as canonical)."""
    if x.ndim < 2 or x.shape[::-1] != y.shape:
        return False
    return bool(np.array_equal(np.transpose(x), y))


def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:SHOWN])
    return shown + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")
