"""Every [assumed] choice of the API contract gathered in ONE object, :data:`ASSUMED`, the
endpoints with the assumptions applied (:func:`endpoints_for`), and the API's time formats.

The contract (``docs/api-contract.md``) tags what the public documentation does not show as
[assumed]. The endpoints themselves are declared with their streams (:mod:`xport_etl.streams`);
the signing recipes are in :mod:`xport_etl.extract.auth`, chosen by ``XPORT_SIGN_RECIPE``. A
user with real credentials corrects any of them by configuration: point
``XPORT_API_ASSUMPTIONS`` at a JSON file (see :func:`load_assumptions` for the keys), whose
``endpoint_overrides`` may change any field of an endpoint's declaration.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from xport_etl.errors import ConfigError
from xport_etl.streams.graph import STREAMS
from xport_etl.streams.spec import TIME_FORMATS, EndpointSpec, WindowSpec

__all__ = [
    "ASSUMED",
    "ASSUMPTIONS_ENV_VAR",
    "COMPACT_TIME_FORMAT",
    "ENDPOINTS",
    "ApiAssumptions",
    "endpoints_for",
    "format_window_value",
    "is_compact_time",
    "load_assumptions",
    "parse_alibaba_time",
    "parse_cst",
    "window_params",
]

ASSUMPTIONS_ENV_VAR = "XPORT_API_ASSUMPTIONS"


@dataclass(frozen=True)
class ApiAssumptions:
    """Every [assumed] contract choice, in one configurable place.

    Attributes:
        source_utc_offset: the offset of the API's offset-less time strings (``"+08:00"``, CST).
        cst_time_format: ``strftime`` format of those strings (``yyyy-MM-dd HH:mm:ss``).
        max_page_size: the largest ``pageSize`` the server accepts (larger → code 400).
        success_code: the envelope ``code`` of success.
        retriable_codes: envelope codes worth retrying (429 too many requests, 500 system error).
        auth_codes: envelope codes meaning "refused" (401 authentication, 403 user-id).
        http_retriable_statuses: HTTP statuses of the gateway worth retrying.
        timestamp_window_s: how far the ``timestamp`` header may be from the server's clock.
        nonce_window_s: how long the server remembers a ``nonce-str``.
        endpoint_overrides: ``{endpoint name: {field: value}}`` applied by :func:`endpoints_for`,
            e.g. ``{"taobao_order_detail": {"path": "/open/order/get"}}``.
    """

    source_utc_offset: str = "+08:00"
    cst_time_format: str = "%Y-%m-%d %H:%M:%S"
    max_page_size: int = 100
    success_code: int = 200
    retriable_codes: frozenset[int] = frozenset({429, 500})
    auth_codes: frozenset[int] = frozenset({401, 403})
    http_retriable_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    timestamp_window_s: int = 600
    nonce_window_s: int = 600
    endpoint_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        # validate eagerly so a bad assumptions file fails at start-up with one line
        self.source_tz  # noqa: B018
        if self.max_page_size < 1:
            raise ConfigError(f"max_page_size must be >= 1, got {self.max_page_size!r}")

    @functools.cached_property
    def source_tz(self) -> timezone:
        """The source offset as a ``datetime.timezone`` (parsed once per instance)."""
        m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", self.source_utc_offset)
        if not m:
            raise ConfigError(f"source_utc_offset must look like '+08:00', got {self.source_utc_offset!r}")
        sign = 1 if m.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))

    def __hash__(self) -> int:
        return hash((self.source_utc_offset, self.max_page_size, self.success_code))


ASSUMED = ApiAssumptions()

_SET_FIELDS = {"retriable_codes", "auth_codes", "http_retriable_statuses"}


def load_assumptions(path_or_env: str | os.PathLike | Mapping[str, str]) -> ApiAssumptions:
    """Read the API assumptions, overriding :data:`ASSUMED` with an optional JSON file.

    Args:
        path_or_env: a path to the JSON file; or an environment mapping in which
            ``XPORT_API_ASSUMPTIONS`` names the file (:meth:`xport_etl.settings.Settings.from_env`
            passes the process's environment). No file named → :data:`ASSUMED` unchanged.

    The JSON file is an object with any of these keys (all optional)::

        {
          "source_utc_offset": "+08:00",            # offset of the API's time strings
          "cst_time_format": "%Y-%m-%d %H:%M:%S",   # strftime format of those strings
          "max_page_size": 100,
          "success_code": 200,
          "retriable_codes": [429, 500],            # envelope codes retried
          "auth_codes": [401, 403],                 # envelope codes → AuthenticationError
          "http_retriable_statuses": [429, 500, 502, 503, 504],
          "timestamp_window_s": 600,
          "nonce_window_s": 600,
          "endpoint_overrides": {"taobao_order_detail": {"path": "/open/order/get"}}
        }

    Returns:
        The assumptions in force.

    Raises:
        ConfigError: unreadable file, bad JSON, unknown key or bad value.
    """
    if isinstance(path_or_env, Mapping):
        named = path_or_env.get(ASSUMPTIONS_ENV_VAR)
        if not named:
            return ASSUMED
        path = Path(named)
    else:
        path = Path(path_or_env)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read API assumptions file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"API assumptions file {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"API assumptions file {path} must hold a JSON object")
    known = {f.name for f in dataclasses.fields(ApiAssumptions)}
    unknown = sorted(set(raw) - known)
    if unknown:
        moved = " (the rate limit is the setting XPORT_RATE_LIMIT)" if "rate_limit" in unknown else ""
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} in API assumptions file {path}{moved}; "
            f"known: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SET_FIELDS:
            if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
                raise ConfigError(f"{key} in {path} must be a list of integers")
            value = frozenset(value)
        elif key == "endpoint_overrides":
            if not isinstance(value, dict):
                raise ConfigError(f"endpoint_overrides in {path} must be an object")
            value = MappingProxyType({k: MappingProxyType(dict(v)) for k, v in value.items()})
        values[key] = value
    return dataclasses.replace(ASSUMED, **values)


ENDPOINTS: Mapping[str, EndpointSpec] = MappingProxyType({name: s.endpoint for name, s in STREAMS.items()})
"""Every stream's endpoint as declared, by name (:func:`endpoints_for` applies the assumptions)."""


def endpoints_for(assumptions: ApiAssumptions = ASSUMED) -> dict[str, EndpointSpec]:
    """The registry with ``assumptions.endpoint_overrides`` applied.

    Raises:
        ConfigError: an override names an unknown endpoint or field.
    """
    result = dict(ENDPOINTS)
    fields = {f.name for f in dataclasses.fields(EndpointSpec)} - {"name"}
    for name, changes in assumptions.endpoint_overrides.items():
        if name not in result:
            raise ConfigError(f"endpoint_overrides names an unknown endpoint {name!r}")
        bad = sorted(set(changes) - fields)
        if bad:
            raise ConfigError(f"endpoint_overrides[{name!r}] has unknown field(s) {', '.join(bad)}")
        try:
            result[name] = dataclasses.replace(result[name], **changes)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"endpoint_overrides[{name!r}]: {exc}") from None
    return result


def window_params(
    window: WindowSpec, start: datetime, end: datetime, *, assumptions: ApiAssumptions = ASSUMED
) -> dict[str, str | int]:
    """The request fields of ``window`` for ``[start, end)`` (tz-aware datetimes)."""
    return {
        window.start_field: format_window_value(start, window.time_format, assumptions=assumptions),
        window.end_field: format_window_value(end, window.time_format, assumptions=assumptions),
    }


def format_window_value(dt: datetime, time_format: str, *, assumptions: ApiAssumptions = ASSUMED) -> str | int:
    """Format a tz-aware datetime as the API expects it in a window filter.

    Args:
        dt: an aware datetime (any zone).
        time_format: ``"cst_string"`` → ``"yyyy-MM-dd HH:mm:ss"`` in the source zone (UTC+8);
            ``"epoch_ms"`` → integer epoch milliseconds.

    Raises:
        ValueError: ``dt`` is naive or the format is unknown.
    """
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"window bounds must be timezone-aware datetimes, got {dt!r}")
    if time_format == "cst_string":
        return dt.astimezone(assumptions.source_tz).strftime(assumptions.cst_time_format)
    if time_format == "epoch_ms":
        return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    raise ValueError(f"time_format must be one of {TIME_FORMATS}, got {time_format!r}")


_CST_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")  # ASCII: int("٢") is 2


def parse_cst(s: str, *, assumptions: ApiAssumptions = ASSUMED) -> datetime:
    """Parse an API time string (``yyyy-MM-dd HH:mm:ss``, CST, no offset) to an aware UTC datetime.

    Raises:
        ValueError: ``s`` is not a string of exactly that shape or not a real date/time.
    """
    if not isinstance(s, str):
        raise ValueError(f"expected a 'yyyy-MM-dd HH:mm:ss' string, got {type(s).__name__}")
    text = s.strip()
    if assumptions.cst_time_format == "%Y-%m-%d %H:%M:%S":
        # the hot path (three times per order): slicing + the datetime constructor is ~10x
        # faster than strptime, and just as strict (the pattern, then the calendar)
        if not _CST_PATTERN.fullmatch(text):
            raise ValueError(f"expected 'yyyy-MM-dd HH:mm:ss', got {s!r}")
        naive = datetime(
            int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]), int(text[17:19])
        )
    else:
        naive = datetime.strptime(text, assumptions.cst_time_format)
    return (naive - assumptions.source_tz.utcoffset(None)).replace(tzinfo=UTC)


# 1688's own time format (docs/api-contract.md#57-1688-orders): yyyyMMddHHmmssSSS and an explicit
# ±hhmm offset
_COMPACT_PATTERN = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{3})([+-])([0-9]{2})([0-9]{2})"
)
COMPACT_TIME_FORMAT = "yyyyMMddHHmmssSSS±hhmm"
MAX_UTC_OFFSET = timedelta(hours=14)  # the widest offset in use (Kiribati); beyond it is not a time


def is_compact_time(s: str) -> bool:
    """Whether a time string is written in 1688's compact form (it starts with eight digits),
    rather than ``yyyy-MM-dd HH:mm:ss``: what decides which format a value is held to."""
    text = s.strip()
    return len(text) >= 8 and text[:8].isascii() and text[:8].isdigit()


def parse_alibaba_time(s: str, *, assumptions: ApiAssumptions = ASSUMED) -> datetime:
    """Parse a 1688 time to an aware UTC datetime, in either of its formats.

    ``yyyy-MM-dd HH:mm:ss`` is read as :func:`parse_cst` reads it (the assumed source offset);
    ``yyyyMMddHHmmssSSS±hhmm`` (``20180801104333000+0800``) carries its own offset, which is used.
    The milliseconds of the compact form are dropped: every other API time string has whole
    seconds, and a record whose format varies from one answer to the next must keep one version.

    Raises:
        ValueError: neither format, or not a real date, time or offset.
    """
    if not isinstance(s, str):
        raise ValueError(f"expected a time string, got {type(s).__name__}")
    if not is_compact_time(s):
        return parse_cst(s, assumptions=assumptions)
    found = _COMPACT_PATTERN.fullmatch(s.strip())
    if found is None:
        raise ValueError(f"expected {COMPACT_TIME_FORMAT!r}, got {s!r}")
    year, month, day, hour, minute, second, _ms, sign, off_h, off_m = found.groups()
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    if int(off_m) >= 60 or offset > MAX_UTC_OFFSET:
        raise ValueError(f"not a UTC offset: {sign}{off_h}{off_m}")
    naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    return (naive - offset if sign == "+" else naive + offset).replace(tzinfo=UTC)
