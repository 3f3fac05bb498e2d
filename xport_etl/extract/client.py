"""The HTTP client of the Xportcn OpenAPI: signing, rate limiting, sorting responses, retrying.

One request goes through these steps, every attempt afresh:

1. the shared per-key rate limiter (:mod:`xport_etl.extract.ratelimit`);
2. signing with a new nonce and timestamp (:class:`xport_etl.extract.auth.XportAuth`);
3. sorting the response with :func:`classify` (after Meltano's ``validate_response``):

   ==========================================  =============================================
   what came back                              outcome
   ==========================================  =============================================
   HTTP 429                                    :class:`RateLimitedError` (``Retry-After``)
   HTTP 500/502/503/504 (any body)             :class:`RetriableError`
   connection error, timeout, cut-off body     :class:`RetriableError` (``XPORT_TIMEOUT``
                                               bounds the whole request, not each read)
   a body over ``XPORT_MAX_RESPONSE_BYTES``    :class:`ResponseTooLargeError` (never retried;
   (declared, read, or once decoded)           refused before the rest is read)
   a gzip/deflate body that does not decode    :class:`MalformedBodyError` (retriable)
   HTTP 401/403                                :class:`AuthenticationError`
   other HTTP status ≥ 300                     :class:`FatalError`
   HTTP 200, body not a JSON envelope          :class:`MalformedBodyError` (retriable): a
                                               gateway answering for the application, or a
                                               body cut off mid-JSON
   envelope code 200                           success → :class:`ApiResponse`
   envelope code 429 / 500                     :class:`RateLimitedError` / :class:`RetriableError`
   envelope code 401 / 403                     :class:`AuthenticationError` (never retried)
   envelope code 400 / 404 / other             :class:`FatalError`
   ==========================================  =============================================

4. retrying with tenacity when :func:`should_retry` says so: ``Retry-After`` honoured up to
   :data:`RETRY_AFTER_CAP`, else jittered exponential backoff (openai-python's constants).

Bodies are read streamed, at most ``XPORT_MAX_RESPONSE_BYTES`` of them (decoded: a compression
bomb stops there too), and parsed fast (orjson) into an *outline* for what paging reads; the exact
``data`` (every non-integer number a ``Decimal``) is parsed on demand.

Nothing served is converted without a bound, and nothing served can crash the client: an envelope
``code`` is an integer only when it is a JSON integer or ASCII digits
(:func:`xport_etl.numbers.ascii_int`; ``"²"`` is a fatal code named as served), paging counts
likewise (:mod:`xport_etl.extract.paginators`); ``msg`` and ``requestId`` are cut to one short
line with control characters escaped (:func:`one_line`); a page nested deeper than the exact
parser goes is a :class:`~xport_etl.errors.BadPageError`; bytes that are not UTF-8 inside a page
are landed for the normaliser, which rejects the records holding them. Every answer ends in an
:class:`ApiResponse` or an :class:`~xport_etl.errors.XportError` whose message is one line.

Request bodies are written by :func:`xport_etl.jsonutil.dumps`: compact, Decimals exact, floats
refused.
The access secret never appears in logs, errors or reprs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import functools
import logging
import random
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpcore
import httpx
import orjson
import tenacity

from xport_etl import __version__, jsonutil
from xport_etl.errors import (
    AuthenticationError,
    BadPageError,
    FatalError,
    MalformedBodyError,
    RateLimitedError,
    ResponseTooLargeError,
    RetriableError,
    XportError,
)
from xport_etl.extract.auth import XportAuth
from xport_etl.extract.endpoints import ASSUMED, ApiAssumptions
from xport_etl.extract.ratelimit import Limiter, limiter_for_settings
from xport_etl.numbers import ascii_int
from xport_etl.settings import Settings
from xport_etl.streams.spec import EndpointSpec

__all__ = [
    "INITIAL_DELAY",
    "JITTER",
    "MAX_DELAY",
    "MAX_TRIES",
    "RETRY_AFTER_CAP",
    "ApiResponse",
    "ClientStats",
    "RetryPolicy",
    "XportClient",
    "classify",
    "loads_json",
    "one_line",
    "request_capped",
    "should_retry",
    "shown",
]

log = logging.getLogger(__name__)

MAX_TRIES = 6
INITIAL_DELAY = 0.5  # seconds
MAX_DELAY = 30.0  # seconds
JITTER = 0.25  # the delay is multiplied by a factor in [1 - JITTER, 1]
RETRY_AFTER_CAP = 60.0  # never wait longer than this for a Retry-After


@dataclass(frozen=True)
class RetryPolicy:
    """Retry constants. ``max_tries`` counts the first attempt."""

    max_tries: int = MAX_TRIES
    initial_delay: float = INITIAL_DELAY
    max_delay: float = MAX_DELAY
    jitter: float = JITTER
    retry_after_cap: float = RETRY_AFTER_CAP

    def backoff(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """The jittered exponential delay before retry ``retry_number`` (1 = first retry)."""
        delay = min(self.initial_delay * 2 ** (retry_number - 1), self.max_delay)
        return delay * (1 - self.jitter * rand())

    def delay_for(self, exc: BaseException | None, retry_number: int) -> float:
        """Seconds to wait after ``exc``: its ``retry_after`` (capped) if any, else backoff."""
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return max(0.0, min(float(retry_after), self.retry_after_cap))
        return self.backoff(retry_number)


def should_retry(exc: BaseException) -> bool:
    """The one retry predicate: retry transient failures, nothing else."""
    return isinstance(exc, RetriableError)


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


class ClientStats:
    """Simple thread-safe counters of what the client did."""

    FIELDS = (
        "requests",  # attempts sent
        "successes",
        "retries",
        "http_429",
        "http_errors",  # non-2xx other than 429
        "envelope_errors",  # HTTP 2xx with envelope code != success
        "transport_errors",  # connection errors, timeouts, cut-off bodies
        "malformed_bodies",
        "rate_limit_wait_s",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        for name in self.FIELDS:
            setattr(self, name, 0)

    def incr(self, name: str, amount: float = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self) -> str:
        return f"ClientStats({self.as_dict()})"


class _Deadline(threading.local):
    """The monotonic time by which the current thread's request must be over (None: no limit)."""

    at: float | None = None

    def left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """``timeout`` cut to what is left before the deadline; ``error`` once it has passed."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise error("the request took longer than XPORT_TIMEOUT")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits no longer than the request's deadline.

    httpx's timeouts are per socket operation: a server that sends a byte every few seconds never
    trips a read timeout. Cutting each operation's timeout to the time left makes
    ``XPORT_TIMEOUT`` a bound on the whole request (connect, TLS, headers and body)."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(
            ssl_context, server_hostname, self._deadline.left(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(stream, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend, with every connection a :class:`_DeadlineStream`."""

    def __init__(self, backend: httpcore.NetworkBackend, deadline: _Deadline) -> None:
        self._backend = backend
        self._deadline = deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self._backend.connect_tcp(
            host, port, self._deadline.left(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        stream = self._backend.connect_unix_socket(
            path, self._deadline.left(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _bound_requests(client: httpx.Client, deadline: _Deadline) -> None:
    """Make every connection ``client`` opens honour ``deadline`` (its own transports and the
    proxies taken from the environment; an injected transport such as ``MockTransport`` opens no
    connection and is left alone)."""
    transports = [client._transport, *client._mounts.values()]  # noqa: SLF001 (httpx has no public hook)
    for transport in transports:
        pool: Any = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend, deadline)  # noqa: SLF001


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context every client shares: httpx's default (certifi, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``), built once per process. Building it loads the CA bundle, which costs more than
    a request's own work, and ``run`` makes a client per window."""
    return httpx.create_ssl_context()


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


def _query_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        raise TypeError("floats are not allowed in query parameters; use Decimal or int")
    return value


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


def _request_url(obj: httpx.Response | httpx.RequestError) -> httpx.URL | None:
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


# what the client asks to be compressed with: the codings read_capped decodes, and no other (an
# httpx that finds brotli or zstd installed would otherwise ask for those too)
ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


class _Inflater:
    """One ``Content-Encoding`` decoded with a bound on each call's output (``zlib``'s
    ``max_length``), so that a small compressed body cannot expand past the cap in memory."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib = zlib.decompressobj(_WBITS[coding])
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """At most ``room`` bytes decoded from ``data`` (exactly ``room`` when there is more)."""
        try:
            out = self._zlib.decompress(data, room)
        except zlib.error:
            if self.coding != "deflate" or self._started:
                raise
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent raw, without its header
            out = self._zlib.decompress(data, room)
        self._started = True
        return out

    def flush(self) -> bytes:
        return self._zlib.flush()


def _too_large(cap: int, response: httpx.Response, seen: str) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"the answer is larger than XPORT_MAX_RESPONSE_BYTES={cap:,} bytes ({seen}); refused without "
        "reading the rest: raise XPORT_MAX_RESPONSE_BYTES if answers this large are expected",
        http_status=response.status_code,
        url=_request_url(response),
    )


def read_capped(response: httpx.Response, cap: int) -> bytes:
    """The body of a streamed ``response``, decoded, reading no more than ``cap`` bytes of it.

    A declared ``Content-Length`` beyond ``cap`` (of an uncompressed body) is refused before any
    byte is read; otherwise the body is read chunk by chunk and refused as soon as it passes
    ``cap``. A gzip or deflate body is decoded with the same bound on its *decoded* size, so a
    compression bomb stops at the cap too. An unknown coding is left as it is (httpx does the same;
    the body then fails to parse as JSON).

    Raises:
        ResponseTooLargeError: the body is larger than ``cap`` bytes.
        MalformedBodyError: a gzip/deflate body that does not decode (retriable: often cut off).
    """
    if response.is_stream_consumed:  # built with its whole body (a mock transport): already read
        if len(response.content) > cap:
            raise _too_large(cap, response, f"{len(response.content):,} bytes")
        return response.content
    codings = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",")]
    codings = [c for c in codings if c in _WBITS]
    if len(codings) > 1:
        raise MalformedBodyError(
            f"Content-Encoding {one_line(response.headers.get('content-encoding'), 60)!r} stacks codings: not supported",
            http_status=response.status_code,
            url=_request_url(response),
        )
    declared = ascii_int(response.headers.get("content-length"))
    if not codings and declared is not None and declared > cap:
        raise _too_large(cap, response, f"Content-Length {declared:,}")
    inflater = _Inflater(codings[0]) if codings else None
    chunks: list[bytes] = []
    size = 0
    try:
        for raw in response.iter_raw():
            chunk = raw if inflater is None else inflater.feed(raw, cap - size + 1)
            size += len(chunk)
            if size > cap:
                raise _too_large(cap, response, f"more than {cap:,} bytes read")
            chunks.append(chunk)
        if inflater is not None:
            chunk = inflater.flush()
            size += len(chunk)
            if size > cap:
                raise _too_large(cap, response, f"more than {cap:,} bytes read")
            chunks.append(chunk)
    except zlib.error as exc:
        raise MalformedBodyError(
            f"the {codings[0]} body does not decode ({exc})",
            http_status=response.status_code,
            url=_request_url(response),
        ) from None
    return b"".join(chunks)


def request_capped(http: httpx.Client, cap: int, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """``http.request(method, url, **kwargs)`` reading at most ``cap`` bytes of the body
    (:func:`read_capped`): the answer comes back as a read response with the decoded body (its
    ``Content-Encoding`` and ``Content-Length`` headers dropped, as they described the wire).

    Raises:
        ResponseTooLargeError, MalformedBodyError: see :func:`read_capped`; httpx's errors as
            ``http.request`` raises them.
    """
    with http.stream(method, url, **kwargs) as streamed:
        body = read_capped(streamed, cap)
    headers = [(k, v) for k, v in streamed.headers.raw if k.lower() not in (b"content-encoding", b"content-length")]
    return httpx.Response(
        streamed.status_code, headers=headers, content=body, request=streamed.request, extensions=streamed.extensions
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
    url = _request_url(response)
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


class XportClient:
    """The Xportcn OpenAPI client. Thread-safe: threads may share one instance.

    Args:
        settings: where and who (base URL, credentials, rate limit, timeout).
        transport: an httpx transport (e.g. ``httpx.MockTransport`` in tests).
        limiter: a rate limiter; default: the access key's limiter the settings describe
            (:func:`~xport_etl.extract.ratelimit.limiter_for_settings`): a file under
            ``<data_dir>/state/ratelimit/`` shared by every process and thread of the machine, or
            Redis (``rate_limit_url``) shared by every machine.
        sleep: how to wait between retries (injectable for tests).
        retry: the retry constants.
        assumptions: the [assumed] contract choices (default :data:`~xport_etl.extract.endpoints.ASSUMED`).
        auth: an httpx auth to use instead of :class:`XportAuth` built from ``settings``.

    Attributes:
        stats: counters of requests, retries, 429s, envelope errors, ...
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        assumptions: ApiAssumptions | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.settings = settings
        self.assumptions = assumptions or settings.assumptions
        self.retry = retry or RetryPolicy()
        if self.retry.max_tries < 1:
            raise ValueError("RetryPolicy.max_tries must be >= 1")
        self.limiter: Limiter = limiter if limiter is not None else limiter_for_settings(settings)
        self._sleep = sleep
        self.stats = ClientStats()
        self._http = httpx.Client(
            base_url=settings.base_url,
            verify=tls_context(),
            auth=auth
            or XportAuth(settings.access_key, settings.access_secret, settings.user_id, recipe=settings.signer),
            timeout=httpx.Timeout(settings.timeout),
            transport=transport,
            headers={
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
                "User-Agent": f"xport-etl/{__version__}",
            },
            follow_redirects=False,
        )
        self._deadline = _Deadline()
        _bound_requests(self._http, self._deadline)

    def request(
        self,
        endpoint: EndpointSpec,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        """Call ``endpoint`` with retries; return the successful response.

        Args:
            endpoint: the endpoint spec (path and method).
            params: query parameters (None values dropped).
            body: the JSON body for POST endpoints (None values dropped at the top level).

        Raises:
            RetriableError: retries exhausted (the last error, with ``attempts`` set).
            AuthenticationError: 401/403, after one attempt.
            FatalError: a non-retriable error code or status.
        """
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        content: bytes | None = None
        headers: dict[str, str] = {}
        if endpoint.method == "POST":
            sent = {k: v for k, v in (body or {}).items() if v is not None}
            content = jsonutil.dumps(sent).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif body:
            raise ValueError(f"{endpoint.name} is a {endpoint.method} endpoint: it takes no body")

        policy = self.retry

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return policy.delay_for(exc, state.attempt_number)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.stats.incr("retries")
            delay = state.upcoming_sleep
            # the error is not final yet: it carries no attempt count, so it does not say "gave up"
            log.warning(
                "%s: attempt %d of %d failed (%s); trying again in %.1f s",
                endpoint.name,
                state.attempt_number,
                policy.max_tries,
                exc,
                delay,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.max_tries),
            wait=wait,
            retry=tenacity.retry_if_exception(should_retry),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        counter = {"n": 0}

        def attempt() -> ApiResponse:
            counter["n"] += 1
            result = self._attempt(endpoint, query, content, headers)
            return dataclasses.replace(result, attempts=counter["n"])

        try:
            return retrying(attempt)
        except XportError as exc:
            exc.attempts = counter["n"]  # final: retries are over (or were never worth it)
            raise

    def _attempt(
        self,
        endpoint: EndpointSpec,
        query: Mapping[str, Any],
        content: bytes | None,
        headers: Mapping[str, str],
    ) -> ApiResponse:
        waited = self.limiter.acquire()
        if waited:
            self.stats.incr("rate_limit_wait_s", waited)
        self.stats.incr("requests")
        self._deadline.at = time.monotonic() + self.settings.timeout
        try:
            response = request_capped(
                self._http,
                self.settings.max_response_bytes,
                endpoint.method,
                endpoint.path,
                params=query or None,
                content=content,
                headers=headers,
            )
        except XportError as exc:  # too large, or a body that does not decode
            self.stats.incr("malformed_bodies")
            exc.endpoint = endpoint.name
            raise
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            # a cut connection, a body cut off mid-read, or no whole answer in time: transient
            self.stats.incr("transport_errors")
            detail = (
                f"no complete answer within XPORT_TIMEOUT={self.settings.timeout:g} s"
                if isinstance(exc, httpx.TimeoutException)
                else str(exc)
            )
            raise RetriableError(
                f"{type(exc).__name__} talking to the server: {detail}",
                endpoint=endpoint.name,
                url=_request_url(exc) or endpoint.path,
            ) from exc
        except httpx.HTTPError as exc:
            raise FatalError(f"{type(exc).__name__}: {exc}", endpoint=endpoint.name, url=endpoint.path) from exc
        finally:
            self._deadline.at = None
        outcome = classify(response, endpoint.name, assumptions=self.assumptions)
        if isinstance(outcome, ApiResponse):
            self.stats.incr("successes")
            return outcome
        if response.status_code == 429:
            self.stats.incr("http_429")
        elif not 200 <= response.status_code < 300:
            self.stats.incr("http_errors")
        elif isinstance(outcome, MalformedBodyError):
            self.stats.incr("malformed_bodies")
        else:
            self.stats.incr("envelope_errors")
        raise outcome

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def __enter__(self) -> XportClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"XportClient(base_url={self.settings.base_url!r}, "
            f"access_key={self.settings.access_key!r}, user_id={self.settings.user_id!r})"
        )
