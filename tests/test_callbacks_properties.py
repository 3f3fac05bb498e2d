"""No message can stop the callbacks (issue 22, item 3): property tests over SIGNED messages.

Any JSON, any types, Unicode digits, huge numbers, deep nesting, odd ``messageType``\\ s, both body
forms. The receiver answers 200 or a 4xx, never a 5xx nor a cut connection; the consumer refreshes,
counts as bad or unknown, or dead-letters each message, and always moves its position to the end
of the inbox, whatever the API answers for what the messages name (a record, nothing, a permanent
error, an answer of the wrong shape).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from unittest import mock

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xport_etl import jsonutil
from xport_etl.callbacks.inbox import DEAD_LETTER_FILE, OFFSET_FILE, InboxStore
from xport_etl.callbacks.messages import is_known, message_platform, names
from xport_etl.callbacks.receiver import CALLBACK_PATH, create_receiver, sign_body
from xport_etl.callbacks.refresh import refresh_from_callbacks
from xport_etl.errors import FatalError
from xport_etl.extract.endpoints import endpoints_for
from xport_etl.extract.responses import ApiResponse
from xport_etl.run import fanout as fanout_run
from xport_etl.run import paging as paging_run
from xport_etl.run import state as state_run
from xport_etl.settings import Settings

SECRET = "property-secret"
NOW = 1_790_000_000.0
PROFILE = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# ---- messages

TYPES = [
    "TAOBAO_ORDER_STATUS_MODIFY",
    "TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY",
    "TAOBAO_ORDER_REFUND",
    "ALIBABA_ORDER_STATUS_MODIFY",
    "ALIBABA_ORDER_PRICE_MODIFY",
    "ALIBABA_ORDER_REFUND",
    "SOMETHING_NEW",
    "",
    "\ud800",
    "订单状态变更",
]
ODD_NUMBERS = ["²", "١٧٩٠", "1_000", "1e400", "9" * 5000, " 12 ", "-1", "0x10", "NaN", "1.0"]
huge = st.integers(min_value=-(10**80), max_value=10**80) | st.just(10**4000)
ids = st.sampled_from(["1031992847890383164", "TQ1234", "200000090114253982", "230101120000000007", "1"]) | (
    st.text(alphabet="0123456789", min_size=1, max_size=70)
)
scalars = (
    st.none()
    | st.booleans()
    | huge
    | st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d.adjusted()) < 500)
    | st.text(max_size=20)
    | st.sampled_from(ODD_NUMBERS)
    | ids
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "orderId": ids | json_values,
        "refundId": ids | json_values,
        "salesOrderId": ids | json_values,
        "subOrderId": ids | json_values,
        "status": json_values,
        "refundStatus": json_values,
        "createTime": st.sampled_from(ODD_NUMBERS) | json_values,
        "modifiedTime": st.sampled_from(ODD_NUMBERS) | json_values,
    },
)
timestamps = st.one_of(
    st.integers(min_value=int(NOW * 1000) - 4 * 3_600_000, max_value=int(NOW * 1000) + 700_000).map(str),
    st.just(str(int(NOW * 1000))),
    st.integers(min_value=int(NOW) - 3600, max_value=int(NOW)),
    st.sampled_from(ODD_NUMBERS),
    st.sampled_from(ODD_NUMBERS),
    st.integers(min_value=0, max_value=10**17),  # any epoch: year 1970 to past 9999
    json_values,
)
# the messages issue 22 found: each stopped the callbacks
FOUND = [
    {"messageType": "TAOBAO_ORDER_STATUS_MODIFY", "messageBody": {"orderId": "1"}, "timestamp": "²"},
    {
        "messageType": "TAOBAO_ORDER_REFUND",
        "messageBody": {"orderId": "5", "refundId": "6", "refundStatus": 10, "createTime": "²"},
        "messagePlatform": 0,
        "timestamp": str(int(NOW * 1000)),
    },
    {
        "messageType": "TAOBAO_ORDER_REFUND",
        "messageBody": {"orderId": "5", "refundId": "7", "modifiedTime": "9" * 5000},
        "messagePlatform": 0,
        "timestamp": str(int(NOW * 1000)),
    },
    {"messageType": "TAOBAO_ORDER_STATUS_MODIFY", "messageBody": {"orderId": "2"}, "timestamp": "9" * 5000},
    {"messageType": ["not", "text"], "messageBody": {"orderId": "3"}, "timestamp": str(int(NOW * 1000))},
    # stored by no receiver of ours (the inbox of an older version): a push time past year 9999
    {"messageType": "ALIBABA_ORDER_STATUS_MODIFY", "messageBody": {"orderId": "4"}, "timestamp": 9 * 10**15},
]


@st.composite
def signed_bodies(draw) -> bytes:
    """The raw bytes of one message: usually an envelope, the body as an object or as a JSON
    string, now and then anything at all or nested past any limit."""
    shape = draw(st.sampled_from(["envelope"] * 8 + ["any", "deep"]))
    if shape == "any":
        return _dumps(draw(json_values))
    message = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "messageType": st.sampled_from(TYPES) | json_values,
                "messageBody": bodies | bodies.map(lambda b: _dumps(b).decode()) | json_values,
                "messagePlatform": st.sampled_from([0, 1, "0", "1", " 1 ", 2, True, None, "١"]) | json_values,
                "timestamp": timestamps,
            },
        )
    )
    raw = _dumps(message)
    if shape == "deep":
        depth = draw(st.sampled_from([50, 900, 3000, 100_000]))
        raw = raw[:-1] + (b", " if len(raw) > 2 else b"") + b'"deep": ' + b"[" * depth + b"]" * depth + b"}"
    return raw


def _dumps(value) -> bytes:
    """JSON text of a value drawn above: exact decimals, lone surrogates as escapes."""
    return jsonutil.dumps(value, floats="allow", ascii=True).encode()


# ---- the receiver


async def _post_twice(app, raw: bytes) -> tuple[httpx.Response, httpx.Response]:
    # raise_app_exceptions: an exception in the app fails the test (uvicorn would cut the
    # connection or answer 500)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    headers = {"Authorization": sign_body(SECRET, raw)}
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        first = await client.post(CALLBACK_PATH, content=raw, headers=headers)
        again = await client.post(CALLBACK_PATH, content=raw, headers=headers)
    return first, again


@PROFILE
@given(raw=signed_bodies())
@example(raw=_dumps(FOUND[0]))
@example(raw=_dumps(FOUND[3]))
def test_the_receiver_answers_any_signed_message_200_or_4xx(raw):
    with tempfile.TemporaryDirectory() as tmp:
        app = create_receiver(SECRET, Path(tmp), clock=lambda: NOW)
        try:
            r, again = asyncio.run(_post_twice(app, raw))
        finally:
            app.state.store.close()
    assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.text)
    assert again.status_code == r.status_code
    if r.status_code == 200:
        assert again.json()["duplicate"] is True


# ---- the consumer


class FakeApi:
    """Answers every call the consumer makes, per key by ``fate``: a record, no record, a
    permanent error, or an answer of the wrong shape."""

    def __init__(self, fate):
        self.fate = fate
        self.calls = 0
        self.specs = endpoints_for()

    def request(self, endpoint, *, params=None, body=None):
        self.calls += 1
        args = params if params is not None else body
        key = next((str(args[k]) for k in ("orderId", "refundId", "orderNo") if k in args), "window")
        fate = self.fate(key)
        if fate == "error":
            raise FatalError("invalid parameter", endpoint=endpoint.name, code=400)
        if endpoint.is_paged:
            if fate == "odd":
                data = {"records": "not a list", "total": "x"}
            else:
                record = {"orderId": key, "id": key, "refundId": key, "orderNo": key, "currency": "CNY"}
                records = [] if fate == "none" else [record]
                if fate == "other":  # a server that ignores the filter
                    records = [{**record, "refundId": "999", "orderNo": "999"}]
                data = {"records": records, "total": len(records), "size": 100, "current": 1, "pages": 1}
        else:
            data = ["odd"] if fate == "odd" else None if fate == "none" else {"id": key, "orderId": "77"}
        raw = json.dumps({"code": 200, "msg": "ok", "requestId": "r", "data": data}).encode()
        return ApiResponse(outline=data, raw=raw, request_id="r", status_code=200)

    def close(self):
        pass


def fake_fanout(settings, endpoint, *, keys, by=None, client=None, **_):
    """``xport_etl.run.fanout.extract_fanout``'s contract: one call a key, a 404 skipped, any other error
    fails the whole call (the consumer's tracker turns a permanent one into a 404)."""
    spec = endpoints_for()[endpoint]
    for row in keys:
        args = {by or spec.detail_param: row["key"]}
        if spec.is_paged:
            args.update(pageNo=1, pageSize=100)
        try:
            client.request(spec, body=args)
        except FatalError as exc:
            if exc.code != 404:
                raise
    return [f"{endpoint}.json"]


def fake_window(settings, endpoint, start, end, *, mode, client=None, **_):
    from xport_etl.extract.paginators import PageNumberPaginator

    spec = endpoints_for()[endpoint]
    response = client.request(spec, body={"modifyStartTime": "x", "pageNo": 1, "pageSize": 100})
    PageNumberPaginator().parse(response, 1, spec.records_path)  # a bad page fails the window
    return f"{endpoint}-{mode}.json"


@PROFILE
@given(
    raws=st.lists(signed_bodies(), min_size=1, max_size=8),
    garbage=st.lists(st.binary(max_size=40), max_size=2),
    fates=st.lists(st.sampled_from(["found", "none", "error", "odd"]), min_size=1, max_size=5),
)
@example(raws=[_dumps(m) for m in FOUND], garbage=[], fates=["found"])
def test_the_consumer_uses_or_dead_letters_every_message_and_always_moves_on(raws, garbage, fates):
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        store = InboxStore(data / "callbacks", clock=lambda: NOW)
        stored = {}
        for raw in raws:
            try:
                message = json.loads(raw)
            except (ValueError, RecursionError):
                continue  # the receiver answers 400: never stored
            if isinstance(message, dict):
                mid, new = store.append(raw, message)
                if new:
                    stored[mid] = message
        store.close()
        inbox = data / "callbacks" / "inbox.jsonl"
        with open(inbox, "ab") as f:
            for junk in garbage:  # lines no receiver wrote: torn, or not a message
                f.write(junk.replace(b"\n", b" ") + b"\n")
        api = FakeApi(lambda key: fates[hash(key) % len(fates)])
        with (
            mock.patch.object(fanout_run, "extract_fanout", fake_fanout),
            mock.patch.object(paging_run, "extract_window", fake_window),
            mock.patch.object(state_run, "load_windows", lambda s, paths, **_: {"rows_written": {}, "rejects": 0}),
        ):
            result = refresh_from_callbacks(Settings(data_dir=data, rate_limit=0), client=api)
            again = refresh_from_callbacks(Settings(data_dir=data, rate_limit=0), client=api)
        offset = json.loads((data / "callbacks" / OFFSET_FILE).read_text()) if stored or garbage else None
        letters_path = data / "callbacks" / DEAD_LETTER_FILE
        letters = [json.loads(x) for x in letters_path.read_text().splitlines()] if letters_path.exists() else []
        size = inbox.stat().st_size if inbox.exists() else 0
    assert offset is None or offset["offset"] == size  # always moved to the end
    assert again["messages"] == 0 and again["dead_lettered"] == 0
    readable = result["messages"]
    assert readable <= len(stored) and result["corrupt"] + readable >= len(stored)
    dead = {x.get("id") for x in letters if "id" in x}
    for mid, message in stored.items():
        platform, _body, named = names(message)
        # each message is used (it names something), counted (a type not known), or a dead letter
        assert named or not is_known(platform, message) or message_platform(message) is None or mid in dead, message
    assert sum(result["unknown"].values()) <= readable and result["bad"] <= readable
    assert all(isinstance(x.get("reason"), str) and x["reason"] for x in letters)


def test_a_list_that_ignores_the_filter_is_no_answer_for_the_key(tmp_path):
    """A refund asked through the refund list's refundId filter, answered with another refund (a
    server that ignores the filter): the other refund lands (it is a true record), the message is
    a dead letter saying the list holds no record for its refund."""
    store = InboxStore(tmp_path / "callbacks", clock=lambda: NOW)
    raw = _dumps(FOUND[1])
    store.append(raw, json.loads(raw))
    store.close()
    api = FakeApi(lambda key: "other" if key == "6" else "found")
    with (
        mock.patch.object(fanout_run, "extract_fanout", fake_fanout),
        mock.patch.object(state_run, "load_windows", lambda s, paths, **_: {"rows_written": {}, "rejects": 0}),
    ):
        result = refresh_from_callbacks(Settings(data_dir=tmp_path, rate_limit=0), client=api)
    [letter] = [json.loads(x) for x in (tmp_path / "callbacks" / DEAD_LETTER_FILE).read_text().splitlines()]
    assert result["dead_lettered"] == 1 and "taobao_refunds 6: the list holds no record for it" in letter["reason"]


def test_a_1688_window_refused_for_good_dead_letters_the_1688_messages_only(tmp_path):
    store = InboxStore(tmp_path / "callbacks", clock=lambda: NOW)
    for message in (
        {"messageType": "ALIBABA_ORDER_STATUS_MODIFY", "messageBody": {"orderId": "41"}, "messagePlatform": 1},
        {"messageType": "TAOBAO_ORDER_STATUS_MODIFY", "messageBody": {"orderId": "42"}, "messagePlatform": 0},
    ):
        raw = _dumps({**message, "timestamp": str(int(NOW * 1000))})
        store.append(raw, json.loads(raw))
    store.close()
    api = FakeApi(lambda key: "error" if key == "window" else "found")
    with (
        mock.patch.object(fanout_run, "extract_fanout", fake_fanout),
        mock.patch.object(paging_run, "extract_window", fake_window),
        mock.patch.object(state_run, "load_windows", lambda s, paths, **_: {"rows_written": {}, "rejects": 0}),
    ):
        result = refresh_from_callbacks(Settings(data_dir=tmp_path, rate_limit=0), client=api)
    [letter] = [json.loads(x) for x in (tmp_path / "callbacks" / DEAD_LETTER_FILE).read_text().splitlines()]
    assert letter["message"]["messageBody"] == {"orderId": "41"}
    assert "1688 order 41: the 1688 order list refused the window: invalid parameter" in letter["reason"]
    assert result["dead_lettered"] == 1 and result["orders"] == 2
    offset = json.loads((tmp_path / "callbacks" / OFFSET_FILE).read_text())
    assert offset["offset"] == (tmp_path / "callbacks" / "inbox.jsonl").stat().st_size
