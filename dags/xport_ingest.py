"""
# xport_ingest

Daily ingest of the merchant's Taobao and 1688 purchases from the Xportcn OpenAPI into the
DuckDB warehouse: orders and lines, refunds, parcels and their tracking events.

**Tasks are drawn from the stream declarations** (`xport_etl/streams/`): one task group per
platform; per scheduled stream an `extract_<stream>` task (a list paged by window, or a fan-out
called per key) and a `load_<stream>` task; a fan-out's extract after its parent's load; every
load that no fan-out waits on before `publish`. The graph, as this DAG draws it, ends this page.

**One published state per run.** The `load_*` tasks normalise what their extract landed and
merge it into this DAG run's *next state* of the warehouse (`<data_dir>/state/next/`; under
`XPORT_STORAGE_URL`, objects in the bucket that whichever worker runs the next task rebuilds it
from, so the tasks need no shared disk), which no reader sees; the final `publish` task checks it and swaps it in atomically, once, and emits the
fact Assets. A reader sees the warehouse before the run or after it, never a run's orders
without its parcels and refunds, and `rpt_stuck_orders` raises no false alarm mid-run. A failed
task leaves the published warehouse as it was; clearing it (or a retry) merges again into the
same next state (merges are idempotent) and the run still publishes once. If another writer
(the callbacks DAG) published meanwhile, `publish` merges the run's batches onto that newer
state first.

**Schedule and window.** A data-interval timetable, `CronDataIntervalTimetable("0 0 * * *",
"UTC")`: the run for logical date *D* covers the UTC day `[D, D+1)` and starts once that day is
over. Each list stream reads the window its cursor in `xport_etl/streams/` chooses
(`xport_etl.run.windows.interval_window`): Taobao and 1688 orders by **update time** (what
changed in the interval), Taobao refunds by **creation time** with a 45-day lookback (the refund
list filters on creation only, and refunds move for weeks). Windows end `XPORT_SAFETY_LAG` (5 min)
before now, split into chunks of at most 31 days, and the load merges by key with the latest
update winning, so re-runs and backfills are idempotent. The run parameter `lookback_days`
(default 0) widens every window: one run with a large value loads the whole history,
`airflow dags test xport_ingest 2026-07-01 -c '{"lookback_days": 200}'` (`dags test` infers the
interval that *ends* at the date it is given: here `[2026-06-30, 2026-07-01)`).

`catchup=False` on purpose: history is loaded by an explicit backfill (`airflow backfill create
--dag-id xport_ingest --from-date … --to-date … --run-backwards`: bounded daily runs, each
published once, the newest first) or one run with a larger `lookback_days` (published once, at its
end), never by a burst of catch-up runs. `max_active_runs=1`: runs of the same
endpoints never overlap.

**Fan-out.** `extract_logistics` (both platforms) and 1688 `extract_refunds` have no list to
page: they call a detail endpoint once per key the run's *next state* names (their stream's key
query in `sql/fanout/`: shipped lines or orders whose parcels are not all delivered; 1688
refundIds not yet final: what this run loaded included), so they run after their parent's load
(`load_orders`). When there is nothing to fetch, the load is skipped.

**Pool `xport_api`.** Every task that calls the API runs in the pool `xport_api`, which caps
how many of them run at once. Airflow does not create it, and the scheduler never schedules a
task whose pool does not exist, so create it once per installation:

    airflow pools set xport_api 4 "Xportcn API calls"

The pool caps concurrency; the rate is the library's: every process using the same data
directory shares one budget per access key (`XPORT_RATE_LIMIT` / the connection's `rate_limit`,
default 10 requests/s, the API's assumed per-key limit) through a lock file under
`<data_dir>/state/ratelimit/`, so four concurrent tasks together still stay under the limit. Workers
on several machines share it through Redis instead: `XPORT_RATE_LIMIT_URL=redis://…` (or the
connection's `rate_limit_url`; see docs/deploy-airflow.md).

**Timeouts, retries and alerts.** List extracts time out after 2 h, fan-outs after 6 h
(`execution_timeout`; a timed-out try is retried like any failure). A task is retried twice
(5 min, then 10) when another try may succeed (the API failing past the client's own retries,
Redis away, a malformed page, a failed data check); what a retry cannot fix (wrong credentials
or signature, a refused user-id, a bad setting or request: `xport_airflow_provider.failures`)
fails the task at once (`AirflowFailException`). A failed task calls the
configured notifier, if any: the Airflow Variable `xport_failure_notifier` or
`XPORT_FAILURE_NOTIFIER`, `module:attribute` of a callable such as an `SmtpNotifier`
(`xport_airflow_provider.notifications`).

**Assets.** `publish` emits the assets of the fact tables (`xport://warehouse/fct_orders`,
`fct_order_lines`, `fct_refunds`, `fct_parcels`, `fct_parcel_events`); `xport_reports` is
scheduled on them.

**Connection.** `xport_default` (type `xport`): host = base URL, login = AccessKey,
password = AccessSecret, extra `{"user_id": "…", "rate_limit": 10}`; the type comes from the provider
`xport-airflow-provider` (`xport_airflow_provider.hooks.XportHook`).

**Run id.** The DAG run is one run of the warehouse's lineage: `xport_ingest/<Airflow run id>`
(e.g. `xport_ingest/scheduled__2026-07-14T00:00:00+00:00`) is on every `etl_runs` row, check result,
reject and fact row it writes; `xport-etl status --run 'xport_ingest/scheduled__2026-07-14T00:00:00+00:00'`
shows its steps.

Every task is a thin call into `xport_etl.run.tasks` and returns small values (manifest paths,
row counts); paging, retries and parsing live in the library.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, TaskGroup, dag, task
from xport_airflow_provider.failures import fail_fast
from xport_airflow_provider.notifications import notify_failure

from xport_etl.streams import graph  # the stream declarations: plain data, no pyarrow at parse time
from xport_etl.tables import FACT_TABLES

API_POOL = "xport_api"
LIST_CHUNK = timedelta(days=31)  # the same bound as `xport-etl run --chunk-days`
# a list extract of one day pages in minutes; a fan-out calls a detail endpoint per open key
LIST_TIMEOUT = timedelta(hours=2)
FANOUT_TIMEOUT = timedelta(hours=6)

FACT_ASSETS = tuple(Asset(f"xport://warehouse/{name}") for name in FACT_TABLES)


def ingest_window(
    interval_start: datetime | None,
    interval_end: datetime | None,
    lookback_days: int,
    *,
    run_after: datetime | None = None,
) -> tuple[datetime, datetime]:
    """Return the `[start, end)` window of creation times a list endpoint re-reads.

    That is the run's data interval widened by `lookback_days`. A run triggered without a
    logical date has no data interval; it covers the day that ends at `run_after`.
    """
    if lookback_days < 0:
        raise ValueError(f"lookback_days must be >= 0, got {lookback_days}")
    if interval_start is None or interval_end is None:
        if run_after is None:
            raise ValueError("a run without a data interval needs run_after")
        interval_end = run_after
        interval_start = run_after - timedelta(days=1)
    start, end = _utc(interval_start), _utc(interval_end)
    if end <= start:
        raise ValueError(f"empty data interval [{start}, {end})")
    return start - timedelta(days=lookback_days), end


def _utc(value: datetime) -> datetime:
    # a plain datetime in UTC: pendulum's DateTime (what Airflow puts in the context) loses its
    # tzinfo in `+ timedelta` when that tzinfo is `datetime.UTC`
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    v = value.astimezone(UTC)
    return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC)


def _settings():
    from xport_airflow_provider.hooks import XportHook

    return XportHook().get_settings()


def _run_key(context: dict[str, Any]) -> str:
    """This DAG run's next-state key (the same for every task and every retry of the run)."""
    from xport_etl.run.state import run_key

    return run_key(context["dag"].dag_id, context["run_id"])


def _run_id(context: dict[str, Any]) -> str:
    """This DAG run's id in the warehouse (`xport_ingest/<Airflow run id>`): on every window, check
    result, reject and fact row the run writes, whichever task and retry writes it."""
    from xport_etl.run_ids import dag_run_id

    return dag_run_id(context["dag"].dag_id, context["run_id"])


# three generic tasks; the DAG names each use of them (task id, docs, outlets) with `.override`


@task(pool=API_POOL, execution_timeout=LIST_TIMEOUT)
@fail_fast
def extract_list(endpoint: str, **context: Any) -> list[str]:
    """Land `endpoint` for the run's window, one manifest per chunk of at most `LIST_CHUNK`."""
    from xport_etl.run.tasks import extract_interval

    start, end = ingest_window(
        context.get("data_interval_start"),
        context.get("data_interval_end"),
        int(context["params"]["lookback_days"]),
        run_after=context["dag_run"].run_after,
    )
    return extract_interval(_settings(), endpoint, start, end, chunk=LIST_CHUNK, run_id=_run_id(context))


@task(pool=API_POOL, execution_timeout=FANOUT_TIMEOUT, trigger_rule="none_failed")
@fail_fast
def extract_fanout(endpoint: str, **context: Any) -> list[str]:
    """Call `endpoint` once per key the run's next state names; land the answers.

    Runs also when its platform's order load was skipped (nothing new landed): parcels and
    refunds of earlier orders still move, and the keys then come from the published state."""
    from xport_etl.run.tasks import extract_fanout_for_run

    return extract_fanout_for_run(_settings(), endpoint, _run_key(context), _run_id(context))


@task
@fail_fast
def load(manifests: list[str], **context: Any) -> dict[str, Any]:
    """Merge the landed windows into the run's next state; skipped when nothing was landed."""
    if not manifests:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("nothing was landed: nothing to load")
    from xport_etl.run.tasks import load_into_run

    return {"rows_written": load_into_run(_settings(), manifests, _run_key(context), _run_id(context))}


@task(
    outlets=list(FACT_ASSETS),
    trigger_rule="none_failed",
    doc_md="Check the run's next state and publish it atomically, once: the warehouse readers see"
    " moves from the state before this run to the state after it. Emits the fact-table Assets."
    " Runs when no load failed (a skipped load merged nothing); returns the rows written per table"
    " and the rejects.",
)
@fail_fast
def publish(**context: Any) -> dict[str, Any]:
    """Publish the run's next state (what every load merged), once."""
    from xport_etl.run.tasks import publish_run

    result = publish_run(_settings(), _run_key(context), _run_id(context))
    return {"rows_written": result["rows_written"], "rejects": result["rejects"], "run_id": result["run_id"]}


def _extract_list_doc(endpoint: str) -> str:
    return (
        f"Page `{endpoint}` for the run's window (its declared incremental window for the data"
        " interval, widened by `lookback_days`, in chunks of at most 31 days) and land the raw"
        " pages. Returns the manifest paths. Runs in the `xport_api` pool."
    )


def _extract_fanout_doc(endpoint: str, keys: str) -> str:
    return (
        f"Call `{endpoint}` once per key the run's next state names ({keys}) and land the"
        " answers. Returns the manifest paths (none when there is nothing to fetch). Runs in"
        " the `xport_api` pool."
    )


def _load_doc(upstream: str, *tables: str) -> str:
    names = ", ".join(f"`{t}`" for t in tables)
    return (
        f"Normalise what `{upstream}` landed and merge it into the run's next state of the"
        f" warehouse ({names}), unpublished: the `publish` task publishes the run once. Returns"
        " the rows written per table; skipped when nothing was landed."
    )


def _extract_task(stream):
    if stream.fanout is None:
        return extract_list.override(task_id=f"extract_{stream.short}", doc_md=_extract_list_doc(stream.name))
    doc = _extract_fanout_doc(stream.name, stream.fanout.about)
    return extract_fanout.override(task_id=f"extract_{stream.short}", doc_md=doc)


def _load_task(stream):
    doc = _load_doc(f"extract_{stream.short}", *stream.tables)
    return load.override(task_id=f"load_{stream.short}", doc_md=doc)


TASK_GRAPH = graph.draw(lambda s: f"extract_{s.short} → load_{s.short}", lambda p: p.group)


@dag(
    dag_id="xport_ingest",
    doc_md=f"{__doc__}\n```\n{TASK_GRAPH}every load no fan-out waits on → publish\n```\n",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "xport-etl",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "on_failure_callback": notify_failure,
    },
    params={
        "lookback_days": Param(
            0,
            type="integer",
            minimum=0,
            description="Widen every list window this many days before the data interval"
            " (a first load or a backfill; the declared lookbacks apply anyway).",
        ),
    },
    tags=["xport", "ingest", "taobao", "1688"],
)
def xport_ingest() -> None:
    loads = {}  # stream name -> its load task
    for platform, streams in graph.platforms():
        with TaskGroup(platform.group, tooltip=platform.title):
            for s in streams:  # a parent is declared before its fan-outs
                extract = _extract_task(s)(s.name)
                if s.fanout is not None:
                    loads[s.fanout.parent] >> extract
                loads[s.name] = _load_task(s)(extract)
    [task for name, task in loads.items() if not graph.children(name)] >> publish()


xport_ingest()
