"""End to end over real HTTP (issue 23): load a sandbox world, move its clock two hours, push every
change in between as signed callbacks only (both platforms, both body forms, duplicates, shuffled,
some under a type the project does not know) through the receiver, consume them, and check that
the orders, lines and refunds of both platforms equal the sandbox's truth at the new clock, row for
row, with no delivery refused."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import duckdb
import pytest

from tests.factories.callbacks import serve_app
from xport_etl.callbacks.receiver import CALLBACK_PATH, create_receiver
from xport_etl.callbacks.refresh import refresh_from_callbacks
from xport_etl.layout import DataLayout
from xport_etl.run.engine import run_window
from xport_etl.schemas import FCT_ORDER_LINES, FCT_ORDERS, FCT_REFUNDS
from xport_etl.settings import Settings
from xport_sandbox import DEFAULT_ACCESS_SECRET
from xport_sandbox.common import CST
from xport_sandbox.push import (
    ALIBABA_REFUND,
    ALIBABA_STATUS,
    ORDER_PRICE,
    ORDER_REFUND,
    ORDER_STATUS,
    UNKNOWN_TYPES,
    CallbackPusher,
)
from xport_sandbox.testing import SandboxServer
from xport_sandbox.truth import truth_tables
from xport_sandbox.world import WorldConfig

TABLES = (FCT_ORDERS, FCT_ORDER_LINES, FCT_REFUNDS)
# what callbacks refresh: the lists and the refunds (no logistics)
ENDPOINTS = ("taobao_orders", "taobao_refunds", "alibaba_orders", "alibaba_refunds")
# eight days of orders before the clock, refunds on half of the paid ones: two hours hold about a
# hundred and fifty changes of every kind
WORLD = WorldConfig(
    seed=5,
    orders=2000,
    start=datetime(2026, 6, 23, tzinfo=CST),
    clock=datetime(2026, 7, 1, tzinfo=CST),
    refund_rate=0.6,
    refund_rate_1688=0.6,
)


def differences(data_dir, world) -> dict[str, tuple[int, int, list]]:
    """Per fact table: (truth rows missing or different, unexpected rows, an example) where the
    warehouse and the truth differ, every public column compared."""
    truth = truth_tables(world)
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    out = {}
    try:
        for spec in TABLES:
            cols = ", ".join(spec.public_columns)
            con.register(f"truth_{spec.name}", truth[spec.name])
            missing = con.sql(f"select {cols} from truth_{spec.name} except all select {cols} from {spec.name}")
            extra = con.sql(f"select {cols} from {spec.name} except all select {cols} from truth_{spec.name}")
            missing, extra = missing.fetchall(), extra.fetchall()
            if missing or extra:
                out[spec.name] = (len(missing), len(extra), (missing + extra)[:2])
    finally:
        con.close()
    return out


@pytest.fixture
def sandbox():
    with SandboxServer(WORLD) as server:
        yield server


def test_callbacks_alone_bring_both_platforms_to_the_truth(tmp_path, sandbox):
    world = sandbox.world
    settings = Settings(base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0)
    run_window(settings, WORLD.start, world.clock + timedelta(days=1), endpoints=ENDPOINTS)
    assert differences(tmp_path, world) == {}  # the first load is exact

    t0 = world.clock
    sandbox.advance(2 * 3600)
    assert differences(tmp_path, world).keys() == {"fct_orders", "fct_order_lines", "fct_refunds"}
    # the receiver's clock is the API's (the sandbox's): each message is stamped when its change
    # happened, so the oldest arrive two hours late, as after four of Xportcn's retries
    app = create_receiver(DEFAULT_ACCESS_SECRET, tmp_path / "callbacks", clock=lambda: world.clock_ms / 1000)
    with serve_app(app) as url:
        pusher = CallbackPusher(world, url + CALLBACK_PATH, DEFAULT_ACCESS_SECRET, seed=2, unknown_share=0.1)
        sent = pusher.push_changes(t0, world.clock + timedelta(seconds=1))
    app.state.store.close()

    # no delivery refused, not even once
    assert sent and all(d.status == 200 and d.tries == 1 for d in sent), Counter(d.status for d in sent)
    first = [d for d in sent if not d.duplicate]
    kinds = Counter(d.message["messageType"] for d in first)
    for mtype in (ORDER_STATUS, ORDER_PRICE, ORDER_REFUND, ALIBABA_STATUS, ALIBABA_REFUND, *UNKNOWN_TYPES.values()):
        assert kinds[mtype] > 0, kinds
    assert len(first) > 100 and any(d.duplicate for d in sent)
    forms = Counter(type(json.loads(d.body)["messageBody"]).__name__ for d in first)
    assert forms["str"] > 20 and forms["dict"] > 20, forms
    ages = [world.clock_ms - int(d.message["timestamp"]) for d in first]
    assert max(ages) > 100 * 60 * 1000  # a message about two hours old was accepted

    before = sandbox.stats()["endpoints"]
    result = refresh_from_callbacks(settings)
    after = sandbox.stats()["endpoints"]
    calls = {p: after[p]["requests"] - before.get(p, {}).get("requests", 0) for p in after}
    assert result["dead_lettered"] == 0 and result["bad"] == 0 and result["corrupt"] == 0, result
    assert result["messages"] == len(first)
    assert result["unknown"] == {t: kinds[t] for t in UNKNOWN_TYPES.values()}
    refunds_1688 = {d.message_body["refundId"] for d in first if d.message["messageType"] == ALIBABA_REFUND}
    assert calls["/alibaba/refund/info"] == len(refunds_1688)
    # one window of the 1688 list for every 1688 order (a page or two), no detail per order
    assert 1 <= calls["/v2/alibaba/order/page"] <= 3, calls
    assert calls["/open/order/refund/queryList"] == len(
        {d.message_body["refundId"] for d in first if d.message["messageType"] == ORDER_REFUND}
    )
    assert calls.get("/v2/taobao/order/refund/query", 0) == 0  # the refund list, not the detail

    assert differences(tmp_path, world) == {}  # every order, line and refund of both platforms

    # nothing new: no calls, the position stays
    again = refresh_from_callbacks(settings)
    assert again["messages"] == 0 and sandbox.stats()["endpoints"] == after
