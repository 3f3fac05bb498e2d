"""The list windows of a command's bounded runs: paged several at once, checkpointed in the plan
as each lands, and staged on the fast path as soon as they land."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from xport_etl.extract import storage
from xport_etl.extract.landing import read_manifest, window_id
from xport_etl.run import Progress
from xport_etl.run.paging import extract_window
from xport_etl.run.plan import RunPlan
from xport_etl.run.stage import SqlStager, staged_ok, worker_count
from xport_etl.settings import Settings

EXTRACT_WORKERS = 4  # list windows paged at once by `run` (XPORT_EXTRACT_WORKERS); same limiter


class ListLander:
    r"""Lands the list windows of a command's bounded runs, several at once, the newest run's first,
    and stages each DuckDB-normalised window as soon as it lands (:class:`~xport_etl.run.stage.SqlStager`); each run
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
        workers = 1 if client is not None else worker_count(settings.extract_workers, EXTRACT_WORKERS, len(todo))
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="extract")
        self._futures = {w: self._pool.submit(self._extract, w) for w in todo}

    @staticmethod
    def _key(window: tuple) -> str:
        e, m, lo, hi = window
        return f"{e}/{window_id(m, lo, hi)}"

    def _landed(self, window: tuple) -> str | None:
        named = self.plan.landed.get(self._key(window))
        path = None if named is None else self.plan.manifest(named)
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
            path = extract_window(
                self.settings, e, lo, hi, mode=m, client=self.client, progress=self._paged, run_id=self.plan.run_id
            )
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
                self.stager.on_done(path, lambda f, event=event: staged_ok(f) and progress(event))

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
                    path = extract_window(
                        self.settings,
                        e,
                        lo,
                        hi,
                        mode=m,
                        client=self.client,
                        progress=self._paged,
                        run_id=self.plan.run_id,
                    )
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
