"""Moving a local deployment onto a storage URL, in place: ``xport-etl storage import --from DIR``.

A data directory that has run without ``XPORT_STORAGE_URL`` holds everything on one disk. This
publishes what a stored deployment needs from it under the storage URL, so that the next run (an
hourly incremental on any host, with an empty scratch directory) goes on from where the local
one stopped; nothing is rebuilt and nothing is fetched from the API again:

- **the published warehouse**, as the storage URL's first version (``warehouse/commits/1``). This
  is the last step: until it is committed nothing of the import is visible, and a run of the
  command cut short is simply run again.
- **the run ledger and the check ledger** (``etl_runs`` and ``etl_check_results`` mirror them at
  every publish), each as the first object of its stored ledger.
- **callback messages not yet consumed**, each an inbox object as the receiver would have stored it
  (same id, same receive time), so the consumer on any host publishes them.
- **the raw pages**, only with ``--with-raw`` (they are the audit trail and what a window is
  reloaded from, not what a run needs: the warehouse holds every published row).

Not carried: Parquet batches (staging scratch, already merged into the warehouse), the plans of
finished commands, the dead letters and consumed messages (they stay in the local directory as
the record they are), and host state (locks, the rate-limit budget, spill files).

Refused (nothing written): a storage URL that already has a published version (exit 2: it is
another deployment's), a stored ledger that already holds other lines, a data directory with
nothing published, or one with a run not yet published (finish it first, then import). Stop the
scheduler's runs on the local directory while it imports; the local directory is not changed,
and is no longer read once the deployment uses the storage URL (keep it as a backup).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

from xport_etl.errors import ConfigError, NotFoundError, UsageError
from xport_etl.fsutil import file_lock
from xport_etl.layout import DataLayout
from xport_etl.ledger import JsonLines

__all__ = ["import_data_dir"]

log = logging.getLogger(__name__)

LEDGERS = ("runs", "check_results")


def import_data_dir(settings, source: Path, *, with_raw: bool = False) -> dict[str, Any]:
    """Publish the local data directory ``source`` under ``settings``' storage URL (see the
    module's docstring); what was carried: ``version``, ``warehouse_bytes``, ``runs``,
    ``check_results``, ``callbacks`` (lines and messages) and ``raw_files``.

    Raises:
        UsageError: no storage URL, or ``source`` has a run not yet published (exit 2).
        NotFoundError: nothing is published in ``source`` (exit 2).
        ConfigError: the storage URL already has a published version or other ledger lines (exit 2).
    """
    from xport_etl.load.published import StoredWarehouse
    from xport_etl.stored_lines import StoredLines

    layout = settings.layout
    if not layout.stored:
        raise UsageError(
            "`storage import` publishes a data directory under a storage URL, and none is set",
            hint="set XPORT_STORAGE_URL (e.g. s3://bucket/xport), then run the command again",
        )
    local = DataLayout(Path(source))
    if not local.warehouse.is_file():
        raise NotFoundError(
            f"nothing is published in {local.data_dir} (no {local.warehouse.name})",
            hint="--from names the data directory of the local deployment (its XPORT_DATA_DIR)",
        )
    unpublished = sorted(p.stem for p in local.next_states.glob("*.duckdb")) if local.next_states.is_dir() else []
    if unpublished:
        raise UsageError(
            f"{local.data_dir} has a run not yet published ({', '.join(unpublished)})",
            hint="finish it first (run the same command again, or let the DAG run publish), then import",
        )
    if with_raw and settings.raw_url:
        raise UsageError(
            "--with-raw copies the raw pages under the storage URL, but XPORT_RAW_URL sends them elsewhere",
            hint="copy the raw pages to XPORT_RAW_URL with your store's tools, and import without --with-raw",
        )
    published = StoredWarehouse(layout)
    latest = published.latest()
    if latest is not None:
        raise ConfigError(
            f"{published.shown} already has a published warehouse (version {latest['seq']}, published "
            f"{latest['published_at']} by {latest['host']}): nothing was imported",
            hint="import into an empty storage URL (a new bucket or prefix); this one is another deployment's",
        )
    result: dict[str, Any] = {}
    for kind in LEDGERS:
        rows, _ = JsonLines(getattr(local, kind)).read()
        ledger = StoredLines(layout.store(kind))
        if not ledger.seed(rows):
            raise ConfigError(
                f"the {kind.replace('_', ' ')} ledger under {ledger.store.shown} already holds other lines: "
                "nothing more was imported",
                hint="import into an empty storage URL (a new bucket or prefix)",
            )
        result[kind] = len(rows)
    result["callbacks"] = _carry_callbacks(local, layout)
    result["raw_files"] = _carry_raw(local, layout) if with_raw else None
    tmp = layout.tmp / f"import-{uuid.uuid4().hex[:12]}.duckdb"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        with file_lock(local.warehouse_lock):  # no local publish swaps it while it is copied
            shutil.copyfile(local.warehouse, tmp)
        result["warehouse_bytes"] = tmp.stat().st_size
        commit = published.commit(tmp, None)
    finally:
        tmp.unlink(missing_ok=True)
    if commit is None:
        raise ConfigError(
            f"another host published to {published.shown} while this import ran: nothing more was imported",
            hint="import into an empty storage URL (a new bucket or prefix)",
        )
    result["version"] = commit["seq"]
    result["warehouse"] = published.where(commit)
    return result


def _carry_callbacks(local: DataLayout, layout: DataLayout) -> dict[str, int]:
    """The local inbox's messages not yet consumed, as inbox objects (each created once: an import
    run again stores none twice); lines no consumer could read stay in the local inbox."""
    from xport_etl.callbacks.consumed import read_offset
    from xport_etl.callbacks.inbox import INBOX_PREFIX, OFFSET_FILE, _epoch, _inbox_line, message_key, read_segments

    cdir = local.callbacks
    if not cdir.is_dir():
        return {"messages": 0, "unreadable": 0}
    state = read_offset(cdir / OFFSET_FILE)
    batch = read_segments(cdir, int(state["segment"]), int(state.get("offset", 0)))
    store = layout.store("callbacks")
    for e in batch.entries:
        line = _inbox_line(e.id, e.body.encode("utf-8"), e.message, _epoch(e.received_at))
        store.create(message_key(INBOX_PREFIX, e.id), line)
    if batch.corrupt:
        log.warning("%d unreadable lines of the local callback inbox %s were not imported", len(batch.corrupt), cdir)
    return {"messages": len(batch.entries), "unreadable": len(batch.corrupt)}


def _carry_raw(local: DataLayout, layout: DataLayout) -> int:
    """Every file under the local raw root, at the same place under the storage URL's ``raw/``."""
    root = Path(local.raw)
    files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()} if root.is_dir() else {}
    files = {k: p for k, p in files.items() if not any(part.startswith(".") for part in k.split("/"))}
    layout.store("raw").upload_many(files)
    return len(files)


def describe(result: dict[str, Any]) -> str:
    """What :func:`import_data_dir` carried, in words (the command's output)."""
    cb = result["callbacks"]
    raw = result["raw_files"]
    return "\n".join(
        [
            f"imported the published warehouse as version {result['version']} "
            f"({result['warehouse_bytes'] / 2**20:,.1f} MB): {result['warehouse']}",
            f"run ledger: {result['runs']:,} lines; check ledger: {result['check_results']:,} lines",
            f"callback messages not yet consumed: {cb['messages']:,}"
            + (f" ({cb['unreadable']:,} unreadable lines left in the local inbox)" if cb["unreadable"] else ""),
            "raw pages: " + ("not copied (--with-raw copies them)" if raw is None else f"{raw:,} files copied"),
        ]
    )
