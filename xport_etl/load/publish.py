"""A run's next state of the warehouse, built by its loads and published once, atomically.

Readers (analysts, BI tools) only ever open the published warehouse read-only, and no writer ever
opens it. A run builds its **next state** (:class:`NextState`): a copy of the published file under
``state/next/``, into which each of the run's loads merges its batches (:mod:`~xport_etl.load.merge`;
the list endpoints first, then the fan-outs, whose keys are read from this next state, not from
the published one). At the end of the run the next state is checked (:mod:`~xport_etl.load.checks`)
and swapped in for the published file, once (:class:`~xport_etl.load.published.PublishedWarehouse`):
a reader sees the state before the run or the state after it, never orders whose parcels belong to
another run. If another writer published in the meantime, the run's batches are merged again onto
that newer state before the swap (the merge rule makes the result independent of the order), so
nothing another writer published is lost.

An error check above its threshold blocks the publish; a warn check is recorded and the state
published; every check's outcome goes to the check ledger and ``etl_check_results``. A reader that
opened the old file keeps reading the old, complete state until it reconnects; a new connection
sees the new state; nobody ever sees half a load or a lock error. A failure anywhere before the
swap leaves the published file exactly as it was. One publisher at a time is enforced by the
publish lock; one run's loads into its next state are serialised by a lock of their own.

Every publish also brings the state to this version's schema (:mod:`~xport_etl.load.migrate`),
mirrors the run ledger into ``etl_runs`` and re-creates the report views, macros and comments
(:mod:`xport_etl.report.views`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from xport_etl.faults import crashpoint
from xport_etl.fsutil import file_lock, write_atomic
from xport_etl.layout import DataLayout, Where
from xport_etl.ledger import replace_runs
from xport_etl.load.checks import (
    CheckFailedError,
    append_check_results,
    apply_overrides,
    count_outcomes,
    evaluate_checks,
    failure_message,
    mirror_check_results,
    parse_check,
    record_checks,
)
from xport_etl.load.connect import LOAD_MEMORY, connect_writer
from xport_etl.load.merge import merge_rejects, merge_staged
from xport_etl.load.migrate import create_state_file, ensure_schema, set_settings
from xport_etl.load.published import PublishedWarehouse
from xport_etl.load.staging import Batch
from xport_etl.report.views import describe_objects, refresh_views
from xport_etl.resources import sql_objects
from xport_etl.run_ids import new_publish_id, new_run_id
from xport_etl.schemas import STAGED_TABLES, WAREHOUSE_TABLES
from xport_etl.settings import DEFAULT_WAREHOUSE_STORAGE_VERSION

__all__ = ["LoadResult", "NextState", "publish", "rows_json", "view_settings"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class LoadResult:
    warehouse: str
    batches: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    run_id: str | None = None
    publish_id: str | None = None
    checks: dict[str, int] = field(default_factory=dict)  # outcome → checks with it


def view_settings(settings: Any) -> dict[str, str]:
    """What a publish records in ``etl_settings`` for the views to read, from a
    :class:`~xport_etl.settings.Settings`: the reporting time zone (``report_tz``) and the stuck
    list's recency window (``stuck_recent_days``)."""
    return {"report_tz": settings.report_tz, "stuck_recent_days": str(settings.stuck_recent_days)}


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
            default :data:`~xport_etl.load.connect.LOAD_MEMORY`). A step that does not fit runs once more without it.
        storage_version: the DuckDB storage version the state is written in
            (``Settings.warehouse_storage_version``; see :func:`~xport_etl.load.migrate.create_state_file`).
        run_id: the run's id (default: the one the sidecar holds, else a new one at the first merge).
    """

    def __init__(
        self,
        data_dir: Where,
        key: str,
        memory_limit: str | None = None,
        storage_version: str | None = None,
        run_id: str | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", key):
            raise ValueError(f"next-state key {key!r} is not [A-Za-z0-9_-]")
        self.layout = DataLayout.of(data_dir)
        if self.layout.stored and type(self) is NextState:
            raise ValueError("under a storage URL a next state is a StoredNextState (xport_etl.run.state.next_state)")
        self.published = PublishedWarehouse(self.layout)
        self.key = key
        self.memory_limit = memory_limit or LOAD_MEMORY
        self.storage_version = storage_version or DEFAULT_WAREHOUSE_STORAGE_VERSION
        self.run_id = run_id
        self._checked: dict[str, int] = {}  # the last publish's check outcomes, counted
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

    def resolved_run_id(self) -> str:
        """The run's id: the one given, else the sidecar's, else a new one (kept from here on)."""
        if self.run_id is None:
            meta = self.meta()
            self.run_id = (meta or {}).get("run_id") or new_run_id()
        return self.run_id

    def _own(self, meta: dict) -> dict:
        """``meta`` with this run's id; a sidecar a version before run ids wrote (no ``run_id``)
        is marked ``unstamped``: what it merged carries no id yet (see :meth:`_stamp_unstamped`)."""
        if "run_id" not in meta and meta.get("batches"):
            meta["unstamped"] = True
        meta["run_id"] = self.resolved_run_id()
        return meta

    # ---- building it

    def _start(self, *, rebuild: bool = False) -> dict:
        """A fresh next state: a copy of the published file (unless ``rebuild``), nothing merged,
        in the state's storage version (:func:`~xport_etl.load.migrate.create_state_file`)."""
        self.discard()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(self.path.parent)
        base = None if rebuild else self.published.version()
        create_state_file(self.path, self.storage_version, self.published.path if base is not None else None)
        con = connect_writer(self.path)
        try:
            ensure_schema(con)
        finally:
            con.close()
        return {
            "run_id": self.resolved_run_id(),
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
        with file_lock(self._lock_path):
            meta = self._own(self.meta() or self._start(rebuild=rebuild))
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
        return self._bounded("publish", lambda limit: self._merge_once(batches, limit))

    def _bounded(self, doing: str, work: Callable[[str | None], T]) -> T:
        """``work(XPORT_LOAD_MEMORY)``; if that did not fit (DuckDB rolled it back), once more
        with DuckDB's own limit."""
        try:
            return work(self.memory_limit)
        except duckdb.OutOfMemoryException as exc:
            log.warning(
                "%s needed more than XPORT_LOAD_MEMORY=%s (%s); retrying without the limit",
                doing,
                self.memory_limit,
                str(exc).splitlines()[0],
            )
            return work(None)

    def _merge_once(self, batches, memory_limit) -> tuple[dict[str, int], int, set[str]]:
        con = connect_writer(self.path, memory_limit)
        try:
            ensure_schema(con)  # a next state an older version started lacks the lineage columns
            con.execute("begin")
            changed: set[str] = set()
            run_id = self.resolved_run_id()
            written = merge_staged(con, batches, changed, run_id=run_id)
            rejects = merge_rejects(con, batches, run_id=run_id)
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
        publish_id: str | None = None,
    ) -> LoadResult:
        """Check the next state and swap it in for the published warehouse, atomically.

        If another writer published since this next state was started, the run's batches are
        merged again onto the newer published state first (same rows: the merge rule orders
        versions, not arrivals). With nothing merged yet, the published state is re-checked and
        re-published with fresh views (the reports DAG's refresh).

        Args:
            runs: the full run ledger to mirror into ``etl_runs`` (``pending_rows`` included).
            settings: values for ``etl_settings`` (e.g. ``report_tz``) that the views read.
            run_id: the run's id (default: the next state's, :meth:`resolved_run_id`), in
                ``etl_check_results`` with this publish's ``publish_id`` (default: a new one).
            check_overrides: the operator's check severities and thresholds
                (``Settings.check_overrides``).

        Raises:
            CheckFailedError: an error check failed; nothing was published, the next state is kept
                (its outcomes are in the check ledger, and in ``etl_check_results`` from the next
                successful publish on).
            ConfigError: ``check_overrides`` names an unknown check or holds a bad value.
        """
        run_id, publish_id = self._publish_ids(run_id, publish_id, check_overrides)
        with self.published.lock(), file_lock(self._lock_path):
            meta = self.meta()
            if meta is None:
                meta = self._start()
            elif not meta.get("rebuild") and meta["base"] != self.published.version():
                log.warning(
                    "another writer published since this run started: merging the run's %d "
                    "batches onto the newer state",
                    len(meta["batches"]),
                )
                batches = [Batch(**b) for b in meta["batches"]]
                meta = {**self._start(), "rows": meta["rows"], "batches": meta["batches"]}
                _, _, merged = self._merge_into(batches)
                meta["changed"] = sorted(merged)
            meta = self._own(meta)
            full = not meta["batches"] or meta.get("rebuild")
            changed = None if full else set(meta["changed"])
            stamp = meta["batches"] if meta.get("unstamped") else None
            self._finish_bounded(runs, settings, changed, (run_id, publish_id), check_overrides, stamp)
            self.published.replace(self.path)
            self.meta_path.unlink(missing_ok=True)
        return LoadResult(
            str(self.published.path),
            len(meta["batches"]),
            dict(meta["rows_written"]),
            meta["rejects"],
            run_id,
            publish_id,
            self._checked,
        )

    def _publish_ids(
        self, run_id: str | None, publish_id: str | None, check_overrides: Mapping[str, Any] | None
    ) -> tuple[str, str]:
        """A publish's run id (given, or the next state's) and publish id (given, or a new one); the
        operator's check overrides are checked first, before anything is done."""
        if run_id is not None:
            self.run_id = run_id
        ids = self.resolved_run_id(), publish_id or new_publish_id()
        apply_overrides([parse_check(n, b) for n, b in sql_objects("checks")], check_overrides)
        return ids

    def _finish_bounded(
        self,
        runs,
        settings,
        changed: set[str] | None,
        ids: tuple[str, str],
        check_overrides: Mapping[str, Any] | None,
        stamp: list[dict] | None,
    ) -> None:
        """:meth:`_finish` within ``XPORT_LOAD_MEMORY``, and once more without it if that is too little."""
        args = (runs, settings, changed, ids, check_overrides, stamp)
        self._bounded("checking the next state", lambda limit: self._finish(*args, limit))

    def _finish(
        self,
        runs,
        settings,
        changed: set[str] | None,
        ids: tuple[str, str],
        check_overrides: Mapping[str, Any] | None,
        stamp: list[dict] | None,
        memory_limit,
    ) -> None:
        run_id, publish_id = ids
        con = connect_writer(self.path, memory_limit)
        try:
            ensure_schema(con)
            set_settings(con, settings or {})
            con.execute("begin")
            replace_runs(con, runs)
            if stamp is not None:
                _stamp_unstamped(con, run_id, stamp)
            con.execute("commit")
            refresh_views(con)
            describe_objects(con)
            # the run re-runs the must-pass checks over the tables it changed (the rest of this
            # state passed them when it was published); a rebuild or a publish with no batches
            # (the reports DAG's refresh) runs every check
            results = evaluate_checks(con, changed, check_overrides)
            self._checked = count_outcomes(results)
            # the ledger first: a blocked publish's outcomes outlive the state it does not publish
            append_check_results(self.layout, run_id, results, publish_id=publish_id)
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


def _stamp_unstamped(con: duckdb.DuckDBPyConnection, run_id: str, batches: Sequence[dict]) -> None:
    """Give ``run_id`` to the rows a version before run ids merged into this next state (its run
    killed then, resumed now): the keys each fact table had merged (its ``_merged_`` table), their
    children, and the rejects of the batches' windows, where the lineage column is still null."""
    for staged in STAGED_TABLES.values():
        if staged.parent is not None:
            continue
        merged = f"_merged_{staged.spec.name}"
        if not con.execute("select 1 from duckdb_tables() where table_name = ?", [merged]).fetchall():
            continue
        for spec, key in [
            (staged.spec, staged.spec.key),
            *((c.spec, c.parent_key) for c in STAGED_TABLES.values() if c.parent == staged.name),
        ]:
            on = " and ".join(f"t.{k} = m.{k}" for k in key)
            con.execute(
                f"update {spec.name} as t set run_id = ? from (select distinct {', '.join(key)} from {merged}) as m "
                f"where t.run_id is null and {on}",
                [run_id],
            )
    windows = [[b["endpoint"], b["window_id"]] for b in batches]
    if windows:
        con.executemany(
            "update etl_rejects set run_id = ? where run_id is null and endpoint = ? and window_id = ?",
            [[run_id, *w] for w in windows],
        )


ABANDONED_AFTER_S = 7 * 24 * 3600  # a next state untouched this long belongs to a run nobody resumes


def _remove_abandoned(folder: Path) -> None:
    """Delete next states untouched for :data:`ABANDONED_AFTER_S` (a failed Airflow run never
    cleared, an abandoned command): each is a copy of the warehouse, and only its own run reads it."""
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
    publish_id: str | None = None,
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
        run_id: the run's id, on the rows merged and in ``etl_check_results`` (default: a new one),
            with ``publish_id`` (default: a new one).
        check_overrides: the operator's check severities and thresholds
            (``Settings.check_overrides``).
        memory_limit: DuckDB's memory limit while publishing (``Settings.load_memory``; default
            :data:`~xport_etl.load.connect.LOAD_MEMORY`).
        storage_version: the DuckDB storage version of the published file
            (``Settings.warehouse_storage_version``; see :func:`~xport_etl.load.migrate.create_state_file`).

    Raises:
        CheckFailedError: an error check failed; nothing was published (its outcomes are in the
            check ledger, and in ``etl_check_results`` from the next successful publish on).
        ConfigError: ``check_overrides`` names an unknown check or holds a bad value.
    """
    state = NextState(data_dir, f"publish-{uuid.uuid4().hex}", memory_limit, storage_version, run_id)
    try:
        state.merge(batches, rebuild=rebuild)
        return state.publish(
            runs=runs, settings=settings, run_id=run_id, check_overrides=check_overrides, publish_id=publish_id
        )
    finally:
        state.discard()
        state.forget()


def rows_json(rows: dict[str, int]) -> str:
    return json.dumps(rows, sort_keys=True)
