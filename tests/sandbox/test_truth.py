"""Ground truth: WAREHOUSE.md schemas, and agreement with what the API serves."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.sandbox.conftest import Api
from xport_etl.sandbox.cli import main
from xport_etl.sandbox.testing import SandboxServer
from xport_etl.sandbox.truth import truth_tables, write_truth
from xport_etl.sandbox.world import World, WorldConfig

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


def utc(cst_text: str | None) -> datetime | None:
    if cst_text is None:
        return None
    return datetime.strptime(cst_text, "%Y-%m-%d %H:%M:%S") - timedelta(hours=8)


def test_schemas_are_exactly_the_warehouse_contract(sandbox: SandboxServer) -> None:
    tables = truth_tables(sandbox.world)
    assert set(tables) == {"fct_orders", "fct_order_lines"}
    assert tables["fct_orders"].schema == pa.schema(ORDERS)
    assert tables["fct_order_lines"].schema == pa.schema(LINES)
    assert tables["fct_orders"].num_rows == 600


def test_truth_agrees_with_the_served_json(sandbox: SandboxServer, api: Api) -> None:
    tables = truth_tables(sandbox.world)
    orders = {row["order_id"]: row for row in tables["fct_orders"].to_pylist()}
    lines = {row["line_id"]: row for row in tables["fct_order_lines"].to_pylist()}
    served = json.loads(
        api.post("/open/purchase/page", {"pageNo": 2, "pageSize": 100}).text, parse_float=Decimal
    )["data"]["records"]
    assert served
    for r in served:
        row = orders[str(r["id"])]
        assert row["platform"] == "taobao" and row["seller"] is None
        assert row["order_no"] == r["orderNo"]
        assert row["status"] == UNIFIED[r["status"]]
        assert row["platform_status"] == str(r["status"])
        assert row["goods_amount"] == Decimal(str(r["purchaseAmount"]))
        assert row["shipping_amount"] == Decimal(str(r["domesticPostFee"]))
        assert row["total_amount"] == row["goods_amount"] + row["shipping_amount"]
        assert row["line_count"] == len(r["subOrderVOS"])
        assert row["created_at"] == utc(r["createTime"])
        assert row["paid_at"] == utc(r["payTime"])
        assert row["updated_at"] == utc(r["updateTime"])
        assert (row["order_source"], row["seller_order_number"]) == (
            r["orderSource"],
            r["sellerOrderNumber"],
        )
        for index, s in enumerate(r["subOrderVOS"]):
            line = lines[str(s["subOrderId"])]
            assert line["order_id"] == str(r["id"]) and line["line_index"] == index
            assert line["quantity"] == int(s["quantity"])
            assert line["amount"] == Decimal(str(s["purchaseAmount"]))
            assert line["shipping_amount"] == Decimal(str(s["domesticPostFee"]))
            assert (line["item_id"], line["sku_id"], line["title"]) == (
                s["itemId"],
                s["skuId"],
                s["title"],
            )
            assert (line["purchase_id"], line["purchase_line_id"]) == (
                s["taobaoPurchaseId"],
                s["taobaoSubPurchaseId"],
            )
            assert line["refund_status"] == "none"


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
    ]
    assert pq.read_table(paths["fct_orders"]).schema == pa.schema(ORDERS)
    assert (
        main(
            [
                "sandbox",
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
    assert pq.read_table(tmp_path / "b" / "fct_orders.parquet").equals(
        pq.read_table(paths["fct_orders"])
    )
