"""1688 orders, refunds and logistics (docs/api-contract.md §5.7–§5.9) over real HTTP and in the
world."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tests.factories.sandbox import Api, cst_1688, flat_1688
from tests.factories.served import ORDER_TIMES_1688
from xport_sandbox.testing import SandboxServer
from xport_sandbox.world import World, WorldConfig

PAGE = "/v2/alibaba/order/page"
REFUND = "/alibaba/refund/info"
TRACE = "/alibaba/order/logistics/trace"
ORDER_KEYS = [
    "orderId",
    "webSite",
    "status",
    "sellerLoginId",
    "sellerCompanyName",
    "totalAmount",
    "shippingFee",
    "discount",
    "currency",
    "createTime",
    "payTime",
    "allDeliveredTime",
    "completeTime",
    "modifyTime",
    "productItems",
]
ITEM_KEYS = [
    "subItemId",
    "productId",
    "skuId",
    "specId",
    "name",
    "quantity",
    "price",
    "itemAmount",
    "unit",
    "status",
    "refundStatus",
    "refundId",
    "logisticsStatus",
]
REFUND_KEYS = [
    "id",
    "refundId",
    "orderId",
    "subItemId",
    "status",
    "applyPayment",
    "applyCarriage",
    "refundPayment",
    "applyReason",
    "applyReasonId",
    "buyerSendGoods",
    "createTime",
    "updateTime",
]
STATUSES = {
    "waitbuyerpay",
    "waitsellersend",
    "waitbuyerreceive",
    "confirm_goods",
    "success",
    "cancel",
    "terminated",
}
REFUND_STATUSES = {
    "waitselleragree",
    "waitbuyermodify",
    "waitbuyersend",
    "waitsellerreceive",
    "refundsuccess",
    "refundclose",
}
CST_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
COMPACT_RE = re.compile(r"\d{17}\+0800")
NESTED_KEYS = ["baseInfo", "productItems", "nativeLogistics"]


def dec(value: object) -> Decimal:
    assert not isinstance(value, float)
    return Decimal(str(value))


def ok(response) -> object:
    body = json.loads(response.text, parse_float=Decimal)
    assert body["code"] == 200, body
    return body["data"]


def all_orders(api: Api, body: dict | None = None) -> list[dict]:
    records, page_no = [], 1
    while True:
        data = ok(api.post(PAGE, {**(body or {}), "pageNo": page_no, "pageSize": 100}))
        if not data["records"]:
            return records
        records += data["records"]
        page_no += 1


def shift(text: str, seconds: int) -> str:
    at = datetime.strptime(text, "%Y-%m-%d %H:%M:%S") + timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def served(api: Api) -> list[dict]:
    """The 1688 order records as served: flat or nested, times in either format."""
    return all_orders(api)


@pytest.fixture(scope="module")
def orders(served: list[dict]) -> list[dict]:
    """The same records in the flat shape with CST times."""
    return [flat_1688(r) for r in served]


def test_order_list_shape_amounts_and_order(
    api: Api, sandbox: SandboxServer, served: list[dict], orders: list[dict]
) -> None:
    assert len(orders) == 200 == sandbox.world.config.n_orders_1688
    assert served == sandbox.world.alibaba_orders()
    keys = [(r["createTime"], int(r["orderId"])) for r in orders]
    assert keys == sorted(keys, reverse=True)
    for raw, r in zip(served, orders, strict=True):
        if "baseInfo" in raw:
            assert list(raw) == NESTED_KEYS
            assert list(raw["baseInfo"]) == [k for k in ORDER_KEYS if k != "productItems"]
        else:
            assert list(r) == ORDER_KEYS
        times = [(raw.get("baseInfo") or raw)[k] for k in ORDER_TIMES_1688]
        assert all(t is None or CST_RE.fullmatch(t) or COMPACT_RE.fullmatch(t) for t in times)
        assert r["webSite"] == "1688" and r["currency"] == "CNY" and r["status"] in STATUSES
        assert str(r["orderId"]).isdigit() and len(str(r["orderId"])) == 19
        items = r["productItems"]
        assert items
        goods = dec(r["totalAmount"]) - dec(r["shippingFee"])
        assert goods == sum(dec(i["itemAmount"]) for i in items)
        for item in items:
            assert list(item) == ITEM_KEYS
            assert type(item["quantity"]) is int
            assert dec(item["price"]) * item["quantity"] == dec(item["itemAmount"])
            assert item["status"] == r["status"]
            assert (item["refundId"] is None) == (item["refundStatus"] is None)
            assert item["refundStatus"] in REFUND_STATUSES | {None}
            assert item["refundId"] is None or item["refundId"].startswith("TQ")
            assert item["logisticsStatus"] in (1, 2, 3)
        assert r["createTime"] <= r["modifyTime"]
        assert (r["payTime"] is None) == (r["status"] in ("waitbuyerpay", "cancel"))
        assert (r["allDeliveredTime"] is not None) == (r["status"] in ("waitbuyerreceive", "confirm_goods", "success"))
        assert (r["completeTime"] is not None) == (r["status"] == "success")
    # the awkward cases
    assert any(isinstance(r["orderId"], int) for r in orders)
    assert {str, Decimal} <= {type(r["totalAmount"]) for r in orders}
    assert any(r["sellerCompanyName"] is None for r in orders)
    assert any(i["skuId"] is None for r in orders for i in r["productItems"])
    assert any(i["refundId"] for r in orders for i in r["productItems"])
    assert len({str(i["subItemId"]) for r in orders for i in r["productItems"]}) == sum(
        len(r["productItems"]) for r in orders
    )


def test_default_world_serves_both_shapes_and_both_time_formats(served: list[dict]) -> None:
    nested = [r for r in served if "baseInfo" in r]
    assert 0.3 < len(nested) / len(served) < 0.7
    assert all(list(r) == NESTED_KEYS and isinstance(r["nativeLogistics"], dict) for r in nested)
    assert all("baseInfo" not in r and "nativeLogistics" not in r for r in served if r not in nested)
    times = [(r.get("baseInfo") or r)[k] for r in served for k in ORDER_TIMES_1688]
    times = [t for t in times if t is not None]
    compact = [t for t in times if COMPACT_RE.fullmatch(t)]
    assert 0.3 < len(compact) / len(times) < 0.7
    assert len(compact) + sum(1 for t in times if CST_RE.fullmatch(t)) == len(times)
    # the two choices are independent: every combination is served
    combos = {
        ("baseInfo" in r, COMPACT_RE.fullmatch((r.get("baseInfo") or r)["createTime"]) is not None) for r in served
    }
    assert combos == {(False, False), (False, True), (True, False), (True, True)}
    # in 1688's own shape the discount is integer fen (docs/api-contract.md#57-1688-orders), never
    # subtracted again
    assert any(type(r["baseInfo"]["discount"]) is int and r["baseInfo"]["discount"] < 0 for r in nested)


def test_the_flat_shape_only_world() -> None:
    world = World(WorldConfig(orders=600, nested_share_1688=0.0, compact_time_share_1688=0.0))
    records = world.alibaba_orders()
    assert records and all(list(r) == ORDER_KEYS for r in records)
    assert all(r[k] is None or CST_RE.fullmatch(r[k]) for r in records for k in ORDER_TIMES_1688)
    # the same world apart from the rendering: the same facts
    default = World(WorldConfig(orders=600))
    for flat, r in zip(records, map(flat_1688, default.alibaba_orders()), strict=True):
        assert {**r, "discount": flat["discount"]} == flat


def test_order_list_filters_work_on_nested_records_with_compact_times(api: Api, served: list[dict]) -> None:
    target = next(
        r
        for r in served
        if "baseInfo" in r
        and COMPACT_RE.fullmatch(r["baseInfo"]["modifyTime"])
        and COMPACT_RE.fullmatch(r["baseInfo"]["createTime"])
    )
    base = target["baseInfo"]
    oid = str(base["orderId"])
    created, modified = cst_1688(base["createTime"]), cst_1688(base["modifyTime"])

    def ids(body: dict) -> set[str]:
        return {str(flat_1688(r)["orderId"]) for r in all_orders(api, body)}

    assert oid in ids({"createStartTime": created, "createEndTime": shift(created, 1)})
    assert oid not in ids({"createStartTime": shift(created, 1)})
    assert oid in ids({"modifyStartTime": modified, "modifyEndTime": shift(modified, 1)})
    assert oid not in ids({"modifyStartTime": shift(modified, 1)})
    assert oid in ids({"status": base["status"]})


def test_order_list_windows_status_and_bad_parameters(api: Api, orders: list[dict]) -> None:
    target = orders[37]
    oid = str(target["orderId"])

    def ids(body: dict) -> set[str]:
        return {str(flat_1688(r)["orderId"]) for r in all_orders(api, body)}

    created, modified = target["createTime"], target["modifyTime"]
    assert oid in ids({"createStartTime": created, "createEndTime": shift(created, 1)})
    assert oid not in ids({"createStartTime": shift(created, 1)})
    assert oid not in ids({"createEndTime": created})
    assert oid in ids({"modifyStartTime": modified, "modifyEndTime": shift(modified, 1)})
    assert oid not in ids({"modifyEndTime": modified})
    same = ids({"status": target["status"]})
    assert oid in same and same == {str(r["orderId"]) for r in orders if r["status"] == target["status"]}
    assert ids({"status": "nosuchstatus"}) == set()
    data = ok(api.post(PAGE, {"pageNo": 3, "pageSize": 30}))
    assert (data["total"], data["size"], data["current"], data["pages"]) == (200, 30, 3, 7)
    assert [flat_1688(r) for r in data["records"]] == orders[60:90]
    assert ok(api.post(PAGE, {"pageNo": 9, "pageSize": 30}))["records"] == []
    for body in (
        {"pageNo": 1, "pageSize": 101},
        {"pageNo": 1, "pageSize": 10, "createStartTime": "2026-06-01"},
        {"pageNo": 1, "pageSize": 10, "modifyEndTime": 1782825963094},
    ):
        assert api.post(PAGE, body).json()["code"] == 400, body


def test_refund_info_matches_the_item_and_uses_fen(api: Api, orders: list[dict]) -> None:
    refunded = [(r, i) for r in orders for i in r["productItems"] if i["refundId"]]
    assert refunded
    for order, item in refunded:
        data = ok(api.post(REFUND, {"refundId": item["refundId"]}))
        assert list(data) == REFUND_KEYS
        assert data["refundId"] == item["refundId"] and data["status"] == item["refundStatus"]
        assert data["orderId"] == str(order["orderId"])
        assert data["subItemId"] == str(item["subItemId"])
        for key in ("applyPayment", "applyCarriage", "refundPayment", "id", "applyReasonId"):
            assert type(data[key]) is int, key
        assert 0 < data["applyPayment"] <= dec(item["itemAmount"]) * 100
        assert data["refundPayment"] == data["applyPayment"] + data["applyCarriage"]
        assert isinstance(data["buyerSendGoods"], bool) and data["applyReason"]
        assert CST_RE.fullmatch(data["createTime"]) and data["createTime"] <= data["updateTime"]
        assert data["updateTime"] <= order["modifyTime"]
    for body in ({"refundId": "TQ1"}, {"refundId": "nope"}):
        missing = api.post(REFUND, body).json()
        assert (missing["code"], missing["data"]) == (404, None)
    assert api.post(REFUND, {}).json()["code"] == 400


def test_logistics_trace(api: Api, orders: list[dict], sandbox: SandboxServer) -> None:
    bills: set[str] = set()
    clock_cst = (sandbox.world.clock + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    for r in orders[:80]:
        data = ok(api.get(TRACE, {"orderId": str(r["orderId"])}))
        assert list(data) == ["orderId", "logisticsTrace"]
        assert data["orderId"] == str(r["orderId"])
        shipped = r["allDeliveredTime"] is not None
        if not shipped:
            assert data["logisticsTrace"] == []
        assert len(data["logisticsTrace"]) <= 2
        for parcel in data["logisticsTrace"]:
            assert list(parcel) == [
                "logisticsId",
                "logisticsBillNo",
                "logisticsCompanyName",
                "logisticsSteps",
            ]
            assert parcel["logisticsBillNo"] not in bills
            bills.add(parcel["logisticsBillNo"])
            steps = parcel["logisticsSteps"]
            assert steps and all(list(s) == ["acceptTime", "remark"] for s in steps)
            times = [s["acceptTime"] for s in steps]
            assert times == sorted(times) and times[0] >= r["allDeliveredTime"]
            assert times[-1] <= clock_cst
            if r["status"] in ("confirm_goods", "success"):
                assert "签收" in steps[-1]["remark"]
    assert len(bills) > 30
    missing = api.get(TRACE, {"orderId": "1234567890123456789"}).json()
    assert (missing["code"], missing["data"]) == (404, None)
    assert api.get(TRACE, {}).json()["code"] == 400


def test_orders_refunds_and_steps_move_with_the_clock() -> None:
    world = World(WorldConfig(orders=3000))
    before = {str(r["orderId"]): r for r in map(flat_1688, world.alibaba_orders())}
    open_refunds = {
        i["refundId"]: world.alibaba_refund(i["refundId"])
        for r in before.values()
        for i in r["productItems"]
        if i["refundStatus"] not in (None, "refundsuccess", "refundclose")
    }
    shipping = [k for k, r in before.items() if r["status"] == "waitbuyerreceive"]
    traces_before = {k: world.alibaba_logistics(k) for k in shipping}
    world.advance(10 * 86_400)
    after = {str(r["orderId"]): r for r in map(flat_1688, world.alibaba_orders())}
    assert set(before) < set(after)
    moved = [k for k in before if before[k]["status"] != after[k]["status"]]
    assert moved and all(after[k]["modifyTime"] > before[k]["modifyTime"] for k in moved)
    assert open_refunds
    changed = 0
    for refund_id, old in open_refunds.items():
        new = world.alibaba_refund(refund_id)
        if new["status"] != old["status"]:
            changed += 1
            assert new["updateTime"] > old["updateTime"]
            order = after[new["orderId"]]
            assert order["modifyTime"] >= new["updateTime"]
            item = next(i for i in order["productItems"] if str(i["subItemId"]) == new["subItemId"])
            assert item["refundStatus"] == new["status"]
    assert changed
    grew = 0
    for k, old in traces_before.items():
        new = world.alibaba_logistics(k)
        n_old = sum(len(p["logisticsSteps"]) for p in old["logisticsTrace"])
        grew += sum(len(p["logisticsSteps"]) for p in new["logisticsTrace"]) > n_old
    assert grew
