"""``xport-etl run`` and ``backfill``: any declared streams over a period, as bounded runs that each
publish once.

A bounded run lands its list streams' windows (:mod:`~xport_etl.run.lander`), merges them into
the run's next state, then runs each fan-out stream in the graph's order (its keys chosen from
that next state, so what the run loaded is fetched before anyone can see it) and merges it too,
and publishes. Resumable after a crash (:class:`~xport_etl.run.plan.RunPlan`); one command at a
time per data directory (:func:`~xport_etl.run.plan.run_lock`). The command is one run
(:mod:`xport_etl.run.steps`): its bounded runs' windows, publishes and rows share its id, which a
resumed command keeps.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from xport_etl.faults import crashpoint
from xport_etl.run import Progress
from xport_etl.run.fanout import extract_fanout
from xport_etl.run.lander import ListLander
from xport_etl.run.paging import client_for
from xport_etl.run.plan import RunPlan, run_lock
from xport_etl.run.state import merge_windows, next_state, nothing_published, publish_state
from xport_etl.run.steps import step
from xport_etl.run.windows import DEFAULT_CHUNK, DEFAULT_RUN, Window, bounded_runs
from xport_etl.run_ids import new_run_id
from xport_etl.settings import Settings
from xport_etl.streams import graph

log = logging.getLogger(__name__)


def run_window(
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    endpoints: Iterable[str] | None = None,
    mode: str = "create",
    incremental: bool = False,
    chunk: timedelta = DEFAULT_CHUNK,
    span: timedelta = DEFAULT_RUN,
    wait: bool = True,
    client=None,
    progress: Progress | None = None,
    run_id: str | None = None,
    command: str = "xport-etl run",
) -> dict[str, Any]:
    """Load ``[start, end)`` as a sequence of bounded runs, each published once.

    A run lands its list streams' windows, merges them into the run's next state, fetches the
    fan-out streams for the keys that next state names (what the run loaded, before anyone can
    see it), merges them too, and publishes: a reader sees the warehouse before the run or after
    it, never orders whose parcels or refunds belong to another run. A period longer than
    ``span`` is several runs, the newest first, so the latest month is readable while older ones
    load. Resumable: see :class:`~xport_etl.run.plan.RunPlan`.

    Args:
        endpoints: the streams to read (default: every scheduled stream, in
            :func:`~xport_etl.streams.graph.run_order`); a fan-out after its parent. Their order
            is part of the plan's identity.
        mode: the list streams' window (``"create"``: by creation time), in windows of at most
            ``chunk`` (several paged at once), in runs of ``span``.
        incremental: instead of ``mode``, each list stream reads its cursor's window for the
            interval (update time, or creation time with a lookback; see
            :func:`~xport_etl.run.windows.interval_window`), as the hourly DAG does: one run.
        wait: when another command is running on the same data directory, wait for it to finish
            (logged); ``False``: raise :class:`~xport_etl.errors.RunInProgressError` at once.
        run_id: the command's run id (default: a new one); a resumed plan keeps the id of the
            command that started it (the result's ``run_id`` says which).
        command: what the run's ``run`` step calls the command (``xport-etl run``, ``xport-etl backfill``).
    """
    run_id = run_id or new_run_id()
    with (
        run_lock(settings.layout, wait=wait, progress=progress, lease_s=settings.run_lease) as guard,
        step(settings.layout, run_id, "run", command=command) as info,
    ):
        return _run_window(
            settings,
            start,
            end,
            endpoints=endpoints,
            mode=mode,
            incremental=incremental,
            chunk=chunk,
            span=span,
            client=client,
            progress=progress,
            guard=guard,
            run_id=run_id,
            info=info,
        )


def _run_window(
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    endpoints,
    mode,
    incremental,
    chunk,
    span,
    client,
    progress,
    guard,
    run_id: str,
    info: dict[str, Any],
) -> dict[str, Any]:
    endpoints = list(graph.run_order() if endpoints is None else endpoints)
    lists, fanouts = graph.lists(endpoints), graph.fanouts(endpoints)
    runs = bounded_runs(settings, start, end, lists, mode=mode, incremental=incremental, chunk=chunk, span=span)
    plan = RunPlan.open(
        settings.layout,
        {
            "endpoints": endpoints,
            "runs": [[(e, m, a.isoformat(), b.isoformat()) for e, m, a, b in w] for w in runs],
        },
    )
    plan.guard = guard  # the run lease's check, under a storage URL
    if plan.run_id is None:  # a new plan, or one an older version started: this command's id
        plan.run_id = run_id
        plan.save()
    run_id = info["run_id"] = plan.run_id
    info.update(resumed=plan.resumed, runs=len(runs))
    if plan.resumed:
        log.warning("resuming an unfinished run %s from %s", run_id, plan.shown)
        if progress:
            progress({"event": "resume", "plan": plan.shown, "run_id": run_id})
    results: dict[str, Any] = {**nothing_published(run_id), "resumed": plan.resumed, "runs": len(runs)}
    lists_client = client  # the caller's client, or None: each list window opens its own
    todo = [w for i, run in enumerate(runs) if i not in plan.published for w in run]
    lander = ListLander(settings, plan, todo, client=lists_client, progress=progress)
    with client_for(settings, client) as client, contextlib.closing(lander):
        for i, windows in enumerate(runs):
            if i in plan.published:
                continue
            if progress and len(runs) > 1 and windows:
                tz = ZoneInfo(settings.report_tz)
                lo, hi = min(w[2] for w in windows).astimezone(tz), max(w[3] for w in windows).astimezone(tz)
                progress(
                    {
                        "event": "run",
                        "run": i + 1,
                        "runs": len(runs),
                        "message": f"run {i + 1} of {len(runs)}: {lo:%Y-%m-%d %H:%M} → {hi:%Y-%m-%d %H:%M}",
                    }
                )
            one = _run_once(settings, plan, i, windows, fanouts, client=client, lander=lander, progress=progress)
            _add_result(results, one)
            info["published"] = info.get("published", 0) + (one["warehouse"] is not None)
            plan.published.append(i)
            plan.next_run()
            plan.save()
        plan.status = "done"
        plan.save()
    return results


def _run_once(
    settings: Settings,
    plan: RunPlan,
    index: int,
    windows: Sequence[Window],
    fanouts: Sequence[str],
    *,
    client,
    lander: ListLander,
    progress: Progress | None,
) -> dict[str, Any]:
    """One bounded run of :func:`run_window`: lists, fan-outs, one publish."""
    state = next_state(settings, f"plan-{plan.digest}-{index:04d}", plan.run_id)
    if not plan.lists_merged:
        manifests, staged = lander.wait(windows)
        if manifests:
            merge_windows(settings, state, manifests, progress=progress, staged=staged)
        plan.lists_merged = True
        plan.save()
    crashpoint("run.fanout")

    def landed(path: str) -> None:
        plan.fanout_pending.append(plan.named(path))
        plan.save()

    for e in fanouts:
        if e in plan.fanout_done:
            continue
        # windows of this endpoint landed by a crashed attempt: merge them before asking again
        # (the keys are chosen from the next state, so what they answered is not asked again)
        if plan.fanout_pending:
            _merge_pending(settings, plan, state, progress)
        extract_fanout(settings, e, state=state, client=client, progress=progress, on_landed=landed, run_id=plan.run_id)
        _merge_pending(settings, plan, state, progress)
        plan.fanout_done.append(e)
        plan.save()
    if not state.exists():  # nothing landed at all: nothing to publish
        return nothing_published(plan.run_id)
    return publish_state(settings, state, progress=progress)


def _merge_pending(settings: Settings, plan: RunPlan, state, progress: Progress | None) -> None:
    if plan.fanout_pending:
        merge_windows(settings, state, [plan.manifest(p) for p in plan.fanout_pending], progress=progress)
    plan.fanout_pending = []
    plan.save()


def _add_result(total: dict[str, Any], one: dict[str, Any]) -> None:
    total["batches"] += one["batches"]
    total["records"] += one.get("records", 0)
    total["rejects"] += one["rejects"]
    total["warehouse"] = one["warehouse"] or total["warehouse"]
    for table, n in one["rows_written"].items():
        total["rows_written"][table] = total["rows_written"].get(table, 0) + n
