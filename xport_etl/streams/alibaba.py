"""1688's streams: purchase orders, then the refunds and parcels their rows name.

Each stream is one declaration. The comments cite the API contract (docs/api-contract.md) and say
which parts are [doc] and which [assumed]; every [assumed] field can be corrected without code
(``endpoint_overrides`` in the API assumptions file).
"""

from __future__ import annotations

from xport_etl.streams.spec import Cursor, EndpointSpec, FanOut, Platform, StreamSpec, WindowSpec

ALIBABA = Platform("1688", group="alibaba", title="1688 purchase orders, then their refunds and parcels")

STREAMS = (
    # docs/api-contract.md#57-1688-orders [doc: method and path; assumed: body filters, window
    # fields, record fields and status values]
    StreamSpec(
        platform=ALIBABA,
        endpoint=EndpointSpec(
            name="alibaba_orders",
            path="/v2/alibaba/order/page",
            method="POST",
            paging="page_number_body",
            primary_key=("orderId",),
            windows={
                "create": WindowSpec("createStartTime", "createEndTime", "cst_string", "body"),
                "update": WindowSpec("modifyStartTime", "modifyEndTime", "cst_string", "body"),
            },
            # [doc] a record may nest its fields in baseInfo (1688's own shape)
            members_in=("baseInfo",),
        ),
        cursor=Cursor("update", field="modifyTime"),
        normalizer="xport_etl.normalize.alibaba_orders:normalize_alibaba_order_pages",
        tables=("fct_orders", "fct_order_lines"),
    ),
    # docs/api-contract.md#58-1688-refunds [doc: method, path, refundId in the body (POST), first
    # data fields; assumed: refundId/orderId/subItemId/status/refundPayment fields, fen as ints,
    # discovery through productItems[].refundId]
    StreamSpec(
        platform=ALIBABA,
        endpoint=EndpointSpec(
            name="alibaba_refunds",
            path="/alibaba/refund/info",
            method="POST",
            paging=None,
            records_path=(),
            primary_key=("refundId",),
            detail_param="refundId",
        ),
        fanout=FanOut(
            parent="alibaba_orders",
            keys="fanout/alibaba_refunds.sql",
            about="refundIds on 1688 items whose refund is not yet final",
        ),
        normalizer="xport_etl.normalize.refunds:normalize_alibaba_refund_pages",
        tables=("fct_refunds",),
    ),
    # docs/api-contract.md#59-1688-logistics [doc: method and title; assumed: path, orderId
    # parameter, data shape, one call per 1688 order]
    StreamSpec(
        platform=ALIBABA,
        endpoint=EndpointSpec(
            name="alibaba_logistics",
            path="/alibaba/order/logistics/trace",
            method="GET",
            paging=None,
            records_path=(),
            primary_key=("logisticsBillNo",),
            detail_param="orderId",
        ),
        fanout=FanOut(
            parent="alibaba_orders",
            keys="fanout/alibaba_logistics.sql",
            about="shipped 1688 orders whose trace is not yet final",
        ),
        normalizer="xport_etl.normalize.parcels:normalize_alibaba_logistics_pages",
        tables=("fct_parcels", "fct_parcel_events"),
    ),
)
