"""Histograms of parameter values or gradients: the "visualisation" use of access.

matplotlib is an optional extra (``pip install 'unified-params[plot]'``); this
module imports it only when a figure is drawn, and draws on a
``matplotlib.figure.Figure`` without pyplot, so no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._core.errors import BackendNotInstalledError, UnsupportedError, received
from .access import wrap


def histograms(model: Any, where: Any = None, grads: bool = False, bins: int = 40) -> Any:
    """A figure with one histogram per parameter (canonical values, or gradients).

    Args:
        model: A native model or a view.
        where: A selector restricting the parameters (see ``up.where``).
        grads: Plot ``p.grad`` instead of the values (run ``up.gradients`` first).
        bins: Histogram bins.

    Returns:
        A ``matplotlib.figure.Figure``; save it with ``fig.savefig("params.png")``.

    Raises:
        UnsupportedError: ``grads=True`` before any gradient exists.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> fig = up.plot.histograms(torch.nn.Linear(4, 2))
        >>> [ax.get_title() for ax in fig.axes]
        ['weight (2, 4)', 'bias (2,)']
    """
    return compare({"": model}, where=where, grads=grads, bins=bins)


def compare(models: Mapping[str, Any], where: Any = None, grads: bool = False, bins: int = 40) -> Any:
    """One row of histograms per model, for side-by-side views of several backends.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> fig = up.plot.compare({"a": torch.nn.Linear(2, 2), "b": torch.nn.Linear(2, 2)})
        >>> len(fig.axes)
        4
    """
    figure_class = _figure_class()
    rows = {label: _series(wrap(model), where, grads) for label, model in models.items()}
    columns = max((len(series) for series in rows.values()), default=1) or 1
    if len(rows) == 1:  # one model: wrap its histograms into a grid
        ((label, series),) = rows.items()
        columns = min(4, max(1, len(series)))
        grid = [series[i : i + columns] for i in range(0, len(series), columns)] or [[]]
        labels = [label] * len(grid)
    else:
        grid, labels = list(rows.values()), list(rows)
    fig = figure_class(figsize=(3.2 * columns, 2.4 * len(grid)), layout="constrained")
    for r, (label, series) in enumerate(zip(labels, grid, strict=True)):
        for c, (path, shape, values) in enumerate(series):
            ax = fig.add_subplot(len(grid), columns, r * columns + c + 1)
            ax.hist(values.ravel().astype("float64"), bins=bins, color="#4c72b0")
            ax.set_title(f"{label + ': ' if label else ''}{path} {shape}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.text(0.02, 0.95, f"mean {values.mean():.3g}\nstd {values.std():.3g}", transform=ax.transAxes,
                    fontsize=6, va="top")  # fmt: skip
    return fig


def _series(model: Any, where: Any, grads: bool) -> list[tuple[str, tuple[int, ...], np.ndarray]]:
    out = []
    for path, p in model.params(where).items():
        if p.kind != "param":
            continue
        if grads:
            grad = p.grad
            if grad is None:
                raise UnsupportedError(
                    f"{path!r} has no gradient yet. Expected a backward pass first: up.gradients(model, x). "
                    + received(path=path, grads=True)
                )
            out.append((path, p.shape, grad))  # canonical, as p.grad always is
        else:
            out.append((path, p.shape, p.numpy()))
    return out


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise BackendNotInstalledError(
            "Plots need matplotlib. Expected it installed: pip install 'unified-params[plot]'. "
            + received(missing="matplotlib")
        ) from err
    return Figure
