"""Staging landed windows to Parquet, and the choice of how: the DuckDB fast path's windows on
threads sharing one DuckDB (:class:`SqlStager`), the Python normalisers' windows in worker
processes when they are large enough to pay for them, else one after another."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xport_etl.extract.landing import Manifest, read_manifest
from xport_etl.run import Progress
from xport_etl.settings import Settings

if TYPE_CHECKING:
    from xport_etl.load.staging import SharedStaging


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


def worker_count(configured: int | None, default: int, count: int) -> int:
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
        self.workers = worker_count(settings.workers, os.cpu_count() or 1, os.cpu_count() or 1)
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


def staged_ok(future) -> bool:
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
        staged: batches already staged, by manifest path (see :class:`~xport_etl.run.lander.ListLander`); the other
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
