"""Ground truth: the warehouse tables (WAREHOUSE.md) the pipeline must produce from the sandbox.

Computed straight from the world's plans at its current clock, never from the served JSON, and
with its own status mappings: it is the independent reference the pipeline's output is compared
with, row for row and cent for cent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from xport_etl.sandbox.world import World, line_refund_status

MONEY = pa.decimal128(18, 2)
TIMESTAMP = pa.timestamp("us")

FCT_ORDERS_SCHEMA = pa.schema(
    [
        ("platform", pa.string()),
        ("order_id", pa.string()),
        ("order_no", pa.string()),
        ("status", pa.string()),
        ("platform_status", pa.string()),
        ("order_source", pa.string()),
        ("seller_order_number", pa.string()),
        ("seller", pa.string()),
        ("currency", pa.string()),
        ("goods_amount", MONEY),
        ("shipping_amount", MONEY),
        ("total_amount", MONEY),
        ("line_count", pa.int32()),
        ("created_at", TIMESTAMP),
        ("paid_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
    ]
)

FCT_ORDER_LINES_SCHEMA = pa.schema(
    [
        ("platform", pa.string()),
        ("order_id", pa.string()),
        ("line_id", pa.string()),
        ("line_index", pa.int32()),
        ("item_id", pa.string()),
        ("sku_id", pa.string()),
        ("title", pa.string()),
        ("quantity", pa.int32()),
        ("amount", MONEY),
        ("shipping_amount", MONEY),
        ("currency", pa.string()),
        ("refund_status", pa.string()),
        ("purchase_id", pa.string()),
        ("purchase_line_id", pa.string()),
    ]
)

_EPOCH = datetime(1970, 1, 1)

SCHEMAS = {"fct_orders": FCT_ORDERS_SCHEMA, "fct_order_lines": FCT_ORDER_LINES_SCHEMA}

# WAREHOUSE.md's unified mappings, written out here on purpose (not imported from the pipeline)
TAOBAO_ORDER_STATUS = {
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
TAOBAO_REFUND_STATUS = {
    0: "none",
    10: "applied",
    20: "agreed",
    30: "waiting_return",
    100: "succeeded",
    -10: "refused",
    -20: "closed",
}


def _cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _utc(epoch_s: int | None) -> datetime | None:
    # naive utc, as the warehouse stores timestamps
    return None if epoch_s is None else _EPOCH + timedelta(seconds=epoch_s)


def truth_tables(world: World) -> dict[str, pa.Table]:
    """``fct_orders`` and ``fct_order_lines`` as WAREHOUSE.md defines them, at the world's clock."""
    orders: dict[str, list] = {name: [] for name in FCT_ORDERS_SCHEMA.names}
    lines: dict[str, list] = {name: [] for name in FCT_ORDER_LINES_SCHEMA.names}
    clock_ms = world.clock_ms
    for detail, state in world.iter_taobao_plans():
        order_id = str(detail.order_id)
        goods = sum(line.amount_cents for line in detail.lines)
        shipping = sum(line.post_fee_cents for line in detail.lines)
        for name, value in (
            ("platform", "taobao"),
            ("order_id", order_id),
            ("order_no", detail.order_no),
            ("status", TAOBAO_ORDER_STATUS.get(state.status, "other")),
            ("platform_status", str(state.status)),
            ("order_source", detail.order_source),
            ("seller_order_number", detail.seller_order_number),
            ("seller", None),
            ("currency", "CNY"),
            ("goods_amount", _cents(goods)),
            ("shipping_amount", _cents(shipping)),
            ("total_amount", _cents(goods + shipping)),
            ("line_count", len(detail.lines)),
            ("created_at", _utc(detail.create_ms // 1000)),
            ("paid_at", _utc(state.pay_s)),
            ("updated_at", _utc(state.update_s)),
        ):
            orders[name].append(value)
        for index, line in enumerate(detail.lines):
            for name, value in (
                ("platform", "taobao"),
                ("order_id", order_id),
                ("line_id", str(line.sub_order_id)),
                ("line_index", index),
                ("item_id", line.item_id),
                ("sku_id", line.sku_id),
                ("title", line.title),
                ("quantity", line.quantity),
                ("amount", _cents(line.amount_cents)),
                ("shipping_amount", _cents(line.post_fee_cents)),
                ("currency", "CNY"),
                ("refund_status", TAOBAO_REFUND_STATUS[line_refund_status(line, state, clock_ms)]),
                ("purchase_id", line.purchase_id),
                ("purchase_line_id", line.sub_purchase_id),
            ):
                lines[name].append(value)
    return {
        "fct_orders": pa.Table.from_pydict(orders, schema=FCT_ORDERS_SCHEMA),
        "fct_order_lines": pa.Table.from_pydict(lines, schema=FCT_ORDER_LINES_SCHEMA),
    }


def write_truth(world: World, out_dir: str | Path) -> dict[str, Path]:
    """Write each truth table to ``<out_dir>/<table>.parquet``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in truth_tables(world).items():
        path = out / f"{name}.parquet"
        pq.write_table(table, path)
        paths[name] = path
    return paths
