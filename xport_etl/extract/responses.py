"""What the API answered: bodies parsed (fast and exact), served values made safe to show, and
each answer sorted into an :class:`ApiResponse` or the error it is (:func:`classify`, after
Meltano's ``validate_response``):

==========================================  =============================================
what came back                              outcome
==========================================  =============================================
HTTP 429                                    :class:`~xport_etl.errors.RateLimitedError` (``Retry-After``)
HTTP 500/502/503/504 (any body)             :class:`~xport_etl.errors.RetriableError`
HTTP 401/403                                :class:`~xport_etl.errors.AuthenticationError`
other HTTP status ≥ 300                     :class:`~xport_etl.errors.FatalError`
HTTP 200, body not a JSON envelope          :class:`~xport_etl.errors.MalformedBodyError` (retriable): a
                                            gateway answering for the application, or a
                                            body cut off mid-JSON
envelope code 200                           success → :class:`ApiResponse`
envelope code 429 / 500                     ``RateLimitedError`` / ``RetriableError``
envelope code 401 / 403                     ``AuthenticationError`` (never retried)
envelope code 400 / 404 / other             ``FatalError``
==========================================  =============================================

Bodies are parsed fast (orjson) into an *outline* for what paging reads; the exact ``data`` (every
non-integer number a ``Decimal``) is parsed on demand. Nothing served is converted without a bound,
and nothing served can crash the client: an envelope ``code`` is an integer only when it is a JSON
integer or ASCII digits (:func:`xport_etl.numbers.ascii_int`; ``"²"`` is a fatal code named as
served); ``msg`` and ``requestId`` are cut to one short line with control characters escaped
(:func:`one_line`); a page nested deeper than the exact parser goes is a
:class:`~xport_etl.errors.BadPageError`; bytes that are not UTF-8 inside a page are landed for the
normaliser, which rejects the records holding them. Every answer ends in an :class:`ApiResponse`
or an :class:`~xport_etl.errors.XportError` whose message is one line.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from xport_etl import jsonutil
from xport_etl.errors import (
    AuthenticationError,
    BadPageError,
    FatalError,
    MalformedBodyError,
    RateLimitedError,
    RetriableError,
    XportError,
)
from xport_etl.extract.endpoints import ASSUMED, ApiAssumptions
from xport_etl.numbers import ascii_int

__all__ = [
    "ApiResponse",
    "classify",
    "inexact",
    "loads_json",
    "loads_outline",
    "one_line",
    "parse_retry_after",
    "request_url",
    "shown",
]


@dataclass(frozen=True)
class ApiResponse:
    """A successful answer (envelope code 200).

    Attributes:
        outline: the envelope's ``data`` parsed fast (:func:`loads_outline`): objects, lists,
            strings, booleans, nulls and integers up to 64 bits are exact, any other number is a
            float. What paging reads (counts, ids, times) comes from here, with a float there
            meaning "read it from :attr:`data`".
        raw: the body exactly as received.
        request_id: the envelope's ``requestId``.
        status_code: the HTTP status.
        attempts: how many attempts it took.
    """

    outline: Any
    raw: bytes
    request_id: str | None
    status_code: int
    attempts: int = 1

    @functools.cached_property
    def data(self) -> Any:
        """The envelope's ``data``, exact (every non-integer number a ``Decimal``), parsed from
        :attr:`raw` on first use: the pipeline lands ``raw`` and rarely needs it.

        Raises:
            BadPageError: the body is nested deeper than the exact parser goes (the fast one read
                it): the page cannot be read exactly, here or by the normaliser.
        """
        try:
            return loads_json(self.raw).get("data")
        except ValueError as exc:
            raise BadPageError(
                f"the page cannot be parsed exactly ({one_line(exc)})", request_id=self.request_id
            ) from None


def loads_json(raw: bytes | str) -> Any:
    """Parse JSON exactly (:func:`xport_etl.jsonutil.loads`: every non-integer number a
    ``Decimal``, an integer too long for ``int()`` a ``Decimal``). Bytes that are not valid UTF-8
    are read as the normaliser reads them (kept as surrogate escapes, which reject only the
    records holding them), so that a page the normaliser can read is landed, not refused.

    Raises:
        ValueError: not JSON, or nested deeper than the interpreter can parse.
    """
    try:
        return jsonutil.loads(raw)
    except UnicodeDecodeError:
        if not isinstance(raw, bytes):
            raise
        return jsonutil.loads(raw.decode("utf-8", "surrogateescape"))


def loads_outline(raw: bytes | str) -> Any:
    """Parse JSON fast (orjson, ~5x :func:`loads_json`): objects, lists, strings, booleans, nulls
    and integers up to 64 bits come out exactly as :func:`loads_json` gives them; any other number
    (a fraction, an exponent, an integer beyond 64 bits) becomes a float, which a reader must
    take as "not exact here". A text orjson refuses (NaN, a number beyond a double, a lone
    surrogate, bytes that are not UTF-8, UTF-16, nesting deeper than 1024, not JSON) goes to
    :func:`loads_json`, which then parses it exactly or raises its ``ValueError``.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return loads_json(raw)


def inexact(values: Iterable[Any]) -> bool:
    """Whether any of ``values`` (read from an outline) is a float: a number the outline does not
    hold exactly, to be read from the exact parse instead (see :func:`loads_outline`)."""
    return any(type(v) is float for v in values)


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None if absent/unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now())


def _snippet(body: bytes, limit: int = 120) -> str:
    return one_line(body[: limit * 4].decode("utf-8", "replace"), limit)


def one_line(value: Any, limit: int = 200) -> str:
    """``value`` (a served message, code or request id: any JSON value) as one line of at most
    ``limit`` characters, safe to print and to write as UTF-8: whitespace runs (newlines too)
    become one space, other control characters and lone surrogates their escapes."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value[: limit * 4]
    else:
        try:
            text = str(value)[: limit * 4]
        except (ValueError, RecursionError):  # an int beyond the digit limit; absurd nesting
            text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    if not text.isprintable():  # a control character (a terminal escape) or a lone surrogate: escaped
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` as :func:`one_line` writes it: a served value quoted in an error line."""
    try:
        text = repr(value[: limit * 2] if isinstance(value, str) else value)
    except (ValueError, RecursionError):  # an int beyond the digit limit; absurd nesting
        text = f"<{type(value).__name__}>"
    return one_line(text, limit)


def _to_code(value: Any) -> int | str | None:
    """The envelope's ``code``: an ``int`` when it is a JSON integer or a string of ASCII digits
    (``"²"`` is not one), else its text, cut short (a fatal code that names what was served)."""
    if value is None:
        return None
    if isinstance(value, int | str) and not isinstance(value, bool):
        number = ascii_int(value, max_digits=9, signed=True)
        if number is not None:
            return number
    return one_line(value, 40)


def request_url(obj: httpx.Response | httpx.RequestError) -> httpx.URL | None:
    try:
        return obj.request.url
    except RuntimeError:  # no request attached
        return None


def _auth_hint(code: int | str | None, msg: str, window_s: int = ASSUMED.timestamp_window_s) -> str:
    lowered = msg.lower()
    if code == 403:
        return "check XPORT_USER_ID: this user-id may not see the resource"
    if "timestamp" in lowered or "expired" in lowered or "时间" in msg or "clock" in lowered:
        return f"the request timestamp was refused: sync the machine clock (NTP); the server allows ±{window_s} s"
    return (
        "check XPORT_ACCESS_KEY / XPORT_ACCESS_SECRET (and XPORT_USER_ID); if they are right, "
        f"check the machine clock is within {window_s} s of real time, and run `xport-etl check`: "
        "it tries each signing recipe (XPORT_SIGN_RECIPE)"
    )


def classify(
    response: httpx.Response,
    endpoint: str | None = None,
    *,
    assumptions: ApiAssumptions = ASSUMED,
) -> ApiResponse | XportError:
    """Sort one received response: an :class:`ApiResponse` on success, else the error to raise.

    The response must have been read. Nothing is raised here; see the table in the module
    docstring for the mapping.
    """
    status = response.status_code
    raw = response.content
    url = request_url(response)
    envelope: dict | None = None
    parse_error: str | None = None
    if raw.strip():
        try:
            parsed = loads_outline(raw)
        except ValueError as exc:  # not JSON, undecodable, or nested too deep to parse
            parse_error = one_line(f"{type(exc).__name__}: {exc}")
        else:
            if isinstance(parsed, dict) and "code" in parsed:
                envelope = parsed
                if inexact(envelope.get(k) for k in ("code", "msg", "requestId")):
                    # a number the outline holds as a float: exactly (as outlined when nested
                    # deeper than the exact parser goes)
                    with contextlib.suppress(ValueError):
                        envelope = loads_json(raw)
            else:
                parse_error = f"JSON {type(parsed).__name__} without an envelope 'code'"
    else:
        parse_error = "empty body"

    request_id = None
    code: int | str | None = status
    msg = ""
    if envelope is not None:
        rid = envelope.get("requestId")
        request_id = None if rid is None else one_line(rid, 100)
        code = _to_code(envelope.get("code"))
        msg = one_line(envelope.get("msg") or "")
    ctx: dict[str, Any] = {
        "endpoint": endpoint,
        "code": code,
        "http_status": status,
        "request_id": request_id,
        "url": url,
    }
    msg_part = f": {msg}" if msg else ""

    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RateLimitedError(f"HTTP 429 too many requests{msg_part}", retry_after=retry_after, **ctx)
    if status in (401, 403):
        return AuthenticationError(
            f"HTTP {status} refused{msg_part}: {_auth_hint(status, msg, assumptions.timestamp_window_s)}",
            **ctx,
        )
    if status in assumptions.http_retriable_statuses:
        kind = one_line(response.headers.get("content-type", "no content-type"), 60)
        detail = msg_part or f": {kind} body {_snippet(raw)!r}"
        return RetriableError(f"HTTP {status} from the server or gateway{detail}", **ctx)
    if not 200 <= status < 300:
        return FatalError(f"unexpected HTTP {status}{msg_part or ': ' + repr(_snippet(raw))}", **ctx)

    if envelope is None:
        return MalformedBodyError(
            f"HTTP {status} with a body that is not a JSON envelope ({parse_error}): {_snippet(raw)!r}",
            **ctx,
        )
    if code == assumptions.success_code:
        return ApiResponse(outline=envelope.get("data"), raw=raw, request_id=request_id, status_code=status)
    if code in assumptions.retriable_codes:
        if code == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RateLimitedError(f"envelope code 429{msg_part}", retry_after=retry_after, **ctx)
        return RetriableError(f"envelope code {code}{msg_part}", **ctx)
    if code in assumptions.auth_codes:
        return AuthenticationError(
            f"envelope code {code} refused{msg_part}: {_auth_hint(code, msg, assumptions.timestamp_window_s)}",
            **ctx,
        )
    return FatalError(f"envelope code {code}{msg_part}", **ctx)
