"""Client-side rate limiting: one budget per access key, shared by every thread of the process.

The server's limit is **[assumed]** 10 requests/s per access key (CONTRACT §2), shared by every
caller using that key. :func:`limiter_for` hands out one :class:`RateLimiter` per access key per
process, so parallel workers (threads) share the budget. Anything with an ``acquire()`` method
(the :class:`Limiter` protocol) can stand in, e.g. a cross-process limiter backed by a file lock
or Redis, without touching the client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Limiter", "RateLimiter", "limiter_for", "reset_limiters"]


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
            now = self._clock()
            tat = now if self._tat is None else max(self._tat, now)
            allowed_at = tat - (self.burst - 1) * interval
            self._tat = tat + interval
        return max(0.0, allowed_at - now)

    def acquire(self) -> float:
        """Block until one request may be sent; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate!r}, burst={self.burst!r})"


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
