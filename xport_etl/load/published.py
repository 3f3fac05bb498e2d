"""The published warehouse: where it is, which version of it is there, and how a run's next state
takes its place, one publisher at a time.

Everything a publish asks of the place the warehouse is kept goes through
:class:`PublishedWarehouse`:

- :attr:`~PublishedWarehouse.path`: the file readers open and a next state starts as a copy of;
- :meth:`~PublishedWarehouse.version`: what tells one published state from the next (a run whose
  next state started from an older version merges its batches again onto the newer one);
- :meth:`~PublishedWarehouse.lock`: the publish lock, one publisher at a time;
- :meth:`~PublishedWarehouse.replace`: the next state becomes the published warehouse, at once.

Without a storage URL the warehouse is the data directory's ``warehouse.duckdb`` on a local disk:
a version is the file's identity (every swap brings a new inode), the lock an ``flock`` on the
layout's ``warehouse_lock``, and the swap an ``os.replace`` made durable by fsyncs.

**Under a storage URL** (:class:`StoredWarehouse`, what ``PublishedWarehouse(where)`` is then)
every published state is an immutable object ``warehouse/v/<seq>-<id>.duckdb``, made the published
one by its *commit* ``warehouse/commits/<seq>.json``, written only if there is no commit ``seq``
yet (a conditional create). Two publishers on different hosts that both start from version
``seq - 1`` race for that one key: the winner's state is published, the loser learns it lost and
merges its run's batches again onto the winner's state, then commits ``seq + 1`` (the same path
as "another writer published" on one disk: nobody's rows are lost, and no lock server is needed).
The newest version is the highest commit: ``warehouse/HEAD`` holds a recent number and a reader
steps forward from it while a next commit exists (S3 reads are strongly consistent). Each host
keeps its copy of the newest version where the local warehouse would be (``warehouse.duckdb``,
with its version beside it): readers (``status``, ``report``, ``dashboard``, ``pull``, BI tools on
that host) open it after :meth:`StoredWarehouse.exists` has checked it against the newest commit
(a host that published last never downloads), and a next state starts from it. Versions no
commit among the newest :data:`KEEP_VERSIONS` names are deleted once older than
:data:`GC_AFTER_S`; commits are kept (the publish history: what, when, from which host).

The run ledger and the check ledger have the same seam in :func:`xport_etl.ledger.ledger_of`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xport_etl.faults import crashpoint
from xport_etl.fsutil import file_lock, fsync_dir, write_atomic
from xport_etl.layout import DataLayout, Where

__all__ = ["GC_AFTER_S", "KEEP_VERSIONS", "PublishedWarehouse", "StoredWarehouse", "Version"]

log = logging.getLogger(__name__)

Version = list[int]  # JSON-serialisable: a next state records the version it started from


class PublishedWarehouse:
    """The published warehouse of a data directory (or its layout, or the settings naming it); a
    :class:`StoredWarehouse` when the layout has a storage URL."""

    def __new__(cls, where: Where) -> PublishedWarehouse:
        if cls is PublishedWarehouse and DataLayout.of(where).stored:
            return super().__new__(StoredWarehouse)
        return super().__new__(cls)

    def __init__(self, where: Where) -> None:
        self.layout = DataLayout.of(where)

    def __repr__(self) -> str:
        return f"PublishedWarehouse({str(self.path)!r})"

    @property
    def path(self) -> Path:
        """The published file, as readers open it."""
        return self.layout.warehouse

    def exists(self) -> bool:
        """Whether anything has been published."""
        return self.path.exists()

    @property
    def shown(self) -> str:
        """The published warehouse as results and messages name it."""
        return str(self.path)

    def version(self) -> Version | None:
        """The published state's version, or None when nothing is published."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return [st.st_ino, st.st_mtime_ns, st.st_size]

    def base_copy(self, version: Version, into: Path) -> None:
        """Put the published state of ``version`` at ``into`` (what a next state starts as a copy
        of): here, a link to the published file (a swap replaces the name, not the file)."""
        os.link(self.path, into)

    def pull(self, to: Path) -> str:
        """Write the published warehouse to the local file ``to`` (atomically: a reader of ``to``
        sees the old file or the new one); what was written, in words.

        Raises:
            NotFoundError: nothing is published.
        """
        if not self.exists():
            raise _nothing_published(self.shown)
        with open(self.path, "rb") as src:  # a swap replaces the name: this file stays whole
            _write_copy(Path(to), lambda tmp: _copy_file(src, tmp))
        return f"copied the published warehouse {self.shown} to {to}"

    def lock(self) -> AbstractContextManager[None]:
        """The publish lock: held while a next state is checked and swapped in (waits for others)."""
        return file_lock(self.layout.warehouse_lock)

    def replace(self, state: Path) -> None:
        """Make the (closed, checked) DuckDB file ``state`` the published warehouse, atomically: a
        reader sees the old state or the new one, and after a crash the one or the other. Call it
        holding :meth:`lock`."""
        with open(state, "rb+") as f:
            os.fsync(f.fileno())
        crashpoint("publish.replace")
        os.replace(state, self.path)
        fsync_dir(self.path.parent)


def _nothing_published(where: str):
    from xport_etl.errors import NotFoundError

    return NotFoundError(f"nothing is published under {where}: run `xport-etl run` first")


def _copy_file(src, path: Path) -> None:
    import shutil

    with open(path, "wb") as dst:
        shutil.copyfileobj(src, dst, 16 << 20)


def _write_copy(to: Path, fill) -> None:
    """``fill(tmp)`` writes a temporary file beside ``to`` (created as the umask says), which is
    fsynced and then takes its place."""
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(f".{to.name}.{os.getpid()}.part")
    try:
        fill(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, to)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(to.parent)


# ---- under a storage URL

KEEP_VERSIONS = 2  # the newest commits whose version files are never deleted
GC_AFTER_S = 3600.0  # how old another version file must be to be deleted (readers downloading it)
_HEAD, _COMMITS, _VERSIONS = "HEAD", "commits", "v"


def _commit_key(seq: int) -> str:
    return f"{_COMMITS}/{seq:012d}.json"


class StoredWarehouse(PublishedWarehouse):
    """The published warehouse under a storage URL: immutable versions, each published by a
    conditional commit, and this host's copy of the newest (see the module's docstring)."""

    def __init__(self, where: Where) -> None:
        super().__init__(where)
        self.store = self.layout.store("warehouse")

    def __repr__(self) -> str:
        return f"StoredWarehouse({self.store.shown!r})"

    # ---- the commits

    def commit_of(self, seq: int) -> dict[str, Any] | None:
        blob = self.store.get(_commit_key(seq))
        return None if blob is None else json.loads(blob.data)

    def latest_seq(self) -> int | None:
        """The newest commit's number, or None: ``HEAD`` and a step forward while a next commit
        exists (two requests when ``HEAD`` is current)."""
        head = self.store.get(_HEAD)
        if head is not None and head.data.strip().isdigit():
            seq = int(head.data)
            while self.store.exists(_commit_key(seq + 1)):
                seq += 1
            return seq
        keys = self.store.keys(_COMMITS)
        return int(keys[-1].rsplit("/", 1)[-1].split(".")[0]) if keys else None

    def latest(self) -> dict[str, Any] | None:
        """The newest commit (``seq``, ``file``, ``published_at``, ``host``, ``size``), or None."""
        seq = self.latest_seq()
        return None if seq is None else self.commit_of(seq)

    def version(self) -> Version | None:
        seq = self.latest_seq()
        return None if seq is None else [seq]

    @property
    def shown(self) -> str:
        return self.store.shown

    def where(self, commit: dict[str, Any]) -> str:
        """The URL of a commit's version file, as messages show it."""
        return self.store.where(commit["file"])

    # ---- this host's copy

    @property
    def _copy_version(self) -> Path:
        return self.layout.warehouse_version

    def local_seq(self) -> int | None:
        """The version of this host's copy (``warehouse.duckdb``), or None."""
        try:
            seq = json.loads(self._copy_version.read_text())["seq"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        return int(seq) if self.path.exists() else None

    def _adopt(self, commit: dict[str, Any], fill) -> None:
        """Make ``fill(path)`` (which writes the file of ``commit`` at ``path``) this host's copy,
        unless the copy is already as new. Holding :meth:`lock`."""
        current = self.local_seq()
        if current is not None and current >= int(commit["seq"]):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._copy_version.unlink(missing_ok=True)  # a crash before the new one: no version, no stale claim
        fill(self.path)
        write_atomic(self._copy_version, json.dumps(commit).encode(), mode=None)

    def refresh(self) -> dict[str, Any] | None:
        """Bring this host's copy to the newest commit (downloading it unless this host has it);
        the commit, or None when nothing is published."""
        for attempt in range(3):
            commit = self.latest()
            if commit is None or self.local_seq() == int(commit["seq"]):
                return commit
            try:
                with self.lock():
                    self._adopt(commit, lambda path, key=commit["file"]: self.store.download(key, path))
                return commit
            except FileNotFoundError:  # deleted as two newer versions were published: the newest again
                if attempt == 2:
                    raise
        return None

    def exists(self) -> bool:
        """Whether anything is published; this host's copy (:attr:`path`) is then the newest."""
        return self.refresh() is not None

    def base_copy(self, version: Version, into: Path) -> None:
        """Put version ``version`` at ``into``: a link to this host's copy if it is that version
        (the copy is replaced by name, never rewritten), else downloaded."""
        (seq,) = version
        with self.lock():
            if self.local_seq() == seq:
                os.link(self.path, into)
                return
        commit = self.commit_of(seq)
        if commit is None:
            raise FileNotFoundError(f"no commit {seq} under {self.store.shown}")
        self.store.download(commit["file"], into)

    def pull(self, to: Path) -> str:
        """Write the newest version to ``to`` and which version it is to ``<to>.version``;
        nothing when ``to`` already holds it (a scheduled pull downloads only what is new).

        Raises:
            NotFoundError: nothing is published.
        """
        to = Path(to)
        commit = self.latest()
        if commit is None:
            raise _nothing_published(self.shown)
        stamp = to.with_name(to.name + ".version")
        try:
            held = json.loads(stamp.read_text())["seq"] if to.exists() else None
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            held = None
        said = f"version {commit['seq']} (published {commit['published_at']} by {commit['host']})"
        if held == commit["seq"]:
            return f"{to} already holds {said}"
        stamp.unlink(missing_ok=True)
        if self.local_seq() == commit["seq"]:  # this host has it: a local copy, no download
            with open(self.path, "rb") as src:
                _write_copy(to, lambda tmp: _copy_file(src, tmp))
        else:
            _write_copy(to, lambda tmp: self.store.download(commit["file"], tmp))
        write_atomic(stamp, json.dumps(commit).encode(), mode=None)
        return f"pulled {said} to {to}"

    # ---- publishing

    def commit(self, state: Path, parent: Version | None) -> dict[str, Any] | None:
        """Publish the (closed, checked) DuckDB file ``state`` as the version after ``parent``
        (None: the first): upload it, then create its commit. Returns the commit, or None when
        another publisher committed that version first (then nothing of this one remains)."""
        seq = (parent[0] if parent else 0) + 1
        name = f"{_VERSIONS}/{seq:012d}-{uuid.uuid4().hex[:12]}.duckdb"
        self.store.upload(state, name)
        commit = {
            "seq": seq,
            "file": name,
            "published_at": datetime.now(UTC).isoformat(),
            "host": socket.gethostname(),
            "size": state.stat().st_size,
        }
        crashpoint("publish.commit")
        if self.store.create(_commit_key(seq), json.dumps(commit, indent=2).encode()) is None:
            self.store.delete([name])
            return None
        self.store.put(_HEAD, str(seq).encode())
        with self.lock():  # the publisher's host has the new version: it never downloads it
            self._adopt(commit, lambda path: os.replace(state, path))
        self.collect_garbage(latest=commit)
        return commit

    def collect_garbage(self, now: float | None = None, latest: dict[str, Any] | None = None) -> list[str]:
        """Delete version files no commit among the newest :data:`KEEP_VERSIONS` names and older
        than :data:`GC_AFTER_S` (a version being downloaded, or uploaded and about to be
        committed, is younger); the keys deleted. ``latest``: the newest commit, if known."""
        latest = latest or self.latest()
        if latest is None:
            return []
        keep = {latest["file"]} | {
            c["file"]
            for seq in range(int(latest["seq"]) - 1, max(int(latest["seq"]) - KEEP_VERSIONS, 0), -1)
            if (c := self.commit_of(seq)) is not None
        }
        cutoff = (time.time() if now is None else now) - GC_AFTER_S
        old = [k for k, (_size, mtime) in self.store.sizes(_VERSIONS).items() if k not in keep and mtime < cutoff]
        self.store.delete(old)
        if old:
            log.info("deleted %d superseded warehouse versions under %s", len(old), self.store.shown)
        return old
