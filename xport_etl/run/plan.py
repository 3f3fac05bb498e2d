"""A command's resumable plan (``state/plans/``) and the run lock (``state/run.lock``): one
``run``/``backfill`` at a time on a data directory, and any crash resumed from what it landed.

Under a storage URL the plan is an object of the storage URL's ``state/plans/`` (any host resumes
it), the windows it names are named relative to the raw root (another host, another scratch
directory, the same windows), and the run lock is a lease (:mod:`xport_etl.run.lease`)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xport_etl.extract import storage
from xport_etl.fsutil import write_atomic
from xport_etl.layout import DataLayout, Where
from xport_etl.run import Progress
from xport_etl.store import Store

log = logging.getLogger(__name__)


_PLAN_LOCK = threading.RLock()


@dataclass
class RunPlan:
    """A command's progress, kept with the data so that any worker can resume it after a crash.

    ``state/plans/<id>.json``, where the id is a hash of the command's parameters: running the
    same command again continues an unfinished plan from what it had landed (landed windows are
    checkpoints; staging and merging are idempotent), and starts a fresh plan once the previous
    one is done. A command is a sequence of bounded runs (``runs``: each a list of list windows),
    each published once; ``published`` holds the runs done, the other fields the current one.

    Under a storage URL (``store`` set) the plan is the object ``<digest>.json`` of the storage
    URL's plans, the windows are named relative to the raw root (``raw_root``), and every save
    first calls ``guard`` (the run lease's check: a run whose lease another host took over
    stops instead of writing the plan).
    """

    path: Path
    params: dict[str, Any]
    landed: dict[str, str] = field(default_factory=dict)
    published: list[int] = field(default_factory=list)
    lists_merged: bool = False
    fanout_pending: list[str] = field(default_factory=list)
    fanout_done: list[str] = field(default_factory=list)
    status: str = "running"
    run_id: str | None = None
    resumed: bool = False
    store: Store | None = None
    raw_root: str | None = None
    guard: Callable[[], None] | None = None

    _NOT_SAVED = ("path", "resumed", "store", "raw_root", "guard")

    @property
    def digest(self) -> str:
        return self.path.stem

    @property
    def shown(self) -> str:
        """Where the plan is, as messages show it."""
        return self.store.where(self.path.name) if self.store is not None else str(self.path)

    @classmethod
    def open(cls, data_dir: Where, params: dict[str, Any]) -> RunPlan:
        digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
        layout = DataLayout.of(data_dir)
        path = layout.plan(digest)
        where: dict[str, Any] = {}
        if layout.stored:
            where = {"store": layout.store("plans"), "raw_root": str(layout.raw)}
            blob = where["store"].get(path.name)
            data = None if blob is None else json.loads(blob.data)
        else:
            data = json.loads(path.read_text()) if path.exists() else None
        if data is not None:
            known = {f.name for f in dataclasses.fields(cls)} - set(cls._NOT_SAVED)
            if data.get("status") == "running" and "published" in data:  # (a plan of this layout)
                return cls(path=path, resumed=True, **where, **{k: v for k, v in data.items() if k in known})
        plan = cls(path=path, params=json.loads(json.dumps(params, default=str)), **where)
        plan.save()
        return plan

    def save(self) -> None:
        with _PLAN_LOCK:  # windows land on paging threads while the run goes on
            data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self._NOT_SAVED}
            text = json.dumps(data, indent=2).encode()
            if self.store is not None:
                if self.guard is not None:
                    self.guard()
                self.store.put(self.path.name, text)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, text)

    def named(self, manifest: str) -> str:
        """How the plan names a landed window: under a storage URL relative to the raw root (any
        host, any scratch directory), else as given."""
        text = str(manifest)
        if self.raw_root is not None and text.startswith(self.raw_root.rstrip("/") + "/"):
            return text[len(self.raw_root.rstrip("/")) + 1 :]
        return text

    def manifest(self, named: str) -> str:
        """The path or URL of a window the plan names (a name relative to the raw root, or, in a
        plan written before, an absolute path or URL)."""
        if self.raw_root is None or storage.protocol(named) != "file" or named.startswith("/"):
            return named
        return storage.join(self.raw_root, named)

    def record_landed(self, key: str, path: str) -> None:
        """A list window landed (a checkpoint): kept in the plan at once."""
        with _PLAN_LOCK:
            self.landed[key] = self.named(path)
            self.save()

    def next_run(self) -> None:
        """The current run is published: clear its progress for the next one."""
        self.lists_merged = False
        self.fanout_pending, self.fanout_done = [], []


@contextlib.contextmanager
def run_lock(
    data_dir: Where, *, wait: bool = True, progress: Progress | None = None, lease_s: float = 60.0
) -> Iterator[Callable[[], None] | None]:
    """One ``run``/``backfill`` at a time on a data directory (its layout's ``run_lock``, an ``flock``
    released by the kernel when the process dies, so a crashed run never leaves it held).

    A second run would otherwise resume the first's plan while it is still running. It waits for
    the first (saying so once), or with ``wait=False`` refuses at once.

    Under a storage URL it is a lease of ``lease_s`` seconds (``Settings.run_lease``) on the
    storage URL, shared by every host (:class:`~xport_etl.run.lease.Lease`); the block gets the
    lease's check (call it before writing what the lease guards), else None.
    """
    import fcntl

    from xport_etl.errors import RunInProgressError

    layout = DataLayout.of(data_dir)
    if layout.stored:
        from xport_etl.run.lease import Lease

        lease = Lease(layout.store("run_lock"), lease_s, layout.storage_shown)
        lease.acquire(wait=wait)
        try:
            yield lease.check
        finally:
            lease.release()
        return
    path, data_dir = layout.run_lock, layout.data_dir
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
            yield None
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_holder(handle) -> str:
    handle.seek(0)
    pid = handle.read().strip()
    return f" (pid {pid})" if pid.isdigit() else ""
