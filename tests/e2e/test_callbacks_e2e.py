"""End to end over real HTTP: load a sandbox world, move its clock, push signed callbacks for what
changed through the receiver, consume them, and check that exactly the named orders and refunds
now equal the ground truth, refreshed through the detail endpoints alone."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import duckdb
import pyarrow as pa
import pytest

from tests.helpers import serve
from tests.test_callbacks import serve_app
from xport_etl.callbacks.inbox import read_inbox
from xport_etl.callbacks.receiver import CALLBACK_PATH, create_receiver
from xport_etl.callbacks.refresh import refresh_from_callbacks
from xport_etl.load import staging
from xport_etl.load.publish import warehouse_path
from xport_etl.normalize.callback_details import DETAIL_NORMALIZERS
from xport_etl.run import run_window
from xport_etl.schemas import FCT_ORDER_LINES, FCT_ORDERS, FCT_REFUNDS
from xport_etl.settings import Settings
from xport_sandbox import DEFAULT_ACCESS_SECRET
from xport_sandbox.push import ORDER_PRICE, ORDER_REFUND, ORDER_STATUS, CallbackPusher
from xport_sandbox.truth import truth_tables

DETAIL_PATHS = {"/open/order/detail", "/v2/taobao/order/refund/query"}


@pytest.fixture
def refresh_normalizers(monkeypatch):
    """Register the detail normalisers the refresh needs, until staging does it itself."""
    found = staging._normalizers()
    missing = {k: v for k, v in DETAIL_NORMALIZERS.items() if found.get(k) is not v}
    if missing:
        monkeypatch.setattr(staging, "_normalizers", lambda: {**found, **missing})


def rows_for(con, spec, truth, key: str, ids: set[str]) -> tuple[list, list]:
    """(warehouse rows, truth rows) of ``spec`` whose ``key`` is in ``ids``, sorted."""
    cols = ", ".join(spec.public_columns)
    con.register(f"truth_{spec.name}", truth[spec.name])
    con.register("named", pa.table({"id": pa.array(sorted(ids), pa.string())}))
    q = f"select {cols} from {{}} where {key} in (select id from named) order by all"
    return con.sql(q.format(spec.name)).fetchall(), con.sql(q.format(f"truth_{spec.name}")).fetchall()


def test_callbacks_refresh_exactly_the_named_orders_and_refunds(tmp_path, refresh_normalizers):
    with serve(seed=5, orders=500) as sandbox:
        world = sandbox.world
        settings = Settings(base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0)
        run_window(settings, world.config.start, world.clock + timedelta(days=30))
        stale = truth_tables(world)

        t0 = world.clock
        sandbox.advance(4 * 86_400)
        app = create_receiver(DEFAULT_ACCESS_SECRET, tmp_path / "callbacks")
        with serve_app(app) as url:
            pusher = CallbackPusher(world, url + CALLBACK_PATH, DEFAULT_ACCESS_SECRET, seed=2)
            sent = pusher.push_changes(t0, world.clock + timedelta(seconds=1))
        app.state.store.close()
        assert sent and all(d.delivered for d in sent)
        kinds = Counter(d.message["messageType"] for d in sent if not d.duplicate)
        assert kinds[ORDER_STATUS] > 10 and kinds[ORDER_REFUND] > 0 and kinds[ORDER_PRICE] > 0, kinds
        assert any(d.duplicate for d in sent)
        # both forms of messageBody (docs/api-contract.md#6-message-callbacks) go through the
        # receiver and the consumer
        forms = Counter(type(json.loads(d.body)["messageBody"]).__name__ for d in sent if not d.duplicate)
        assert forms["str"] > 10 and forms["dict"] > 10 and set(forms) == {"str", "dict"}, forms
        entries, _end, corrupt = read_inbox(tmp_path / "callbacks" / "inbox.jsonl")
        assert len(entries) == len({d.id for d in sent}) and corrupt == 0  # redeliveries stored once

        orders = {str(d.message_body.get("orderId") or d.message_body.get("salesOrderId")) for d in sent}
        refunds = {d.message_body["refundId"] for d in sent if d.message["messageType"] == ORDER_REFUND}

        before = sandbox.stats()["endpoints"]
        result = refresh_from_callbacks(settings)
        after = sandbox.stats()["endpoints"]
        calls = {p: after[p]["requests"] - before.get(p, {}).get("requests", 0) for p in after}
        assert {p for p, n in calls.items() if n} == DETAIL_PATHS, calls  # no list endpoint
        assert calls["/open/order/detail"] == len(orders) == result["orders"]
        assert calls["/v2/taobao/order/refund/query"] == len(refunds) == result["refunds"]
        assert result["messages"] == len(entries) and result["unknown"] == {} and result["bad"] == 0

        truth = truth_tables(world)
        con = duckdb.connect(str(warehouse_path(tmp_path)), read_only=True)
        try:
            for spec, key, ids in (
                (FCT_ORDERS, "order_id", orders),
                (FCT_ORDER_LINES, "order_id", orders),
                (FCT_REFUNDS, "refund_id", refunds),
            ):
                got, want = rows_for(con, spec, truth, key, ids)
                assert got == want, f"{spec.name}: refreshed rows differ from the truth"
                # and they were really stale before: the refresh changed something
                _, old = rows_for(con, spec, stale, key, ids)
                assert old != want, spec.name
            # the rows no message named are as the first load left them
            got, want = rows_for(
                con,
                FCT_ORDERS,
                stale,
                "order_id",
                set(stale["fct_orders"]["order_id"].to_pylist()) - orders,
            )
            assert got == want
        finally:
            con.close()

        # nothing new: no calls, the offset stays
        again = refresh_from_callbacks(settings)
        assert again["messages"] == 0 and sandbox.stats()["endpoints"] == after
