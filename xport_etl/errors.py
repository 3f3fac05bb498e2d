"""The exceptions of the xport_etl library.

Every API error carries the context needed to act on it without a debugger: the endpoint name,
the envelope ``code`` (or the HTTP status when there is no envelope), the server's ``requestId``,
a URL with any secret-looking query value stripped, and, once retries are over, the number of
attempts. The access secret is never sent to the server, so it cannot appear here; URLs are
scrubbed anyway in case a caller put a signature or token in a query string.

Hierarchy::

    XportError
    ├── RetriableError            worth another try (gateway 5xx, envelope 500, cut connections)
    │   ├── RateLimitedError      HTTP 429 or envelope 429; ``retry_after`` seconds if known
    │   └── MalformedBodyError    HTTP 200 with a body that is not a JSON envelope (also a BadPageError)
    ├── AuthenticationError       401/403: fix credentials, user-id or the machine clock
    ├── FatalError                400/404/other codes: retrying will not help
    ├── BadPageError              a page whose shape is wrong (``data.records`` not a list, ...)
    │   └── ResponseTooLargeError  a body over ``XPORT_MAX_RESPONSE_BYTES`` (never retried)
    ├── PaginationError           paging went wrong (loop guard, max pages hit with more left)
    └── ConfigError               invalid settings or assumptions (also a ValueError)
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "AuthenticationError",
    "BadPageError",
    "ConfigError",
    "FatalError",
    "MalformedBodyError",
    "PaginationError",
    "RateLimitedError",
    "RateLimiterUnavailableError",
    "ResponseTooLargeError",
    "RetriableError",
    "XportError",
    "redact_url",
]

# query parameter names whose values are replaced by '***' in any URL we show
_SECRET_PARAM = re.compile(r"secret|signature|sign$|token|password|passwd|authorization", re.I)


def redact_url(url: object) -> str | None:
    """Return ``url`` as a string with user info and secret-looking query values removed.

    Args:
        url: a URL (``str`` or ``httpx.URL``) or None.

    Returns:
        The scrubbed URL, or None when ``url`` is None.
    """
    if url is None:
        return None
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]  # drop user:password@
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class XportError(Exception):
    """Base class of every error raised by xport_etl.

    Attributes:
        message: what went wrong, without the context below.
        endpoint: the endpoint name (``"taobao_orders"``) or None.
        code: the envelope ``code`` if there was an envelope, else the HTTP status, else None.
        http_status: the HTTP status of the response, or None (no response).
        request_id: the envelope's ``requestId``, or None.
        url: the request URL, scrubbed by :func:`redact_url`.
        attempts: how many attempts were made (set by the client), or None.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        code: int | str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        url: object = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.url = redact_url(url)
        self.attempts = attempts

    def context(self) -> str:
        """The ``key=value`` context appended to the message."""
        parts = []
        if self.endpoint is not None:
            parts.append(f"endpoint={self.endpoint}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.http_status is not None and self.http_status != self.code:
            parts.append(f"http_status={self.http_status}")
        if self.request_id is not None:
            parts.append(f"request_id={self.request_id}")
        if self.url is not None:
            parts.append(f"url={self.url}")
        if self.attempts is not None:
            parts.append(f"attempts={self.attempts}")
        return ", ".join(parts)

    def __str__(self) -> str:
        ctx = self.context()
        if self.attempts is not None and self.attempts > 1:
            head = f"{self.message} (gave up after {self.attempts} attempts)"
        else:
            head = self.message
        return f"{head} [{ctx}]" if ctx else head

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class RetriableError(XportError):
    """A transient failure: another attempt, after a pause, may succeed."""


class RateLimitedError(RetriableError):
    """The server or gateway said "too many requests" (HTTP 429 or envelope code 429).

    Attributes:
        retry_after: seconds the server asked us to wait (``Retry-After``), or None.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AuthenticationError(XportError):
    """401/403: the request was refused. Not retried: it needs a fix on our side."""


class FatalError(XportError):
    """A non-retriable API error (bad parameter, not found, unexpected status)."""


class BadPageError(XportError):
    """A page whose shape is wrong: ``data`` not an object, ``records`` not a list, ..."""


class MalformedBodyError(RetriableError, BadPageError):
    """HTTP 200 with a body that is not a JSON envelope (gateway garbage, a body cut off).

    It is retriable (a gateway answered for the application, or the body was truncated) and,
    once retries are exhausted, it is also a :class:`BadPageError`.
    """


class ResponseTooLargeError(BadPageError):
    """A response whose body is larger than ``XPORT_MAX_RESPONSE_BYTES`` (decoded): refused as
    soon as the declared length or the bytes read pass it, without reading the rest. Not retried:
    the same request gets the same answer."""


class PaginationError(XportError):
    """Paging cannot go on safely: the server ignores ``pageNo``, or ``max_pages`` was hit."""


class RateLimiterUnavailableError(XportError):
    """The shared rate-limit store (``XPORT_RATE_LIMIT_URL``, Redis) cannot be reached.

    Never retried by the client and never answered by sending unpaced: without the shared budget,
    several machines would together exceed the access key's limit.
    """


class ConfigError(XportError, ValueError):
    """Invalid configuration (settings or API assumptions). The message is one line."""


class RunInProgressError(RuntimeError):
    """Another run holds the data directory and the caller asked not to wait (``--no-wait``)."""
