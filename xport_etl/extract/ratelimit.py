"""Client-side rate limiting: one budget per access key, shared by every thread of the process
(:class:`RateLimiter`), by every process on the machine (:class:`FileRateLimiter`, the default)
or by every machine that uses the same Redis (:class:`RedisRateLimiter`,
``XPORT_RATE_LIMIT_URL=redis://…``).

The server's limit is **[assumed]** 10 requests/s per access key
(docs/api-contract.md#23-rate-limit), shared by every caller using that key. :func:`limiter_for`
hands out one :class:`RateLimiter` per access key per process, so parallel workers (threads) share
the budget. Anything with an ``acquire()`` method (the :class:`Limiter` protocol) can stand in, e.g.
a cross-process limiter backed by a file lock or Redis, without touching the client;
:func:`limiter_for_settings` picks the one the settings describe.

Redis: one atomic Lua script per request keeps the same GCRA "theoretical arrival time" under a
key named by a hash of the access key, with Redis's own clock (so the hosts' clocks need not
agree). If Redis cannot be reached when the limiter is built, it refuses with
:class:`~xport_etl.errors.RateLimiterUnavailableError` (the CLI's exit code 3) instead of falling
back to a per-machine budget: several machines each on their own budget would together exceed the
key's limit, which is the thing this limiter exists to prevent. A Redis that goes away mid-run is
retried briefly, then the same error stops the run; requests are never sent unpaced.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from xport_etl.errors import ConfigError, RateLimiterUnavailableError
from xport_etl.layout import DataLayout, Where
from xport_etl.settings import Settings, check_rate_limit_url  # the setting's own check (one import direction)

__all__ = [
    "FileRateLimiter",
    "Limiter",
    "RateLimiter",
    "RedisRateLimiter",
    "check_rate_limit_url",
    "limiter_for",
    "limiter_for_settings",
    "redis_limiter",
    "reset_limiters",
    "shared_limiter",
]


class Limiter(Protocol):
    """What the client needs from a rate limiter."""

    def acquire(self) -> float:
        """Block until one request may be sent; return the seconds waited."""
        ...


class RateLimiter:
    """A thread-safe token bucket (in its "virtual scheduling" form, GCRA).

    Each :meth:`acquire` reserves the next free slot under a lock and sleeps outside it, so ``N``
    acquisitions on a full bucket span at least ``(N - burst) / rate`` seconds whatever the number
    of threads (with the default ``burst=1``: ``(N - 1) / rate``).

    Args:
        rate: requests per second; ``0`` or ``None`` means unlimited.
        burst: how many requests may go at once after an idle period (bucket size).
        clock: monotonic clock in seconds (injectable for tests).
        sleep: sleep function (injectable for tests).
    """

    def __init__(
        self,
        rate: float | None,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate < 0:
            raise ValueError(f"rate must be >= 0 (0 or None = unlimited), got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate = rate or 0.0
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat: float | None = None  # theoretical arrival time of the next request

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def reserve(self) -> float:
        """Reserve the next slot and return how long the caller must wait for it (no sleeping)."""
        if self.unlimited:
            return 0.0
        interval = 1.0 / self.rate
        with self._lock:
            self._tat, wait = _gcra(self._tat, self._clock(), interval, self.burst)
        return wait

    def acquire(self) -> float:
        """Block until one request may be sent; return the seconds waited."""
        return _acquire(self)

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate!r}, burst={self.burst!r})"


def _gcra(tat: float | None, now: float, interval: float, burst: int) -> tuple[float, float]:
    """One reservation: the next theoretical arrival time, and how long this caller must wait."""
    tat = now if tat is None else max(tat, now)
    return tat + interval, max(0.0, tat - (burst - 1) * interval - now)


def _acquire(limiter) -> float:
    wait = limiter.reserve()
    if wait > 0:
        limiter._sleep(wait)
    return wait


_registry: dict[str, RateLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(access_key: str, rate: float | None) -> RateLimiter:
    """The process-wide limiter of ``access_key`` (created on first use).

    Every caller with the same access key gets the same object, so threads share one budget.
    If a later caller asks for a different rate, the shared limiter adopts it (the budget belongs
    to the key, not to the caller).

    Args:
        access_key: the AccessKey whose budget is shared.
        rate: requests per second; ``0`` or ``None`` = unlimited.
    """
    with _registry_lock:
        limiter = _registry.get(access_key)
        if limiter is None:
            limiter = _registry[access_key] = RateLimiter(rate)
        elif (rate or 0.0) != limiter.rate:
            with limiter._lock:
                limiter.rate = rate or 0.0
        return limiter


def reset_limiters() -> None:
    """Forget every shared limiter (for tests)."""
    with _registry_lock:
        _registry.clear()


class FileRateLimiter:
    """The same GCRA budget, shared by every process that uses the same file.

    Airflow runs each task in its own process, so a per-process limiter lets N concurrent tasks
    send N times the key's budget. This one keeps the "theoretical arrival time" of the next
    request in a small file and updates it under an exclusive ``flock``: every process and thread
    reserving a slot through the same file shares one budget. On several hosts, put the file on
    storage that supports ``flock`` (NFSv4) or use :class:`RedisRateLimiter`
    (``XPORT_RATE_LIMIT_URL``). Times come from ``time.time`` (comparable across processes).
    """

    def __init__(
        self,
        path: Path | str,
        rate: float | None,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.path = Path(path)
        self.rate = float(rate or 0.0)
        self.burst = burst
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()  # flock does not exclude threads sharing one descriptor
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def reserve(self) -> float:
        if self.rate <= 0:
            return 0.0
        interval = 1.0 / self.rate
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(self._fd, 64, 0)
                try:
                    tat = float(raw.decode().strip()) if raw.strip() else None
                except ValueError:
                    tat = None  # a torn or foreign file: start afresh
                tat, wait = _gcra(tat, self._clock(), interval, self.burst)
                os.pwrite(self._fd, f"{tat:.6f}".ljust(32).encode(), 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return wait

    def acquire(self) -> float:
        return _acquire(self)

    def __repr__(self) -> str:
        return f"FileRateLimiter(path={str(self.path)!r}, rate={self.rate!r}, burst={self.burst!r})"


_shared: dict[Path, FileRateLimiter] = {}


def shared_limiter(where: Where, access_key: str, rate: float | None) -> FileRateLimiter:
    """The machine-wide limiter of ``access_key``: one file per key in the ``ratelimit`` folder of
    ``where``'s layout (a data directory, its :class:`~xport_etl.layout.DataLayout` or the settings).

    The file is named by a hash of the key, never the key itself. Within a process the same
    object is returned for the same file, so its threads also share one descriptor and lock.
    """
    path = (DataLayout.of(where).ratelimit / f"{_key_name(access_key)}.tat").resolve()
    with _registry_lock:
        limiter = _shared.get(path)
        if limiter is None:
            limiter = _shared[path] = FileRateLimiter(path, rate)
        limiter.rate = float(rate or 0.0)
        return limiter


def _key_name(access_key: str) -> str:
    return hashlib.sha256(access_key.encode()).hexdigest()[:16]


# GCRA in one atomic step on Redis's clock. KEYS[1]: the key's state; ARGV: interval (s), burst.
# Returns the caller's wait as text (a Lua number would be truncated to an integer reply).
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
local tat = raw and tonumber(raw) or now
if tat < now then tat = now end
local wait = tat - (burst - 1) * interval - now
if wait < 0 then wait = 0 end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', next_tat), 'PX', math.ceil((next_tat - now) * 1000) + 60000)
return string.format('%.6f', wait)
"""


class RedisRateLimiter:
    """The same GCRA budget, shared through Redis by every process on every machine.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``).
        access_key: whose budget; the Redis key is ``xport:ratelimit:<sha256(key)[:16]>``.
        rate: requests per second; ``0`` or ``None`` = unlimited.
        burst: bucket size (as :class:`RateLimiter`).
        client: a ``redis.Redis`` to use instead of one built from ``url`` (tests).
        retries: how many times a failed reservation is retried before giving up.

    Raises:
        ConfigError: the ``redis`` package is missing (``pip install 'xport-etl[redis]'``).
        RateLimiterUnavailableError: Redis does not answer a PING when the limiter is built.
    """

    def __init__(
        self,
        url: str,
        access_key: str,
        rate: float | None,
        burst: int = 1,
        *,
        client: Any = None,
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 5.0,
    ):
        from xport_etl.extract.storage import redact

        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        check_rate_limit_url(url)
        self.url = redact(url)
        self.key = f"xport:ratelimit:{_key_name(access_key)}"
        self.rate = float(rate or 0.0)
        self.burst = burst
        self.retries = retries
        self._sleep = sleep
        try:
            import redis
        except ImportError:
            raise ConfigError(
                "XPORT_RATE_LIMIT_URL needs the redis client library: pip install 'xport-etl[redis]'"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._client = (
            client
            if client is not None
            else redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        )
        try:
            self._client.ping()
        except self._errors as exc:
            raise RateLimiterUnavailableError(
                f"the shared rate-limit store {self.url} (XPORT_RATE_LIMIT_URL) is unreachable:"
                f" {type(exc).__name__}: {exc}; refusing to run without the shared budget"
            ) from None
        self._script = self._client.register_script(_GCRA_LUA)

    def reserve(self) -> float:
        """Reserve the next slot in Redis; return how long the caller must wait for it."""
        if self.rate <= 0:
            return 0.0
        interval = 1.0 / self.rate
        for attempt in range(self.retries + 1):
            try:
                return float(self._script(keys=[self.key], args=[f"{interval:.9f}", self.burst]))
            except self._errors as exc:
                if attempt >= self.retries:
                    raise RateLimiterUnavailableError(
                        f"the shared rate-limit store {self.url} (XPORT_RATE_LIMIT_URL) failed:"
                        f" {type(exc).__name__}: {exc}"
                    ) from None
                self._sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def acquire(self) -> float:
        return _acquire(self)

    def __repr__(self) -> str:
        return f"RedisRateLimiter(url={self.url!r}, rate={self.rate!r}, burst={self.burst!r})"


_redis: dict[tuple[str, str], RedisRateLimiter] = {}


def redis_limiter(url: str, access_key: str, rate: float | None) -> RedisRateLimiter:
    """The process's limiter of ``access_key`` in the Redis at ``url`` (built, and pinged, once)."""
    with _registry_lock:
        limiter = _redis.get((url, access_key))
        if limiter is None:
            limiter = _redis[(url, access_key)] = RedisRateLimiter(url, access_key, rate)
        limiter.rate = float(rate or 0.0)
        return limiter


def limiter_for_settings(settings: Settings) -> Limiter:
    """The limiter ``settings`` describe: none when the rate is 0, Redis when
    ``rate_limit_url`` is set, else the machine-wide lock file in the data layout's ``ratelimit``."""
    if not settings.rate_limit:
        return RateLimiter(None)
    if settings.rate_limit_url:
        return redis_limiter(settings.rate_limit_url, settings.access_key, settings.rate_limit)
    return shared_limiter(settings.layout, settings.access_key, settings.rate_limit)
