"""Endpoint registry, the [assumed] choices and the time helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xport_etl.errors import ConfigError
from xport_etl.extract.endpoints import (
    ASSUMED,
    ASSUMPTIONS_ENV_VAR,
    ENDPOINTS,
    ApiAssumptions,
    endpoints_for,
    format_window_value,
    load_assumptions,
    parse_cst,
    window_params,
)
from xport_etl.streams.spec import EndpointSpec, WindowSpec


def test_registry():
    orders = ENDPOINTS["taobao_orders"]
    assert (orders.method, orders.path, orders.paging) == (
        "POST",
        "/open/purchase/page",
        "page_number_body",
    )
    assert orders.pages_in_body
    assert orders.windows["create"] == WindowSpec("createStartTime", "createEndTime", "cst_string", "body")
    assert orders.windows["update"].start_field == "updateStartTime"
    legacy = ENDPOINTS["taobao_orders_legacy"]
    assert (legacy.method, legacy.path, legacy.paging) == (
        "GET",
        "/open/order/page",
        "page_number_query",
    )
    assert legacy.windows["create"].location == "query"
    detail = ENDPOINTS["taobao_order_detail"]
    assert (detail.method, detail.path, detail.paging, detail.detail_param) == (
        "GET",
        "/open/order/detail",
        None,
        "orderId",
    )
    assert all(name == spec.name for name, spec in ENDPOINTS.items())
    hash(orders)  # usable as a dict key


def test_specs_are_immutable():
    with pytest.raises(AttributeError):
        ENDPOINTS["taobao_orders"].path = "/x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ENDPOINTS["taobao_orders"].windows["x"] = None  # type: ignore[index]
    with pytest.raises(ValueError):
        EndpointSpec("x", "/x", "PUT", None)
    with pytest.raises(ValueError):
        WindowSpec("a", "b", "iso")


def test_assumed_defaults():
    assert ASSUMED.source_utc_offset == "+08:00"
    assert ASSUMED.max_page_size == 100
    assert ASSUMED.success_code == 200
    assert ASSUMED.retriable_codes == {429, 500}
    assert ASSUMED.auth_codes == {401, 403}
    assert ASSUMED.http_retriable_statuses == {429, 500, 502, 503, 504}
    assert not hasattr(ASSUMED, "rate_limit")  # a setting (XPORT_RATE_LIMIT), not an assumption
    assert ASSUMED.timestamp_window_s == 600 == ASSUMED.nonce_window_s


def test_load_assumptions_none_configured():
    assert load_assumptions({}) is ASSUMED


def test_load_assumptions_from_env_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(
        json.dumps(
            {
                "source_utc_offset": "+07:00",
                "retriable_codes": [429, 500, 503],
                "max_page_size": 50,
                "endpoint_overrides": {"taobao_order_detail": {"path": "/open/order/get"}},
            }
        )
    )
    a = load_assumptions({ASSUMPTIONS_ENV_VAR: str(path)})
    assert a.source_tz == timezone(timedelta(hours=7))
    assert a.retriable_codes == frozenset({429, 500, 503})
    assert a.max_page_size == 50
    assert a.success_code == 200
    assert endpoints_for(a)["taobao_order_detail"].path == "/open/order/get"
    assert ENDPOINTS["taobao_order_detail"].path == "/open/order/detail"
    assert load_assumptions(path) == a


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"nope": 1}', "unknown key"),
        ("[1]", "object"),
        ("{", "not valid JSON"),
        ('{"source_utc_offset": "CST"}', "source_utc_offset"),
        ('{"auth_codes": "401"}', "list of integers"),
    ],
)
def test_load_assumptions_errors(tmp_path, content, match):
    path = tmp_path / "a.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_assumptions(path)


def test_load_assumptions_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_assumptions({ASSUMPTIONS_ENV_VAR: str(tmp_path / "missing.json")})


def test_endpoint_override_errors():
    with pytest.raises(ConfigError, match="unknown endpoint"):
        endpoints_for(ApiAssumptions(endpoint_overrides={"nope": {"path": "/x"}}))
    with pytest.raises(ConfigError, match="unknown field"):
        endpoints_for(ApiAssumptions(endpoint_overrides={"taobao_orders": {"verb": "GET"}}))


def test_format_window_value():
    dt = datetime(2024, 3, 1, 16, 0, 0, tzinfo=UTC)
    assert format_window_value(dt, "cst_string") == "2024-03-02 00:00:00"
    assert format_window_value(dt, "epoch_ms") == 1709308800000
    with pytest.raises(ValueError, match="timezone-aware"):
        format_window_value(datetime(2024, 3, 1), "cst_string")
    with pytest.raises(ValueError):
        format_window_value(dt, "iso")
    spec = ENDPOINTS["taobao_orders"].windows["create"]
    assert window_params(spec, dt, dt + timedelta(days=1)) == {
        "createStartTime": "2024-03-02 00:00:00",
        "createEndTime": "2024-03-03 00:00:00",
    }


def test_parse_cst():
    assert parse_cst("2024-03-02 00:00:00") == datetime(2024, 3, 1, 16, 0, tzinfo=UTC)
    assert parse_cst("2024-03-02 00:00:00").tzinfo is UTC


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "2024-3-2 00:00:00",
        "2024-03-02T00:00:00",
        "2024-02-30 00:00:00",
        "2024-03-02 24:00:00",
        "2024-03-02 00:00:00+08:00",
        None,
        1709308800000,
    ],
)
def test_parse_cst_rejects(bad):
    with pytest.raises(ValueError):
        parse_cst(bad)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_cst_round_trip(dt):
    dt = dt.replace(microsecond=0)
    assert parse_cst(format_window_value(dt, "cst_string")) == dt
