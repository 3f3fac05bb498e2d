"""The data dictionary of the analyst-facing warehouse, generated from the code's own definitions.

Sources, so the dictionary cannot drift from what the pipeline builds:

- tables (``fct_*``, ``etl_runs``, ``etl_rejects``): the :class:`~xport_etl.schemas.TableSpec`
  declarations in ``schemas.py`` (what a row is, key, columns, DuckDB types, meanings, and whether
  a column is part of the ``docs/warehouse.md`` contract or an addition);
- report views (``rpt_*``): the comment header of each ``sql/reports/*.sql`` file (up to its first
  blank line), the table macro a monthly view is built on (its ``-- macro:`` line), and the
  columns and types DuckDB itself gives the views when they are created on an empty warehouse;
  per-column meanings come from :data:`~xport_etl.schemas.VIEW_COLUMNS`;
- status mappings: the mapping dicts the normalisers use.

``xport-etl docs`` (:func:`register` adds the command to the ``xport-etl`` parser) writes
``sql/DATA_DICTIONARY.md`` and ``sql/data_dictionary.html``; ``tests/test_docs.py`` fails when the
committed Markdown differs from what this module generates. The same texts are the warehouse's own
comments (``COMMENT ON``, :func:`xport_etl.report.views.describe_objects`), which BI tools show.
"""

from __future__ import annotations

import argparse
import html
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from xport_etl.fsutil import write_atomic
from xport_etl.load.migrate import ensure_schema, set_settings
from xport_etl.normalize.alibaba_orders import ALIBABA_ORDER_STATUS
from xport_etl.normalize.refunds import ALIBABA_REFUND_STATUS
from xport_etl.normalize.taobao_orders import TAOBAO_ORDER_STATUS
from xport_etl.normalize.values import TAOBAO_REFUND_STATUS
from xport_etl.report.views import UNDOCUMENTED, refresh_views, reports
from xport_etl.resources import SQL_DIR
from xport_etl.schemas import (
    ETL_CHECK_RESULTS,
    ETL_REJECTS,
    ETL_RUNS,
    ETL_SETTINGS,
    VIEW_COLUMNS,
    WAREHOUSE_TABLES,
    TableSpec,
)
from xport_etl.settings import DEFAULT_REPORT_TZ

FORMATS = ("md", "html")
FILES = {"md": "DATA_DICTIONARY.md", "html": "data_dictionary.html"}
REGENERATE = "xport-etl docs"


ORDER_STATUSES = ("created", "awaiting_payment", "paid", "shipped", "completed", "cancelled", "other")
REFUND_STATUSES = ("none", "applied", "agreed", "waiting_return", "succeeded", "refused", "closed")

CONVENTIONS = (
    "Ids (`order_id`, `line_id`, `tracking_number`, …) are `VARCHAR`, even where the API sends numbers.",
    "Money is `DECIMAL(18,2)` in the row's `currency`; 1688 amounts served in fen are converted to yuan.",
    "Every timestamp is a `TIMESTAMP` holding **UTC** (no zone attached); the API's China Standard "
    "Time strings are converted. Local time: `timezone('Asia/Shanghai', timezone('UTC', created_at))`.",
    "`platform` is `'taobao'` or `'1688'`.",
    "Report months are calendar months in the reporting time zone (`etl_settings.report_tz`, set from "
    f"`XPORT_REPORT_TZ`, default `{DEFAULT_REPORT_TZ}`); `month` is the first day of the month as a `DATE`. "
    "Each monthly view is a table macro at that zone: `rpt_spend_monthly_at('UTC')` gives the same "
    "columns with months in UTC (any zone name DuckDB knows).",
    "Fact rows are the latest known state: per key, the version with the greatest `updated_at` "
    "(parcels: `last_event_at`) wins, whatever order the data arrived in.",
    "**contract** columns are named in `docs/warehouse.md`: never renamed or dropped without a migration "
    "note. **addition** columns are extra (allowed by the contract) and may change.",
)


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    type: str
    doc: str
    public: bool


@dataclass(frozen=True)
class ObjectDoc:
    """One analyst-facing table or view."""

    name: str
    kind: str  # "table" or "view"
    doc: str
    key: tuple[str, ...]
    columns: tuple[ColumnDoc, ...]
    source: str
    macro: str | None = None  # a view's table macro, taking the time zone


@dataclass(frozen=True)
class Section:
    title: str
    anchor: str
    objects: tuple[ObjectDoc, ...]


# ---- the model: what the dictionary says, independent of the format


def table_doc(spec: TableSpec) -> ObjectDoc:
    cols = tuple(ColumnDoc(c.name, c.duckdb_type, c.doc, c.public) for c in spec.columns)
    return ObjectDoc(spec.name, "table", spec.doc, spec.key, cols, "xport_etl/schemas.py")


def view_columns(report_tz: str = DEFAULT_REPORT_TZ) -> dict[str, list[tuple[str, str]]]:
    """``view → [(column, DuckDB type)]``, from the views created on an empty in-memory warehouse."""
    con = duckdb.connect()
    try:
        ensure_schema(con)
        set_settings(con, {"report_tz": report_tz})
        refresh_views(con)
        return {
            report.name: [(c[0], c[1]) for c in con.execute(f"describe {report.name}").fetchall()]
            for report in reports()
        }
    finally:
        con.close()


def view_docs() -> list[ObjectDoc]:
    described = view_columns()
    out = []
    for report in reports():
        meanings = VIEW_COLUMNS.get(report.name, {})
        cols = tuple(
            ColumnDoc(col, typ, *meanings.get(col, (UNDOCUMENTED, False))) for col, typ in described[report.name]
        )
        out.append(ObjectDoc(report.name, "view", report.doc, (), cols, f"sql/reports/{report.name}.sql", report.macro))
    return out


def sections() -> list[Section]:
    tables = {spec.name: table_doc(spec) for spec in WAREHOUSE_TABLES}
    meta = (ETL_RUNS.name, ETL_REJECTS.name, ETL_CHECK_RESULTS.name, ETL_SETTINGS.name)
    facts = tuple(t for name, t in tables.items() if name not in meta)
    return [
        Section("Facts", "facts", facts),
        Section("Reports (views)", "reports", tuple(view_docs())),
        Section("Load metadata", "load-metadata", tuple(tables[n] for n in meta)),
    ]


def _fmt_code(value) -> str:
    return "null" if value is None else str(value)


def status_tables() -> list[tuple[str, str, list[str], list[list[str]]]]:
    """``(title, note, header, rows)`` for each status mapping, from the normalisers' dicts."""

    def grouped(unified: tuple[str, ...], *maps: dict) -> list[list[str]]:
        known = list(unified) + sorted({v for m in maps for v in m.values()} - set(unified))
        rows = []
        for value in known:
            cells = [", ".join(f"`{_fmt_code(k)}`" for k, v in m.items() if v == value) or "—" for m in maps]
            rows.append([f"`{value}`", *cells])
        return rows

    return [
        (
            "Order status",
            "`fct_orders.status` (unified) from `fct_orders.platform_status` (the platform's "
            "code as text). A code not listed here maps to `other`.",
            ["status", "Taobao codes", "1688 statuses"],
            grouped(ORDER_STATUSES, TAOBAO_ORDER_STATUS, ALIBABA_ORDER_STATUS),
        ),
        (
            "Refund status",
            "`fct_order_lines.refund_status` (raw: `platform_refund_status`) and "
            "`fct_refunds.status` (raw: `platform_status`). For 1688 the same mapping applies to an "
            "item's `refundStatus` and a refund's `status`. A Taobao line without a refund status is "
            "`none`; a code not listed here maps to null.",
            ["status", "Taobao codes", "1688 statuses"],
            grouped(REFUND_STATUSES, TAOBAO_REFUND_STATUS, ALIBABA_REFUND_STATUS),
        ),
    ]


# ---- Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out


def _key_text(obj: ObjectDoc) -> str:
    if obj.kind == "view":
        return ""
    return ", ".join(f"`{k}`" for k in obj.key) if obj.key else "none (rows are replaced per endpoint and window)"


def _macro_text(obj: ObjectDoc) -> str:
    return (
        f"Table macro `{obj.macro}(tz)`: these columns with months in the time zone `tz`, e.g. "
        f"`select * from {obj.macro}('UTC')`; the view is the macro at `etl_settings.report_tz`."
    )


def build_markdown() -> str:
    secs = sections()
    out = [
        "# xport-etl data dictionary",
        "",
        f"Generated by `{REGENERATE}` from `xport_etl/schemas.py`, `sql/reports/*.sql` and the "
        "normalisers' status mappings. Do not edit by hand: change the source and regenerate. "
        "The contract itself is `docs/warehouse.md`.",
        "",
        "## Contents",
        "",
        "- [Conventions](#conventions)",
    ]
    for sec in secs:
        out.append(f"- [{sec.title}](#{sec.anchor}): " + ", ".join(f"[`{o.name}`](#{o.name})" for o in sec.objects))
    out += ["- [Status mappings](#status-mappings)", "", "## Conventions", ""]
    out += [f"- {c}" for c in CONVENTIONS]
    for sec in secs:
        out += ["", f"## {sec.title}"]
        for obj in sec.objects:
            out += ["", f"### `{obj.name}`", "", obj.doc, ""]
            meta = [f"{obj.kind.capitalize()}; source `{obj.source}`."]
            if obj.kind == "table":
                meta.append(f"Key: {_key_text(obj)}.")
            if obj.macro:
                meta.append(_macro_text(obj))
            out += [" ".join(meta), ""]
            out += _md_table(
                ["column", "type", "contract", "meaning"],
                [[f"`{c.name}`", c.type, "contract" if c.public else "addition", c.doc] for c in obj.columns],
            )
    out += ["", "## Status mappings"]
    for title, note, header, rows in status_tables():
        out += ["", f"### {title}", "", note, ""]
        out += _md_table(header, rows)
    return "\n".join(out) + "\n"


# ---- HTML

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 70rem; margin: 2rem auto; padding: 0 1rem; }
h1 { border-bottom: 2px solid #345; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
h3 { margin-top: 2rem; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f3f4f6;
       padding: 0 .25rem; border-radius: 3px; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
tr:nth-child(even) td { background: #fafafa; }
td.type { white-space: nowrap; font-family: ui-monospace, monospace; font-size: 13px; }
span.contract { color: #175; font-weight: 600; }
span.addition { color: #777; }
nav { background: #f7f8fa; border: 1px solid #e3e6ea; padding: .5rem 1rem; border-radius: 4px; }
p.meta { color: #555; font-size: 14px; }
"""


def _inline(text: str) -> str:
    """Escape, then render Markdown's `code` and **bold** as HTML."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def _html_table(header: list[str], rows: list[list[str]], classes: tuple[str, ...] = ()) -> list[str]:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
            cells.append(f"<td{cls}>{cell}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return out


def build_html() -> str:
    secs = sections()
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<title>xport-etl data dictionary</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<h1>xport-etl data dictionary</h1>",
        "<p>"
        + _inline(
            f"Generated by `{REGENERATE}` from `xport_etl/schemas.py`, `sql/reports/*.sql` and "
            "the normalisers' status mappings. Do not edit by hand: change the source and "
            "regenerate. The contract itself is `docs/warehouse.md`."
        )
        + "</p>",
        "<nav><strong>Contents</strong><ul>",
        '<li><a href="#conventions">Conventions</a></li>',
    ]
    for sec in secs:
        links = ", ".join(f'<a href="#{o.name}"><code>{o.name}</code></a>' for o in sec.objects)
        out.append(f'<li><a href="#{sec.anchor}">{html.escape(sec.title)}</a>: {links}</li>')
    out += [
        '<li><a href="#status-mappings">Status mappings</a></li>',
        "</ul></nav>",
        '<h2 id="conventions">Conventions</h2>',
        "<ul>",
    ]
    out += [f"<li>{_inline(c)}</li>" for c in CONVENTIONS]
    out.append("</ul>")
    for sec in secs:
        out.append(f'<h2 id="{sec.anchor}">{html.escape(sec.title)}</h2>')
        for obj in sec.objects:
            out += [f'<h3 id="{obj.name}"><code>{obj.name}</code></h3>', f"<p>{_inline(obj.doc)}</p>"]
            meta = f"{obj.kind.capitalize()}; source <code>{html.escape(obj.source)}</code>."
            if obj.kind == "table":
                meta += f" Key: {_inline(_key_text(obj))}."
            if obj.macro:
                meta += f" {_inline(_macro_text(obj))}"
            out.append(f'<p class="meta">{meta}</p>')
            rows = [
                [
                    f"<code>{c.name}</code>",
                    html.escape(c.type),
                    '<span class="contract">contract</span>' if c.public else '<span class="addition">addition</span>',
                    _inline(c.doc),
                ]
                for c in obj.columns
            ]
            out += _html_table(["column", "type", "contract", "meaning"], rows, ("", "type", "", ""))
    out.append('<h2 id="status-mappings">Status mappings</h2>')
    for title, note, header, rows in status_tables():
        out += [f"<h3>{html.escape(title)}</h3>", f"<p>{_inline(note)}</p>"]
        out += _html_table(header, [[_inline(c) for c in row] for row in rows])
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def build_dictionary(fmt: str = "md") -> str:
    """The data dictionary as Markdown (``"md"``) or one self-contained HTML page (``"html"``)."""
    if fmt == "md":
        return build_markdown()
    if fmt == "html":
        return build_html()
    raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def write_dictionary(out_dir: Path = SQL_DIR, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write ``DATA_DICTIONARY.md`` and/or ``data_dictionary.html`` into ``out_dir``; their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out_dir / FILES[fmt]
        path.write_text(build_dictionary(fmt), encoding="utf-8")
        written.append(path)
    return written


# ---- command line

EXAMPLE = """examples:
  xport-etl docs                          regenerate sql/DATA_DICTIONARY.md and sql/data_dictionary.html
  xport-etl docs --out /tmp/dict --format html
  xport-etl docs --format md              regenerate sql/DATA_DICTIONARY.md only
"""


SUFFIXES = {".md": "md", ".html": "html"}


def cmd_docs(args) -> int:
    """``--out`` ending in ``.md`` or ``.html`` is the file to write (in that format); any other
    ``--out`` is a directory to write ``DATA_DICTIONARY.md`` and/or ``data_dictionary.html`` into."""
    from xport_etl.errors import ConfigError

    out = Path(args.out) if args.out else SQL_DIR
    fmt = SUFFIXES.get(out.suffix.lower())
    if fmt is not None and not out.is_dir():
        if args.format not in ("both", fmt):
            raise ConfigError(
                f"--out {out} is a {fmt} file but --format is {args.format}: give a .{args.format} file or a directory"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, build_dictionary(fmt), mode=None)
        print(out)
        return 0
    if out.suffix and not out.is_dir():
        raise ConfigError(f"--out {out}: give a directory, or a file ending in .md or .html")
    formats = FORMATS if args.format == "both" else (args.format,)
    for path in write_dictionary(out, formats):
        print(path)
    return 0


_DESCRIPTION = (
    "Generate the data dictionary of the warehouse (every fct_*/rpt_*/etl_* object, its "
    "columns, types and meanings, and the status mappings) from the schema definitions "
    "and report SQL. No warehouse or API needed."
)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``docs`` command to the ``xport-etl`` sub-parser set; it sets ``func``."""
    p = subparsers.add_parser(
        "docs",
        help="generate the data dictionary (Markdown and HTML)",
        description=_DESCRIPTION,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out",
        metavar="PATH",
        help="a file ending in .md or .html (that format alone), or a directory to write "
        f"DATA_DICTIONARY.md and/or data_dictionary.html into (default: {SQL_DIR})",
    )
    p.add_argument(
        "--format",
        choices=(*FORMATS, "both"),
        default="both",
        help="md = DATA_DICTIONARY.md, html = data_dictionary.html (default: both)",
    )
    p.set_defaults(func=cmd_docs, command="docs")
    return p
