"""
# xport_taobao_orders

Daily load of the merchant's Taobao purchase orders from the Xportcn OpenAPI into the DuckDB
warehouse (`fct_orders`, `fct_order_lines`).

**Window.** Orders keep changing (payment, shipping, refunds) for weeks after they are created,
so each run re-reads every order *created* in
`[data_interval_start - lookback_days, data_interval_end)` and replaces exactly that window in
the warehouse. Re-runs and backfills are therefore idempotent. `lookback_days` is a run
parameter (default 30); one run with a large value reloads the whole history, e.g.
`airflow dags test xport_taobao_orders 2026-06-30 --conf '{"lookback_days": 200}'`.

**Schedule.** `@daily`, `catchup=False` on purpose: history is loaded by an explicit backfill
or a run with a larger `lookback_days`, never by a burst of catch-up runs.

**Connection.** `xport_default` (type `xport`): host = base URL, login = AccessKey,
password = AccessSecret, extra `{"user_id": "…"}`. See `plugins/xport_hook.py`.

**Tasks.** `extract` lands the raw pages and returns the window's manifest path; `load`
normalises and publishes the window atomically and returns row counts. Both are thin calls into
`xport_etl.pipeline`; paging, retries and parsing live in the library.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, dag, task

FCT_ORDERS = Asset("xport://warehouse/fct_orders")
FCT_ORDER_LINES = Asset("xport://warehouse/fct_order_lines")


def order_window(
    interval_start: datetime | None, interval_end: datetime, lookback_days: int
) -> tuple[datetime, datetime]:
    """Return the `[start, end)` window of order creation times a run re-reads.

    In Airflow 3 `@daily` is a `CronTriggerTimetable`, whose data interval has zero width
    (start == end == the logical date); a manual run without a logical date has none at all.
    Either way the run covers the day that ends at `interval_end`, plus the lookback.
    """
    if lookback_days < 0:
        raise ValueError(f"lookback_days must be >= 0, got {lookback_days}")
    start = interval_start if interval_start and interval_start < interval_end else None
    if start is None:
        start = interval_end - timedelta(days=1)
    return start - timedelta(days=lookback_days), interval_end


@dag(
    dag_id="xport_taobao_orders",
    doc_md=__doc__,
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "xport-etl",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
    },
    params={
        "lookback_days": Param(
            30,
            type="integer",
            minimum=0,
            description="Re-read orders created this many days before the data interval.",
        ),
    },
    tags=["xport", "taobao", "orders"],
)
def xport_taobao_orders() -> None:
    @task(
        doc_md=(
            "Page `taobao_orders` for the orders created in the run's window (the data interval"
            " plus `lookback_days`) and land the raw pages. Returns the window's manifest path."
        )
    )
    def extract(**context: Any) -> str:
        from xport_hook import XportHook

        from xport_etl.pipeline import extract_window

        end = context.get("data_interval_end") or context["dag_run"].run_after
        start, end = order_window(
            context.get("data_interval_start"), end, int(context["params"]["lookback_days"])
        )
        settings = XportHook().get_settings()
        return extract_window(settings, "taobao_orders", start, end, mode="create")

    @task(
        outlets=[FCT_ORDERS, FCT_ORDER_LINES],
        doc_md=(
            "Normalise the landed window and publish it into the DuckDB warehouse atomically,"
            " replacing exactly that window. Returns the rows written per table and the rejects."
        ),
    )
    def load(manifest: str) -> dict:
        from xport_hook import XportHook

        from xport_etl.pipeline import load_windows

        settings = XportHook().get_settings()
        return load_windows(settings, [manifest])

    load(extract())


xport_taobao_orders()
