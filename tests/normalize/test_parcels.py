"""The logistics normalisers (parcels and their events) on the contract's awkward cases: Taobao's
logistics detail and 1688's logistics trace (docs/api-contract.md §3, §5.6, §5.9; docs/warehouse.md)."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.factories.served import STEPS, alibaba_trace, envelope, logistics, parcel, taobao_refund_detail, trace
from tests.helpers import assert_fits_schemas, run_normalizer
from xport_etl.normalize.values import PageError

# the public documentation's response templates (field names and nesting are real, values blank)
DOC_EXAMPLES = Path(__file__).resolve().parent.parent / "recorded" / "doc-examples"


# ---- Taobao logistics


CTX = {"order_id": "1031992847890383164", "purchase_line_id": "200027842448"}


TRACES = [
    trace("2026-01-02 07:00:00", "ACCEPT", "已揽收"),
    trace("2026-01-02 20:00:00", "TRANSPORT", "运输中"),
    trace("2026-01-03 09:00:00", "SIGN", "已签收", "广州市"),
    trace("2026-01-03 10:00:00", "SIGN", "再次签收", "广州市"),
    trace("2026-01-03 11:00:00", "FAILED", "异常"),
]


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return None


def test_fixtures_follow_the_doc_examples_nesting():
    doc = json.loads((DOC_EXAMPLES / "taobao-logistics-detail-v2.json").read_text())["data"]
    assert _shape(logistics([parcel("ZT1", TRACES[:1])])) == _shape(doc)
    doc = json.loads((DOC_EXAMPLES / "taobao-refund-detail-v2.json").read_text())["data"]
    assert _shape(taobao_refund_detail()) == _shape(doc)


def test_taobao_parcel_and_events():
    out = run_normalizer("taobao_logistics", [(envelope(logistics([parcel("ZT7700001", TRACES)])), CTX)])
    assert_fits_schemas(out)
    assert out.tables["parcels"] == [
        {
            "platform": "taobao",
            "tracking_number": "ZT7700001",
            "order_id": "1031992847890383164",
            "purchase_line_id": "200027842448",
            "carrier": "中通快递",
            "first_event_at": datetime(2026, 1, 1, 23),
            "last_event_at": datetime(2026, 1, 3, 3),
            "delivered_at": datetime(2026, 1, 3, 1),  # the first SIGN, not the second
            "last_status": "FAILED",
            "event_count": 5,
            "order_status_at_fetch": None,
            "goods_quantity": 2,  # the sum of logisticsGoods quantities: what the line shipped in it
        }
    ]
    events = out.tables["parcel_events"]
    assert [e["event_index"] for e in events] == [0, 1, 2, 3, 4]
    assert events[2] == {
        "platform": "taobao",
        "tracking_number": "ZT7700001",
        "event_index": 2,
        "event_at": datetime(2026, 1, 3, 1),
        "status": "SIGN",
        "description": "已签收",
        "city": "广州市",
    }
    assert out.records == 1 and out.rejects == []


def test_taobao_first_and_last_follow_the_apis_order_not_the_clock():
    traces = [trace("2026-01-03 09:00:00", "TRANSPORT"), trace("2026-01-02 07:00:00", "ACCEPT")]
    out = run_normalizer("taobao_logistics", [(envelope(logistics([parcel("ZT1", traces)])), CTX)])
    (row,) = out.tables["parcels"]
    assert row["first_event_at"] == datetime(2026, 1, 3, 1)
    assert row["last_event_at"] == datetime(2026, 1, 1, 23)
    assert row["last_status"] == "ACCEPT" and row["delivered_at"] is None


def test_taobao_parcel_without_traces_and_several_parcels():
    data = logistics([parcel("ZT1", []), parcel("ZT2", None, company=None)])
    data["pnmLogisticsDetails"][1]["logisticsPartner"] = []
    out = run_normalizer("taobao_logistics", [(envelope(data), CTX)])
    rows = {r["tracking_number"]: r for r in out.tables["parcels"]}
    for tn in ("ZT1", "ZT2"):
        assert rows[tn]["first_event_at"] is None and rows[tn]["last_event_at"] is None
        assert rows[tn]["event_count"] == 0 and rows[tn]["last_status"] is None
        assert rows[tn]["delivered_at"] is None
    assert rows["ZT1"]["carrier"] == "中通快递" and rows["ZT2"]["carrier"] is None
    assert out.tables["parcel_events"] == [] and out.records == 2


def test_taobao_empty_logistics_is_not_an_error():
    pages = [
        (envelope(logistics([])), CTX),
        (envelope({"purchaseOrderOuterId": "1", "pnmLogisticsDetails": None}), CTX),
    ]
    out = run_normalizer("taobao_logistics", pages)
    assert out.tables == {} and out.rejects == [] and out.records == 0


def test_taobao_purchase_line_falls_back_to_context_and_no_context():
    out = run_normalizer("taobao_logistics", [(envelope(logistics([parcel("ZT1", TRACES)], line_id=None)), CTX)])
    assert out.tables["parcels"][0]["purchase_line_id"] == "200027842448"
    out = run_normalizer(
        "taobao_logistics", [(envelope(logistics([parcel("ZT1", TRACES)], line_id=200027842449)), None)]
    )
    row = out.tables["parcels"][0]
    assert (row["order_id"], row["purchase_line_id"]) == (None, "200027842449")


def test_taobao_same_parcel_for_two_lines_kept_once():
    shorter = parcel("ZT1", TRACES[:2])
    longer = parcel("ZT1", TRACES[:3])
    pages = [
        (envelope(logistics([shorter], line_id="L1")), CTX),
        (envelope(logistics([longer], line_id="L2")), CTX),
        (envelope(logistics([copy.deepcopy(shorter)], line_id="L3")), CTX),
    ]
    out = run_normalizer("taobao_logistics", pages)
    (row,) = out.tables["parcels"]
    assert (row["purchase_line_id"], row["event_count"]) == ("L2", 3)
    assert len(out.tables["parcel_events"]) == 3 and out.rejects == []
    # same last event and same count: the first seen stays
    out = run_normalizer(
        "taobao_logistics",
        [(envelope(logistics([shorter], line_id="L1")), CTX), (envelope(logistics([shorter], line_id="L2")), CTX)],
    )
    assert out.tables["parcels"][0]["purchase_line_id"] == "L1"


def test_taobao_bad_parcels_rejected_alone():
    bad_time = parcel("ZT2", [trace("2026-01-02 7:00", "ACCEPT")])
    pages = [
        (envelope(logistics([parcel("ZT1", TRACES), bad_time, parcel("", []), "junk", parcel("ZT3", [None])])), CTX),
        (envelope(logistics({"mailNo": "x"})), CTX),
    ]
    out = run_normalizer("taobao_logistics", pages)
    assert [r["tracking_number"] for r in out.tables["parcels"]] == ["ZT1"]
    assert [(r["record_id"], r["reason"], r["page"]) for r in out.rejects] == [
        ("200027842448/ZT2", "logisticsTraces[0].time is not a valid yyyy-MM-dd HH:mm:ss time: '2026-01-02 7:00'", 1),
        ("200027842448/#2", "missing mailNo", 1),
        ("200027842448/#3", "parcel is not an object: str", 1),
        ("200027842448/ZT3", "logisticsTraces[0] is not an object: NoneType", 1),
        ("200027842448", "pnmLogisticsDetails is not a list: dict", 2),
    ]
    assert out.records == 6


def test_taobao_logistics_page_errors():
    with pytest.raises(PageError):
        run_normalizer("taobao_logistics", [(envelope(None, code=404), CTX)])


# ---- 1688 logistics


def test_alibaba_parcel_and_events():
    data = {"orderId": 3012345678901234567, "logisticsTrace": [alibaba_trace("YT900001", STEPS)]}
    ctx = {"key": "3012345678901234567", "order_id": "3012345678901234567", "order_status": "success"}
    out = run_normalizer("alibaba_logistics", [(envelope(data), ctx)])
    assert_fits_schemas(out)
    assert out.tables["parcels"] == [
        {
            "platform": "1688",
            "tracking_number": "YT900001",
            "order_id": "3012345678901234567",
            "purchase_line_id": None,
            "carrier": "圆通速递",
            "first_event_at": datetime(2026, 3, 2, 2),
            "last_event_at": datetime(2026, 3, 4, 0),
            "delivered_at": None,
            "last_status": None,
            "event_count": 3,
            "order_status_at_fetch": "success",  # from the fan-out context: the loader derives delivery
            "goods_quantity": None,
        }
    ]
    assert out.tables["parcel_events"][1] == {
        "platform": "1688",
        "tracking_number": "YT900001",
        "event_index": 1,
        "event_at": datetime(2026, 3, 3, 10, 30),
        "status": None,
        "description": "派送中",
        "city": None,
    }


def test_an_unreadable_context_order_status_is_a_warning_and_the_parcels_load():
    data = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", STEPS), alibaba_trace("YT2", STEPS)]}
    out = run_normalizer("alibaba_logistics", [(envelope(data), {"order_id": "301", "order_status": {"s": "success"}})])
    assert [(r["tracking_number"], r["order_status_at_fetch"]) for r in out.tables["parcels"]] == [
        ("YT1", None),
        ("YT2", None),
    ]
    assert [(r["severity"], r["record_id"], r["field"], r["raw_json"]) for r in out.rejects] == [
        ("warning", "301/YT1", "context order_status", '{"s":"success"}'),
        ("warning", "301/YT2", "context order_status", '{"s":"success"}'),
    ]
    assert (out.rejected, out.warned) == (0, 2)


def test_alibaba_logistics_empty_no_steps_and_context_order():
    out = run_normalizer(
        "alibaba_logistics", [(envelope({"orderId": "301", "logisticsTrace": []}), {"order_id": "301"})]
    )
    assert out.tables == {} and out.rejects == []
    data = {"orderId": None, "logisticsTrace": [alibaba_trace("YT1", None), alibaba_trace("YT2", [])]}
    out = run_normalizer("alibaba_logistics", [(envelope(data), {"order_id": "302"})])
    assert [(r["order_id"], r["event_count"], r["first_event_at"]) for r in out.tables["parcels"]] == [
        ("302", 0, None),
        ("302", 0, None),
    ]


def test_alibaba_logistics_rejects():
    data = {
        "orderId": "301",
        "logisticsTrace": [
            alibaba_trace(None, STEPS),
            alibaba_trace("YT2", [{"acceptTime": 1767225600000}]),
            alibaba_trace("YT3", STEPS),
        ],
    }
    out = run_normalizer(
        "alibaba_logistics", [(envelope(data), None), (envelope({"logisticsTrace": "x"}), {"order_id": "302"})]
    )
    assert [r["tracking_number"] for r in out.tables["parcels"]] == ["YT3"]
    assert [(r["record_id"], r["reason"]) for r in out.rejects] == [
        ("301/#0", "missing logisticsBillNo"),
        ("301/YT2", "logisticsSteps[0].acceptTime is not a time string: 1767225600000"),
        ("302", "logisticsTrace is not a list: str"),
    ]


def test_duplicate_tracking_number_within_one_answer_is_a_reject():
    data = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", STEPS[:1]), alibaba_trace("YT1", STEPS)]}
    out = run_normalizer("alibaba_logistics", [(envelope(data), None)])
    assert out.tables["parcels"][0]["event_count"] == 3
    assert [r["reason"] for r in out.rejects] == ["duplicate id within one page; kept the later version"]


def test_logistics_invalid_utf8_rejects_the_parcel():
    data = logistics([parcel("ZT1", [trace("2026-01-02 07:00:00", "ACCEPT", "AAAA")]), parcel("ZT2", [])])
    body = envelope(data).replace(b"AAAA", b"\xff")
    out = run_normalizer("taobao_logistics", [(body, CTX)])
    assert [r["tracking_number"] for r in out.tables["parcels"]] == ["ZT2"]
    assert out.rejects[0]["record_id"] == "200027842448/ZT1"
    assert out.rejects[0]["reason"] == "record contains bytes that are not valid UTF-8"
    assert out.rejects[0]["raw_json"].startswith('{"mailNo":"ZT1","logisticsTraces":[{"statusDesc":"\\udcff",')
