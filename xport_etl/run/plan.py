"""A command's resumable plan (``state/plans/``) and the run lock (``state/run.lock``): one
``run``/``backfill`` at a time on a data directory, and any crash resumed from what it landed."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xport_etl.fsutil import write_atomic
from xport_etl.layout import DataLayout, Where
from xport_etl.run import Progress

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

    @property
    def digest(self) -> str:
        return self.path.stem

    @classmethod
    def open(cls, data_dir: Where, params: dict[str, Any]) -> RunPlan:
        digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = DataLayout.of(data_dir).plan(digest)
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


@contextlib.contextmanager
def run_lock(data_dir: Where, *, wait: bool = True, progress: Progress | None = None) -> Iterator[None]:
    """One ``run``/``backfill`` at a time on a data directory (its layout's ``run_lock``, an ``flock``
    released by the kernel when the process dies, so a crashed run never leaves it held).

    A second run would otherwise resume the first's plan while it is still running. It waits for
    the first (saying so once), or with ``wait=False`` refuses at once.
    """
    import fcntl

    from xport_etl.errors import RunInProgressError

    layout = DataLayout.of(data_dir)
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
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_holder(handle) -> str:
    handle.seek(0)
    pid = handle.read().strip()
    return f" (pid {pid})" if pid.isdigit() else ""
