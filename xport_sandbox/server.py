"""The sandbox's HTTP face: a FastAPI app that answers like the Xportcn OpenAPI
(docs/api-contract.md §1–§5.9).

Every API request (``/open/...``, ``/v2/...``, ``/alibaba/...``) passes, in order, the gateway's
rate limit (HTTP 429 with ``Retry-After``), the authentication check (envelope ``code`` 401/403
inside HTTP 200), then the endpoint itself (envelope ``code`` 200, or 400/404). ``/_sandbox/...`` endpoints are for tests and
demos: no authentication, no rate limit, never part of the contract.

In front of all that sits an optional fault profile (``faults="flaky"`` …, see
:mod:`xport_sandbox.faults`): gateway errors, dropped connections, cut-off and slow answers
and clock drift, injected deterministically per ``fault_seed`` and counted in ``/_sandbox/stats``.

The signature check is written here on its own, from the contract, and does not share code with
the client: a shared bug would otherwise pass unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from xport_sandbox import DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_SECRET, DEFAULT_USER_ID
from xport_sandbox.common import CST, cst_text, parse_cst
from xport_sandbox.faults import APP_SERVES, FaultInjector, FaultProfile
from xport_sandbox.world import World

NONCE_TTL_S = 600
TIMESTAMP_WINDOW_MS = 600_000
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10  # mybatis-plus' default when the caller sends none
REQUIRED_HEADERS = ("access-key", "timestamp", "nonce-str", "user-id", "signature")

_NONCE_RE = re.compile(r"[0-9A-Za-z]{32}")

# docs/api-contract.md#11-signing-recipes: the signing recipes the sandbox can be told to accept,
# written from the contract's text: (the signed string, the timestamp unit's digits and its
# milliseconds)
SIGN_RECIPES: dict[str, tuple[Callable[[str, str, str, str], str], int, int]] = {
    "query": (
        lambda ak, nonce, ts, secret: f"access-key={ak}&nonce-str={nonce}&timestamp={ts}&secret={secret}",
        13,
        1,
    ),
    "concat": (lambda ak, nonce, ts, secret: ak + ts + nonce + secret, 10, 1000),
}


# ---------------------------------------------------------------------------------------------
# json without floats


def _exact_decimal(value: object) -> orjson.Fragment:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(obj: Any) -> bytes:
    """JSON bytes of ``obj``; Decimals become exact JSON numbers (``12.50`` stays ``12.50``).

    orjson writes each Decimal as a raw fragment of its exact text, and everything else as the
    standard library would with ``ensure_ascii=False`` and compact separators (byte-identical, and
    several times faster; see bench/NOTES.md).
    """
    return orjson.dumps(obj, default=_exact_decimal)


# ---------------------------------------------------------------------------------------------
# gateway and authentication


class TokenBucket:
    """Per-key token buckets: ``rate`` requests per second, bursts up to ``rate``."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> int | None:
        """Take one token; None if granted, else the seconds to wait (integer >= 1)."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))


def expected_signature(access_key: str, nonce: str, timestamp: str, secret: str, recipe: str = "query") -> str:
    """The contract's signature (docs/api-contract.md#11-signing-recipes; the recipe is [assumed]
    there) with ``recipe``."""
    base = SIGN_RECIPES[recipe][0](access_key, nonce, timestamp, secret)
    return hashlib.md5(base.encode("utf-8")).hexdigest().upper()


def check_recipe(name: str) -> str:
    """``name`` if the sandbox knows that signing recipe, else ValueError."""
    if name not in SIGN_RECIPES:
        raise ValueError(f"unknown signing recipe {name!r}; known: {', '.join(SIGN_RECIPES)}")
    return name


class Authenticator:
    """Checks the five headers of docs/api-contract.md#1-transport-and-authentication; remembers
    nonces for ``NONCE_TTL_S``.

    ``recipe`` names the one signing recipe accepted (:data:`SIGN_RECIPES`); the ``timestamp``
    header must be in that recipe's unit and within the 600 s window of ``clock``.
    """

    def __init__(
        self,
        access_key: str,
        access_secret: str,
        user_id: str,
        clock: Callable[[], float] = time.time,
        recipe: str = "query",
    ) -> None:
        self.access_key = access_key
        self._secret = access_secret
        self.user_id = user_id
        self._clock = clock
        self.recipe = check_recipe(recipe)
        _, digits, self._unit_ms = SIGN_RECIPES[recipe]
        self._timestamp_re = re.compile(rf"\d{{{digits}}}")
        self._unit_text = "epoch milliseconds (13 digits)" if digits == 13 else "epoch seconds (10 digits)"
        self._nonces: dict[str, float] = {}  # nonce -> when it may be used again
        self._expiry: deque[tuple[float, str]] = deque()  # (expiry, nonce), in the order remembered
        self._lock = threading.Lock()

    def check(self, headers: Any) -> tuple[int, str] | None:
        """None if the request may pass, else the envelope ``(code, msg)``."""
        values = {name: headers.get(name) for name in REQUIRED_HEADERS}
        missing = [name for name, value in values.items() if not value]
        if missing:
            return 401, f"认证失败: missing header {', '.join(missing)}"
        ak, ts, nonce = values["access-key"], values["timestamp"], values["nonce-str"]
        if ak != self.access_key:
            return 401, "认证失败: unknown access-key"
        if not self._timestamp_re.fullmatch(ts):
            return 401, f"认证失败: timestamp must be {self._unit_text}"
        now = self._clock()
        if abs(now * 1000 - int(ts) * self._unit_ms) > TIMESTAMP_WINDOW_MS:
            return 401, "认证失败: timestamp outside the 600 s window"
        if not _NONCE_RE.fullmatch(nonce):
            return 401, "认证失败: nonce-str must be 32 characters [0-9a-zA-Z]"
        if values["signature"] != expected_signature(ak, nonce, ts, self._secret, self.recipe):
            return 401, "认证失败: bad signature"
        with self._lock:
            self._forget_expired(now)
            expires = self._nonces.get(nonce)
            if expires is not None and expires > now:
                return 401, "认证失败: nonce-str already used"
            self._nonces[nonce] = now + NONCE_TTL_S
            self._expiry.append((now + NONCE_TTL_S, nonce))
        if values["user-id"] != self.user_id:
            return 403, "无权限: user-id may not see this resource"
        return None

    def _forget_expired(self, now: float) -> None:
        """Drop the nonces whose time has passed, oldest first: each is looked at once, however many
        are live (a map rebuilt per request made a busy hour quadratic). A clock moved back only
        keeps nonces longer."""
        expiry, nonces = self._expiry, self._nonces
        while expiry and expiry[0][0] <= now:
            t, nonce = expiry.popleft()
            if nonces.get(nonce) == t:
                del nonces[nonce]


class Stats:
    """Counts requests, HTTP 429s, envelope codes and injected faults per endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._per: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "requests": 0,
                "throttled": 0,
                "codes": defaultdict(int),
                "faults": defaultdict(int),
            }
        )

    def record(self, endpoint: str, *, throttled: bool = False, code: int | None = None) -> None:
        with self._lock:
            entry = self._per[endpoint]
            entry["requests"] += 1
            if throttled:
                entry["throttled"] += 1
            if code is not None:
                entry["codes"][str(code)] += 1

    def fault(self, endpoint: str, kind: str, *, request: bool = False) -> None:
        """Count an injected fault; ``request``: also count the request (the app never saw it)."""
        with self._lock:
            entry = self._per[endpoint]
            entry["faults"][kind] += 1
            if request:
                entry["requests"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            endpoints = {
                name: {
                    "requests": e["requests"],
                    "throttled": e["throttled"],
                    "codes": dict(e["codes"]),
                    # only where a fault was injected: without faults the shape is unchanged
                    **({"faults": dict(e["faults"])} if e["faults"] else {}),
                }
                for name, e in self._per.items()
            }
        faults: dict[str, int] = defaultdict(int)
        for e in endpoints.values():
            for kind, n in e.get("faults", {}).items():
                faults[kind] += n
        return {
            "requests": sum(e["requests"] for e in endpoints.values()),
            "throttled": sum(e["throttled"] for e in endpoints.values()),
            "faults": dict(sorted(faults.items())),
            "endpoints": endpoints,
        }


# ---------------------------------------------------------------------------------------------
# parameters


class ApiError(Exception):
    """An error answered as an envelope with ``code`` (HTTP 200)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _int_param(params: dict, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ApiError(400, f"参数错误: {name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        return int(value)
    raise ApiError(400, f"参数错误: {name} must be an integer")


def _time_param(params: dict, name: str) -> datetime | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        return datetime.fromtimestamp(parse_cst(value), CST)
    except ValueError:
        raise ApiError(400, f"参数错误: {name} must be yyyy-MM-dd HH:mm:ss, got {value!r}") from None


def _text_param(params: dict, name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ApiError(400, f"参数错误: {name} must be a string")
    return str(value)


def _epoch_ms_param(params: dict, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"\d{1,15}", value))
    ):
        raise ApiError(400, f"参数错误: {name} must be epoch milliseconds, got {value!r}")
    return int(value)


def _body(raw: bytes) -> dict:
    try:
        params = json.loads(raw, parse_float=Decimal) if raw.strip() else {}
    except ValueError:
        raise ApiError(400, "参数错误: body is not valid JSON") from None
    if not isinstance(params, dict):
        raise ApiError(400, "参数错误: body must be a JSON object")
    return params


def _required_text(params: dict, name: str) -> str:
    value = _text_param(params, name)
    if value is None:
        raise ApiError(400, f"参数错误: {name} is required")
    return value


def _paging(params: dict) -> tuple[int, int]:
    page_no = _int_param(params, "pageNo", 1)
    page_size = _int_param(params, "pageSize", DEFAULT_PAGE_SIZE)
    assert page_no is not None and page_size is not None
    if page_no < 1:
        raise ApiError(400, "参数错误: pageNo must be >= 1")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ApiError(400, f"参数错误: pageSize must be within 1..{MAX_PAGE_SIZE}")
    return page_no, page_size


def _page_data(total: int, records: list, page_no: int, page_size: int) -> dict:
    return {
        "records": records,
        "total": total,
        "size": page_size,
        "current": page_no,
        "pages": -(-total // page_size),
    }


# ---------------------------------------------------------------------------------------------
# the app


class SandboxApp(FastAPI):
    """The FastAPI app with the fault profile in front of every API route.

    Faults are injected here, outside Starlette's middleware, because a dropped connection needs
    the server's own ``send`` (see :func:`xport_sandbox.faults._drop`).
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        injector: FaultInjector | None = getattr(self.state, "faults", None)
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if injector is None or not injector.active or path not in self.state.api_paths:
            await super().__call__(scope, receive, send)
            return
        stats: Stats = self.state.stats
        seconds = injector.drift(path)
        if seconds:
            self.state.world.advance(seconds)
            stats.fault(path, "drift")
        kind = injector.decide(path)
        if kind is None:
            await super().__call__(scope, receive, send)
            return
        # counted before it happens: a slow answer may outlive the client's patience (and the test)
        stats.fault(path, kind, request=kind not in APP_SERVES)
        await injector.inject(kind, scope, receive, send, super().__call__, develop_id=self.state.develop_id)


def _found(record: dict | None, missing: str) -> dict:
    """A detail endpoint's answer: the record, or envelope code 404 with ``missing`` as the msg."""
    if record is None:
        raise ApiError(404, missing)
    return record


def create_app(
    world: World,
    *,
    access_key: str = DEFAULT_ACCESS_KEY,
    access_secret: str = DEFAULT_ACCESS_SECRET,
    user_id: str = DEFAULT_USER_ID,
    rate_limit: float | None = 10.0,
    real_clock: Callable[[], float] = time.time,
    faults: str | FaultProfile | None = "none",
    fault_seed: int = 0,
    sign_recipe: str = "query",
) -> FastAPI:
    """A FastAPI app serving ``world`` as the Xportcn OpenAPI.

    Args:
        world: the world to serve; the app reads it at its current clock on every request.
        access_key, access_secret, user_id: the one set of credentials the app accepts.
        rate_limit: requests per second per access key (token bucket); None for no limit.
        real_clock: the server's real clock (epoch seconds), for the timestamp window.
        faults: a fault profile (``"none"``, ``"flaky"``, ``"drift"``, ``"nasty"`` or a
            :class:`~xport_sandbox.faults.FaultProfile`); ``app.state.faults`` may switch it.
        fault_seed: the seed of the fault decisions.
        sign_recipe: the one signing recipe accepted, ``"query"`` or ``"concat"``
            (:data:`SIGN_RECIPES`); timestamps are checked in its unit.
    """
    check_recipe(sign_recipe)
    app = SandboxApp(
        title="xport-sandbox",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
    )
    auth = Authenticator(access_key, access_secret, user_id, real_clock, sign_recipe)
    bucket = TokenBucket(rate_limit) if rate_limit is not None else None
    stats = Stats()
    develop_id = str(10**18 + int(hashlib.md5(access_key.encode()).hexdigest(), 16) % (9 * 10**18))
    app.state.world = world
    app.state.stats = stats
    app.state.develop_id = develop_id
    app.state.faults = FaultInjector(faults, fault_seed)

    def envelope(code: int, msg: str, data: Any) -> Response:
        body = {
            "requestId": uuid.uuid4().hex,
            "code": code,
            "developId": develop_id,
            "msg": msg,
            "data": data,
        }
        return Response(dumps(body), media_type="application/json")

    def serve(endpoint: str, request: Request, handler: Callable[[], Any]) -> Response:
        if bucket is not None:
            wait = bucket.take(request.headers.get("access-key") or "")
            if wait is not None:
                stats.record(endpoint, throttled=True)
                return Response(
                    dumps({"code": 429, "msg": "Too Many Requests"}),
                    status_code=429,
                    media_type="application/json",
                    headers={"Retry-After": str(wait)},
                )
        denied = auth.check(request.headers)
        if denied is not None:
            stats.record(endpoint, code=denied[0])
            return envelope(denied[0], denied[1], None)
        try:
            data = handler()
        except ApiError as exc:
            stats.record(endpoint, code=exc.code)
            return envelope(exc.code, exc.msg, None)
        stats.record(endpoint, code=200)
        return envelope(200, "成功", data)

    def taobao_page(params: dict, *, with_status_filters: bool) -> dict:
        page_no, page_size = _paging(params)
        filters: dict[str, Any] = {
            "create_start": _time_param(params, "createStartTime"),
            "create_end": _time_param(params, "createEndTime"),
        }
        if with_status_filters:
            filters.update(
                status=_int_param(params, "status"),
                update_start=_time_param(params, "updateStartTime"),
                update_end=_time_param(params, "updateEndTime"),
                order_no=_text_param(params, "orderNo"),
            )
        total, records = world.taobao_page(page_no, page_size, **filters)
        return _page_data(total, records, page_no, page_size)

    @app.post("/open/purchase/page")
    async def purchase_page(request: Request) -> Response:
        raw = await request.body()

        def handler() -> dict:
            try:
                params = json.loads(raw, parse_float=Decimal) if raw.strip() else {}
            except ValueError:
                raise ApiError(400, "参数错误: body is not valid JSON") from None
            if not isinstance(params, dict):
                raise ApiError(400, "参数错误: body must be a JSON object")
            return taobao_page(params, with_status_filters=True)

        return serve("/open/purchase/page", request, handler)

    @app.get("/open/order/page")
    async def order_page(request: Request) -> Response:
        params = dict(request.query_params)
        return serve("/open/order/page", request, lambda: taobao_page(params, with_status_filters=False))

    @app.get("/open/order/detail")
    async def order_detail(request: Request) -> Response:
        def handler() -> dict:
            order_id = _text_param(dict(request.query_params), "orderId")
            if order_id is None:
                raise ApiError(400, "参数错误: orderId is required")
            return _found(world.taobao_order(order_id), f"订单不存在: {order_id}")

        return serve("/open/order/detail", request, handler)

    # -- taobao refunds and logistics (docs/api-contract.md §5.4–§5.6) -----------------------------

    @app.post("/open/order/refund/queryList")
    async def refund_query_list(request: Request) -> Response:
        raw = await request.body()

        def handler() -> dict:
            params = _body(raw)
            for name in ("pageNo", "pageSize"):
                if params.get(name) in (None, ""):
                    raise ApiError(400, f"参数错误: {name} is required")
            page_no, page_size = _paging(params)
            total, records = world.taobao_refund_page(
                page_no,
                page_size,
                start_ms=_epoch_ms_param(params, "refundStartTime"),
                end_ms=_epoch_ms_param(params, "refundEndTime"),
                refund_id=_text_param(params, "refundId"),
                purchase_order_id=_text_param(params, "purchaseOrderId"),
                sales_order_id=_text_param(params, "salesOrderId"),
                refund_status=_int_param(params, "refundStatus"),
            )
            return _page_data(total, records, page_no, page_size)

        return serve("/open/order/refund/queryList", request, handler)

    @app.get("/v2/taobao/order/refund/query")
    async def refund_query(request: Request) -> Response:
        def handler() -> dict:
            refund_id = _required_text(dict(request.query_params), "refundId")
            return _found(world.taobao_refund(refund_id), f"售后单不存在: {refund_id}")

        return serve("/v2/taobao/order/refund/query", request, handler)

    @app.get("/v2/taobao/order/logistics/detail/get")
    async def logistics_detail(request: Request) -> Response:
        def handler() -> dict:
            line_id = _required_text(dict(request.query_params), "subPurchaseOrderId")
            return _found(world.taobao_logistics(line_id), f"采购单不存在: {line_id}")

        return serve("/v2/taobao/order/logistics/detail/get", request, handler)

    # -- 1688 (docs/api-contract.md §5.7–§5.9) -----------------------------------------------------

    @app.post("/v2/alibaba/order/page")
    async def alibaba_order_page(request: Request) -> Response:
        raw = await request.body()

        def handler() -> dict:
            params = _body(raw)
            page_no, page_size = _paging(params)
            total, records = world.alibaba_page(
                page_no,
                page_size,
                status=_text_param(params, "status"),
                create_start=_time_param(params, "createStartTime"),
                create_end=_time_param(params, "createEndTime"),
                modify_start=_time_param(params, "modifyStartTime"),
                modify_end=_time_param(params, "modifyEndTime"),
            )
            return _page_data(total, records, page_no, page_size)

        return serve("/v2/alibaba/order/page", request, handler)

    @app.post("/alibaba/refund/info")
    async def alibaba_refund_info(request: Request) -> Response:
        raw = await request.body()

        def handler() -> dict:
            refund_id = _required_text(_body(raw), "refundId")
            return _found(world.alibaba_refund(refund_id), f"退款单不存在: {refund_id}")

        return serve("/alibaba/refund/info", request, handler)

    @app.get("/alibaba/order/logistics/trace")
    async def alibaba_logistics_trace(request: Request) -> Response:
        def handler() -> dict:
            order_id = _required_text(dict(request.query_params), "orderId")
            return _found(world.alibaba_logistics(order_id), f"订单不存在: {order_id}")

        return serve("/alibaba/order/logistics/trace", request, handler)

    # -- admin ---------------------------------------------------------------------------------

    def clock_info() -> dict:
        ms = world.clock_ms
        return {"clock": world.clock.isoformat(), "clock_ms": ms, "clock_cst": cst_text(ms // 1000)}

    @app.get("/_sandbox/health")
    async def health() -> Response:
        with world.lock:
            orders = world.taobao.count_visible(world.clock_ms)
            orders_1688 = world.alibaba.count_visible(world.clock_ms)
        return Response(
            dumps(
                {
                    "status": "ok",
                    **clock_info(),
                    "taobao_orders": orders,
                    "orders_1688": orders_1688,
                }
            ),
            media_type="application/json",
        )

    @app.get("/_sandbox/clock")
    async def get_clock() -> Response:
        return Response(dumps(clock_info()), media_type="application/json")

    @app.post("/_sandbox/clock")
    async def move_clock(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            if "advance_seconds" in body:
                world.advance(float(body["advance_seconds"]))
            elif "set" in body:
                when = datetime.fromisoformat(body["set"])
                if when.tzinfo is None:
                    raise ValueError("'set' needs an offset, e.g. 2026-07-02T00:00:00+08:00")
                world.set_clock(when)
            else:
                raise ValueError('send {"advance_seconds": n} or {"set": "<iso datetime>"}')
        except (ValueError, TypeError, AttributeError) as exc:
            return Response(dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        return Response(dumps(clock_info()), media_type="application/json")

    @app.get("/_sandbox/stats")
    async def get_stats() -> Response:
        return Response(dumps({**stats.snapshot(), **clock_info()}), media_type="application/json")

    def faults_info() -> dict:
        injector: FaultInjector = app.state.faults
        return {
            "profile": injector.profile.describe(),
            "seed": injector.seed,
            "injected": stats.snapshot()["faults"],
        }

    @app.get("/_sandbox/faults")
    async def get_faults() -> Response:
        return Response(dumps(faults_info()), media_type="application/json")

    @app.post("/_sandbox/faults")
    async def set_faults(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            app.state.faults.configure(body.get("profile", "none"), int(body.get("seed", 0)))
        except (ValueError, TypeError, AttributeError) as exc:
            return Response(dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        return Response(dumps(faults_info()), media_type="application/json")

    # the API routes, the only ones faults touch
    app.state.api_paths = frozenset(
        route.path
        for route in app.routes
        if getattr(route, "path", "/_sandbox").startswith(("/open/", "/v2/", "/alibaba/"))
    )
    return app


__all__ = [
    "SIGN_RECIPES",
    "ApiError",
    "Authenticator",
    "SandboxApp",
    "Stats",
    "TokenBucket",
    "create_app",
    "dumps",
    "expected_signature",
]
