"""Declared schemas: one definition per table, used for Parquet, DuckDB DDL and documentation.

Every analyst-facing table follows ``docs/warehouse.md`` exactly (names, order, types); columns
after the public ones are additions (allowed by the warehouse contract) and are marked
``public=False`` when they are plumbing rather than facts.

Parquet files carry the normalised rows plus a lineage column (``_batch_id``); together with
``updated_at`` and ``extracted_at`` the loader uses it to decide which version of a record wins.
The warehouse's fact tables and ``etl_rejects`` carry one more lineage column, ``run_id`` (the run
that last wrote the row), which the merge writes and the normalisers never see
(:attr:`Column.lineage`). Timestamps are UTC everywhere:
``timestamp[us, tz=UTC]`` in Parquet, ``TIMESTAMP`` (naive, UTC by convention) in DuckDB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from xport_etl.tables import FACT_TABLES

MONEY = pa.decimal128(18, 2)
UTC_TS = pa.timestamp("us", tz="UTC")

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    MONEY: "DECIMAL(18,2)",
    UTC_TS: "TIMESTAMP",
    pa.date32(): "DATE",
}


@dataclass(frozen=True)
class Column:
    """A column: its name, Arrow type and meaning; ``public``: named by the warehouse contract
    (else an addition); ``lineage``: written by the merge into the warehouse (the run that wrote
    the row), not by a normaliser, so it is in no staged Parquet file."""

    name: str
    type: pa.DataType
    doc: str
    public: bool = True
    lineage: bool = False

    @property
    def duckdb_type(self) -> str:
        return _DUCKDB_TYPES[self.type]


@dataclass(frozen=True)
class TableSpec:
    """A table: its columns, key and meaning (the data dictionary is generated from these)."""

    name: str
    doc: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def public_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.public]

    @property
    def staged_columns(self) -> list[str]:
        """The columns a normaliser writes (staged Parquet's, in order): all but the lineage ones."""
        return [c.name for c in self.columns if not c.lineage]

    def arrow_schema(self, lineage: bool = False) -> pa.Schema:
        """The staged Parquet schema (:attr:`staged_columns`), plus ``_batch_id`` with ``lineage``."""
        fields = [pa.field(c.name, c.type) for c in self.columns if not c.lineage]
        if lineage:
            fields += [pa.field(c.name, c.type) for c in LINEAGE]
        return pa.schema(fields)

    def ddl(self) -> str:
        cols = ",\n    ".join(f"{c.name} {c.duckdb_type}" for c in self.columns)
        return f"create table if not exists {self.name} (\n    {cols}\n)"

    def arrow_rows(self, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        """``rows`` (by column name; a missing one is null) as an Arrow table of this table's
        columns, times as naive UTC timestamps, as the warehouse stores them.

        Raises:
            pyarrow.ArrowInvalid, pyarrow.ArrowTypeError: a value Arrow will not cast.
        """
        types = {c.name: pa.timestamp("us") if pa.types.is_timestamp(c.type) else c.type for c in self.columns}
        return pa.table({c: pa.array([r.get(c) for r in rows], type=types[c]) for c in self.column_names})


def _c(name: str, type_: pa.DataType, doc: str, public: bool = True) -> Column:
    return Column(name, type_, doc, public)


S, I32, TS = pa.string(), pa.int32(), UTC_TS

# in Parquet only: which landed window (batch) a row was normalised from, so the loader can take
# an order's lines from the same batch as the order version that wins
LINEAGE = (_c("_batch_id", S, "the landed window this row was normalised from", public=False),)

# in the warehouse only: the run that last wrote the row (etl_runs.run_id), stamped by the merge
RUN_ID = Column(
    "run_id",
    S,
    "the run that last wrote this row (`etl_runs.run_id`; `xport-etl status --run ID` shows it): the "
    "latest run whose version of the record won the merge, a re-read of an unchanged record included; "
    "null for rows written before runs had ids",
    public=False,
    lineage=True,
)

FCT_ORDERS = TableSpec(
    name="fct_orders",
    doc="One row per purchase order, latest known state.",
    key=("platform", "order_id"),
    columns=(
        _c("platform", S, "'taobao' or '1688'"),
        _c("order_id", S, "Taobao: the xportcn order `id`; 1688: `orderId`"),
        _c("order_no", S, "Taobao `orderNo`; null for 1688"),
        _c("status", S, "unified: created, awaiting_payment, paid, shipped, completed, cancelled, other"),
        _c("platform_status", S, "the platform's own status code as text ('10', 'waitsellersend')"),
        _c("order_source", S, "Taobao `orderSource`: the merchant's sales channel"),
        _c("seller_order_number", S, "Taobao `sellerOrderNumber`: the merchant's own order number"),
        _c("seller", S, "1688 `sellerLoginId`; null for Taobao"),
        _c("currency", S, "currency of every amount on the row"),
        _c("goods_amount", MONEY, "Taobao `purchaseAmount`; 1688 `totalAmount - shippingFee`"),
        _c("shipping_amount", MONEY, "Taobao `domesticPostFee`; 1688 `shippingFee`"),
        _c("total_amount", MONEY, "goods_amount + shipping_amount"),
        _c("line_count", I32, "entries in the order's line list as served (a rejected line still counts)"),
        _c("created_at", TS, "order creation, UTC"),
        _c("paid_at", TS, "payment (Taobao `payTime`), UTC"),
        _c("updated_at", TS, "last change of the order at the source, UTC"),
        _c("close_reason", S, "why the order was closed, as the platform says", public=False),
        _c("extracted_at", TS, "when the pipeline read this state from the API, UTC", public=False),
        RUN_ID,
    ),
)

FCT_ORDER_LINES = TableSpec(
    name="fct_order_lines",
    doc="One row per Taobao sub-order (`subOrderVOS[]`) or 1688 product item (`productItems[]`).",
    key=("platform", "order_id", "line_id"),
    columns=(
        _c("platform", S, "'taobao' or '1688'"),
        _c("order_id", S, "the order the line belongs to (fct_orders.order_id)"),
        _c("line_id", S, "Taobao `subOrderId`; 1688 `subItemId`"),
        _c("line_index", I32, "0-based position in the order's list"),
        _c("item_id", S, "product id"),
        _c("sku_id", S, "SKU id"),
        _c("title", S, "product title (usually Chinese)"),
        _c("quantity", I32, "units"),
        _c("amount", MONEY, "Taobao sub-order `purchaseAmount`; 1688 `itemAmount`"),
        _c("shipping_amount", MONEY, "Taobao sub-order `domesticPostFee`; null for 1688"),
        _c("currency", S, "currency of the amounts"),
        _c("refund_status", S, "unified: none, applied, agreed, waiting_return, succeeded, refused, closed"),
        _c("purchase_id", S, "Taobao `taobaoPurchaseId`; null for 1688"),
        _c("purchase_line_id", S, "Taobao `taobaoSubPurchaseId` (the logistics key); null for 1688"),
        _c("line_status", S, "the line's own platform status code as text", public=False),
        _c("platform_refund_status", S, "the platform's refund status code as text", public=False),
        _c("carrier", S, "carrier of the line's first parcel, once shipped", public=False),
        _c("tracking_number", S, "tracking number of the line's first parcel", public=False),
        _c("refund_id", S, "1688 `refundId` of the item's after-sale order, if any", public=False),
        RUN_ID,
    ),
)

FCT_REFUNDS = TableSpec(
    name="fct_refunds",
    doc="One row per after-sale (refund) order.",
    key=("platform", "refund_id"),
    columns=(
        _c("platform", S, "'taobao' or '1688'"),
        _c("refund_id", S, "the refund's id (1688 ids start with TQ)"),
        _c("order_id", S, "the order refunded"),
        _c("line_id", S, "the line refunded"),
        _c("status", S, "unified: none, applied, agreed, waiting_return, succeeded, refused, closed"),
        _c("platform_status", S, "the platform's refund status code as text"),
        _c("refund_amount", MONEY, "Taobao `refundFee`; 1688 `refundPayment` converted from fen"),
        _c("currency", S, "currency of refund_amount"),
        _c("reason", S, "Taobao `reasonDesc`; 1688 `applyReason`"),
        _c("created_at", TS, "refund created, UTC"),
        _c("updated_at", TS, "refund last changed, UTC"),
        _c("extracted_at", TS, "when the pipeline read this state from the API, UTC", public=False),
        _c("data_clock", TS, "fan-out fetches: the API's clock then (latest order update seen)", public=False),
        RUN_ID,
    ),
)

FCT_PARCELS = TableSpec(
    name="fct_parcels",
    doc="One row per parcel (Taobao `pnmLogisticsDetails[]`, 1688 `logisticsTrace[]`).",
    key=("platform", "tracking_number"),
    columns=(
        _c("platform", S, "'taobao' or '1688'"),
        _c("tracking_number", S, "`mailNo` / `logisticsBillNo`"),
        _c("order_id", S, "the order the parcel belongs to"),
        _c("purchase_line_id", S, "Taobao purchase line (`purchaseOrderOuterId`); null for 1688"),
        _c("carrier", S, "Taobao `logisticsPartner[0].company`; 1688 `logisticsCompanyName`"),
        _c("first_event_at", TS, "time of the first event in the API's order, UTC"),
        _c("last_event_at", TS, "time of the last event in the API's order, UTC"),
        _c("delivered_at", TS, "Taobao: first SIGN event; 1688: last step once the order is confirm_goods/success"),
        _c("last_status", S, "status of the latest event; null for 1688"),
        _c("event_count", I32, "number of tracking events"),
        _c("order_status_at_fetch", S, "1688: the order's status when the trace was fetched", public=False),
        _c("goods_quantity", I32, "Taobao: units the parcel carries (sum of logisticsGoods quantities)", public=False),
        _c("extracted_at", TS, "when the pipeline read this state from the API, UTC", public=False),
        _c("data_clock", TS, "the API's clock when fetched (latest order update seen)", public=False),
        RUN_ID,
    ),
)

FCT_PARCEL_EVENTS = TableSpec(
    name="fct_parcel_events",
    doc="One row per tracking event.",
    key=("platform", "tracking_number", "event_index"),
    columns=(
        _c("platform", S, "'taobao' or '1688'"),
        _c("tracking_number", S, "the parcel (fct_parcels.tracking_number)"),
        _c("event_index", I32, "0-based position in the API's order"),
        _c("event_at", TS, "UTC"),
        _c("status", S, "Taobao trace `status`; null for 1688"),
        _c("description", S, "Taobao `statusDesc`; 1688 `remark`"),
        _c("city", S, "Taobao `city`; null for 1688"),
        RUN_ID,
    ),
)

ETL_REJECTS = TableSpec(
    name="etl_rejects",
    doc=(
        "Each record that could not be normalised (severity 'rejected': it is not in the warehouse), "
        "and each field of a loaded record that could not be read (severity 'warning': the record "
        "loaded, the non-public column read from that field is null)."
    ),
    key=(),
    columns=(
        _c("endpoint", S, "the endpoint the record came from"),
        _c("record_id", S, "the record's id where it could be read ('order/line' for a line)"),
        _c("reason", S, "why it was rejected, or why the field could not be read"),
        _c("raw_json", S, "rejected: the record exactly as served (re-serialised JSON); warning: the field's value"),
        _c("window_id", S, "the landed window it came from", public=False),
        _c("page", I32, "page number within the window", public=False),
        _c("rejected_at", TS, "when the normaliser rejected it (or warned), UTC", public=False),
        _c(
            "severity",
            S,
            "'rejected' (the record did not load) or 'warning' (it loaded without one field)",
            public=False,
        ),
        _c(
            "field",
            S,
            "warning: the field that could not be read, as a path (subOrderVOS[2].logisticNumber)",
            public=False,
        ),
        Column(
            "run_id",
            S,
            "the run that last loaded the window this row came from (`etl_runs.run_id`); null for rows "
            "written before runs had ids",
            public=False,
            lineage=True,
        ),
    ),
)

ETL_RUNS = TableSpec(
    name="etl_runs",
    doc="One row per window a run loaded (or failed to): a run is one CLI command or one Airflow DAG run, "
    "all its windows under one run_id.",
    key=("run_id", "endpoint", "window_id"),
    columns=(
        _c(
            "run_id",
            S,
            "the run: one id for a whole CLI command (`20260714T101500Z-3f9a2c7d`) or Airflow DAG run "
            "(`xport_ingest/scheduled__2026-07-14T00:00:00+00:00`), shared by its windows, its check results, "
            "its rejects and the fact rows it wrote; rows from before runs had ids carry the id of their "
            "extraction (extraction_id null)",
        ),
        _c("endpoint", S, "endpoint name"),
        _c("window_id", S, "the landed window", public=False),
        _c("mode", S, "window mode: create or update time", public=False),
        _c("window_start", TS, "window start (inclusive), UTC"),
        _c("window_end", TS, "window end (exclusive), UTC"),
        _c("pages", I32, "pages fetched"),
        _c("requests", I32, "HTTP requests made (retries included)", public=False),
        _c("retries", I32, "requests retried", public=False),
        _c("http_429", I32, "requests answered 429", public=False),
        _c("records", I32, "records received"),
        _c("rows_written", S, "rows written per table, as JSON"),
        _c("rejected", I32, "records rejected (etl_rejects rows of severity 'rejected')"),
        _c(
            "warnings",
            I32,
            "records loaded with a warning (distinct record ids of etl_rejects rows of severity 'warning')",
            public=False,
        ),
        _c("drift_repages", I32, "times the window was paged again because the data moved", public=False),
        _c("started_at", TS, "when the window's extraction started, UTC"),
        _c("finished_at", TS, "when the row was recorded (its load merged, or its failure), UTC"),
        _c("duration_s", pa.float64(), "seconds from started_at to finished_at", public=False),
        _c("outcome", S, "success or failed"),
        _c("error", S, "the error message of a failed run", public=False),
        _c(
            "extraction_id",
            S,
            "the window's extraction (the `run_id` of its landed manifest): several runs may load one "
            "extraction; null before runs had ids",
            public=False,
        ),
        _c(
            "landed_at",
            TS,
            "when the window's extraction ended (its pages landed), UTC; null before runs had ids",
            public=False,
        ),
        _c(
            "publish_id",
            S,
            "the publish (attempt) that carried the window: a `run` publishes once per bounded run "
            "(etl_check_results.publish_id); null for a window whose extraction failed, and before runs had ids",
            public=False,
        ),
    ),
)

ETL_CHECK_RESULTS = TableSpec(
    name="etl_check_results",
    doc="One row per publish and data check (`sql/checks/`): what it found and what that meant. "
    "A blocked publish's rows appear from the next successful publish on.",
    key=("publish_id", "check_name"),
    # an addition to the warehouse contract, which does not list it (yet)
    columns=(
        _c(
            "run_id",
            S,
            "the run that published (`etl_runs.run_id`); rows from before runs had ids hold the publish's "
            "id here (publish_id null)",
            public=False,
        ),
        _c("check_name", S, "the check: `sql/checks/<check_name>.sql`", public=False),
        _c("severity", S, "error (blocks the publish above its threshold) or warn (recorded only)", public=False),
        _c("threshold", I32, "violations allowed before the check counts as failed", public=False),
        _c("violations", pa.int64(), "rows the check returned; null when skipped", public=False),
        _c(
            "sample_keys",
            S,
            "up to 20 violating rows as JSON arrays, the check's columns in order "
            "(its key columns first); null when skipped",
            public=False,
        ),
        _c(
            "outcome",
            S,
            "pass, warn, error (the publish was blocked) or skipped (the tables it reads did "
            "not change since it last passed)",
            public=False,
        ),
        _c("checked_at", TS, "when the check ran, UTC", public=False),
        _c(
            "publish_id",
            S,
            "the publish (one attempt to publish the warehouse; a run may publish several times, "
            "`run` once per bounded run); null before runs had ids",
            public=False,
        ),
    ),
)

ETL_SETTINGS = TableSpec(
    name="etl_settings",
    doc="What the publish recorded for the views and the checks to read: the reporting time zone, the "
    "stuck list's recency window, and per data check the digest of the check text this state passed.",
    key=("key",),
    columns=(
        _c(
            "key",
            S,
            "`report_tz` (the zone report months are in), `stuck_recent_days` (rpt_stuck_orders' "
            "recency window), `check_passed:<check>`, `check_results_offset`",
            public=False,
        ),
        _c("value", S, "the value, as text", public=False),
    ),
)

WAREHOUSE_TABLES: tuple[TableSpec, ...] = (
    FCT_ORDERS,
    FCT_ORDER_LINES,
    FCT_REFUNDS,
    FCT_PARCELS,
    FCT_PARCEL_EVENTS,
    ETL_REJECTS,
    ETL_RUNS,
    ETL_CHECK_RESULTS,
    ETL_SETTINGS,
)

# The report views' columns: view → column → (meaning, named in docs/warehouse.md). What a view is
# is the comment header of its sql/reports file; each claim here is what that SQL computes, so keep
# them in step when a view changes. With the TableSpecs above, the one source of the data dictionary
# (xport-etl docs) and of the warehouse's own comments (COMMENT ON, applied at every publish).
VIEW_COLUMNS: dict[str, dict[str, tuple[str, bool]]] = {
    "rpt_spend_monthly": {
        "month": (
            "first day of the calendar month (reporting time zone) the orders, or the refunds, were created in",
            True,
        ),
        "platform": ("'taobao' or '1688'", True),
        "currency": ("currency of every amount on the row", True),
        "orders": ("orders created that month, cancelled ones excluded", True),
        "goods_amount": ("sum of `fct_orders.goods_amount` of those orders", True),
        "shipping_amount": ("sum of `fct_orders.shipping_amount` of those orders", True),
        "refund_amount": ("sum of `fct_refunds.refund_amount` of the succeeded refunds created that month", True),
        "net_spend": ("goods_amount + shipping_amount − refund_amount", True),
    },
    "rpt_spend_by_channel_monthly": {
        "month": (
            "first day of the calendar month (reporting time zone) the orders, or the refunds, were created in",
            False,
        ),
        "platform": ("'taobao' or '1688'", False),
        "order_source": (
            "the sales channel: `fct_orders.order_source` (Taobao `orderSource`: lazada, shopee, tiktok, …), "
            "`(none)` for an order without one (every 1688 order); a refund counts under its order's",
            False,
        ),
        "currency": ("currency of every amount on the row", False),
        "orders": ("orders created that month through that channel, cancelled ones excluded", False),
        "goods_amount": ("sum of `fct_orders.goods_amount` of those orders", False),
        "shipping_amount": ("sum of `fct_orders.shipping_amount` of those orders", False),
        "refund_amount": (
            "sum of `fct_refunds.refund_amount` of the succeeded refunds created that month, of that channel's orders",
            False,
        ),
        "net_spend": ("goods_amount + shipping_amount − refund_amount", False),
    },
    "rpt_fulfilment_monthly": {
        "month": ("first day of the calendar month (reporting time zone) the orders were created in", True),
        "platform": ("'taobao' or '1688'", True),
        "orders": ("orders created that month, whatever their status", True),
        "cancelled_orders": ("of those, orders with status `cancelled`", False),
        "paid_orders": ("orders with a `paid_at`", True),
        "shipped_orders": ("orders with status `shipped` or `completed`, or with at least one parcel", True),
        "delivered_orders": ("orders that have parcels, every one of them delivered", True),
        "created_to_paid_p50_h": ("median hours from `created_at` to `paid_at`", True),
        "created_to_paid_p90_h": ("90th percentile hours from `created_at` to `paid_at`", True),
        "paid_to_first_event_p50_h": (
            "median hours from `paid_at` to the first event of the order's earliest parcel",
            True,
        ),
        "paid_to_first_event_p90_h": ("90th percentile hours from `paid_at` to the first parcel event", True),
        "first_event_to_delivered_p50_h": (
            "median hours from the first parcel event to the last delivery (delivered orders)",
            True,
        ),
        "first_event_to_delivered_p90_h": (
            "90th percentile hours from the first parcel event to the last delivery",
            True,
        ),
    },
    "rpt_after_sale_monthly": {
        "month": ("first day of the calendar month (reporting time zone) the lines' orders were created in", True),
        "platform": ("'taobao' or '1688'", True),
        "lines": ("order lines of the orders created that month, cancelled orders excluded", True),
        "after_sale_lines": ("of those, lines with any after-sale request (`refund_status` set and not `none`)", False),
        "refunded_lines": ("lines with at least one succeeded refund in `fct_refunds`", True),
        "refund_rate": ("refunded_lines / lines, 4 decimals", True),
        "refund_amount": ("sum of the succeeded refunds of those lines", True),
    },
    "rpt_stuck_orders": {
        "priority": (
            "amount_at_risk × days overdue (overdue_h / 24), 1 decimal: the list's order, largest first; "
            "null when the order is not in the warehouse",
            False,
        ),
        "kind": (
            "the stage it is stuck in: `awaiting_payment` (status created or awaiting_payment, created over "
            "48 hours before `as_of`), `paid_no_parcel_event` (status paid or shipped, paid over 72 hours "
            "before `as_of`, no parcel with an event), `parcel_no_progress` (a parcel not delivered whose "
            "last event is over 7 days before `as_of`), `delivery_failed` (last event `FAILED`, over 24 "
            "hours ago), `refused` (last event `REJECT`)",
            False,
        ),
        "platform": ("'taobao' or '1688'", False),
        "order_id": ("the order", False),
        "tracking_number": ("the parcel; null for the order kinds (awaiting_payment, paid_no_parcel_event)", False),
        "carrier": ("the parcel's carrier; null for the order kinds", False),
        "status": ("the order's unified status", False),
        "currency": ("currency of amount_at_risk (the order's)", False),
        "amount_at_risk": (
            "the order kinds: the order's total_amount; a parcel: the amount and shipping of the order lines "
            "of its purchase line (Taobao), else the order's total_amount shared evenly among its parcels",
            False,
        ),
        "created_at": ("when the order was created, UTC", False),
        "paid_at": ("when the order was paid, UTC", False),
        "last_event_at": ("the parcel's last event, UTC; null for the order kinds", False),
        "last_status": ("status of the parcel's last event; null for the order kinds and for 1688", False),
        "stage_started_at": (
            "when the stage began, UTC: created_at (awaiting_payment), paid_at (paid_no_parcel_event), "
            "the parcel's last_event_at (the parcel kinds)",
            False,
        ),
        "hours_stuck": ("hours from `stage_started_at` to `as_of`, 1 decimal", False),
        "lead_time_h": ("the stage's expected lead time in hours: 48, 72, 168, 24 or 0 (by kind)", False),
        "overdue_h": ("hours_stuck − lead_time_h, 1 decimal", False),
        "as_of": ("the latest order update or tracking event in the warehouse, UTC", False),
    },
    "rpt_carrier_performance": {
        "carrier": ("`fct_parcels.carrier`; `(unknown)` when null", True),
        "parcels": ("parcels of that carrier, all time", True),
        "delivered": ("of those, parcels with a `delivered_at`", True),
        "failed": ("parcels not delivered whose last event status is `FAILED` or `REJECT`", False),
        "delivery_rate": ("delivered / parcels, 4 decimals", False),
        "transit_p50_h": ("median hours from `first_event_at` to `delivered_at` (delivered parcels)", True),
        "transit_p90_h": ("90th percentile hours from `first_event_at` to `delivered_at`", True),
    },
}

# the fact tables' specs, in the order of tables.FACT_TABLES
FACTS: tuple[TableSpec, ...] = tuple(
    next(spec for spec in WAREHOUSE_TABLES if spec.name == name) for name in FACT_TABLES
)


@dataclass(frozen=True)
class StagedTable:
    """A normalised Parquet table: the warehouse table it feeds, and how it is partitioned.

    A parent table is partitioned by the date of its business time (``partition_by``) and merged
    by ``key`` with the latest ``version`` winning; a child table sits in its parent's partition
    and is replaced together with its parent (``parent``, joined on ``parent_key``).
    """

    name: str
    spec: TableSpec
    partition_by: str | None = None
    version: str | None = None
    parent: str | None = None
    parent_key: tuple[str, ...] = ()


STAGED_TABLES: dict[str, StagedTable] = {
    t.name: t
    for t in (
        StagedTable("orders", FCT_ORDERS, partition_by="created_at", version="updated_at"),
        StagedTable("order_lines", FCT_ORDER_LINES, parent="orders", parent_key=("platform", "order_id")),
        StagedTable("refunds", FCT_REFUNDS, partition_by="created_at", version="updated_at"),
        StagedTable("parcels", FCT_PARCELS, partition_by="first_event_at", version="last_event_at"),
        StagedTable("parcel_events", FCT_PARCEL_EVENTS, parent="parcels", parent_key=("platform", "tracking_number")),
    )
}
