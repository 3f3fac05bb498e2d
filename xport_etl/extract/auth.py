"""Request signing for the Xportcn OpenAPI (docs/api-contract.md#1-transport-and-authentication).

Five headers go on every request: ``access-key``, ``timestamp`` (epoch milliseconds, 13 digits,
or seconds with a recipe that says so), ``nonce-str`` (32 random ``[0-9a-zA-Z]``), ``user-id`` and
``signature``. They are computed afresh for every request httpx sends, so a retry carries a new
nonce, timestamp and signature (the server rejects a replayed nonce and a timestamp more than
600 s off).

How the signature is computed is **[assumed]**: the documentation only says which three headers
are signed. A :class:`SignRecipe` (the signed string's template and the timestamp unit) is
therefore configuration; :data:`SIGN_RECIPES` holds the shipped ones and :func:`resolve_recipe`
turns the settings (``XPORT_SIGN_RECIPE``, ``XPORT_SIGN_TEMPLATE``, ``XPORT_TIMESTAMP_UNIT``) into
one. ``xport-etl check`` tries the shipped recipes when the configured one is refused.

The access secret is only an input to :func:`sign`; it is never sent, logged or shown in a repr.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import httpx

from xport_etl.errors import ConfigError

__all__ = [
    "DEFAULT_SIGN_RECIPE",
    "NONCE_ALPHABET",
    "NONCE_LENGTH",
    "SIGN_RECIPES",
    "TIMESTAMP_UNITS",
    "SignRecipe",
    "XportAuth",
    "make_nonce",
    "now_ms",
    "resolve_recipe",
    "sign",
]

NONCE_ALPHABET = string.digits + string.ascii_letters
NONCE_LENGTH = 32


def sign(access_key: str, nonce: str, timestamp_ms: str, secret: str) -> str:
    """Compute the ``signature`` header with the default recipe (``"query"``)::

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
    return SIGN_RECIPES["query"].sign(access_key, nonce, timestamp_ms, secret)


TIMESTAMP_UNITS = ("ms", "s")
PLACEHOLDERS = ("access_key", "nonce", "timestamp", "secret")


@dataclass(frozen=True)
class SignRecipe:
    """How the ``signature`` header is computed: ``upper(hex(md5(utf8(template filled in))))``.

    Attributes:
        name: ``"query"``, ``"concat"`` (shipped) or ``"custom"``.
        template: the signed string, with the placeholders ``{access_key}``, ``{nonce}``,
            ``{timestamp}`` and ``{secret}`` (each exactly as sent; ``{{``/``}}`` for a brace).
        timestamp_unit: ``"ms"`` (13 digits) or ``"s"`` (10 digits): the ``timestamp`` header's
            unit, which is also the unit that goes into the signed string.
    """

    name: str
    template: str
    timestamp_unit: str = "ms"

    def __post_init__(self) -> None:
        if self.timestamp_unit not in TIMESTAMP_UNITS:
            raise ConfigError(f"the timestamp unit must be 'ms' or 's', got {self.timestamp_unit!r}")
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None]
        except ValueError as exc:
            raise ConfigError(f"the signing template {self.template!r} does not parse: {exc}") from None
        unknown = sorted(set(fields) - set(PLACEHOLDERS))
        if unknown:
            raise ConfigError(
                f"unknown placeholder(s) {', '.join(unknown)} in the signing template; "
                f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
        missing = [p for p in PLACEHOLDERS if p not in fields]
        if missing:
            raise ConfigError(
                f"the signing template must contain {', '.join('{' + p + '}' for p in missing)} "
                "(the three signed headers and the secret)"
            )

    def timestamp(self, epoch_ms: int) -> str:
        """The ``timestamp`` header for ``epoch_ms``, in this recipe's unit."""
        return str(int(epoch_ms) if self.timestamp_unit == "ms" else int(epoch_ms) // 1000)

    def base(self, access_key: str, nonce: str, timestamp: str, secret: str) -> str:
        """The signed string (it holds the secret: never log it)."""
        return self.template.format(access_key=access_key, nonce=nonce, timestamp=timestamp, secret=secret)

    def sign(self, access_key: str, nonce: str, timestamp: str, secret: str) -> str:
        """32 upper-case hex characters: the ``signature`` header."""
        base = self.base(access_key, nonce, timestamp, secret)
        return hashlib.md5(base.encode("utf-8")).hexdigest().upper()


# docs/api-contract.md#11-signing-recipes: "query" is the contract's own recipe; "concat" comes from
# a third-party client of the same API (unverified). Both are [assumed].
SIGN_RECIPES: Mapping[str, SignRecipe] = MappingProxyType(
    {
        "query": SignRecipe(
            "query", "access-key={access_key}&nonce-str={nonce}&timestamp={timestamp}&secret={secret}", "ms"
        ),
        "concat": SignRecipe("concat", "{access_key}{timestamp}{nonce}{secret}", "s"),
    }
)
DEFAULT_SIGN_RECIPE = "query"


def resolve_recipe(
    name: str = DEFAULT_SIGN_RECIPE,
    template: str | None = None,
    timestamp_unit: str | None = None,
) -> SignRecipe:
    """The recipe the settings describe: a shipped one, or a custom template and/or unit.

    Args:
        name: a shipped recipe (``XPORT_SIGN_RECIPE``).
        template: a custom signed-string template (``XPORT_SIGN_TEMPLATE``); replaces the
            shipped recipe's template and makes the recipe ``"custom"``.
        timestamp_unit: ``"ms"`` or ``"s"`` (``XPORT_TIMESTAMP_UNIT``); replaces the unit.

    Raises:
        ConfigError: an unknown recipe name, a bad template or unit.
    """
    shipped = SIGN_RECIPES.get(name)
    if shipped is None:
        raise ConfigError(f"XPORT_SIGN_RECIPE: unknown signing recipe {name!r}; shipped: {', '.join(SIGN_RECIPES)}")
    if template is None and timestamp_unit is None:
        return shipped
    try:
        return SignRecipe(
            "custom" if template is not None else shipped.name,
            shipped.template if template is None else template,
            timestamp_unit or shipped.timestamp_unit,
        )
    except ConfigError as exc:
        var = "XPORT_TIMESTAMP_UNIT" if "unit" in exc.message else "XPORT_SIGN_TEMPLATE"
        raise ConfigError(f"{var}: {exc.message}") from None


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
        recipe: how to sign (default: the ``"query"`` recipe, millisecond timestamps).
    """

    def __init__(
        self,
        access_key: str,
        secret: str,
        user_id: str,
        *,
        clock: Callable[[], int] = now_ms,
        nonce: Callable[[], str] = make_nonce,
        recipe: SignRecipe | None = None,
    ) -> None:
        self.access_key = access_key
        self._secret = secret
        self.user_id = user_id
        self._clock = clock
        self._nonce = nonce
        self.recipe = recipe or SIGN_RECIPES[DEFAULT_SIGN_RECIPE]

    def headers(self) -> dict[str, str]:
        """A fresh set of the five authentication headers."""
        timestamp = self.recipe.timestamp(self._clock())
        nonce = self._nonce()
        return {
            "access-key": self.access_key,
            "timestamp": timestamp,
            "nonce-str": nonce,
            "user-id": str(self.user_id),
            "signature": self.recipe.sign(self.access_key, nonce, timestamp, self._secret),
        }

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers())
        yield request

    def __repr__(self) -> str:
        return (
            f"XportAuth(access_key={self.access_key!r}, user_id={self.user_id!r}, "
            f"recipe={self.recipe.name!r}, secret='***')"
        )
