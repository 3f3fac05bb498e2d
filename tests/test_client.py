"""The client: sorting responses, retries, signing per attempt, rate limiting, no secret leaks."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import zlib
from decimal import Decimal

import httpx
import pytest

from xport_etl.errors import (
    AuthenticationError,
    BadPageError,
    ConfigError,
    FatalError,
    MalformedBodyError,
    RateLimitedError,
    ResponseTooLargeError,
    RetriableError,
    XportError,
    redact_url,
)
from xport_etl.extract.auth import sign
from xport_etl.extract.client import RetryPolicy, XportClient, should_retry
from xport_etl.extract.endpoints import ENDPOINTS
from xport_etl.extract.ratelimit import RateLimiter, limiter_for, reset_limiters
from xport_etl.extract.responses import ApiResponse, classify, parse_retry_after
from xport_etl.settings import Settings, overrides_from_extras

SECRET = "top-secret-value-do-not-leak"
AK = "b" * 32
ORDERS = ENDPOINTS["taobao_orders"]
DETAIL = ENDPOINTS["taobao_order_detail"]


def envelope(code=200, data=None, msg="成功", request_id="req-1"):
    return {"requestId": request_id, "code": code, "developId": "1", "msg": msg, "data": data}


def ok(data=None, **kw):
    return httpx.Response(200, json=envelope(200, data, **kw))


class Server:
    """A scripted MockTransport: answers (or raises) in order, repeating the last one."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


@pytest.fixture
def settings():
    return Settings(access_key=AK, access_secret=SECRET, user_id="7", rate_limit=0)


@pytest.fixture
def sleeps():
    return []


def make_client(settings, server, sleeps, **kw):
    return XportClient(settings, transport=httpx.MockTransport(server), sleep=sleeps.append, **kw)


def test_success_post_body_and_decimal(settings, sleeps):
    body = b'{"requestId":"r9","code":200,"msg":"ok","data":{"records":[{"purchaseAmount":12.50,"n":3}]}}'
    server = Server(httpx.Response(200, content=body))
    with make_client(settings, server, sleeps) as client:
        resp = client.request(ORDERS, body={"pageNo": 1, "pageSize": 100, "status": None, "amount": Decimal("0.10")})
    assert isinstance(resp, ApiResponse)
    assert resp.raw == body
    assert resp.request_id == "r9"
    assert resp.status_code == 200 and resp.attempts == 1
    amount = resp.data["records"][0]["purchaseAmount"]
    assert isinstance(amount, Decimal) and amount == Decimal("12.50")
    req = server.requests[0]
    assert req.method == "POST" and req.url.path == "/open/purchase/page"
    assert req.headers["content-type"] == "application/json"
    assert req.content == b'{"pageNo":1,"pageSize":100,"amount":0.10}'
    assert sleeps == []
    assert client.stats.requests == 1 and client.stats.successes == 1


def test_get_params_in_query(settings, sleeps):
    server = Server(ok({"id": "1"}))
    with make_client(settings, server, sleeps) as client:
        client.request(DETAIL, params={"orderId": "1031992847890383164"})
    req = server.requests[0]
    assert req.method == "GET"
    assert req.url.params["orderId"] == "1031992847890383164"
    assert req.content == b""
    with make_client(settings, server, sleeps) as client, pytest.raises(ValueError):
        client.request(DETAIL, body={"x": 1})


def test_http_429_retry_after_honoured(settings, sleeps):
    server = Server(httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"), ok([]))
    with make_client(settings, server, sleeps) as client:
        resp = client.request(ORDERS)
    assert sleeps == [7.0]
    assert resp.attempts == 2
    assert client.stats.http_429 == 1 and client.stats.retries == 1 and client.stats.requests == 2


def test_retry_after_is_capped(settings, sleeps):
    server = Server(httpx.Response(429, headers={"Retry-After": "3600"}), ok([]))
    with make_client(settings, server, sleeps) as client:
        client.request(ORDERS)
    assert sleeps == [60.0]


def test_parse_retry_after():
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0


def test_503_html_body_retried(settings, sleeps):
    html = httpx.Response(503, headers={"content-type": "text/html"}, text="<html>Bad Gateway</html>")
    server = Server(html, html, ok({"x": 1}))
    with make_client(settings, server, sleeps) as client:
        resp = client.request(ORDERS)
    assert resp.data == {"x": 1} and resp.attempts == 3
    # jittered exponential backoff: 0.5·[0.75, 1], then 1.0·[0.75, 1]
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0
    assert client.stats.http_errors == 2


def test_envelope_500_on_http_200_retried(settings, sleeps):
    server = Server(httpx.Response(200, json=envelope(500, msg="系统错误")), ok([]))
    with make_client(settings, server, sleeps) as client:
        assert client.request(ORDERS).attempts == 2
    assert client.stats.envelope_errors == 1


def test_envelope_429_is_rate_limited(settings, sleeps):
    server = Server(httpx.Response(200, json=envelope(429, msg="too many")), ok([]))
    with make_client(settings, server, sleeps) as client:
        client.request(ORDERS)
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("code", "msg", "hint"),
    [
        (401, "signature error", "XPORT_ACCESS_SECRET"),
        (401, "timestamp expired", "clock"),
        (403, "forbidden", "XPORT_USER_ID"),
    ],
)
def test_envelope_auth_errors_not_retried(settings, sleeps, code, msg, hint):
    server = Server(httpx.Response(200, json=envelope(code, msg=msg, request_id="rid-401")), ok([]))
    with (
        make_client(settings, server, sleeps) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.request(ORDERS)
    assert len(server.requests) == 1 and sleeps == []
    text = str(info.value)
    assert hint in text and "taobao_orders" in text and "rid-401" in text and f"code={code}" in text
    assert info.value.code == code and info.value.attempts == 1
    assert SECRET not in text


def test_http_401_not_retried(settings, sleeps):
    server = Server(httpx.Response(401, text="no"))
    with make_client(settings, server, sleeps) as client, pytest.raises(AuthenticationError):
        client.request(ORDERS)
    assert len(server.requests) == 1


@pytest.mark.parametrize("code", [400, 404, 418])
def test_envelope_fatal_codes(settings, sleeps, code):
    server = Server(httpx.Response(200, json=envelope(code, msg="bad pageSize")))
    with make_client(settings, server, sleeps) as client, pytest.raises(FatalError) as info:
        client.request(ORDERS)
    assert len(server.requests) == 1 and sleeps == []
    assert f"code={code}" in str(info.value) and "bad pageSize" in str(info.value)
    assert not should_retry(info.value)


def test_http_404_html_fatal(settings, sleeps):
    server = Server(httpx.Response(404, text="<h1>not found</h1>"))
    with make_client(settings, server, sleeps) as client, pytest.raises(FatalError, match="404"):
        client.request(ORDERS)
    assert len(server.requests) == 1


def test_connection_error_retried_then_exhausted(settings, sleeps):
    server = Server(httpx.ConnectError("connection refused"))
    with make_client(settings, server, sleeps) as client, pytest.raises(RetriableError) as info:
        client.request(ORDERS)
    assert len(server.requests) == 6
    assert len(sleeps) == 5
    for i, s in enumerate(sleeps):  # 0.5, 1, 2, 4, 8 with jitter in [0.75, 1]
        assert 0.75 * 0.5 * 2**i <= s <= 0.5 * 2**i
    exc = info.value
    assert exc.attempts == 6 and exc.endpoint == "taobao_orders"
    text = str(exc)
    assert "6 attempts" in text and "taobao_orders" in text and "ConnectError" in text
    assert "/open/purchase/page" in text
    assert client.stats.transport_errors == 6 and client.stats.retries == 5


def test_exhausted_envelope_error_names_code_and_request_id(settings, sleeps):
    server = Server(httpx.Response(200, json=envelope(500, msg="busy", request_id="abc123")))
    policy = RetryPolicy(max_tries=3)
    client = make_client(settings, server, sleeps, retry=policy)
    with client, pytest.raises(RetriableError) as info:
        client.request(ORDERS)
    text = str(info.value)
    assert "code=500" in text and "request_id=abc123" in text and "3 attempts" in text
    assert len(server.requests) == 3


def test_read_timeout_and_cut_body_retried(settings, sleeps):
    server = Server(
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        ok([]),
    )
    with make_client(settings, server, sleeps) as client:
        assert client.request(ORDERS).attempts == 3


def test_truncated_json_retried(settings, sleeps):
    cut = httpx.Response(200, content=b'{"requestId":"r","code":200,"data":{"records":[{"id":"1')
    server = Server(cut, ok({"records": []}))
    with make_client(settings, server, sleeps) as client:
        resp = client.request(ORDERS)
    assert resp.attempts == 2 and client.stats.malformed_bodies == 1


def test_non_json_200_exhausted_is_bad_page(settings, sleeps):
    server = Server(httpx.Response(200, text="<html>gateway</html>"))
    client = make_client(settings, server, sleeps, retry=RetryPolicy(max_tries=2))
    with client, pytest.raises(BadPageError) as info:
        client.request(ORDERS)
    assert isinstance(info.value, MalformedBodyError) and isinstance(info.value, RetriableError)
    assert "gateway" in str(info.value)


def test_each_retry_signed_afresh(settings, sleeps):
    server = Server(httpx.Response(503), httpx.Response(429), ok([]))
    with make_client(settings, server, sleeps) as client:
        client.request(ORDERS)
    nonces = [r.headers["nonce-str"] for r in server.requests]
    sigs = [r.headers["signature"] for r in server.requests]
    assert len(set(nonces)) == 3 and len(set(sigs)) == 3
    for r in server.requests:
        h = r.headers
        assert h["signature"] == sign(AK, h["nonce-str"], h["timestamp"], SECRET)
        assert h["user-id"] == "7" and h["access-key"] == AK
        assert SECRET not in str(r.url) and SECRET not in str(dict(h)) and SECRET.encode() not in r.content


def test_secret_not_in_logs_or_reprs(settings, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    server = Server(httpx.Response(503), httpx.ConnectError("boom"), ok([]))
    with make_client(settings, server, sleeps) as client:
        client.request(ORDERS)
        assert SECRET not in repr(client)
        assert SECRET not in repr(client._http.auth)
    assert caplog.records  # the retries were logged
    assert SECRET not in caplog.text


def test_classify_directly():
    req = httpx.Request("GET", "http://x/open/order/detail?orderId=1")
    assert isinstance(classify(httpx.Response(200, json=envelope(200, {}), request=req)), ApiResponse)
    err = classify(httpx.Response(200, json={"status": "ok"}, request=req), "e")
    assert isinstance(err, MalformedBodyError)
    err = classify(httpx.Response(502, content=b"", request=req), "e")
    assert type(err) is RetriableError and err.http_status == 502
    err = classify(httpx.Response(200, json=envelope("500"), request=req), "e")
    assert type(err) is RetriableError and err.code == 500
    err = classify(httpx.Response(429, json=envelope(429), headers={"retry-after": "1"}, request=req))
    assert isinstance(err, RateLimitedError) and err.retry_after == 1.0


def test_redact_url_and_error_text():
    url = "https://u:pw@h/p?orderId=1&signature=ABC&client_secret=zzz&token=t"
    red = redact_url(url)
    assert "pw" not in red and "ABC" not in red and "zzz" not in red and "=t" not in red
    assert "orderId=1" in red
    err = XportError("boom", endpoint="e", code=500, request_id="r", url=url, attempts=3)
    assert "zzz" not in str(err) and "zzz" not in repr(err)
    assert "gave up after 3 attempts" in str(err)


# rate limiting ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            return self.now

    def sleep(self, seconds):
        with self.lock:
            self.now += seconds


def test_limiter_spaces_requests_with_fake_clock():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        limiter.acquire()
    assert clock.now - 100.0 == pytest.approx(1.0)  # 11 requests over ≥ 10/10 s


def test_limiter_burst_and_idle():
    clock = FakeClock()
    limiter = RateLimiter(10, burst=3, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(4)] == [0, 0, 0, pytest.approx(0.1)]
    clock.now += 10  # idle refills the bucket, but never above burst
    assert [limiter.acquire() for _ in range(4)] == [0, 0, 0, pytest.approx(0.1)]


def test_limiter_reserves_distinct_slots_across_threads():
    waits = []
    lock = threading.Lock()

    def record(seconds):
        with lock:
            waits.append(round(seconds, 6))

    limiter = RateLimiter(20, clock=lambda: 0.0, sleep=record)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [round(i / 20, 6) for i in range(1, 10)]  # the first went at once


def test_limiter_unlimited_and_validation():
    assert RateLimiter(0).acquire() == 0 and RateLimiter(None).acquire() == 0
    with pytest.raises(ValueError):
        RateLimiter(-1)


def test_limiter_for_is_shared_per_key():
    reset_limiters()
    a = limiter_for("key-a", 10)
    assert limiter_for("key-a", 10) is a
    assert limiter_for("key-b", 10) is not a
    reset_limiters()


def test_threads_share_the_budget_over_real_time(sleeps, tmp_path):
    reset_limiters()
    rate, n = 50.0, 8
    # (the limiter's state under tmp_path: the default data directory is ./data, the checkout)
    settings = Settings(access_key="c" * 32, access_secret=SECRET, user_id="7", rate_limit=rate, data_dir=tmp_path)
    times = []
    lock = threading.Lock()

    def handler(request):
        with lock:
            times.append(time.monotonic())
        return ok([])

    clients = [XportClient(settings, transport=httpx.MockTransport(handler)) for _ in range(2)]
    assert clients[0].limiter is clients[1].limiter  # one budget per access key
    threads = [threading.Thread(target=clients[i % 2].request, args=(ORDERS,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    assert len(times) == n
    assert max(times) - min(times) >= (n - 1) / rate - 0.01
    reset_limiters()


# ---- the outline: fast parsing for what paging reads, exact data on demand

# (text, whether orjson refuses it: then the exact parser's result is the outline)
OUTLINE_TEXTS = [
    (b'{"a": 12.50, "b": [1, -0, 18446744073709551615, "x\\u00e9"], "c": null, "d": true}', False),
    (b'{"big": 123456789012345678901234567890, "e": 1E2, "neg": -9223372036854775809}', False),
    (b'{"nan": NaN, "s": "x"}', True),
    (b'{"s": "\\ud800"}', True),  # a lone surrogate
    (b'\xef\xbb\xbf{"a": 1.5}', True),  # a UTF-8 byte order mark
    ('{"a": 1.5}'.encode("utf-16"), True),
    (b'{"a": [1, 2', None),  # not JSON: both raise
]


def _approx(value):
    """What the outline holds for an exact value: numbers that are not 64-bit integers as floats."""
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    if isinstance(value, Decimal) or (
        isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64
    ):
        return float(value)
    return value


@pytest.mark.parametrize(("raw", "refused"), OUTLINE_TEXTS)
def test_the_outline_is_the_exact_parse_but_for_numbers_that_are_floats(raw, refused):
    from xport_etl.extract.responses import loads_json, loads_outline

    if refused is None:
        with pytest.raises(ValueError) as exact_error:
            loads_json(raw)
        with pytest.raises(type(exact_error.value)):
            loads_outline(raw)
        return
    exact, outline = loads_json(raw), loads_outline(raw)
    assert repr(outline) == repr(exact if refused else _approx(exact))
    assert refused or repr(outline) != repr(exact)  # each accepted text has a number to approximate


def test_a_response_carries_the_outline_and_parses_exact_data_on_demand(settings, sleeps):
    body = b'{"requestId":"r1","code":200,"msg":"ok","data":{"records":[{"id":123456789012345678901,"amount":0.10}]}}'
    with make_client(settings, Server(httpx.Response(200, content=body)), sleeps) as client:
        resp = client.request(ORDERS, body={"pageNo": 1})
    assert type(resp.outline["records"][0]["amount"]) is float
    assert type(resp.outline["records"][0]["id"]) is float  # beyond 64 bits
    assert resp.data["records"][0] == {"id": 123456789012345678901, "amount": Decimal("0.10")}


@pytest.mark.parametrize("code", [b"2E+2", b"200.0", b"2.0E2"])
def test_an_envelope_code_written_as_a_fraction_classifies_as_the_exact_parse_says(code):
    req = httpx.Request("POST", "https://x/open/purchase/page")
    body = b'{"requestId": 1.5, "code": ' + code + b', "msg": "m", "data": {}}'
    err = classify(httpx.Response(200, content=body, request=req), "e")
    # the exact parse gives code Decimal(...) → its text (not 200): a fatal error naming it
    assert isinstance(err, FatalError) and err.code == str(Decimal(code.decode()))
    assert err.request_id == "1.5"


# ---- what a response may hold: bounded reads, one-line errors (issue 22 item 5)


class Chunks(httpx.SyncByteStream):
    """A streamed body: ``chunk`` repeated ``count`` times (None: for ever); counts what was pulled."""

    def __init__(self, chunk: bytes, count: int | None = None) -> None:
        self.chunk, self.count, self.pulled = chunk, count, 0

    def __iter__(self):
        while self.count is None or self.pulled < self.count:
            self.pulled += 1
            yield self.chunk


def test_a_flood_is_refused_at_the_cap_while_it_streams_and_not_retried(sleeps):
    cap = 256 * 1024
    body = Chunks(b" " * 65536)  # never ends
    server = Server(lambda request: httpx.Response(200, stream=body))
    settings = Settings(rate_limit=0, max_response_bytes=cap)
    with make_client(settings, server, sleeps) as client, pytest.raises(ResponseTooLargeError) as info:
        client.request(ORDERS)
    assert body.pulled == cap // 65536 + 1  # read up to the first byte past the cap, no further
    assert len(server.requests) == 1 and sleeps == []  # the same request would get the same answer
    text = str(info.value)
    assert "XPORT_MAX_RESPONSE_BYTES=262,144" in text and "taobao_orders" in text and "\n" not in text
    assert isinstance(info.value, BadPageError) and not should_retry(info.value)


def test_a_declared_length_over_the_cap_is_refused_before_a_byte_is_read(sleeps):
    body = Chunks(b"{}", count=1)
    server = Server(lambda request: httpx.Response(200, headers={"Content-Length": str(10**12)}, stream=body))
    with make_client(Settings(rate_limit=0), server, sleeps) as client, pytest.raises(ResponseTooLargeError) as info:
        client.request(ORDERS)
    assert body.pulled == 0
    assert "Content-Length 1,000,000,000,000" in str(info.value)


def test_the_default_cap_is_generous_and_a_setting():
    assert Settings().max_response_bytes == 64 << 20
    env = {"XPORT_MAX_RESPONSE_BYTES": "1048576"}
    assert Settings.from_env(env).max_response_bytes == 1 << 20
    assert overrides_from_extras({"max_response_bytes": 1048576}) == {"max_response_bytes": 1 << 20}  # Connection
    for bad in ("0", "-1", "1e9", "abc"):
        with pytest.raises(ConfigError, match="XPORT_MAX_RESPONSE_BYTES"):
            Settings.from_env({"XPORT_MAX_RESPONSE_BYTES": bad})


@pytest.mark.parametrize("timeout", ["inf", "nan", "1e9999", "3601", "0"])
def test_a_request_deadline_is_always_bounded(timeout):
    with pytest.raises(ConfigError, match="XPORT_TIMEOUT must be"):
        Settings.from_env({"XPORT_TIMEOUT": timeout})
    assert Settings.from_env({"XPORT_TIMEOUT": "3600"}).timeout == 3600


def test_the_exact_parser_keeps_long_integers_and_refuses_absurd_nesting_with_a_value_error():
    from xport_etl.extract.responses import loads_json

    assert loads_json(b'{"a": ' + b"9" * 5000 + b"}")["a"] == Decimal("9" * 5000)
    assert loads_json(b'{"a": 1.10, "b": 7}') == {"a": Decimal("1.10"), "b": 7}
    with pytest.raises(ValueError, match="nested too deeply"):
        loads_json(b"[" * 100_000 + b"]" * 100_000)
    assert loads_json(b'{"t": "\xff"}') == {"t": "\udcff"}  # as the normaliser reads it: a reject


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


def _deflate_raw(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(("coding", "pack"), [("gzip", _gzip), ("deflate", zlib.compress), ("deflate", _deflate_raw)])
def test_compressed_answers_are_decoded(sleeps, coding, pack):
    body = json.dumps(envelope(200, {"records": [{"id": "1"}] * 50})).encode()
    packed = pack(body)
    server = Server(
        lambda request: httpx.Response(200, headers={"Content-Encoding": coding}, stream=Chunks(packed, count=1))
    )
    with make_client(Settings(rate_limit=0), server, sleeps) as client:
        resp = client.request(ORDERS)
    assert resp.raw == body and resp.data == {"records": [{"id": "1"}] * 50}
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"


def test_a_compression_bomb_stops_at_the_cap(sleeps):
    cap = 1 << 20
    bomb = _gzip(b'{"code":200,"data":{"records":[' + b" " * (16 * cap) + b"]}}")  # 16 MiB in ~16 KB
    assert len(bomb) < cap // 8
    server = Server(lambda request: httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(bomb, 1)))
    with (
        make_client(Settings(rate_limit=0, max_response_bytes=cap), server, sleeps) as client,
        pytest.raises(ResponseTooLargeError, match="more than 1,048,576 bytes read"),
    ):
        client.request(ORDERS)


def test_a_body_that_does_not_decode_is_malformed_and_retried(sleeps):
    server = Server(
        lambda request: httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(b"not gzip", 1))
    )
    client = make_client(Settings(rate_limit=0), server, sleeps, retry=RetryPolicy(max_tries=2))
    with client, pytest.raises(MalformedBodyError, match="gzip body does not decode"):
        client.request(ORDERS)
    assert len(server.requests) == 2


@pytest.mark.parametrize("code", ['"²"', '"٣"', '"1_0"', "1e9999999", '"' + "9" * 5000 + '"', "[200]", "NaN"])
def test_an_envelope_code_that_is_not_ascii_digits_is_a_fatal_error_naming_it(sleeps, code):
    body = b'{"requestId": "r", "code": ' + code.encode() + b', "msg": "m", "data": {}}'
    server = Server(httpx.Response(200, content=body))
    with make_client(Settings(rate_limit=0), server, sleeps) as client, pytest.raises(FatalError) as info:
        client.request(ORDERS)
    assert isinstance(info.value.code, str) and len(info.value.code) <= 40
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize(("code", "expected"), [('" 500 "', RetriableError), ('"401"', AuthenticationError)])
def test_an_envelope_code_as_a_digit_string_is_that_code(sleeps, code, expected):
    body = b'{"requestId": "r", "code": ' + code.encode() + b', "msg": "m", "data": null}'
    server = Server(httpx.Response(200, content=body))
    client = make_client(Settings(rate_limit=0), server, sleeps, retry=RetryPolicy(max_tries=1))
    with client, pytest.raises(expected):
        client.request(ORDERS)


def test_a_served_message_and_request_id_stay_one_short_line(sleeps):
    body = json.dumps(envelope(404, msg="line\r\nnext " * 100_000, request_id="r" * 1_000_000)).encode()
    server = Server(httpx.Response(200, content=body))
    with make_client(Settings(rate_limit=0), server, sleeps) as client, pytest.raises(FatalError) as info:
        client.request(ORDERS)
    text = str(info.value)
    assert "\n" not in text and "\r" not in text and len(text) < 600
    assert "line next line next" in text and len(info.value.request_id) == 100


def test_bytes_that_are_not_utf8_in_a_record_land_for_the_normaliser_to_reject(sleeps):
    body = b'{"code":200,"data":{"records":[{"id":"1","title":"\xff\xfe"},{"id":"2"}],"total":2}}'
    with make_client(Settings(rate_limit=0), Server(httpx.Response(200, content=body)), sleeps) as client:
        resp = client.request(ORDERS)
    assert resp.raw == body
    assert [r["id"] for r in resp.outline["records"]] == ["1", "2"]


def test_a_record_nested_beyond_the_exact_parser_is_a_bad_page_not_a_recursion_error(sleeps):
    deep = b"[" * 1010 + b"]" * 1010  # orjson reads it, json (the exact parser) cannot
    body = b'{"code":200,"data":{"records":[{"id":"1","x":' + deep + b'}],"total":1.0}}'
    server = Server(httpx.Response(200, content=body))
    with make_client(Settings(rate_limit=0), server, sleeps) as client:
        resp = client.request(ORDERS)
        with pytest.raises(BadPageError, match="cannot be parsed exactly"):
            resp.data  # noqa: B018


def test_a_served_lone_surrogate_or_terminal_escape_is_written_escaped(sleeps):
    body = b'{"requestId": "\\ud800", "code": 404, "msg": "\\u001b[2J\\u001b[31mgone\\udfff", "data": null}'
    server = Server(httpx.Response(200, content=body))
    with make_client(Settings(rate_limit=0), server, sleeps) as client, pytest.raises(FatalError) as info:
        client.request(ORDERS)
    text = str(info.value)
    text.encode("utf-8")  # a ledger or a log writes it: no lone surrogate left
    assert text.isprintable() and "\\x1b[31mgone\\udfff" in text and "request_id=\\ud800" in text
