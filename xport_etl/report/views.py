"""The report views: what each ``sql/reports/*.sql`` file makes in the warehouse, and what every
analyst-facing object says about itself.

A report file is a view, or the body of a table macro (``-- macro: rpt_<name>_at(tz)``) whose view
is the macro at the warehouse's zone (:class:`Report`). Every publish (re)creates them
(:func:`refresh_views`) and gives every table, view, column and macro its comment
(:func:`describe_objects`); the reports, the dashboard and the data dictionary read the same
model. It imports no step of the pipeline (``tests/test_layout.py``): a publish reads it the way
every step reads the stream declarations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xport_etl.resources import sql_objects
from xport_etl.schemas import VIEW_COLUMNS, WAREHOUSE_TABLES
from xport_etl.settings import DEFAULT_REPORT_TZ

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "UNDOCUMENTED",
    "WAREHOUSE_TZ_SQL",
    "Report",
    "current_comments",
    "describe_objects",
    "object_comments",
    "refresh_views",
    "reports",
    "sql_header",
    "sql_string",
]

# The warehouse's reporting time zone as one scalar SQL expression: ``etl_settings.report_tz``,
# else the default. What a zoned report view passes its macro, and what the dashboard reads.
WAREHOUSE_TZ_SQL = (
    f"(select coalesce(max(value) filter (where key = 'report_tz'), '{DEFAULT_REPORT_TZ}') from etl_settings)"
)
_MACRO_LINE = re.compile(r"^--\s*macro:\s*(\w+)\(([^)]*)\)\s*$", re.M)


@dataclass(frozen=True)
class Report:
    """One ``sql/reports/<name>.sql`` file: the view ``name`` and, for a report that buckets months
    in a time zone, the table macro its file is the body of.

    A file with a ``-- macro: <name>_at(tz)`` line is the body of that table macro: it reads its
    argument ``tz``, the zone months are bucketed in, and the view is the macro at the warehouse's
    zone (:data:`WAREHOUSE_TZ_SQL`), so the view and a caller with another zone (the dashboard) run
    the same SQL. Any other file is the view's ``select``."""

    name: str
    body: str
    macro: str | None = None

    def create_macro(self) -> str:
        """The statement that (re)defines this report's table macro."""
        return f"create or replace macro {self.macro}(tz) as table\n{self.body}"

    @property
    def select(self) -> str:
        """The view's query."""
        if self.macro is None:
            return self.body
        return f"select * from {self.macro}({WAREHOUSE_TZ_SQL})"

    @property
    def doc(self) -> str:
        """What the view is: its file's leading comment block (:func:`sql_header`)."""
        return sql_header(self.body)

    @property
    def macro_doc(self) -> str | None:
        """What its table macro is (None without one)."""
        if self.macro is None:
            return None
        return f"{self.doc} Table macro: these columns with months in the time zone tz; the view {self.name} is it at etl_settings.report_tz."


def sql_header(body: str) -> str:
    """The leading ``--`` comment block of a SQL file as one sentence-cased paragraph."""
    lines = []
    for line in body.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    text = " ".join(x for x in lines if x)
    return re.sub(r"(^|\.\s+)([a-z])", lambda m: m[1] + m[2].upper(), text)  # sentence case


def reports() -> list[Report]:
    """The report views (and their macros) of ``sql/reports/``, in name order.

    Raises:
        ValueError: a ``-- macro:`` line declares a parameter other than ``tz``.
    """
    out = []
    for name, body in sql_objects("reports"):
        found = _MACRO_LINE.search(body)
        if found and found[2].strip() != "tz":
            raise ValueError(f"sql/reports/{name}.sql: a report macro takes one argument, tz; got {found[0]!r}")
        out.append(Report(name, body, found[1] if found else None))
    return out


def refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the report macros, then every report view (a view binds its macro). Runs on every
    publish: a report file added or changed reaches the warehouse on its next publish."""
    objects = reports()
    for report in objects:
        if report.macro:
            con.execute(report.create_macro())
    for report in objects:
        con.execute(f"create or replace view {report.name} as\n{report.select}")


UNDOCUMENTED = "(undocumented: add its meaning to VIEW_COLUMNS in xport_etl/schemas.py)"


def object_comments(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str | None], str]:
    """What every analyst-facing object and column says about itself: ``(kind, object, column) →
    comment``, kind ``table``, ``view`` or ``macro`` (column None for the object itself).

    One source with the data dictionary: a table's and its columns' ``doc`` in ``schemas.py``, a
    view's file header (:attr:`Report.doc`) and its columns' meanings in
    :data:`~xport_etl.schemas.VIEW_COLUMNS` (a view column without one says so: ``UNDOCUMENTED``).
    The view columns are read from ``con``, where the views exist."""
    out: dict[tuple[str, str, str | None], str] = {}
    for spec in WAREHOUSE_TABLES:
        out[("table", spec.name, None)] = spec.doc
        for col in spec.columns:
            out[("table", spec.name, col.name)] = col.doc
    for report in reports():
        out[("view", report.name, None)] = report.doc
        meanings = VIEW_COLUMNS.get(report.name, {})
        for (column,) in con.execute(
            "select column_name from duckdb_columns() where table_name = ? and database_name = current_database() "
            "order by column_index",
            [report.name],
        ).fetchall():
            out[("view", report.name, column)] = meanings.get(column, (UNDOCUMENTED, False))[0]
        if report.macro is not None and report.macro_doc:
            out[("macro", report.macro, None)] = report.macro_doc
    return out


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal: what ``COMMENT ON`` needs, since it takes no parameters."""
    return "'" + text.replace("'", "''") + "'"


def current_comments(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str | None], str | None]:
    """The comments ``con``'s database holds now, keyed as :func:`object_comments`."""
    queries = {
        "table": "select 'table', table_name, null, comment from duckdb_tables() where {db}",
        "view": "select 'view', view_name, null, comment from duckdb_views() where {db} and not internal",
        "column": "select case when t.table_name is null then 'view' else 'table' end, c.table_name, "
        "c.column_name, c.comment from duckdb_columns() as c left join duckdb_tables() as t "
        "on t.table_oid = c.table_oid where c.database_name = current_database() and not c.internal",
        "macro": "select distinct 'macro', function_name, null, comment from duckdb_functions() "
        "where {db} and function_type = 'table_macro' and not internal",
    }
    out = {}
    for sql in queries.values():
        for kind, name, column, comment in con.execute(
            sql.replace("{db}", "database_name = current_database()")
        ).fetchall():
            out[(kind, name, column)] = comment
    return out


def describe_objects(con: duckdb.DuckDBPyConnection) -> int:
    """Give every table, view, column and table macro its comment (``COMMENT ON``) from
    :func:`object_comments`, where it differs from what the database holds: BI tools (DBeaver,
    Metabase, Superset, ``duckdb_columns().comment``) show the data dictionary's texts. Runs at
    every publish, after :func:`refresh_views` (a replaced view starts without comments), so a
    warehouse published before the comments gets them on its next publish. Comments are catalog
    entries that DuckDB 1.0 and later read from the ``v1.0.0`` storage format. Returns how many
    comments were written."""
    have = current_comments(con)
    objects = {"table": "table", "view": "view", "macro": "macro table"}
    written = 0
    con.execute("begin")  # one commit for all (a statement's own costs a few ms)
    try:
        for (kind, name, column), text in object_comments(con).items():
            if have.get((kind, name, column)) == text:
                continue
            # names from schemas.py and the sql/reports file stems and macro lines; text quoted
            target = f"column {name}.{column}" if column is not None else f"{objects[kind]} {name}"
            con.execute(f"comment on {target} is {sql_string(text)}")
            written += 1
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return written
