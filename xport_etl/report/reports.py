"""Reports: the ``rpt_*`` views of the published warehouse, rendered as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from xport_etl.load.publish import connect_reader, sql_objects

FORMATS = ("table", "csv", "json")


def report_views() -> dict[str, str]:
    """Short report name → view name: ``spend`` → ``rpt_spend_monthly`` (the view's own name works too)."""
    names = {}
    for view, _ in sql_objects("reports"):
        short = view.removeprefix("rpt_").removesuffix("_monthly")
        names[short] = view
        names[view] = view
    return names


def resolve(name: str) -> str:
    views = report_views()
    if name not in views:
        choices = ", ".join(sorted(k for k in views if not k.startswith("rpt_")))
        raise KeyError(f"unknown report {name!r}; choose one of: {choices}")
    return views[name]


def query_report(data_dir: Path, name: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a report, read from the published warehouse (read-only)."""
    view = resolve(name)  # only names from the sql/ folder ever reach the query text
    con = connect_reader(data_dir)
    try:
        cur = con.execute(f"select * from {view}")
        columns = [d[0] for d in cur.description]
        return columns, cur.fetchall()
    finally:
        con.close()


def plain(value):
    """A value as JSON and CSV show it: exact decimals as text, times in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


_plain = plain


def _numeric(rows: list[tuple], i: int) -> bool:
    values = [r[i] for r in rows if r[i] is not None]
    return bool(values) and all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values)


def table_width() -> int:
    """How wide a table may be: the terminal's width when printing to one (or ``COLUMNS``);
    piped to a file or a pager, as wide as the table needs (a report is read whole there)."""
    from xport_etl.settings import terminal_columns

    if sys.stdout.isatty() or terminal_columns():
        return shutil.get_terminal_size((120, 24)).columns
    return 1000


def format_rows(title: str, columns: list[str], rows: list[tuple], fmt: str = "table", width: int | None = None) -> str:
    """Rows as a table (numbers right-aligned, as wide as ``width``, default :func:`table_width`),
    CSV (no blank record at the end: printing adds the last line break) or a JSON array."""
    if fmt == "json":
        return json.dumps(
            [{c: _plain(v) for c, v in zip(columns, r, strict=True)} for r in rows], ensure_ascii=False, indent=2
        )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in r] for r in rows])
        return buf.getvalue().removesuffix("\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        # a wide text column folds onto more lines; numbers never do
        table.add_column(
            col, justify="right" if _numeric(rows, i) else "left", no_wrap=_numeric(rows, i), overflow="fold"
        )
    for r in rows:
        table.add_row(*("" if v is None else str(_plain(v)) for v in r))
    console = Console(record=True, width=width or table_width(), file=io.StringIO())
    console.print(table)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def render_report(settings, name: str, fmt: str = "table") -> str:
    """A report as text, from the warehouse under ``settings.data_dir``."""
    columns, rows = query_report(settings.data_dir, name)
    return format_rows(resolve(name), columns, rows, fmt)
