"""
# xport_callbacks

Applies Xportcn's message callbacks (Taobao and 1688) within minutes instead of at the next daily
window. The receiver (`xport-etl callbacks serve`, an ASGI app behind your HTTPS endpoint) verifies
each message's HMAC and age and appends it, fsynced, to `<data_dir>/callbacks/inbox.jsonl` before
answering 200. Every five minutes this DAG's one task reads the messages stored since the last
consumed offset and re-reads exactly the orders and refunds they name, whatever their type: Taobao
orders through the order detail (or the order list by `orderNo`), Taobao refunds through the
refund list, 1688 orders through one modify-time window of the 1688 order list, 1688 refunds
through `refund/info`; then publishes them atomically. The offset only advances after a
successful publish, so a failed run is simply retried; what can never be refreshed goes to
`<data_dir>/callbacks/dead-letter.jsonl`.

Runs in the `xport_api` pool (it calls the API). `max_active_runs=1`: consumers never overlap.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task
from xport_airflow_provider.failures import fail_fast
from xport_airflow_provider.notifications import notify_failure


@dag(
    dag_id="xport_callbacks",
    doc_md=__doc__,
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "xport-etl",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": notify_failure,
    },
    tags=["xport", "callbacks", "taobao", "1688"],
)
def xport_callbacks() -> None:
    @task(
        pool="xport_api",
        execution_timeout=timedelta(minutes=30),
        doc_md="Refresh the orders and refunds named by the callbacks stored since the last run.",
    )
    @fail_fast
    def consume(**context: Any) -> dict[str, Any]:
        from xport_airflow_provider.hooks import XportHook

        from xport_etl.callbacks.refresh import refresh_from_callbacks
        from xport_etl.run_ids import dag_run_id

        dag_id = context["dag"].dag_id
        run_id = dag_run_id(dag_id, context["run_id"])  # a run only when there are messages
        return refresh_from_callbacks(XportHook().get_settings(), run_id=run_id, command=f"dag {dag_id}")

    consume()


xport_callbacks()
