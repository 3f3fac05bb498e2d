"""Taobao's streams: purchase orders, their after-sale refunds and parcels.

Each stream is one declaration. The comments cite the API contract (docs/api-contract.md) and say
which parts are [doc] and which [assumed]; every [assumed] field can be corrected without code
(``endpoint_overrides`` in the API assumptions file).
"""

from __future__ import annotations

from datetime import timedelta

from xport_etl.streams.spec import Cursor, EndpointSpec, FanOut, Platform, StreamSpec, WindowSpec

TAOBAO = Platform("taobao", group="taobao", title="Taobao purchase orders, refunds and parcels")

_ORDERS = "xport_etl.normalize.taobao_orders:normalize_taobao_pages"
_ORDER_TABLES = ("fct_orders", "fct_order_lines")

STREAMS = (
    # docs/api-contract.md#51-taobao-orders [doc path; filters assumed]
    StreamSpec(
        platform=TAOBAO,
        endpoint=EndpointSpec(
            name="taobao_orders",
            path="/open/purchase/page",
            method="POST",
            paging="page_number_body",
            primary_key=("id",),
            windows={
                "create": WindowSpec("createStartTime", "createEndTime", "cst_string", "body"),
                "update": WindowSpec("updateStartTime", "updateEndTime", "cst_string", "body"),
            },
        ),
        cursor=Cursor("update", field="updateTime"),
        normalizer=_ORDERS,
        fast_path=True,
        tables=_ORDER_TABLES,
    ),
    # docs/api-contract.md#52-taobao-orders-legacy-list [doc method; path assumed]: read on demand
    StreamSpec(
        platform=TAOBAO,
        endpoint=EndpointSpec(
            name="taobao_orders_legacy",
            path="/open/order/page",
            method="GET",
            paging="page_number_query",
            primary_key=("id",),
            windows={"create": WindowSpec("createStartTime", "createEndTime", "cst_string", "query")},
        ),
        normalizer=_ORDERS,
        fast_path=True,
        tables=_ORDER_TABLES,
    ),
    # docs/api-contract.md#53-taobao-order-detail [doc method; path assumed]: what the callbacks'
    # refresh re-reads an order by
    StreamSpec(
        platform=TAOBAO,
        endpoint=EndpointSpec(
            name="taobao_order_detail",
            path="/open/order/detail",
            method="GET",
            paging=None,
            records_path=(),
            primary_key=("id",),
            detail_param="orderId",
        ),
        normalizer="xport_etl.normalize.callback_details:normalize_taobao_order_detail_pages",
        tables=_ORDER_TABLES,
    ),
    # docs/api-contract.md#54-taobao-refunds [doc: method, path, body fields, refundStart/EndTime in
    # epoch ms on the refund's creation time; assumed: record fields, primary key, paging shape,
    # window bounds inclusive/exclusive]
    StreamSpec(
        platform=TAOBAO,
        endpoint=EndpointSpec(
            name="taobao_refunds",
            path="/open/order/refund/queryList",
            method="POST",
            paging="page_number_body",
            primary_key=("refundId",),
            windows={"create": WindowSpec("refundStartTime", "refundEndTime", "epoch_ms", "body")},
        ),
        # the list filters on creation only, and a refund moves for weeks after it is opened
        cursor=Cursor("create", lookback=timedelta(days=45)),
        normalizer="xport_etl.normalize.refunds:normalize_taobao_refund_pages",
        tables=("fct_refunds",),
    ),
    # docs/api-contract.md#55-taobao-refund-detail [doc: method, path, refundId parameter, data
    # nesting; assumed: 404 for an unknown id, what drives the calls]: read on demand
    StreamSpec(
        platform=TAOBAO,
        endpoint=EndpointSpec(
            name="taobao_refund_detail",
            path="/v2/taobao/order/refund/query",
            method="GET",
            paging=None,
            records_path=(),
            primary_key=("refundId",),
            detail_param="refundId",
        ),
        normalizer="xport_etl.normalize.refunds:normalize_taobao_refund_detail_pages",
        tables=("fct_refunds",),
    ),
    # docs/api-contract.md#56-taobao-logistics [doc: method, path, subPurchaseOrderId parameter,
    # data nesting; assumed: trace status codes, empty pnmLogisticsDetails for an unshipped line,
    # one call per shipped order line]
    StreamSpec(
        platform=TAOBAO,
        endpoint=EndpointSpec(
            name="taobao_logistics",
            path="/v2/taobao/order/logistics/detail/get",
            method="GET",
            paging=None,
            records_path=(),
            primary_key=("mailNo",),
            detail_param="subPurchaseOrderId",
        ),
        fanout=FanOut(
            parent="taobao_orders",
            keys="fanout/taobao_logistics.sql",
            about="shipped purchase lines whose parcels are not all delivered",
        ),
        normalizer="xport_etl.normalize.parcels:normalize_taobao_logistics_pages",
        tables=("fct_parcels", "fct_parcel_events"),
    ),
)
