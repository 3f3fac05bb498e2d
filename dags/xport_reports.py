"""
# xport_reports

Re-create the warehouse's report views and run every data check, whenever `xport_ingest` has
published any fact table.

**Schedule.** On assets: a run is queued as soon as any of `xport://warehouse/fct_orders`,
`fct_order_lines`, `fct_refunds`, `fct_parcels` or `fct_parcel_events` has a new event (the load
tasks of `xport_ingest` emit them). Several loads in one ingest run collapse into one or a few
report runs; `max_active_runs=1` keeps them from overlapping.

**Task.** `refresh` builds the next warehouse state with the views re-created and every check in
`sql/checks/` run, and publishes it atomically unless an error check fails: then it fails with
`CheckFailedError` (the published warehouse stays as it was) and names the failed checks. Warn
checks never block; every check's outcome lands in `etl_check_results` (see docs/data-checks.md). The
reporting time zone comes from the connection (`report_tz` extra) or `XPORT_REPORT_TZ`.

Reports are read from the published warehouse, e.g. `xport-etl report spend` or
`duckdb -readonly data/warehouse.duckdb`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, AssetAny, dag, task
from xport_airflow_provider.failures import fail_fast
from xport_airflow_provider.notifications import notify_failure

from xport_etl.tables import FACT_TABLES  # a plain tuple: no pyarrow at parse time

FACT_ASSETS = tuple(Asset(f"xport://warehouse/{name}") for name in FACT_TABLES)


@dag(
    dag_id="xport_reports",
    doc_md=__doc__,
    # any of the fact tables updated → one run
    schedule=AssetAny(*FACT_ASSETS),
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
    tags=["xport", "reports"],
)
def xport_reports() -> None:
    @task(
        doc_md=(
            "Re-create the report views and run every data check; publish atomically unless an"
            " error check fails (`CheckFailedError`). Returns the warehouse path."
        )
    )
    @fail_fast
    def refresh(**context: Any) -> dict[str, Any]:
        from xport_airflow_provider.hooks import XportHook

        from xport_etl.run.tasks import refresh_warehouse
        from xport_etl.run_ids import dag_run_id

        run_id = dag_run_id(context["dag"].dag_id, context["run_id"])  # on its check results
        return refresh_warehouse(XportHook().get_settings(), run_id=run_id)

    refresh()


xport_reports()
