"""Ground truth: docs/warehouse.md schemas, and agreement with what the API serves."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.factories.sandbox import Api, flat_1688
from xport_sandbox.cli import main
from xport_sandbox.testing import SandboxServer
from xport_sandbox.truth import truth_tables, write_truth
from xport_sandbox.world import World, WorldConfig

MONEY, TS, S, I32 = pa.decimal128(18, 2), pa.timestamp("us"), pa.string(), pa.int32()
ORDERS = [
    ("platform", S),
    ("order_id", S),
    ("order_no", S),
    ("status", S),
    ("platform_status", S),
    ("order_source", S),
    ("seller_order_number", S),
    ("seller", S),
    ("currency", S),
    ("goods_amount", MONEY),
    ("shipping_amount", MONEY),
    ("total_amount", MONEY),
    ("line_count", I32),
    ("created_at", TS),
    ("paid_at", TS),
    ("updated_at", TS),
]
LINES = [
    ("platform", S),
    ("order_id", S),
    ("line_id", S),
    ("line_index", I32),
    ("item_id", S),
    ("sku_id", S),
    ("title", S),
    ("quantity", I32),
    ("amount", MONEY),
    ("shipping_amount", MONEY),
    ("currency", S),
    ("refund_status", S),
    ("purchase_id", S),
    ("purchase_line_id", S),
]
UNIFIED = {
    12: "created",
    0: "awaiting_payment",
    1: "awaiting_payment",
    3: "awaiting_payment",
    5: "awaiting_payment",
    2: "paid",
    10: "paid",
    11: "shipped",
    4: "cancelled",
    9: "other",
}


REFUND = {0: "none", 10: "applied", 20: "agreed", 30: "waiting_return", 100: "succeeded",
          -10: "refused", -20: "closed"}  # fmt: skip


def utc(cst_text: str | None) -> datetime | None:
    if cst_text is None:
        return None
    return datetime.strptime(cst_text, "%Y-%m-%d %H:%M:%S") - timedelta(hours=8)


def test_schemas_are_exactly_the_warehouse_contract(sandbox: SandboxServer) -> None:
    tables = truth_tables(sandbox.world)
    assert set(tables) == {
        "fct_orders",
        "fct_order_lines",
        "fct_refunds",
        "fct_parcels",
        "fct_parcel_events",
    }
    assert tables["fct_orders"].schema == pa.schema(ORDERS)
    assert tables["fct_order_lines"].schema == pa.schema(LINES)
    platforms = tables["fct_orders"].column("platform").to_pylist()
    assert platforms.count("taobao") == 600 and platforms.count("1688") == 200
    taobao_only = truth_tables(sandbox.world, platforms=("taobao",))
    assert set(taobao_only["fct_orders"].column("platform").to_pylist()) == {"taobao"}


def test_truth_agrees_with_the_served_json(sandbox: SandboxServer, api: Api) -> None:
    tables = truth_tables(sandbox.world)
    orders = {row["order_id"]: row for row in tables["fct_orders"].to_pylist()}
    lines = {row["line_id"]: row for row in tables["fct_order_lines"].to_pylist()}
    served = json.loads(api.post("/open/purchase/page", {"pageNo": 2, "pageSize": 100}).text, parse_float=Decimal)[
        "data"
    ]["records"]
    assert served
    # the varied wire forms (WorldConfig.variety) read as the contract says: ids and text as
    # strings, codes as integers; a corrupt copy right after its record is skipped (a reject)
    served = [r for k, r in enumerate(served) if not k or str(r["id"]) != str(served[k - 1]["id"])]
    for r in served:
        row = orders[str(r["id"])]
        assert row["platform"] == "taobao" and row["seller"] is None
        assert row["order_no"] == str(r["orderNo"])
        assert row["status"] == UNIFIED[int(r["status"])]
        assert row["platform_status"] == str(int(r["status"]))
        assert row["goods_amount"] == Decimal(str(r["purchaseAmount"]))
        assert row["shipping_amount"] == Decimal(str(r["domesticPostFee"]))
        assert row["total_amount"] == row["goods_amount"] + row["shipping_amount"]
        assert row["line_count"] == len(r["subOrderVOS"])
        assert row["created_at"] == utc(r["createTime"])
        assert row["paid_at"] == utc(r["payTime"])
        assert row["updated_at"] == utc(r["updateTime"])
        assert (row["order_source"], row["seller_order_number"]) == (
            r["orderSource"],
            str(r["sellerOrderNumber"]),
        )
        for index, s in enumerate(r["subOrderVOS"]):
            line = lines[str(s["subOrderId"])]
            assert line["order_id"] == str(r["id"]) and line["line_index"] == index
            assert line["quantity"] == int(s["quantity"])
            assert line["amount"] == Decimal(str(s["purchaseAmount"]))
            assert line["shipping_amount"] == Decimal(str(s["domesticPostFee"]))
            assert (line["item_id"], line["sku_id"], line["title"]) == (
                str(s["itemId"]),
                str(s["skuId"]),
                s["title"],
            )
            assert (line["purchase_id"], line["purchase_line_id"]) == (
                str(s["taobaoPurchaseId"]),
                str(s["taobaoSubPurchaseId"]),
            )
            assert line["refund_status"] == REFUND[int(s["refundStatus"])]


def test_a_hand_checked_order() -> None:
    world = World(WorldConfig(orders=50))
    record = world.taobao_orders()[-1]
    row = truth_tables(world)["fct_orders"].to_pylist()[0]
    assert row["order_id"] == str(record["id"])
    # createTime is CST; the warehouse keeps naive UTC, eight hours earlier
    created = datetime.strptime(record["createTime"], "%Y-%m-%d %H:%M:%S")
    assert row["created_at"] == created - timedelta(hours=8)
    assert row["created_at"].tzinfo is None


def test_truth_follows_the_clock() -> None:
    world = World(WorldConfig(orders=200))
    before = truth_tables(world)["fct_orders"].num_rows
    world.advance(5 * 86_400)
    assert truth_tables(world)["fct_orders"].num_rows > before


def test_write_truth_and_cli(tmp_path: Path) -> None:
    paths = write_truth(World(WorldConfig(orders=100)), tmp_path / "a")
    assert sorted(p.name for p in paths.values()) == [
        "fct_order_lines.parquet",
        "fct_orders.parquet",
        "fct_parcel_events.parquet",
        "fct_parcels.parquet",
        "fct_refunds.parquet",
    ]
    assert pq.read_table(paths["fct_orders"]).schema == pa.schema(ORDERS)
    assert (
        main(
            [
                "truth",
                "--seed",
                "7",
                "--orders",
                "100",
                "--clock",
                "2026-07-01T00:00:00+08:00",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    assert pq.read_table(tmp_path / "b" / "fct_orders.parquet").equals(pq.read_table(paths["fct_orders"]))


# -- refunds, parcels and 1688 -----------------------------------------------------------------

REFUNDS = [
    ("platform", S),
    ("refund_id", S),
    ("order_id", S),
    ("line_id", S),
    ("status", S),
    ("platform_status", S),
    ("refund_amount", MONEY),
    ("currency", S),
    ("reason", S),
    ("created_at", TS),
    ("updated_at", TS),
]
PARCELS = [
    ("platform", S),
    ("tracking_number", S),
    ("order_id", S),
    ("purchase_line_id", S),
    ("carrier", S),
    ("first_event_at", TS),
    ("last_event_at", TS),
    ("delivered_at", TS),
    ("last_status", S),
    ("event_count", I32),
]
EVENTS = [
    ("platform", S),
    ("tracking_number", S),
    ("event_index", I32),
    ("event_at", TS),
    ("status", S),
    ("description", S),
    ("city", S),
]
UNIFIED_1688 = {
    "waitbuyerpay": "awaiting_payment",
    "waitsellersend": "paid",
    "waitbuyerreceive": "shipped",
    "confirm_goods": "completed",
    "success": "completed",
    "cancel": "cancelled",
    "terminated": "cancelled",
}
REFUND_1688 = {
    None: "none",
    "waitselleragree": "applied",
    "waitbuyermodify": "refused",
    "waitbuyersend": "agreed",
    "waitsellerreceive": "waiting_return",
    "refundsuccess": "succeeded",
    "refundclose": "closed",
}


def ok(response) -> object:
    body = json.loads(response.text, parse_float=Decimal)
    assert body["code"] == 200, body
    return body["data"]


def from_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)


def test_new_table_schemas(sandbox: SandboxServer) -> None:
    tables = truth_tables(sandbox.world)
    assert tables["fct_refunds"].schema == pa.schema(REFUNDS)
    assert tables["fct_parcels"].schema == pa.schema(PARCELS)
    assert tables["fct_parcel_events"].schema == pa.schema(EVENTS)
    for name in ("fct_refunds", "fct_parcels", "fct_parcel_events"):
        assert set(tables[name].column("platform").to_pylist()) == {"taobao", "1688"}, name
    parcels = tables["fct_parcels"]
    assert len(set(parcels.column("tracking_number").to_pylist())) == parcels.num_rows
    assert sum(parcels.column("event_count").to_pylist()) == tables["fct_parcel_events"].num_rows


def test_refund_truth_agrees_with_the_served_json(sandbox: SandboxServer, api: Api) -> None:
    truth = {(r["platform"], r["refund_id"]): r for r in truth_tables(sandbox.world)["fct_refunds"].to_pylist()}
    served = []
    page_no = 1
    while page := ok(api.post("/open/order/refund/queryList", {"pageNo": page_no, "pageSize": 100}))["records"]:
        served += page
        page_no += 1
    for r in served:
        row = truth.pop(("taobao", r["refundId"]))
        assert row["order_id"] == str(r["orderId"]) and row["line_id"] == str(r["subOrderId"])
        assert row["status"] == REFUND[r["refundStatus"]]
        assert row["platform_status"] == str(r["refundStatus"])
        assert row["refund_amount"] == Decimal(str(r["refundFee"])) and row["currency"] == "CNY"
        assert row["reason"] == r["reasonDesc"]
        assert row["created_at"] == from_ms(r["createTime"])
        assert row["updated_at"] == from_ms(r["modifiedTime"])
    orders = ok(api.post("/v2/alibaba/order/page", {"pageNo": 1, "pageSize": 100}))["records"]
    checked = 0
    for o in orders:
        for item in o["productItems"]:
            if not item["refundId"]:
                continue
            r = ok(api.post("/alibaba/refund/info", {"refundId": item["refundId"]}))
            row = truth.pop(("1688", r["refundId"]))
            assert (row["order_id"], row["line_id"]) == (r["orderId"], r["subItemId"])
            assert row["status"] == REFUND_1688[r["status"]] and row["platform_status"] == r["status"]
            assert row["refund_amount"] == Decimal(r["refundPayment"]) / 100
            assert row["reason"] == r["applyReason"]
            assert (row["created_at"], row["updated_at"]) == (
                utc(r["createTime"]),
                utc(r["updateTime"]),
            )
            checked += 1
    assert checked and all(platform == "1688" for platform, _ in truth), "every row is served"


def test_parcel_truth_agrees_with_the_served_json(sandbox: SandboxServer, api: Api) -> None:
    tables = truth_tables(sandbox.world)
    parcels = {r["tracking_number"]: r for r in tables["fct_parcels"].to_pylist()}
    events: dict[str, list[dict]] = {}
    for e in tables["fct_parcel_events"].to_pylist():
        events.setdefault(e["tracking_number"], []).append(e)
    orders = ok(api.post("/open/purchase/page", {"pageNo": 1, "pageSize": 100, "status": 11}))
    checked = delivered = 0
    for o in orders["records"][:40]:
        for s in o["subOrderVOS"]:
            data = ok(
                api.get(
                    "/v2/taobao/order/logistics/detail/get",
                    {"subPurchaseOrderId": s["taobaoSubPurchaseId"]},
                )
            )
            for p in data["pnmLogisticsDetails"]:
                row = parcels.pop(p["mailNo"])
                traces = p["logisticsTraces"]
                signed = [t["time"] for t in traces if t["status"] == "SIGN"]
                assert row["platform"] == "taobao" and row["order_id"] == str(o["id"])
                assert row["purchase_line_id"] == data["purchaseOrderOuterId"]
                assert row["carrier"] == p["logisticsPartner"][0]["company"]
                assert row["first_event_at"] == utc(traces[0]["time"])
                assert row["last_event_at"] == utc(traces[-1]["time"])
                assert row["delivered_at"] == (utc(signed[0]) if signed else None)
                assert row["last_status"] == traces[-1]["status"]
                assert row["event_count"] == len(traces)
                assert [
                    (e["event_index"], e["event_at"], e["status"], e["description"], e["city"])
                    for e in events[p["mailNo"]]
                ] == [(k, utc(t["time"]), t["status"], t["statusDesc"], t["city"]) for k, t in enumerate(traces)]
                checked += 1
                delivered += bool(signed)
    assert checked > 30 and delivered
    ali = ok(api.post("/v2/alibaba/order/page", {"pageNo": 1, "pageSize": 100}))["records"]
    ali = [flat_1688(o) for o in ali]
    checked = delivered = 0
    for o in ali:
        data = ok(api.get("/alibaba/order/logistics/trace", {"orderId": str(o["orderId"])}))
        for p in data["logisticsTrace"]:
            row = parcels.pop(p["logisticsBillNo"])
            steps = p["logisticsSteps"]
            done = o["status"] in ("confirm_goods", "success")
            assert (row["platform"], row["order_id"], row["purchase_line_id"]) == (
                "1688",
                str(o["orderId"]),
                None,
            )
            assert row["carrier"] == p["logisticsCompanyName"] and row["last_status"] is None
            assert row["first_event_at"] == utc(steps[0]["acceptTime"])
            assert row["last_event_at"] == utc(steps[-1]["acceptTime"])
            assert row["delivered_at"] == (utc(steps[-1]["acceptTime"]) if done else None)
            assert row["event_count"] == len(steps)
            assert [
                (e["event_index"], e["event_at"], e["status"], e["description"], e["city"])
                for e in events[p["logisticsBillNo"]]
            ] == [(k, utc(s["acceptTime"]), None, s["remark"], None) for k, s in enumerate(steps)]
            checked += 1
            delivered += done
    assert checked > 30 and delivered


def test_1688_order_truth_agrees_with_the_served_json(sandbox: SandboxServer, api: Api) -> None:
    tables = truth_tables(sandbox.world)
    orders = {r["order_id"]: r for r in tables["fct_orders"].to_pylist() if r["platform"] == "1688"}
    lines = {r["line_id"]: r for r in tables["fct_order_lines"].to_pylist() if r["platform"] == "1688"}
    served = ok(api.post("/v2/alibaba/order/page", {"pageNo": 2, "pageSize": 100}))["records"]
    assert any("baseInfo" in r for r in served) and any("baseInfo" not in r for r in served)
    served = [flat_1688(r) for r in served]
    assert served
    for r in served:
        row = orders[str(r["orderId"])]
        total, shipping = Decimal(str(r["totalAmount"])), Decimal(str(r["shippingFee"]))
        assert row["order_no"] is None and row["seller"] == r["sellerLoginId"]
        assert (row["status"], row["platform_status"]) == (UNIFIED_1688[r["status"]], r["status"])
        assert (row["order_source"], row["seller_order_number"]) == (None, None)
        assert row["goods_amount"] == total - shipping and row["shipping_amount"] == shipping
        assert row["total_amount"] == total and row["line_count"] == len(r["productItems"])
        assert row["created_at"] == utc(r["createTime"])
        assert row["paid_at"] == utc(r["payTime"])
        assert row["updated_at"] == utc(r["modifyTime"])
        for index, item in enumerate(r["productItems"]):
            line = lines[str(item["subItemId"])]
            assert (line["order_id"], line["line_index"]) == (str(r["orderId"]), index)
            assert (line["item_id"], line["sku_id"], line["title"]) == (
                item["productId"],
                item["skuId"],
                item["name"],
            )
            assert line["quantity"] == item["quantity"]
            assert line["amount"] == Decimal(str(item["itemAmount"]))
            assert line["shipping_amount"] is None
            assert (line["purchase_id"], line["purchase_line_id"]) == (None, None)
            assert line["refund_status"] == REFUND_1688[item["refundStatus"]]


def test_new_endpoints_are_counted_in_stats() -> None:
    import httpx

    with SandboxServer(WorldConfig(orders=60)) as server:
        api = Api(server.base_url)
        api.post("/open/order/refund/queryList", {"pageNo": 1, "pageSize": 10})
        api.get("/v2/taobao/order/refund/query", {"refundId": "1"})
        api.get("/v2/taobao/order/logistics/detail/get", {"subPurchaseOrderId": "1"})
        api.post("/v2/alibaba/order/page", {"pageNo": 1, "pageSize": 10})
        api.post("/alibaba/refund/info", {"refundId": "TQ1"})
        api.get("/alibaba/order/logistics/trace", {"orderId": "1"})
        stats = httpx.get(server.base_url + "/_sandbox/stats").json()["endpoints"]
        assert stats["/open/order/refund/queryList"] == {
            "requests": 1,
            "throttled": 0,
            "codes": {"200": 1},
        }
        for path in (
            "/v2/taobao/order/refund/query",
            "/v2/taobao/order/logistics/detail/get",
            "/alibaba/refund/info",
            "/alibaba/order/logistics/trace",
        ):
            assert stats[path]["codes"] == {"404": 1}, path
        assert stats["/v2/alibaba/order/page"]["codes"] == {"200": 1}
        api.http.close()
