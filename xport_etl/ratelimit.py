"""Client-side rate limiting: one budget per access key, shared by every thread of the process
(:class:`RateLimiter`) or by every process on the machine (:class:`FileRateLimiter`).

The server's limit is **[assumed]** 10 requests/s per access key (CONTRACT §2), shared by every
caller using that key. :func:`limiter_for` hands out one :class:`RateLimiter` per access key per
process, so parallel workers (threads) share the budget. Anything with an ``acquire()`` method
(the :class:`Limiter` protocol) can stand in, e.g. a cross-process limiter backed by a file lock
or Redis, without touching the client.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

__all__ = ["FileRateLimiter", "Limiter", "RateLimiter", "limiter_for", "reset_limiters", "shared_limiter"]


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
    storage that supports ``flock`` (NFSv4) or swap in a Redis-backed limiter with the same
    ``acquire()``. Times come from ``time.time`` (comparable across processes).
    """

    def __init__(self, path: Path | str, rate: float | None, burst: int = 1, *,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
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


def shared_limiter(state_dir: Path | str, access_key: str, rate: float | None) -> FileRateLimiter:
    """The machine-wide limiter of ``access_key``: one file per key under ``state_dir``.

    The file is named by a hash of the key, never the key itself. Within a process the same
    object is returned for the same file, so its threads also share one descriptor and lock.
    """
    name = hashlib.sha256(access_key.encode()).hexdigest()[:16]
    path = (Path(state_dir) / "ratelimit" / f"{name}.tat").resolve()
    with _registry_lock:
        limiter = _shared.get(path)
        if limiter is None:
            limiter = _shared[path] = FileRateLimiter(path, rate)
        limiter.rate = float(rate or 0.0)
        return limiter
