"""Ground truth: the warehouse tables (docs/warehouse.md) the pipeline must produce from the
sandbox.

``fct_orders``/``fct_order_lines`` (Taobao and 1688), ``fct_refunds``, ``fct_parcels`` and
``fct_parcel_events``, with exactly the docs/warehouse.md columns in that order.

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

from xport_sandbox.alibaba import REFUND_STATUSES as ALIBABA_REFUND_NAMES
from xport_sandbox.alibaba import STATUSES as ALIBABA_STATUS_NAMES
from xport_sandbox.world import World, line_refund_status

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

FCT_REFUNDS_SCHEMA = pa.schema(
    [
        ("platform", pa.string()),
        ("refund_id", pa.string()),
        ("order_id", pa.string()),
        ("line_id", pa.string()),
        ("status", pa.string()),
        ("platform_status", pa.string()),
        ("refund_amount", MONEY),
        ("currency", pa.string()),
        ("reason", pa.string()),
        ("created_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
    ]
)

FCT_PARCELS_SCHEMA = pa.schema(
    [
        ("platform", pa.string()),
        ("tracking_number", pa.string()),
        ("order_id", pa.string()),
        ("purchase_line_id", pa.string()),
        ("carrier", pa.string()),
        ("first_event_at", TIMESTAMP),
        ("last_event_at", TIMESTAMP),
        ("delivered_at", TIMESTAMP),
        ("last_status", pa.string()),
        ("event_count", pa.int32()),
    ]
)

FCT_PARCEL_EVENTS_SCHEMA = pa.schema(
    [
        ("platform", pa.string()),
        ("tracking_number", pa.string()),
        ("event_index", pa.int32()),
        ("event_at", TIMESTAMP),
        ("status", pa.string()),
        ("description", pa.string()),
        ("city", pa.string()),
    ]
)

_EPOCH = datetime(1970, 1, 1)

SCHEMAS = {
    "fct_orders": FCT_ORDERS_SCHEMA,
    "fct_order_lines": FCT_ORDER_LINES_SCHEMA,
    "fct_refunds": FCT_REFUNDS_SCHEMA,
    "fct_parcels": FCT_PARCELS_SCHEMA,
    "fct_parcel_events": FCT_PARCEL_EVENTS_SCHEMA,
}
PLATFORMS = ("taobao", "1688")

# the unified mappings of docs/warehouse.md#status-mappings, written out here on purpose (not imported from the pipeline)
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
ALIBABA_ORDER_STATUS = {
    "waitbuyerpay": "awaiting_payment",
    "waitsellersend": "paid",
    "waitbuyerreceive": "shipped",
    "confirm_goods": "completed",
    "success": "completed",
    "cancel": "cancelled",
    "terminated": "cancelled",
}
ALIBABA_REFUND_STATUS = {
    None: "none",
    "waitselleragree": "applied",
    "waitbuyermodify": "refused",
    "waitbuyersend": "agreed",
    "waitsellerreceive": "waiting_return",
    "refundsuccess": "succeeded",
    "refundclose": "closed",
}


def _cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _utc(epoch_s: int | None) -> datetime | None:
    # naive utc, as the warehouse stores timestamps
    return None if epoch_s is None else _EPOCH + timedelta(seconds=epoch_s)


def _utc_ms(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def _add(table: dict[str, list], **row: object) -> None:
    assert row.keys() == table.keys(), sorted(set(row) ^ set(table))
    for name, value in row.items():
        table[name].append(value)


def truth_tables(world: World, platforms: tuple[str, ...] = PLATFORMS) -> dict[str, pa.Table]:
    """The fact tables of docs/warehouse.md#facts (``fct_orders``, ``fct_order_lines``, ``fct_refunds``,
    ``fct_parcels``, ``fct_parcel_events``) at the world's clock.

    ``platforms`` limits the rows to some platforms (``("taobao",)`` for a Taobao-only pipeline).
    """
    rows: dict[str, dict[str, list]] = {
        name: {column: [] for column in schema.names} for name, schema in SCHEMAS.items()
    }
    if "taobao" in platforms:
        _taobao_orders(world, rows["fct_orders"], rows["fct_order_lines"])
        _taobao_refunds(world, rows["fct_refunds"])
        _taobao_parcels(world, rows["fct_parcels"], rows["fct_parcel_events"])
    if "1688" in platforms:
        _alibaba_orders(world, rows["fct_orders"], rows["fct_order_lines"])
        _alibaba_refunds(world, rows["fct_refunds"])
        _alibaba_parcels(world, rows["fct_parcels"], rows["fct_parcel_events"])
    return {name: pa.Table.from_pydict(rows[name], schema=schema) for name, schema in SCHEMAS.items()}


def _taobao_orders(world: World, orders: dict[str, list], lines: dict[str, list]) -> None:
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


def _taobao_refunds(world: World, refunds: dict[str, list]) -> None:
    for refund, order, history in world.iter_taobao_refunds():
        line = order.lines[refund.line_index]
        status = history[-1][1]
        _add(
            refunds,
            platform="taobao",
            refund_id=refund.refund_id,
            order_id=str(order.order_id),
            line_id=str(line.sub_order_id),
            status=TAOBAO_REFUND_STATUS[status],
            platform_status=str(status),
            refund_amount=_cents(refund.fee_cents),
            currency="CNY",
            reason=refund.reason_desc,
            created_at=_utc_ms(history[0][0]),
            updated_at=_utc_ms(history[-1][0]),
        )


def _taobao_parcels(world: World, parcels: dict[str, list], events: dict[str, list]) -> None:
    clock_s = world.clock_ms // 1000
    for order, line, parcel in world.iter_taobao_parcels():
        traces = parcel.visible(clock_s)
        signed = [tr.time_s for tr in traces if tr.status == "SIGN"]
        _add(
            parcels,
            platform="taobao",
            tracking_number=parcel.tracking_number,
            order_id=str(order.order_id),
            purchase_line_id=line.sub_purchase_id,
            carrier=parcel.carrier,
            first_event_at=_utc(traces[0].time_s),
            last_event_at=_utc(traces[-1].time_s),
            delivered_at=_utc(signed[0]) if signed else None,
            last_status=traces[-1].status,
            event_count=len(traces),
        )
        for index, trace in enumerate(traces):
            _add(
                events,
                platform="taobao",
                tracking_number=parcel.tracking_number,
                event_index=index,
                event_at=_utc(trace.time_s),
                status=trace.status,
                description=trace.status_desc,
                city=trace.city,
            )


def _alibaba_orders(world: World, orders: dict[str, list], lines: dict[str, list]) -> None:
    for detail, state in world.iter_1688_plans():
        order_id = str(detail.order_id)
        status = ALIBABA_STATUS_NAMES[state.status]
        goods = sum(item.price_cents * item.quantity for item in detail.items)
        _add(
            orders,
            platform="1688",
            order_id=order_id,
            order_no=None,
            status=ALIBABA_ORDER_STATUS.get(status, "other"),
            platform_status=status,
            order_source=None,
            seller_order_number=None,
            seller=detail.seller.login_id,
            currency="CNY",
            goods_amount=_cents(goods),
            shipping_amount=_cents(detail.shipping_cents),
            total_amount=_cents(goods + detail.shipping_cents),
            line_count=len(detail.items),
            created_at=_utc(detail.create_ms // 1000),
            paid_at=_utc(state.pay_s),
            updated_at=_utc(state.modify_s),
        )
        for index, item in enumerate(detail.items):
            refund = None
            if state.refund_item == index and state.refund_status is not None:
                refund = ALIBABA_REFUND_NAMES[state.refund_status]
            _add(
                lines,
                platform="1688",
                order_id=order_id,
                line_id=str(item.sub_item_id),
                line_index=index,
                item_id=item.product_id,
                sku_id=item.sku_id,
                title=item.name,
                quantity=item.quantity,
                amount=_cents(item.price_cents * item.quantity),
                shipping_amount=None,
                currency="CNY",
                refund_status=ALIBABA_REFUND_STATUS[refund],
                purchase_id=None,
                purchase_line_id=None,
            )


def _alibaba_refunds(world: World, refunds: dict[str, list]) -> None:
    for refund, order, history in world.iter_1688_refunds():
        status = ALIBABA_REFUND_NAMES[history[-1][1]]
        fen = refund.apply_payment_fen + refund.apply_carriage_fen
        _add(
            refunds,
            platform="1688",
            refund_id=refund.refund_id,
            order_id=str(order.order_id),
            line_id=str(order.items[refund.item_index].sub_item_id),
            status=ALIBABA_REFUND_STATUS[status],
            platform_status=status,
            refund_amount=Decimal(fen).scaleb(-2),
            currency="CNY",
            reason=refund.reason,
            created_at=_utc(history[0][0]),
            updated_at=_utc(history[-1][0]),
        )


def _alibaba_parcels(world: World, parcels: dict[str, list], events: dict[str, list]) -> None:
    clock_s = world.clock_ms // 1000
    for order, state, _, parcel in world.iter_1688_parcels():
        steps = parcel.visible(clock_s)
        received = ALIBABA_STATUS_NAMES[state.status] in ("confirm_goods", "success")
        _add(
            parcels,
            platform="1688",
            tracking_number=parcel.tracking_number,
            order_id=str(order.order_id),
            purchase_line_id=None,
            carrier=parcel.carrier,
            first_event_at=_utc(steps[0].time_s),
            last_event_at=_utc(steps[-1].time_s),
            delivered_at=_utc(steps[-1].time_s) if received else None,
            last_status=None,
            event_count=len(steps),
        )
        for index, step in enumerate(steps):
            _add(
                events,
                platform="1688",
                tracking_number=parcel.tracking_number,
                event_index=index,
                event_at=_utc(step.time_s),
                status=None,
                description=step.standard_desc,
                city=None,
            )


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
