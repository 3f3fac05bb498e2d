"""What each kind of message re-reads (issue 23, items 1 and 2), against the sandbox: a 1688 status
message re-reads its order through one window of the 1688 list, a 1688 refund message its refund
(with its order's currency) and its order, a Taobao refund message its refund through the refund
list (every column, though the message carries no times), a price correction its order by
``orderNo``, and a message of a type nobody documented the order it names. A 1688 order the window
does not hold is found by its creation second; one the API does not know is a dead letter."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from xport_etl.callbacks.inbox import DEAD_LETTER_FILE, InboxStore
from xport_etl.callbacks.refresh import refresh_from_callbacks
from xport_etl.layout import DataLayout
from xport_etl.run.engine import run_window
from xport_etl.schemas import FCT_ORDER_LINES, FCT_ORDERS, FCT_REFUNDS
from xport_etl.settings import Settings
from xport_sandbox.common import CST
from xport_sandbox.push import (
    ALIBABA_REFUND,
    ALIBABA_STATUS,
    ORDER_PRICE,
    ORDER_REFUND,
    CallbackPusher,
    message_bytes,
)
from xport_sandbox.testing import SandboxServer
from xport_sandbox.truth import truth_tables
from xport_sandbox.world import WorldConfig

WORLD = WorldConfig(
    seed=9,
    orders=600,
    start=datetime(2026, 6, 16, tzinfo=CST),
    clock=datetime(2026, 7, 1, tzinfo=CST),
    refund_rate=0.6,
    refund_rate_1688=0.6,
)
ENDPOINTS = ("taobao_orders", "taobao_refunds", "alibaba_orders", "alibaba_refunds")


def rows(con, table: str, key: str, ids: set[str], *, truth=None) -> list:
    spec = {s.name: s for s in (FCT_ORDERS, FCT_ORDER_LINES, FCT_REFUNDS)}[table]
    source = table
    if truth is not None:
        con.register(f"truth_{table}", truth[table])
        source = f"truth_{table}"
    con.register("named", pa.table({"id": pa.array(sorted(ids), pa.string())}))
    return con.sql(
        f"select {', '.join(spec.public_columns)} from {source} where {key} in (select id from named) order by all"
    ).fetchall()


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(WORLD) as server:
        yield server


@pytest.mark.slow  # the pipeline against the sandbox, then the callbacks
def test_each_message_re_reads_what_it_names(tmp_path, sandbox):
    world = sandbox.world
    settings = Settings(base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0)
    run_window(settings, WORLD.start, world.clock + timedelta(days=1), endpoints=ENDPOINTS)
    con = duckdb.connect(str(DataLayout.of(tmp_path).warehouse), read_only=True)
    loaded = {r[0] for r in con.execute("select order_id from fct_orders").fetchall()}
    unchanged_1688 = con.execute(
        "select order_id, epoch_ms(updated_at) from fct_orders where platform = '1688' order by updated_at limit 1"
    ).fetchall()[0]
    con.close()

    t0 = world.clock
    sandbox.advance(6 * 3600)
    pusher = CallbackPusher(world, "unused", "unused", seed=3, price_share=1.0)
    built = pusher.messages_between(t0, world.clock + timedelta(seconds=1))

    def body(m: dict) -> dict:
        b = m["messageBody"]
        return json.loads(b) if isinstance(b, str) else b

    def first(mtype: str, where=lambda b: True) -> dict:
        return next(m for m in built if m["messageType"] == mtype and where(body(m)))

    status_1688 = first(ALIBABA_STATUS)
    refund_1688 = first(ALIBABA_REFUND)
    refund_taobao = first(ORDER_REFUND)
    new_orders = {str(o["orderNo"]): str(o["id"]) for o in world.taobao_orders()} if built else {}
    price = first(ORDER_PRICE, lambda b: new_orders[b["salesOrderId"]] not in loaded)  # an order never loaded
    changed = next(m for m in built if m["messageType"] == "TAOBAO_ORDER_STATUS_MODIFY")
    unknown = {**changed, "messageType": "TAOBAO_ORDER_SOMETHING_NEW"}
    # a 1688 order that did not change since the first load, named by a message pushed now: not in
    # the modify window, found by its creation second
    stale_1688 = {**status_1688, "messageBody": {"orderId": unchanged_1688[0]}, "timestamp": str(world.clock_ms)}
    bogus_1688 = {**status_1688, "messageBody": {"orderId": "1"}}
    messages = [status_1688, refund_1688, refund_taobao, price, unknown, stale_1688, bogus_1688]
    store = InboxStore(tmp_path / "callbacks", clock=lambda: world.clock_ms / 1000)
    for m in messages:
        raw = message_bytes(m)
        store.append(raw, json.loads(raw))
    store.close()

    before = sandbox.stats()["endpoints"]
    result = refresh_from_callbacks(settings)
    after = sandbox.stats()["endpoints"]
    calls = {p: after[p]["requests"] - before.get(p, {}).get("requests", 0) for p in after}
    assert result["unknown"] == {"TAOBAO_ORDER_SOMETHING_NEW": 1} and result["bad"] == 0
    letters = [json.loads(x) for x in (tmp_path / "callbacks" / DEAD_LETTER_FILE).read_text().splitlines()]
    assert [json.loads(json.dumps(x["message"]))["messageBody"] for x in letters] == [{"orderId": "1"}]
    assert "not in the order list modified" in letters[0]["reason"]

    orders_1688 = {body(status_1688)["orderId"], body(refund_1688)["orderId"], unchanged_1688[0]}
    orders_taobao = {body(refund_taobao)["orderId"], new_orders[body(price)["salesOrderId"]], body(changed)["orderId"]}
    refunds = {body(refund_1688)["refundId"], body(refund_taobao)["refundId"]}
    assert "createTime" not in body(refund_taobao) and "modifiedTime" not in body(refund_taobao)
    truth = truth_tables(world)
    con = duckdb.connect(str(DataLayout.of(tmp_path).warehouse), read_only=True)
    try:
        for table, key, ids in (
            ("fct_orders", "order_id", orders_1688 | orders_taobao),
            ("fct_order_lines", "order_id", orders_1688 | orders_taobao),
            ("fct_refunds", "refund_id", refunds),
        ):
            got, want = rows(con, table, key, ids), rows(con, table, key, ids, truth=truth)
            assert got == want and len(got) >= len(ids), table
        [(currency,)] = con.execute(
            "select currency from fct_refunds where platform = '1688' and refund_id = ?",
            [body(refund_1688)["refundId"]],
        ).fetchall()
        assert currency == "CNY"
    finally:
        con.close()
    # the 1688 list: one modify window, then the creation second of the stale order (a query and
    # its catch-up), and of the bogus one nothing (the warehouse does not know when it was created)
    assert calls["/v2/alibaba/order/page"] == 3, calls
    assert calls["/alibaba/refund/info"] == 1 and calls["/open/order/refund/queryList"] == 1
    assert calls["/open/purchase/page"] == 1  # the price correction, by orderNo
