"""Landing → Parquet → DuckDB on hand-made pages: merge rule, idempotency, atomic publish."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import duckdb
import pytest

from tests.factories.landed import T0, facts, land
from tests.factories.served import order, page, sub
from xport_etl.layout import DataLayout
from xport_etl.load.checks import CheckFailedError
from xport_etl.load.publish import publish
from xport_etl.load.staging import stage_window


def test_load_is_idempotent_and_latest_update_wins(tmp_path):
    o1 = order(id="1", status=10, updateTime="2026-02-01 10:00:00")
    o2 = order(
        id="2",
        subOrderVOS=[sub(subOrderId="21", purchaseAmount="5.00"), sub(subOrderId="22", purchaseAmount="7.50")],
        purchaseAmount="12.50",
    )
    m = land(tmp_path, [page([o1, o2, order(id=None)])])
    publish(tmp_path, [stage_window(tmp_path, m)])
    first = facts(tmp_path)
    assert [r[0] for r in first["orders"]] == ["1", "2"]
    assert len(first["lines"]) == 3 and len(first["rejects"]) == 1

    # the same window again: nothing changes, nothing duplicates (rejects included)
    m = land(tmp_path, [page([o1, o2, order(id=None)])])
    publish(tmp_path, [stage_window(tmp_path, m)])
    assert facts(tmp_path) == first

    # a later window with a newer state of order 1 (now with two lines) wins...
    newer = order(
        id="1",
        status=11,
        updateTime="2026-02-05 10:00:00",
        purchaseAmount="20.00",
        subOrderVOS=[sub(subOrderId="11", purchaseAmount="8.00"), sub(subOrderId="12", purchaseAmount="12.00")],
    )
    m2 = land(tmp_path, [page([newer])], start=T0 + timedelta(days=3))
    publish(tmp_path, [stage_window(tmp_path, m2)])
    # ...and replaying the older window afterwards (arrival order) does not bring the old state back
    publish(tmp_path, [stage_window(tmp_path, m)])
    after = facts(tmp_path)
    assert after["orders"][0][:2] == ("1", "shipped")
    assert [r[1] for r in after["lines"] if r[0] == "1"] == ["11", "12"]


def test_failed_check_leaves_the_published_warehouse_untouched(tmp_path):
    m = land(tmp_path, [page([order(id="1")])])
    publish(tmp_path, [stage_window(tmp_path, m)])
    before = hashlib.sha256(DataLayout.of(tmp_path).warehouse.read_bytes()).hexdigest()
    # the served order amount disagrees with its lines: a warn check by default (the source's own
    # inconsistency), an error check once the operator says so, and then it stops the publish
    broken = order(id="3", purchaseAmount="99.00", updateTime="2026-02-02 00:00:00")
    m = land(tmp_path, [page([broken])], start=T0 + timedelta(days=1))
    as_error = {"chk_fct_orders__amount_equals_lines": {"severity": "error"}}
    with pytest.raises(CheckFailedError, match="amount_equals_lines"):
        publish(tmp_path, [stage_window(tmp_path, m)], check_overrides=as_error)
    assert hashlib.sha256(DataLayout.of(tmp_path).warehouse.read_bytes()).hexdigest() == before
    assert not list(tmp_path.glob("*.next"))
    assert not list((tmp_path / "state" / "next").glob("*.duckdb*"))
    publish(tmp_path, [stage_window(tmp_path, m)])  # the default policy publishes it
    assert [r[0] for r in facts(tmp_path)["orders"]] == ["1", "3"]


def test_a_merge_beyond_the_memory_limit_is_retried_once_without_it(tmp_path, monkeypatch, caplog):
    import xport_etl.load.publish as load

    limits = []
    real = load.connect_writer

    def tight_then_real(path, memory_limit=None):
        limits.append(memory_limit)
        con = real(path, memory_limit)
        if memory_limit:  # a limit no merge fits in: DuckDB's own OutOfMemoryException
            con.execute("set memory_limit = '1KB'")
        return con

    monkeypatch.setattr(load, "connect_writer", tight_then_real)
    m = land(tmp_path, [page([order(id="1"), order(id="2")])])
    with caplog.at_level("WARNING", logger="xport_etl.load.publish"):
        publish(tmp_path, [stage_window(tmp_path, m)], memory_limit="300MB")
    # every step that ran out of the bounded memory (the merge, the checks) ran once more unbounded
    assert "300MB" in limits
    assert all(after is None for before, after in zip(limits, limits[1:], strict=False) if before == "300MB")
    assert "XPORT_LOAD_MEMORY=300MB" in caplog.text
    assert [r[0] for r in facts(tmp_path)["orders"]] == ["1", "2"]
    assert not list((tmp_path / "state" / "next").glob("*.duckdb"))


def test_merge_groups_cut_batches_in_order_by_staged_rows():
    from xport_etl.load.merge import merge_groups
    from xport_etl.load.staging import Batch

    batches = [
        Batch(batch_id=f"b{i}", endpoint="taobao_orders", window_id=f"w{i}", extracted_at="", counts={"orders": n})
        for i, n in enumerate([150, 150, 150, 500, 10, 0])
    ]
    groups = merge_groups(batches, "orders", limit=400)
    assert [[b.batch_id for b in g] for g in groups] == [["b0", "b1"], ["b2"], ["b3"], ["b4", "b5"]]
    assert merge_groups(batches, "orders", limit=10_000) == [batches]
    assert merge_groups([], "orders") == []


def test_merging_in_groups_equals_one_merge(tmp_path, monkeypatch):
    """Versions of the same orders spread over several batches: merged one batch at a time (a
    group each) or all at once, the latest version of each order wins with its own lines."""
    from xport_etl.load import merge as load

    def versions(day: int, status: int, amount: str) -> bytes:
        return page(
            [
                order(
                    id=str(i),
                    status=status,
                    updateTime=f"2026-02-0{day} 10:00:00",
                    purchaseAmount=amount,
                    subOrderVOS=[sub(subOrderId=f"{i}{day}", purchaseAmount=amount)],
                )
                for i in range(1, 6)
            ]
            + [order(id=f"only{day}", updateTime=f"2026-02-0{day} 09:00:00")]
        )

    # out of order on purpose: the newest versions (day 4) are in the middle batch
    pages = [versions(2, 10, "3.00"), versions(4, 11, "4.00"), versions(3, 12, "5.00")]
    results = {}
    for limit in (1, 10_000):
        root = tmp_path / f"limit{limit}"
        batches = [stage_window(root, land(root, [p], start=T0 + timedelta(days=i))) for i, p in enumerate(pages)]
        monkeypatch.setattr(load, "MERGE_ROWS", limit)
        assert len(load.merge_groups(batches, "orders")) == (3 if limit == 1 else 1)
        publish(root, batches)
        results[limit] = facts(root)
    assert results[1] == results[10_000]
    orders = dict((r[0], r[1:]) for r in results[1]["orders"])
    assert all(orders[str(i)][0] == "shipped" and str(orders[str(i)][1]) == "4.00" for i in range(1, 6))
    assert {r[1] for r in results[1]["lines"] if not r[0].startswith("only")} == {f"{i}4" for i in range(1, 6)}
    assert {"only2", "only3", "only4"} <= set(orders)


# ---- rejects and warnings: what etl_runs counts


def test_etl_runs_counts_rejected_records_and_records_loaded_with_a_warning_apart(tmp_path):
    from xport_etl.run.state import load_windows
    from xport_etl.settings import Settings

    records = [
        order(id="1", receiver="{not json"),  # warning: the order loads
        order(id="2", subOrderVOS=[sub(subOrderId="21", logisticNumber={"no": 1}, status="x")]),  # one line, 2 fields
        order(id=None),  # rejected
        order(
            id="4", subOrderVOS=[sub(subOrderId="41"), sub(subOrderId="42", quantity="two")], purchaseAmount="12.50"
        ),  # line 42 rejected
    ]
    m = land(tmp_path, [page(records)])
    result = load_windows(Settings(data_dir=tmp_path), [m.directory / "manifest.json"])
    assert result["rejects"] == 2
    con = duckdb.connect(str(DataLayout.of(tmp_path).warehouse), read_only=True)
    try:
        assert con.sql("select rejected, warnings, rows_written from etl_runs").fetchall() == [
            (2, 2, '{"order_lines": 3, "orders": 3}')
        ]
        assert con.sql("select order_id from fct_orders order by 1").fetchall() == [("1",), ("2",), ("4",)]
        assert con.sql(
            "select severity, count(*), count(distinct record_id) from etl_rejects group by 1 order by 1"
        ).fetchall() == [("rejected", 2, 1), ("warning", 3, 2)]  # a missing id is a null record_id
    finally:
        con.close()
