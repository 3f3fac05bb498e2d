"""The served API over real HTTP: envelope, paging, filters, auth and the rate limit."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from tests.factories.sandbox import SMALL, Api, signed_headers
from xport_sandbox import DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_SECRET, DEFAULT_USER_ID
from xport_sandbox.testing import SandboxServer

PAGE = "/open/purchase/page"


def all_records(api: Api, body: dict | None = None) -> list[dict]:
    records, page_no = [], 1
    while True:
        data = api.page({**(body or {}), "pageNo": page_no, "pageSize": 100})
        if not data["records"]:
            return records
        records += data["records"]
        page_no += 1


def shift(cst_text: str, seconds: int) -> str:
    at = datetime.strptime(cst_text, "%Y-%m-%d %H:%M:%S") + timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def test_envelope_and_paging(api: Api) -> None:
    response = api.post(PAGE, {"pageNo": 2, "pageSize": 50})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["requestId", "code", "developId", "msg", "data"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["requestId"])
    assert body["developId"].isdigit() and body["code"] == 200 and body["msg"] == "成功"
    data = body["data"]
    assert list(data) == ["records", "total", "size", "current", "pages"]
    assert (data["total"], data["size"], data["current"], data["pages"]) == (600, 50, 2, 12)
    assert len(data["records"]) == 50


def test_pages_cover_the_world_newest_first_and_end_empty(api: Api, sandbox: SandboxServer) -> None:
    records = all_records(api)
    assert [str(r["id"]) for r in records] == [str(r["id"]) for r in sandbox.world.taobao_orders()]
    keys = [(r["createTime"], int(r["id"])) for r in records]
    assert keys == sorted(keys, reverse=True)
    last = api.page({"pageNo": 7, "pageSize": 100})
    assert last["records"] == [] and last["total"] == 600 and last["pages"] == 6


def test_bad_parameters_answer_code_400(api: Api) -> None:
    for body in (
        {"pageNo": 1, "pageSize": 101},
        {"pageNo": 1, "pageSize": 0},
        {"pageNo": 0, "pageSize": 10},
        {"pageNo": "x", "pageSize": 10},
        {"pageNo": 1, "pageSize": 10, "createStartTime": "2026-06-01T00:00:00"},
        {"pageNo": 1, "pageSize": 10, "updateEndTime": "2026-13-01 00:00:00"},
    ):
        response = api.post(PAGE, body)
        assert response.status_code == 200
        assert response.json()["code"] == 400, body
        assert response.json()["data"] is None


def test_money_is_never_a_float_on_the_wire(api: Api) -> None:
    text = api.post(PAGE, {"pageNo": 1, "pageSize": 100}).text
    amounts = re.findall(r'"(?:purchaseAmount|domesticPostFee)":("?[^,}]*)', text)
    assert amounts and all(re.fullmatch(r'"?\d+(\.\d{1,2})?"?', a) for a in amounts)
    assert any(a.startswith('"') for a in amounts) and any(not a.startswith('"') for a in amounts)
    assert re.search(r'"purchaseAmount":\d+\.\d0[,}]', text), "a number like 12.50 keeps its zero"
    assert "中" in text, "Chinese is sent unescaped"


def test_create_and_update_windows_are_inclusive_exclusive(api: Api) -> None:
    target = api.page({"pageNo": 1, "pageSize": 100})["records"][42]
    created, updated = target["createTime"], target["updateTime"]

    def ids(body: dict) -> set[str]:
        return {str(r["id"]) for r in all_records(api, body)}

    tid = str(target["id"])
    assert tid in ids({"createStartTime": created, "createEndTime": shift(created, 1)})
    assert tid not in ids({"createStartTime": shift(created, 1)})
    assert tid not in ids({"createEndTime": created})
    assert tid in ids({"updateStartTime": updated, "updateEndTime": shift(updated, 1)})
    assert tid not in ids({"updateEndTime": updated})
    window = all_records(api, {"updateStartTime": "2026-06-01 00:00:00", "updateEndTime": "2026-06-15 00:00:00"})
    assert window and all("2026-06-01 00:00:00" <= r["updateTime"] < "2026-06-15 00:00:00" for r in window)


def test_status_and_order_no_filters(api: Api) -> None:
    shipped = all_records(api, {"status": 11})
    assert shipped and all(r["status"] == 11 for r in shipped)
    one = api.page({"pageNo": 1, "pageSize": 10, "orderNo": shipped[3]["orderNo"]})
    assert one["total"] == 1 and one["records"][0]["id"] == shipped[3]["id"]
    assert api.page({"pageNo": 1, "pageSize": 10, "orderNo": "999"})["total"] == 0


def test_legacy_list_and_detail(api: Api) -> None:
    posted = api.page({"pageNo": 1, "pageSize": 20, "createStartTime": "2026-03-01 00:00:00"})
    got = api.get("/open/order/page", {"pageNo": 1, "pageSize": 20, "createStartTime": "2026-03-01 00:00:00"}).json()
    assert got["code"] == 200 and got["data"]["records"] == posted["records"]
    assert api.get("/open/order/page", {"pageSize": 500}).json()["code"] == 400
    first = posted["records"][0]
    detail = api.get("/open/order/detail", {"orderId": str(first["id"])}).json()
    assert detail["code"] == 200 and detail["data"] == first
    missing = api.get("/open/order/detail", {"orderId": "1000000000000000001"}).json()
    assert (missing["code"], missing["data"]) == (404, None)


def test_authentication_failures_are_401_inside_http_200(api: Api) -> None:
    body = {"pageNo": 1, "pageSize": 1}
    good = signed_headers()
    cases = {
        "bad signature": {**good, "signature": "0" * 32},
        "stale timestamp": signed_headers(timestamp=str(int(time.time() * 1000) - 601_000)),
        "wrong secret": signed_headers(secret="not-the-secret"),
        "wrong access key": signed_headers(access_key="f" * 32),
        "missing header": {k: v for k, v in signed_headers().items() if k != "nonce-str"},
    }
    for name, headers in cases.items():
        response = api.http.post(PAGE, json=body, headers=headers)
        assert response.status_code == 200, name
        envelope = response.json()
        assert (envelope["code"], envelope["data"]) == (401, None), name
        assert envelope["msg"], name
    assert api.http.post(PAGE, json=body, headers=good).json()["code"] == 200
    replay = api.http.post(PAGE, json=body, headers=good).json()
    assert replay["code"] == 401 and "nonce" in replay["msg"]
    forbidden = api.post(PAGE, body, user_id="2000002").json()
    assert (forbidden["code"], forbidden["data"]) == (403, None)


def test_rate_limit_answers_http_429_with_retry_after() -> None:
    with SandboxServer(SMALL, rate_limit=5) as server, httpx.Client(base_url=server.base_url) as c:
        codes = []
        for _ in range(15):
            response = c.post(PAGE, json={"pageNo": 1, "pageSize": 1}, headers=signed_headers())
            codes.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
        assert codes[:5] == [200] * 5 and 429 in codes
        stats = server.stats()
        assert stats["throttled"] == codes.count(429)
        assert stats["endpoints"][PAGE]["requests"] == 15
        assert c.get("/_sandbox/stats").json()["throttled"] == codes.count(429)
        time.sleep(0.25)
        ok = c.post(PAGE, json={"pageNo": 1, "pageSize": 1}, headers=signed_headers())
        assert ok.status_code == 200


def test_admin_clock_moves_the_served_world() -> None:
    with SandboxServer(SMALL) as server, httpx.Client(base_url=server.base_url) as c:
        api = Api(server.base_url)
        before = api.page({"pageNo": 1, "pageSize": 1})["total"]
        clock = c.get("/_sandbox/clock").json()
        assert clock["clock_cst"] == "2026-07-01 00:00:00"
        moved = c.post("/_sandbox/clock", json={"advance_seconds": 2 * 86_400}).json()
        assert moved["clock_cst"] == "2026-07-03 00:00:00"
        assert api.page({"pageNo": 1, "pageSize": 1})["total"] > before
        assert c.post("/_sandbox/clock", json={"set": "2026-07-01T00:00:00+08:00"}).status_code == 400
        server.advance(3600)
        assert c.get("/_sandbox/health").json()["clock_cst"] == "2026-07-03 01:00:00"
        api.http.close()


def test_decimal_parsing_round_trip(api: Api) -> None:
    import json

    body = json.loads(api.post(PAGE, {"pageNo": 1, "pageSize": 100}).text, parse_float=Decimal)
    for r in body["data"]["records"]:
        assert Decimal(str(r["purchaseAmount"])) == sum(Decimal(str(s["purchaseAmount"])) for s in r["subOrderVOS"])


def _stdlib_dumps(obj) -> bytes:
    """The reference encoding: the standard library, Decimals as their exact text (slow path)."""
    import json

    def exact(value):
        if isinstance(value, Decimal):
            return f"\x00{value:f}\x00"
        raise TypeError(type(value).__name__)

    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=exact)
    return re.sub(r'"\\u0000(-?[0-9]+(?:\.[0-9]+)?)\\u0000"', r"\1", text).encode()


def test_dumps_writes_what_the_standard_library_writes_with_exact_decimals() -> None:
    from xport_sandbox.server import dumps
    from xport_sandbox.world import World, WorldConfig

    awkward = {
        "money": [Decimal("12.50"), Decimal("0.00"), Decimal("-3.1"), Decimal("1234567890123.45"), Decimal("7")],
        "text": ["淘宝 订单", "tab\tnew\nline", 'quote " and \\ backslash', "\x01\x1f\x7f", "emoji 📦", ""],
        "ints": [0, -1, 2**53 + 1, 9_223_372_036_854_775_807],
        "nested": {"a": None, "b": True, "c": [{"d": Decimal("99.99")}]},
    }
    assert dumps(awkward) == _stdlib_dumps(awkward)
    world = World(WorldConfig(seed=5, orders=300))
    _, records = world.taobao_page(1, 100)
    _, records_1688 = world.alibaba_page(1, 100)
    for page in (records, records_1688):
        assert dumps({"data": {"records": page}}) == _stdlib_dumps({"data": {"records": page}})
    with pytest.raises(TypeError):
        dumps({"x": Decimal("NaN")})


def test_a_warm_world_serves_pages_without_building_details() -> None:
    from xport_sandbox.world import World, WorldConfig

    world = World(WorldConfig(seed=5, orders=400, detail_cache=2_000))
    built = world.warm()
    assert built == world.taobao.count_visible(world.clock_ms) + world.alibaba.count_visible(world.clock_ms)
    before = world.taobao.detail.cache_info().misses, world.alibaba.detail.cache_info().misses
    total, _ = world.taobao_page(1, 100)
    for page in range(1, -(-total // 100) + 1):
        world.taobao_page(page, 100)
    world.alibaba_page(1, 100)
    assert (world.taobao.detail.cache_info().misses, world.alibaba.detail.cache_info().misses) == before


def test_warm_option_sizes_the_cache_for_the_whole_world() -> None:
    import argparse

    from xport_sandbox.cli import _config

    args = argparse.Namespace(seed=7, orders=100_000, start=SMALL.start, clock=SMALL.clock, warm=True)
    config = _config(args)
    assert config.detail_cache >= config.orders + config.n_orders_1688
    from xport_sandbox.world import WorldConfig

    assert _config(argparse.Namespace(**{**vars(args), "warm": False})).detail_cache == WorldConfig().detail_cache


class _CountingDict(dict):
    """A dict that counts the passes made over it (what a nonce store must not do per request)."""

    passes = 0

    def items(self):
        type(self).passes += 1
        return super().items()

    def __iter__(self):
        type(self).passes += 1
        return super().__iter__()


def test_remembered_nonces_cost_no_pass_over_them_per_request():
    """A busy hour (more than 10,000 live nonces) must not make each request walk every nonce:
    the sandbox answered a second pass over the same history 30% slower than the first, as each
    request rebuilt the whole nonce map. Replays stay refused, and expired nonces are forgotten."""
    from xport_sandbox.server import NONCE_TTL_S, Authenticator

    now = [time.time()]
    auth = Authenticator(DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_SECRET, DEFAULT_USER_ID, clock=lambda: now[0])
    auth._nonces = store = _CountingDict()
    ts = str(int(now[0] * 1000))
    first = signed_headers(timestamp=ts)
    assert auth.check(first) is None
    for _ in range(12_000):
        assert auth.check(signed_headers(timestamp=ts)) is None
    assert auth._nonces is store, "the nonce map was rebuilt"
    assert _CountingDict.passes <= 2
    assert auth.check(first) == (401, "认证失败: nonce-str already used")
    now[0] += NONCE_TTL_S + 1
    assert auth.check(signed_headers(timestamp=str(int(now[0] * 1000)))) is None
    assert len(auth._nonces) == 1
