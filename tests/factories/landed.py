"""Landed windows of Taobao order pages, and what a published warehouse holds of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from xport_etl.extract.landing import Manifest, PageWriter, read_manifest, window_id
from xport_etl.layout import DataLayout

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def land(data_dir: Path, pages: list[bytes], *, start=T0, extracted_at=None) -> Manifest:
    """Land ``pages`` (page bytes, e.g. :func:`tests.factories.served.page`) under ``data_dir`` as
    one committed ``taobao_orders`` create-time window of the day from ``start``."""
    end = start + timedelta(days=1)
    wid = window_id("create", start, end)
    m = Manifest(
        endpoint="taobao_orders",
        mode="create",
        window_id=wid,
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        run_id="run-" + wid,
        extracted_at=(extracted_at or datetime.now(UTC)).isoformat(),
    )
    with PageWriter(data_dir, m) as w:
        for body in pages:
            w.write(body)
        path = w.commit()
    return read_manifest(path)


def facts(data_dir: Path) -> dict[str, list[tuple]]:
    """The published warehouse's orders, lines and rejects, in key order."""
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        return {
            "orders": con.sql(
                "select order_id, status, goods_amount, line_count from fct_orders order by 1"
            ).fetchall(),
            "lines": con.sql(
                "select order_id, line_id, line_index, amount from fct_order_lines order by 1, 3"
            ).fetchall(),
            "rejects": con.sql("select record_id, reason from etl_rejects order by 1").fetchall(),
        }
    finally:
        con.close()
