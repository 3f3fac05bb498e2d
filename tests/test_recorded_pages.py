"""The normalisers on real response bodies recorded from the sandbox over HTTP (tests/recorded/):
the contract's awkward cases as served (ids as JSON numbers, money and quantities as strings,
null statuses, receiver as a JSON string, CST times) come out exactly as docs/warehouse.md says."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from xport_etl.normalize.registry import NORMALIZERS
from xport_etl.normalize.taobao_orders import normalize_taobao_pages

RECORDED = Path(__file__).parent / "recorded"
NOW = datetime(2026, 7, 2)


def body(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


def records(name: str) -> list:
    return json.loads(body(name), parse_float=Decimal)["data"]["records"]


def utc(cst: str) -> datetime:
    return datetime.strptime(cst, "%Y-%m-%d %H:%M:%S") - timedelta(hours=8)


def test_recorded_taobao_page_has_the_awkward_cases_and_normalises_exactly():
    raw = records("taobao_orders.page1.json")
    subs = [s for r in raw for s in r["subOrderVOS"]]
    # the recording really holds the cases this test is about
    assert any(isinstance(r["id"], int) for r in raw)
    assert any(isinstance(s["quantity"], str) for s in subs)
    assert any(isinstance(s["purchaseAmount"], str) for s in subs)
    assert any(s["status"] is None for s in subs)
    assert all(isinstance(r["receiver"], str) for r in raw)

    out = normalize_taobao_pages(
        [(1, body("taobao_orders.page1.json"), None)], endpoint="taobao_orders", window_id="w", rejected_at=NOW
    )
    assert out.rejects == []
    orders = {o["order_id"]: o for o in out.tables["orders"]}
    lines = {(ln["order_id"], ln["line_id"]): ln for ln in out.tables["order_lines"]}
    assert len(orders) == len(raw) and len(lines) == len(subs)
    for r in raw:
        o = orders[str(r["id"])]
        assert o["created_at"] == utc(r["createTime"]) and o["updated_at"] == utc(r["updateTime"])
        assert o["goods_amount"] == Decimal(str(r["purchaseAmount"]))
        assert o["line_count"] == len(r["subOrderVOS"])
        assert o["platform_status"] == str(r["status"])
        assert o["goods_amount"] == sum(lines[(str(r["id"]), str(s["subOrderId"]))]["amount"] for s in r["subOrderVOS"])
        for i, s in enumerate(r["subOrderVOS"]):
            line = lines[(str(r["id"]), str(s["subOrderId"]))]
            assert line["line_index"] == i and line["quantity"] == int(s["quantity"])
            assert line["amount"] == Decimal(str(s["purchaseAmount"]))
            assert line["line_status"] == (None if s["status"] is None else str(s["status"]))
            assert line["purchase_line_id"] == str(s["taobaoSubPurchaseId"])


def test_recorded_1688_page_normalises_with_goods_as_total_minus_shipping():
    raw = records("alibaba_orders.page1.json")
    out = NORMALIZERS["alibaba_orders"](
        [(1, body("alibaba_orders.page1.json"), None)], endpoint="alibaba_orders", window_id="w", rejected_at=NOW
    )
    assert out.rejects == []
    orders = {o["order_id"]: o for o in out.tables["orders"]}
    for r in raw:
        o = orders[str(r["orderId"])]
        total, fee = Decimal(str(r["totalAmount"])), Decimal(str(r["shippingFee"]))
        assert (o["goods_amount"], o["shipping_amount"], o["total_amount"]) == (total - fee, fee, total)
        assert o["seller"] == r["sellerLoginId"] and o["order_no"] is None
        assert o["line_count"] == len(r["productItems"])


def test_recorded_logistics_detail_gives_parcels_and_events_in_api_order():
    data = json.loads(body("taobao_logistics.detail.json"))["data"]
    context = {"order_id": "1", "purchase_line_id": data["purchaseOrderOuterId"]}
    out = NORMALIZERS["taobao_logistics"](
        [(1, body("taobao_logistics.detail.json"), context)],
        endpoint="taobao_logistics",
        window_id="w",
        rejected_at=NOW,
    )
    assert out.rejects == []
    parcels = {p["tracking_number"]: p for p in out.tables["parcels"]}
    assert set(parcels) == {d["mailNo"] for d in data["pnmLogisticsDetails"]}
    for detail in data["pnmLogisticsDetails"]:
        p, traces = parcels[detail["mailNo"]], detail["logisticsTraces"]
        signs = [utc(t["time"]) for t in traces if t["status"] == "SIGN"]
        assert p["event_count"] == len(traces) and p["carrier"] == detail["logisticsPartner"][0]["company"]
        assert p["first_event_at"] == utc(traces[0]["time"]) and p["last_event_at"] == utc(traces[-1]["time"])
        assert p["delivered_at"] == (signs[0] if signs else None) and p["last_status"] == traces[-1]["status"]
        assert p["order_id"] == "1" and p["purchase_line_id"] == data["purchaseOrderOuterId"]
