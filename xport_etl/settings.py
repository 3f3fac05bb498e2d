"""Library settings: one frozen object, built from the environment only when asked.

Each setting is declared **once**, as a field of :class:`Settings` written with :func:`setting`:
its name and type (the field), default, environment variable (``XPORT_<NAME>`` unless told),
bounds or check (the checks beyond bounds: :mod:`xport_etl.settings_checks`), help text, whether it is secret, its Airflow Connection field or extra, its CLI
flag and its label on the Airflow connection form. Everything else is generated from those
declarations (:data:`SETTINGS`):

- the parsing of the environment (:meth:`Settings.from_env`) and of a Connection's extras
  (:func:`overrides_from_extras`): one parser per type, the same for both;
- validation and its messages, which name what the person set: the variable, or what
  :meth:`Settings.from_env` is told the person gave instead (``given_as``: the CLI's
  ``--workers``, a Connection extra);
- the CLI's flags (:func:`xport_etl.cliutil.add_setting_flags`,
  :func:`xport_etl.cliutil.settings_from_args`);
- the provider's connection form (``xport_airflow_provider.get_provider_info``);
- ``docs/settings.md`` (:func:`settings_markdown`: ``make docs`` writes it, and
  ``tests/test_settings.py`` fails when it is not current).

Nothing here reads the environment at import time: :meth:`Settings.from_env` reads it when called, and
keyword overrides win over it. With no configuration the settings point at the local sandbox.

Numbers are read in ASCII only (``int()`` and ``float()`` also take ``٣``, ``1_0``, ``inf`` and
``nan``: :mod:`xport_etl.numbers`) and every numeric setting that a person sets has a maximum
(no ``inf`` timeout, no unbounded buffer).

``storage_url`` puts every durable state (raw pages, Parquet, the published warehouse, plans, the
ledgers, callbacks) under one object-store URL and leaves ``data_dir`` a host's scratch and cache;
``raw_url`` moves only the raw landing layer (:mod:`xport_etl.layout`). Credentials and endpoints
come from the store's own environment (``AWS_*`` for S3), never from the URL.

``rate_limit_url`` moves the access key's request budget from a lock file (shared by the processes
of one machine) to Redis (shared by every machine that names the same Redis): see
:mod:`xport_etl.extract.ratelimit`. A password in it (``redis://:secret@host/0``) is never shown.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from xport_etl.errors import ConfigError
from xport_etl.extract.endpoints import ASSUMED, ASSUMPTIONS_ENV_VAR, ApiAssumptions, load_assumptions
from xport_etl.extract.storage import normalize, redact
from xport_etl.layout import DataLayout
from xport_etl.settings_checks import (
    check_base_url,
    check_freshness_warn,
    check_memory,
    check_page_size,
    check_rate_limit_url,
    check_raw_url,
    check_storage_url,
    check_storage_version,
    check_umask,
    is_sandbox_url,
    optional_text,
    parse_check_overrides,
    parse_umask,
    sign_recipes,
)
from xport_etl.settings_schema import Setting, declarations, markdown, setting

if TYPE_CHECKING:
    from xport_etl.extract.auth import SignRecipe

__all__ = [
    "ENV_VARS",
    "SETTING",
    "SETTINGS",
    "Setting",
    "Settings",
    "overrides_from_extras",
    "setting",
    "settings_from_connection",
    "settings_markdown",
    "umask_from_env",
]

# the local sandbox's address and credentials: the defaults when nothing is configured, and what
# `validate` recognises as "still the sandbox defaults" (not secrets; xport_sandbox serves them)
DEFAULT_SANDBOX_HOST = "127.0.0.1"
DEFAULT_SANDBOX_PORT = 8765
DEFAULT_BASE_URL = f"http://{DEFAULT_SANDBOX_HOST}:{DEFAULT_SANDBOX_PORT}"
DEFAULT_ACCESS_KEY = "5a1c0ffee0ddba11deadbeefcafe0001"
DEFAULT_ACCESS_SECRET = "sandbox-secret-not-for-production"
DEFAULT_USER_ID = "1000001"
# the merchant's business calendar: the months of the reports (the warehouse's etl_settings.report_tz)
DEFAULT_REPORT_TZ = "Asia/Shanghai"
# the DuckDB storage format the warehouse is written in: the oldest the writer offers, so that every
# reader on DuckDB 1.0 or later (CLI, BI drivers, node and WASM bindings) opens it; see docs/warehouse.md
DEFAULT_WAREHOUSE_STORAGE_VERSION = "v1.0.0"

# process-level variables that are not settings: read here, the one module that reads the environment
CRASH_AT_VAR = "XPORT_CRASH_AT"  # the kill tests' crash point (xport_etl.faults)
PIPELINE_PID_VAR = "XPORT_PIPELINE_PID"  # set in staging workers: a crash point kills the pipeline too
ARROW_POOL_VAR = "ARROW_DEFAULT_MEMORY_POOL"  # read by pyarrow when it is first imported

_SECONDS, _DAY = "seconds", 86_400


# ---- the checks that are more than bounds (the rest are in settings_checks)


def _check_zone(value: str, label: str, settings: Settings) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"{label}: unknown time zone {value!r} (try {DEFAULT_REPORT_TZ!r})") from None


# ---- the settings


@dataclass(frozen=True)
class Settings:
    """Everything the client and pipeline need to know about the API and where to put data.

    Each field is one setting's whole declaration (:func:`setting`). The secret is excluded
    from ``repr``/``str``; use :meth:`redacted` for logs.
    """

    base_url: str = setting(
        DEFAULT_BASE_URL,
        "API base URL",
        coerce=lambda v: str(v).strip().rstrip("/"),
        check=check_base_url,
        connection="host",
        label="Base URL",
        flag="--base-url",
        shown=f"the sandbox, {DEFAULT_BASE_URL}",
        example="https://www.xportcn.com/api",
        accepts="an http(s) URL without credentials or query",
    )
    access_key: str = setting(
        DEFAULT_ACCESS_KEY,
        "the developer AccessKey; its secret comes only from XPORT_ACCESS_SECRET",
        connection="login",
        label="AccessKey",
        flag="--access-key",
        shown="the sandbox's key",
    )
    access_secret: str = setting(
        DEFAULT_ACCESS_SECRET,
        "the AccessSecret: environment or Connection only, never a flag, never shown",
        secret=True,
        connection="password",
        label="AccessSecret",
        shown="the sandbox's secret",
    )
    user_id: str = setting(
        DEFAULT_USER_ID,
        "the user-id header (required)",
        coerce=lambda v: str(v).strip(),
        flag="--user-id",
        label="User ID",
        shown=f"the sandbox's user, {DEFAULT_USER_ID}",
        example="1234567",
    )
    # the signing recipe [assumed]: a shipped one, optionally with its template or unit replaced
    sign_recipe: str = setting(
        "query",
        "the signing recipe; `xport-etl check` says which one the API accepts",
        choices=sign_recipes,
        flag="--sign-recipe",
        label="Signing recipe",
        example="concat",
        doc="A custom one: `XPORT_SIGN_TEMPLATE` and `XPORT_TIMESTAMP_UNIT` (README, *Pointing it at the real API*).",
    )
    sign_template: str | None = setting(
        None,
        "your own signed string, replacing the recipe's",
        example="{access_key}{timestamp}{nonce}{secret}",
        accepts="the placeholders `{access_key}`, `{nonce}`, `{timestamp}`, `{secret}`, each once",
    )
    timestamp_unit: str | None = setting(
        None,
        "the timestamp header's unit, replacing the recipe's",
        shown="the recipe's (ms for query, s for concat)",
        example="s",
        accepts="`ms`, `s`",
    )
    data_dir: Path = setting(
        Path("data"),
        "raw pages, Parquet, warehouse.duckdb and run state",
        coerce=lambda v: v if isinstance(v, Path) else Path(v),
        flag="--data-dir",
        label="Data directory",
        shown="./data",
    )
    # the raw landing layer: a path or an fsspec URL (s3://bucket/prefix); None = data_dir/raw
    raw_url: str | None = setting(
        None,
        "where raw pages land: a path or an fsspec URL shared by every worker",
        coerce=lambda v: (normalize(str(v)) or None) if v is not None else None,
        check=check_raw_url,
        display=lambda v: redact(v) or None,
        label="Raw landing URL",
        shown="<data_dir>/raw",
        example="s3://bucket/raw",
        accepts="a path or a URL without credentials (they come from the storage's own environment, `AWS_*`)",
        doc="See README, *Scaling out*.",
    )
    # every durable kind of state in object storage; None = all of it under data_dir (one machine)
    storage_url: str | None = setting(
        None,
        "where every durable state lives (raw pages, Parquet, the published warehouse, plans, ledgers, "
        "callbacks): an S3 (or S3-compatible) URL every host shares; the data directory is then one "
        "host's scratch and cache",
        coerce=lambda v: (normalize(str(v)) or None) if v is not None else None,
        check=check_storage_url,
        display=lambda v: redact(v) or None,
        label="Storage URL",
        shown="none: everything under the data directory",
        example="s3://bucket/xport",
        accepts="`s3://bucket/prefix` or a local directory, without credentials (they come from the "
        "storage's own environment, `AWS_*`)",
        doc="See README, *Scaling out*.",
    )
    # how long a run's lease (the run lock under a storage URL) lasts without its holder renewing it
    run_lease: float = setting(
        60.0,
        "how long a run's lease on the storage URL outlives a holder that stopped renewing it (a host "
        "that died); renewed every third of it",
        low=1,
        high=_DAY,
        unit=_SECONDS,
    )
    report_tz: str = setting(
        DEFAULT_REPORT_TZ,
        "the time zone of report months",
        check=_check_zone,
        flag="--report-tz",
        label="Reporting time zone",
        example="UTC",
        accepts="an IANA time zone name",
    )
    rate_limit: float | None = setting(
        10.0,
        "requests per second for this access key; the API's own limit is assumed to be 10/s",
        low=0,
        zero="unlimited",
        high=10_000,
        unit="requests/s",
        flag="--rate-limit",
        label="Rate limit (requests/s per AccessKey)",
    )
    # where the access key's budget is kept: None = a lock file under data_dir/state (one machine);
    # redis://… (or rediss://, unix://) = shared by every machine using that Redis
    rate_limit_url: str | None = setting(
        None,
        "share the rate-limit budget across machines through Redis",
        coerce=optional_text,
        check=check_rate_limit_url,
        display=lambda v: redact(v) or None,
        label="Shared rate-limit store",
        shown="none: a lock file under the data directory (one machine)",
        example="redis://host:6379/0",
        accepts="`redis://`, `rediss://` or `unix://` URL (a password in it is never shown)",
        doc="See README, *Scaling out*.",
    )
    page_size: int = setting(
        100,
        "records per page",
        check=check_page_size,
        accepts="1 to the API's `max_page_size` (100)",
    )
    timeout: float = setting(30.0, "seconds a whole request may take", low=0, above=True, high=3600, unit=_SECONDS)
    # the largest API answer read (its body, decoded): a bigger one is refused while it streams
    # in, before it can take the memory (a page of 100 orders is about 300 KB)
    max_response_bytes: int = setting(
        64 << 20,
        "the largest API answer read: its body once decoded, counted as it streams in; a larger one is "
        "refused at once (exit 5), never buffered or retried",
        low=1,
        high=1 << 32,
        unit="bytes",
        shown="64 MiB",
        label="Largest API answer (bytes)",
    )
    max_pages: int = setting(100_000, "pages one window may have (a guard against paging for ever)", env=None, low=1)
    # incremental windows end this many seconds before now: what the API wrote in the last
    # moments may not be visible to its list queries yet, and clocks are never quite in step
    safety_lag: float = setting(
        300.0, "incremental windows end this many seconds before now", low=0, high=7 * _DAY, unit=_SECONDS
    )
    # a fan-out key that can still change (a parcel in transit, an open refund) is fetched again
    # only once the API's clock has moved this many seconds since its last fetch (0: every run).
    # parcels get an event every several hours, so polling each one hourly mostly finds nothing
    refetch_after: float = setting(
        6 * 3600.0,
        "re-ask an in-transit parcel or an open refund after this many seconds of API time",
        low=0,
        zero="every run",
        high=366 * _DAY,
        unit=_SECONDS,
    )
    # every [assumed] contract choice (README, *What is assumed about the API*)
    assumptions: ApiAssumptions = setting(
        ASSUMED,
        "a JSON file overriding the [assumed] API choices",
        env=ASSUMPTIONS_ENV_VAR,
        parse=lambda raw, label: load_assumptions(raw),
        extra=False,
        repr=False,
        shown="none: the contract's assumptions",
        accepts="a readable JSON file (README, *What is assumed about the API*)",
    )
    # data checks' severity/threshold without editing SQL: {"chk_…": {"severity": "error", "threshold": 0}}
    # (a dict or its JSON text; see xport_etl.load.checks)
    check_overrides: Mapping[str, Mapping[str, Any]] = setting(
        {},
        "a data check's severity or threshold without editing SQL",
        coerce=parse_check_overrides,
        example='{"chk_fct_orders__amount_equals_lines": {"severity": "error"}}',
        accepts='a JSON object: check name → `{"severity": "error"|"warn", "threshold": n}`',
        doc="See docs/data-checks.md.",
    )
    callback_max_body: int = setting(
        1 << 20,
        "the callback receiver's largest body, counted as it streams in (413 past it)",
        low=1,
        high=1 << 30,
        unit="bytes",
        shown="1 MiB",
    )
    # a request's head and body must arrive within this many seconds of the connection's opening
    # (or the end of its previous response): slow clients are cut off, not waited for
    callback_read_timeout: float = setting(
        10.0,
        "seconds the callback receiver waits for a whole request",
        low=0,
        above=True,
        high=3600,
        unit=_SECONDS,
    )
    # ... and its head within this many: an idle or kept-alive connection is closed after it
    callback_keep_alive: float = setting(
        5.0,
        "seconds the callback receiver waits for a request's head (idle connections close)",
        low=0,
        above=True,
        high=3600,
        unit=_SECONDS,
    )
    # the connection budget: connections without a complete request held at once (the oldest
    # is closed to make room), and complete requests handled at once (503 past it)
    callback_max_connections: int = setting(
        200,
        "the callback receiver's connection budget",
        low=1,
        high=100_000,
        unit="connections",
        doc="See docs/callbacks.md.",
    )
    # the oldest message timestamp the receiver accepts: Xportcn retries a failed push 30 minutes
    # apart at most 5 times (2.5 h), and a retry may keep its first timestamp
    callback_max_age: float = setting(
        10_800.0,
        "the oldest message timestamp the callback receiver accepts, in seconds: Xportcn's 5 retries "
        "30 minutes apart, and a margin",
        low=0,
        above=True,
        high=7 * _DAY,
        unit=_SECONDS,
        flag="--max-age",
        example="14400",
    )
    # the inbox's active segment is rotated before it would grow past this many bytes
    inbox_rotate_bytes: int = setting(
        64 << 20, "the callback inbox's segment size", low=1, high=1 << 40, unit="bytes", shown="64 MiB"
    )
    # how long the receiver remembers a message id to answer a redelivery `duplicate`: Xportcn
    # retries a failed message 30 minutes apart at most 5 times
    # (docs/api-contract.md#6-message-callbacks, about 2.5 h)
    callback_dedup_horizon: float = setting(
        86_400.0,
        "how long the callback receiver remembers a message id, seconds",
        low=0,
        above=True,
        high=366 * _DAY,
        unit=_SECONDS,
    )
    workers: int | None = setting(
        None,
        "threads (or processes) that normalise windows",
        low=1,
        high=1024,
        unit="workers",
        flag="--workers",
        shown="every core; 1 uses the least memory",
        doc="Threads of the DuckDB normaliser: each types chunks of the windows being normalised (one "
        "window's or several's) with one DuckDB thread, all sharing `XPORT_STAGE_MEMORY`, as many windows at "
        "once; processes for the Python ones (only for loads over 8 MB of pages); see BENCHMARKS.md.",
    )
    extract_workers: int | None = setting(
        None,
        "list windows `run` pages at once (one shared rate limit)",
        low=1,
        high=256,
        unit="workers",
        shown="4",
        doc="Each with its own connection and request counts. `1`: one window after another.",
    )
    stage_memory: str | None = setting(
        None,
        "DuckDB memory limit of the normaliser, shared by the windows normalised at once",
        check=check_memory,
        shown="160MB",
        example="256MB",
        accepts="a DuckDB size of at least 16MB (`192MB`, `1.5GiB`) or a share of the memory (`50%`)",
        doc="Spills to `<data_dir>/tmp` beyond it.",
    )
    load_memory: str | None = setting(
        None,
        "DuckDB memory limit of the publishing connection",
        check=check_memory,
        shown="192MB",
        example="300MB",
        accepts="a DuckDB size of at least 16MB (`192MB`, `1.5GiB`) or a share of the memory (`50%`)",
        doc="A bigger merge spills beside the warehouse; staged rows are merged 400,000 at a time.",
    )
    warehouse_storage_version: str = setting(
        DEFAULT_WAREHOUSE_STORAGE_VERSION,
        "the DuckDB storage version warehouse.duckdb is written in",
        check=check_storage_version,
        label="Warehouse storage version",
        example="latest",
        accepts="a DuckDB release (`v1.0.0`) or `latest`",
        doc="`v1.0.0` opens in every DuckDB from 1.0 on (CLI, BI drivers, other bindings); `latest` is this "
        "DuckDB's newest (readers then need DuckDB ≥ 2.0). A warehouse in another version is rewritten in "
        "this one on its next publish (README, *Connecting a BI tool*).",
    )
    sql_normalizer: bool = setting(
        True, "normalise Taobao order pages in DuckDB SQL (`0`: with the Python reference too)"
    )
    freshness_hours: float = setting(
        26.0,
        "the freshness error level: the xport_freshness DAG fails (`status --check-freshness` exits 6) "
        "on a fact table older than this many hours",
        low=0,
        above=True,
        high=366 * 24,
        unit="hours",
    )
    # ... and warns (logs, exit 0) when it is older than this; None: an hour less than freshness_hours
    freshness_warn_hours: float | None = setting(
        None,
        "the freshness warning level: a fact table older than this many hours, but not than the error "
        "level, is a warning (logged; the DAG succeeds, `status --check-freshness` exits 0)",
        low=0,
        above=True,
        high=366 * 24,
        unit="hours",
        check=check_freshness_warn,
        example="20",
        shown="an hour less than XPORT_FRESHNESS_HOURS",
        accepts="above 0, at most XPORT_FRESHNESS_HOURS",
    )
    # rpt_stuck_orders lists what got stuck in a stage that began within this many days (recorded in
    # etl_settings at publish, where the view reads it); older is past chasing there
    stuck_recent_days: int = setting(
        30,
        "rpt_stuck_orders' recency window: it lists what got stuck in a stage that began within this many "
        "days of the last load (recorded in the warehouse at publish)",
        low=1,
        high=3660,
        unit="days",
    )
    # the umask the CLI runs under: 0o077 keeps raw pages, Parquet, the ledger and the warehouse
    # (all of them hold receivers' names, phones and addresses) to the owner
    umask: int = setting(
        0o077,
        "the umask files are created under (the CLI and the Airflow tasks)",
        parse=parse_umask,
        check=check_umask,
        shown="077: files 0600, directories 0700",
        example="027",
        accepts="an octal umask that keeps other users out: `077`, or `027` with a readers' group",
        doc="See docs/operations.md, *File permissions*.",
    )

    def __post_init__(self) -> None:
        for s in SETTINGS:  # normalise what was given (Settings(data_dir="x", user_id=123) behaves)
            if s.coerce is not None:
                object.__setattr__(self, s.name, s.coerce(getattr(self, s.name)))
        for s in SETTINGS:
            s.validate(getattr(self, s.name), self)
        self._validate()

    def _validate(self) -> None:
        """What no single setting can check alone."""
        if not self.access_key or not self.access_secret or not self.user_id:
            raise ConfigError("XPORT_ACCESS_KEY, XPORT_ACCESS_SECRET and XPORT_USER_ID must not be empty")
        if not is_sandbox_url(self.base_url):
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
        self.signer  # noqa: B018 (the recipe with its template and unit; raises ConfigError naming the variable)

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
        unknown = sorted(set(overrides) - set(SETTING))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for s in SETTINGS:
            raw = env.get(s.env) if s.env else None
            if raw is not None and raw.strip():
                values[s.name] = s.parse_text(raw.strip(), s.env or s.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ConfigError as exc:
            named = {
                SETTING[name].env: label
                for name, label in (given_as or {}).items()
                if name in SETTING and SETTING[name].env and overrides.get(name) is not None
            }
            if not named:
                raise
            pattern = re.compile(r"\b(" + "|".join(re.escape(var) for var in named if var) + r")\b")
            raise ConfigError(pattern.sub(lambda m: named[m[0]], str(exc)), hint=exc.hint) from None

    @property
    def layout(self) -> DataLayout:
        """Where each kind of state lives: under ``data_dir``, raw pages at ``raw_url`` if set, the
        durable kinds under ``storage_url`` if set."""
        return DataLayout(self.data_dir, self.raw_url, self.storage_url)

    @property
    def signer(self) -> SignRecipe:
        """The signing recipe these settings describe (:func:`xport_etl.extract.auth.resolve_recipe`)."""
        from xport_etl.extract.auth import resolve_recipe  # httpx is not needed to read settings

        return resolve_recipe(self.sign_recipe, self.sign_template, self.timestamp_unit)

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict for logs: secrets as ``'***'``, URLs without their passwords,
        and nothing that ``repr`` leaves out for noise (the API assumptions)."""
        out: dict[str, Any] = {}
        for s, f in zip(SETTINGS, dataclasses.fields(self), strict=True):
            value = getattr(self, s.name)
            if s.secret:
                out[s.name] = "***"
            elif s.display is not None:
                out[s.name] = s.display(value)
            elif f.repr:
                out[s.name] = str(value) if isinstance(value, Path) else value
        return out

    def __str__(self) -> str:
        return repr(self)


SETTINGS: tuple[Setting, ...] = declarations(Settings)
SETTING: Mapping[str, Setting] = types.MappingProxyType({s.name: s for s in SETTINGS})
ENV_VARS: Mapping[str, str] = types.MappingProxyType({s.name: s.env for s in SETTINGS if s.env})
CONNECTION_FIELDS = tuple(s.name for s in SETTINGS if s.connection)  # the Connection's own fields


# ---- the Airflow Connection


def _extra_label(name: str) -> str:
    return f"Connection extra {name!r}"


def overrides_from_extras(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Settings overrides from an Airflow Connection's extras: any setting by its name
    (``{"user_id": "1000001", "workers": 2, "stage_memory": "256MB"}``), read as its environment
    variable would be; a JSON object (``check_overrides``) is taken as it is. The URL and the
    credentials are the Connection's own fields, never extras.

    Raises:
        ConfigError: an extra that names no setting, or a value that does not parse.
    """
    out: dict[str, Any] = {}
    for name, value in extra.items():
        s = SETTING.get(name)
        if s is None or not s.is_extra:
            known = ", ".join(sorted(s.name for s in SETTINGS if s.is_extra))
            raise ConfigError(f"unknown Connection extra {name!r}; the extras are: {known}")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, Mapping | list):
            out[name] = value
        else:
            out[name] = s.parse_text(str(value).strip(), _extra_label(name))
    return out


def settings_from_connection(
    base_url: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings an Airflow Connection describes (its host as ``base_url``, login and password
    as the credentials, its extras by name), over the environment; a failed check names the
    Connection's field or extra that was set.

    Raises:
        ConfigError: see :meth:`Settings.from_env` and :func:`overrides_from_extras`.
    """
    fields = {"host": base_url, "login": login, "password": password}
    overrides = {s.name: fields[s.connection] or None for s in SETTINGS if s.connection}
    given_as = {name: f"the Connection's {SETTING[name].connection}" for name in overrides}
    extras = overrides_from_extras(extra)
    given_as.update({name: _extra_label(name) for name in extras})
    return Settings.from_env(environ, given_as=given_as, **overrides, **extras)


def umask_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The umask ``XPORT_UMASK`` asks for (default 077, checked as in :class:`Settings`), read before any other."""
    s = SETTING["umask"]
    env = os.environ if environ is None else environ
    raw = (env.get(s.named) or "").strip()
    if not raw:
        return int(s.default)
    value = s.parse_text(raw, s.named)
    check_umask(value, s.named)
    return value


# ---- docs/settings.md

SETTINGS_DOC = "docs/settings.md"


def settings_markdown() -> str:
    """``docs/settings.md``, made from the declarations (``make docs`` writes it)."""
    return markdown(SETTINGS)


# ---- process-level variables (not settings)


def crash_at() -> str | None:
    """``XPORT_CRASH_AT`` (``<point>:<n>``, see :mod:`xport_etl.faults`), or None: one lookup."""
    return os.environ.get(CRASH_AT_VAR)


def pipeline_pid() -> int | None:
    """The pipeline's process id when this process is one of its staging workers, else None."""
    return int(pid) if (pid := os.environ.get(PIPELINE_PID_VAR)) else None


def worker_environ(pipeline: int) -> dict[str, str]:
    """A staging worker's environment: this one's plus ``XPORT_PIPELINE_PID`` (its crash points kill ``pipeline``)."""
    return {**os.environ, PIPELINE_PID_VAR: str(pipeline)}


def terminal_columns() -> str | None:
    """``COLUMNS`` when set (a terminal width asked for explicitly), else None."""
    return os.environ.get("COLUMNS") or None


def prefer_system_allocator() -> None:
    """Make Arrow use the system allocator unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise: read when pyarrow
    is first imported, so from ``xport_etl``'s ``__init__``; mimalloc kept more resident (bench/NOTES.md, "Memory")."""
    os.environ.setdefault(ARROW_POOL_VAR, "system")


def malloc_arenas_chosen() -> bool:
    """Whether you chose glibc's arenas (``MALLOC_ARENA_MAX``, ``GLIBC_TUNABLES``): xport_etl.allocator keeps them."""
    return "MALLOC_ARENA_MAX" in os.environ or "malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", "")
