"""Fault profiles: the sandbox's gateway misbehaving on purpose, deterministically per seed.

A profile is chosen when the app starts (``create_app(world, faults="flaky", fault_seed=7)``,
``SandboxServer(..., faults="nasty")``, ``xport-sandbox serve --faults flaky``) and may be swapped
later (``POST /_sandbox/faults``). Faults hit API endpoints only, never ``/_sandbox/*``; each API
request consults one ``random.Random(seed)`` in arrival order, so a seed and an order of requests
give the same faults every time.

Fault kinds (docs/api-contract.md#22-the-gateway: what a gateway in front of the application may
do):

==================  ===========================================================================
``http_503_html``   HTTP 503 with an nginx-style HTML page
``http_502_empty``  HTTP 502, empty body
``http_504_empty``  HTTP 504, empty body
``envelope_500``    HTTP 200, envelope ``code`` 500 ("system error"), ``data`` null
``envelope_429``    HTTP 200, envelope ``code`` 429 ("too many requests"), no ``Retry-After``
``http_429``        HTTP 429 with ``Retry-After: 1`` (the profile's ``retry_after_s``)
``drop``            the connection is closed without a response (httpx: RemoteProtocolError)
``cutoff``          HTTP 200, the real JSON cut at half, Content-Length of the cut body
``slow``            the real answer, after ``slow_s`` seconds (beyond a client's timeout)
``drift``           (not a response fault) the world clock jumps ``drift_step_s`` before each of
                    the first ``drift_requests`` list-page requests: orders appear and statuses
                    change while a run pages, then the world holds still so a re-page settles
==================  ===========================================================================

Profiles: ``none``; ``flaky`` (~10 % of requests get a fast retriable fault: gateway 5xx,
envelope 500/429, HTTP 429); ``drift`` (a burst of clock jumps, no response faults); ``nasty``
(~25 %, every kind including drops, cut-offs and slow answers, plus a short drift burst). A
custom :class:`FaultProfile` may be passed instead of a name, e.g. one whose ``always`` makes
one endpoint fail on every request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "APP_SERVES",
    "DRIFT",
    "FAULT_KINDS",
    "LIST_PATHS",
    "PROFILES",
    "FaultInjector",
    "FaultProfile",
    "profile_for",
]

FAULT_KINDS = (
    "http_503_html",
    "http_502_empty",
    "http_504_empty",
    "envelope_500",
    "envelope_429",
    "http_429",
    "drop",
    "cutoff",
    "slow",
)
DRIFT = "drift"
# kinds where the application still serves the request (and counts it); the others answer for it
APP_SERVES = frozenset({"cutoff", "slow"})

# the paged list endpoints (docs/api-contract.md#41-moving-data): where drift shows
LIST_PATHS = frozenset(
    {
        "/open/purchase/page",
        "/open/order/page",
        "/open/order/refund/queryList",
        "/v2/alibaba/order/page",
    }
)

_NGINX_503 = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class FaultProfile:
    """What to inject.

    Attributes:
        name: the profile's name (shown in stats).
        rate: the probability that an API request gets a response fault.
        weights: relative weight of each fault kind when one is drawn.
        slow_s: how long a ``slow`` answer waits before it is served.
        retry_after_s: the ``Retry-After`` of an ``http_429``.
        drift_requests: how many list-page requests (the first ones) move the clock.
        drift_step_s: how far each of them moves it.
        always: ``{path: kind}``: every request to ``path`` gets ``kind`` (a fault that outlasts
            any retry policy); consults no randomness.
    """

    name: str
    rate: float = 0.0
    weights: Mapping[str, float] = field(default_factory=dict)
    slow_s: float = 2.0
    retry_after_s: int = 1
    drift_requests: int = 0
    drift_step_s: float = 0.0
    always: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within 0..1, got {self.rate!r}")
        unknown = sorted(set(self.weights) - set(FAULT_KINDS)) + sorted(set(self.always.values()) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(FAULT_KINDS)}")
        if self.rate > 0 and not any(w > 0 for w in self.weights.values()):
            raise ValueError("a profile with rate > 0 needs a positive weight")
        if self.drift_requests < 0 or self.drift_step_s < 0 or self.slow_s < 0:
            raise ValueError("drift_requests, drift_step_s and slow_s must be >= 0")

    @property
    def active(self) -> bool:
        return bool(self.rate > 0 or self.always or (self.drift_requests and self.drift_step_s))

    def describe(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["weights"], out["always"] = dict(self.weights), dict(self.always)
        return out


_FAST = {  # retriable and quick: what "flaky" draws from
    "http_503_html": 2,
    "http_502_empty": 1,
    "http_504_empty": 1,
    "envelope_500": 2,
    "envelope_429": 1,
    "http_429": 1,
}

PROFILES: Mapping[str, FaultProfile] = {
    "none": FaultProfile("none"),
    "flaky": FaultProfile("flaky", rate=0.10, weights=_FAST),
    "drift": FaultProfile("drift", drift_requests=4, drift_step_s=3600.0),
    "nasty": FaultProfile(
        "nasty",
        rate=0.25,
        weights={**_FAST, "drop": 2, "cutoff": 2, "slow": 1},
        drift_requests=2,
        drift_step_s=600.0,
    ),
}


def profile_for(faults: str | FaultProfile | None) -> FaultProfile:
    """The profile named ``faults`` (or ``faults`` itself); None means ``none``."""
    if faults is None:
        return PROFILES["none"]
    if isinstance(faults, FaultProfile):
        return faults
    try:
        return PROFILES[faults]
    except KeyError:
        raise ValueError(f"unknown fault profile {faults!r}; choose one of {', '.join(PROFILES)}") from None


class FaultInjector:
    """Decides, per API request and in arrival order, which fault (if any) it gets.

    Args:
        profile: a profile name or a :class:`FaultProfile`.
        seed: the seed of the decisions.

    Attributes:
        history: the last decisions, ``(path, kind or None)``, oldest first.
    """

    HISTORY = 100_000

    def __init__(self, profile: str | FaultProfile | None = "none", seed: int = 0) -> None:
        self._lock = threading.Lock()
        self.configure(profile, seed)

    def configure(self, profile: str | FaultProfile | None, seed: int = 0) -> None:
        """Switch to ``profile`` with a fresh ``Random(seed)`` and a fresh drift burst."""
        chosen = profile_for(profile)
        with self._lock:
            self.profile = chosen
            self.seed = seed
            self._rng = random.Random(seed)
            self._kinds = [k for k in FAULT_KINDS if chosen.weights.get(k, 0) > 0]
            total = sum(chosen.weights[k] for k in self._kinds)
            acc, self._cumulative = 0.0, []
            for k in self._kinds:
                acc += chosen.weights[k] / total
                self._cumulative.append(acc)
            self._drifted = 0
            self.history: deque[tuple[str, str | None]] = deque(maxlen=self.HISTORY)

    @property
    def active(self) -> bool:
        return self.profile.active

    def drift(self, path: str) -> float:
        """Seconds to move the world's clock before serving this request (0: none)."""
        p = self.profile
        if path not in LIST_PATHS or not p.drift_step_s:
            return 0.0
        with self._lock:
            if self._drifted >= p.drift_requests:
                return 0.0
            self._drifted += 1
        return p.drift_step_s

    def decide(self, path: str) -> str | None:
        """The fault kind this request gets, or None. Consults the seeded stream once per call."""
        p = self.profile
        with self._lock:
            kind = p.always.get(path)
            if kind is None and p.rate > 0:
                roll = self._rng.random()
                if roll < p.rate:
                    u = roll / p.rate  # uniform in [0, 1): which kind
                    kind = next(
                        (k for k, c in zip(self._kinds, self._cumulative, strict=True) if u < c),
                        self._kinds[-1],
                    )
            self.history.append((path, kind))
        return kind

    # -- the faults, as ASGI -----------------------------------------------------------------

    async def inject(
        self,
        kind: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp,
        *,
        develop_id: str = "",
    ) -> None:
        """Answer the request with fault ``kind`` (for :data:`APP_SERVES` kinds, ``app`` serves
        it and the fault mangles or delays the answer)."""
        p = self.profile
        if kind == "http_503_html":
            await _respond(send, 503, _NGINX_503, b"text/html")
        elif kind in ("http_502_empty", "http_504_empty"):
            await _respond(send, 502 if kind == "http_502_empty" else 504, b"", None)
        elif kind in ("envelope_500", "envelope_429"):
            code, msg = (500, "系统错误") if kind == "envelope_500" else (429, "请求过于频繁")
            body = {
                "requestId": uuid.uuid4().hex,
                "code": code,
                "developId": develop_id,
                "msg": msg,
                "data": None,
            }
            await _respond(send, 200, json.dumps(body, ensure_ascii=False).encode(), b"application/json")
        elif kind == "http_429":
            body = json.dumps({"code": 429, "msg": "Too Many Requests"}).encode()
            await _respond(
                send,
                429,
                body,
                b"application/json",
                [(b"retry-after", str(p.retry_after_s).encode())],
            )
        elif kind == "drop":
            await _drop(receive, send)
        elif kind == "cutoff":
            await _cutoff(app, scope, receive, send)
        elif kind == "slow":
            # read the body now: once the client gives up, the connection is gone
            receive = await _buffered(receive)
            await asyncio.sleep(p.slow_s)
            await app(scope, receive, send)
        else:  # pragma: no cover - the profile validates its kinds
            raise ValueError(f"unknown fault kind {kind!r}")


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class ConnectionDropped(Exception):
    """Raised where the connection cannot be closed directly: the server then cuts it."""


async def _drop(receive: Receive, send: Send) -> None:
    # read the whole request first: closing a socket with unread bytes in it sends a TCP reset
    # (the client sees "Connection reset by peer", not a connection closed without a response)
    await _buffered(receive)
    # uvicorn hands the application its RequestResponseCycle.send: close that cycle's transport
    # and nothing at all is written (the client sees "Server disconnected without sending a
    # response"); once the protocol has seen the connection go, uvicorn stays quiet about a
    # response that never started
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "close"):
        # elsewhere: start a response, then fail; servers close a connection mid-response
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        raise ConnectionDropped("fault injection: connection dropped")
    transport.close()
    for _ in range(10):
        await asyncio.sleep(0)
        if getattr(cycle, "disconnected", True):
            break


async def _buffered(receive: Receive) -> Receive:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return receive
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await receive()

    return replay


async def _cutoff(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    start: dict | None = None
    chunks: list[bytes] = []

    async def capture(message: dict) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    assert start is not None
    body = b"".join(chunks)
    cut = body[: len(body) // 2]
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(cut)).encode()))
    await send({"type": "http.response.start", "status": start["status"], "headers": headers})
    await send({"type": "http.response.body", "body": cut, "more_body": False})
