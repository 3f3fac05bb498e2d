"""A run's next state under a storage URL: the same :class:`~xport_etl.load.publish.NextState`,
rebuilt on whichever host needs it from what reached storage.

On one disk a run's next state is a file every task of the run opens. Without a shared disk
(every Airflow task on a host of its own, a run killed on one host and finished on another) the
next state is kept as what it is made of, under ``state/next/<key>/`` of the storage URL:

- ``base.json``: the published version the run started from (created once: the first merge of
  the run decides it, whichever host it ran on);
- ``merges/<time>-<id>.json``: one object per merge, naming the Parquet batches merged (their
  files under the storage URL's ``parquet/``, uploaded by the merge) and the run-ledger rows of
  their windows. One object each, so the run's loads on several hosts at once never overwrite
  each other.

A host's copy of the next state (``state/next/<key>.duckdb`` of its data directory, with what it
holds beside it in ``<key>.copy.json``) is that base version plus those merges: a host that has
merged some of them merges the rest (merges are idempotent and the merge rule orders versions,
not arrivals), any other host starts from the base version (this host's copy of the warehouse,
or downloaded) and merges them all. A copy is marked unclean while it is changed, so one a crash
interrupted is rebuilt, never trusted. The merge records are written once and never changed, so each host
keeps the ones it wrote or read (``state/next/<key>.merges/``) and downloads each at most once.

Publishing rebuilds the copy on the *newest* published version if another writer published since
the run began (its batches merged again onto that state, as on one disk), checks it and commits
it (:meth:`xport_etl.load.published.StoredWarehouse.commit`). If another host committed that
version first, the copy is rebuilt on the new newest version and committed again: two publishers
never lose each other's rows. The run's objects are deleted once it is published.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb

from xport_etl.faults import crashpoint
from xport_etl.fsutil import file_lock, write_atomic
from xport_etl.load.connect import connect_writer
from xport_etl.load.migrate import create_state_file, ensure_schema
from xport_etl.load.publish import ABANDONED_AFTER_S, LoadResult, NextState
from xport_etl.load.published import StoredWarehouse, Version
from xport_etl.load.staging import Batch

__all__ = ["COMMIT_ATTEMPTS", "StoredNextState"]

log = logging.getLogger(__name__)

COMMIT_ATTEMPTS = 20  # publishers racing for the same version: each loss merges again and retries
_BASE, _MERGES = "base.json", "merges"


class PublishConflictError(RuntimeError):
    """Every attempt to commit lost to another publisher (a bug, or a store that ignores conditions)."""


class StoredNextState(NextState):
    """:class:`~xport_etl.load.publish.NextState` under a storage URL (see the module's docstring)."""

    published: StoredWarehouse

    def __init__(
        self,
        data_dir,
        key: str,
        memory_limit: str | None = None,
        storage_version: str | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(data_dir, key, memory_limit, storage_version, run_id)
        self._given = run_id is not None  # else the run's id is the one its base names
        self.store = self.layout.store("next_states").child(key)
        self.parquet = self.layout.store("parquet")
        self.copy_path = self.path.with_name(f"{key}.copy.json")
        self.records_dir = self.path.with_name(f"{key}.merges")  # this host's copies of the merge records

    def __repr__(self) -> str:
        return f"StoredNextState({self.store.shown!r})"

    # ---- what is in storage

    def _base(self) -> dict | None:
        blob = self.store.get(_BASE)
        return None if blob is None else json.loads(blob.data)

    def _merge_names(self) -> list[str]:
        return self.store.keys(_MERGES)

    def _record_path(self, name: str) -> Path:
        return self.records_dir / name.rsplit("/", 1)[-1]

    def _records(self, names: Sequence[str]) -> list[dict]:
        """The merge records ``names``: each downloaded once per host (written once, never changed)."""
        found: dict[str, bytes] = {}
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                found[name] = self._record_path(name).read_bytes()
        fetched = self.store.get_many([n for n in names if n not in found])
        for name, data in fetched.items():
            self._keep_record(name, data)
        found.update(fetched)
        missing = [n for n in names if n not in found]
        if missing:
            raise FileNotFoundError(f"the merge records {missing} of {self.store.shown} are gone")
        return [json.loads(found[n]) for n in names]

    def _keep_record(self, name: str, data: bytes) -> None:
        self.records_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._record_path(name), data)

    def meta(self) -> dict | None:
        """What has been merged (``batches``, ``rows``, ``rows_written``, ``rejects``, ``base``), or
        None if nothing (read from storage: any host sees the same)."""
        base = self._base()
        if base is None:
            return None
        meta: dict[str, Any] = {**base, "batches": [], "rows": [], "rows_written": {}, "rejects": 0}
        for record in self._records(self._merge_names()):
            meta["batches"] += record["batches"]
            meta["rows"] += record["rows"]
            for table, n in record["written"].items():
                meta["rows_written"][table] = meta["rows_written"].get(table, 0) + n
            meta["rejects"] += record["rejects"]
        return meta

    def exists(self) -> bool:
        return self._base() is not None

    # ---- this host's copy

    def _copy(self) -> dict | None:
        try:
            copy = json.loads(self.copy_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return copy if self.path.exists() else None

    def _save_copy(self, copy: dict) -> None:
        write_atomic(self.copy_path, json.dumps(copy).encode(), mode=None)

    def _drop_copy(self) -> None:
        self.copy_path.unlink(missing_ok=True)
        for path in (self.path, Path(str(self.path) + ".wal"), self.meta_path):
            path.unlink(missing_ok=True)

    def _materialise(self, base: Version | None, names: Sequence[str]) -> dict:
        """Make this host's copy hold ``base`` plus the merges ``names``; what it holds. Holding
        the key's lock."""
        copy = self._copy()
        if copy is None or not copy["clean"] or copy["base"] != base or not set(copy["merged"]) <= set(names):
            self._drop_copy()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            seed = None
            if base is not None:
                seed = self.path.with_name(f"{self.key}.base-{uuid.uuid4().hex[:8]}")
                self.published.base_copy(base, seed)
            try:
                create_state_file(self.path, self.storage_version, seed)
            finally:
                if seed is not None:
                    seed.unlink(missing_ok=True)
            con = connect_writer(self.path)
            try:
                ensure_schema(con)
            finally:
                con.close()
            copy = {"base": base, "merged": [], "changed": [], "clean": True}
            self._save_copy(copy)
        missing = [n for n in names if n not in copy["merged"]]
        if missing:
            scratch = self.layout.tmp / f"next-{self.key}-{uuid.uuid4().hex[:8]}"
            try:
                batches = self._fetch(self._records(missing), scratch)
                self._save_copy({**copy, "clean": False})
                _written, _rejects, changed = self._merge_into(batches)
                copy = {**copy, "merged": copy["merged"] + missing, "changed": sorted(set(copy["changed"]) | changed)}
                self._save_copy(copy)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return copy

    def _fetch(self, records: Sequence[dict], scratch: Path) -> list[Batch]:
        """The batches of ``records``, their Parquet files downloaded under ``scratch``."""
        batches = [Batch(**b) for r in records for b in r["batches"]]
        wanted = {f: scratch / f for b in batches for files in b.files.values() for f in files}
        self.parquet.download_many(wanted)
        for b in batches:
            b.files = {table: [str(wanted[f]) for f in files] for table, files in b.files.items()}
        return batches

    def _relative(self, batch: Batch) -> tuple[dict, dict[str, Path]]:
        """The batch as its merge record names it (files relative to ``parquet/``), and the local
        files to upload, by key."""
        root = self.layout.parquet.resolve()
        uploads: dict[str, Path] = {}
        files: dict[str, list[str]] = {}
        for table, paths in batch.files.items():
            files[table] = []
            for p in paths:
                key = Path(p).resolve().relative_to(root).as_posix()
                uploads[key] = Path(p)
                files[table].append(key)
        return {**asdict(batch), "files": files}, uploads

    # ---- building it

    def merge(self, batches: Sequence[Batch], *, rows: Sequence[dict] = (), rebuild: bool = False) -> dict[str, int]:
        with file_lock(self._lock_path):
            if self._base() is None:
                base = None if rebuild else self.published.version()
                started = {"base": base, "rebuild": rebuild, "run_id": self.resolved_run_id()}
                self.store.create(_BASE, json.dumps(started).encode())
            info = self._base()
            assert info is not None
            if not self._given and info.get("run_id"):  # another host started the run first: its id
                self.run_id = info["run_id"]
            copy = self._materialise(info["base"], self._merge_names())
            described = [self._relative(b) for b in batches]
            uploads = {k: p for _d, files in described for k, p in files.items()}
            self.parquet.upload_many(uploads)
            self._save_copy({**copy, "clean": False})
            written, rejects, changed = self._merge_into(batches)
            name = f"{_MERGES}/{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.json"
            record = {"batches": [d for d, _f in described], "rows": [dict(r) for r in rows]}
            data = json.dumps({**record, "written": written, "rejects": rejects}, default=str).encode()
            self.store.put(name, data)
            self._keep_record(name, data)
            self._save_copy(
                {**copy, "merged": [*copy["merged"], name], "changed": sorted(set(copy["changed"]) | changed)}
            )
            crashpoint("publish.merged")
        return written

    def connect_reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to this host's copy, brought up to date first."""
        with file_lock(self._lock_path):
            info = self._base()
            if info is not None:
                self._materialise(info["base"], self._merge_names())
        return super().connect_reader()

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
        run_id, publish_id = self._publish_ids(run_id, publish_id, check_overrides)
        with file_lock(self._lock_path):
            for _attempt in range(COMMIT_ATTEMPTS):
                latest = self.published.version()
                info = self._base() or {"base": latest, "rebuild": False}
                names = self._merge_names()
                if info["rebuild"]:
                    base = None
                elif info["base"] != latest:
                    log.warning(
                        "another writer published since this run started: merging the run's %d merges onto version %s",
                        len(names),
                        latest,
                    )
                    base = latest
                else:
                    base = info["base"]
                copy = self._materialise(base, names)
                meta = self.meta() or {"batches": [], "rows_written": {}, "rejects": 0}
                full = not meta["batches"] or info["rebuild"]
                changed = None if full else set(copy["changed"])
                self._save_copy({**copy, "clean": False})  # finishing changes the file: never merged into again
                self._finish_bounded(runs, settings, changed, (run_id, publish_id), check_overrides, None)
                commit = self.published.commit(self.path, latest)
                if commit is not None:
                    break
                log.warning(
                    "another host published version %d first: merging this run again onto it",
                    latest[0] + 1 if latest else 1,
                )
            else:
                raise PublishConflictError(
                    f"{COMMIT_ATTEMPTS} publishes of {self.key} lost to other publishers under {self.published.shown}"
                )
            self.store.delete([*names, _BASE])
            self._drop_copy()
            shutil.rmtree(self.records_dir, ignore_errors=True)
            _remove_abandoned(self)
        return LoadResult(
            self.published.where(commit),
            len(meta["batches"]),
            dict(meta["rows_written"]),
            meta["rejects"],
            run_id,
            publish_id,
            self._checked,
        )

    def discard(self) -> None:
        """Forget the next state: its objects and this host's copy; the published warehouse is untouched."""
        self.store.delete(self.store.keys())
        self._drop_copy()
        shutil.rmtree(self.records_dir, ignore_errors=True)


def _remove_abandoned(state: StoredNextState) -> None:
    """Delete the objects of next states untouched for :data:`ABANDONED_AFTER_S` (a failed Airflow
    run never cleared, an abandoned command), as on one disk."""
    root = state.layout.store("next_states")
    newest: dict[str, float] = {}
    for key, (_size, mtime) in root.sizes().items():
        run = key.split("/", 1)[0]
        newest[run] = max(newest.get(run, 0.0), mtime)
    cutoff = time.time() - ABANDONED_AFTER_S
    for run, mtime in newest.items():
        if mtime < cutoff:
            log.warning("removing the abandoned next state %s (untouched for 7 days)", run)
            run_store = root.child(run)
            run_store.delete(run_store.keys())
