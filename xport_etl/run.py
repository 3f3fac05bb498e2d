"""The pipeline's steps for a time window; the CLI and the Airflow tasks call these and nothing else.

- :func:`extract_window` pages one endpoint for ``[start, end)`` and lands the raw pages.
- :func:`load_windows` normalises landed windows to Parquet and publishes them to DuckDB.
- :func:`run_window` does both for every implemented endpoint, in bounded chunks.

Every run is recorded in the run ledger (``state/runs.jsonl`` under the data directory, appended
and fsynced), which ``etl_runs`` mirrors at each publish: a failed run that published nothing is
still on record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from xport_etl.errors import ConfigError
from xport_etl.extract import storage
from xport_etl.extract.endpoints import (
    ASSUMED,
    ApiAssumptions,
    EndpointSpec,
    endpoints_for,
    format_window_value,
    parse_alibaba_time,
)
from xport_etl.extract.landing import Manifest, PageWriter, read_manifest, utc_now_iso, window_id
from xport_etl.faults import crashpoint
from xport_etl.fsutil import write_atomic
from xport_etl.ledger import _run_row, append_run, read_runs
from xport_etl.settings import Settings

if TYPE_CHECKING:
    from xport_etl.load.staging import SharedStaging

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]

# what `run` covers: list endpoints paged by time window, then fan-out endpoints whose keys come
# from what the lists loaded (logistics per shipped line/order, 1688 refunds per refundId)
LIST_ENDPOINTS = ("taobao_orders", "alibaba_orders", "taobao_refunds")
FANOUT_ENDPOINTS = ("taobao_logistics", "alibaba_refunds", "alibaba_logistics")
RUN_ENDPOINTS = LIST_ENDPOINTS + FANOUT_ENDPOINTS
DEFAULT_CHUNK = timedelta(days=31)  # the longest list window (one manifest, one checkpoint)
DEFAULT_RUN = timedelta(days=31)  # the period one bounded run of `run` loads and publishes
FANOUT_BATCH = 2000  # keys per landed fan-out window (the unit of checkpointing)
FANOUT_WORKERS = 4  # concurrent detail calls; the shared rate limiter paces them
EXTRACT_WORKERS = 4  # list windows paged at once by `run` (XPORT_EXTRACT_WORKERS); same limiter
MAX_PASSES = 3  # passes over a window whose data moves while it is paged


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError(f"window bound {dt!r} has no time zone")
    return dt.astimezone(UTC)


def _make_client(settings: Settings):
    from xport_etl.extract.client import XportClient

    return XportClient(settings)


@contextlib.contextmanager
def client_for(settings: Settings, client=None) -> Iterator:
    """``client`` as it is, or a new client for ``settings`` that is closed on leaving."""
    if client is not None:
        yield client
        return
    own = _make_client(settings)
    try:
        yield own
    finally:
        own.close()


def extract_window(
    settings: Settings,
    endpoint: str,
    start: datetime,
    end: datetime,
    *,
    mode: str = "create",
    client=None,
    progress: Progress | None = None,
) -> str:
    """Page ``endpoint`` for records whose ``mode`` time is in ``[start, end)`` and land the pages.

    Returns:
        The path of the landed window's manifest (a small string, fit for XCom).
    """
    from xport_etl.extract.paginators import PageNumberPaginator

    spec = endpoints_for(settings.assumptions)[endpoint]
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise ConfigError(f"empty window: end {end.isoformat()} is not after start {start.isoformat()}")
    if mode not in spec.windows:
        raise ConfigError(f"endpoint {endpoint} has no {mode!r} window; it has {sorted(spec.windows)}")
    win = spec.windows[mode]
    filters = {
        win.start_field: format_window_value(start, win.time_format, assumptions=settings.assumptions),
        win.end_field: format_window_value(end, win.time_format, assumptions=settings.assumptions),
    }
    wid = window_id(mode, start, end)
    manifest = Manifest(
        endpoint=endpoint,
        mode=mode,
        window_id=wid,
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        run_id=uuid.uuid4().hex,
        extracted_at=utc_now_iso(),
    )
    with client_for(settings, client) as client:
        before = client.stats.as_dict()
        paginator = PageNumberPaginator(
            page_size=settings.page_size, in_body=spec.pages_in_body, max_pages=settings.max_pages
        )
        try:
            with PageWriter(settings.data_dir, manifest, raw_url=settings.raw_url) as writer:
                for attempt in range(1, MAX_PASSES + 1):
                    drift = _page_window(client, spec, filters, paginator, writer, manifest, progress)
                    if drift is None:
                        break
                    manifest.drift_repages += 1
                    log.warning(
                        "%s %s: data moved while paging (%s); paging the window again (%d/%d)",
                        endpoint,
                        wid,
                        drift,
                        attempt,
                        MAX_PASSES,
                    )
                else:
                    # every pass saw the data move: keep all passes (the normaliser merges them, latest
                    # state wins) and say so; the next run of this window settles it
                    manifest.extra["inconsistent"] = drift
                    log.warning("%s %s: still moving after %d passes; landed all passes", endpoint, wid, MAX_PASSES)
                if mode == "create" and "update" in spec.windows and manifest.extra.get("pass_start"):
                    _catch_up(client, spec, filters, paginator, writer, manifest, settings)
                _count_requests(manifest, before, client.stats.as_dict())
                manifest.finished_at = utc_now_iso()
                crashpoint("extract.commit")
                path = writer.commit()
        except Exception as exc:
            append_run(settings.data_dir, _run_row(manifest, outcome="failed", error=str(exc)))
            raise
    log.info("landed %s %s: %d pages, %d records", endpoint, wid, manifest.pages, manifest.records)
    return str(path)


def _page_window(client, spec, filters, paginator, writer, manifest, progress) -> str | None:
    """One pass over the window's pages, landing each; returns why the pass is inconsistent, or
    None. Pages are newest first (docs/api-contract.md#41-moving-data), so records created or
    changed while we page shift between pages: the server's ``total`` changes between the first and
    last page, or we see fewer distinct records than it reported."""
    from xport_etl.extract.paginators import paginate

    first_total = last_total = None
    seen: set[str] = set()
    key = spec.primary_key[0] if spec.primary_key else None
    version = _VERSION_FIELDS.get(spec.name)
    for page in _land(paginate(client, spec, filters, paginator=paginator), writer, manifest):
        if first_total is None:
            first_total = page.total
            # the newest update on the first page: a lower bound of the server's clock when this
            # pass began (no clock of ours is involved), for the catch-up query after the pass
            stamps = page.values(version, spec.members_in) if version else []
            manifest.extra["pass_start"] = pass_start(stamps, spec, client.assumptions)
        last_total = manifest.total = page.total
        if key:
            seen.update(str(v) for v in page.values(key, spec.members_in))
        if progress:
            progress(
                {
                    "event": "page",
                    "endpoint": spec.name,
                    "window": manifest.window_id,
                    "page": page.number,
                    "pages": page.pages,
                    "records": manifest.records,
                    "total": page.total,
                }
            )
    if first_total != last_total:
        return f"total changed from {first_total} to {last_total} while paging"
    if key and last_total is not None and len(seen) != last_total:
        return f"saw {len(seen)} distinct records but the server reported {last_total}"
    return None


def _land(pages, writer, manifest):
    """Land each page as it arrives (a checkpoint for resume) and count it; yield it on."""
    for page in pages:
        writer.write(page.raw)
        crashpoint("extract.page")
        manifest.pages += 1
        manifest.records += len(page.outline)
        yield page


# the field holding a list record's update time, as the API's own time string
_VERSION_FIELDS = {"taobao_orders": "updateTime", "alibaba_orders": "modifyTime"}


def pass_start(stamps: Iterable[Any], spec: EndpointSpec, assumptions: ApiAssumptions = ASSUMED) -> str | int | None:
    """The newest of a page's update times, written as the endpoint's update window wants it.

    The times may come in either API format (1688 writes ``yyyyMMddHHmmssSSS±hhmm`` too,
    docs/api-contract.md#57-1688-orders), so they are compared as times, not as text; unreadable
    ones are skipped.
    """
    times = []
    for stamp in stamps:
        if isinstance(stamp, str) and stamp:
            try:
                times.append(parse_alibaba_time(stamp, assumptions=assumptions))
            except (ValueError, OverflowError):
                continue
    if not times:
        return None
    return format_window_value(max(times), spec.windows["update"].time_format, assumptions=assumptions)


def _catch_up(client, spec, filters, paginator, writer, manifest, settings) -> None:
    """Land what changed in the window while it was paged.

    Pages are ordered by creation time, so a record whose status changes after its page was read
    stays where it was and the pass cannot notice. One more query for the same creation window
    restricted to records updated since the first page's newest update (a lower bound of the
    server's clock when the pass began) returns exactly those; the normaliser keeps their latest
    state. Endpoints without an update filter (the Taobao refund list) rely on the next run.
    """
    from xport_etl.extract.paginators import paginate

    since = manifest.extra["pass_start"]
    upd = spec.windows["update"]
    query = {**filters, upd.start_field: since}
    found = 0
    for page in _land(paginate(client, spec, query, paginator=paginator), writer, manifest):
        found += len(page.outline)
    manifest.extra["catch_up_records"] = found


PARALLEL_STAGE_BYTES = 8 * 2**20  # below this much landed (gzip) data, one process is faster


def _stage_options(settings: Settings) -> dict[str, Any]:
    """:func:`xport_etl.load.staging.stage_window`'s settings (also sent to worker processes)."""
    return {"sql_normalizer": settings.sql_normalizer, "memory_limit": settings.stage_memory}


def _stage_workers(manifests: Sequence[Manifest], configured: int | None = None) -> int:
    """How many processes normalise the windows: ``configured`` (``Settings.workers``) if set, else
    every core once the landed pages are large enough to pay for starting the workers (about a second)."""
    if len(manifests) < 2:
        return 1
    if configured:
        return max(1, min(configured, len(manifests)))
    size = sum((m.directory / "pages.jsonl.gz").stat().st_size for m in manifests)
    return min(os.cpu_count() or 1, len(manifests)) if size >= PARALLEL_STAGE_BYTES else 1


def _stage_in_processes(settings: Settings, manifests: Sequence[Manifest], workers: int) -> list:
    """Normalise windows in parallel worker processes (they are independent; publishing stays
    single). Each worker is ``python -m xport_etl.load.staging`` over its share of the windows, so
    nothing depends on how the caller's ``__main__`` was started; the batches come back through
    the batch markers they write. A crash point reached in a worker takes the pipeline process
    down with it (see :mod:`xport_etl.faults`), exactly as in a single-process run.
    """
    import subprocess
    import sys

    from xport_etl.load.staging import batch_marker, read_batch
    from xport_etl.settings import worker_environ

    fields = {f.name: getattr(settings.assumptions, f.name) for f in dataclasses.fields(settings.assumptions)}
    spec = json.dumps({k: sorted(v) if isinstance(v, frozenset) else v for k, v in fields.items()}, default=dict)
    options = json.dumps(_stage_options(settings))
    env = worker_environ(os.getpid())
    shares = [manifests[i::workers] for i in range(workers)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xport_etl.load.staging",
                str(settings.data_dir),
                spec,
                options,
                *[str(m.directory) for m in share],
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]
    errors = [err for p in procs if (err := p.communicate()[1]) is not None and p.returncode != 0]
    if errors:
        last = (errors[0].strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"normalising a window failed in a worker process: {last}")
    return [read_batch(batch_marker(settings.data_dir, m.endpoint, m.window_id)) for m in manifests]


def _workers(configured: int | None, default: int, count: int) -> int:
    """``count`` capped by the ``configured`` setting (else ``default``), at least 1."""
    return max(1, min(configured or default, count))


class SqlStager:
    """Stages the DuckDB normaliser's windows on threads, as they are submitted: the windows of a
    load, or (``run``) each window as soon as it lands while the next ones are paged.

    A window's statements run on small tables (a chunk of pages), which DuckDB scans on one
    thread; so chunks, not statements, are what spreads over the cores: ``Settings.workers``
    threads (default every core) type the chunks of the windows being staged (of one window
    alone, when a period was landed as one window), then write their months
    (:class:`xport_etl.load.staging.SharedStaging`: one DuckDB, one memory budget, a cursor a
    thread); up to as many windows are staged at once. DuckDB releases the GIL while it works, so
    threads do what worker processes would, as fast (see bench/NOTES.md), in one process's
    memory. Staging is
    idempotent per window, so a window staged by a run that fails later is simply staged again
    by the re-run. Windows of the Python normalisers are not for this class (they hold the GIL).
    """

    def __init__(self, settings: Settings) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.settings = settings
        self.workers = _workers(settings.workers, os.cpu_count() or 1, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="stage")
        self._futures: dict[Any, Any] = {}
        self._shared: SharedStaging | None = None

    def submit(self, key: Any, manifest: Manifest) -> None:
        from xport_etl.load.staging import SharedStaging, stage_window

        self._shared = self._shared or SharedStaging(self.settings.data_dir, self.settings.stage_memory, self.workers)
        self._futures[key] = self._pool.submit(
            stage_window,
            self.settings.data_dir,
            manifest,
            assumptions=self.settings.assumptions,
            shared=self._shared,
            **_stage_options(self.settings),
        )

    def on_done(self, key: Any, callback: Callable[..., Any]) -> None:
        """Call ``callback(future)`` when the window submitted as ``key`` is staged (or failed)."""
        self._futures[key].add_done_callback(callback)

    def result(self, key: Any):
        """The batch of the window submitted as ``key`` (waits; a staging error is raised here)."""
        return self._futures[key].result()

    def batches(self) -> dict[Any, Any]:
        """Every submitted window's batch, by key."""
        return {key: self.result(key) for key in self._futures}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._shared is not None:
            self._shared.close()


def _staged_ok(future) -> bool:
    return not future.cancelled() and future.exception() is None


def _stage_sql_windows(settings: Settings, manifests: Sequence[Manifest]) -> Iterator[tuple[Manifest, Any]]:
    """Stage the DuckDB normaliser's windows (:class:`SqlStager`); yield each batch in order."""
    stager = SqlStager(settings)
    try:
        for i, m in enumerate(manifests):
            stager.submit(i, m)
        for i, m in enumerate(manifests):
            yield m, stager.result(i)
    finally:
        stager.close()


def stage_windows(
    settings: Settings,
    manifests: Sequence[str | Path],
    *,
    progress: Progress | None = None,
    staged: dict[str, Any] | None = None,
) -> tuple[list[Manifest], list[Any]]:
    """Normalise landed windows to Parquet; returns the manifests and their batches, in order.

    Args:
        staged: batches already staged, by manifest path (see :class:`_ListLander`); the other
            windows are staged here.
    """
    from xport_etl.load.staging import stage_window, use_sql

    loaded = [read_manifest(m) for m in manifests]
    early = staged or {}
    by_window = {
        (m.endpoint, m.window_id): early[str(p)] for p, m in zip(manifests, loaded, strict=True) if str(p) in early
    }
    todo = [m for m in loaded if (m.endpoint, m.window_id) not in by_window]
    # the DuckDB normaliser's windows are staged here on threads (see _stage_sql_windows); the
    # Python normalisers' windows go to worker processes when they are large
    in_sql = [m for m in todo if use_sql(m.endpoint, settings.assumptions, settings.sql_normalizer)]
    in_python = [m for m in todo if not use_sql(m.endpoint, settings.assumptions, settings.sql_normalizer)]
    workers = _stage_workers(in_python, settings.workers)
    if workers > 1:
        for m, b in zip(in_python, _stage_in_processes(settings, in_python, workers), strict=True):
            by_window[(m.endpoint, m.window_id)] = b
        in_python = []
    for m in in_python:
        by_window[(m.endpoint, m.window_id)] = stage_window(
            settings.data_dir, m, assumptions=settings.assumptions, **_stage_options(settings)
        )
        if progress:
            progress({"event": "staged", "endpoint": m.endpoint, "window": m.window_id})
    for m, batch in _stage_sql_windows(settings, in_sql):
        by_window[(m.endpoint, m.window_id)] = batch
        if progress:
            progress({"event": "staged", "endpoint": m.endpoint, "window": m.window_id})
    return loaded, [by_window[(m.endpoint, m.window_id)] for m in loaded]


def _success_rows(loaded: Sequence[Manifest], batches: Sequence[Any]) -> list[dict[str, Any]]:
    from xport_etl.load.publish import rows_json

    return [
        _run_row(
            m,
            outcome="success",
            rejected=b.counts.get("rejects", 0),
            warnings=b.counts.get("warnings", 0),
            rows_written=rows_json({t: n for t, n in b.counts.items() if t not in ("rejects", "warnings")}),
        )
        for m, b in zip(loaded, batches, strict=True)
    ]


def merge_windows(
    settings: Settings,
    state,
    manifests: Sequence[str | Path],
    *,
    progress: Progress | None = None,
    staged: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Normalise landed windows and merge them into a run's next state (published later, once,
    by :func:`publish_state`); returns the rows written per table."""
    loaded, batches = stage_windows(settings, manifests, progress=progress, staged=staged)
    return state.merge(batches, rows=_success_rows(loaded, batches))


def publish_state(settings: Settings, state, *, progress: Progress | None = None) -> dict[str, Any]:
    """Check a run's next state and swap it in for the published warehouse (see
    :class:`xport_etl.load.publish.NextState`); then record its windows in the run ledger.

    Returns:
        Small counts: rows written per table, rejects, batches, the warehouse path.
    """
    pending = state.pending_rows
    started = time.time()
    if progress:
        progress({"event": "publish", "phase": "start", "batches": len(state.batches)})
    try:
        result = state.publish(
            runs=read_runs(settings.data_dir, pending=pending),
            settings={"report_tz": settings.report_tz},
            check_overrides=settings.check_overrides,
        )
    except Exception as exc:
        for row in pending:
            append_run(settings.data_dir, {**row, "outcome": "failed", "error": str(exc)})
        raise
    for row in pending:
        append_run(settings.data_dir, row)
    log.info("published %d batches in %.1f s: %s", result.batches, time.time() - started, result.rows_written)
    if progress:
        progress(
            {
                "event": "publish",
                "phase": "done",
                "batches": result.batches,
                "rows_written": result.rows_written,
                "seconds": time.time() - started,
            }
        )
    return {
        "batches": result.batches,
        "rows_written": result.rows_written,
        "rejects": result.rejects,
        "warehouse": result.warehouse,
    }


def load_windows(
    settings: Settings,
    manifests: Sequence[str | Path],
    *,
    progress: Progress | None = None,
    staged: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Normalise landed windows to Parquet and publish them into the warehouse atomically, at once
    (``xport-etl load``, the callbacks' refresh: a run of one load).

    Args:
        staged: batches already staged, by manifest path; the other windows are staged here.

    Returns:
        Small counts: rows written per table, rejects, batches.
    """
    from xport_etl.load.publish import NextState

    state = NextState(settings.data_dir, f"load-{uuid.uuid4().hex}", settings.load_memory)
    try:
        merge_windows(settings, state, manifests, progress=progress, staged=staged)
        return publish_state(settings, state, progress=progress)
    finally:
        state.discard()
        state.forget()


def fanout_keys(settings: Settings, endpoint: str, state=None) -> tuple[list[dict[str, Any]], datetime | None]:
    """The keys a fan-out endpoint must (re)fetch, from the run's next state ``state`` (what the
    run has loaded so far, unpublished) if it has one, else from the published warehouse.

    Each row has ``key`` (the detail call's parameter) and context columns (parent ids) that are
    landed with the page. The query is ``sql/fanout/<endpoint>.sql``: it asks only for what can
    still change (a delivered parcel or a finished refund is not fetched again), and something
    that can still change only once the API's clock has moved ``settings.refetch_after`` seconds
    since its last fetch. The API's clock is the latest order update the warehouse has seen: it
    follows the real API's "now" and the sandbox's simulated one alike.

    Returns:
        The key rows, and the API clock they were chosen at (None for an empty warehouse).
    """
    from xport_etl.load.publish import SQL_DIR, connect_reader, warehouse_path

    if state is not None and state.exists():
        con = state.connect_reader()
    elif warehouse_path(settings.data_dir).exists():
        con = connect_reader(settings.data_dir)
    else:
        return [], None
    try:
        data_now = con.execute("select max(updated_at) from fct_orders").fetchall()[0][0]
        params = {"data_now": data_now or datetime(1970, 1, 1), "refetch_s": float(settings.refetch_after)}
        sql = (SQL_DIR / "fanout" / f"{endpoint}.sql").read_text()
        cur = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()], data_now
    finally:
        con.close()


def extract_fanout(
    settings: Settings,
    endpoint: str,
    *,
    keys: Sequence[dict[str, Any]] | None = None,
    state=None,
    client=None,
    progress: Progress | None = None,
    on_landed: Callable[[str], None] | None = None,
) -> list[str]:
    """Call a detail endpoint once per key and land the answers, ``FANOUT_BATCH`` keys a window.

    The keys are ``keys`` if given, else what :func:`fanout_keys` chooses from the run's next
    state ``state`` (or the published warehouse).

    A key the server does not know (code 404) is skipped and counted; any other failure fails
    the window, and windows already landed stay landed.

    Returns:
        The manifest paths of the landed windows (possibly none).
    """
    from concurrent.futures import ThreadPoolExecutor

    from xport_etl.errors import FatalError

    spec = endpoints_for(settings.assumptions)[endpoint]
    data_now = None
    if keys is None:
        keys, data_now = fanout_keys(settings, endpoint, state)
    keys = list(keys)
    if not keys:
        return []
    stamp = datetime.now(UTC)
    paths = []

    def call(row: dict[str, Any]):
        args = {spec.detail_param: row["key"]}
        try:
            if spec.method == "POST":
                return client.request(spec, body=args)
            return client.request(spec, params=args)
        except FatalError as exc:
            if exc.code == 404:
                return None
            raise

    with client_for(settings, client) as client, ThreadPoolExecutor(max_workers=FANOUT_WORKERS) as pool:
        for n, lo in enumerate(range(0, len(keys), FANOUT_BATCH)):
            chunk = keys[lo : lo + FANOUT_BATCH]
            wid = f"keys_{stamp:%Y%m%dT%H%M%S%fZ}_{n:04d}"
            manifest = Manifest(
                endpoint=endpoint,
                mode="keys",
                window_id=wid,
                window_start=stamp.isoformat(),
                window_end=stamp.isoformat(),
                run_id=uuid.uuid4().hex,
                extracted_at=utc_now_iso(),
            )
            if data_now is not None:
                manifest.extra["data_clock"] = data_now.isoformat()
            before = client.stats.as_dict()
            try:
                with PageWriter(settings.data_dir, manifest, raw_url=settings.raw_url) as writer:
                    for done, (row, response) in enumerate(zip(chunk, pool.map(call, chunk), strict=True), 1):
                        if response is None:
                            manifest.extra["not_found"] = manifest.extra.get("not_found", 0) + 1
                        else:
                            context = {k: (None if v is None else str(v)) for k, v in row.items()}
                            writer.write(response.raw, context=context)
                            crashpoint("fanout.page")
                            manifest.pages += 1
                            manifest.records += 1
                        # a page event per 50 keys answered, and one for the last
                        if progress and (done % 50 == 0 or done == len(chunk)):
                            progress(
                                {
                                    "event": "page",
                                    "endpoint": endpoint,
                                    "window": wid,
                                    "page": done,
                                    "pages": len(chunk),
                                    "records": manifest.records,
                                    "total": len(chunk),
                                }
                            )
                    _count_requests(manifest, before, client.stats.as_dict())
                    manifest.finished_at = utc_now_iso()
                    paths.append(str(writer.commit()))
                    if on_landed:
                        on_landed(paths[-1])
            except Exception as exc:
                append_run(settings.data_dir, _run_row(manifest, outcome="failed", error=str(exc)))
                raise
    return paths


def _count_requests(manifest: Manifest, before: dict, after: dict) -> None:
    manifest.requests = int(after.get("requests", 0) - before.get("requests", 0))
    manifest.retries = int(after.get("retries", 0) - before.get("retries", 0))
    manifest.http_429 = int(after.get("http_429", 0) - before.get("http_429", 0))


def interval_window(
    settings: Settings,
    endpoint: str,
    start: datetime,
    end: datetime,
    *,
    lookback: timedelta = timedelta(0),
    now: datetime | None = None,
) -> tuple[str, datetime, datetime]:
    """The window an incremental run reads for the data interval ``[start, end)``.

    An endpoint declared ``incremental="update"`` reads what changed in the interval; one declared
    ``"create"`` re-reads its declared ``lookback`` before the interval (records keep changing
    after they are created). ``lookback`` widens either (a first load, a backfill). The window
    ends ``settings.safety_lag`` before ``now``: the newest writes may not be visible yet.

    Returns:
        ``(mode, window_start, window_end)``.
    """
    spec = endpoints_for(settings.assumptions)[endpoint]
    mode = spec.incremental or "create"
    start, end = _utc(start), _utc(end)
    now = _utc(now) if now else datetime.now(UTC)
    end = min(end, now - timedelta(seconds=settings.safety_lag))
    start = start - spec.lookback - lookback
    if end <= start:
        raise ValueError(f"{endpoint}: the interval ends within the safety lag of now; nothing to read yet")
    return mode, start, end


def extract_interval(
    settings: Settings,
    endpoint: str,
    start: datetime,
    end: datetime,
    *,
    lookback: timedelta = timedelta(0),
    chunk: timedelta = DEFAULT_CHUNK,
    client=None,
    progress: Progress | None = None,
) -> list[str]:
    """Land a list endpoint for an incremental run's data interval (see :func:`interval_window`),
    in windows of at most ``chunk``; returns the manifest paths (what the DAG's tasks call)."""
    mode, lo, hi = interval_window(settings, endpoint, start, end, lookback=lookback)
    return [
        extract_window(settings, endpoint, a, b, mode=mode, client=client, progress=progress)
        for a, b in split_window(lo, hi, chunk)
    ]


_PLAN_LOCK = threading.RLock()


@dataclass
class RunPlan:
    """A command's progress, kept with the data so that any worker can resume it after a crash.

    ``state/plans/<id>.json``, where the id is a hash of the command's parameters: running the
    same command again continues an unfinished plan from what it had landed (landed windows are
    checkpoints; staging and merging are idempotent), and starts a fresh plan once the previous
    one is done. A command is a sequence of bounded runs (``runs``: each a list of list windows),
    each published once; ``published`` holds the runs done, the other fields the current one.
    """

    path: Path
    params: dict[str, Any]
    landed: dict[str, str] = field(default_factory=dict)
    published: list[int] = field(default_factory=list)
    lists_merged: bool = False
    fanout_pending: list[str] = field(default_factory=list)
    fanout_done: list[str] = field(default_factory=list)
    status: str = "running"
    resumed: bool = False

    @property
    def digest(self) -> str:
        return self.path.stem

    @classmethod
    def open(cls, data_dir: Path, params: dict[str, Any]) -> RunPlan:
        digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = Path(data_dir) / "state" / "plans" / f"{digest}.json"
        if path.exists():
            data = json.loads(path.read_text())
            known = {f.name for f in dataclasses.fields(cls)} - {"path", "resumed"}
            if data.get("status") == "running" and "published" in data:  # (a plan of this layout)
                return cls(path=path, resumed=True, **{k: v for k, v in data.items() if k in known})
        plan = cls(path=path, params=json.loads(json.dumps(params, default=str)))
        plan.save()
        return plan

    def save(self) -> None:
        with _PLAN_LOCK:  # windows land on paging threads while the run goes on
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = {k: v for k, v in asdict(self).items() if k not in ("path", "resumed")}
            write_atomic(self.path, json.dumps(data, indent=2).encode())

    def record_landed(self, key: str, path: str) -> None:
        """A list window landed (a checkpoint): kept in the plan at once."""
        with _PLAN_LOCK:
            self.landed[key] = path
            self.save()

    def next_run(self) -> None:
        """The current run is published: clear its progress for the next one."""
        self.lists_merged = False
        self.fanout_pending, self.fanout_done = [], []


def run_key(*parts: str) -> str:
    """A next-state key for a run named by ``parts`` (e.g. an Airflow DAG id and run id)."""
    return "run-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:20]


def run_window(
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    endpoints: Iterable[str] = RUN_ENDPOINTS,
    mode: str = "create",
    incremental: bool = False,
    chunk: timedelta = DEFAULT_CHUNK,
    span: timedelta = DEFAULT_RUN,
    wait: bool = True,
    client=None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Load ``[start, end)`` as a sequence of bounded runs, each published once.

    A run lands its list windows, merges them into the run's next state, fetches the fan-out
    endpoints for the keys that next state names (what the run loaded, before anyone can see it),
    merges them too, and publishes: a reader sees the warehouse before the run or after it,
    never orders whose parcels or refunds belong to another run. A period longer than ``span``
    is several runs, the newest first, so the latest month is readable while older ones load.
    Resumable: see :class:`RunPlan`.

    Args:
        mode: the list endpoints' window (``"create"``: by creation time), in windows of at most
            ``chunk`` (several paged at once), in runs of ``span``.
        incremental: instead of ``mode``, each list endpoint reads its declared incremental
            window for the interval (update time, or creation time with a lookback; see
            :func:`interval_window`), as the hourly DAG does: one run.
        wait: when another command is running on the same data directory, wait for it to finish
            (logged); ``False``: raise :class:`~xport_etl.errors.RunInProgressError` at once.
    """
    with run_lock(settings.data_dir, wait=wait, progress=progress):
        return _run_window(
            settings,
            start,
            end,
            endpoints=endpoints,
            mode=mode,
            incremental=incremental,
            chunk=chunk,
            span=span,
            client=client,
            progress=progress,
        )


@contextlib.contextmanager
def run_lock(data_dir: Path, *, wait: bool = True, progress: Progress | None = None) -> Iterator[None]:
    """One ``run``/``backfill`` at a time on a data directory (``state/run.lock``, an ``flock``
    released by the kernel when the process dies, so a crashed run never leaves it held).

    A second run would otherwise resume the first's plan while it is still running. It waits for
    the first (saying so once), or with ``wait=False`` refuses at once.
    """
    import fcntl

    from xport_etl.errors import RunInProgressError

    path = Path(data_dir) / "state" / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(handle)
            if not wait:
                raise RunInProgressError(f"another run{holder} is in progress on {data_dir}") from None
            log.warning("another run%s is in progress on %s: waiting for it to finish", holder, data_dir)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_holder(handle) -> str:
    handle.seek(0)
    pid = handle.read().strip()
    return f" (pid {pid})" if pid.isdigit() else ""


def _run_window(
    settings: Settings, start: datetime, end: datetime, *, endpoints, mode, incremental, chunk, span, client, progress
) -> dict[str, Any]:
    endpoints = list(endpoints)
    lists = [e for e in endpoints if e not in FANOUT_ENDPOINTS]
    fanouts = [e for e in endpoints if e in FANOUT_ENDPOINTS]
    start, end = _utc(start), _utc(end)
    runs: list[list[tuple]] = []
    if incremental:
        windows = []
        for e in lists:
            m, lo, hi = interval_window(settings, e, start, end)
            windows += [(e, m, a, b) for a, b in split_window(lo, hi, chunk)]
        runs.append(windows)
    else:
        for lo, hi in reversed(split_window(start, end, max(span, chunk))):
            runs.append([(e, mode, a, b) for e in lists for a, b in split_window(lo, hi, chunk)])
    plan = RunPlan.open(
        settings.data_dir,
        {
            "endpoints": endpoints,
            "runs": [[(e, m, a.isoformat(), b.isoformat()) for e, m, a, b in w] for w in runs],
        },
    )
    if plan.resumed:
        log.warning("resuming an unfinished run from %s", plan.path)
        if progress:
            progress({"event": "resume", "plan": str(plan.path)})
    results: dict[str, Any] = {
        "batches": 0,
        "rows_written": {},
        "rejects": 0,
        "warehouse": None,
        "resumed": plan.resumed,
        "runs": len(runs),
    }
    lists_client = client  # the caller's client, or None: each list window opens its own
    todo = [w for i, run in enumerate(runs) if i not in plan.published for w in run]
    lander = _ListLander(settings, plan, todo, client=lists_client, progress=progress)
    with client_for(settings, client) as client, contextlib.closing(lander):
        for i, windows in enumerate(runs):
            if i in plan.published:
                continue
            if progress and len(runs) > 1 and windows:
                tz = ZoneInfo(settings.report_tz)
                lo, hi = min(w[2] for w in windows).astimezone(tz), max(w[3] for w in windows).astimezone(tz)
                progress(
                    {
                        "event": "run",
                        "run": i + 1,
                        "runs": len(runs),
                        "message": f"run {i + 1} of {len(runs)}: {lo:%Y-%m-%d %H:%M} → {hi:%Y-%m-%d %H:%M}",
                    }
                )
            one = _run_once(settings, plan, i, windows, fanouts, client=client, lander=lander, progress=progress)
            _add_result(results, one)
            plan.published.append(i)
            plan.next_run()
            plan.save()
        plan.status = "done"
        plan.save()
    return results


def _run_once(
    settings: Settings,
    plan: RunPlan,
    index: int,
    windows: Sequence[tuple],
    fanouts: Sequence[str],
    *,
    client,
    lander: _ListLander,
    progress: Progress | None,
) -> dict[str, Any]:
    """One bounded run of :func:`run_window`: lists, fan-outs, one publish."""
    from xport_etl.load.publish import NextState

    state = NextState(settings.data_dir, f"plan-{plan.digest}-{index:04d}", settings.load_memory)
    if not plan.lists_merged:
        manifests, staged = lander.wait(windows)
        if manifests:
            merge_windows(settings, state, manifests, progress=progress, staged=staged)
        plan.lists_merged = True
        plan.save()
    crashpoint("run.fanout")

    def landed(path: str) -> None:
        plan.fanout_pending.append(path)
        plan.save()

    for e in fanouts:
        if e in plan.fanout_done:
            continue
        # windows of this endpoint landed by a crashed attempt: merge them before asking again
        # (the keys are chosen from the next state, so what they answered is not asked again)
        if plan.fanout_pending:
            _merge_pending(settings, plan, state, progress)
        extract_fanout(settings, e, state=state, client=client, progress=progress, on_landed=landed)
        _merge_pending(settings, plan, state, progress)
        plan.fanout_done.append(e)
        plan.save()
    if not state.exists():  # nothing landed at all: nothing to publish
        return {"batches": 0, "rows_written": {}, "rejects": 0, "warehouse": None}
    return publish_state(settings, state, progress=progress)


def _merge_pending(settings: Settings, plan: RunPlan, state, progress: Progress | None) -> None:
    if plan.fanout_pending:
        merge_windows(settings, state, plan.fanout_pending, progress=progress)
    plan.fanout_pending = []
    plan.save()


class _ListLander:
    r"""Lands the list windows of a command's bounded runs, several at once, the newest run's first,
    and stages each DuckDB-normalised window as soon as it lands (:class:`SqlStager`); each run
    :meth:`wait`\ s for its own windows while the older runs' windows go on landing, so paging
    never waits for a run's fan-outs and publish.

    Each paging thread has its own client (its own request counts for the window's manifest); they
    share the access key's machine-wide rate limiter, so the budget is the same as one client's.
    Paging several windows at once (``Settings.extract_workers``) is what keeps requests in flight
    while one answer travels or is written (the real API's round trip is its latency, not its
    rate limit), and what lets staging overlap paging. A ``client`` passed in is used alone, one
    window at a time.

    The other windows start once the first has landed a page, so a run with wrong credentials or
    an API that is down fails after one request. A window that fails stops the command from
    starting more windows (a broken endpoint is not asked again for every window), but the windows
    already in flight finish and are checkpointed in the plan; the run that needs a failed (or
    never started) window raises the first error, and a re-run pages only what is missing.
    """

    def __init__(
        self,
        settings: Settings,
        plan: RunPlan,
        windows: Sequence[tuple],
        *,
        client=None,
        progress: Progress | None = None,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.settings, self.plan, self.client, self.progress = settings, plan, client, progress
        self.stager = SqlStager(settings)
        self._staged: set[str] = set()
        self._failure: BaseException | None = None
        self._failing = threading.Event()  # set by the first window that fails: start no more
        # the other windows wait until the first one has landed a page (or finished): wrong
        # credentials or a down API cost one request, not one per window in flight
        self._opened = threading.Event()
        todo = [w for w in windows if not self._landed(w)]
        self._first = todo[0] if todo else None
        workers = 1 if client is not None else _workers(settings.extract_workers, EXTRACT_WORKERS, len(todo))
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="extract")
        self._futures = {w: self._pool.submit(self._extract, w) for w in todo}

    @staticmethod
    def _key(window: tuple) -> str:
        e, m, lo, hi = window
        return f"{e}/{window_id(m, lo, hi)}"

    def _landed(self, window: tuple) -> str | None:
        path = self.plan.landed.get(self._key(window))
        return path if path is not None and storage.exists(path) else None  # a path or a URL

    def _paged(self, event: dict[str, Any]) -> None:
        if event.get("event") == "page":
            self._opened.set()
        if self.progress:
            self.progress(event)

    def _extract(self, window: tuple) -> str | None:
        if window != self._first:
            while not self._opened.wait(0.05):
                if self._failing.is_set():
                    return None
        if self._failing.is_set():
            return None
        e, m, lo, hi = window
        try:
            path = extract_window(self.settings, e, lo, hi, mode=m, client=self.client, progress=self._paged)
        except BaseException as exc:
            if self._failure is None:
                self._failure = exc
            self._failing.set()
            raise
        finally:
            if window == self._first:
                self._opened.set()
        self.plan.record_landed(self._key(window), path)
        self._stage(path)
        return path

    def _stage(self, path: str) -> None:
        from xport_etl.load.staging import use_sql

        if path in self._staged:
            return
        m = read_manifest(path)
        if use_sql(m.endpoint, self.settings.assumptions, self.settings.sql_normalizer):
            self._staged.add(path)
            self.stager.submit(path, m)
            progress = self.progress
            if progress is not None:
                event = {"event": "staged", "endpoint": m.endpoint, "window": m.window_id}
                self.stager.on_done(path, lambda f, event=event: _staged_ok(f) and progress(event))

    def wait(self, windows: Sequence[tuple]) -> tuple[list[str], dict[str, Any]]:
        """The manifest paths of ``windows`` (in order) once landed, and the batches staged so far,
        by path. Raises the error of a window that failed, or the first error of the command if one
        of them was never started."""
        paths = []
        for w in windows:
            future = self._futures.get(w)
            if future is None:
                path = self._landed(w)
                if path is None:  # landed before, gone since: land it again
                    e, m, lo, hi = w
                    path = extract_window(self.settings, e, lo, hi, mode=m, client=self.client, progress=self._paged)
                    self.plan.record_landed(self._key(w), path)
                self._stage(path)
            else:
                path = future.result()
                if path is None:
                    raise self._failure or RuntimeError("a list window was not paged")
            paths.append(path)
        return paths, {p: self.stager.result(p) for p in paths if p in self._staged}

    def close(self) -> None:
        """Stop starting windows; the ones in flight finish and are checkpointed."""
        self._failing.set()
        self._opened.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.stager.close()


def _add_result(total: dict[str, Any], one: dict[str, Any]) -> None:
    total["batches"] += one["batches"]
    total["rejects"] += one["rejects"]
    total["warehouse"] = one["warehouse"] or total["warehouse"]
    for table, n in one["rows_written"].items():
        total["rows_written"][table] = total["rows_written"].get(table, 0) + n


# ---- one run in several processes (the Airflow tasks of one DAG run)


def load_into_run(settings: Settings, manifests: Sequence[str | Path], key: str) -> dict[str, int]:
    """Normalise landed windows and merge them into the next state of run ``key`` (see
    :func:`run_key`), unpublished: :func:`publish_run` publishes it once, at the end of the run."""
    from xport_etl.load.publish import NextState

    return merge_windows(settings, NextState(settings.data_dir, key, settings.load_memory), manifests)


def extract_fanout_for_run(settings: Settings, endpoint: str, key: str) -> list[str]:
    """:func:`extract_fanout` with the keys chosen from run ``key``'s next state."""
    from xport_etl.load.publish import NextState

    return extract_fanout(settings, endpoint, state=NextState(settings.data_dir, key, settings.load_memory))


def publish_run(settings: Settings, key: str) -> dict[str, Any]:
    """Publish run ``key``'s next state, once (:func:`publish_state`); a run that merged nothing,
    or whose next state was already published (a retried task), publishes nothing."""
    from xport_etl.load.publish import NextState

    state = NextState(settings.data_dir, key, settings.load_memory)
    if not state.exists():
        return {"batches": 0, "rows_written": {}, "rejects": 0, "warehouse": None}
    return publish_state(settings, state)


def refresh_warehouse(settings: Settings) -> dict[str, Any]:
    """Re-create the report views and re-run every data check, publishing atomically.

    What the reports DAG runs after the loads: a new state is published unless an error check
    fails (``CheckFailedError``), with the reporting time zone from ``settings``.
    """
    from xport_etl.load.publish import publish

    result = publish(
        settings.data_dir,
        [],
        runs=read_runs(settings.data_dir),
        settings={"report_tz": settings.report_tz},
        check_overrides=settings.check_overrides,
        memory_limit=settings.load_memory,
    )
    return {"warehouse": result.warehouse}


def split_window(start: datetime, end: datetime, chunk: timedelta) -> list[tuple[datetime, datetime]]:
    out, lo = [], start
    while lo < end:
        hi = min(lo + chunk, end)
        out.append((lo, hi))
        lo = hi
    return out


# ---- the run ledger
