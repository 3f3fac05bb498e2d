"""The callback receiver (docs/api-contract.md#6-message-callbacks): HMAC, replay window, durable
de-duplicated inbox, the 1000 ms budget, SIGKILL right after the 200; and the consumer's message
parsing and offset."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from tests.factories.callbacks import NOW, SECRET, lines, message, post, serve_app
from tests.helpers import free_port
from xport_etl import jsonutil
from xport_etl.callbacks import cli as callbacks_cli
from xport_etl.callbacks import messages as callbacks_messages
from xport_etl.callbacks.inbox import InboxEntry, InboxStore, read_inbox
from xport_etl.callbacks.receiver import (
    CALLBACK_PATH,
    HEALTH_PATH,
    create_receiver,
    sign_body,
)
from xport_etl.callbacks.refresh import collect, refresh_from_callbacks
from xport_etl.normalize.callback_details import normalize_taobao_order_detail_pages
from xport_etl.settings import Settings
from xport_sandbox.world import World, WorldConfig


@pytest.fixture
def receiver(tmp_path):
    app = create_receiver(SECRET, tmp_path / "callbacks", clock=lambda: NOW)
    with serve_app(app) as url, httpx.Client(base_url=url) as client:
        yield app, client, tmp_path / "callbacks" / "inbox.jsonl"
    app.state.store.close()


# ---- receiving


def test_good_message_is_stored_before_the_answer(receiver):
    app, client, inbox = receiver
    body = message()
    r = post(client, body)
    assert r.status_code == 200 and r.json()["duplicate"] is False
    assert "app;dur=" in r.headers["server-timing"]
    [row] = lines(inbox)
    assert row["id"] == hashlib.sha256(body).hexdigest() == r.json()["id"]
    assert row["type"] == "TAOBAO_ORDER_STATUS_MODIFY" and row["body"].encode() == body
    assert SECRET not in inbox.read_text() and sign_body(SECRET, body) not in inbox.read_text()


@pytest.mark.parametrize("auth", [None, "", "deadbeef", "0" * 64, "not hex at all" * 5])
def test_missing_or_forged_signature_is_401(receiver, auth):
    _app, client, inbox = receiver
    body = message()
    r = post(client, body, secret=None, auth=auth) if auth is not None else post(client, body, secret=None)
    assert r.status_code == 401
    assert not inbox.exists() or inbox.read_text() == ""


def test_signature_over_other_bytes_or_other_secret_is_401(receiver):
    _app, client, _inbox = receiver
    body = message()
    assert post(client, body, secret="another-secret").status_code == 401
    # the same JSON re-serialised is other bytes: the HMAC covers the raw body
    respaced = json.dumps(json.loads(body), indent=1).encode()
    assert post(client, respaced, auth=sign_body(SECRET, body)).status_code == 401
    # upper-case hex of the right HMAC is accepted
    assert post(client, body, auth=sign_body(SECRET, body).upper()).status_code == 200


@pytest.mark.parametrize(
    "ts",
    [
        NOW - 3 * 3600 - 1,  # older than the retry schedule and its margin
        NOW + 601,  # ahead of the clock: a small limit
        "missing",
        "abc",
        "-5",
        "²",  # isdigit() is true, int() refuses it
        "١٧٩٠٠٠٠٠٠٠٠٠٠",  # Arabic-Indic digits: int() would read them
        "1_790_000_000_000",
        "1" * 5000,
        "1e12",
        True,
        None,
        [1],
    ],
)
def test_stale_future_unreadable_or_missing_timestamp_is_401(receiver, ts):
    _app, client, inbox = receiver
    msg = json.loads(message())
    if ts == "missing":
        del msg["timestamp"]
    elif isinstance(ts, float):
        msg["timestamp"] = str(int(ts * 1000))
    else:
        msg["timestamp"] = ts
    assert post(client, json.dumps(msg).encode()).status_code == 401
    assert not inbox.exists() or inbox.read_text() == ""


def test_a_message_two_hours_old_is_accepted_and_its_replay_refused(tmp_path):
    """Xportcn retries a failed push 30 minutes apart up to 5 times, maybe with its first
    timestamp (docs/api-contract.md#6-message-callbacks): the receiver accepts that age, and a
    replay of a stored message is recognised by its id, not by the clock."""
    now = {"t": NOW}
    app = create_receiver(SECRET, tmp_path / "callbacks", clock=lambda: now["t"], seen_horizon_s=60)
    # the id memory outlives the accepted age, whatever the horizon asked for
    assert app.state.store.seen_horizon_s >= 3 * 3600 + 600
    with serve_app(app) as url, httpx.Client(base_url=url) as client:
        late = message(ts=NOW - 2 * 3600)
        first = post(client, late)
        assert first.status_code == 200 and first.json()["duplicate"] is False
        now["t"] += 3600  # the same bytes again an hour later, three hours after their timestamp
        again = post(client, late)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        now["t"] += 1800  # past the accepted age: the clock refuses it
        assert post(client, late).status_code == 401
    app.state.store.close()
    assert len(lines(tmp_path / "callbacks" / "inbox.jsonl")) == 1  # stored once


def test_timestamp_in_seconds_and_as_a_number_is_accepted(receiver):
    _app, client, inbox = receiver
    for ts in (str(int(NOW - 500)), int(NOW * 1000) + 500_000):
        msg = json.loads(message())
        msg["timestamp"] = ts
        assert post(client, json.dumps(msg).encode()).status_code == 200
    assert len(lines(inbox)) == 2


def test_signed_body_that_is_not_a_json_object_is_400(receiver):
    _app, client, _inbox = receiver
    for body in (b"not json", b"[1, 2]", "\xff".encode("latin-1")):
        assert post(client, body).status_code == 400


def test_timestamp_as_a_json_number_with_a_fraction_is_accepted(receiver):
    _app, client, inbox = receiver
    for ts in (f"{int(NOW * 1000)}.0", f"{NOW + 5:.3f}", "1.79e12"):
        msg = message().decode().replace(f'"{int(NOW * 1000)}"', ts)
        assert post(client, msg.encode()).status_code == 200, ts
    assert len(lines(inbox)) == 3
    stale = message().decode().replace(f'"{int(NOW * 1000)}"', f"{int(NOW * 1000) - 11_000_000}.5")
    assert post(client, stale.encode()).status_code == 401


def test_signed_body_nested_past_the_recursion_limit_is_400(receiver):
    _app, client, inbox = receiver
    assert post(client, b"[" * 100_000).status_code == 400
    assert post(client, b'{"a": ' * 50_000).status_code == 400
    assert not inbox.exists() or inbox.read_text() == ""


def test_string_message_body_is_stored_as_received_and_consumed_like_an_object(receiver, tmp_path, monkeypatch):
    from xport_etl.run import state as state_run

    _app, client, inbox = receiver
    as_object = message(body={"orderId": "11", "status": 10})
    as_string = message(body=json.dumps({"orderId": "12", "status": 10}))
    refund = message("TAOBAO_ORDER_REFUND", body=json.dumps(REFUND_BODY, separators=(",", ":")))
    undecodable = message(body='{"orderId": "13"')  # a well-formed, signed envelope: stored
    platform_text = json.loads(message(body=json.dumps({"orderId": "14", "status": 2})))
    platform_text["messagePlatform"] = "0"
    platform_text = json.dumps(platform_text).encode()
    for body in (as_object, as_string, refund, undecodable, platform_text):
        assert post(client, body).status_code == 200
    rows = lines(inbox)
    assert [r["body"].encode() for r in rows] == [
        as_object,
        as_string,
        refund,
        undecodable,
        platform_text,
    ]  # the inbox keeps what was sent, string bodies included
    assert isinstance(json.loads(rows[1]["body"])["messageBody"], str)

    calls = record_fanouts(monkeypatch)
    monkeypatch.setattr(
        state_run, "load_windows", lambda s, paths, **_: {"rows_written": {"fct_orders": 3}, "rejects": 0}
    )
    result = refresh_from_callbacks(Settings(data_dir=tmp_path, rate_limit=0), client=object())
    assert result["messages"] == 5 and result["bad"] == 1 and result["unknown"] == {}
    assert calls == [
        # the refund through the refund list's refundId filter: the row a scheduled run writes
        ("taobao_refunds", "refundId", [{"key": "200000090114253982", "refund_id": "200000090114253982"}]),
        ("taobao_order_detail", None, [{"key": o, "order_id": o} for o in ("11", "12", "14", "5")]),
    ]


def record_fanouts(monkeypatch) -> list:
    """``xport_etl.run.fanout.extract_fanout`` replaced by a recorder of (endpoint, by, keys)."""
    from xport_etl.run import fanout as fanout_run

    calls: list = []

    def fanout(s, endpoint, *, keys, by=None, client=None, **_):
        calls.append((endpoint, by, keys))
        return [f"{endpoint}.json"]

    monkeypatch.setattr(fanout_run, "extract_fanout", fanout)
    return calls


def test_redelivery_is_stored_once_also_after_a_restart(receiver, tmp_path):
    app, client, inbox = receiver
    body = message()
    assert [post(client, body).json()["duplicate"] for _ in range(3)] == [False, True, True]
    assert post(client, message(body={"orderId": "2", "status": 4})).json()["duplicate"] is False
    assert len(lines(inbox)) == 2
    assert app.state.stats["duplicate"] == 2
    app.state.store.close()
    again = create_receiver(SECRET, tmp_path / "callbacks", clock=lambda: NOW)
    with serve_app(again) as url, httpx.Client(base_url=url) as client2:
        assert post(client2, body).json()["duplicate"] is True
        assert client2.get(HEALTH_PATH).json()["stored"] == 2
    again.state.store.close()
    app.state.store = InboxStore(tmp_path / "callbacks")  # for the fixture's close
    assert len(lines(inbox)) == 2


def test_torn_last_line_is_skipped_by_the_reader_and_sealed_on_restart(tmp_path):
    store = InboxStore(tmp_path)
    store.append(message(), json.loads(message()))
    store.close()
    inbox = tmp_path / "inbox.jsonl"
    with open(inbox, "ab") as f:
        f.write(b'{"id": "abc", "received_at": "2026-07-')  # a crash mid-write
    entries, end, corrupt = read_inbox(inbox)
    assert len(entries) == 1 and corrupt == 0 and end < inbox.stat().st_size  # not consumed yet
    store = InboxStore(tmp_path)  # the receiver restarts: the torn tail gets its newline
    second = message(body={"orderId": "77", "status": 0})
    assert store.append(second, json.loads(second))[1] is True
    store.close()
    entries, end, corrupt = read_inbox(inbox)
    assert [e.message["messageBody"].get("orderId") for e in entries] == [
        "1031992847890383164",
        "77",
    ]
    assert corrupt == 1 and end == inbox.stat().st_size
    with pytest.raises(ValueError, match="past the end"):
        read_inbox(inbox, end + 10)


def test_store_is_safe_under_concurrent_appends(tmp_path):
    store = InboxStore(tmp_path)
    bodies = [message(body={"orderId": str(i), "status": 0}) for i in range(40)]

    def work(chunk):
        for b in chunk:
            store.append(b, json.loads(b))

    threads = [threading.Thread(target=work, args=(bodies[i::4] + bodies[:5],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    entries, _end, corrupt = read_inbox(tmp_path / "inbox.jsonl")
    assert corrupt == 0 and sorted(e.id for e in entries) == sorted({hashlib.sha256(b).hexdigest() for b in bodies})


# ---- a receiver over real HTTP


def test_answers_within_the_1000_ms_budget_over_real_http(tmp_path):
    app = create_receiver(SECRET, tmp_path)
    timings = []
    with serve_app(app) as url, httpx.Client(base_url=url) as client:
        for i in range(200):
            body = json.dumps(
                {
                    "messageType": "TAOBAO_ORDER_STATUS_MODIFY",
                    "messageBody": {"orderId": str(i), "status": 10},
                    "messagePlatform": 0,
                    "timestamp": str(int(time.time() * 1000)),
                }
            ).encode()
            started = time.perf_counter()
            r = client.post(CALLBACK_PATH, content=body, headers={"Authorization": sign_body(SECRET, body)})
            timings.append(time.perf_counter() - started)
            assert r.status_code == 200
    app.state.store.close()
    timings.sort()
    p95, worst = timings[int(len(timings) * 0.95)], timings[-1]
    print(f"callback answer: p50 {timings[100] * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {worst * 1000:.1f} ms")
    assert p95 < 1.0 and app.state.stats["stored"] == 200
    assert len(lines(tmp_path / "inbox.jsonl")) == 200


def test_sigkill_right_after_the_200_loses_nothing(tmp_path):
    port = free_port()
    env = {**os.environ, "XPORT_ACCESS_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "xport_etl.cli",
        "callbacks",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
    ]
    url = f"http://127.0.0.1:{port}"

    log_path = tmp_path / "receiver.log"

    def start():
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + HEALTH_PATH, timeout=0.5).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"receiver did not start: {log_path.read_text()}")
            time.sleep(0.05)

    def body_for(order_id: str) -> bytes:
        return json.dumps(
            {
                "messageType": "TAOBAO_ORDER_STATUS_MODIFY",
                "messageBody": {"orderId": order_id, "status": 11},
                "messagePlatform": 0,
                "timestamp": str(int(time.time() * 1000)),
            }
        ).encode()

    inbox = tmp_path / "callbacks" / "inbox.jsonl"
    proc = start()
    try:
        body = body_for("1031992847890383164")
        r = httpx.post(url + CALLBACK_PATH, content=body, headers={"Authorization": sign_body(SECRET, body)})
        os.kill(proc.pid, signal.SIGKILL)  # as soon as the 200 is in
        assert r.status_code == 200
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert hashlib.sha256(body).hexdigest() in {row["id"] for row in lines(inbox)}
        with open(inbox, "ab") as f:  # as if the next write had been torn by the kill
            f.write(b'{"id": "0123", "received_at": "2026')
        proc = start()
        later = body_for("1031992847890383999")
        assert (
            httpx.post(
                url + CALLBACK_PATH,
                content=later,
                headers={"Authorization": sign_body(SECRET, later)},
            ).status_code
            == 200
        )
        assert (
            httpx.post(
                url + CALLBACK_PATH,
                content=body,  # the redelivery is still known
                headers={"Authorization": sign_body(SECRET, body)},
            ).json()["duplicate"]
            is True
        )
    finally:
        proc.kill()
        proc.wait(timeout=10)
    entries, end, corrupt = read_inbox(inbox)
    assert [e.message["messageBody"]["orderId"] for e in entries] == [
        "1031992847890383164",
        "1031992847890383999",
    ]
    assert corrupt == 1 and end == inbox.stat().st_size
    assert SECRET not in inbox.read_text() and SECRET not in log_path.read_text()


# ---- consuming


def entry(mtype, body, platform=0, n=[0]) -> InboxEntry:  # noqa: B006 (a counter for unique ids)
    n[0] += 1
    return InboxEntry(
        f"id{n[0]}",
        "",
        mtype,
        {"messageType": mtype, "messageBody": body, "messagePlatform": platform},
    )


def test_collect_names_distinct_orders_and_refunds():
    same = entry("TAOBAO_ORDER_STATUS_MODIFY", {"orderId": 1031992847890383164, "status": 11})
    wanted = collect(
        [
            same,
            same,
            entry("TAOBAO_ORDER_STATUS_MODIFY", {"orderId": "1031992847890383164", "status": 4}),
            entry(
                "TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY",
                {"salesOrderId": "1031992847890383999", "subOrders": []},
            ),
            entry(
                "TAOBAO_ORDER_REFUND",
                {
                    "orderId": "5",
                    "subOrderId": "6",
                    "refundId": "200000090114253982",
                    "refundStatus": 10,
                    "createTime": 1782624150579,
                    "modifiedTime": 1782624150579,
                },
            ),
            entry(
                "TAOBAO_ORDER_REFUND",
                {
                    "refundId": "200000090114253982",
                    "refundStatus": 20,
                    "modifiedTime": "1782924150579",
                },
            ),
            entry(
                "TAOBAO_ORDER_REFUND",
                {
                    "refundId": "200000090114253982",
                    "refundStatus": 10,
                    "modifiedTime": 1782624150579,
                },
            ),  # late, older: not the newest time
            entry("TAOBAO_ORDER_STATUS_MODIFY", {"orderId": "1; drop table fct_orders; --"}),
            entry("TAOBAO_ORDER_REFUND", {"orderId": "6"}),  # bad: no refundId; its order all the same
            entry("TAOBAO_ORDER_STATUS_MODIFY", "not an object"),
            entry("ALIBABA_ORDER_STATUS_CHANGE", {"orderId": "9"}, platform=1),  # unknown, names an order
            entry("ALIBABA_ORDER_REFUND", {"orderId": 8, "refundId": "TQ77", "refundStatus": "refundsuccess"}, 1),
            entry("SOMETHING_NEW", {}),
            entry("SOMETHING_NEWER", {"refundId": "41", "salesOrderId": "230101120000000007"}),
        ]
    )
    assert wanted.ids("taobao", "order") == ["1031992847890383164", "5", "6"]
    # a price correction names its order by orderNo (salesOrderId), so does any Taobao message
    assert wanted.ids("taobao", "order_no") == ["1031992847890383999", "230101120000000007"]
    assert wanted.ids("taobao", "refund") == ["200000090114253982", "41"]
    assert wanted.ids("1688", "order") == ["8", "9"] and wanted.ids("1688", "refund") == ["TQ77"]
    assert wanted.refund_orders == {"TQ77": "8"}
    assert wanted.bad == 3
    assert wanted.unknown == {"ALIBABA_ORDER_STATUS_CHANGE": 1, "SOMETHING_NEW": 1, "SOMETHING_NEWER": 1}


STATUS_BODY = {"orderId": "1031992847890383164", "status": 11}
PRICE_BODY = {
    "salesOrderId": "1031992847890383999",
    "subOrders": [],
    "purchaseOrderPriceDTO": {"purchaseAmount": 12.5},
}
REFUND_BODY = {
    "orderId": "5",
    "subOrderId": "6",
    "refundId": "200000090114253982",
    "refundStatus": 10,
    "createTime": 1782624150579,
    "modifiedTime": "1782924150579",
}


@pytest.mark.parametrize(
    "mtype, body",
    [
        ("TAOBAO_ORDER_STATUS_MODIFY", STATUS_BODY),
        ("TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY", PRICE_BODY),
        ("TAOBAO_ORDER_REFUND", REFUND_BODY),
    ],
)
@pytest.mark.parametrize("separators", [None, (",", ":")])
def test_collect_reads_a_json_string_body_as_the_object_it_encodes(mtype, body, separators):
    as_object = collect([entry(mtype, body)])
    as_string = collect([entry(mtype, json.dumps(body, separators=separators))])
    assert as_object.bad == 0 and as_object.names
    assert list(as_string.names.values()) == list(as_object.names.values())


def test_undecodable_string_body_is_bad_and_the_batch_goes_on():
    undecodable = [
        "not json",
        "",
        "   ",
        '{"orderId": "1"',  # cut short
        "[1, 2]",
        "null",
        '"1031992847890383164"',
        json.dumps(json.dumps(STATUS_BODY)),  # encoded twice: a string, not the object
        "[" * 100_000,  # nested past the decoder's recursion limit
        json.dumps({"orderId": "1; drop table fct_orders; --"}),
    ]
    wanted = collect(
        [entry("TAOBAO_ORDER_STATUS_MODIFY", json.dumps({"orderId": "41", "status": 1}))]
        + [entry("TAOBAO_ORDER_STATUS_MODIFY", b) for b in undecodable]
        + [entry("TAOBAO_ORDER_REFUND", json.dumps(REFUND_BODY))]
    )
    assert wanted.bad == len(undecodable)
    assert wanted.ids("taobao", "order") == ["41", "5"] and wanted.ids("taobao", "refund") == ["200000090114253982"]


def test_message_body_decodes_objects_and_strings_only():
    assert callbacks_messages.message_body({"messageBody": STATUS_BODY}) == STATUS_BODY
    decoded = callbacks_messages.message_body({"messageBody": json.dumps(PRICE_BODY)})
    assert decoded == PRICE_BODY
    # decimals stay exact, as in the object form read from the inbox
    assert str(decoded["purchaseOrderPriceDTO"]["purchaseAmount"]) == "12.5"
    for odd in (None, 5, [STATUS_BODY], "x", "[" * 100_000, b"{}"):
        assert callbacks_messages.message_body({"messageBody": odd}) is None
    assert callbacks_messages.message_body({}) is None


@pytest.mark.parametrize(
    "platform, taobao",
    [
        (0, True),
        ("0", True),
        (" 0 ", True),
        (None, True),
        (1, False),
        ("1", False),
        (False, False),
        (True, False),
        ("taobao", False),
    ],
)
def test_message_platform_as_number_or_string(platform, taobao):
    wanted = collect([entry("TAOBAO_ORDER_STATUS_MODIFY", STATUS_BODY, platform=platform)])
    assert bool(wanted.ids("taobao", "order")) is taobao
    assert wanted.unknown == ({} if taobao else {"TAOBAO_ORDER_STATUS_MODIFY": 1})
    # a Taobao type sent as 1688 is not a type known there, but its order is a 1688 order
    assert bool(wanted.ids("1688", "order")) is (platform is not True and platform in (1, "1"))


def test_order_detail_normaliser_reads_one_taobaoordervo_per_page():
    world = World(WorldConfig(seed=3, orders=50))
    order = world.taobao_orders()[0]

    def env(data, code=200):
        return jsonutil.dumps(
            {"requestId": "r", "code": code, "developId": 1, "msg": "成功", "data": data},
            floats="allow",
        ).encode()

    broken = dict(order, id=None)
    pages = [
        (1, env(order), {"key": str(order["id"]), "order_id": str(order["id"])}),
        (2, env(order), None),
        (3, env(broken), {"key": "42", "order_id": "42"}),
    ]
    rows = normalize_taobao_order_detail_pages(
        pages, endpoint="taobao_order_detail", window_id="w", rejected_at=datetime(2026, 7, 1)
    )
    assert rows.records == 3
    [o] = rows.tables["orders"]
    assert o["order_id"] == str(order["id"]) and o["line_count"] == len(order["subOrderVOS"])
    assert len(rows.tables["order_lines"]) == len(order["subOrderVOS"])
    assert [(r["record_id"], r["reason"]) for r in rows.rejects] == [("42", "missing id")]


def test_offset_advances_only_after_a_successful_publish(tmp_path, monkeypatch):
    from xport_etl.run import state as state_run

    settings = Settings(data_dir=tmp_path, rate_limit=0)
    store = InboxStore(tmp_path / "callbacks")
    for oid in ("11", "12", "11"):
        b = message(body={"orderId": oid, "status": 10})
        store.append(b, json.loads(b))
    store.close()
    calls = record_fanouts(monkeypatch)

    def failing_load(s, paths, **_):
        raise RuntimeError("publish failed")

    monkeypatch.setattr(state_run, "load_windows", failing_load)
    with pytest.raises(RuntimeError):
        refresh_from_callbacks(settings, client=object())
    assert not (tmp_path / "callbacks" / "offset.json").exists()
    monkeypatch.setattr(
        state_run, "load_windows", lambda s, paths, **_: {"rows_written": {"fct_orders": 2}, "rejects": 0}
    )
    result = refresh_from_callbacks(settings, client=object())
    assert result["messages"] == 2 and result["orders"] == 2 and result["refunds"] == 0
    assert calls[-1] == (
        "taobao_order_detail",
        None,
        [{"key": "11", "order_id": "11"}, {"key": "12", "order_id": "12"}],
    )
    offset = json.loads((tmp_path / "callbacks" / "offset.json").read_text())
    assert offset["offset"] == (tmp_path / "callbacks" / "inbox.jsonl").stat().st_size and offset["consumed"] == 2
    calls.clear()
    assert refresh_from_callbacks(settings, client=object())["messages"] == 0 and calls == []


def test_cli_parses_and_helps(capsys):
    from xport_etl.cli import build_parser, main

    parser = build_parser()
    args = parser.parse_args(["callbacks", "serve", "--port", "9000", "--data-dir", "d"])
    assert args.func is callbacks_cli.cmd_serve and args.port == 9000 and args.host == "127.0.0.1"
    args = parser.parse_args(["callbacks", "consume", "--data-dir", "d"])
    assert args.func is callbacks_cli.cmd_consume
    with pytest.raises(SystemExit):
        main(["callbacks", "serve", "--help"])
    assert "example:" in capsys.readouterr().out


# ---- the sandbox's pusher


def test_pusher_signs_retries_redelivers_and_shuffles():
    from xport_sandbox.push import ORDER_STATUS, CallbackPusher

    world = World(WorldConfig(seed=3, orders=300))
    t0 = world.clock
    world.advance(2 * 86_400)
    seen: list[bytes] = []
    failures = {"left": 3}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == sign_body(SECRET, request.content)
        if failures["left"]:
            failures["left"] -= 1
            return httpx.Response(503)
        seen.append(request.content)
        return httpx.Response(200)

    pusher = CallbackPusher(
        world,
        "http://receiver/callbacks",
        SECRET,
        seed=4,
        duplicate_share=0.5,
        transport=httpx.MockTransport(handler),
    )
    messages = pusher.messages_between(t0, world.clock)
    assert {m["messageType"] for m in messages} >= {ORDER_STATUS}
    sent = pusher.push(messages)
    assert all(d.delivered for d in sent) and sum(d.tries for d in sent) == len(sent) + 3
    assert len(sent) > len(messages) and any(d.duplicate for d in sent)
    assert len(set(seen)) == len(messages) and len(seen) == len(sent)
    assert [d.message for d in sent if not d.duplicate] != messages  # shuffled


def test_pusher_sends_half_the_bodies_as_json_strings():
    from xport_sandbox.push import ORDER_REFUND, CallbackPusher

    world = World(WorldConfig(seed=3, orders=300))
    t0 = world.clock
    world.advance(2 * 86_400)
    received: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == sign_body(SECRET, request.content)
        received.append(json.loads(request.content))
        return httpx.Response(200)

    pusher = CallbackPusher(
        world,
        "http://receiver/callbacks",
        SECRET,
        seed=4,
        clock=lambda: NOW,
        transport=httpx.MockTransport(handler),
    )
    messages = pusher.messages_between(t0, world.clock)
    sent = pusher.push(messages)
    first = [d for d in sent if not d.duplicate]
    forms = Counter((m["messageType"], type(m["messageBody"]).__name__) for m in (json.loads(d.body) for d in first))
    per_type = Counter(m["messageType"] for m in messages)
    assert per_type[ORDER_REFUND] > 0 and len(per_type) >= 5, per_type
    for mtype, n in per_type.items():  # the 1st, 3rd, 5th … of each type as a string
        assert (forms[mtype, "str"], forms[mtype, "dict"]) == ((n + 1) // 2, n // 2), mtype
    assert set(Counter(type(m["messageBody"]).__name__ for m in received)) == {"str", "dict"}
    for d in first:
        sent_envelope = json.loads(d.body, parse_float=Decimal)
        raw = sent_envelope["messageBody"]
        body = json.loads(raw, parse_float=Decimal) if isinstance(raw, str) else raw
        assert isinstance(body, dict) and callbacks_messages.message_body(sent_envelope) == body
        assert d.message == json.loads(d.body) or d.message["messageBody"] == raw  # as sent
        assert d.message_body.keys() == body.keys()
    again = CallbackPusher(world, "http://receiver/callbacks", SECRET, seed=4, clock=lambda: NOW)
    assert [json.dumps(m) for m in again.messages_between(t0, world.clock)] == [
        json.dumps(m) for m in messages
    ]  # the same messages in the same forms: the choice is deterministic
    everything = CallbackPusher(world, "x", SECRET, string_body_share=1.0)
    nothing = CallbackPusher(world, "x", SECRET, string_body_share=0.0)
    assert all(isinstance(m["messageBody"], str) for m in everything.messages_between(t0, world.clock))
    assert all(isinstance(m["messageBody"], dict) for m in nothing.messages_between(t0, world.clock))


def test_pusher_pushes_every_change_of_both_platforms_in_a_span():
    """Every order and refund the API shows as changed in a span has a message, the last of which
    carries its state now; a new order's first message is its creation; stamps are the changes'."""
    from datetime import timedelta

    from xport_sandbox.common import CST
    from xport_sandbox.push import CallbackPusher

    config = WorldConfig(
        seed=3,
        orders=600,
        start=datetime(2026, 6, 11, tzinfo=CST),
        refund_rate=0.5,
        refund_rate_1688=0.5,
    )
    world = World(config)
    t0 = world.clock
    world.advance(86_400)
    t1 = world.clock + timedelta(seconds=1)
    messages = CallbackPusher(world, "x", SECRET, seed=1, price_share=0).messages_between(t0, t1)
    last: dict[tuple, object] = {}
    for m in messages:  # in time order
        body = m["messageBody"] if isinstance(m["messageBody"], dict) else json.loads(m["messageBody"])
        assert t0.timestamp() * 1000 <= int(m["timestamp"]) < t1.timestamp() * 1000
        if "refundId" in body:
            last[(m["messagePlatform"], "refund", body["refundId"])] = body["refundStatus"]
        else:
            last.setdefault((m["messagePlatform"], "first", body["orderId"]), body["status"])
            last[(m["messagePlatform"], "order", body["orderId"])] = body["status"]
        last.setdefault((m["messagePlatform"], "named", body["orderId"]), True)

    taobao = world.taobao_orders(update_start=t0, update_end=t1)
    alibaba = [r.get("baseInfo", r) for r in world.alibaba_orders(modify_start=t0, modify_end=t1)]
    assert len(taobao) > 20 and len(alibaba) > 5
    for platform, orders, key in ((0, taobao, "id"), (1, alibaba, "orderId")):
        for order in orders:
            oid = str(order[key])
            assert (platform, "named", oid) in last, oid  # a status or refund message names it
            if (platform, "order", oid) in last:
                status = last[(platform, "order", oid)]
                assert status == (int(order["status"]) if platform == 0 else order["status"]), oid
    created = [o for o in taobao if t0.timestamp() <= datetime.fromisoformat(o["createTime"] + "+08:00").timestamp()]
    assert created and all(last[(0, "first", str(o["id"]))] == 12 for o in created)  # ORDER_BULIDING
    refunds = [r for r in world.taobao_refunds() if t0.timestamp() * 1000 <= int(r["modifiedTime"])]
    assert refunds and all(last[(0, "refund", r["refundId"])] == r["refundStatus"] for r in refunds)
    refunds_1688 = [k for k in last if k[:2] == (1, "refund")]
    assert refunds_1688 and all(world.alibaba_refund(k[2])["status"] == last[k] for k in refunds_1688)
