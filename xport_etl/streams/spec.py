"""What a stream is made of, as data: after Airbyte's declarative streams and dlt's resources.

A :class:`StreamSpec` names its parts, each a frozen dataclass that one step of the pipeline
executes:

- :class:`EndpointSpec`: the request and its paging (path, method, paging style, where the records
  sit, key, time-window filters, the detail parameter): what :mod:`xport_etl.extract` pages or calls.
- :class:`Cursor`: how an incremental run reads it (which window filter, how far back, which record
  field holds the update time): Airbyte's ``DatetimeBasedCursor``.
- :class:`FanOut`: the parent stream whose rows name its keys, and the query that picks them
  (``sql/fanout/``): Airbyte's ``SubstreamPartitionRouter``, dlt's transformer.
- its normaliser (and whether the DuckDB fast path reads it), and the warehouse tables it writes.

Nothing here imports anything heavier than the standard library: the DAG files read the
declarations at parse time. A normaliser is named by ``"module:function"`` and imported only by
:mod:`xport_etl.normalize.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

__all__ = [
    "PAGING_STYLES",
    "TIME_FORMATS",
    "Cursor",
    "EndpointSpec",
    "FanOut",
    "Platform",
    "StreamSpec",
    "WindowSpec",
]

TIME_FORMATS = ("cst_string", "epoch_ms")
PAGING_STYLES = ("page_number_body", "page_number_query")


@dataclass(frozen=True)
class WindowSpec:
    """One time-window filter of an endpoint (inclusive start, exclusive end [assumed]).

    Attributes:
        start_field: the request field of the window start (``createStartTime``).
        end_field: the request field of the window end (``createEndTime``).
        time_format: ``"cst_string"`` (``yyyy-MM-dd HH:mm:ss`` in UTC+8) or ``"epoch_ms"``.
        location: ``"body"`` or ``"query"``.
    """

    start_field: str
    end_field: str
    time_format: str
    location: str = "body"

    def __post_init__(self) -> None:
        if self.time_format not in TIME_FORMATS:
            raise ValueError(f"time_format must be one of {TIME_FORMATS}, got {self.time_format!r}")
        if self.location not in ("body", "query"):
            raise ValueError(f"location must be 'body' or 'query', got {self.location!r}")


@dataclass(frozen=True)
class EndpointSpec:
    """One API endpoint, as data: what the request and its paging look like.

    Every field can be corrected without code by ``endpoint_overrides`` in the API assumptions
    file (:func:`xport_etl.extract.endpoints.endpoints_for`).

    Attributes:
        name: the endpoint's name, which is its stream's (``"taobao_orders"``).
        path: the path relative to the base URL.
        method: ``"POST"`` or ``"GET"``.
        paging: ``"page_number_body"``, ``"page_number_query"`` or None (detail endpoint).
        records_path: where the records sit under the envelope's ``data``.
        primary_key: the record fields that identify a record.
        windows: the time-window filters, by name (``"create"``, ``"update"``).
        detail_param: the parameter naming the resource of a detail endpoint.
        members_in: objects inside a record whose members count as the record's own, winning
            over the record's (1688's ``baseInfo``): where paging reads the primary key and the
            version time of a record that nests them.
    """

    name: str
    path: str
    method: str
    paging: str | None
    records_path: tuple[str, ...] = ("records",)
    primary_key: tuple[str, ...] = ()
    windows: Mapping[str, WindowSpec] = field(default_factory=lambda: MappingProxyType({}))
    detail_param: str | None = None
    members_in: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST"):
            raise ValueError(f"method must be GET or POST, got {self.method!r}")
        if self.paging is not None and self.paging not in PAGING_STYLES:
            raise ValueError(f"paging must be one of {PAGING_STYLES} or None, got {self.paging!r}")
        if not self.path.startswith("/"):
            raise ValueError(f"path must start with '/', got {self.path!r}")
        if not isinstance(self.windows, MappingProxyType):
            object.__setattr__(self, "windows", MappingProxyType(dict(self.windows)))

    def __hash__(self) -> int:
        return hash((self.name, self.method, self.path))

    @property
    def is_paged(self) -> bool:
        return self.paging is not None

    @property
    def pages_in_body(self) -> bool:
        """True when ``pageNo``/``pageSize`` go in the JSON body (else the query string)."""
        return self.paging == "page_number_body"


@dataclass(frozen=True)
class Cursor:
    """How an incremental run reads a list stream for a data interval.

    Attributes:
        window: the endpoint's window filter it reads: ``"update"`` where the endpoint filters on
            update time (each run reads what changed), else ``"create"`` with a ``lookback``
            (records keep changing for weeks after they are created).
        lookback: how far before the interval the window starts.
        field: the record field holding its update time, as the API writes it (``updateTime``).
            A pass over a creation window notes the newest one on its first page, and asks the
            update window for what changed since, while it paged (the catch-up). None: no
            catch-up (the next run settles what moved).
    """

    window: str
    lookback: timedelta = timedelta(0)
    field: str | None = None


@dataclass(frozen=True)
class FanOut:
    """Where a stream's keys come from: one call of its detail endpoint per key.

    Attributes:
        parent: the stream whose loaded rows name the keys (it runs first).
        keys: the key query, a file under ``sql/`` (``"fanout/taobao_logistics.sql"``): a select
            of ``key`` (the detail parameter's value) and the context columns landed with each
            answer, asking only for what can still change.
        about: what the keys are, in a few words, for the people reading the DAG.
    """

    parent: str
    keys: str
    about: str


@dataclass(frozen=True)
class Platform:
    """A source platform: its streams form one task group of the ingest DAG.

    Attributes:
        name: the platform as the warehouse's ``platform`` column writes it (``"1688"``).
        group: the DAG's task group and its streams' name prefix (``"alibaba"``).
        title: what the group holds, in a few words (the group's tooltip).
    """

    name: str
    group: str
    title: str


@dataclass(frozen=True)
class StreamSpec:
    """A stream, declared once: its endpoint, how it is read, how it is normalised, what it writes.

    A stream with a :class:`Cursor` (a list read by time window) or a :class:`FanOut` (a detail
    endpoint called per key) is *scheduled*: ``xport-etl run`` and the ingest DAG read it. Any
    other stream is read on demand only (``xport-etl extract``, the callbacks' refresh).

    Attributes:
        platform: the platform it belongs to.
        endpoint: the request and its paging.
        normalizer: ``"module:function"`` of the normaliser that reads its pages.
        tables: the warehouse tables it writes.
        cursor: how an incremental run reads it (list streams).
        fanout: where its keys come from (fan-out streams).
        fast_path: whether its pages may go through the DuckDB twin of the Taobao order normaliser
            (:mod:`xport_etl.normalize.taobao_orders_sql`) instead of ``normalizer``.
    """

    platform: Platform
    endpoint: EndpointSpec
    normalizer: str
    tables: tuple[str, ...]
    cursor: Cursor | None = None
    fanout: FanOut | None = None
    fast_path: bool = False

    def __post_init__(self) -> None:
        if not self.name.startswith(self.platform.group + "_"):
            raise ValueError(f"stream {self.name!r} is not named {self.platform.group}_<what>")
        if self.cursor is not None and self.cursor.window not in self.endpoint.windows:
            raise ValueError(f"{self.name}: its cursor's window {self.cursor.window!r} is not one of its windows")
        if self.cursor is not None and self.fanout is not None:
            raise ValueError(f"{self.name}: a stream is read by window (cursor) or by key (fanout), not both")
        if self.fanout is not None and self.endpoint.detail_param is None:
            raise ValueError(f"{self.name}: a fan-out needs its endpoint's detail_param")
        module, _, function = self.normalizer.partition(":")
        if not module or not function:
            raise ValueError(f"{self.name}: normalizer must be 'module:function', got {self.normalizer!r}")

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def short(self) -> str:
        """The name without its platform's prefix (``orders``): the DAG's task names."""
        return self.name.removeprefix(self.platform.group + "_")

    @property
    def scheduled(self) -> bool:
        return self.cursor is not None or self.fanout is not None
