"""
# xport_freshness

Alerts on stale data, SLA-style, at two levels. Every hour, fail when a fact table's feeding
endpoints have not succeeded within the expected freshness (`XPORT_FRESHNESS_HOURS` or the
Connection's `freshness_hours` extra, default 26: a daily ingest plus two hours of slack): a failed
run is the alert; route it with the task's `on_failure_callback`, email or your alerting
integration. Before that, past the warning level (`XPORT_FRESHNESS_WARN_HOURS` or the extra
`freshness_warn_hours`, default an hour less than the error level: 25 h, the daily load is an hour
late), the task logs a warning and succeeds.

The reports DAG runs only when loads publish, so it cannot notice that loads stopped; this DAG
runs on the clock. Freshness is read from the run ledger (`xport_etl.report.status.check_freshness`):
a fan-out table (parcels, 1688 refunds) is as fresh as the loads its keys come from.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task
from xport_airflow_provider.failures import fail_fast
from xport_airflow_provider.notifications import notify_failure


@dag(
    dag_id="xport_freshness",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "xport-etl",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "on_failure_callback": notify_failure,
    },
    tags=["xport", "monitoring"],
)
def xport_freshness() -> None:
    @task(
        doc_md="Fail (alert) when a fact table is older than `XPORT_FRESHNESS_HOURS` hours; log a warning "
        "past `XPORT_FRESHNESS_WARN_HOURS`."
    )
    @fail_fast
    def check_freshness() -> list[dict[str, Any]]:
        from xport_airflow_provider.hooks import XportHook

        from xport_etl.report.status import check_freshness as check
        from xport_etl.report.status import freshness_warning

        settings = XportHook().get_settings()  # freshness_hours: XPORT_FRESHNESS_HOURS or the Connection's extra
        rows = check(settings.data_dir, settings.freshness_hours, warn_hours=settings.freshness_warn_hours)
        warning = freshness_warning(rows)
        if warning:
            logging.getLogger("airflow.task").warning("%s", warning)
        return [{"table": r["table"], "age_hours": r["age_hours"], "level": r["level"]} for r in rows]

    check_freshness()


xport_freshness()
