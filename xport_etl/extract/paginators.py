"""Paging (after dlt's paginators): :func:`paginate` runs the loop, a paginator makes its decisions.

The API has one paging style, page numbers (MyBatis-Plus pages, docs/api-contract.md#4-paging),
with the page parameters in the JSON body (``page_number_body`` endpoints) or in the query string
(``page_number_query``): both are :class:`PageNumberPaginator`, told where by the endpoint. A
paginator is configuration plus pure decisions (which parameters to send, whether a page is the
last, whether the server misbehaves: the :class:`Paginator` protocol), so one paginator can serve
several concurrent runs. Another style (a cursor, an offset) would be one more class with those
decisions, and :func:`paginate` choosing it by the endpoint's ``paging``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from xport_etl.errors import BadPageError, PaginationError
from xport_etl.extract.client import XportClient
from xport_etl.extract.endpoints import ASSUMED
from xport_etl.extract.responses import ApiResponse, inexact, shown
from xport_etl.numbers import ascii_int
from xport_etl.streams.spec import EndpointSpec

__all__ = ["KEYED", "UNKEYED", "Page", "PageNumberPaginator", "Paginator", "paginate", "record_identities"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """One page as received.

    Attributes:
        number: the page number asked for (1-based).
        raw: the response body exactly as received (for the landing layer).
        outline: the records as parsed fast (see :attr:`ApiResponse.outline`): exact but for
            numbers that are not 64-bit integers, which are floats. :meth:`values` reads it.
        total: the server's ``total`` record count, if given.
        pages: the server's ``pages`` count, if given.
        request_id: the envelope's ``requestId``.
        records: the records, exact (``Decimal`` for non-integer numbers), parsed on first use.
    """

    number: int
    raw: bytes
    outline: list
    total: int | None
    pages: int | None
    request_id: str | None
    exact: Callable[[], list] = field(repr=False, compare=False, default=list)

    @functools.cached_property
    def records(self) -> list:
        return self.exact()

    def values(self, name: str, within: Sequence[str] = ()) -> list:
        """``name`` of each record that is an object (None where it lacks one), exact: from the
        outline, or from :attr:`records` when one of them is a float there. ``within`` names
        objects of a record whose members count as its own and win (an endpoint's
        ``members_in``)."""
        values = [_member(r, name, within) for r in self.outline if isinstance(r, dict)]
        if inexact(values):
            values = [_member(r, name, within) for r in self.records if isinstance(r, dict)]
        return values


def _member(record: dict, name: str, within: Sequence[str]) -> Any:
    """``record[name]``, or the member ``name`` of the first of its ``within`` objects holding it."""
    for key in within:
        inner = record.get(key)
        if isinstance(inner, dict) and name in inner:
            return inner[name]
    return record.get(name)


def _opt_int(value: Any, name: str, page_no: int) -> int | None:
    """A paging count (``total``, ``pages``, ``current``) as served: a JSON integer, an integral
    number (``25.0``) or a string of ASCII digits, at most 18 digits and not negative; None when
    absent. Read by :func:`~xport_etl.numbers.ascii_int`: never an unbounded conversion.

    Raises:
        BadPageError: anything else (a fraction, a sign, ``"²"``, ``1e9999999``, NaN, a list, ...).
    """
    if value is None:
        return None
    number = ascii_int(value)
    if number is None:
        raise BadPageError(f"page {page_no}: '{name}' is not a count: {shown(value)}")
    return number


class Paginator(Protocol):
    """What :func:`paginate` asks of a paging style."""

    in_body: bool | None  # page parameters in the JSON body (True), the query (False), as declared (None)
    max_pages: int | None  # the most pages to fetch

    def page_params(self, page_no: int) -> dict[str, int]: ...
    def parse(self, response: ApiResponse, page_no: int, records_path: Sequence[str] = ...) -> Page: ...
    def more_by_server(self, page: Page) -> bool | None: ...
    def is_last(self, page: Page) -> bool: ...


class PageNumberPaginator:
    """Page-number paging: ``pageNo`` (1-based) and ``pageSize`` in the JSON body or the query.

    Expects the envelope's ``data`` to look like (MyBatis-Plus, docs/api-contract.md#4-paging)::

        {"records": [ ... ], "total": 1234, "size": 100, "current": 3, "pages": 13}

    Stops on the last page by ``pages`` (or ``total``), on an empty page, or at ``max_pages``
    (raising :class:`PaginationError` if the server still says there are more). Raises
    :class:`PaginationError` if ``current`` differs from the page asked for, or if a page repeats
    the previous page's records (a server that ignores ``pageNo``).

    Args:
        page_size: records per page (1..max page size).
        in_body: True → page parameters in the JSON body; False → in the query string;
            None → as the endpoint's ``paging`` says.
        max_pages: the most pages to fetch, or None for no limit.
        stop_on_total: stop after the last page by ``pages``/``total``.
        stop_on_empty: stop at the first page with no records.
        page_param: name of the page-number parameter.
        size_param: name of the page-size parameter.

    Raises:
        ValueError: no stop condition, or a bad page size / max_pages.
    """

    def __init__(
        self,
        *,
        page_size: int = 100,
        in_body: bool | None = None,
        max_pages: int | None = None,
        stop_on_total: bool = True,
        stop_on_empty: bool = True,
        page_param: str = "pageNo",
        size_param: str = "pageSize",
        max_page_size: int = ASSUMED.max_page_size,
    ) -> None:
        if not stop_on_total and not stop_on_empty and max_pages is None:
            raise ValueError("a paginator needs a stop condition: stop_on_total, stop_on_empty or max_pages")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not (1 <= page_size <= max_page_size):
            raise ValueError(f"page_size must be an integer in 1..{max_page_size}, got {page_size!r}")
        if max_pages is not None and max_pages < 1:
            raise ValueError(f"max_pages must be >= 1 or None, got {max_pages!r}")
        self.page_size = page_size
        self.in_body = in_body
        self.max_pages = max_pages
        self.stop_on_total = stop_on_total
        self.stop_on_empty = stop_on_empty
        self.page_param = page_param
        self.size_param = size_param

    def __repr__(self) -> str:
        return (
            f"PageNumberPaginator(page_size={self.page_size}, in_body={self.in_body}, "
            f"max_pages={self.max_pages}, stop_on_total={self.stop_on_total}, "
            f"stop_on_empty={self.stop_on_empty})"
        )

    def page_params(self, page_no: int) -> dict[str, int]:
        """The paging parameters of page ``page_no``."""
        return {self.page_param: page_no, self.size_param: self.page_size}

    def parse(
        self,
        response: ApiResponse,
        page_no: int,
        records_path: Sequence[str] = ("records",),
    ) -> Page:
        """Validate the page's shape and return it.

        Raises:
            BadPageError: ``data`` not an object, records not a list, bad counts.
            PaginationError: ``current`` is not the page asked for.
        """
        data = response.outline
        if isinstance(data, dict) and inexact(data.get(k) for k in ("total", "pages", "current")):
            data = response.data  # a count the outline holds as a float: read the counts exactly
        if not isinstance(data, dict):
            raise BadPageError(
                f"page {page_no}: 'data' must be an object, got {type(data).__name__}",
                request_id=response.request_id,
            )
        node = _records_at(data, records_path)
        if node is None and data.get("total") in (0, None) and not data.get("pages"):
            node = []  # some servers send records: null on an empty result
        if not isinstance(node, list):
            raise BadPageError(
                f"page {page_no}: data.{'.'.join(records_path)} must be a list, got {type(node).__name__}",
                request_id=response.request_id,
            )
        current = _opt_int(data.get("current"), "current", page_no)
        if node and current is not None and current != page_no:
            raise PaginationError(
                f"asked for page {page_no} but the server answered page {current}: it ignores or resets pageNo",
                request_id=response.request_id,
            )
        return Page(
            number=page_no,
            raw=response.raw,
            outline=node,
            total=_opt_int(data.get("total"), "total", page_no),
            pages=_opt_int(data.get("pages"), "pages", page_no),
            request_id=response.request_id,
            exact=functools.partial(_exact_records, response, records_path),
        )

    def more_by_server(self, page: Page) -> bool | None:
        """Whether the server's counts say pages remain after ``page`` (None: it does not say)."""
        if page.pages is not None:
            return page.number < page.pages
        if page.total is not None:
            return page.number * self.page_size < page.total
        return None

    def is_last(self, page: Page) -> bool:
        """Whether ``page`` ends the run (without the ``max_pages`` check)."""
        if self.stop_on_empty and not page.outline:
            return True
        return bool(self.stop_on_total and self.more_by_server(page) is False)


def _records_at(data: Any, records_path: Sequence[str]) -> Any:
    """What lies at ``records_path`` in ``data`` (None where the path breaks off)."""
    for key in records_path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _exact_records(response: ApiResponse, records_path: Sequence[str]) -> list:
    records = _records_at(response.data, records_path)
    return records if isinstance(records, list) else []


KEYED = "key"  # the first item of an identity read from a record's key
UNKEYED = "record"  # the first item of an identity read from a record's content


def record_identities(page: Page, primary_key: Sequence[str], within: Sequence[str] = ()) -> list[tuple]:
    """What identifies each record of ``page``, in page order.

    A record whose key values are all usable (a non-blank string or an integer, the forms the
    normalisers accept as an id) is ``("key", *values as text)``: the same record served with its
    id as a number on one page and as a string on the next is one record. Any other record (a
    null, blank, fractional or non-scalar key; not an object; an endpoint without a key) is
    ``("record", its content)``: two different unidentifiable records are two records, and one
    served twice (shifted onto the next page while paging) is one. Records that no content can
    tell apart (exact copies) count once. The content is the fast outline's (see
    :meth:`Page.values`), written canonically; a record that cannot be written counts alone.
    """
    records = page.outline
    if primary_key and inexact(_member(r, k, within) for r in records if isinstance(r, dict) for k in primary_key):
        records = page.records  # a key the outline holds as a float: read the records exactly
    out: list[tuple] = []
    for record in records:
        values = [_member(record, k, within) for k in primary_key] if isinstance(record, dict) else []
        if values and all(_usable_key(v) for v in values):
            out.append((KEYED, *(str(v) for v in values)))
        else:
            out.append((UNKEYED, _content(record)))
    return out


def _usable_key(value: Any) -> bool:
    if type(value) is str:
        return bool(value.strip())
    return type(value) is int


def _content(record: Any) -> Any:
    """``record`` as canonical JSON bytes (keys sorted), or a new object (equal to nothing else)
    when it cannot be written (an integer beyond 64 bits, nesting beyond orjson's limit)."""
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError, ValueError, RecursionError):
        return object()


def _page_keys(page: Page, primary_key: Sequence[str], within: Sequence[str] = ()) -> tuple:
    """What identifies the page's records, to notice a page that repeats the previous one."""
    return tuple(record_identities(page, primary_key, within))


def paginate(
    client: XportClient,
    endpoint: EndpointSpec,
    filters: Mapping[str, Any] | None = None,
    *,
    paginator: Paginator | None = None,
) -> Iterator[Page]:
    """Fetch every page of ``endpoint``, lazily, page by page.

    The filters go where the page parameters go: in the JSON body for ``page_number_body``
    endpoints (POST), in the query string for ``page_number_query`` endpoints (GET). Every page
    received is yielded, including the empty page that ends a run.

    Args:
        client: the API client.
        endpoint: a paged endpoint.
        filters: extra request fields (window bounds, status, ...).
        paginator: the paging configuration; default: the settings' page size and max pages.

    Raises:
        ValueError: the endpoint is not paged, or the paginator's ``in_body`` contradicts it.
        PaginationError: loop guard tripped, or ``max_pages`` hit while the server says more.
        BadPageError: a page of the wrong shape.
    """
    if endpoint.paging is None:
        raise ValueError(f"{endpoint.name} is not a paged endpoint")
    if paginator is None:
        paginator = PageNumberPaginator(
            page_size=client.settings.page_size,
            in_body=endpoint.pages_in_body,
            max_pages=client.settings.max_pages,
            max_page_size=client.assumptions.max_page_size,
        )
    in_body = endpoint.pages_in_body if paginator.in_body is None else paginator.in_body
    if in_body != endpoint.pages_in_body:
        where = "JSON body" if endpoint.pages_in_body else "query string"
        raise ValueError(
            f"{endpoint.name} takes its page parameters in the {where} ({endpoint.paging}); "
            f"the paginator says in_body={paginator.in_body}"
        )
    base = dict(filters or {})
    previous_keys: tuple | None = None
    page_no = 1
    while True:
        fields = {**base, **paginator.page_params(page_no)}
        try:
            response = client.request(endpoint, body=fields) if in_body else client.request(endpoint, params=fields)
            page = paginator.parse(response, page_no, endpoint.records_path)
        except (BadPageError, PaginationError) as exc:
            exc.endpoint = exc.endpoint or endpoint.name
            raise
        keys = _page_keys(page, endpoint.primary_key, endpoint.members_in)
        if page.outline and keys == previous_keys:
            raise PaginationError(
                f"page {page_no} repeats the records of page {page_no - 1}: the server ignores pageNo",
                endpoint=endpoint.name,
                request_id=page.request_id,
            )
        yield page
        if paginator.is_last(page):
            return
        if paginator.max_pages is not None and page_no >= paginator.max_pages:
            if paginator.more_by_server(page):
                raise PaginationError(
                    f"stopped at max_pages={paginator.max_pages} but the server reports "
                    f"{page.pages} pages / {page.total} records: raise max_pages or narrow the window",
                    endpoint=endpoint.name,
                    request_id=page.request_id,
                )
            log.info("%s: stopped at max_pages=%d", endpoint.name, paginator.max_pages)
            return
        previous_keys = keys
        page_no += 1
