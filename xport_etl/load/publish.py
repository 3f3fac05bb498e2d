"""Parquet batches → the published DuckDB warehouse, atomically, once per run.

Publishing: readers (analysts, BI tools) only ever open ``warehouse.duckdb`` read-only, and no
writer ever opens that file. A run builds its **next state** (:class:`NextState`): a copy of the
published file under ``state/next/``, into which each of the run's loads merges its batches (the
list endpoints first, then the fan-outs, whose keys are read from this next state, not from the
published one). At the end of the run the next state is checked and ``os.replace``-d over the
published file, once: a reader sees the state before the run or the state after it, never orders
whose parcels belong to another run. If another writer published in the meantime, the run's
batches are merged again onto that newer state before the swap (the merge rule below makes the
result independent of the order), so nothing another writer published is lost.

An error check above its threshold blocks the publish; a warn check is recorded and the state
published (see :mod:`xport_etl.load.checks`); every check's outcome goes to the check ledger and
``etl_check_results``. A publish runs an error check with no threshold only where the run changed a
table the check reads; the rest of the state passed it, which ``etl_settings`` records per check
text (a new or edited check runs on the next publish). Warn and thresholded checks always run in
full (their count is the whole state's), and a publish without batches (the reports DAG's refresh)
or a rebuild runs every check. A reader that opened the old file keeps reading the old, complete
state until it reconnects; a new connection sees the new state; nobody ever sees half a load or a
lock error. A failure anywhere before the rename leaves the published file exactly as it was. One
publisher at a time is enforced with an exclusive file lock; one run's loads into its next state
are serialised by a lock of their own.

Merge rule (latest state wins, never arrival order): per key, the version with the greatest
version column wins (``updated_at``; for parcels ``last_event_at``; null is older than any time);
on a tie, the later extraction wins. A parent's children (an order's lines, a parcel's events)
are replaced by the children from the winning version's batch.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from xport_etl.errors import ConfigError, NotFoundError, XportError
from xport_etl.faults import crashpoint
from xport_etl.fsutil import fsync_dir, write_atomic
from xport_etl.layout import DataLayout, Where
from xport_etl.load.checks import (
    SAMPLE_ROWS,
    CheckResult,
    append_check_results,
    apply_overrides,
    failure_message,
    grade,
    jsonable,
    parse_check,
    read_check_results,
)
from xport_etl.load.staging import Batch
from xport_etl.resources import SQL_DIR  # the checkout's sql/, or the wheel's copy
from xport_etl.schemas import (
    ETL_CHECK_RESULTS,
    ETL_REJECTS,
    ETL_RUNS,
    FCT_PARCELS,
    STAGED_TABLES,
    VIEW_COLUMNS,
    WAREHOUSE_TABLES,
    StagedTable,
)
from xport_etl.settings import DEFAULT_REPORT_TZ, DEFAULT_WAREHOUSE_STORAGE_VERSION

log = logging.getLogger(__name__)


class CheckFailedError(XportError):
    """An error check found more violations than its threshold: the load is not published.

    ``results`` holds every check's outcome of the attempt. Not permanent: the next try checks
    again, after a callbacks refresh may have published what the check missed, or an operator
    set ``XPORT_CHECK_OVERRIDES``."""

    exit_code = 4
    hint = (
        "the published warehouse is unchanged; see sql/checks/ for what each check means "
        "and docs/data-checks.md for XPORT_CHECK_OVERRIDES"
    )

    def __init__(self, message: str, results: Sequence[CheckResult] = ()):
        super().__init__(message)
        self.results = list(results)


@dataclass
class LoadResult:
    warehouse: str
    batches: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    rejects: int = 0


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing); waits for the holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def writer_lock(data_dir: Where):
    """Exclusive lock: one publisher swaps a next state in at a time (waits for others)."""
    return _file_lock(DataLayout.of(data_dir).warehouse_lock)


# DuckDB's memory limit for publishing when ``Settings.load_memory`` (XPORT_LOAD_MEMORY) is unset:
# with the merge in groups of MERGE_ROWS a 1M-order load fits in it (see bench/NOTES.md)
LOAD_MEMORY = "192MB"


def connect_writer(path: Path, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """The publishing connection. ``memory_limit`` bounds DuckDB's memory (a merge larger than it
    spills to a temp directory beside the file; one that cannot spill raises, and :func:`publish`
    retries it once without the limit); None leaves DuckDB's default (80% of RAM)."""
    config: dict = {"preserve_insertion_order": False}
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(str(path), config=config)
    # Parquet times are UTC instants; the warehouse stores them as naive UTC TIMESTAMPs
    con.execute("set TimeZone = 'UTC'")
    return con


def create_state_file(path: Path, storage_version: str, published: Path | None = None) -> bool:
    """Create the DuckDB file ``path`` in ``storage_version``: empty, or holding what ``published``
    holds (tables, views, macros).

    The warehouse is written in one DuckDB storage version (``Settings.warehouse_storage_version``,
    default :data:`~xport_etl.settings.DEFAULT_WAREHOUSE_STORAGE_VERSION`, which DuckDB 1.0 and
    later can open). A new file gets it when created (DuckDB's ``storage_compatibility_version``),
    and a file keeps the version it was created in from then on, whoever opens it. So a published
    file already in that version is copied byte for byte (what every publish does), and one in
    another version (written before this setting existed, by ``latest``, or by a newer DuckDB) is
    copied over by DuckDB (``COPY FROM DATABASE``) into the new file: the one-off migration, on the
    next publish, of an existing warehouse.

    Returns:
        True when ``published`` was migrated from another storage version.

    Raises:
        ConfigError: this DuckDB does not know ``storage_version``.
        WarehouseError: ``published`` is not a readable DuckDB database.
    """
    try:
        con = duckdb.connect(
            ":memory:",
            config={
                "storage_compatibility_version": storage_version,
                "preserve_insertion_order": False,
                # a rewrite that spills does so beside the new file, as the publishing connection
                # does (an in-memory database would spill under the working directory)
                "temp_directory": f"{path}.tmp",
            },
        )
    except duckdb.InvalidInputException:
        raise ConfigError(
            f"XPORT_WAREHOUSE_STORAGE_VERSION: DuckDB {duckdb.__version__} knows no storage version "
            f"{storage_version!r}; use a DuckDB release such as {DEFAULT_WAREHOUSE_STORAGE_VERSION} or latest"
        ) from None
    try:
        con.execute("attach ? as next", [str(path)])
        if published is None:
            return False
        try:
            con.execute("attach ? as published (read_only)", [str(published)])
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open the warehouse {published}: {str(exc).splitlines()[0]}") from exc
        versions = dict(
            con.execute(
                "select database_name, tags['storage_version'] from duckdb_databases() "
                "where database_name in ('next', 'published')"
            ).fetchall()
        )
        migrate = versions["next"] != versions["published"]
        if migrate:
            log.info(
                "the published warehouse is in DuckDB storage version %s: rewriting it in %s "
                "(XPORT_WAREHOUSE_STORAGE_VERSION=%s)",
                versions["published"],
                versions["next"],
                storage_version,
            )
            con.execute("copy from database published to next")
    finally:
        con.close()
    if not migrate:
        Path(f"{path}.wal").unlink(missing_ok=True)  # nothing of the empty file may be replayed into the copy
        shutil.copyfile(published, path)
    return migrate


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for spec in WAREHOUSE_TABLES:
        con.execute(spec.ddl())
        have = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns where table_name = ?", [spec.name]
            ).fetchall()
        }
        for col in spec.columns:  # additive migrations: new columns appear, nothing is dropped
            if col.name not in have:
                con.execute(f"alter table {spec.name} add column {col.name} {col.duckdb_type}")
    # rejects written before warnings existed were all rejections
    con.execute("update etl_rejects set severity = 'rejected' where severity is null")
    con.execute("create table if not exists etl_settings (key varchar, value varchar)")


def view_settings(settings: Any) -> dict[str, str]:
    """What a publish records in ``etl_settings`` for the views to read, from a
    :class:`~xport_etl.settings.Settings`: the reporting time zone (``report_tz``) and the stuck
    list's recency window (``stuck_recent_days``)."""
    return {"report_tz": settings.report_tz, "stuck_recent_days": str(settings.stuck_recent_days)}


def set_settings(con: duckdb.DuckDBPyConnection, values: dict[str, str]) -> None:
    for key, value in values.items():
        con.execute("delete from etl_settings where key = ?", [key])
        con.execute("insert into etl_settings values (?, ?)", [key, value])


def sql_objects(folder: str) -> list[tuple[str, str]]:
    """``(name, text)`` for each ``sql/<folder>/*.sql`` file, in name order (reports: :func:`reports`)."""
    return [(p.stem, p.read_text()) for p in sorted((SQL_DIR / folder).glob("*.sql"))]


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

    def create_macro(self, *, temp: bool = False) -> str:
        """The statement that defines this report's table macro (``temp``: for one connection only)."""
        kind = "temp macro" if temp else "or replace macro"
        return f"create {kind} {self.macro}(tz) as table\n{self.body}"

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
    publish, so a warehouse published by a version without the macros gains them on its next
    publish, its views' columns and rows unchanged."""
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


_CHECK_PASSED = "check_passed:"  # etl_settings key prefix: the digest of a check's SQL this state passed
_TABLE_NAME = re.compile(r"\b((?:fct|etl|rpt)_[a-z0-9_]+)\b")
_SCOPE = re.compile(r"^--\s*scope:\s*([a-z0-9_, ]+)$", re.M)


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _scoped(con: duckdb.DuckDBPyConnection, body: str) -> str | None:
    """The check restricted to the keys this publish merged, if it declares ``-- scope: t1, t2``.

    The declaration says: every violation of the check lies within one key of the listed tables'
    merge parent (a parent's own key; a child's ``parent_key``), so on a state that passed it,
    only rows of the keys a merge replaced can make a new one (a merge deletes and re-inserts the
    winning keys and their children, and deletes nothing else). Each listed table is shadowed by a
    CTE of its rows of those keys; the other tables are read whole."""
    match = _SCOPE.search(body)
    if not match:
        return None
    by_spec = {t.spec.name: t for t in STAGED_TABLES.values()}
    merged_tables = {
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where starts_with(table_name, '_merged_')"
        ).fetchall()
    }
    ctes = []
    for table in (t.strip() for t in match.group(1).split(",")):
        staged = by_spec.get(table)
        if staged is None:
            return None
        parent = STAGED_TABLES[staged.parent].spec if staged.parent else staged.spec
        merged = f"_merged_{parent.name}"
        if merged not in merged_tables:
            ctes.append(f"{table} as (select * from main.{table} where false)")
            continue
        on = " and ".join(f"t.{k} = m.{k}" for k in parent.key)
        ctes.append(f"{table} as (select t.* from main.{table} as t semi join {merged} as m on {on})")
    return f"with {', '.join(ctes)}\nselect * from (\n{body}\n)"


def evaluate_checks(
    con: duckdb.DuckDBPyConnection, changed: set[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> list[CheckResult]:
    """Run every ``sql/checks/*.sql`` and grade it (severity, threshold: see :mod:`xport_etl.load.checks`).

    Args:
        changed: the tables this load wrote. Given, an error check with no threshold that this
            warehouse state already passed with the same text (recorded in ``etl_settings`` by
            :func:`record_checks`) is skipped when it reads none of them (the rows it reads are
            the rows it passed), and runs on the keys this publish merged only when it declares
            ``-- scope:`` (see :func:`_scoped`): on a state with no violation, every new one lies
            there, so that count is the full count. A check that reads a view or names no table,
            a warn check and a thresholded check run in full (their count is the whole state's).
            None: run every check in full.
        overrides: the operator's ``{check: {"severity": ..., "threshold": ...}}``.

    Raises:
        ConfigError: an override names an unknown check or holds a bad value.
    """
    passed = {}
    if changed is not None:
        passed = dict(
            con.execute("select key, value from etl_settings where starts_with(key, ?)", [_CHECK_PASSED]).fetchall()
        )
    specs = apply_overrides([parse_check(name, body) for name, body in sql_objects("checks")], overrides)
    results = []
    for spec in specs:
        tables = set(_TABLE_NAME.findall(spec.body))
        incremental = (
            spec.must_pass
            and changed is not None
            and tables
            and not any(t.startswith("rpt_") for t in tables)
            and passed.get(_CHECK_PASSED + spec.name) == _digest(spec.body)
        )
        if incremental and changed is not None and not tables & changed:
            results.append(CheckResult(spec.name, spec.severity, spec.threshold, None, [], "skipped", "skipped"))
            continue
        query = _scoped(con, spec.body) if incremental else None
        how = "ran" if query is None else "ran on the merged keys"
        query = query or spec.body
        violations = con.execute(f"select count(*) from (\n{query}\n)").fetchall()[0][0]
        samples = []
        if violations:  # the common case, none, reads the check once
            samples = [
                jsonable(list(r)) for r in con.execute(f"select * from (\n{query}\n) limit {SAMPLE_ROWS}").fetchall()
            ]
        results.append(
            CheckResult(
                spec.name,
                spec.severity,
                spec.threshold,
                violations,
                samples,
                grade(violations, spec.severity, spec.threshold),
                how,
            )
        )
    return results


def run_checks(
    con: duckdb.DuckDBPyConnection, changed: set[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """:func:`evaluate_checks`, raising if an error check failed.

    Returns:
        ``{check name: "ran" | "ran on the merged keys" | "skipped"}``.

    Raises:
        CheckFailedError: an error check has more violations than its threshold; the message names
            each, its count and a few sample rows.
    """
    results = evaluate_checks(con, changed, overrides)
    if any(r.outcome == "error" for r in results):
        raise CheckFailedError(failure_message(results), results)
    return {r.name: r.how for r in results}


def record_checks(con: duckdb.DuckDBPyConnection, results: Sequence[CheckResult] | None = None) -> None:
    """Record the checks this state passes with no violation at all (with ``results``: those that
    found none, or were skipped as passed before; without: every current check, as after a
    :func:`run_checks` that found nothing). A warn check with violations is not recorded: made
    an error check later, it runs in full."""
    clean = None if results is None else {r.name for r in results if r.violations == 0 or r.how == "skipped"}
    con.execute("delete from etl_settings where starts_with(key, ?)", [_CHECK_PASSED])
    rows = [
        (_CHECK_PASSED + name, _digest(body)) for name, body in sql_objects("checks") if clean is None or name in clean
    ]
    if rows:
        con.executemany("insert into etl_settings values (?, ?)", rows)


_MIRRORED = "check_results_offset"  # etl_settings: how far into the check ledger etl_check_results holds


def mirror_check_results(con: duckdb.DuckDBPyConnection, data_dir: Where) -> int:
    """Add the check ledger's rows this warehouse does not hold yet to ``etl_check_results``.

    The ledger only grows, so the rows past the offset recorded at the last publish are the new
    ones (a blocked publish's among them); a row already there (same run and check) is replaced.
    Returns the rows added."""
    got = con.execute("select value from etl_settings where key = ?", [_MIRRORED]).fetchall()
    offset = int(got[0][0]) if got and got[0][0] and got[0][0].isdigit() else 0
    rows, end = read_check_results(data_dir, offset)
    # one row per run and check (a publish retried without the memory limit appended twice)
    rows = list({(r["run_id"], r["check_name"]): r for r in rows}.values())
    if rows:
        cols = ETL_CHECK_RESULTS.column_names
        naive = {
            c.name: pa.timestamp("us") if pa.types.is_timestamp(c.type) else c.type for c in ETL_CHECK_RESULTS.columns
        }
        con.register("_check_ledger", pa.table({c: pa.array([r.get(c) for r in rows], type=naive[c]) for c in cols}))
        try:
            con.execute(
                "delete from etl_check_results as t using _check_ledger as n "
                "where t.run_id = n.run_id and t.check_name = n.check_name"
            )
            con.execute(
                f"insert into etl_check_results ({', '.join(cols)}) select {', '.join(cols)} from _check_ledger"
            )
        finally:
            con.unregister("_check_ledger")
    set_settings(con, {_MIRRORED: str(end)})
    return len(rows)


def _cols(spec, prefix: str = "") -> str:
    return ", ".join(prefix + c for c in spec.column_names)


def merge_staged(
    con: duckdb.DuckDBPyConnection, batches: Sequence[Batch], changed: set[str] | None = None
) -> dict[str, int]:
    """Merge every staged parent table (and its children) of the batches; rows written per table.

    ``changed``, if given, receives the names of the tables whose rows changed (a parent with
    winning versions, and its children, which are replaced; a table ``_derive`` updated)."""
    written: dict[str, int] = {}
    changed = set() if changed is None else changed
    for staged in STAGED_TABLES.values():
        if staged.parent is None:
            children = [c for c in STAGED_TABLES.values() if c.parent == staged.name]
            for group in merge_groups(batches, staged.name):
                rows = _merge_parent(con, group, staged, children)
                for table, n in rows.items():
                    written[table] = written.get(table, 0) + n
                if rows.get(staged.spec.name):
                    changed.update([staged.spec.name, *(c.spec.name for c in children)])
    if _derive(con):
        changed.add(FCT_PARCELS.name)
    return written


MERGE_ROWS = 400_000  # staged rows of a parent table merged in one statement (see merge_groups)


def merge_groups(batches: Sequence[Batch], table: str, limit: int | None = None) -> list[list[Batch]]:
    """The batches in order, cut into consecutive groups of at most ``limit`` staged rows of
    ``table`` (a batch larger than that is a group of its own), each merged in one statement.

    The merge ranks the versions of each key with a window function, which cannot spill: one
    merge of a 1M-order load needs more than 192MB, three merges of a third of it fit in
    ``XPORT_LOAD_MEMORY`` with room to spare. Merging groups one after another gives the same
    result as one merge (each applies "latest version wins, then latest extraction" against what
    is there); only on a full tie (same version, same extraction time) does the later group win,
    where one merge picks either.
    """
    limit = MERGE_ROWS if limit is None else limit
    groups: list[list[Batch]] = []
    rows = 0
    for b in batches:
        n = b.counts.get(table, 0)
        if not groups or (rows + n > limit and groups[-1]):
            groups.append([])
            rows = 0
        groups[-1].append(b)
        rows += n
    return groups


def _merge_parent(con, batches: Sequence[Batch], staged: StagedTable, children) -> dict[str, int]:
    """Merge one parent table's staged rows (and their children) of ``batches``.

    The versions are ranked on the keys alone (key, batch, version, extraction time); the rows
    themselves stream from the Parquet files once, into the table, picked by (key, batch), which
    names one row because a batch stages one row per key (its window's winner; the children are
    picked the same way). Ranking the keys rather than whole rows spares copying every staged row
    twice into temp tables (see bench/NOTES.md); memory is bounded by the DuckDB budget,
    ``XPORT_LOAD_MEMORY``, either way."""
    spec = staged.spec
    files = list(dict.fromkeys(f for b in batches for f in b.files.get(staged.name, [])))
    if not files:
        return {}
    key = spec.key
    version = staged.version
    # latest state wins: greatest version (null = oldest), then the later extraction
    con.execute(
        f"""
        create or replace temp table new_keys as
        select {", ".join(key)}, _batch_id, {version}, extracted_at from read_parquet(?, union_by_name = true)
        qualify row_number() over (
            partition by {", ".join(key)}
            order by coalesce({version}, '-infinity'::timestamptz) desc, extracted_at desc
        ) = 1
        """,
        [files],
    )
    on = " and ".join(f"t.{k} = n.{k}" for k in key)
    con.execute(
        f"""
        create or replace temp table winners as
        select {", ".join(f"n.{k}" for k in key)}, n._batch_id from new_keys as n
        left join {spec.name} as t on {on}
        where t.{key[-1]} is null
           or coalesce(n.{version}, '-infinity'::timestamptz) > coalesce(t.{version}, '-infinity'::timestamp)
           or (n.{version} is not distinct from t.{version} and n.extracted_at >= t.extracted_at)
        """
    )
    # the keys merged into this next state (the data checks can be scoped to them: see run_checks);
    # a table of the next state's file, as a run merges in several steps, dropped before the swap
    con.execute(f"create table if not exists _merged_{spec.name} as select {', '.join(key)} from winners limit 0")
    con.execute(f"insert into _merged_{spec.name} select {', '.join(key)} from winners")
    con.execute(f"delete from {spec.name} as t using winners as n where {on}")
    by_key = " and ".join(f"p.{k} = n.{k}" for k in key)
    con.execute(
        f"""
        insert into {spec.name} ({_cols(spec)})
        select {_cols(spec, "p.")} from read_parquet(?, union_by_name = true) as p
        semi join winners as n on {by_key} and p._batch_id = n._batch_id
        """,
        [files],
    )
    written = {spec.name: con.execute("select count(*) from winners").fetchall()[0][0]}
    for child in children:
        cspec = child.spec
        link = " and ".join(f"c.{k} = n.{k}" for k in child.parent_key)
        con.execute(f"delete from {cspec.name} as c using winners as n where {link}")
        child_files = list(dict.fromkeys(f for b in batches for f in b.files.get(child.name, [])))
        written[cspec.name] = 0
        if child_files:
            # the winners' children were all deleted above, so the rows inserted are the rows written
            (written[cspec.name],) = con.execute(
                f"""
                insert into {cspec.name} ({_cols(cspec)})
                select {_cols(cspec, "c.")}
                from read_parquet(?, union_by_name = true) as c
                semi join winners as n on {link} and c._batch_id = n._batch_id
                """,
                [child_files],
            ).fetchall()[0]
    return written


def _derive(con: duckdb.DuckDBPyConnection) -> int:
    """Columns that depend on other tables, recomputed after every merge.

    1688 parcels are delivered once their order is confirm_goods/success (their steps carry no
    status): ``delivered_at`` is then the time of the parcel's last step. Returns the rows updated.
    """
    return con.execute(
        """
        update fct_parcels as p
        set delivered_at = case when o.platform_status in ('confirm_goods', 'success')
                                then p.last_event_at end
        from fct_orders as o
        where p.platform = '1688' and o.platform = '1688' and o.order_id = p.order_id
          and p.delivered_at is distinct from
              (case when o.platform_status in ('confirm_goods', 'success') then p.last_event_at end)
        """
    ).fetchall()[0][0]


def merge_rejects(con: duckdb.DuckDBPyConnection, batches: Sequence[Batch]) -> int:
    """Replace each batch's rejects and warnings: re-normalising a window never duplicates them.
    Returns the rejected records (rows of severity 'rejected')."""
    total = 0
    for b in batches:
        con.execute("delete from etl_rejects where endpoint = ? and window_id = ?", [b.endpoint, b.window_id])
        files = b.files.get("rejects", [])
        if files:
            # a batch staged before a column existed (severity, field) lacks it: null, and a
            # severity-less reject was a rejection
            have = {r[0] for r in con.execute("describe select * from read_parquet(?)", [files]).fetchall()}
            select = ", ".join(
                c if c in have else ("'rejected'" if c == "severity" else "null") for c in ETL_REJECTS.column_names
            )
            con.execute(
                f"insert into etl_rejects ({_cols(ETL_REJECTS)}) select {select} from read_parquet(?)",
                [files],
            )
        total += b.counts.get("rejects", 0)
    return total


def replace_runs(con: duckdb.DuckDBPyConnection, runs: Sequence[dict]) -> None:
    """``etl_runs`` mirrors the run ledger (which also keeps failed runs that published nothing)."""
    con.execute("delete from etl_runs")
    if not runs:
        return
    cols = ETL_RUNS.column_names
    # one Arrow insert: executemany pays a fixed cost per row, and the ledger grows with every run
    naive = {c.name: pa.timestamp("us") if pa.types.is_timestamp(c.type) else c.type for c in ETL_RUNS.columns}
    try:
        ledger = pa.table({c: pa.array([r.get(c) for r in runs], type=naive[c]) for c in cols})
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a value Arrow will not cast: let DuckDB cast it
        con.executemany(
            f"insert into etl_runs ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
            [[r.get(c) for c in cols] for r in runs],
        )
        return
    con.register("_ledger", ledger)
    try:
        con.execute(f"insert into etl_runs ({', '.join(cols)}) select {', '.join(cols)} from _ledger")
    finally:
        con.unregister("_ledger")


def _identity(path: Path) -> list[int] | None:
    """What distinguishes one published file from the next: every swap brings a new inode."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_mtime_ns, st.st_size]


class NextState:
    """A run's unpublished next state of the warehouse, built by its loads and published once.

    ``state/next/<key>.duckdb`` starts as a copy of the published warehouse (or empty); each
    :meth:`merge` adds batches to it (the rows, rejects and the keys each merge touched), and
    ``<key>.json`` beside it lists the batches merged and the ledger rows they make, written after
    each merge. Fan-out endpoints read their keys from it (:meth:`connect_reader`) so that they
    see what the run loaded before it is published. :meth:`publish` checks it and swaps it in.

    Every step is idempotent and resumable: a crash leaves the published file as it was and a
    next state that is either discarded or merged into again (a merge of the same batch twice
    gives the same rows). Several processes may work on one run (Airflow tasks): merges into the
    same next state are serialised by ``<key>.lock``.

    Args:
        data_dir: the data directory (or its :class:`~xport_etl.layout.DataLayout`) whose
            warehouse the state is the next of.
        key: names the run (letters, digits, ``-`` and ``_``).
        memory_limit: DuckDB's memory limit while merging and checking (``Settings.load_memory``;
            default :data:`LOAD_MEMORY`). A step that does not fit runs once more without it.
        storage_version: the DuckDB storage version the state is written in
            (``Settings.warehouse_storage_version``; see :func:`create_state_file`).
    """

    def __init__(
        self, data_dir: Where, key: str, memory_limit: str | None = None, storage_version: str | None = None
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", key):
            raise ValueError(f"next-state key {key!r} is not [A-Za-z0-9_-]")
        self.layout = DataLayout.of(data_dir)
        self.key = key
        self.memory_limit = memory_limit or LOAD_MEMORY
        self.storage_version = storage_version or DEFAULT_WAREHOUSE_STORAGE_VERSION
        folder = self.layout.next_states
        self.path = folder / f"{key}.duckdb"
        self.meta_path = folder / f"{key}.json"
        self._lock_path = folder / f"{key}.lock"

    def __repr__(self) -> str:
        return f"NextState({str(self.path)!r})"

    # ---- the sidecar

    def meta(self) -> dict | None:
        """What has been merged (``batches``, ``rows``, ``changed``, ``base``), or None if nothing."""
        if not self.meta_path.exists() or not self.path.exists():
            return None
        return json.loads(self.meta_path.read_text(encoding="utf-8"))

    def _save_meta(self, meta: dict) -> None:
        write_atomic(self.meta_path, json.dumps(meta, default=str).encode())

    @property
    def batches(self) -> list[Batch]:
        meta = self.meta()
        return [Batch(**b) for b in meta["batches"]] if meta else []

    @property
    def pending_rows(self) -> list[dict]:
        """The run-ledger rows of the windows merged so far (appended once published)."""
        meta = self.meta()
        return list(meta["rows"]) if meta else []

    def exists(self) -> bool:
        return self.meta() is not None

    # ---- building it

    def _start(self, *, rebuild: bool = False) -> dict:
        """A fresh next state: a copy of the published file (unless ``rebuild``), nothing merged,
        in the state's storage version (:func:`create_state_file`)."""
        published = self.layout.warehouse
        self.discard()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(self.path.parent)
        base = None if rebuild else _identity(published)
        create_state_file(self.path, self.storage_version, published if base is not None else None)
        con = connect_writer(self.path)
        try:
            ensure_schema(con)
        finally:
            con.close()
        return {
            "base": base,
            "rebuild": rebuild,
            "batches": [],
            "rows": [],
            "changed": [],
            "rows_written": {},
            "rejects": 0,
        }

    def merge(self, batches: Sequence[Batch], *, rows: Sequence[dict] = (), rebuild: bool = False) -> dict[str, int]:
        """Merge ``batches`` into the next state (started on first use); rows written per table.

        Args:
            rows: the run-ledger rows of the windows the batches come from, kept until publish.
            rebuild: start from an empty warehouse instead of the published one (first use only).
        """
        with _file_lock(self._lock_path):
            meta = self.meta() or self._start(rebuild=rebuild)
            written, rejects, changed = self._merge_into(batches)
            meta["batches"] += [_batch_dict(b) for b in batches]
            meta["rows"] += [dict(r) for r in rows]
            meta["changed"] = sorted(set(meta["changed"]) | changed)
            for table, n in written.items():
                meta["rows_written"][table] = meta["rows_written"].get(table, 0) + n
            meta["rejects"] += rejects
            self._save_meta(meta)
            crashpoint("publish.merged")
        return written

    def _merge_into(self, batches: Sequence[Batch]) -> tuple[dict[str, int], int, set[str]]:
        if not batches:
            return {}, 0, set()
        try:
            return self._merge_once(batches, self.memory_limit)
        except duckdb.OutOfMemoryException as exc:
            # the bounded default did not fit this merge (rolled back): once more with DuckDB's own
            log.warning(
                "publish needed more than XPORT_LOAD_MEMORY=%s (%s); retrying without the limit",
                self.memory_limit,
                str(exc).splitlines()[0],
            )
            return self._merge_once(batches, None)

    def _merge_once(self, batches, memory_limit) -> tuple[dict[str, int], int, set[str]]:
        con = connect_writer(self.path, memory_limit)
        try:
            con.execute("begin")
            changed: set[str] = set()
            written = merge_staged(con, batches, changed)
            rejects = merge_rejects(con, batches)
            con.execute("commit")
            con.execute("checkpoint")
        finally:
            con.close()
        return written, rejects, changed

    def connect_reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the next state (what the run's fan-outs choose keys from)."""
        return duckdb.connect(str(self.path), read_only=True)

    # ---- publishing it

    def publish(
        self,
        *,
        runs: Sequence[dict] = (),
        settings: dict[str, str] | None = None,
        run_id: str | None = None,
        check_overrides: Mapping[str, Any] | None = None,
    ) -> LoadResult:
        """Check the next state and swap it in for the published warehouse, atomically.

        If another writer published since this next state was started, the run's batches are
        merged again onto the newer published state first (same rows: the merge rule orders
        versions, not arrivals). With nothing merged yet, the published state is re-checked and
        re-published with fresh views (the reports DAG's refresh).

        Args:
            runs: the full run ledger to mirror into ``etl_runs`` (``pending_rows`` included).
            settings: values for ``etl_settings`` (e.g. ``report_tz``) that the views read.
            run_id: this publish's id in ``etl_check_results`` (default: a new one).
            check_overrides: the operator's check severities and thresholds
                (``Settings.check_overrides``).

        Raises:
            CheckFailedError: an error check failed; nothing was published, the next state is kept
                (its outcomes are in the check ledger, and in ``etl_check_results`` from the next
                successful publish on).
            ConfigError: ``check_overrides`` names an unknown check or holds a bad value.
        """
        run_id = run_id or uuid.uuid4().hex
        apply_overrides([parse_check(n, b) for n, b in sql_objects("checks")], check_overrides)  # fail early
        published = self.layout.warehouse
        with writer_lock(self.layout), _file_lock(self._lock_path):
            meta = self.meta()
            if meta is None:
                meta = self._start()
            elif not meta.get("rebuild") and meta["base"] != _identity(published):
                log.warning(
                    "another writer published since this run started: merging the run's %d "
                    "batches onto the newer state",
                    len(meta["batches"]),
                )
                batches = [Batch(**b) for b in meta["batches"]]
                meta = {**self._start(), "rows": meta["rows"], "batches": meta["batches"]}
                _, _, merged = self._merge_into(batches)
                meta["changed"] = sorted(merged)
            full = not meta["batches"] or meta.get("rebuild")
            changed = None if full else set(meta["changed"])
            args = (runs, settings, changed, run_id, check_overrides)
            try:
                self._finish(*args, self.memory_limit)
            except duckdb.OutOfMemoryException as exc:
                log.warning(
                    "checking the next state needed more than XPORT_LOAD_MEMORY=%s (%s); retrying without the limit",
                    self.memory_limit,
                    str(exc).splitlines()[0],
                )
                self._finish(*args, None)
            with open(self.path, "rb+") as f:
                os.fsync(f.fileno())
            crashpoint("publish.replace")
            os.replace(self.path, published)
            fsync_dir(published.parent)
            self.meta_path.unlink(missing_ok=True)
        return LoadResult(str(published), len(meta["batches"]), dict(meta["rows_written"]), meta["rejects"])

    def _finish(
        self,
        runs,
        settings,
        changed: set[str] | None,
        run_id: str,
        check_overrides: Mapping[str, Any] | None,
        memory_limit,
    ) -> None:
        con = connect_writer(self.path, memory_limit)
        try:
            ensure_schema(con)
            set_settings(con, settings or {})
            con.execute("begin")
            replace_runs(con, runs)
            con.execute("commit")
            refresh_views(con)
            describe_objects(con)
            # the run re-runs the must-pass checks over the tables it changed (the rest of this
            # state passed them when it was published); a rebuild or a publish with no batches
            # (the reports DAG's refresh) runs every check
            results = evaluate_checks(con, changed, check_overrides)
            # the ledger first: a blocked publish's outcomes outlive the state it does not publish
            append_check_results(self.layout, run_id, results)
            for r in results:
                if r.outcome == "warn":
                    log.warning(
                        "data check %s: %d violations (warn, published anyway), e.g. %s",
                        r.name,
                        r.violations,
                        r.samples[:3],
                    )
            if any(r.outcome == "error" for r in results):
                raise CheckFailedError(failure_message(results), results)
            mirror_check_results(con, self.layout)
            record_checks(con, results)
            for spec in WAREHOUSE_TABLES:
                con.execute(f"drop table if exists _merged_{spec.name}")
            con.execute("checkpoint")
        finally:
            con.close()

    def discard(self) -> None:
        """Forget the next state (its files); the published warehouse is untouched."""
        for path in (self.meta_path, self.path, Path(str(self.path) + ".wal")):
            path.unlink(missing_ok=True)

    def forget(self) -> None:
        """Remove the lock file too: for a one-off key that no other process can be waiting on."""
        self._lock_path.unlink(missing_ok=True)


ABANDONED_AFTER_S = 7 * 24 * 3600  # a next state untouched this long belongs to a run nobody resumes


def _remove_abandoned(folder: Path) -> None:
    """Delete next states untouched for :data:`ABANDONED_AFTER_S` (a failed Airflow run never
    cleared, an abandoned command): each is a copy of the warehouse, and only its own run reads it."""
    import time

    cutoff = time.time() - ABANDONED_AFTER_S
    for path in folder.glob("*.duckdb"):
        try:
            if path.stat().st_mtime < cutoff:
                log.warning("removing the abandoned next state %s (untouched for 7 days)", path.name)
                for stale in (path, path.with_suffix(".json"), Path(str(path) + ".wal")):
                    stale.unlink(missing_ok=True)
        except FileNotFoundError:
            continue


def _batch_dict(batch: Batch) -> dict:
    from dataclasses import asdict

    return asdict(batch)


def publish(
    data_dir: Where,
    batches: Sequence[Batch],
    *,
    runs: Sequence[dict] = (),
    settings: dict[str, str] | None = None,
    rebuild: bool = False,
    run_id: str | None = None,
    check_overrides: Mapping[str, Any] | None = None,
    memory_limit: str | None = None,
    storage_version: str | None = None,
) -> LoadResult:
    """Merge batches into a next state of the warehouse, check it, and swap it in atomically.

    One :class:`NextState` merged and published in one go (``xport-etl load``, the reports
    refresh, tests); a run with several loads uses a :class:`NextState` of its own.

    Args:
        data_dir: the data directory (or its layout) whose warehouse is published.
        batches: the staged batches to merge, in any order (the merge rule decides).
        runs: the full run ledger to mirror into ``etl_runs``.
        settings: values for ``etl_settings`` (e.g. ``report_tz``) that the views read.
        rebuild: start from an empty warehouse instead of the published one.
        run_id: this publish's id in ``etl_check_results`` (default: a new one).
        check_overrides: the operator's check severities and thresholds
            (``Settings.check_overrides``).
        memory_limit: DuckDB's memory limit while publishing (``Settings.load_memory``; default
            :data:`LOAD_MEMORY`).
        storage_version: the DuckDB storage version of the published file
            (``Settings.warehouse_storage_version``; see :func:`create_state_file`).

    Raises:
        CheckFailedError: an error check failed; nothing was published (its outcomes are in the
            check ledger, and in ``etl_check_results`` from the next successful publish on).
        ConfigError: ``check_overrides`` names an unknown check or holds a bad value.
    """
    state = NextState(data_dir, f"publish-{uuid.uuid4().hex}", memory_limit, storage_version)
    try:
        state.merge(batches, rebuild=rebuild)
        return state.publish(runs=runs, settings=settings, run_id=run_id, check_overrides=check_overrides)
    finally:
        state.discard()
        state.forget()


class WarehouseError(XportError):
    """The published warehouse cannot be opened: not a DuckDB file (corrupt, truncated, or
    written by a newer DuckDB), or unreadable."""

    exit_code = 7
    hint = "move the file aside and run `xport-etl load`: every landed window is published again from its raw pages"
    permanent = True


def connect_reader(data_dir: Where) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published warehouse (what analysts and reports use).

    Each call opens the file as it is now, in a database instance of its own: ``duckdb.connect``
    on a path hands back the process's cached instance of that path while any connection to it
    is open, which after a publish (``os.replace``) is the *old* file, so a pool of readers would
    never see a newer load and would keep the old file's space. An unnamed in-memory database is
    never cached; the warehouse is attached to it read-only and made the default catalog.

    Raises:
        NotFoundError: nothing has been published under ``data_dir`` (a ``FileNotFoundError``).
        WarehouseError: the file is not a readable DuckDB database.
    """
    path = DataLayout.of(data_dir).warehouse
    if not path.exists():
        raise NotFoundError(f"no warehouse at {path}: run `xport-etl run` or `make demo` first")
    con = duckdb.connect(":memory:")
    try:
        con.execute("attach ? as warehouse (read_only)", [str(path)])
        con.execute("use warehouse")
        # read-only, and no way out of the file either: no ATTACH of another database for writing,
        # no COPY/EXPORT to files, and the settings cannot be changed back from inside the session
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        first = str(exc).splitlines()[0]
        raise WarehouseError(f"cannot open the warehouse {path}: {first}") from exc
    return con


def rows_json(rows: dict[str, int]) -> str:
    return json.dumps(rows, sort_keys=True)
