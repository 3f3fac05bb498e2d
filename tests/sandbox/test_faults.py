"""The sandbox's fault profiles: each kind is injected as docs/api-contract.md#22-the-gateway
describes a misbehaving gateway, only on API endpoints, counted in ``/_sandbox/stats``,
deterministically per seed; the client sorts every kind as retriable."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.factories.sandbox import SMALL, signed_headers
from xport_etl.errors import MalformedBodyError, RateLimitedError, RetriableError
from xport_etl.extract.client import RetryPolicy, XportClient
from xport_etl.extract.endpoints import ENDPOINTS
from xport_etl.settings import Settings
from xport_sandbox.faults import (
    APP_SERVES,
    FAULT_KINDS,
    LIST_PATHS,
    PROFILES,
    FaultInjector,
    FaultProfile,
)
from xport_sandbox.testing import SandboxServer

PAGE = "/open/purchase/page"
DETAIL = "/open/order/detail"
BODY = {"pageNo": 1, "pageSize": 5}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SMALL) as s:
        yield s


@pytest.fixture
def http(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=0.5) as c:
        yield c
    server.set_faults("none")


def always(kind: str, path: str = PAGE, **kw) -> FaultProfile:
    return FaultProfile(f"always-{kind}", always={path: kind}, **kw)


def page(http: httpx.Client) -> httpx.Response:
    return http.post(PAGE, json=BODY, headers=signed_headers())


def delta(before: dict, after: dict) -> tuple[int, dict[str, int]]:
    faults = Counter(after["faults"])
    faults.subtract(before["faults"])
    return after["requests"] - before["requests"], {k: n for k, n in faults.items() if n}


# -- each kind, as described ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "content_type", "body_check"),
    [
        ("http_503_html", 503, "text/html", lambda b: b.startswith(b"<html>") and b"503" in b),
        ("http_502_empty", 502, None, lambda b: b == b""),
        ("http_504_empty", 504, None, lambda b: b == b""),
    ],
)
def test_gateway_errors(server, http, kind, status, content_type, body_check) -> None:
    server.set_faults(always(kind))
    before = server.stats()
    r = page(http)
    assert r.status_code == status
    assert r.headers.get("content-type") == content_type
    assert body_check(r.content), r.content
    assert delta(before, server.stats()) == (1, {kind: 1})


@pytest.mark.parametrize(("kind", "code"), [("envelope_500", 500), ("envelope_429", 429)])
def test_envelope_errors_inside_http_200(server, http, kind, code) -> None:
    server.set_faults(always(kind))
    r = page(http)
    assert r.status_code == 200 and "retry-after" not in r.headers
    envelope = r.json()
    assert envelope["code"] == code and envelope["data"] is None and envelope["msg"]
    assert len(envelope["requestId"]) == 32 and envelope["developId"]


def test_http_429_with_retry_after(server, http) -> None:
    server.set_faults(always("http_429"))
    r = page(http)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"


def test_drop_closes_the_connection_without_a_response(server, http) -> None:
    server.set_faults(always("drop"))
    before = server.stats()
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        page(http)
    assert delta(before, server.stats()) == (1, {"drop": 1})
    server.set_faults("none")
    assert page(http).json()["code"] == 200  # the client's pool recovers on a new connection


def test_drop_reads_a_late_body_first_so_the_close_is_clean_not_a_reset(server) -> None:
    """A body that arrives after the headers is read before the close: the client sees the
    connection end (EOF, httpx's RemoteProtocolError), never a TCP reset (ReadError), which
    is what a close over unread bytes sends."""
    server.set_faults(always("drop"))
    body = json.dumps(BODY).encode()
    head = (
        f"POST {PAGE} HTTP/1.1\r\nhost: sandbox\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed_headers().items()) + "\r\n"
    ).encode()
    host, port = server.base_url.split("//")[1].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(head)
            time.sleep(0.3)  # the app has the headers and decides to drop
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):  # still open: it waits for the body
                sock.recv(1024)
            sock.setblocking(True)
            sock.sendall(body)
            assert sock.recv(1024) == b""  # then EOF, nothing written
    finally:
        server.set_faults("none")


def test_cutoff_sends_half_the_json_with_a_matching_content_length(server, http) -> None:
    server.set_faults("none")
    whole = page(http).content
    server.set_faults(always("cutoff"))
    before = server.stats()
    r = page(http)
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == len(r.content) == len(whole) // 2
    assert r.content.startswith(b'{"requestId":"')
    with pytest.raises(ValueError):
        json.loads(r.content)
    # the application served it (so it counts once, with its code), the fault mangled it
    after = server.stats()
    assert delta(before, after) == (1, {"cutoff": 1})
    assert after["endpoints"][PAGE]["codes"]["200"] >= 1


def test_slow_answers_after_the_client_gave_up(server, http) -> None:
    server.set_faults(always("slow", slow_s=1.0))
    before = server.stats()
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        page(http)  # timeout 0.5 s
    assert 0.4 < time.monotonic() - started < 1.0  # gave up before the 1 s answer came
    assert delta(before, server.stats())[1] == {"slow": 1}  # counted at once
    with httpx.Client(base_url=server.base_url, timeout=5) as patient:
        started = time.monotonic()
        r = patient.post(PAGE, json=BODY, headers=signed_headers())
        assert time.monotonic() - started >= 1.0
        assert r.json()["code"] == 200  # the real answer, late


def test_sandbox_endpoints_are_never_faulted(server, http) -> None:
    server.set_faults(FaultProfile("all", rate=1.0, weights={"http_503_html": 1}))
    assert page(http).status_code == 503
    assert http.get(DETAIL, params={"orderId": "1"}, headers=signed_headers()).status_code == 503
    for path in ("/_sandbox/health", "/_sandbox/clock", "/_sandbox/stats", "/_sandbox/faults"):
        assert http.get(path).status_code == 200, path
    assert http.get("/nowhere").status_code == 404  # unknown paths are not API endpoints


def test_stats_and_admin_endpoint(server, http) -> None:
    r = http.post("/_sandbox/faults", json={"profile": "flaky", "seed": 5})
    assert r.status_code == 200
    assert r.json()["profile"]["name"] == "flaky" and r.json()["seed"] == 5
    assert server.faults.profile is PROFILES["flaky"]
    assert http.post("/_sandbox/faults", json={"profile": "bogus"}).status_code == 400
    stats = http.get("/_sandbox/stats").json()
    assert stats["faults"] == server.stats()["faults"]
    assert set(stats["faults"]) <= set(FAULT_KINDS) | {"drift"}
    assert sum(stats["faults"].values()) == sum(sum(e.get("faults", {}).values()) for e in stats["endpoints"].values())


# -- the client sorts every kind as retriable -------------------------------------------------


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_client_retries_every_kind(server, kind) -> None:
    """Every fault is retriable; with one try allowed the client gives up at once, naming it."""
    server.set_faults(always(kind, slow_s=1.0))
    settings = Settings(base_url=server.base_url, rate_limit=0, timeout=0.5)
    with (
        XportClient(settings, retry=RetryPolicy(max_tries=1)) as client,
        pytest.raises(RetriableError) as info,
    ):
        client.request(ENDPOINTS["taobao_orders"], body=BODY)
    expected = {
        "http_429": RateLimitedError,
        "envelope_429": RateLimitedError,
        "cutoff": MalformedBodyError,
    }.get(kind, RetriableError)
    assert isinstance(info.value, expected)
    assert info.value.endpoint == "taobao_orders"
    if kind == "http_429":
        assert info.value.retry_after == 1.0
    if kind.startswith("envelope"):
        assert info.value.request_id and info.value.code == int(kind[-3:])
    # and with retries, the next (clean) attempt succeeds
    server.set_faults(FaultProfile("once", rate=0.5, weights={kind: 1}, slow_s=1.0), seed=3)
    sleeps: list[float] = []
    with XportClient(settings, retry=RetryPolicy(max_tries=12, initial_delay=0.001), sleep=sleeps.append) as client:
        assert client.request(ENDPOINTS["taobao_orders"], body=BODY).data["records"]
    server.set_faults("none")


# -- drift --------------------------------------------------------------------------------------


def test_drift_moves_the_clock_on_the_first_list_pages_only(http, server) -> None:
    profile = FaultProfile("d", drift_requests=3, drift_step_s=600)
    server.set_faults(profile)
    before = server.stats()
    clock = server.world.clock_ms
    assert http.get(DETAIL, params={"orderId": "1"}, headers=signed_headers()).status_code == 200
    assert server.world.clock_ms == clock  # detail endpoints do not drift
    for _ in range(5):
        assert page(http).json()["code"] == 200
    assert server.world.clock_ms == clock + 3 * 600_000  # then it holds still
    assert delta(before, server.stats()) == (6, {"drift": 3})
    server.set_faults(profile)  # a new profile, a new burst
    page(http)
    assert server.world.clock_ms == clock + 4 * 600_000


# -- profiles and determinism -----------------------------------------------------------------


def decisions(profile: str, seed: int, n: int = 4000) -> list[str | None]:
    injector = FaultInjector(profile, seed)
    return [injector.decide(PAGE) for _ in range(n)]


def test_profiles_rates_and_kinds() -> None:
    assert decisions("none", 1).count(None) == 4000
    flaky = Counter(decisions("flaky", 1))
    assert 0.08 < 1 - flaky[None] / 4000 < 0.12
    assert set(flaky) - {None} == set(PROFILES["flaky"].weights)
    assert not set(flaky) & APP_SERVES and "drop" not in flaky  # fast faults only
    nasty = Counter(decisions("nasty", 1))
    assert 0.22 < 1 - nasty[None] / 4000 < 0.28
    assert set(nasty) - {None} == set(FAULT_KINDS)  # every kind, including drop/cutoff/slow
    assert PROFILES["nasty"].drift_requests and PROFILES["drift"].drift_requests
    assert not PROFILES["drift"].rate and LIST_PATHS


def test_deterministic_per_seed() -> None:
    assert decisions("nasty", 7) == decisions("nasty", 7)
    assert decisions("nasty", 7) != decisions("nasty", 8)
    injector = FaultInjector("flaky", 7)
    first = [injector.decide(PAGE) for _ in range(500)]
    injector.configure("flaky", 7)  # re-arming replays the same stream
    assert [injector.decide(PAGE) for _ in range(500)] == first


def test_deterministic_over_http() -> None:
    """Two servers with one seed answer the same sequence of requests identically."""

    def outcomes(seed: int) -> list[tuple[int, int | None]]:
        with (
            SandboxServer(SMALL, faults="flaky", fault_seed=seed) as s,
            httpx.Client(base_url=s.base_url, timeout=5) as c,
        ):
            out = []
            for _ in range(120):
                r = c.post(PAGE, json=BODY, headers=signed_headers())
                code = r.json()["code"] if r.headers.get("content-type") == "application/json" else None
                out.append((r.status_code, code))
            assert sum(s.stats()["faults"].values()) == sum(1 for o in out if o != (200, 200))
            return out

    first = outcomes(2)
    assert first == outcomes(2)
    assert first != outcomes(3)
    assert any(o != (200, 200) for o in first)


def test_bad_profiles() -> None:
    with pytest.raises(ValueError, match="unknown fault profile"):
        FaultInjector("sometimes")
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultProfile("x", always={PAGE: "explode"})
    with pytest.raises(ValueError):
        FaultProfile("x", rate=1.5, weights={"drop": 1})


def test_cli_passes_the_profile(monkeypatch) -> None:
    import uvicorn

    from xport_sandbox import cli

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    assert (
        cli.main(
            [
                "serve",
                "--faults",
                "nasty",
                "--fault-seed",
                "4",
                "--fault-slow",
                "35",
                "--orders",
                "50",
            ]
        )
        == 0
    )
    injector = served[-1].state.faults
    assert injector.profile.name == "nasty" and injector.seed == 4
    assert injector.profile.slow_s == 35
    assert cli.main(["serve", "--orders", "50"]) == 0
    assert not served[-1].state.faults.active  # the default: no faults
