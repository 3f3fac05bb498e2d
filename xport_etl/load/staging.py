"""Landed window → typed Parquet, partitioned by business date (the order's UTC creation date).

Parent tables are partitioned by the month of their business date (orders and refunds by UTC
creation month, parcels by their first event's month); child rows sit in their parent's partition.

Layout under the data layout's ``parquet`` (:mod:`xport_etl.layout`)::

    parquet/orders/created_month=2026-03/<batch>.parquet       (and refunds, parcels)
    parquet/order_lines/created_month=2026-03/<batch>.parquet  (children: their parent's month)
    parquet/rejects/<batch>.parquet
    parquet/_batches/<batch>.json          written last: the batch is complete

A batch is one landed window (``<endpoint>__<window_id>``). Normalising the same window again
replaces exactly that batch's files, so this layer is idempotent and can always be rebuilt from
the raw pages. Rows carry ``_batch_id`` and ``extracted_at`` so that the loader can pick, for each
order, the latest state across overlapping windows.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from xport_etl import allocator
from xport_etl.extract.endpoints import ASSUMED, ApiAssumptions
from xport_etl.extract.landing import Manifest, check_page_count, check_window, read_pages
from xport_etl.extract.storage import contained
from xport_etl.faults import crashpoint
from xport_etl.fsutil import write_atomic
from xport_etl.layout import DataLayout, Where
from xport_etl.normalize.pages import count_warned, to_table
from xport_etl.normalize.values import REJECTED
from xport_etl.schemas import ETL_REJECTS, STAGED_TABLES
from xport_etl.streams.graph import STREAMS

T = TypeVar("T")
UNKNOWN_DATE = "unknown"
REJECTS = "rejects"
WARNINGS = "warnings"  # in Batch.counts next to REJECTS: not a table, records loaded with a warning


def _normalizers() -> Mapping:
    """Which normaliser reads which endpoint's pages (:mod:`xport_etl.normalize.registry`, from
    the streams' declarations)."""
    from xport_etl.normalize.registry import NORMALIZERS

    return NORMALIZERS


@dataclass
class Batch:
    """One normalised window: its Parquet files per table and what it held."""

    batch_id: str
    endpoint: str
    window_id: str
    extracted_at: str
    files: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # rows per table, and REJECTS, WARNINGS
    records: int = 0
    fast_records: int | None = None  # records the DuckDB normaliser typed in SQL (None: not that path)

    @property
    def name(self) -> str:
        return batch_name(self.endpoint, self.window_id)


def batch_name(endpoint: str, wid: str) -> str:
    return f"{endpoint}__{wid}"


def batch_marker(data_dir: Where, endpoint: str, wid: str) -> Path:
    """The file that says a window's batch is complete (and lists its Parquet files)."""
    return DataLayout.of(data_dir).parquet / "_batches" / f"{batch_name(endpoint, wid)}.json"


def _month(ts: datetime | None) -> str:
    # monthly partitions of the business date: a window writes a handful of files, not hundreds
    return UNKNOWN_DATE if ts is None else f"{ts:%Y-%m}"


def stage_window(
    data_dir: Where,
    manifest: Manifest,
    *,
    assumptions: ApiAssumptions = ASSUMED,
    duckdb_threads: int | None = None,
    shared=None,
    sql_normalizer: bool = True,
    memory_limit: str | None = None,
) -> Batch:
    """Normalise one landed window into Parquet and return the batch description.

    ``duckdb_threads``: the DuckDB normaliser's threads (default: every core).
    ``sql_normalizer``: False stages every window with the Python normalisers (``Settings.sql_normalizer``).
    ``memory_limit``: the DuckDB normaliser's own connection's limit (``Settings.stage_memory``,
    default :data:`STAGE_MEMORY`; a ``shared`` one has its own).
    ``shared``: a :class:`SharedStaging` whose DuckDB the window uses (a cursor of it) instead of
    a connection of its own, so that windows staged at once share one memory budget.
    """
    # every path below is built from the manifest's names: plain names only, and inside the data
    # directory (a hostile manifest must not write or delete anything elsewhere)
    check_window(
        manifest.endpoint,
        manifest.window_id,
        manifest.mode,
        where=manifest.directory if hasattr(manifest, "_dir") else None,
    )
    normalize = _normalizers().get(manifest.endpoint)
    if normalize is None:
        raise ValueError(f"no normaliser for endpoint {manifest.endpoint!r}")
    extracted_at = datetime.fromisoformat(manifest.extracted_at).astimezone(UTC).replace(tzinfo=None)
    clock = manifest.extra.get("data_clock")
    data_clock = datetime.fromisoformat(clock) if clock else None
    layout = DataLayout.of(data_dir)
    root = layout.parquet
    name = batch_name(manifest.endpoint, manifest.window_id)
    batch = Batch(
        batch_id=f"{manifest.endpoint}/{manifest.window_id}",
        endpoint=manifest.endpoint,
        window_id=manifest.window_id,
        extracted_at=manifest.extracted_at,
    )
    marker = batch_marker(data_dir, manifest.endpoint, manifest.window_id)
    contained(root, marker)
    contained(root, root / REJECTS / f"{name}.parquet")
    marker.parent.mkdir(parents=True, exist_ok=True)
    # the marker goes first: a crash while rewriting leaves no complete-looking batch behind
    marker.unlink(missing_ok=True)
    for table in [*STAGED_TABLES, REJECTS]:
        for old in (root / table).glob(f"**/{name}.parquet"):
            old.unlink()
    rejected_at = datetime.now(UTC).replace(tzinfo=None)
    if use_sql(manifest.endpoint, assumptions, sql_normalizer):
        rejects = _stage_sql(
            root,
            layout.tmp,
            name,
            batch,
            manifest,
            extracted_at,
            rejected_at,
            assumptions,
            duckdb_threads,
            shared,
            memory_limit,
        )
    else:
        rejects = _stage_python(
            root, name, batch, manifest, normalize, extracted_at, data_clock, rejected_at, assumptions
        )
    rejects_path = root / REJECTS / f"{name}.parquet"
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(rejects, list):
        rejects = to_table(rejects, ETL_REJECTS.arrow_schema())
    pq.write_table(rejects, rejects_path)
    batch.files[REJECTS] = [str(rejects_path)]
    # the rejects file holds both severities: REJECTS counts the rejected rows, WARNINGS the
    # records that loaded with a warning
    batch.counts[REJECTS] = rejects.column("severity").to_pylist().count(REJECTED)
    batch.counts[WARNINGS] = count_warned(rejects.select(["endpoint", "record_id", "severity"]).to_pylist())
    crashpoint("stage.marker")
    write_atomic(marker, json.dumps(asdict(batch), indent=2).encode())
    return batch


def _stage_python(
    root: Path,
    name: str,
    batch: Batch,
    manifest: Manifest,
    normalize,
    extracted_at: datetime,
    data_clock: datetime | None,
    rejected_at: datetime,
    assumptions: ApiAssumptions,
) -> list[dict]:
    """The reference normalisers: a window's rows as Python dicts, then Parquet per month."""
    read = 0

    def counted():
        nonlocal read
        for page in read_pages(manifest.directory):
            read += 1
            yield page

    rows = normalize(
        counted(),
        endpoint=manifest.endpoint,
        window_id=manifest.window_id,
        rejected_at=rejected_at,
        assumptions=assumptions,
    )
    check_page_count(manifest, read)
    batch.records = rows.records
    # parents by their business date; children in their parent's partition
    day_of: dict[tuple[str, tuple], str] = {}
    by_table_day: dict[str, dict[str, list[dict]]] = {}
    for table in sorted(rows.tables, key=lambda t: STAGED_TABLES[t].parent is not None):
        staged = STAGED_TABLES[table]
        days = by_table_day.setdefault(table, defaultdict(list))
        for row in rows.tables[table]:
            row["_batch_id"] = batch.batch_id
            if staged.parent is None:
                row["extracted_at"] = extracted_at
                row["data_clock"] = data_clock
                day = _month(row.get(staged.partition_by))
                day_of[(table, tuple(row[k] for k in staged.spec.key))] = day
            else:
                day = day_of.get((staged.parent, tuple(row[k] for k in staged.parent_key)), UNKNOWN_DATE)
            days[day].append(row)
    for table, days in by_table_day.items():
        schema = STAGED_TABLES[table].spec.arrow_schema(lineage=True)
        batch.files[table] = _write_days(root / table, name, days, schema)
        batch.counts[table] = sum(len(v) for v in days.values())
        crashpoint("stage.table")
    return rows.rejects


def use_sql(endpoint: str, assumptions: ApiAssumptions, sql_normalizer: bool = True) -> bool:
    """Does this window take the DuckDB normaliser? Its stream declares the fast path
    (:attr:`~xport_etl.streams.spec.StreamSpec.fast_path`); ``sql_normalizer=False``, from
    ``Settings.sql_normalizer`` / ``XPORT_SQL_NORMALIZER=0``, turns it off."""
    from xport_etl.normalize.taobao_orders_sql import DEFAULT_TIME_FORMAT

    declared = STREAMS.get(endpoint)
    fast = declared is not None and declared.fast_path
    return sql_normalizer and fast and assumptions.cst_time_format == DEFAULT_TIME_FORMAT


# unless Settings.stage_memory (XPORT_STAGE_MEMORY) says otherwise: DuckDB's budget for staging,
# however many windows at once
STAGE_MEMORY = "160MB"
COPY_ROWS = 16384  # rows per Parquet row group written while staging (bigger groups hold more memory)
# columns with (nearly) one value per row: a Parquet dictionary of them costs time and saves nothing
# (pyarrow builds one for every column by default; without these, writing is faster and the files
# smaller: see bench/NOTES.md)
UNIQUE_ISH = frozenset(
    {
        "order_id",
        "order_no",
        "line_id",
        "purchase_id",
        "purchase_line_id",
        "tracking_number",
        "seller_order_number",
        "created_at",
        "paid_at",
        "updated_at",
    }
)


def stage_connection(tmp_dir: Path, threads: int | None = None, memory_limit: str | None = None):
    """A DuckDB connection for staging: bounded memory (``memory_limit``, from
    ``Settings.stage_memory``; default :data:`STAGE_MEMORY`), spilling to ``tmp_dir`` beyond it.

    Its tables are a window's scratch (temp tables, dropped with the window), so they are not
    compressed: DuckDB compresses a temp table's row group once it fills (122,880 rows), which a
    large window's candidate rows do several times over; compressing scratch costs time and saves
    no memory that matters (see bench/NOTES.md)."""
    import duckdb

    tmp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            **({"threads": threads} if threads else {}),
            "memory_limit": memory_limit or STAGE_MEMORY,
            "temp_directory": str(tmp_dir),
            "preserve_insertion_order": False,
            "force_compression": "uncompressed",
        }
    )
    return con


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedStaging:
    """One DuckDB for the windows the DuckDB normaliser stages, and ``workers`` threads that do
    their work: the chunks of each window's pages, then its output months.

    One database means one memory budget (``memory_limit``: ``Settings.stage_memory``) for all of
    them: windows staged at once peak lower under one shared budget than under a budget each (see
    bench/NOTES.md). ``threads=1``: each query runs on the thread that issued it, so chunks, not
    statements, spread over the cores (a chunk's statements work on small tables anyway); each
    worker thread has a cursor of its own (its own temporary tables), and the windows' tables,
    in a schema per window, are visible to all of them. A window is cut into chunks whatever
    period it covers, so a year landed as one window is staged on every core, as twelve monthly
    windows are (:meth:`run`). Use as a context manager; the spill directory goes with it.
    """

    def __init__(self, data_dir: Where, memory_limit: str | None = None, workers: int | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        allocator.bound_arenas()  # before the threads (see its docstring)
        tmp = DataLayout.of(data_dir).tmp
        for old in tmp.glob("stage-shared-*"):  # spill files of a killed process
            if not _alive(int(old.name.split("-")[2])):
                shutil.rmtree(old, ignore_errors=True)
        self.tmp = tmp / f"stage-shared-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.con = stage_connection(self.tmp, threads=1, memory_limit=memory_limit)
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="stage-chunk")
        self._local = threading.local()
        self._cursors: list = []
        self._lock = threading.Lock()

    def cursor(self):
        return self.con.cursor()

    def _thread_cursor(self):
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.con.cursor()
            with self._lock:
                self._cursors.append(cur)
        return cur

    def run(self, work: Callable[[Any], None]) -> None:
        """``work(cursor)`` once on each worker thread, with that thread's cursor; returns when
        every call has (and raises the first error, in submission order)."""
        futures = [self._pool.submit(self._call, work) for _ in range(self.workers)]
        for f in futures:
            f.result()

    def map(self, tasks: Sequence[Callable[[Any], T]]) -> list[T]:
        """Each task called with a worker thread's cursor, at once; their results in order."""
        futures = [self._pool.submit(self._call, task) for task in tasks]
        return [f.result() for f in futures]

    def _call(self, task: Callable[[Any], T]) -> T:
        return task(self._thread_cursor())

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for cur in self._cursors:
            cur.close()
        self.con.close()
        allocator.trim()  # what the database took: the merge starts from what is in use
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> SharedStaging:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stage_sql(
    root: Path,
    tmp_root: Path,
    name: str,
    batch: Batch,
    manifest: Manifest,
    extracted_at: datetime,
    rejected_at: datetime,
    assumptions: ApiAssumptions,
    threads: int | None = None,
    shared: SharedStaging | None = None,
    memory_limit: str | None = None,
) -> list[dict]:
    """The DuckDB normaliser (:mod:`xport_etl.normalize.taobao_orders_sql`): pages stream through, never a window in memory.
    A connection of the window's own spills under ``tmp_root`` (the layout's ``tmp``)."""
    from xport_etl.normalize.taobao_orders_chunks import feed_window
    from xport_etl.normalize.taobao_orders_sql import TaobaoOrdersSql

    tmp = tmp_root / f"stage-{name}"
    if shared is None:
        shutil.rmtree(tmp, ignore_errors=True)  # what a killed run of this window left behind
        con = stage_connection(tmp, threads, memory_limit)
    else:
        con = shared.cursor()
    norm = None
    try:
        norm = TaobaoOrdersSql(
            con,
            endpoint=manifest.endpoint,
            window_id=manifest.window_id,
            rejected_at=rejected_at,
            assumptions=assumptions,
        )
        feed_window(norm, manifest.directory, run=shared.run if shared is not None else None)
        check_page_count(manifest, norm.stats.pages)
        norm.finish()
        batch.records = norm.stats.records
        batch.fast_records = norm.stats.fast_records
        for table, source in (("orders", norm.out_orders), ("order_lines", norm.out_lines)):
            schema = STAGED_TABLES[table].spec.arrow_schema(lineage=True)
            constants = {"_batch_id": batch.batch_id, "extracted_at": extracted_at}
            months = [m for (m,) in con.execute(f"select distinct created_month from {source} order by 1").fetchall()]
            copies = [
                functools.partial(
                    _copy_month,
                    source=source,
                    month=m,
                    path=root / table / f"created_month={m}" / f"{name}.parquet",
                    schema=schema,
                    constants=constants,
                )
                for m in months
            ]
            counts = shared.map(copies) if shared is not None else [copy(con) for copy in copies]
            batch.files[table] = [str(root / table / f"created_month={m}" / f"{name}.parquet") for m in months]
            batch.counts[table] = sum(counts)
            crashpoint("stage.table")
        return norm.rejects_table()
    finally:
        if norm is not None:
            norm.drop()
        con.close()
        allocator.trim()  # what the window's tables took
        if shared is None:
            shutil.rmtree(tmp, ignore_errors=True)


def _copy_month(con, *, source: str, month: str, path: Path, schema: pa.Schema, constants: dict) -> int:
    """``source``'s rows of one ``created_month`` → one Parquet file, streamed a record batch at a
    time; returns the rows written."""
    select = ", ".join("?" if c in constants else c for c in schema.names)
    params = [constants[c] for c in schema.names if c in constants]
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    reader = con.sql(f"select {select} from {source} where created_month = ?", params=[*params, month]).to_arrow_reader(
        COPY_ROWS
    )
    with pq.ParquetWriter(path, schema, use_dictionary=[c for c in schema.names if c not in UNIQUE_ISH]) as writer:
        for chunk in reader:
            table = pa.Table.from_batches([chunk])
            writer.write_table(table.rename_columns(schema.names).cast(schema))
            count += chunk.num_rows
    return count


def _write_days(table_dir: Path, name: str, by_day: dict[str, list[dict]], schema) -> list[str]:
    paths = []
    for day, rows in sorted(by_day.items()):
        path = table_dir / f"created_month={day}" / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_table(rows, schema), path)
        paths.append(str(path))
    return paths


def read_batch(path: Path) -> Batch:
    return Batch(**json.loads(Path(path).read_text()))


def _worker_main(argv: list[str]) -> int:
    """``python -m xport_etl.load.staging DATA_DIR ASSUMPTIONS_JSON OPTIONS_JSON WINDOW_DIR…``: a
    staging worker. ``OPTIONS_JSON`` holds :func:`stage_window`'s settings (``sql_normalizer``,
    ``memory_limit``): the worker reads no configuration of its own."""
    from xport_etl.extract.landing import read_manifest

    data_dir, spec, options, *directories = argv
    fields = json.loads(spec)
    for key in ("retriable_codes", "auth_codes", "http_retriable_statuses"):
        fields[key] = frozenset(fields[key])
    assumptions = ApiAssumptions(**fields)
    for directory in directories:
        stage_window(Path(data_dir), read_manifest(directory), assumptions=assumptions, **json.loads(options))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_worker_main(sys.argv[1:]))
