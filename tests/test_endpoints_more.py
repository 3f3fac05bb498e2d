"""Declarations of after-sale, logistics and 1688 (docs/api-contract.md §5.4–§5.9)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from xport_etl.extract.endpoints import ENDPOINTS, ApiAssumptions, endpoints_for, window_params
from xport_etl.streams.graph import STREAMS
from xport_etl.streams.spec import WindowSpec


@pytest.mark.parametrize(
    ("name", "platform", "method", "path", "paging", "detail_param", "parent"),
    [
        ("taobao_refunds", "taobao", "POST", "/open/order/refund/queryList", "page_number_body", None, None),
        ("taobao_refund_detail", "taobao", "GET", "/v2/taobao/order/refund/query", None, "refundId", None),
        (
            "taobao_logistics",
            "taobao",
            "GET",
            "/v2/taobao/order/logistics/detail/get",
            None,
            "subPurchaseOrderId",
            "taobao_orders",
        ),
        ("alibaba_orders", "1688", "POST", "/v2/alibaba/order/page", "page_number_body", None, None),
        ("alibaba_refunds", "1688", "POST", "/alibaba/refund/info", None, "refundId", "alibaba_orders"),
        ("alibaba_logistics", "1688", "GET", "/alibaba/order/logistics/trace", None, "orderId", "alibaba_orders"),
    ],
)
def test_declarations(name, platform, method, path, paging, detail_param, parent):
    spec = ENDPOINTS[name]
    assert spec.name == name
    assert (STREAMS[name].platform.name, spec.method, spec.path, spec.paging) == (platform, method, path, paging)
    fanout = STREAMS[name].fanout
    assert (spec.detail_param, fanout and fanout.parent) == (detail_param, parent)
    assert spec.is_paged == (paging is not None)
    if paging is None:
        assert spec.records_path == () and dict(spec.windows) == {}
    else:
        assert spec.pages_in_body and spec.records_path == ("records",)
    hash(spec)


def test_list_keys_and_windows():
    refunds = ENDPOINTS["taobao_refunds"]
    assert refunds.primary_key == ("refundId",)
    assert dict(refunds.windows) == {"create": WindowSpec("refundStartTime", "refundEndTime", "epoch_ms", "body")}
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert window_params(refunds.windows["create"], start, end) == {
        "refundStartTime": 1767225600000,
        "refundEndTime": 1767312000000,
    }

    orders = ENDPOINTS["alibaba_orders"]
    assert orders.primary_key == ("orderId",)
    assert dict(orders.windows) == {
        "create": WindowSpec("createStartTime", "createEndTime", "cst_string", "body"),
        "update": WindowSpec("modifyStartTime", "modifyEndTime", "cst_string", "body"),
    }
    assert window_params(orders.windows["update"], start, end) == {
        "modifyStartTime": "2026-01-01 08:00:00",
        "modifyEndTime": "2026-01-02 08:00:00",
    }


def test_new_endpoints_can_be_overridden():
    fixed = ApiAssumptions(endpoint_overrides={"alibaba_logistics": {"path": "/alibaba/logistics/trace"}})
    assert endpoints_for(fixed)["alibaba_logistics"].path == "/alibaba/logistics/trace"
    assert ENDPOINTS["alibaba_logistics"].path == "/alibaba/order/logistics/trace"


def test_existing_entries_untouched():
    assert ENDPOINTS["taobao_orders"].path == "/open/purchase/page"
    assert ENDPOINTS["taobao_order_detail"].detail_param == "orderId"
    assert len(ENDPOINTS) == 9
