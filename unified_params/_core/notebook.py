"""How views and reports show in a notebook (``_repr_html_``): the same text
on every backend, as small HTML tables.

- a `Module`: the summary as a table (canonical shapes, counts, shared
  layers marked) and its totals;
- a `Param`: path, canonical shape, dtype, kind, a preview of the first
  values, and a sparkline histogram of all of them;
- a `LoadReport` or `PortReport`: what was loaded, matched, converted, and
  what went wrong, each list in a row of its own.

Everything is escaped; nothing here imports a notebook package.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import NotBuiltError

#: Eight heights of a sparkline bar.
BARS = "▁▂▃▄▅▆▇█"
#: Values shown in a preview.
PREVIEW = 6
_STYLE = "border-collapse:collapse;font-family:monospace;font-size:12px"
_CELL = "padding:1px 8px;text-align:left;vertical-align:top"


def module_html(module: Any) -> str:
    """A module view as an HTML table (`unified_params.summary`'s rows); a
    layer not built yet shows as ``not built``, and the totals say how to
    build it (a notebook displays a view without raising).

    Examples:
        >>> "<table" in module_html(m) and "Linear" in module_html(m)
        True
    """
    from .summary import rows, totals

    listed, foot_lines = rows(module), totals(module)
    body = []
    for label, type_name, shapes, count, shared in listed:
        style = ' style="color:#888"' if shared else ""
        cells = [label.replace(" ", "&nbsp;"), html.escape(type_name), html.escape(shapes), count]
        body.append(f"<tr{style}>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>")
    head = "".join(f'<th style="{_CELL}">{h}</th>' for h in ("path", "class", "parameters", "count"))
    foot = "<br>".join(html.escape(line) for line in foot_lines.splitlines())
    return (
        f'<table style="{_STYLE}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        f'<div style="font-family:monospace;font-size:12px">{foot}</div>'
    )


def param_html(param: Any) -> str:
    """A parameter view: what it is, its first values and a histogram of all.

    A parameter sharded over processes shows this process's block (no
    communication).

    Examples:
        >>> "(8, 4)" in param_html(m["0.weight"])
        True
    """
    sharded = param.sharding() is not None
    try:
        values = param.local() if sharded else param.numpy()
    except NotBuiltError:  # a shape and no values (torch's meta device, paddle.LazyGuard, ...)
        values = None
    what = "Param" if param.kind == "param" else "Buffer"
    facts = [
        f"<b>{what}</b> {html.escape(repr(param.path))}",
        f"shape {param.shape}",
        param.dtype,
        param.backend,
    ]
    if sharded:
        facts.append(f"this process's block {param.local_shape} of {param.placements}")
    rows = [("", " · ".join(html.escape(f) if i else f for i, f in enumerate(facts)))]
    if values is None:
        rows.append(("values", "none yet"))
    elif values.size:
        flat = values.reshape(-1)
        shown = ", ".join(f"{float(v):.4g}" for v in flat[:PREVIEW]) + (", …" if flat.size > PREVIEW else "")
        rows.append(("values", html.escape(f"[{shown}]")))
        if values.dtype.kind in "fiu" and flat.size > 1:
            low, high = float(flat.min()), float(flat.max())
            rows.append(("range", html.escape(f"{low:.4g} … {high:.4g}, mean {float(flat.mean()):.4g}")))
            rows.append(("histogram", sparkline(flat)))
    return _table(rows)


def sparkline(values: np.ndarray, bins: int = 16) -> str:
    """A histogram of ``values`` as a line of block characters.

    Examples:
        >>> sparkline(np.array([0.0, 0.0, 0.0, 1.0]), bins=2)
        '█▃'
    """
    counts, _ = np.histogram(np.asarray(values, dtype=np.float64), bins=bins)
    top = counts.max() or 1
    return "".join(BARS[min(len(BARS) - 1, round(c / top * (len(BARS) - 1)))] for c in counts)


def report_html(report: Any) -> str:
    """A `LoadReport` or `PortReport` as a table of its non-empty fields.

    Examples:
        >>> from unified_params._core.state import LoadReport
        >>> "missing" in report_html(LoadReport(loaded=["w"], missing=["b"]))
        True
    """
    rows: list[tuple[str, str]] = []
    ok = getattr(report, "ok", None)
    title = type(report).__name__ + ("" if ok is None else (" · ok" if ok else " · <b>not ok</b>"))
    rows.append(("", title))
    for name, value in vars(report).items():
        if value is None or value == [] or name == "load":
            continue
        rows.append((name, _listing(value)))
    inner = getattr(report, "load", None)
    if inner is not None:
        rows.append(("load", report_html(inner)))
    return _table(rows)


def _listing(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        items = [_item(v) for v in value]
        shown = items[:12] + ([f"… and {len(items) - 12} more"] if len(items) > 12 else [])
        return f"{len(items)}: " + ", ".join(shown) if len(items) > 3 else "<br>".join(shown)
    return html.escape(str(value))


def _item(value: Any) -> str:
    if isinstance(value, tuple):
        return html.escape(" → ".join(str(v) for v in value))
    return html.escape(str(value))


def _table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(
        f'<tr><th style="{_CELL}">{html.escape(k)}</th><td style="{_CELL}">{v}</td></tr>' for k, v in rows
    )
    return f'<table style="{_STYLE}">{body}</table>'
