"""Tables for the command line: rich when installed, aligned text otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], out: Any) -> None:
    """Print a table with a title.

    Examples:
        >>> import io
        >>> buffer = io.StringIO()
        >>> table("t", ["a", "b"], [[1, 2]], buffer)
        >>> "a" in buffer.getvalue() and "2" in buffer.getvalue()
        True
    """
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _plain(title, columns, rows, out)
        return
    grid = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*[str(cell) for cell in row])
    Console(file=out, width=160, soft_wrap=False).print(grid)


def _plain(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], out: Any) -> None:
    cells = [[str(c) for c in columns]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    print(title, file=out)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
