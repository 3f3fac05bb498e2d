"""The published warehouse: where it is, which version of it is there, and how a run's next state
takes its place, one publisher at a time.

Everything a publish asks of the place the warehouse is kept goes through
:class:`PublishedWarehouse`:

- :attr:`~PublishedWarehouse.path`: the file readers open and a next state starts as a copy of;
- :meth:`~PublishedWarehouse.version`: what tells one published state from the next (a run whose
  next state started from an older version merges its batches again onto the newer one);
- :meth:`~PublishedWarehouse.lock`: the publish lock, one publisher at a time;
- :meth:`~PublishedWarehouse.replace`: the next state becomes the published warehouse, at once.

Today the warehouse is the data directory's ``warehouse.duckdb`` on a local disk: a version is the
file's identity (every swap brings a new inode), the lock an ``flock`` on the layout's
``warehouse_lock``, and the swap an ``os.replace`` made durable by fsyncs. Keeping the warehouse in
object storage (a conditional write for the swap, a lease for the lock, a local copy checked
against the version for readers) is a change to this class, not to the merge, the checks or the
readers. The run ledger and the check ledger have the same seam in :class:`xport_etl.ledger.JsonLines`.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

from xport_etl.faults import crashpoint
from xport_etl.fsutil import file_lock, fsync_dir
from xport_etl.layout import DataLayout, Where

__all__ = ["PublishedWarehouse", "Version"]

Version = list[int]  # JSON-serialisable: a next state records the version it started from


class PublishedWarehouse:
    """The published warehouse of a data directory (or its layout, or the settings naming it)."""

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

    def version(self) -> Version | None:
        """The published state's version, or None when nothing is published."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return [st.st_ino, st.st_mtime_ns, st.st_size]

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
