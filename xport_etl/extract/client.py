"""The HTTP client of the Xportcn OpenAPI: signing, rate limiting, retrying.

One request goes through these steps, every attempt afresh:

1. the shared per-key rate limiter (:mod:`xport_etl.extract.ratelimit`);
2. signing with a new nonce and timestamp (:class:`xport_etl.extract.auth.XportAuth`);
3. the exchange, bounded: ``XPORT_TIMEOUT`` for the whole request, ``XPORT_MAX_RESPONSE_BYTES``
   for the decoded body (:mod:`xport_etl.extract.transport`); a connection error, a timeout or a
   cut-off body is a :class:`~xport_etl.errors.RetriableError`;
4. sorting the answer into an :class:`~xport_etl.extract.responses.ApiResponse` or the error it is
   (:func:`~xport_etl.extract.responses.classify`: the table is in :mod:`xport_etl.extract.responses`);
5. retrying with tenacity when :func:`should_retry` says so: ``Retry-After`` honoured up to
   :data:`RETRY_AFTER_CAP`, else jittered exponential backoff (openai-python's constants).

Request bodies are written by :func:`xport_etl.jsonutil.dumps`: compact, Decimals exact, floats
refused. The access secret never appears in logs, errors or reprs.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import tenacity

from xport_etl import jsonutil
from xport_etl.errors import FatalError, MalformedBodyError, RetriableError, XportError
from xport_etl.extract.auth import XportAuth
from xport_etl.extract.endpoints import ApiAssumptions
from xport_etl.extract.ratelimit import Limiter, limiter_for_settings
from xport_etl.extract.responses import ApiResponse, classify, request_url
from xport_etl.extract.transport import Deadline, bound_requests, http_client, request_capped
from xport_etl.settings import Settings
from xport_etl.streams.spec import EndpointSpec

__all__ = [
    "INITIAL_DELAY",
    "JITTER",
    "MAX_DELAY",
    "MAX_TRIES",
    "RETRY_AFTER_CAP",
    "ClientStats",
    "RetryPolicy",
    "XportClient",
    "should_retry",
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


def _query_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        raise TypeError("floats are not allowed in query parameters; use Decimal or int")
    return value


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
        self._http = http_client(
            settings,
            transport=transport,
            auth=auth
            or XportAuth(settings.access_key, settings.access_secret, settings.user_id, recipe=settings.signer),
        )
        self._deadline = Deadline()
        bound_requests(self._http, self._deadline)

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
                url=request_url(exc) or endpoint.path,
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
