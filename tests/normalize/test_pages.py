"""Reading a page (:mod:`xport_etl.normalize.pages`): what is a page-level problem, repeated member
names, detail answers; and the registry that routes each endpoint's pages to its normaliser."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.factories.served import envelope
from xport_etl.normalize.pages import parse_detail, parse_page
from xport_etl.normalize.registry import NORMALIZERS
from xport_etl.normalize.values import PageError


def test_parse_detail():
    data, clean = parse_detail(envelope({"a": 1, "b": 1.5}))
    assert data == {"a": 1, "b": Decimal("1.5")} and clean
    data, clean = parse_detail(envelope({"a": "x"}).replace(b"x", b"\xff"))
    assert not clean and data["a"] == "\udcff"
    for bad in (b"<html>", b"[1]", envelope(None, code=404), envelope([1, 2])):
        with pytest.raises(PageError):
            parse_detail(bad)


def test_normalizers_cover_the_new_endpoints():
    # the registry routes every endpoint: these, the Taobao order lists and the callback details
    assert set(NORMALIZERS) == {
        "taobao_refunds",
        "taobao_refund_detail",
        "alibaba_orders",
        "alibaba_refunds",
        "taobao_logistics",
        "alibaba_logistics",
        "taobao_orders",
        "taobao_orders_legacy",
        "taobao_order_detail",
    }


def test_page_level_problems_raise():
    from xport_etl.normalize.values import PageError

    with pytest.raises(PageError):
        parse_page(b"<html>503</html>")
    with pytest.raises(PageError):
        parse_page(json.dumps({"code": 200, "data": {"records": {"a": 1}}}).encode())


def test_a_repeated_member_name_keeps_its_first_occurrence_at_every_level():
    from xport_etl.normalize.pages import parse_page

    body = b'{"code": 200, "code": 500, "data": {"records": [{"id": "1", "id": "2", "x": {"a": 1, "a": 2}}]}}'
    records, clean = parse_page(body)
    assert records == [{"id": "1", "x": {"a": 1}}] and clean
