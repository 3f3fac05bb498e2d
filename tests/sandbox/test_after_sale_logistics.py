"""Taobao refunds and logistics (docs/api-contract.md §5.4–§5.6): shapes, paging, lifecycles,
404s."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.factories.sandbox import Api
from xport_sandbox.testing import SandboxServer
from xport_sandbox.world import CST, World, WorldConfig

EXAMPLES = Path(__file__).resolve().parent.parent / "recorded" / "doc-examples"  # the API documentation's examples
REFUND_LIST = "/open/order/refund/queryList"
REFUND_DETAIL = "/v2/taobao/order/refund/query"
LOGISTICS = "/v2/taobao/order/logistics/detail/get"
REFUND_KEYS = [
    "refundId",
    "orderId",
    "subOrderId",
    "purchaseOrderId",
    "purchaseOrderLineId",
    "salesOrderId",
    "refundType",
    "goodsStatus",
    "refundStatus",
    "refundFee",
    "currency",
    "reasonId",
    "reasonDesc",
    "refundDesc",
    "sellerRefuseReason",
    "createTime",
    "modifiedTime",
    "timeoutDate",
]
REFUND_CODES = {10, 20, 30, 100, -10, -20}
TRACE_STATUSES = {"ACCEPT", "TRANSPORT", "DELIVERING", "SIGN", "FAILED", "REJECT"}
CST_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
CONFIG = WorldConfig(orders=600)


def same_nesting(served: object, example: object, where: str = "data") -> None:
    """``served`` has exactly the example's keys, in its order, at every level."""
    if isinstance(example, dict):
        assert isinstance(served, dict), where
        assert list(served) == list(example), where
        for key, value in example.items():
            same_nesting(served[key], value, f"{where}.{key}")
    elif isinstance(example, list):
        assert isinstance(served, list), where
        for k, item in enumerate(served):
            same_nesting(item, example[0], f"{where}[{k}]")
    else:
        assert not isinstance(served, dict | list), where


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())["data"]


def dec(value: object) -> Decimal:
    assert not isinstance(value, float)
    return Decimal(str(value))


def ok(response) -> object:
    body = json.loads(response.text, parse_float=Decimal)
    assert body["code"] == 200, body
    return body["data"]


def all_refunds(api: Api, body: dict | None = None) -> list[dict]:
    records, page_no = [], 1
    while True:
        data = ok(api.post(REFUND_LIST, {**(body or {}), "pageNo": page_no, "pageSize": 100}))
        if not data["records"]:
            return records
        records += data["records"]
        page_no += 1


@pytest.fixture(scope="module")
def refunds(api: Api) -> list[dict]:
    return all_refunds(api)


def cst(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms // 1000, CST).strftime("%Y-%m-%d %H:%M:%S")


# -- refunds -----------------------------------------------------------------------------------


def test_refund_list_shape_order_and_amounts(api: Api, sandbox: SandboxServer, refunds: list[dict]) -> None:
    world = sandbox.world
    assert refunds == world.taobao_refunds()
    lines = sum(len(o["subOrderVOS"]) for o in world.taobao_orders())
    assert 0.015 < len(refunds) / lines < 0.08, "a few percent of lines are refunded"
    assert len({r["refundId"] for r in refunds}) == len(refunds)
    keys = [(r["createTime"], r["refundId"]) for r in refunds]
    assert keys == sorted(keys, reverse=True), "newest first"
    orders = {str(o["id"]): o for o in world.taobao_orders()}
    for r in refunds:
        assert list(r) == REFUND_KEYS
        assert type(r["createTime"]) is int and type(r["modifiedTime"]) is int
        assert r["createTime"] <= r["modifiedTime"] <= world.clock_ms
        assert r["refundStatus"] in REFUND_CODES and r["refundType"] in (1, 2)
        assert r["timeoutDate"] is None or CST_RE.fullmatch(r["timeoutDate"])
        assert (r["timeoutDate"] is None) == (r["refundStatus"] in (100, -20))
        fee = dec(r["refundFee"])
        assert fee == fee.quantize(Decimal("0.01")) and fee > 0
        order = orders[str(r["orderId"])]
        line = next(s for s in order["subOrderVOS"] if str(s["subOrderId"]) == str(r["subOrderId"]))
        assert fee <= dec(line["purchaseAmount"])
        assert (r["purchaseOrderId"], r["purchaseOrderLineId"]) == (
            line["taobaoPurchaseId"],
            line["taobaoSubPurchaseId"],
        )
        assert r["salesOrderId"] == str(order["id"])
        assert order["status"] in (2, 10, 11, 4, 9), "refunds only on paid orders"
        if r["refundStatus"] == -10:
            assert r["sellerRefuseReason"]
    assert Counter(r["refundStatus"] for r in refunds)[100] > 0


def test_sub_order_refund_status_is_the_refunds_status(sandbox: SandboxServer, refunds: list[dict]) -> None:
    by_line = {str(r["subOrderId"]): r for r in refunds}
    seen = 0
    for order in sandbox.world.taobao_orders():
        for s in order["subOrderVOS"]:
            refund = by_line.get(str(s["subOrderId"]))
            assert s["refundStatus"] == (refund["refundStatus"] if refund else 0)
            if refund:
                seen += 1
                assert order["updateTime"] >= cst(refund["modifiedTime"])
    assert seen == len(refunds)


def test_refund_list_window_filters_and_bad_parameters(api: Api, refunds: list[dict]) -> None:
    target = refunds[len(refunds) // 2]
    t = target["createTime"]

    def ids(body: dict) -> set[str]:
        return {r["refundId"] for r in all_refunds(api, body)}

    rid = target["refundId"]
    assert rid in ids({"refundStartTime": t, "refundEndTime": t + 1})
    assert rid in ids({"refundStartTime": str(t), "refundEndTime": str(t + 1)})
    assert rid not in ids({"refundStartTime": t + 1})
    assert rid not in ids({"refundEndTime": t})
    assert ids({"refundId": rid}) == {rid}
    assert rid in ids({"purchaseOrderId": target["purchaseOrderId"]})
    assert rid in ids({"salesOrderId": target["salesOrderId"]})
    same = ids({"refundStatus": target["refundStatus"]})
    assert rid in same and same == {r["refundId"] for r in refunds if r["refundStatus"] == target["refundStatus"]}
    data = ok(api.post(REFUND_LIST, {"pageNo": 1, "pageSize": 7}))
    assert (data["total"], data["size"], data["pages"]) == (len(refunds), 7, -(-len(refunds) // 7))
    assert data["records"] == refunds[:7]
    for body in (
        {"pageSize": 10},
        {"pageNo": 1},
        {"pageNo": 1, "pageSize": 101},
        {"pageNo": 1, "pageSize": 10, "refundStartTime": "2026-06-01 00:00:00"},
        {"pageNo": 1, "pageSize": 10, "refundStatus": "x"},
    ):
        assert api.post(REFUND_LIST, body).json()["code"] == 400, body


def test_refund_detail_nesting_and_404(api: Api, refunds: list[dict]) -> None:
    expected = example("taobao-refund-detail-v2.json")
    for r in refunds[:25]:
        data = ok(api.get(REFUND_DETAIL, {"refundId": r["refundId"]}))
        same_nesting(data, expected)
        order = data["refundOrderAggregate"]["refundOrder"]
        line = data["refundOrderAggregate"]["purchaseOrderLine"]
        assert order["refundId"] == r["refundId"]
        assert order["refundStatus"] == r["refundStatus"]
        assert dec(order["refundFee"]) == dec(r["refundFee"])
        assert str(line["purchaseOrderLineId"]) == r["purchaseOrderLineId"]
        assert str(line["purchaseOrderId"]) == r["purchaseOrderId"]
        assert line["salesOrderId"] == r["salesOrderId"] and data["currency"] == "CNY"
        assert dec(line["price"]) * line["quantity"] == dec(line["productFee"])
    missing = api.get(REFUND_DETAIL, {"refundId": "999"}).json()
    assert (missing["code"], missing["data"]) == (404, None)
    assert api.get(REFUND_DETAIL, {}).json()["code"] == 400


def test_refunds_move_with_the_clock() -> None:
    world = World(WorldConfig(orders=3000))
    before = {r["refundId"]: r for r in world.taobao_refunds()}
    world.advance(20 * 86_400)
    after = {r["refundId"]: r for r in world.taobao_refunds()}
    assert set(before) < set(after), "new refunds are created"
    moved = [k for k in before if before[k]["refundStatus"] != after[k]["refundStatus"]]
    assert moved, "open refunds advance"
    allowed = {10: {20, -10, -20, 100, 30}, 20: {30, 100, -20}, 30: {100}, -10: {-20}}
    orders = {str(o["id"]): o for o in world.taobao_orders()}
    for k in moved:
        a, b = before[k], after[k]
        assert b["refundStatus"] in allowed[a["refundStatus"]]
        assert b["modifiedTime"] > a["modifiedTime"]
        # a refund change is a change of the order record
        assert orders[str(b["orderId"])]["updateTime"] >= cst(b["modifiedTime"])
    for k in before:
        assert before[k]["createTime"] == after[k]["createTime"]
        assert before[k]["refundFee"] == after[k]["refundFee"]


def test_refund_change_moves_the_orders_update_time() -> None:
    world = World(CONFIG)
    store = world.taobao
    # a refund on a shipped order changes after the order's last status change
    for r in range(len(store.rf_order)):
        i = store.rf_order[r]
        last_status_s = store.trans_t[store.trans_off[i + 1] - 1]
        change_ms = store.rf_t[store.rf_off[r + 1] - 1]
        if change_ms // 1000 > last_status_s and change_ms > world.clock_ms:
            break
    else:
        pytest.skip("no refund changing in the future")
    order_id = str(store.detail(i).order_id)
    world.set_clock(datetime.fromtimestamp(change_ms / 1000, CST) - timedelta(seconds=1))
    old = world.taobao_order(order_id)["updateTime"]
    world.advance(1)
    new = world.taobao_order(order_id)
    assert new["updateTime"] > old and new["updateTime"] == cst(change_ms)
    update_window = {
        "update_start": datetime.fromtimestamp(change_ms // 1000, CST),
        "update_end": datetime.fromtimestamp(change_ms // 1000 + 1, CST),
    }
    assert order_id in {str(o["id"]) for o in world.taobao_orders(**update_window)}


# -- logistics ---------------------------------------------------------------------------------


def test_logistics_detail_nesting_and_parcels(api: Api, sandbox: SandboxServer) -> None:
    expected = example("taobao-logistics-detail-v2.json")
    shipped = sandbox.world.taobao_orders(status=11)[:60]
    clock = cst(sandbox.world.clock_ms)
    served = 0
    for order in shipped:
        for line in order["subOrderVOS"]:
            data = ok(api.get(LOGISTICS, {"subPurchaseOrderId": line["taobaoSubPurchaseId"]}))
            same_nesting(data, expected)
            assert data["purchaseOrderOuterId"] == line["taobaoSubPurchaseId"]
            parcels = data["pnmLogisticsDetails"]
            assert len(parcels) <= 2
            if parcels:
                served += 1
                first = parcels[0]
                assert first["mailNo"] == line["logisticNumber"]
                assert first["logisticsPartner"][0]["company"] == line["logisticCompanyName"]
                assert sum(int(p["logisticsGoods"][0]["quantity"]) for p in parcels) <= int(line["quantity"])
            for parcel in parcels:
                traces = parcel["logisticsTraces"]
                assert traces and traces[0]["status"] == "ACCEPT"
                times = [t["time"] for t in traces]
                assert times == sorted(times) and times[-1] <= clock
                assert all(CST_RE.fullmatch(t) for t in times)
                assert {t["status"] for t in traces} <= TRACE_STATUSES
                assert all(t["statusDesc"] and t["standerdDesc"] for t in traces)
                assert isinstance(parcel["logisticsGoods"][0]["quantity"], str)
    assert served > 50


def test_logistics_unshipped_and_unknown_lines(api: Api, sandbox: SandboxServer) -> None:
    unpaid = sandbox.world.taobao_orders(status=0)[0]["subOrderVOS"][0]
    data = ok(api.get(LOGISTICS, {"subPurchaseOrderId": unpaid["taobaoSubPurchaseId"]}))
    assert data == {
        "purchaseOrderOuterId": unpaid["taobaoSubPurchaseId"],
        "pnmLogisticsDetails": [],
    }
    for unknown in ("300000000000", "12", "abc"):
        body = api.get(LOGISTICS, {"subPurchaseOrderId": unknown}).json()
        assert (body["code"], body["data"]) == (404, None), unknown
    assert api.get(LOGISTICS, {}).json()["code"] == 400


def test_tracking_numbers_are_unique_and_belong_to_one_line(sandbox: SandboxServer) -> None:
    owner: dict[str, str] = {}
    clock_s = sandbox.world.clock_ms // 1000
    for _, line, parcel in sandbox.world.iter_taobao_parcels():
        assert owner.setdefault(parcel.tracking_number, line.sub_purchase_id) == line.sub_purchase_id
        assert parcel.visible(clock_s)
    assert len(owner) > 500


def test_parcels_progress_with_the_clock() -> None:
    world = World(CONFIG)
    lines = [s["taobaoSubPurchaseId"] for o in world.taobao_orders(status=11)[:40] for s in o["subOrderVOS"]]
    waiting = [s["taobaoSubPurchaseId"] for o in world.taobao_orders(status=10) for s in o["subOrderVOS"]]
    before = {sp: world.taobao_logistics(sp) for sp in lines + waiting}
    world.advance(12 * 86_400)
    after = {sp: world.taobao_logistics(sp) for sp in lines + waiting}

    def events(data: dict) -> list[tuple[str, str]]:
        return [(p["mailNo"], t["status"]) for p in data["pnmLogisticsDetails"] for t in p["logisticsTraces"]]

    grew = delivered = 0
    for sp in lines:
        old, new = events(before[sp]), events(after[sp])
        assert new[: len(old)] == old, "events only get appended"
        grew += len(new) > len(old)
        delivered += ("SIGN" not in {s for _, s in old}) and ("SIGN" in {s for _, s in new})
    assert grew and delivered, "new events appear and parcels get delivered"
    newly_shipped = [sp for sp in waiting if after[sp]["pnmLogisticsDetails"]]
    assert newly_shipped and all(not before[sp]["pnmLogisticsDetails"] for sp in newly_shipped)


def test_a_big_world_answers_logistics_fast() -> None:
    started = time.perf_counter()
    world = World(WorldConfig(orders=20_000))
    built = time.perf_counter() - started
    lines = [s["taobaoSubPurchaseId"] for o in world.taobao_page(3, 100)[1] for s in o["subOrderVOS"]]
    started = time.perf_counter()
    for sp in lines:
        assert world.taobao_logistics(sp) is not None
    per_call = (time.perf_counter() - started) / len(lines)
    started = time.perf_counter()
    total, page = world.taobao_refund_page(3, 100)
    refunds_paged = time.perf_counter() - started
    assert total > 500 and len(page) == 100
    assert built < 3 and per_call < 0.005 and refunds_paged < 0.5
