"""Reports: the ``rpt_*`` views of the published warehouse, rendered as a table, CSV or JSON."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rich.cells import cell_len

from xport_etl.cliutil import pipeline_settings
from xport_etl.errors import UsageError
from xport_etl.layout import Where
from xport_etl.load.connect import connect_reader
from xport_etl.resources import sql_objects
from xport_etl.schemas import VIEW_COLUMNS

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
        raise UsageError(f"unknown report {name!r}; choose one of: {choices}")
    return views[name]


# `xport-etl report`'s filters: option → the column it compares. An option applies to the reports
# that have its column (their columns are VIEW_COLUMNS'); --start and --end bound `month`, the
# first day of a report month: months in [start, end)
FILTER_COLUMNS: dict[str, str] = {
    "platform": "platform",
    "start": "month",
    "end": "month",
    "currency": "currency",
    "carrier": "carrier",
    "channel": "order_source",
}


def report_filters(view: str) -> list[str]:
    """The filter options that apply to ``view``: those whose column it has."""
    columns = VIEW_COLUMNS.get(view, {})
    return [option for option, column in FILTER_COLUMNS.items() if column in columns]


def filter_clause(view: str, filters: Mapping[str, Any]) -> tuple[str, list]:
    """``(" where …", parameters)`` for the given filters (None values are not filtering), each
    value a parameter: only column names from :data:`FILTER_COLUMNS` reach the SQL text.

    Raises:
        UsageError: an option that does not apply to the report, naming those that do, or an
            empty period.
    """
    from xport_etl.cliutil import UsageError

    given = {k: v for k, v in filters.items() if v is not None}
    unknown = sorted(set(given) - set(FILTER_COLUMNS))
    if unknown:
        raise ValueError(f"unknown report filter(s): {', '.join(unknown)}")
    applies = report_filters(view)
    short = view.removeprefix("rpt_").removesuffix("_monthly")
    for option in given:
        if option not in applies:
            takes = ", ".join(f"--{o}" for o in applies) or "no filter"
            raise UsageError(f"--{option} does not apply to the report {short} ({view}); it takes {takes}")
    if given.get("start") and given.get("end") and given["start"] >= given["end"]:
        raise UsageError(f"--start {given['start']:%Y-%m} must be before --end {given['end']:%Y-%m}: [start, end)")
    ops = {"start": ">=", "end": "<"}
    conditions = [f"{FILTER_COLUMNS[o]} {ops.get(o, '=')} ?" for o in given]
    return (" where " + " and ".join(conditions) if conditions else ""), list(given.values())


def parse_month(text: str) -> date:
    """``2026-01`` → 2026-01-01; a full date ``2026-01-15`` is kept as given."""
    try:
        if len(text) == 7:
            return date.fromisoformat(text + "-01")
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a month or date: {text!r} (use 2026-01 or 2026-01-01)") from None


def query_report(data_dir: Where, name: str, filters: Mapping[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a report, read from the published warehouse (read-only), with
    ``filters`` (:func:`filter_clause`) applied as bound parameters."""
    view = resolve(name)  # only names from the sql/ folder ever reach the query text
    where, params = filter_clause(view, filters or {})
    con = connect_reader(data_dir)
    try:
        cur = con.execute(f"select * from {view}{where}", params)
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


def table_width() -> int | None:
    """How wide a table may be: the terminal's width when printing to one (or ``COLUMNS``, when
    set); piped to a file or a pager, None: as wide as the table needs (a report is read whole
    there)."""
    from xport_etl.settings import terminal_columns

    if sys.stdout.isatty() or terminal_columns():
        return shutil.get_terminal_size((120, 24)).columns
    return None


# what a terminal would act on instead of showing: C0/C1 controls (an escape sequence can rewrite
# the screen), line and paragraph separators, and the bidirectional overrides that reorder text
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(value) -> str:
    """A value as a table cell shows it: the text CSV holds (:func:`plain`; None is empty), with
    every control character escaped (``\\n``, ``\\x1b``, ``\\u202e``) so that a value is always
    one line and can never move the cursor, change colours or reorder what is printed after it."""
    text = "" if value is None else str(plain(value))
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match) -> str:
    char = match[0]
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def format_rows(title: str, columns: list[str], rows: list[tuple], fmt: str = "table", width: int | None = None) -> str:
    """Rows as a table, CSV (no blank record at the end: printing adds the last line break) or a
    JSON array.

    A table never cuts, folds or wraps a value: every cell is the value's text whole (control
    characters escaped, see :func:`shown`), numbers right-aligned. When the table is wider than
    ``width`` (default :func:`table_width`: the terminal's, or unlimited when piped) the rows are
    shown one block per row instead, a ``column  value`` line for each value, and a last line says
    so and that ``--format csv`` prints one line per row (:func:`format_blocks`). A value wider
    than the terminal is still printed whole on its line (the terminal wraps it; copying it keeps
    it whole).
    """
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
    limit = table_width() if width is None else width
    heading = _wrap([*title.split(" "), *(["(no rows)"] if not rows else [])], limit)
    names = [shown(c) for c in columns]
    cells = [[shown(v) for v in r] for r in rows]
    encoding = sys.stdout.encoding or "utf-8"
    if _box() is _ASCII_BOX:  # escaped here, so that the widths are those printed
        names = [n.encode(encoding, "backslashreplace").decode(encoding) for n in names]
        cells = [[c.encode(encoding, "backslashreplace").decode(encoding) for c in r] for r in cells]
    widths = [max([cell_len(n), *(cell_len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    needed = sum(w + 3 for w in widths) + 1
    if limit is not None and needed > limit:
        return "\n".join([*heading, *format_blocks(names, cells, needed=needed, width=limit)])
    right = [_numeric(rows, i) for i in range(len(columns))]
    return "\n".join([*heading, *_table_lines(names, cells, widths, right)])


_UNICODE_BOX = "┏━┳┓┃┡╇┩│└─┴┘"
_ASCII_BOX = "+=++|+++|+-++"


def _box() -> str:
    """The table's border characters: box drawing, or ASCII where stdout cannot encode them (a
    latin-1 terminal, ``PYTHONIOENCODING=ascii``)."""
    try:
        _UNICODE_BOX.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return _ASCII_BOX
    return _UNICODE_BOX


def _table_lines(names: list[str], cells: list[list[str]], widths: list[int], right: list[bool]) -> list[str]:
    """A table with every cell whole (its width the widest value's), numbers right-aligned."""
    tl, heavy, t_cross, tr, head_bar, ml, m_cross, mr, bar, bl, light, b_cross, br = tuple(_box())

    def line(values: list[str], bar: str) -> str:
        parts = []
        for value, w, r in zip(values, widths, right, strict=True):
            fill = " " * (w - cell_len(value))
            parts.append(f" {fill}{value} " if r else f" {value}{fill} ")
        return bar + bar.join(parts) + bar

    def rule(left: str, cross: str, end: str, fill: str) -> str:
        return left + cross.join(fill * (w + 2) for w in widths) + end

    return [
        rule(tl, t_cross, tr, heavy),
        line(names, head_bar),
        rule(ml, m_cross, mr, heavy),
        *(line(r, bar) for r in cells),
        rule(bl, b_cross, br, light),
    ]


def wrap_words(text: str, width: int | None = None) -> str:
    """A line of prose for the terminal: broken between words to fit ``width`` (default
    :func:`table_width`), never inside one (a name or an id stays whole)."""
    return "\n".join(_wrap(text.split(" "), table_width() if width is None else width))


def _wrap(pieces: list[str], width: int | None, indent: str = "") -> list[str]:
    """``pieces`` joined by spaces into lines of at most ``width`` cells, never splitting a piece
    (a piece wider than ``width`` gets a line of its own)."""
    lines: list[str] = []
    for piece in pieces:
        if lines and (width is None or cell_len(lines[-1]) + 1 + cell_len(piece) <= width):
            lines[-1] += " " + piece
        else:
            lines.append((indent if lines else "") + piece)
    return lines


def format_blocks(names: list[str], cells: list[list[str]], *, needed: int, width: int) -> list[str]:
    """The lines of rows too wide for the terminal, one block per row: a ``column  value`` line
    for each value, every value whole (one that does not fit beside its column name goes on the
    next line; one wider than the terminal on a line of its own, which the terminal wraps), then
    a note that says why and points at ``--format csv``. ``names`` and ``cells`` are as shown
    (:func:`shown`)."""
    if not cells:  # the columns still say what the report would hold
        return _wrap(["columns:", *(f"{n}," for n in names[:-1]), *names[-1:]], width, "  ")
    pad = max(cell_len(n) for n in names)
    rule = _box()[10] * 2
    lines = []
    for i, row in enumerate(cells, start=1):
        lines.append(f"{rule} row {i:,} of {len(cells):,} {rule}")
        for name, value in zip(names, row, strict=True):
            label = name + " " * (pad - cell_len(name))
            if pad + 2 + cell_len(value) <= width:
                lines.append(f"{label}  {value}".rstrip())
            else:
                lines += [name, f"  {value}" if 2 + cell_len(value) <= width else value]
    note = (
        f"(one block per row: as a table this needs {needed} columns and the terminal has {width};"
        " --format\0csv prints one line per row)"
    )
    return lines + _wrap([piece.replace("\0", " ") for piece in note.split(" ")], width)


def render_report(settings, name: str, fmt: str = "table", filters: Mapping[str, Any] | None = None) -> str:
    """A report as text, from the published warehouse of ``settings`` (this host's copy of the
    newest version under a storage URL), filtered by ``filters`` (:func:`filter_clause`)."""
    columns, rows = query_report(settings.layout, name, filters)
    return format_rows(resolve(name), columns, rows, fmt)


# ---- the command


def cmd_report(args) -> int:
    filters = {option: getattr(args, option) for option in FILTER_COLUMNS}
    print(render_report(pipeline_settings(args), args.name, args.format, filters))
    return 0


def _report_names() -> tuple[str, ...]:
    """The short report names (``spend``); ``report`` also takes a view's own name."""
    return tuple(sorted(name for name in report_views() if not name.startswith("rpt_")))


def register(subparsers: argparse._SubParsersAction, parents: Sequence[argparse.ArgumentParser] = ()):
    """Add the ``report`` command to the ``xport-etl`` sub-parser set (``parents``: the pipeline
    commands' shared flags); it sets ``func``."""
    p = subparsers.add_parser(
        "report",
        parents=list(parents),
        help="print a report",
        description="Print a report view from the published warehouse.\nexample: xport-etl report spend --format csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # a metavar, not choices: the view's own name (rpt_spend_monthly) works too, and an unknown
    # name is the one-line "unknown report" error of render_report
    p.add_argument(
        "name",
        metavar="{" + ",".join(_report_names()) + "}",
        help="report name, e.g. spend (= rpt_spend_monthly; a view's own name works too)",
    )
    p.add_argument("--format", default="table", choices=("table", "csv", "json"), help="output format (default table)")
    f = p.add_argument_group(
        "filters", "each applies to the reports with its column; another report refuses it, naming those it takes"
    )
    f.add_argument("--platform", choices=("taobao", "1688"), help="one platform's rows")
    f.add_argument("--start", type=parse_month, metavar="MONTH", help="monthly reports: first month, e.g. 2026-01")
    f.add_argument(
        "--end", type=parse_month, metavar="MONTH", help="monthly reports: the month after the last, e.g. 2026-07"
    )
    f.add_argument("--currency", metavar="CODE", help="one currency's rows, e.g. CNY")
    f.add_argument("--carrier", metavar="NAME", help="one carrier's rows (carrier_performance, stuck_orders)")
    f.add_argument("--channel", metavar="NAME", help="one sales channel's rows (spend_by_channel), e.g. lazada")
    p.set_defaults(func=cmd_report)

    return p
