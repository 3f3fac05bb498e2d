"""Request signing for the Xportcn OpenAPI (CONTRACT §1).

Five headers go on every request: ``access-key``, ``timestamp`` (epoch milliseconds, 13 digits),
``nonce-str`` (32 random ``[0-9a-zA-Z]``), ``user-id`` and ``signature``. They are computed afresh
for every request httpx sends, so a retry carries a new nonce, timestamp and signature (the server
rejects a replayed nonce and a timestamp more than 600 s off).

The access secret is only an input to :func:`sign`; it is never sent, logged or shown in a repr.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from collections.abc import Callable, Generator

import httpx

__all__ = ["NONCE_ALPHABET", "NONCE_LENGTH", "XportAuth", "make_nonce", "now_ms", "sign"]

NONCE_ALPHABET = string.digits + string.ascii_letters
NONCE_LENGTH = 32


def sign(access_key: str, nonce: str, timestamp_ms: str, secret: str) -> str:
    """Compute the ``signature`` header.

    The recipe is **[assumed]** (the documentation only says which three headers are signed);
    this is the one place it lives::

        base      = "access-key=" + ak + "&nonce-str=" + nonce + "&timestamp=" + ts + "&secret=" + secret
        signature = upper(hex(md5(utf8(base))))

    Args:
        access_key: the developer's AccessKey.
        nonce: the ``nonce-str`` header value.
        timestamp_ms: the ``timestamp`` header value (epoch milliseconds, as a string).
        secret: the access secret.

    Returns:
        32 upper-case hex characters.
    """
    base = f"access-key={access_key}&nonce-str={nonce}&timestamp={timestamp_ms}&secret={secret}"
    return hashlib.md5(base.encode("utf-8")).hexdigest().upper()


def make_nonce(length: int = NONCE_LENGTH) -> str:
    """A cryptographically random ``nonce-str`` of ``length`` characters ``[0-9a-zA-Z]``.

    One ``token_bytes`` call instead of a system call per character (``secrets.choice``): bytes
    below 248 (4 x 62) map to the alphabet with every character equally likely, the rest are
    dropped."""
    size = len(NONCE_ALPHABET)
    keep = 256 - 256 % size
    out = ""
    while len(out) < length:
        out += "".join(NONCE_ALPHABET[b % size] for b in secrets.token_bytes(length + 8) if b < keep)
    return out[:length]


def now_ms() -> int:
    """The current time in epoch milliseconds (exact integer arithmetic, no float rounding)."""
    return time.time_ns() // 1_000_000


class XportAuth(httpx.Auth):
    """httpx auth that signs every request (including each retry) with fresh headers.

    Args:
        access_key: the AccessKey (sent as ``access-key``).
        secret: the access secret (used to sign, never sent).
        user_id: the (sub-)account id (sent as ``user-id``).
        clock: returns the current epoch time in **milliseconds**; injectable for tests.
        nonce: returns a fresh nonce; injectable for tests.
    """

    def __init__(
        self,
        access_key: str,
        secret: str,
        user_id: str,
        *,
        clock: Callable[[], int] = now_ms,
        nonce: Callable[[], str] = make_nonce,
    ) -> None:
        self.access_key = access_key
        self._secret = secret
        self.user_id = user_id
        self._clock = clock
        self._nonce = nonce

    def headers(self) -> dict[str, str]:
        """A fresh set of the five authentication headers."""
        timestamp = str(int(self._clock()))
        nonce = self._nonce()
        return {
            "access-key": self.access_key,
            "timestamp": timestamp,
            "nonce-str": nonce,
            "user-id": str(self.user_id),
            "signature": sign(self.access_key, nonce, timestamp, self._secret),
        }

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers())
        yield request

    def __repr__(self) -> str:
        return f"XportAuth(access_key={self.access_key!r}, user_id={self.user_id!r}, secret='***')"
