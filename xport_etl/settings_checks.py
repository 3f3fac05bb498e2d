"""The checks and parsers of settings' values that are more than bounds (:mod:`xport_etl.settings`
declares which setting uses which). A check is ``check(value, label, settings)``: it raises
:class:`~xport_etl.errors.ConfigError` naming ``label`` (the variable, flag or Connection extra the
person set) and may read the other settings (``settings``: a
:class:`~xport_etl.settings.Settings` being built); a parser is ``parse(text, label)``.
Nothing here reads the environment.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from xport_etl.errors import ConfigError
from xport_etl.extract.storage import check_url, redact

__all__ = [
    "RATE_LIMIT_URL_SCHEMES",
    "check_base_url",
    "check_freshness_warn",
    "check_memory",
    "parse_check_overrides",
    "check_page_size",
    "check_rate_limit_url",
    "check_raw_url",
    "check_storage_version",
    "check_umask",
    "is_sandbox_url",
    "optional_text",
    "parse_umask",
    "sign_recipes",
]

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_sandbox_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def check_base_url(value: str, label: str, settings: Any) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{label} must be an http(s) URL, got {value!r}")
    if parts.username or parts.password or parts.query:
        raise ConfigError(
            f"{label} must not contain credentials or a query string; set XPORT_ACCESS_KEY / XPORT_ACCESS_SECRET instead"
        )


def check_raw_url(value: str, label: str, settings: Any) -> None:
    check_url(value, name=label)


def check_storage_url(value: str, label: str, settings: Any) -> None:
    from xport_etl.store import check_storage_url as check

    check(value, name=label)


RATE_LIMIT_URL_SCHEMES = ("redis", "rediss", "unix")


def check_rate_limit_url(url: str, label: str = "XPORT_RATE_LIMIT_URL", settings: Any = None) -> None:
    """Refuse a ``XPORT_RATE_LIMIT_URL`` that is not a Redis URL.

    Raises:
        ConfigError: naming ``label``, with any password removed from the URL shown.
    """
    parts = urlsplit(url)
    if parts.scheme not in RATE_LIMIT_URL_SCHEMES or not (parts.hostname or parts.path):
        raise ConfigError(
            f"{label} must be a Redis URL (redis://host:6379/0, rediss://…, unix:///path), got {redact(url)!r}"
        )


def check_page_size(value: int, label: str, settings: Any) -> None:
    if not 1 <= value <= settings.assumptions.max_page_size:
        raise ConfigError(f"{label} must be an integer in 1..{settings.assumptions.max_page_size}, got {value!r}")


# a DuckDB memory limit: a number with a unit (DuckDB's own spelling), or a share of the RAM
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*(k|m|g|t)(i?b)?$|^(\d+(?:\.\d+)?)\s*%$", re.I)
_MIN_MEMORY = 16 * 10**6  # below this DuckDB cannot even hold its buffers


def check_memory(value: str, label: str, settings: Any) -> None:
    """A DuckDB memory limit (``192MB``, ``1.5GiB``, ``50%``), or ConfigError naming ``label``."""
    m = _MEMORY.match(str(value).strip())
    if not m:
        raise ConfigError(f"{label} must be a size such as 192MB, 1GB or 50%, got {value!r}")
    if m.group(4) is not None:
        if not 0 < float(m.group(4)) <= 100:
            raise ConfigError(f"{label} must be a share of the memory in (0, 100]%, got {value!r}")
        return
    scale = 1024 if (m.group(3) or "").lower() == "ib" else 1000
    size = float(m.group(1)) * scale ** "kmgt".index(m.group(2).lower()) * scale
    if size < _MIN_MEMORY:
        raise ConfigError(f"{label} must be at least 16MB, got {value!r}")


_STORAGE_VERSION = re.compile(r"v\d{1,3}\.\d{1,3}\.\d{1,3}|latest")


def check_storage_version(value: Any, label: str, settings: Any) -> None:
    if not (isinstance(value, str) and _STORAGE_VERSION.fullmatch(value)):
        raise ConfigError(
            f"{label} must be a DuckDB release such as v1.0.0 (the default: DuckDB "
            f"1.0 and later can read the warehouse) or latest, got {value!r}"
        )


def check_freshness_warn(value: float, label: str, settings: Any) -> None:
    if not value <= settings.freshness_hours:
        raise ConfigError(
            f"{label} must be at most XPORT_FRESHNESS_HOURS ({settings.freshness_hours:g} hours), got {value!r}"
        )


def parse_umask(raw: str, label: str) -> int:
    if not re.fullmatch(r"0?o?[0-7]{1,3}", raw):
        raise ConfigError(f"{label} must be an octal umask such as 077 or 027, got {raw!r}")
    return int(raw.replace("o", ""), 8)


def check_umask(value: int, label: str, settings: Any = None) -> None:
    if not 0 <= value <= 0o777:
        raise ConfigError(f"{label} must be an octal umask such as 077 or 027, got {value!r}")
    if value & 0o007 != 0o007:
        raise ConfigError(
            f"{label}={value:03o} would let every user of the machine read personal data; "
            "use 077 (owner only) or 027 (owner and the data directory's group)"
        )


def sign_recipes() -> tuple[str, ...]:
    from xport_etl.extract.auth import SIGN_RECIPES  # httpx is not needed to read settings

    return tuple(SIGN_RECIPES)


def parse_check_overrides(value: Any) -> dict[str, dict[str, Any]]:
    from xport_etl.load.checks import parse_overrides  # the checks' own parser: settings import no step

    return parse_overrides(value)


def optional_text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None
