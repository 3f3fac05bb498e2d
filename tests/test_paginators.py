"""Page-number paging: stop conditions, loop guards, page shape, where the parameters go."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from xport_etl.errors import BadPageError, PaginationError
from xport_etl.extract.client import XportClient
from xport_etl.extract.endpoints import ENDPOINTS
from xport_etl.extract.paginators import KEYED, UNKEYED, Page, PageNumberPaginator, paginate, record_identities
from xport_etl.settings import Settings

ORDERS = ENDPOINTS["taobao_orders"]
LEGACY = ENDPOINTS["taobao_orders_legacy"]
DETAIL = ENDPOINTS["taobao_order_detail"]


class PagingServer:
    """A tiny MyBatis-Plus-like list endpoint over ``n`` records, newest first."""

    def __init__(self, n, *, ignore_page_no=False, send_counts=True, send_current=True, data=None):
        self.records = [{"id": str(1000 + n - i), "purchaseAmount": "1.10"} for i in range(n)]
        self.ignore_page_no = ignore_page_no
        self.send_counts = send_counts
        self.send_current = send_current
        self.data = data  # a fixed `data` to answer with, for shape tests
        self.calls: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            args = json.loads(request.content)
            where = "body"
        else:
            args = {k: int(v) if v.isdigit() else v for k, v in request.url.params.items()}
            where = "query"
        self.calls.append({"where": where, **args})
        if self.data is not None:
            data = self.data
        else:
            page_no, size = args["pageNo"], args["pageSize"]
            if self.ignore_page_no:
                page_no = 1
            chunk = self.records[(page_no - 1) * size : page_no * size]
            data = {"records": chunk}
            if self.send_counts:
                data |= {
                    "total": len(self.records),
                    "size": size,
                    "pages": -(-len(self.records) // size),
                }
            if self.send_current:
                data["current"] = page_no
        body = {"requestId": f"r{len(self.calls)}", "code": 200, "msg": "ok", "data": data}
        return httpx.Response(200, content=json.dumps(body).replace('"1.10"', "1.10").encode())


def client_for(server, **settings_kw):
    settings = Settings(rate_limit=0, **settings_kw)
    return XportClient(settings, transport=httpx.MockTransport(server), sleep=lambda s: None)


def ids(pages):
    return [r["id"] for p in pages for r in p.records]


def test_stops_on_total():
    server = PagingServer(25)
    with client_for(server) as client:
        pages = list(paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10)))
    assert [p.number for p in pages] == [1, 2, 3]
    assert len(ids(pages)) == 25 == len(set(ids(pages)))
    assert len(server.calls) == 3  # no extra request for an empty page
    assert pages[0].total == 25 and pages[0].pages == 3 and pages[0].request_id == "r1"
    assert isinstance(pages[0].records[0]["purchaseAmount"], Decimal)
    assert isinstance(pages[0], Page) and pages[0].raw.startswith(b'{"requestId": "r1"')


def test_exact_multiple_stops_on_total():
    server = PagingServer(20)
    with client_for(server) as client:
        pages = list(paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10)))
    assert len(pages) == 2 and len(server.calls) == 2


def test_stops_on_empty_page_without_counts():
    server = PagingServer(25, send_counts=False)
    with client_for(server) as client:
        pages = list(paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10)))
    assert [len(p.records) for p in pages] == [10, 10, 5, 0]
    assert pages[-1].total is None


def test_empty_result_is_one_page():
    server = PagingServer(0)
    with client_for(server) as client:
        pages = list(paginate(client, ORDERS))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].total == 0


def test_max_pages_raises_when_server_says_more():
    server = PagingServer(50)
    with client_for(server) as client:
        gen = paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10, max_pages=2))
        with pytest.raises(PaginationError, match="max_pages=2") as info:
            list(gen)
    assert len(server.calls) == 2
    assert info.value.endpoint == "taobao_orders"


def test_max_pages_from_settings():
    server = PagingServer(50)
    with client_for(server, page_size=10, max_pages=3) as client, pytest.raises(PaginationError):
        list(paginate(client, ORDERS))
    assert len(server.calls) == 3


def test_max_pages_only_stops_quietly_when_server_says_nothing():
    server = PagingServer(50, send_counts=False)
    paginator = PageNumberPaginator(page_size=10, max_pages=2, stop_on_total=False, stop_on_empty=False)
    with client_for(server) as client:
        pages = list(paginate(client, ORDERS, paginator=paginator))
    assert len(pages) == 2


def test_max_pages_not_an_error_on_the_last_page():
    server = PagingServer(20)
    with client_for(server) as client:
        pages = list(paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10, max_pages=2)))
    assert len(pages) == 2


def test_refuses_construction_without_stop_condition():
    with pytest.raises(ValueError, match="stop condition"):
        PageNumberPaginator(stop_on_total=False, stop_on_empty=False, max_pages=None)
    PageNumberPaginator(stop_on_total=False, stop_on_empty=False, max_pages=5)
    with pytest.raises(ValueError):
        PageNumberPaginator(page_size=101)
    with pytest.raises(ValueError):
        PageNumberPaginator(page_size=0)
    with pytest.raises(ValueError):
        PageNumberPaginator(max_pages=0)


def test_detects_server_ignoring_page_no_by_current():
    server = PagingServer(30, ignore_page_no=True)
    with client_for(server) as client, pytest.raises(PaginationError, match="ignores"):
        list(paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10)))
    assert len(server.calls) == 2


def test_detects_server_ignoring_page_no_by_repeated_records():
    server = PagingServer(30, ignore_page_no=True, send_current=False, send_counts=False)
    with client_for(server) as client, pytest.raises(PaginationError, match="repeats"):
        list(paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10)))
    assert len(server.calls) == 2


def test_post_pages_and_filters_in_body():
    server = PagingServer(5)
    filters = {"createStartTime": "2024-03-01 00:00:00", "createEndTime": "2024-03-02 00:00:00"}
    with client_for(server) as client:
        list(paginate(client, ORDERS, filters, paginator=PageNumberPaginator(page_size=2)))
    assert [c["pageNo"] for c in server.calls] == [1, 2, 3]
    assert all(c["where"] == "body" and c["pageSize"] == 2 for c in server.calls)
    assert all(c["createStartTime"] == "2024-03-01 00:00:00" for c in server.calls)


def test_get_pages_and_filters_in_query():
    server = PagingServer(5)
    with client_for(server) as client:
        list(
            paginate(
                client,
                LEGACY,
                {"createStartTime": "2024-03-01 00:00:00"},
                paginator=PageNumberPaginator(page_size=2),
            )
        )
    assert [c["pageNo"] for c in server.calls] == [1, 2, 3]
    assert all(c["where"] == "query" for c in server.calls)
    assert server.calls[0]["createStartTime"] == "2024-03-01 00:00:00"


def test_in_body_contradicting_endpoint_refused():
    with client_for(PagingServer(5)) as client, pytest.raises(ValueError, match="query string"):
        list(paginate(client, LEGACY, paginator=PageNumberPaginator(in_body=True)))
    with client_for(PagingServer(5)) as client, pytest.raises(ValueError, match="not a paged"):
        list(paginate(client, DETAIL))


@pytest.mark.parametrize(
    "data",
    [
        [1, 2],
        "records",
        {"records": {"id": 1}, "total": 1},
        {"records": "x", "total": 1},
        {"total": 5, "pages": 1},
        {"records": [], "total": "many"},
    ],
)
def test_bad_page_shapes(data):
    with client_for(PagingServer(0, data=data)) as client, pytest.raises(BadPageError) as info:
        list(paginate(client, ORDERS))
    assert info.value.endpoint == "taobao_orders"


def test_null_data_is_bad_page():
    # a success envelope whose data is null is not a page
    body = {"requestId": "r", "code": 200, "data": None}
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    client = XportClient(Settings(rate_limit=0), transport=transport)
    with client, pytest.raises(BadPageError, match="'data' must be an object"):
        list(paginate(client, ORDERS))


def test_lazy_iteration():
    server = PagingServer(30)
    with client_for(server) as client:
        gen = paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10))
        next(gen)
        assert len(server.calls) == 1


# ---- the outline (fast parse) and the exact records


def test_ids_beyond_64_bits_are_told_apart_although_the_outline_holds_them_as_one_float():
    # 2**70 + i are one float each: read from the outline, page 2 would "repeat" page 1
    server = PagingServer(25)
    for i, r in enumerate(server.records):
        r["id"] = 2**70 + i
    with client_for(server) as client:
        pages = list(paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10)))
    assert [len(p.outline) for p in pages] == [10, 10, 5]
    assert len({float(i) for p in pages for i in p.values("id")}) == 1
    assert sorted(i for p in pages for i in p.values("id")) == [2**70 + i for i in range(25)]


def test_the_outline_approximates_amounts_and_the_records_keep_them_exact():
    with client_for(PagingServer(3)) as client:
        (page,) = paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10))
    assert type(page.outline[0]["purchaseAmount"]) is float
    assert page.records[0]["purchaseAmount"] == Decimal("1.10")
    assert page.values("id") == [r["id"] for r in page.records] == ["1003", "1002", "1001"]


@pytest.mark.parametrize("total", ["25.0", "2.5E1"])
def test_counts_written_as_fractions_page_as_the_exact_counts_say(total):
    server = PagingServer(25)

    def answer(request):
        response = server(request)
        text = response.content.replace(b'"total": 25', b'"total": ' + total.encode())
        return httpx.Response(200, content=text.replace(b'"pages": 3, ', b""))

    with XportClient(Settings(rate_limit=0), transport=httpx.MockTransport(answer), sleep=lambda s: None) as client:
        pages = list(paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=10)))
    assert total.encode() in pages[0].raw and b'"pages"' not in pages[0].raw
    assert type(pages[0].outline) is list and [p.total for p in pages] == [25, 25, 25]
    assert len(server.calls) == 3  # stopped by the total, as an exact parse reads it


def test_records_nesting_their_key_in_base_info_are_told_apart():
    # 1688 may nest an order's fields in baseInfo (docs/api-contract.md#57-1688-orders), per record
    alibaba = ENDPOINTS["alibaba_orders"]
    server = PagingServer(25)
    server.records = [
        {"baseInfo": {"orderId": r["id"]}} if i % 2 else {"orderId": r["id"]} for i, r in enumerate(server.records)
    ]
    with client_for(server) as client:
        pages = list(paginate(client, alibaba, paginator=PageNumberPaginator(page_size=10)))
    assert [len(p.outline) for p in pages] == [10, 10, 5]
    assert alibaba.members_in == ("baseInfo",)
    keys = [k for p in pages for k in p.values("orderId", alibaba.members_in)]
    assert keys == [str(1025 - i) for i in range(25)]
    # baseInfo wins over a member of the same name at the record level, as in the normaliser
    page = Page(
        number=1,
        raw=b"",
        outline=[{"orderId": "1", "baseInfo": {"orderId": "2"}}, "x"],
        total=None,
        pages=None,
        request_id=None,
    )
    assert page.values("orderId", ("baseInfo",)) == ["2"]
    assert page.values("orderId") == ["1"]


# ---- paging counts are read bounded, ASCII digits only (issue 22 item 5)


def _page_with(count: bytes) -> bytes:
    return b'{"requestId": "r", "code": 200, "data": {"records": [{"id": "1"}], "total": ' + count + b"}}"


def finishes(fn, within: float = 30.0):
    """``fn()``'s result or exception, asserting it ends within ``within`` seconds (a hang, such as
    ``int(Decimal("1e9999999"))``, fails the test instead of holding it for minutes)."""
    import threading

    box: list = []

    def run():
        try:
            box.append(fn())
        except BaseException as exc:  # noqa: BLE001 (handed back to the test)
            box.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(within)
    assert box, f"still running after {within} s"
    return box[0]


@pytest.mark.parametrize(
    "count",
    [b"1e9999999", b"-1e9999999", b'"\xc2\xb2"', '"٣"'.encode(), b'"1_0"', b"-5", b"2.5", b"NaN", b"Infinity"]
    + [b"1" + b"0" * 19, b'"' + b"9" * 5000 + b'"', b"[1]", b"true"],
)
def test_a_paging_count_that_is_not_a_count_is_a_bad_page_at_once(count):
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=_page_with(count)))
    with XportClient(Settings(rate_limit=0), transport=transport, sleep=lambda s: None) as client:
        outcome = finishes(lambda: list(paginate(client, ORDERS)))
    assert isinstance(outcome, BadPageError), outcome
    assert "'total' is not a count" in str(outcome) and "\n" not in str(outcome) and len(str(outcome)) < 300


@pytest.mark.parametrize("count", [b"2", b'"2"', b'" 2 "', b"2.0", b"2E0"])
def test_a_count_written_as_digits_or_an_integral_number_is_read(count):
    records = b'[{"id": "1"}, {"id": "2"}]'
    body = b'{"code": 200, "data": {"records": ' + records + b', "total": ' + count + b"}}"
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=body))
    with XportClient(Settings(rate_limit=0), transport=transport) as client:
        (page,) = paginate(client, ORDERS)
    assert page.total == 2


# ---- what tells records apart: ids where usable, content otherwise (issue 24 item 0)


def _page_of(records: list) -> Page:
    return Page(number=1, raw=b"", outline=records, total=None, pages=None, request_id=None, exact=lambda: records)


def test_records_without_a_usable_id_are_told_apart_by_their_content():
    records = [
        {"id": "7"},
        {"id": 7},  # the same record, its id served as a number
        {"id": None, "a": 1},
        {"id": None, "a": 2},
        {"a": 1, "id": None},  # the first null-id record again, members in another order
        {"id": ""},
        {"id": " "},
        {"id": Decimal("1.5")},
        {"id": [1]},
        {"id": True},
        "not an object",
    ]
    identities = record_identities(_page_of(records), ("id",))
    assert identities[0] == identities[1] == (KEYED, "7")
    assert [i[0] for i in identities[2:]] == [UNKEYED] * 9
    assert identities[2] == identities[4] != identities[3]
    assert len(set(identities)) == 9


def test_consecutive_pages_of_different_null_id_records_are_not_a_repeated_page():
    server = PagingServer(4)
    server.records = [{"id": None, "n": i} for i in range(4)]
    with client_for(server) as client:
        pages = list(paginate(client, ORDERS, paginator=PageNumberPaginator(page_size=1)))
    assert [p.outline[0]["n"] for p in pages] == [0, 1, 2, 3]


# ---- a window is paged once when nothing moved (issue 24 item 0)


class WindowServer:
    """A Taobao order list over ``records`` (newest first) that counts them all in ``total``, null
    ids included, as a server whose corrupt records are rows of its result set does. The catch-up
    query (``updateStartTime``) finds nothing changed. ``move`` runs once, after the page it names
    was served: the data moving while a pass pages."""

    def __init__(self, records: list[dict], move: tuple[int, Callable[[list], None]] | None = None) -> None:
        self.records = records
        self.move = move
        self.list_calls = 0
        self.catch_up_calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        args = json.loads(request.content)
        page_no, size = args["pageNo"], args["pageSize"]
        if "updateStartTime" in args:
            self.catch_up_calls += 1
            data: dict = {"records": [], "total": 0, "size": size, "current": page_no, "pages": 0}
        else:
            self.list_calls += 1
            chunk = self.records[(page_no - 1) * size : page_no * size]
            total = len(self.records)
            data = {"records": chunk, "total": total, "size": size, "current": page_no, "pages": -(-total // size)}
            if self.move is not None and self.move[0] == page_no:
                self.move[1](self.records)
                self.move = None
        return httpx.Response(200, json={"requestId": "r", "code": 200, "msg": "ok", "data": data})


def _order(n: int, order_id: str | None) -> dict:
    return {"id": order_id, "orderNo": f"no-{n}", "updateTime": "2026-01-01 10:00:00"}


def _extract(server: WindowServer, tmp_path, page_size: int = 100):
    from xport_etl.extract.landing import read_manifest
    from xport_etl.run.paging import extract_window

    settings = Settings(rate_limit=0, data_dir=tmp_path, page_size=page_size)
    client = XportClient(settings, transport=httpx.MockTransport(server), sleep=lambda s: None)
    with client:
        path = extract_window(
            settings, "taobao_orders", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), client=client
        )
    return read_manifest(Path(path).parent)


def test_a_window_holding_records_without_ids_is_paged_once(tmp_path):
    # 250 orders, 13 of them corrupt with a null id and counted in total (the minimum: 3 pages)
    records = [_order(n, None if n % 20 == 7 else str(10_000 - n)) for n in range(250)]
    assert sum(r["id"] is None for r in records) == 13
    server = WindowServer(records)
    manifest = _extract(server, tmp_path)
    assert server.list_calls == 3  # ceil(250 / 100): one pass
    assert server.catch_up_calls == 1  # what changed while paging: nothing
    assert manifest.drift_repages == 0 and "inconsistent" not in manifest.extra
    assert manifest.records == 250 and manifest.pages == 3 + 1


def test_records_shifting_while_paging_are_still_noticed(tmp_path):
    # after page 1, an order is created (served first) and the oldest disappears: the total holds,
    # page 1's last record shifts onto page 2 (seen twice) and one record is never seen
    records = [_order(n, str(10_000 - n)) for n in range(150)]

    def move(records):
        records.insert(0, _order(-1, "20000"))
        records.pop()

    server = WindowServer(records, move=(1, move))
    manifest = _extract(server, tmp_path)
    assert manifest.drift_repages == 1 and server.list_calls == 2 + 2


def test_a_null_id_record_shifting_while_paging_is_noticed_by_its_content(tmp_path):
    # as above, but the record that shifts onto page 2 (seen twice) has no id
    records = [_order(n, None if n == 99 else str(10_000 - n)) for n in range(150)]

    def move(records):
        records.insert(0, _order(-1, "20000"))
        records.pop()

    server = WindowServer(records, move=(1, move))
    manifest = _extract(server, tmp_path)
    assert manifest.drift_repages == 1 and server.list_calls == 2 + 2
