"""The callback receiver and consumer under abuse (issue 17, items 1-6): a full disk, unsigned and
oversized chunked bodies, the sandbox secret off loopback, slow and idle sockets, messages that can
never be stored or refreshed, and an inbox that would grow for ever."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
from collections import Counter

import httpx
import pytest
import uvicorn

from tests.factories.callbacks import NOW, SECRET, lines, message, post, serve_app
from xport_etl import cli
from xport_etl.callbacks import inbox as callbacks_inbox
from xport_etl.callbacks import receiver as callbacks_receiver
from xport_etl.callbacks import refresh as callbacks_refresh
from xport_etl.callbacks.inbox import (
    DEAD_LETTER_FILE,
    InboxStore,
    read_inbox,
    read_segments,
    rotated_segments,
)
from xport_etl.callbacks.messages import Name
from xport_etl.callbacks.receiver import create_receiver, receiver_config
from xport_etl.callbacks.refresh import refresh_from_callbacks
from xport_etl.errors import FatalError, RetriableError
from xport_etl.settings import Settings


def body_for(order_id: str) -> bytes:
    return message(body={"orderId": order_id, "status": 11})


@contextlib.contextmanager
def serve_limited(app, **limits):
    """The receiver under its real uvicorn configuration (``receiver_config``), on loopback."""
    settings = Settings(**limits)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(receiver_config(app, settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "receiver did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.store.close()


def closed_within(conn: socket.socket, seconds: float, dribble: bytes = b"") -> float | None:
    """Seconds until the server closes ``conn`` (None if it is still open after ``seconds``),
    sending ``dribble`` one byte every 0.1 s meanwhile; whatever the server answers is read."""
    started = time.monotonic()
    conn.settimeout(0.1)
    sent = 0
    while time.monotonic() - started < seconds:
        if sent < len(dribble):
            try:
                conn.send(dribble[sent : sent + 1])
            except OSError:
                return time.monotonic() - started
            sent += 1
        try:
            if conn.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    return None


# ---- 1. a full disk


def test_disk_full_write_is_cut_back_and_the_message_can_be_sent_again(tmp_path, monkeypatch):
    store = InboxStore(tmp_path)
    real = callbacks_inbox._write_all
    faults = {"left": 1}

    def torn_write(fd, data):
        if faults["left"]:
            faults["left"] -= 1
            real(fd, data[: len(data) // 2])  # half of the line reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(callbacks_inbox, "_write_all", torn_write)
    first, second = body_for("1"), body_for("2")
    with pytest.raises(OSError):
        store.append(first, json.loads(first))
    assert store.append(second, json.loads(second)) == (callbacks_inbox.content_id(second), True)
    # the redelivery of the failed message is stored, not answered "duplicate"
    assert store.append(first, json.loads(first))[1] is True
    store.close()
    entries, end, corrupt = read_inbox(tmp_path / "inbox.jsonl")
    assert [e.message["messageBody"]["orderId"] for e in entries] == ["2", "1"]
    assert corrupt == 0 and end == (tmp_path / "inbox.jsonl").stat().st_size


def test_failed_fsync_and_a_failed_cut_leave_no_torn_line(tmp_path, monkeypatch):
    store = InboxStore(tmp_path)
    real_fsync, real_truncate = os.fsync, os.ftruncate
    faults = {"fsync": 1, "truncate": 1}

    def fsync(fd):
        if faults["fsync"]:
            faults["fsync"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    def ftruncate(fd, size):
        if faults["truncate"]:
            faults["truncate"] -= 1
            raise OSError(errno.EIO, "I/O error")
        real_truncate(fd, size)

    monkeypatch.setattr(callbacks_inbox.os, "fsync", fsync)
    monkeypatch.setattr(callbacks_inbox.os, "ftruncate", ftruncate)
    first, second = body_for("1"), body_for("2")
    with pytest.raises(OSError):
        store.append(first, json.loads(first))  # written, not fsynced, and not cut at once
    assert callbacks_inbox.content_id(first) in (tmp_path / "inbox.jsonl").read_text()  # for now
    assert store.append(second, json.loads(second))[1] is True  # the cut comes first
    assert store.append(first, json.loads(first))[1] is True
    store.close()
    assert [json.loads(r["body"])["messageBody"]["orderId"] for r in lines(tmp_path / "inbox.jsonl")] == ["2", "1"]


def test_disk_full_over_http_is_500_then_the_next_and_the_resend_are_stored(tmp_path, monkeypatch):
    app = create_receiver(SECRET, tmp_path / "callbacks", clock=lambda: NOW)
    real = callbacks_inbox._write_all
    faults = {"left": 1}

    def torn_write(fd, data):
        if faults["left"]:
            faults["left"] -= 1
            real(fd, data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(callbacks_inbox, "_write_all", torn_write)
    first, second = body_for("1"), body_for("2")
    with serve_app(app) as url, httpx.Client(base_url=url) as client:
        assert post(client, first).status_code == 500
        assert post(client, second).json()["duplicate"] is False
        assert post(client, first).json()["duplicate"] is False
    app.state.store.close()
    entries, _end, corrupt = read_inbox(tmp_path / "callbacks" / "inbox.jsonl")
    assert len(entries) == 2 and corrupt == 0 and app.state.stats["store_failed"] == 1


# ---- 2. unsigned and oversized bodies


CHUNKED = (
    b"POST /callbacks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
)


def answer_to(addr, head: bytes, chunks: int, size: int = 1024) -> bytes:
    """Send ``head`` and up to ``chunks`` chunks of ``size`` bytes (never the last chunk), and
    return what the server answers meanwhile (b"" if it waits for more)."""
    with socket.create_connection(addr, timeout=3) as conn:
        conn.sendall(head + b"\r\n")
        conn.settimeout(0.2)
        got = b""
        for _ in range(chunks):
            with contextlib.suppress(OSError):
                conn.sendall(b"%x\r\n" % size + b"x" * size + b"\r\n")
            with contextlib.suppress(TimeoutError):
                got += conn.recv(4096)
            if got:
                break
        return got


def test_unsigned_chunked_body_is_refused_before_it_is_read(tmp_path):
    app = create_receiver(SECRET, tmp_path, clock=lambda: NOW)
    with serve_limited(app, callback_read_timeout=5) as addr:
        got = answer_to(addr, CHUNKED, chunks=5)
        assert got.startswith(b"HTTP/1.1 401"), got
        malformed = answer_to(addr, CHUNKED + b"Authorization: not-a-signature\r\n", chunks=5)
        assert malformed.startswith(b"HTTP/1.1 401"), malformed
    assert app.state.stats["unauthorized"] == 2


def test_chunked_body_past_the_cap_is_413_while_it_streams(tmp_path):
    app = create_receiver(SECRET, tmp_path, clock=lambda: NOW, max_body=4096)
    head = CHUNKED + b"Authorization: " + b"0" * 64 + b"\r\n"
    with serve_limited(app, callback_read_timeout=5) as addr:
        got = answer_to(addr, head, chunks=20)  # 20 KiB offered, never finished
        assert got.startswith(b"HTTP/1.1 413"), got
        assert b"connection: close" in got.lower()
        with httpx.Client(base_url=f"http://{addr[0]}:{addr[1]}") as client:
            big = message(body={"orderId": "1", "pad": "x" * 5000})
            assert post(client, big).status_code == 413  # a Content-Length past the cap
            assert post(client, body_for("1")).status_code == 200
    assert app.state.stats["too_large"] == 2


# ---- 3. the sandbox secret


def test_serve_refuses_the_sandbox_secret_off_loopback(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("XPORT_ACCESS_SECRET", raising=False)
    monkeypatch.delenv("XPORT_BASE_URL", raising=False)
    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(self))
    argv = ["callbacks", "serve", "--port", "0", "--data-dir", str(tmp_path)]
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.com"):
        assert cli.main([*argv, "--host", host]) == 2
        error, hint = capsys.readouterr().err.strip().splitlines()  # an error line and a hint line
        assert error.startswith("error: refusing") and hint.startswith("hint: ") and "XPORT_ACCESS_SECRET" in hint
    assert started == []
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert cli.main([*argv, "--host", host]) == 0
    assert len(started) == 4
    monkeypatch.setenv("XPORT_ACCESS_SECRET", "a-real-secret")
    assert cli.main([*argv, "--host", "0.0.0.0"]) == 0 and len(started) == 5


def test_cli_exit_code_for_the_sandbox_secret_off_loopback(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("XPORT_ACCESS_SECRET", raising=False)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: pytest.fail("started"))
    code = cli.main(["callbacks", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert code == 2 and "refusing" in capsys.readouterr().err


# ---- 4. slow and idle clients


def test_idle_and_dribbling_connections_are_closed_within_the_read_timeout(tmp_path):
    app = create_receiver(SECRET, tmp_path, clock=lambda: NOW)
    with serve_limited(app, callback_read_timeout=1.0, callback_keep_alive=1.0) as addr:
        idle = [socket.create_connection(addr, timeout=3) for _ in range(20)]
        head = b"POST /callbacks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        body_slow = socket.create_connection(addr, timeout=3)
        body_slow.sendall(
            b"POST /callbacks HTTP/1.1\r\nHost: x\r\nAuthorization: " + b"0" * 64 + b"\r\nContent-Length: 500\r\n\r\n"
        )
        dribbler = socket.create_connection(addr, timeout=3)
        try:
            took = closed_within(dribbler, 4.0, dribble=head)
            assert took is not None and took < 2.5, took  # headers dribbled: cut off
            took = closed_within(body_slow, 4.0, dribble=b"{" * 100)
            assert took is not None and took < 2.5, took  # a body dribbled: cut off
            for conn in idle:  # opened and never used
                assert closed_within(conn, 1.0) is not None
            # a well-behaved client is served, and its kept-alive connection closed when idle
            with httpx.Client(base_url=f"http://{addr[0]}:{addr[1]}") as client:
                for oid in ("1", "2", "3"):
                    assert post(client, body_for(oid)).status_code == 200
            with socket.create_connection(addr, timeout=3) as kept:
                req = body_for("4")
                kept.sendall(
                    b"POST /callbacks HTTP/1.1\r\nHost: x\r\nAuthorization: "
                    + callbacks_receiver.sign_body(SECRET, req).encode()
                    + b"\r\nContent-Length: %d\r\n\r\n" % len(req)
                    + req
                )
                took = closed_within(kept, 4.0)
            assert took is not None and took < 2.5, took
        finally:
            for conn in [*idle, body_slow, dribbler]:
                conn.close()
    assert len(lines(tmp_path / "inbox.jsonl")) == 4


def test_complete_requests_past_the_limit_are_answered_503_idle_sockets_never(tmp_path, monkeypatch):
    """The budget's second half: complete requests handled at once. Idle connections do not count
    (they only ever cost each other their places); requests in progress past the limit get 503."""
    app = create_receiver(SECRET, tmp_path, clock=lambda: NOW)
    gate, entered = threading.Event(), threading.Event()
    real_append = app.state.store.append

    def slow_append(raw, msg):
        entered.set()
        gate.wait(5)
        return real_append(raw, msg)

    monkeypatch.setattr(app.state.store, "append", slow_append)
    with serve_limited(app, callback_read_timeout=3.0, callback_max_connections=4) as addr:
        base = f"http://{addr[0]}:{addr[1]}"
        idle = [socket.create_connection(addr, timeout=3) for _ in range(8)]
        try:
            time.sleep(0.2)
            with httpx.Client(base_url=base) as client:
                monkeypatch.setattr(app.state.store, "append", real_append)
                assert post(client, body_for("1")).status_code == 200  # 8 idle sockets: no 503
            monkeypatch.setattr(app.state.store, "append", slow_append)
            answers: list[int] = []

            def one(oid: str) -> None:
                with httpx.Client(base_url=base, timeout=10) as client:
                    answers.append(post(client, body_for(oid)).status_code)

            held = [threading.Thread(target=one, args=(str(i),)) for i in range(10, 14)]
            for t in held:
                t.start()
            assert entered.wait(5)
            deadline = time.monotonic() + 5
            while app.state.active < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert app.state.active == 4
            one("20")  # a fifth while four are being handled
            gate.set()
            for t in held:
                t.join(10)
        finally:
            for conn in idle:
                conn.close()
    assert sorted(answers) == [200, 200, 200, 200, 503] and app.state.stats["busy"] == 1


# ---- 4b. starving the receiver (issue 22, item 4)


def test_idle_connections_cannot_starve_signed_posts(tmp_path):
    """500 connections that send nothing are held open while 100 signed posts arrive, 10 at a
    time: every post is answered 200 within the documented 1,000 ms. (uvicorn's own limit counts
    idle connections: each of these posts was answered 503.)"""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    app = create_receiver(SECRET, tmp_path, clock=lambda: NOW)
    # the default budget (200 places, 50 an address); deadlines longer than the test
    with serve_limited(app, callback_read_timeout=30.0, callback_keep_alive=30.0) as addr:
        idle = [socket.create_connection(addr, timeout=3) for _ in range(500)]
        timings: list[tuple[int, float]] = []

        def post_some(start: int) -> None:
            with httpx.Client(base_url=f"http://{addr[0]}:{addr[1]}", timeout=5) as client:
                for i in range(start, start + 10):
                    began = time.perf_counter()
                    try:
                        status = post(client, body_for(str(i))).status_code
                    except httpx.TransportError:
                        status = 0
                    timings.append((status, time.perf_counter() - began))

        try:
            posters = [threading.Thread(target=post_some, args=(n * 10,)) for n in range(10)]
            for t in posters:
                t.start()
            for t in posters:
                t.join(30)
        finally:
            for conn in idle:
                conn.close()
    statuses = [status for status, _ in timings]
    assert len(timings) == 100 and statuses == [200] * 100, Counter(statuses)
    slowest = max(seconds for _, seconds in timings)
    print(f"100 signed posts beside 500 idle connections: slowest {slowest * 1000:.0f} ms")
    assert slowest < 1.0
    assert app.state.stats["evicted"] >= 450  # the idle ones made room; only 50 an address stay
    assert len(lines(tmp_path / "inbox.jsonl")) == 100


def test_the_budget_closes_the_oldest_untrusted_connection_of_the_crowded_address():
    from xport_etl.callbacks.receiver import ConnectionBudget

    budget, closed = ConnectionBudget(limit=4, per_address=2), []
    budget.add("a1", "A", closed.append, trusted=True)
    budget.add("a2", "A", closed.append)
    budget.add("a3", "A", closed.append)  # A is full: its oldest untrusted goes, not a1
    assert closed == ["a2"]
    budget.add("b1", "B", closed.append)
    budget.add("c1", "C", closed.append)  # 4 places taken: a1, a3, b1, c1
    budget.add("d1", "D", closed.append)  # full: the oldest untrusted of all
    assert closed == ["a2", "a3"] and len(budget) == 4 and "a1" in budget
    budget.remove("b1")
    budget.add("a4", "A", closed.append)
    budget.add("a5", "A", closed.append)  # A's untrusted first; a1 only when it is all A has
    assert closed == ["a2", "a3", "a4"] and budget.stats["evicted"] == 3


# ---- 5. messages that can never be stored or refreshed


def test_messages_that_cannot_be_copied_are_stored_safely_not_500(tmp_path, monkeypatch):
    from xport_etl.run import fanout as fanout_run
    from xport_etl.run import state as state_run

    monkeypatch.setattr(fanout_run, "extract_fanout", fake_fanout)
    monkeypatch.setattr(state_run, "load_windows", lambda s, paths, **_: {"rows_written": {}, "rejects": 0})
    app = create_receiver(SECRET, tmp_path / "callbacks", clock=lambda: NOW)
    surrogate = message().replace(b'"TAOBAO_ORDER_STATUS_MODIFY"', b'"\\ud800"')
    deep = json.loads(message())
    deep = json.dumps(deep).replace('"messagePlatform": 0', '"messagePlatform": ' + "[" * 800 + "]" * 800).encode()
    with serve_app(app) as url, httpx.Client(base_url=url) as client:
        for body in (surrogate, deep):
            first, again = post(client, body), post(client, body)
            assert first.status_code == 200 and again.json()["duplicate"] is True, first.text
    app.state.store.close()
    rows = lines(tmp_path / "callbacks" / "inbox.jsonl")
    assert [(r["type"], r["platform"]) for r in rows] == [
        (None, 0),
        ("TAOBAO_ORDER_STATUS_MODIFY", None),
    ]
    assert [r["body"].encode() for r in rows] == [surrogate, deep]  # the body exactly as sent
    result = refresh_from_callbacks(Settings(data_dir=tmp_path, rate_limit=0), client=FakeDetail({}))
    assert result["messages"] == 2 and result["unknown"] == {
        "'\\ud800'": 1,
        "TAOBAO_ORDER_STATUS_MODIFY": 1,
    }
    # the unknown type names an order: refreshed all the same; the unknown platform names nothing
    assert result["orders"] == 1 and result["dead_lettered"] == 0
    json.dumps(result, ensure_ascii=False).encode("utf-8")  # printable


class FakeDetail:
    """A client whose detail calls fail for some keys: ``errors`` maps a key to an exception."""

    def __init__(self, errors):
        self.errors = errors
        self.calls = []

    def request(self, endpoint, *, params=None, body=None):
        args = params or body
        key = args.get(endpoint.detail_param) or args.get("refundId") or args.get("orderNo")
        self.calls.append(key)
        if key in self.errors:
            raise self.errors[key]
        return FakeAnswer(key)


class FakeAnswer:
    """A detail answer holding one record (what the consumer's tracker reads of it)."""

    def __init__(self, key):
        self.key = key
        self.outline = self.data = {"id": key}


def fake_fanout(settings, endpoint, *, keys, by=None, client=None, **_):
    """``xport_etl.run.fanout.extract_fanout``'s contract: one call a key, a 404 skipped, any other error
    fails the whole call."""
    from xport_etl.extract.endpoints import endpoints_for

    spec = endpoints_for(settings.assumptions)[endpoint]
    landed = []
    for row in keys:
        try:
            landed.append(client.request(spec, params={by or spec.detail_param: row["key"]}).key)
        except FatalError as exc:
            if exc.code != 404:
                raise
    return [f"{endpoint}:{','.join(landed)}"] if landed else []


def fill_inbox(tmp_path, bodies):
    store = InboxStore(tmp_path / "callbacks")
    for b in bodies:
        store.append(b, json.loads(b))
    store.close()


def dead_letters(tmp_path) -> list[dict]:
    path = tmp_path / "callbacks" / DEAD_LETTER_FILE
    return lines(path) if path.exists() else []


def test_poison_and_permanently_failing_messages_are_dead_lettered_and_the_offset_moves(tmp_path, monkeypatch):
    from xport_etl.run import fanout as fanout_run
    from xport_etl.run import state as state_run

    settings = Settings(data_dir=tmp_path, rate_limit=0)
    fill_inbox(
        tmp_path,
        [
            body_for("11"),
            body_for("12"),
            body_for("13"),
            body_for("14"),
            message(body={"orderId": "no; such id"}),
            message(body="{not json"),
        ],
    )
    with open(tmp_path / "callbacks" / "inbox.jsonl", "ab") as f:
        f.write(b'{"id": 5, "garbage": true}\n')  # not a message
    published = []
    monkeypatch.setattr(fanout_run, "extract_fanout", fake_fanout)
    monkeypatch.setattr(
        state_run,
        "load_windows",
        lambda s, paths, **_: published.append(paths) or {"rows_written": {"fct_orders": 1}, "rejects": 1},
    )
    monkeypatch.setattr(
        callbacks_refresh, "_rejected_keys", lambda s, paths: {Name("taobao", "order", "11"): "rejected: missing id"}
    )
    client = FakeDetail(
        {
            "13": FatalError("invalid orderId", code=400),
            "14": FatalError("order not found", code=404),
        }
    )
    result = refresh_from_callbacks(settings, client=client)
    assert published == [["taobao_order_detail:11,12"]]  # the others did not hold it back
    assert result["dead_lettered"] == 6 and result["corrupt"] == 1 and result["bad"] == 2
    reasons = {
        (row.get("message") or {}).get("messageBody", {}).get("orderId")
        if isinstance((row.get("message") or {}).get("messageBody"), dict)
        else None: row["reason"]
        for row in dead_letters(tmp_path)
    }
    assert "invalid orderId" in reasons["13"] and "code 400" in reasons["13"]
    assert "code 404" in reasons["14"] and reasons["11"] == "rejected: missing id"
    assert "no usable orderId" in reasons["no; such id"]
    assert any("unreadable" in r["reason"] for r in dead_letters(tmp_path))
    offset = json.loads((tmp_path / "callbacks" / "offset.json").read_text())
    assert offset["offset"] == (tmp_path / "callbacks" / "inbox.jsonl").stat().st_size
    assert refresh_from_callbacks(settings, client=client)["messages"] == 0


def test_a_dead_letter_keeps_the_message_numbers_exact_and_is_ascii(tmp_path):
    """A dead letter can be replayed as it came: ``4.40`` stays the number 4.40 (not the string
    "4.40", not 4.4), and the line is ASCII whatever the message held."""
    raw = message(body={"orderId": "no; such id", "title": "按摩"}).replace(
        b'"messagePlatform"', b'"refundFee": 4.40, "messagePlatform"'
    )
    fill_inbox(tmp_path, [raw])
    result = refresh_from_callbacks(Settings(data_dir=tmp_path, rate_limit=0), client=FakeDetail({}))
    assert result["dead_lettered"] == 1
    text = (tmp_path / "callbacks" / DEAD_LETTER_FILE).read_bytes()
    assert text.isascii() and b'"refundFee":4.40' in text
    (letter,) = dead_letters(tmp_path)
    assert letter["message"]["messageBody"]["title"] == "按摩"


def test_transient_failure_stops_the_batch_and_keeps_the_offset(tmp_path, monkeypatch):
    from xport_etl.run import fanout as fanout_run
    from xport_etl.run import state as state_run

    settings = Settings(data_dir=tmp_path, rate_limit=0)
    fill_inbox(tmp_path, [body_for("11"), body_for("15")])
    monkeypatch.setattr(fanout_run, "extract_fanout", fake_fanout)
    monkeypatch.setattr(state_run, "load_windows", lambda s, paths, **_: pytest.fail("published"))
    client = FakeDetail({"15": RetriableError("HTTP 503", code=503)})
    with pytest.raises(RetriableError):
        refresh_from_callbacks(settings, client=client)
    assert not (tmp_path / "callbacks" / "offset.json").exists()
    assert dead_letters(tmp_path) == []


# ---- 6. bounded inbox and memory


def test_inbox_rotates_by_size_and_the_consumer_reads_every_segment(tmp_path, monkeypatch):
    from xport_etl.run import fanout as fanout_run
    from xport_etl.run import state as state_run

    cdir = tmp_path / "callbacks"
    bodies = [body_for(str(i)) for i in range(30)]
    store = InboxStore(cdir, rotate_bytes=2000)
    for b in bodies[:20]:
        store.append(b, json.loads(b))
    store.close()
    segments = rotated_segments(cdir)
    assert len(segments) >= 3
    assert all(callbacks_inbox.segment_path(cdir, s).stat().st_size <= 2000 for s in segments)
    store = InboxStore(cdir, rotate_bytes=2000)  # a restart remembers the rotated segments' ids
    assert store.append(bodies[0], json.loads(bodies[0]))[1] is False
    store.close()
    batch = read_segments(cdir, 1, 0)
    assert [e.message["messageBody"]["orderId"] for e in batch.entries] == [str(i) for i in range(20)]

    calls = []
    monkeypatch.setattr(
        fanout_run,
        "extract_fanout",
        lambda s, endpoint, *, keys, by=None, client=None, **_: calls.append([k["key"] for k in keys]) or ["p"],
    )
    monkeypatch.setattr(state_run, "load_windows", lambda s, p, **_: {"rows_written": {}, "rejects": 0})
    keep = Settings(data_dir=tmp_path, rate_limit=0)
    assert refresh_from_callbacks(keep, client=object())["messages"] == 20
    assert rotated_segments(cdir) == segments  # within the dedup horizon: kept
    store = InboxStore(cdir, rotate_bytes=2000)
    for b in bodies[20:]:
        store.append(b, json.loads(b))
    store.close()
    drop = Settings(data_dir=tmp_path, rate_limit=0, callback_dedup_horizon=600, callback_max_age=1800)

    def age_segments(seconds: float) -> None:
        for seg in rotated_segments(cdir):
            os.utime(callbacks_inbox.segment_path(cdir, seg), (time.time() - seconds,) * 2)

    # older than the dedup horizon, but not than the accepted age: the ids must still be known
    age_segments(1000)
    result = refresh_from_callbacks(drop, client=object())
    assert result["messages"] == 10 and sorted(calls[-1], key=int) == [str(i) for i in range(20, 30)]
    offset = json.loads((cdir / "offset.json").read_text())
    assert offset["segment"] == callbacks_inbox.active_segment(cdir)
    assert set(segments) < set(rotated_segments(cdir))  # kept
    age_segments(2401)  # past the id memory: the accepted age and the 600 s allowed ahead
    assert refresh_from_callbacks(drop, client=object())["messages"] == 0
    assert rotated_segments(cdir) == []  # consumed past and older than the horizon: removed
    assert refresh_from_callbacks(drop, client=object())["messages"] == 0
    store = InboxStore(cdir, rotate_bytes=2000)
    new = body_for("30")
    assert store.append(new, json.loads(new))[1] is True
    store.close()
    assert refresh_from_callbacks(drop, client=object())["messages"] == 1


def test_seen_ids_are_kept_for_the_dedup_horizon_only(tmp_path):
    now = {"t": NOW}
    store = InboxStore(tmp_path, seen_horizon_s=3600, clock=lambda: now["t"])
    first, second = body_for("1"), body_for("2")
    store.append(first, json.loads(first))
    now["t"] += 1800
    assert store.append(first, json.loads(first))[1] is False  # a redelivery 30 min later
    store.append(second, json.loads(second))
    now["t"] += 2000  # the first is past the horizon, the second is not
    assert list(store.seen) == [callbacks_inbox.content_id(first), callbacks_inbox.content_id(second)]
    third = body_for("3")
    store.append(third, json.loads(third))
    assert callbacks_inbox.content_id(first) not in store.seen and len(store.seen) == 2
    store.close()
    again = InboxStore(tmp_path, seen_horizon_s=3600, clock=lambda: now["t"])
    assert set(again.seen) == {callbacks_inbox.content_id(second), callbacks_inbox.content_id(third)}
    again.close()
