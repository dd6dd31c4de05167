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

#: Panel colours: values blue, gradients orange (with a "grad" tag), so the two never look alike.
VALUE_COLOR, GRAD_COLOR = "#4c72b0", "#dd8452"
#: At most this many panels a row when one model is drawn.
COLUMNS = 5


def histograms(model: Any, where: Any = None, grads: bool = False, bins: int = 40) -> Any:
    """A figure with one histogram per parameter (canonical values, or gradients).

    The figure says what it shows: a title naming the model, its backend and
    whether values or gradients are drawn; each panel the parameter's path,
    canonical shape, mean and standard deviation, with labelled axes.
    Gradient panels are orange and tagged ``grad``. A one-element parameter
    is shown as its value, not as a lone bar.

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
        >>> fig.get_suptitle()
        'Parameter values of Linear (torch)'
        >>> [ax.get_title().splitlines()[0] for ax in fig.axes]
        ['weight (2, 4)', 'bias (2,)']
    """
    view = wrap(model)
    return _draw({"": view}, where, grads, bins, f"{view.type_name} ({view.backend})")


def compare(models: Mapping[str, Any], where: Any = None, grads: bool = False, bins: int = 40) -> Any:
    """One row of histograms per model, for side-by-side views of several backends.

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> models = {"a": torch.nn.Linear(2, 2), "b": torch.nn.Linear(2, 2)}
        >>> fig = up.plot.compare(models)
        >>> len(fig.axes), fig.get_suptitle()
        (4, 'Parameter values of a, b, one row each')
    """
    views = {label: wrap(model) for label, model in models.items()}
    return _draw(views, where, grads, bins, f"{', '.join(views)}, one row each")


def _draw(views: Mapping[str, Any], where: Any, grads: bool, bins: int, subject: str) -> Any:
    figure_class = _figure_class()
    rows = {label: _series(view, where, grads) for label, view in views.items()}
    if len(rows) == 1:  # one model: wrap its histograms into a grid
        ((label, series),) = rows.items()
        columns = min(COLUMNS, max(1, len(series)))
        grid = [series[i : i + columns] for i in range(0, len(series), columns)] or [[]]
        labels = [label] * len(grid)
    else:
        columns = max((len(series) for series in rows.values()), default=1) or 1
        grid, labels = list(rows.values()), list(rows)
    fig = figure_class(figsize=(2.9 * columns, 2.5 * len(grid) + 0.6), layout="constrained")
    what = "Gradients" if grads else "Parameter values"
    fig.suptitle(f"{what} of {subject}", fontsize=12)
    color = GRAD_COLOR if grads else VALUE_COLOR
    for r, (label, series) in enumerate(zip(labels, grid, strict=True)):
        for c, (path, shape, values) in enumerate(series):
            ax = fig.add_subplot(len(grid), columns, r * columns + c + 1)
            _panel(ax, f"{label + ': ' if label else ''}{path} {shape}", values, bins, color, grads)
    return fig


def _panel(ax: Any, name: str, values: np.ndarray, bins: int, color: str, grads: bool) -> None:
    """One parameter: a histogram (or, for one element, its value), titled and labelled."""
    flat = values.ravel().astype("float64")
    tag = "grad " if grads else ""
    ax.tick_params(labelsize=7)
    ax.set_xlabel("gradient" if grads else "value", fontsize=8)
    if flat.size == 1:
        ax.set_title(f"{tag}{name}", fontsize=9, color=color if grads else "black")
        ax.text(
            0.5,
            0.5,
            f"{flat[0]:.4g}",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=14,
            color=color,
        )
        ax.set_ylabel("one element", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    from matplotlib.ticker import MaxNLocator

    ax.hist(flat, bins=min(bins, max(4, 2 * int(np.sqrt(flat.size)))), color=color)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts are whole numbers
    ax.set_title(
        f"{tag}{name}\nmean {flat.mean():.3g}, std {flat.std():.3g}",
        fontsize=9,
        color=color if grads else "black",
    )
    ax.set_ylabel("count", fontsize=8)


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
