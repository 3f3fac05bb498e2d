"""The wire: one HTTP exchange bounded in time and in size.

- ``XPORT_TIMEOUT`` bounds the whole request (connect, TLS, headers and body), not each socket read
  (:class:`Deadline`, :func:`bound_requests`): a server that sends a byte every few seconds is cut off.
- Bodies are read streamed, at most ``XPORT_MAX_RESPONSE_BYTES`` of them, decoded (gzip, deflate)
  with the same bound, so a compression bomb stops there too (:func:`read_capped`,
  :func:`request_capped`): a body over it is a :class:`~xport_etl.errors.ResponseTooLargeError`
  (never retried; refused before the rest is read), one that does not decode a
  :class:`~xport_etl.errors.MalformedBodyError` (retriable).
- One TLS context per process (:func:`tls_context`), and one way to build the client every exchange
  goes through (:func:`http_client`).
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from xport_etl import __version__
from xport_etl.errors import MalformedBodyError, ResponseTooLargeError
from xport_etl.extract.responses import one_line, request_url
from xport_etl.numbers import ascii_int

if TYPE_CHECKING:
    from xport_etl.settings import Settings

__all__ = [
    "ACCEPT_ENCODING",
    "Deadline",
    "bound_requests",
    "http_client",
    "read_capped",
    "request_capped",
    "tls_context",
]


class Deadline(threading.local):
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

    def __init__(self, stream: httpcore.NetworkStream, deadline: Deadline) -> None:
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

    def __init__(self, backend: httpcore.NetworkBackend, deadline: Deadline) -> None:
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


def bound_requests(client: httpx.Client, deadline: Deadline) -> None:
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


def http_client(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    auth: httpx.Auth | None = None,
    agent: str = "",
) -> httpx.Client:
    """The httpx client an exchange with the API goes through: the settings' base URL and timeout,
    the shared TLS context, JSON asked for in the codings :func:`read_capped` decodes, redirects
    not followed (the API does not move), ``User-Agent: xport-etl/<version>`` and ``agent`` after it.

    Args:
        transport: an httpx transport (``httpx.MockTransport`` in tests).
        auth: signs each request (:class:`~xport_etl.extract.auth.XportAuth`), or None.
        agent: what the user agent adds (``check`` for ``xport-etl check``).
    """
    return httpx.Client(
        base_url=settings.base_url,
        verify=tls_context(),
        auth=auth,
        timeout=httpx.Timeout(settings.timeout),
        transport=transport,
        headers={
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": f"xport-etl/{__version__}" + (f" {agent}" if agent else ""),
        },
        follow_redirects=False,
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
        url=request_url(response),
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
            url=request_url(response),
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
            url=request_url(response),
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
