"""The exceptions of the xport_etl library: one tree, rooted at :class:`XportError`.

Every *expected* failure (the API refusing, a bad setting, a landed file xport-etl did not write,
a failed data check, ...) is an :class:`XportError` subclass that carries what to do about it:

- ``exit_code``: the ``xport-etl`` exit code (README, *Exit codes*; docs/operations.md);
- ``hint``: one line saying what to do (``{command}`` stands for the subcommand's name);
- ``permanent``: True when another try cannot succeed until a person fixes something (the Airflow
  tasks then fail at once, without their retries: ``xport_airflow_provider.failures``).

The three are class attributes; an instance may carry its own (``hint=``/``exit_code=`` keyword
arguments, or set in a subclass's ``__init__``). :func:`xport_etl.cliutil.run_command` prints
``error: <message>`` and ``hint: <hint>`` and exits with ``exit_code``; anything that is not an
``XportError`` (but for the file system's own ``OSError``, exit 7, and a missing optional extra,
exit 2) is a bug: a traceback and exit 1. So is an ``XportError`` that declares no exit code of
its own (the base class's 1): a new failure says how it ends.

Every API error carries the context needed to act on it without a debugger: the endpoint name,
the envelope ``code`` (or the HTTP status when there is no envelope), the server's ``requestId``,
a URL with any secret-looking query value stripped, and, once retries are over, the number of
attempts. The access secret is never sent to the server, so it cannot appear here; URLs are
scrubbed anyway in case a caller put a signature or token in a query string.

Hierarchy (exit code; ``*`` permanent; where a class is defined if not here)::

    XportError                        (1: declares nothing; a bug)
    ├── ApiError                      3  the API failed: unreachable, refused, retries exhausted
    │   ├── RetriableError            3  worth another try (gateway 5xx, envelope 500, cut connections)
    │   │   ├── RateLimitedError      3  HTTP 429 or envelope 429; ``retry_after`` seconds if known
    │   │   └── MalformedBodyError    5  HTTP 200 with a body that is not a JSON envelope (also a BadPageError)
    │   ├── AuthenticationError       3* 401/403: fix credentials, user-id or the machine clock
    │   ├── FatalError                3* 400/404/other codes: retrying will not help
    │   ├── BadPageError              5  a page whose shape is wrong (``data.records`` not a list, ...)
    │   │   └── ResponseTooLargeError 5* a body over ``XPORT_MAX_RESPONSE_BYTES`` (never retried)
    │   └── PaginationError           3  paging went wrong (loop guard, max pages hit with more left)
    ├── RateLimiterUnavailableError   3  the shared rate-limit store (Redis) cannot be reached
    ├── UsageError                    2* bad arguments
    ├── ConfigError                   2* invalid settings or assumptions (also a ValueError)
    ├── NotFoundError                 2  what the command was pointed at does not exist (also a FileNotFoundError)
    ├── CheckFailedError              4  an error data check failed; nothing published (load.checks)
    ├── BadInputError                 5  bad input data stopped a window
    │   ├── PageError                 5  a landed page that is not a page (normalize.values)
    │   ├── PagesUnreadableError      5  a pages.jsonl.gz cut short or corrupt (extract.landing)
    │   ├── ManifestError             5* a manifest xport-etl did not write (extract.landing)
    │   └── PathOutsideError          5* a path from data that leads outside its root (extract.storage)
    ├── StaleDataError                6  a fact table older than its freshness (report.status)
    ├── WarehouseError                7* the published warehouse is not a readable DuckDB file (load.connect)
    └── RunInProgressError            8  another run holds the data directory (``--no-wait``)
        └── LeaseLostError            8  another host took over this run's lease (a storage URL)

``normalize.values.RejectError`` is not in the tree on purpose: it is the normalisers' control flow
(one record cannot be typed: a row in ``etl_rejects``), caught around each record, never seen by a
command.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadInputError",
    "BadPageError",
    "ConfigError",
    "FatalError",
    "MalformedBodyError",
    "NotFoundError",
    "PaginationError",
    "RateLimitedError",
    "RateLimiterUnavailableError",
    "ResponseTooLargeError",
    "ResponseTooLargeError",
    "RetriableError",
    "LeaseLostError",
    "RunInProgressError",
    "UsageError",
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
    """Base class of every expected failure of xport_etl (see the module docstring).

    Attributes:
        message: what went wrong, without the context below.
        exit_code: the CLI's exit code (a class attribute; ``exit_code=`` overrides it).
        hint: what to do, one line (a class attribute; ``hint=`` overrides it).
        permanent: whether another try is pointless until a person fixes something.
        endpoint: the endpoint name (``"taobao_orders"``) or None.
        code: the envelope ``code`` if there was an envelope, else the HTTP status, else None.
        http_status: the HTTP status of the response, or None (no response).
        request_id: the envelope's ``requestId``, or None.
        url: the request URL, scrubbed by :func:`redact_url`.
        attempts: how many attempts were made (set by the client), or None.
    """

    exit_code: int = 1  # every subclass declares its own: 1 is a bug's (tests/test_errors.py)
    hint: str = "this failure declares no exit code: a bug in xport-etl, please report it"
    permanent: bool = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        exit_code: int | None = None,
        endpoint: str | None = None,
        code: int | str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        url: object = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
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


class ApiError(XportError):
    """The API failed: unreachable, refused, or retries exhausted."""

    exit_code = 3
    hint = "is the API reachable at XPORT_BASE_URL? (`xport-sandbox serve` starts a local one)"


class RetriableError(ApiError):
    """A transient failure: another attempt, after a pause, may succeed."""


class RateLimitedError(RetriableError):
    """The server or gateway said "too many requests" (HTTP 429 or envelope code 429).

    Attributes:
        retry_after: seconds the server asked us to wait (``Retry-After``), or None.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AuthenticationError(ApiError):
    """401/403: the request was refused. Not retried: it needs a fix on our side."""

    hint = "check XPORT_ACCESS_KEY, XPORT_ACCESS_SECRET, XPORT_USER_ID and the machine clock"
    permanent = True


class FatalError(ApiError):
    """A non-retriable API error (bad parameter, not found, unexpected status)."""

    permanent = True


class BadPageError(ApiError):
    """A page whose shape is wrong: ``data`` not an object, ``records`` not a list, ...: the API
    answered, with something that is not a page (exit 5, README *Exit codes*)."""

    exit_code = 5
    hint = (
        "the pages landed before it are kept; re-run the same command to fetch the window again, and if "
        "the answer stays malformed, give its request_id to the API's support"
    )


class MalformedBodyError(RetriableError, BadPageError):
    """HTTP 200 with a body that is not a JSON envelope (gateway garbage, a body cut off).

    It is retriable (a gateway answered for the application, or the body was truncated) and,
    once retries are exhausted, it is also a :class:`BadPageError`.
    """


class ResponseTooLargeError(BadPageError):
    """A response whose body is larger than ``XPORT_MAX_RESPONSE_BYTES`` (decoded): refused as
    soon as the declared length or the bytes read pass it, without reading the rest. Not retried:
    the same request gets the same answer."""

    permanent = True
    hint = "raise XPORT_MAX_RESPONSE_BYTES if the API really answers this much, or narrow the window (--chunk-days)"


class PaginationError(ApiError):
    """Paging cannot go on safely: the server ignores ``pageNo``, or ``max_pages`` was hit."""


class RateLimiterUnavailableError(XportError):
    """The shared rate-limit store (``XPORT_RATE_LIMIT_URL``, Redis) cannot be reached.

    Never retried by the client and never answered by sending unpaced: without the shared budget,
    several machines would together exceed the access key's limit.
    """

    exit_code = 3
    hint = (
        "start Redis or fix XPORT_RATE_LIMIT_URL (unset it to share the budget through a "
        "lock file on this machine only)"
    )


_SEE_HELP = "see `xport-etl {command} --help`"


class UsageError(XportError):
    """Bad arguments (a date that is not one, an empty window, an unknown report name)."""

    exit_code = 2
    hint = _SEE_HELP
    permanent = True


class ConfigError(XportError, ValueError):
    """Invalid configuration (settings or assumptions). The message is one line."""

    exit_code = 2
    hint = _SEE_HELP
    permanent = True


class NotFoundError(XportError, FileNotFoundError):
    """What the command was pointed at does not exist: no warehouse (nothing published yet), a
    ``--manifest`` that is not there. Also a ``FileNotFoundError``, as it was before it had a class."""

    exit_code = 2
    hint = "check --data-dir / XPORT_DATA_DIR"


class BadInputError(XportError):
    """Bad input data stopped a window; the subclasses say which and how to land it again."""

    exit_code = 5
    hint = "the window's raw pages are kept under raw/; re-run the window to fetch it again"


class RunInProgressError(XportError):
    """Another run holds the data directory and the caller asked not to wait (``--no-wait``)."""

    exit_code = 8
    hint = (
        "wait for it (run again without --no-wait), or stop it; a killed run resumes "
        "from its checkpoints when the same command runs again"
    )


class LeaseLostError(RunInProgressError):
    """Under a storage URL, another host took over this run's lease (this one stopped renewing it in
    time: frozen, or cut off from the store); the run stops before it writes a plan the other
    host now owns."""

    hint = (
        "the other host goes on with the run; check `xport-etl status`, and raise XPORT_RUN_LEASE if "
        "this host's pauses (or the store's) can last that long"
    )
