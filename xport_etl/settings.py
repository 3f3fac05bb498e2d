"""Library settings: one frozen object, built from the environment only when asked.

Nothing here reads the environment at import time. :meth:`Settings.from_env` reads it when
called (``XPORT_*`` variables, below), and keyword overrides win over the environment. With no
configuration at all the settings point at the local sandbox with its (non-secret) defaults.

================  =======================  ==================================
field             environment variable     default
================  =======================  ==================================
base_url          XPORT_BASE_URL           the sandbox (http://127.0.0.1:8765)
access_key        XPORT_ACCESS_KEY         the sandbox key
access_secret     XPORT_ACCESS_SECRET      the sandbox secret (never shown)
user_id           XPORT_USER_ID            the sandbox user
sign_recipe       XPORT_SIGN_RECIPE        ``query`` (or ``concat``: see :mod:`xport_etl.extract.auth`)
sign_template     XPORT_SIGN_TEMPLATE      none (a custom signed string, e.g. ``{access_key}{timestamp}{nonce}{secret}``)
timestamp_unit    XPORT_TIMESTAMP_UNIT     the recipe's (``ms`` or ``s``)
data_dir          XPORT_DATA_DIR           ``data``
raw_url           XPORT_RAW_URL            ``<data_dir>/raw`` (a path or fsspec URL, e.g. ``s3://bucket/raw``)
report_tz         XPORT_REPORT_TZ          ``Asia/Shanghai``
rate_limit        XPORT_RATE_LIMIT         10 requests/s (0 = unlimited)
rate_limit_url    XPORT_RATE_LIMIT_URL     none: a lock file under ``<data_dir>/state`` (or ``redis://host:6379/0``)
page_size         XPORT_PAGE_SIZE          100 (1..100)
timeout           XPORT_TIMEOUT            30 s per request
max_pages         (none)                   100 000
check_overrides   XPORT_CHECK_OVERRIDES    none (JSON: check name -> severity/threshold)
workers           XPORT_WORKERS            every core (processes/threads that normalise windows)
extract_workers   XPORT_EXTRACT_WORKERS    the pipeline's default (windows paged at once)
stage_memory      XPORT_STAGE_MEMORY       160MB (DuckDB memory limit while normalising)
load_memory       XPORT_LOAD_MEMORY        192MB (DuckDB memory limit while publishing)
sql_normalizer    XPORT_SQL_NORMALIZER     on (``0``/``false``: the Python normaliser for every window)
freshness_hours   XPORT_FRESHNESS_HOURS    26 (the freshness DAG alerts on a fact table older than this)
umask             XPORT_UMASK              ``077``: files 0600, directories 0700 (see docs/operations.md)
================  =======================  ==================================

The callback receiver's limits (``xport-etl callbacks serve``, see ``docs/callbacks.md``):

========================  ===============================  =====================================
field                     environment variable             default
========================  ===============================  =====================================
callback_max_body         XPORT_CALLBACK_MAX_BODY          1 MiB (bytes; 413 past it, counted as it streams)
callback_read_timeout     XPORT_CALLBACK_READ_TIMEOUT      10 s to receive one request, head and body
callback_keep_alive       XPORT_CALLBACK_KEEP_ALIVE        5 s to receive its head (idle connections close)
callback_max_connections  XPORT_CALLBACK_MAX_CONNECTIONS   200: the connection budget (docs/callbacks.md)
callback_max_age          XPORT_CALLBACK_MAX_AGE           10 800 s: the oldest message ``timestamp`` accepted
inbox_rotate_bytes        XPORT_INBOX_ROTATE_BYTES         64 MiB per inbox segment
callback_dedup_horizon    XPORT_CALLBACK_DEDUP_HORIZON     86 400 s: how long a message id is remembered
========================  ===============================  =====================================

Numbers are read in ASCII only (``int()`` and ``float()`` also take ``٣``, ``1_0``, ``inf`` and
``nan``) and every numeric setting has a maximum (``_AT_MOST``: no ``inf`` timeout, no unbounded
buffer). A failed check names the environment variable, or what :meth:`Settings.from_env` is told
the person gave instead (``given_as``: the CLI's ``--workers``).

``freshness_warn_hours`` (``XPORT_FRESHNESS_WARN_HOURS``, default an hour less than ``freshness_hours``)
is the freshness warning level: a fact table older than it but not than ``freshness_hours`` is a
warning (logged, exit 0), not an alert. ``stuck_recent_days`` (``XPORT_STUCK_RECENT_DAYS``, default
30) is ``rpt_stuck_orders``' recency window: it lists what got stuck in a stage that began within
that many days of the last load (recorded in ``etl_settings`` at publish, where the view reads it).

``warehouse_storage_version`` (``XPORT_WAREHOUSE_STORAGE_VERSION``, default ``v1.0.0``) is the DuckDB
storage format the published warehouse is written in: ``v1.0.0`` is the oldest this DuckDB writes, so
readers on DuckDB 1.0 and later (the CLI, BI drivers, other language bindings) open it; ``latest`` is
this DuckDB's newest. A warehouse in another format is rewritten in this one on the next publish.

``raw_url`` moves only the raw landing layer (pages, contexts, manifests) to shared storage so
that extraction can run on any worker; Parquet, the DuckDB warehouse and run state stay under
``data_dir`` on the one machine that loads (see :mod:`xport_etl.extract.storage`). Its credentials and
endpoint come from the storage's own environment (``AWS_*`` for S3), never from the URL.

``rate_limit_url`` moves the access key's request budget from a lock file (shared by the processes
of one machine) to Redis (shared by every machine that names the same Redis): see
:mod:`xport_etl.extract.ratelimit`. A password in it (``redis://:secret@host/0``) is never shown.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from xport_etl.errors import ConfigError
from xport_etl.extract.endpoints import ASSUMED, ApiAssumptions, load_assumptions
from xport_etl.extract.storage import check_url, normalize, redact
from xport_etl.load.checks import parse_overrides
from xport_etl.numbers import ascii_int

if TYPE_CHECKING:
    from xport_etl.extract.auth import SignRecipe

# the local sandbox's address and credentials: the defaults when nothing is configured, and what
# `validate` recognises as "still the sandbox defaults" (not secrets; xport_sandbox serves them)
DEFAULT_SANDBOX_HOST = "127.0.0.1"
DEFAULT_SANDBOX_PORT = 8765
DEFAULT_BASE_URL = f"http://{DEFAULT_SANDBOX_HOST}:{DEFAULT_SANDBOX_PORT}"
DEFAULT_ACCESS_KEY = "5a1c0ffee0ddba11deadbeefcafe0001"
DEFAULT_ACCESS_SECRET = "sandbox-secret-not-for-production"
DEFAULT_USER_ID = "1000001"

__all__ = ["ENV_VARS", "Settings"]

ENV_VARS: Mapping[str, str] = {
    "base_url": "XPORT_BASE_URL",
    "access_key": "XPORT_ACCESS_KEY",
    "access_secret": "XPORT_ACCESS_SECRET",
    "user_id": "XPORT_USER_ID",
    "sign_recipe": "XPORT_SIGN_RECIPE",
    "sign_template": "XPORT_SIGN_TEMPLATE",
    "timestamp_unit": "XPORT_TIMESTAMP_UNIT",
    "data_dir": "XPORT_DATA_DIR",
    "raw_url": "XPORT_RAW_URL",
    "report_tz": "XPORT_REPORT_TZ",
    "rate_limit": "XPORT_RATE_LIMIT",
    "rate_limit_url": "XPORT_RATE_LIMIT_URL",
    "page_size": "XPORT_PAGE_SIZE",
    "timeout": "XPORT_TIMEOUT",
    "safety_lag": "XPORT_SAFETY_LAG",
    "refetch_after": "XPORT_REFETCH_AFTER",
    "check_overrides": "XPORT_CHECK_OVERRIDES",
    "callback_max_body": "XPORT_CALLBACK_MAX_BODY",
    "callback_read_timeout": "XPORT_CALLBACK_READ_TIMEOUT",
    "callback_keep_alive": "XPORT_CALLBACK_KEEP_ALIVE",
    "callback_max_connections": "XPORT_CALLBACK_MAX_CONNECTIONS",
    "callback_max_age": "XPORT_CALLBACK_MAX_AGE",
    "inbox_rotate_bytes": "XPORT_INBOX_ROTATE_BYTES",
    "callback_dedup_horizon": "XPORT_CALLBACK_DEDUP_HORIZON",
    "workers": "XPORT_WORKERS",
    "extract_workers": "XPORT_EXTRACT_WORKERS",
    "stage_memory": "XPORT_STAGE_MEMORY",
    "load_memory": "XPORT_LOAD_MEMORY",
    "warehouse_storage_version": "XPORT_WAREHOUSE_STORAGE_VERSION",
    "sql_normalizer": "XPORT_SQL_NORMALIZER",
    "freshness_hours": "XPORT_FRESHNESS_HOURS",
    "freshness_warn_hours": "XPORT_FRESHNESS_WARN_HOURS",
    "stuck_recent_days": "XPORT_STUCK_RECENT_DAYS",
    "umask": "XPORT_UMASK",
}

# process-level variables that are not settings: read here, the one module that reads the environment
CRASH_AT_VAR = "XPORT_CRASH_AT"  # the kill tests' crash point (xport_etl.faults)
PIPELINE_PID_VAR = "XPORT_PIPELINE_PID"  # set in staging workers: a crash point kills the pipeline too
ARROW_POOL_VAR = "ARROW_DEFAULT_MEMORY_POOL"  # read by pyarrow when it is first imported
_BOOLS = {"1": True, "true": True, "0": False, "false": False}

_INT_FIELDS = (
    "page_size",
    "callback_max_body",
    "callback_max_connections",
    "inbox_rotate_bytes",
    "workers",
    "extract_workers",
    "stuck_recent_days",
)
_FLOAT_FIELDS = (
    "rate_limit",
    "timeout",
    "safety_lag",
    "refetch_after",
    "callback_read_timeout",
    "callback_keep_alive",
    "callback_max_age",
    "callback_dedup_horizon",
    "freshness_hours",
    "freshness_warn_hours",
)

# the largest value each numeric setting accepts (with its unit, for the message): anything larger
# is a typo or an attack (`XPORT_TIMEOUT=inf` would let one request hang for ever), never a need
_AT_MOST: Mapping[str, tuple[float, str]] = {
    "rate_limit": (10_000, "requests/s"),
    "timeout": (3600, "seconds"),
    "safety_lag": (7 * 86_400, "seconds"),
    "refetch_after": (366 * 86_400, "seconds"),
    "callback_read_timeout": (3600, "seconds"),
    "callback_keep_alive": (3600, "seconds"),
    "callback_max_age": (7 * 86_400, "seconds"),
    "callback_dedup_horizon": (366 * 86_400, "seconds"),
    "freshness_hours": (366 * 24, "hours"),
    "freshness_warn_hours": (366 * 24, "hours"),
    "stuck_recent_days": (3660, "days"),
    "callback_max_body": (1 << 30, "bytes"),
    "callback_max_connections": (100_000, "connections"),
    "inbox_rotate_bytes": (1 << 40, "bytes"),
    "workers": (1024, "workers"),
    "extract_workers": (256, "workers"),
}

# a number as a person writes it, in ASCII: float() also takes "inf", "nan", "1_000" and "٣"
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


def parse_number(text: str) -> float | None:
    """``text`` as a finite float when it is a plain ASCII decimal number (``30``, ``2.5``,
    ``1e3``), else None (``inf``, ``nan``, ``1_000``, Unicode digits, ``1e999``)."""
    text = text.strip()
    if len(text) > 40 or not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


# a DuckDB memory limit: a number with a unit (DuckDB's own spelling), or a share of the RAM
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*(k|m|g|t)(i?b)?$|^(\d+(?:\.\d+)?)\s*%$", re.I)
_MIN_MEMORY = 16 * 10**6  # below this DuckDB cannot even hold its buffers

# the DuckDB storage format the warehouse is written in: the oldest the writer offers, so that every
# reader on DuckDB 1.0 or later (CLI, BI drivers, node and WASM bindings) opens it; see docs/warehouse.md
DEFAULT_WAREHOUSE_STORAGE_VERSION = "v1.0.0"
_STORAGE_VERSION = re.compile(r"v\d{1,3}\.\d{1,3}\.\d{1,3}|latest")

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _is_sandbox_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


@dataclass(frozen=True)
class Settings:
    """Everything the client and pipeline need to know about the API and where to put data.

    The secret is excluded from ``repr``/``str``; use :meth:`redacted` for logs.
    """

    base_url: str = DEFAULT_BASE_URL
    access_key: str = DEFAULT_ACCESS_KEY
    access_secret: str = field(default=DEFAULT_ACCESS_SECRET, repr=False)
    user_id: str = DEFAULT_USER_ID
    # the signing recipe [assumed]: a shipped one, optionally with its template or unit replaced
    sign_recipe: str = "query"
    sign_template: str | None = None
    timestamp_unit: str | None = None
    data_dir: Path = Path("data")
    # the raw landing layer: a path or an fsspec URL (s3://bucket/prefix); None = data_dir/raw
    raw_url: str | None = None
    report_tz: str = "Asia/Shanghai"
    rate_limit: float | None = ASSUMED.rate_limit
    # where the access key's budget is kept: None = a lock file under data_dir/state (one machine);
    # redis://… (or rediss://, unix://) = shared by every machine using that Redis
    rate_limit_url: str | None = field(default=None, repr=False)
    page_size: int = 100
    timeout: float = 30.0
    max_pages: int = 100_000
    # incremental windows end this many seconds before now: what the API wrote in the last
    # moments may not be visible to its list queries yet, and clocks are never quite in step
    safety_lag: float = 300.0
    # a fan-out key that can still change (a parcel in transit, an open refund) is fetched again
    # only once the API's clock has moved this many seconds since its last fetch (0: every run).
    # parcels get an event every several hours, so polling each one hourly mostly finds nothing
    refetch_after: float = 6 * 3600.0
    # every [assumed] contract choice; from_env reads the file named by XPORT_API_ASSUMPTIONS
    assumptions: ApiAssumptions = field(default=ASSUMED, repr=False)
    # data checks' severity/threshold without editing SQL: {"chk_…": {"severity": "error", "threshold": 0}}
    # (a dict or its JSON text; see xport_etl.load.checks)
    check_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    # the callback receiver: the largest body it reads (counted while it streams in)
    callback_max_body: int = 1 << 20
    # a request's head and body must arrive within this many seconds of the connection's opening
    # (or the end of its previous response): slow clients are cut off, not waited for
    callback_read_timeout: float = 10.0
    # ... and its head within this many: an idle or kept-alive connection is closed after it
    callback_keep_alive: float = 5.0
    # the connection budget: connections without a complete request held at once (the oldest
    # is closed to make room), and complete requests handled at once (503 past it)
    callback_max_connections: int = 200
    # the oldest message timestamp the receiver accepts: Xportcn retries a failed push 30 minutes
    # apart at most 5 times (2.5 h), and a retry may keep its first timestamp
    callback_max_age: float = 10_800.0
    # the inbox's active segment is rotated before it would grow past this many bytes
    inbox_rotate_bytes: int = 64 << 20
    # how long the receiver remembers a message id to answer a redelivery `duplicate`: Xportcn
    # retries a failed message 30 minutes apart at most 5 times
    # (docs/api-contract.md#6-message-callbacks, about 2.5 h)
    callback_dedup_horizon: float = 86_400.0
    workers: int | None = None
    extract_workers: int | None = None
    stage_memory: str | None = None
    load_memory: str | None = None
    # the DuckDB storage version the published warehouse is written in (a DuckDB release, ``v1.0.0``,
    # or ``latest``); a warehouse in another one is rewritten in it on the next publish
    warehouse_storage_version: str = DEFAULT_WAREHOUSE_STORAGE_VERSION
    # the DuckDB normaliser for the windows it handles (False: the Python normaliser for all)
    sql_normalizer: bool = True
    # the freshness DAG alerts when a fact table's last successful load is older than this
    freshness_hours: float = 26.0
    # ... and warns (logs, exit 0) when it is older than this; None: an hour less than freshness_hours
    freshness_warn_hours: float | None = None
    # rpt_stuck_orders lists what got stuck in a stage that began within this many days (recorded in
    # etl_settings at publish, where the view reads it); older is past chasing there
    stuck_recent_days: int = 30
    # the umask the CLI runs under: 0o077 keeps raw pages, Parquet, the ledger and the warehouse
    # (all of them hold receivers' names, phones and addresses) to the owner
    umask: int = 0o077

    def __post_init__(self) -> None:
        # normalise types so Settings(data_dir="x", user_id=123) behaves
        if not isinstance(self.data_dir, Path):
            object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "user_id", str(self.user_id).strip())
        object.__setattr__(self, "base_url", str(self.base_url).strip().rstrip("/"))
        raw_url = normalize(str(self.raw_url)) if self.raw_url is not None else ""
        object.__setattr__(self, "raw_url", raw_url or None)
        object.__setattr__(self, "rate_limit_url", str(self.rate_limit_url or "").strip() or None)
        object.__setattr__(self, "check_overrides", parse_overrides(self.check_overrides))
        self._validate()

    def _validate(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"XPORT_BASE_URL must be an http(s) URL, got {self.base_url!r}")
        if parts.username or parts.password or parts.query:
            raise ConfigError(
                "XPORT_BASE_URL must not contain credentials or a query string; "
                "set XPORT_ACCESS_KEY / XPORT_ACCESS_SECRET instead"
            )
        if not self.access_key or not self.access_secret or not self.user_id:
            raise ConfigError("XPORT_ACCESS_KEY, XPORT_ACCESS_SECRET and XPORT_USER_ID must not be empty")
        if not _is_sandbox_url(self.base_url):
            defaults = [
                var
                for var, value, default in (
                    ("XPORT_ACCESS_KEY", self.access_key, DEFAULT_ACCESS_KEY),
                    ("XPORT_ACCESS_SECRET", self.access_secret, DEFAULT_ACCESS_SECRET),
                    ("XPORT_USER_ID", self.user_id, DEFAULT_USER_ID),
                )
                if value == default
            ]
            if defaults:
                raise ConfigError(
                    f"{self.base_url} is not the sandbox but {', '.join(defaults)} still hold the "
                    "sandbox defaults: set XPORT_ACCESS_KEY, XPORT_ACCESS_SECRET and XPORT_USER_ID"
                )
        self.signer  # noqa: B018 (raises ConfigError naming the variable)
        if self.raw_url is not None:
            check_url(self.raw_url, name="XPORT_RAW_URL")
        try:
            ZoneInfo(self.report_tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ConfigError(f"XPORT_REPORT_TZ: unknown time zone {self.report_tz!r} (try 'Asia/Shanghai')") from None
        if self.rate_limit is not None and not self.rate_limit >= 0:
            raise ConfigError(f"XPORT_RATE_LIMIT must be >= 0 (0 = unlimited), got {self.rate_limit!r}")
        if self.rate_limit_url is not None:
            from xport_etl.extract.ratelimit import check_rate_limit_url

            check_rate_limit_url(self.rate_limit_url)
        if (
            isinstance(self.page_size, bool)
            or not isinstance(self.page_size, int)
            or not (1 <= self.page_size <= self.assumptions.max_page_size)
        ):
            raise ConfigError(
                f"XPORT_PAGE_SIZE must be an integer in 1..{self.assumptions.max_page_size}, got {self.page_size!r}"
            )
        if not (self.safety_lag >= 0 and self.refetch_after >= 0):
            raise ConfigError("XPORT_SAFETY_LAG and XPORT_REFETCH_AFTER must be >= 0 seconds")
        if not self.timeout > 0:
            raise ConfigError(f"XPORT_TIMEOUT must be > 0 seconds, got {self.timeout!r}")
        for name in ("callback_max_body", "callback_max_connections", "inbox_rotate_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{ENV_VARS[name]} must be a positive integer, got {value!r}")
        for name in ("callback_read_timeout", "callback_keep_alive", "callback_max_age", "callback_dedup_horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{ENV_VARS[name]} must be > 0 seconds, got {value!r}")
        if not isinstance(self.max_pages, int) or self.max_pages < 1:
            raise ConfigError(f"max_pages must be a positive integer, got {self.max_pages!r}")
        for name in ("workers", "extract_workers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{ENV_VARS[name]} must be a positive integer, got {value!r}")
        for name in ("stage_memory", "load_memory"):
            value = getattr(self, name)
            if value is not None:
                check_memory(ENV_VARS[name], value)
        if not (
            isinstance(self.warehouse_storage_version, str)
            and _STORAGE_VERSION.fullmatch(self.warehouse_storage_version)
        ):
            raise ConfigError(
                "XPORT_WAREHOUSE_STORAGE_VERSION must be a DuckDB release such as v1.0.0 (the default: DuckDB "
                f"1.0 and later can read the warehouse) or latest, got {self.warehouse_storage_version!r}"
            )
        if not isinstance(self.sql_normalizer, bool):
            raise ConfigError(f"XPORT_SQL_NORMALIZER must be 0, 1, false or true, got {self.sql_normalizer!r}")
        if (
            isinstance(self.freshness_hours, bool)
            or not isinstance(self.freshness_hours, (int, float))
            or not self.freshness_hours > 0
        ):
            raise ConfigError(f"XPORT_FRESHNESS_HOURS must be > 0 hours, got {self.freshness_hours!r}")
        warn = self.freshness_warn_hours
        if warn is not None and (
            isinstance(warn, bool) or not isinstance(warn, (int, float)) or not 0 < warn <= self.freshness_hours
        ):
            raise ConfigError(
                f"XPORT_FRESHNESS_WARN_HOURS must be > 0 hours and at most XPORT_FRESHNESS_HOURS "
                f"({self.freshness_hours:g}), got {warn!r}"
            )
        if (
            isinstance(self.stuck_recent_days, bool)
            or not isinstance(self.stuck_recent_days, int)
            or self.stuck_recent_days < 1
        ):
            raise ConfigError(f"XPORT_STUCK_RECENT_DAYS must be a positive integer, got {self.stuck_recent_days!r}")
        if isinstance(self.umask, bool) or not isinstance(self.umask, int) or not 0 <= self.umask <= 0o777:
            raise ConfigError(f"XPORT_UMASK must be an octal umask such as 077 or 027, got {self.umask!r}")
        if self.umask & 0o007 != 0o007:
            raise ConfigError(
                f"XPORT_UMASK={self.umask:03o} would let every user of the machine read personal data; "
                "use 077 (owner only) or 027 (owner and the data directory's group)"
            )
        for name, (most, unit) in _AT_MOST.items():  # the checks above hold the lower bounds
            value = getattr(self, name)
            if isinstance(value, int | float) and not isinstance(value, bool) and not value <= most:
                raise ConfigError(f"{ENV_VARS[name]} must be at most {most:,} {unit}, got {value!r}")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, given_as: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Build settings from ``XPORT_*`` environment variables, then keyword overrides.

        Args:
            environ: the environment to read (default: ``os.environ``, read now).
            given_as: what the person called each override (``{"workers": "--workers"}``): a
                failed check of an overridden value names that, not its environment variable.
            **overrides: field values; non-None ones win over the environment.

        Raises:
            ConfigError: an unknown override, a value that does not parse, or a failed check.
        """
        env = os.environ if environ is None else environ
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[name] = _parse(name, var, raw.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.setdefault("assumptions", load_assumptions(env))
        try:
            return cls(**values)
        except ConfigError as exc:
            named = {
                ENV_VARS[name]: label
                for name, label in (given_as or {}).items()
                if name in ENV_VARS and overrides.get(name) is not None
            }
            if not named:
                raise
            pattern = re.compile(r"\b(" + "|".join(map(re.escape, named)) + r")\b")
            raise ConfigError(pattern.sub(lambda m: named[m[0]], str(exc))) from None

    @property
    def signer(self) -> SignRecipe:
        """The signing recipe these settings describe (:func:`xport_etl.extract.auth.resolve_recipe`)."""
        from xport_etl.extract.auth import resolve_recipe  # httpx is not needed to read settings

        return resolve_recipe(self.sign_recipe, self.sign_template, self.timestamp_unit)

    def redacted(self) -> dict[str, Any]:
        """All fields as a dict for logs, with the secret shown as ``'***'``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["access_secret"] = "***"
        out["data_dir"] = str(self.data_dir)
        out["raw_url"] = redact(self.raw_url) or None
        out["rate_limit_url"] = redact(self.rate_limit_url) or None
        out.pop("assumptions", None)
        return out

    def __str__(self) -> str:
        return repr(self)


CONNECTION_FIELDS = ("base_url", "access_key", "access_secret")  # the Connection's own fields


def overrides_from_extras(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Settings overrides from an Airflow Connection's extras: any field of :class:`Settings` by
    its name (``{"user_id": "1000001", "workers": 2, "stage_memory": "256MB"}``), read as its
    environment variable would be; a JSON object (``check_overrides``) is taken as it is. The
    URL and the credentials are the Connection's own fields, never extras.

    Raises:
        ConfigError: an extra that names no setting, or a value that does not parse.
    """
    out: dict[str, Any] = {}
    for name, value in extra.items():
        if name not in ENV_VARS or name in CONNECTION_FIELDS:
            known = ", ".join(sorted(set(ENV_VARS) - set(CONNECTION_FIELDS)))
            raise ConfigError(f"unknown Connection extra {name!r}; the extras are: {known}")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, Mapping | list):
            out[name] = value
        else:
            out[name] = _parse(name, f"Connection extra {name!r}", str(value).strip())
    return out


def umask_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The umask ``XPORT_UMASK`` asks for (default 077), checked as :class:`Settings` checks it;
    what the CLI runs under, read before any other setting is needed."""
    env = os.environ if environ is None else environ
    raw = (env.get(ENV_VARS["umask"]) or "").strip()
    if not raw:
        return Settings.umask
    value = _parse("umask", ENV_VARS["umask"], raw)
    if value & 0o007 != 0o007:
        raise ConfigError(
            f"XPORT_UMASK={value:03o} would let every user of the machine read personal data; "
            "use 077 (owner only) or 027 (owner and the data directory's group)"
        )
    return value


def check_memory(var: str, value: str) -> str:
    """A DuckDB memory limit (``192MB``, ``1.5GiB``, ``50%``), or ConfigError naming ``var``."""
    m = _MEMORY.match(str(value).strip())
    if not m:
        raise ConfigError(f"{var} must be a size such as 192MB, 1GB or 50%, got {value!r}")
    if m.group(4) is not None:
        if not 0 < float(m.group(4)) <= 100:
            raise ConfigError(f"{var} must be a share of the memory in (0, 100]%, got {value!r}")
        return value
    scale = 1024 if (m.group(3) or "").lower() == "ib" else 1000
    size = float(m.group(1)) * scale ** "kmgt".index(m.group(2).lower()) * scale
    if size < _MIN_MEMORY:
        raise ConfigError(f"{var} must be at least 16MB, got {value!r}")
    return value


def crash_at() -> str | None:
    """``XPORT_CRASH_AT`` (``<point>:<n>``, see :mod:`xport_etl.faults`), or None: one lookup."""
    return os.environ.get(CRASH_AT_VAR)


def pipeline_pid() -> int | None:
    """The pipeline's process id when this process is one of its staging workers, else None."""
    pid = os.environ.get(PIPELINE_PID_VAR)
    return int(pid) if pid else None


def worker_environ(pipeline: int) -> dict[str, str]:
    """The environment of a staging worker process of pipeline process ``pipeline``: this one's,
    plus ``XPORT_PIPELINE_PID`` (so that a crash point reached in the worker kills the pipeline)."""
    return {**os.environ, PIPELINE_PID_VAR: str(pipeline)}


def terminal_columns() -> str | None:
    """``COLUMNS`` when set (a terminal width asked for explicitly), else None."""
    return os.environ.get("COLUMNS") or None


def prefer_system_allocator() -> None:
    """Make Arrow use the system allocator unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise.
    Arrow reads the variable when pyarrow is first imported, so this runs from ``xport_etl``'s
    ``__init__`` (this module never imports pyarrow). Arrow's default (mimalloc) kept more memory
    resident while windows were staged at once, at no gain in speed (bench/NOTES.md, "Memory")."""
    os.environ.setdefault(ARROW_POOL_VAR, "system")


def _parse(name: str, var: str, raw: str) -> Any:
    if name == "sql_normalizer":
        try:
            return _BOOLS[raw.lower()]
        except KeyError:
            raise ConfigError(f"{var} must be 0, 1, false or true, got {raw!r}") from None
    if name == "umask":
        if not re.fullmatch(r"0?o?[0-7]{1,3}", raw):
            raise ConfigError(f"XPORT_UMASK must be an octal umask such as 077 or 027, got {raw!r}")
        return int(raw.replace("o", ""), 8)
    if name in _FLOAT_FIELDS or name in _INT_FIELDS:
        # ASCII digits only and a bounded length: float() and int() also take "inf", "nan",
        # "1_000", "٣" and thousands of digits
        value = ascii_int(raw, max_digits=15) if name in _INT_FIELDS else parse_number(raw)
        if value is None:
            kind = (
                "a positive integer"
                if name in ("page_size", "workers", "extract_workers", "stuck_recent_days")
                else ("an integer" if name in _INT_FIELDS else "a finite number")
            )
            shown = repr(raw) if len(raw) <= 40 else f"{raw[:20]!r}… ({len(raw):,} characters)"
            raise ConfigError(f"{var} must be {kind}, got {shown}")
        return value
    if name == "data_dir":
        return Path(raw).expanduser()
    return raw
