"""The run lock under a storage URL: a lease, taken and handed on with conditional writes.

On one machine ``run``/``backfill`` hold an ``flock`` that dies with the process. Hosts sharing a
storage URL share no kernel, so the lock is an object, ``state/run-lease/lease.json``: who holds
it (a random owner id, the host and pid) and until when (``expires_at``). Its holder renews it every
third of ``XPORT_RUN_LEASE`` (60 s) with a write conditional on the version it wrote last; a host
that dies stops renewing it, and a successor takes it over with a write conditional on the version
it saw, so two successors never both win.

When is a lease free? When its holder released it (a run that ended, however it ended, short of
being killed), or when it has not changed for a whole lease period *by the successor's own clock*
(no clock needs to agree with another), or when its ``expires_at`` is more than one more period in
the past by the successor's clock (a holder that died long ago: no wait; tolerates clocks a
period apart). A holder that cannot renew in time (it was frozen, or the store was unreachable)
may have been taken over: it learns so at its next renewal, and the run stops at its next
checkpoint (:class:`~xport_etl.errors.LeaseLostError`) instead of writing a plan another host
now owns. Its publishes were safe anyway: every commit is conditional.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from xport_etl.errors import LeaseLostError, RunInProgressError
from xport_etl.store import Store

__all__ = ["LEASE_KEY", "Lease"]

log = logging.getLogger(__name__)

LEASE_KEY = "lease.json"


def _now() -> datetime:
    return datetime.now(UTC)


class Lease:
    """One holder's lease on ``store``'s :data:`LEASE_KEY`, for ``ttl`` seconds at a time.

    Args:
        store: where the lease object is (the layout's ``run_lock`` kind under the storage URL).
        ttl: how long the lease outlives a holder that stopped renewing it (``Settings.run_lease``).
        what: what the lease is on, for messages (the storage URL).
    """

    def __init__(self, store: Store, ttl: float, what: str) -> None:
        self.store, self.ttl, self.what = store, float(ttl), what
        self.owner = uuid.uuid4().hex
        self.etag: str | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _doc(self, *, released: bool = False) -> bytes:
        now = _now()
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "renewed_at": now.isoformat(),
                "expires_at": (now + timedelta(seconds=self.ttl)).isoformat(),
                "ttl": self.ttl,
                "released": released,
            }
        ).encode()

    @staticmethod
    def _holder(doc: dict[str, Any]) -> str:
        return f" (host {doc.get('host', '?')}, pid {doc.get('pid', '?')})"

    def _free(self, doc: dict[str, Any], unchanged_for: float) -> bool:
        if doc.get("released") or unchanged_for >= self.ttl:
            return True
        try:
            expires = datetime.fromisoformat(doc["expires_at"])
            ttl = float(doc.get("ttl", self.ttl))
        except (KeyError, TypeError, ValueError):
            return unchanged_for >= self.ttl
        return _now() > expires + timedelta(seconds=ttl)

    def acquire(self, *, wait: bool = True) -> None:
        """Take the lease (waiting for it to be free, saying so once), then keep renewing it.

        Raises:
            RunInProgressError: ``wait=False`` and another holder has it.
        """
        seen: tuple[str, float] | None = None  # the holder's version, and when this host first saw it
        said = False
        while True:
            blob = self.store.get(LEASE_KEY)
            if blob is None:
                self.etag = self.store.create(LEASE_KEY, self._doc())
            else:
                try:
                    doc = json.loads(blob.data)
                except ValueError:
                    doc = {}
                if seen is None or seen[0] != blob.etag:
                    seen = (blob.etag, time.monotonic())
                if self._free(doc, time.monotonic() - seen[1]):
                    self.etag = self.store.replace(LEASE_KEY, self._doc(), blob.etag)
                    if self.etag is not None and not doc.get("released"):
                        log.warning(
                            "took over the run lease on %s from a holder that stopped%s", self.what, self._holder(doc)
                        )
                elif not wait:
                    raise RunInProgressError(f"another run{self._holder(doc)} holds the lease on {self.what}")
                elif not said:
                    said = True
                    log.warning(
                        "another run%s holds the lease on %s: waiting for it to finish or to expire",
                        self._holder(doc),
                        self.what,
                    )
            if self.etag is not None:
                break
            time.sleep(min(self.ttl / 4, 2.0))
        self._thread = threading.Thread(target=self._renew, name="run-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.ttl / 3):
            try:
                etag = self.store.replace(LEASE_KEY, self._doc(), self.etag or "")
            except OSError as exc:  # the store away for a moment: try again, unless too late
                log.warning("cannot renew the run lease on %s: %s", self.what, exc)
                if time.monotonic() - last < self.ttl:
                    continue
                etag = None
            if etag is None:
                log.error("the run lease on %s was taken over by another host: this run stops", self.what)
                self.lost.set()
                return
            self.etag, last = etag, time.monotonic()

    def check(self) -> None:
        """Raise :class:`~xport_etl.errors.LeaseLostError` if another host took the lease over."""
        if self.lost.is_set():
            raise LeaseLostError(f"another host took over the run lease on {self.what}")

    def release(self) -> None:
        """Stop renewing and mark the lease released (unless it was taken over)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.etag is not None and not self.lost.is_set():
            try:
                self.store.replace(LEASE_KEY, self._doc(released=True), self.etag)
            except OSError as exc:  # it expires by itself
                log.warning("cannot release the run lease on %s: %s", self.what, exc)
