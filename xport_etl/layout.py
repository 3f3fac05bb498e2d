"""Where each kind of state lives: the one place that knows the data directory's layout, and
where each durable kind goes in object storage.

Every place the pipeline keeps something is a *kind* of state, declared once in :data:`KINDS`
with its place under the data directory (``XPORT_DATA_DIR``) and its scope:

- ``durable``: the pipeline's record. Losing it loses data, history or a run's unfinished work
  (raw pages, Parquet, the published warehouse, run plans and next states, the run and check
  ledgers, the callback inbox).
- ``host``: one machine's working space, safe to lose with the machine (locks, the rate-limit
  file, spool and spill files).

A :class:`DataLayout` (``settings.layout``, or :meth:`DataLayout.of` a data directory) answers
where each kind is; no other module joins ``"state"``, ``"parquet"`` or ``"warehouse.duckdb"``
onto a directory (``tests/test_data_layout.py`` holds that line).

**With a storage URL** (``XPORT_STORAGE_URL``, :mod:`xport_etl.store`) every durable kind lives
as objects under its :attr:`Kind.stored` prefix of that URL, and so does the run lock (a lease);
the data directory is then one host's scratch and cache, which any task may start without:
the places :class:`DataLayout` names under it become this host's working copies (the newest
published warehouse, a run's next state, staged Parquet on its way up). :meth:`DataLayout.store`
opens a kind's prefix. Without one, everything is where it always was: the embedded default.
The raw pages alone can also be put elsewhere (``XPORT_RAW_URL``: a path or an fsspec URL).

What lies *inside* a kind is its owner's format: a window's files under ``raw/`` belong to
:mod:`xport_etl.extract.landing`, the tables and batch markers under ``parquet/`` to
:mod:`xport_etl.load.staging`, the inbox's segments under ``callbacks/`` to
:mod:`xport_etl.callbacks.inbox`, the versions and commits under ``warehouse/`` to
:mod:`xport_etl.load.published`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, TypeAlias

from xport_etl.extract import storage

if TYPE_CHECKING:
    from collections.abc import Mapping

    from xport_etl.store import Store

__all__ = ["DURABLE", "HOST", "KINDS", "DataLayout", "Kind", "Where", "layout_markdown"]

DURABLE, HOST = "durable", "host"


@dataclass(frozen=True)
class Kind:
    """One kind of state.

    Attributes:
        path: its place under the data directory, ``/``-separated (a folder or a file).
        scope: :data:`DURABLE` (the pipeline's record) or :data:`HOST` (one machine's working space).
        what: what it holds, in a few words (docs/operations.md's table).
        stored: its prefix under the storage URL (``XPORT_STORAGE_URL``), or None: it stays on
            each host.
        there: what it is with a storage URL, in a few words (docs/operations.md's table).
    """

    path: str
    scope: str
    what: str
    stored: str | None = None
    there: str = "this host's, as without a storage URL"


KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        "raw": Kind(
            "raw",
            DURABLE,
            "raw pages as received, per endpoint and window (or `XPORT_RAW_URL`)",
            "raw",
            "the pages (unless `XPORT_RAW_URL`); nothing here",
        ),
        "parquet": Kind(
            "parquet",
            DURABLE,
            "staged Parquet batches, per table and month, and their markers",
            "parquet",
            "the batches a run merged; here, this host's staging scratch",
        ),
        "warehouse": Kind(
            "warehouse.duckdb",
            DURABLE,
            "the published warehouse readers open",
            "warehouse",
            "every published version and its commit; here, this host's copy of the newest",
        ),
        "plans": Kind("state/plans", DURABLE, "resumable plans of `run` and `backfill`", "state/plans", "the plans"),
        "next_states": Kind(
            "state/next",
            DURABLE,
            "each run's next state of the warehouse, until it is published",
            "state/next",
            "each run's merges, which any host rebuilds its next state from; here, this host's copy",
        ),
        "runs": Kind("state/runs.jsonl", DURABLE, "the run ledger (`etl_runs`)", "ledger/runs", "the run ledger"),
        "check_results": Kind(
            "state/check_results.jsonl",
            DURABLE,
            "the check ledger (`etl_check_results`)",
            "ledger/check_results",
            "the check ledger",
        ),
        "callbacks": Kind(
            "callbacks",
            DURABLE,
            "the callback inbox, its read position and dead letters",
            "callbacks",
            "each message an object until consumed, then consumed and dead letters",
        ),
        "run_lock": Kind(
            "state/run.lock",
            HOST,
            "one `run`/`backfill` at a time (`flock`)",
            "state/run-lease",
            "a lease any host takes over once it expires (`XPORT_RUN_LEASE`)",
        ),
        "warehouse_lock": Kind(
            "warehouse.lock",
            HOST,
            "one publisher at a time (`flock`)",
            there="this host's copy of the warehouse replaced one at a time; publishers commit conditionally",
        ),
        "ratelimit": Kind(
            "state/ratelimit",
            HOST,
            "the access key's rate-limit budget, shared by this machine",
            there="this host's (share it across hosts with `XPORT_RATE_LIMIT_URL`)",
        ),
        "spool": Kind("spool", HOST, "pages on their way to a remote raw root"),
        "tmp": Kind("tmp", HOST, "DuckDB's spill files while staging"),
        "ledger_cache": Kind(
            "state/ledger-cache",
            HOST,
            "with a storage URL: the ledger lines this host has read (objects written once, kept by number)",
        ),
    }
)


class _Located(Protocol):  # the settings, as far as the layout reads them
    @property
    def data_dir(self) -> Path: ...

    @property
    def raw_url(self) -> str | None: ...

    @property
    def storage_url(self) -> str | None: ...


# what a function that keeps state takes: a data directory, its layout, or the settings naming it
Where: TypeAlias = "DataLayout | _Located | str | os.PathLike[str]"


@dataclass(frozen=True)
class DataLayout:
    """Where each kind of state of one data directory lives.

    Attributes:
        data_dir: the data directory (``Settings.data_dir``).
        raw_url: the raw root if it is not ``<data_dir>/raw`` (``Settings.raw_url``).
        storage_url: where the durable kinds live, if not here (``Settings.storage_url``).
    """

    data_dir: Path
    raw_url: str | None = None
    storage_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    @classmethod
    def of(cls, where: Where, raw_url: str | None = None) -> DataLayout:
        """The layout of ``where``: a :class:`DataLayout` as it is, settings (their ``data_dir``
        and ``raw_url``), or a data directory's path; ``raw_url`` replaces the raw root if given."""
        if isinstance(where, DataLayout):
            layout = where
        elif isinstance(where, (str, os.PathLike)):
            layout = cls(Path(where))
        else:
            layout = cls(where.data_dir, where.raw_url, getattr(where, "storage_url", None))
        return layout if raw_url is None else replace(layout, raw_url=raw_url)

    def _at(self, kind: str) -> Path:
        return self.data_dir.joinpath(*KINDS[kind].path.split("/"))

    @property
    def stored(self) -> bool:
        """Whether the durable kinds live under a storage URL (this data directory is scratch)."""
        return self.storage_url is not None

    def store(self, kind: str) -> Store:
        """The objects of ``kind`` under the storage URL (:class:`xport_etl.store.Store`).

        Raises:
            ValueError: there is no storage URL, or the kind has no place there.
        """
        from xport_etl.store import open_store

        prefix = KINDS[kind].stored
        if self.storage_url is None or prefix is None:
            raise ValueError(f"{kind} is not kept under a storage URL here")
        return open_store(storage.join(self.storage_url, prefix))

    @property
    def storage_shown(self) -> str:
        """Where the durable kinds are, as messages may show it: the storage URL or the data directory."""
        return storage.redact(self.storage_url) if self.storage_url else str(self.data_dir)

    @property
    def _raw_url(self) -> str | None:
        if self.raw_url:
            return self.raw_url
        prefix = KINDS["raw"].stored
        return storage.join(self.storage_url, prefix) if self.storage_url and prefix else None

    @property
    def raw(self):
        """The raw root: ``raw_url`` (a ``UPath`` for a remote store), else the storage URL's
        ``raw/``, else ``<data_dir>/raw``."""
        url = self._raw_url
        return storage.to_path(url) if url else self._at("raw")

    @property
    def raw_shown(self) -> str:
        """The raw root as logs and messages may show it (a URL without credentials)."""
        url = self._raw_url
        return storage.redact(url) if url else str(self._at("raw"))

    @property
    def parquet(self) -> Path:
        return self._at("parquet")

    @property
    def warehouse(self) -> Path:
        return self._at("warehouse")

    @property
    def warehouse_version(self) -> Path:
        """Under a storage URL: which version this host's copy of the warehouse is (beside it)."""
        path = self.warehouse
        return path.with_name(path.name + ".version")

    @property
    def plans(self) -> Path:
        return self._at("plans")

    def plan(self, digest: str) -> Path:
        """A command's plan, named by the digest of its parameters."""
        return self.plans / f"{digest}.json"

    @property
    def next_states(self) -> Path:
        return self._at("next_states")

    @property
    def runs(self) -> Path:
        return self._at("runs")

    @property
    def check_results(self) -> Path:
        return self._at("check_results")

    @property
    def callbacks(self) -> Path:
        return self._at("callbacks")

    @property
    def run_lock(self) -> Path:
        return self._at("run_lock")

    @property
    def warehouse_lock(self) -> Path:
        return self._at("warehouse_lock")

    @property
    def ratelimit(self) -> Path:
        return self._at("ratelimit")

    @property
    def spool(self) -> Path:
        return self._at("spool")

    @property
    def tmp(self) -> Path:
        return self._at("tmp")

    @property
    def ledger_cache(self) -> Path:
        return self._at("ledger_cache")


def layout_markdown() -> str:
    """The data directory's table for docs/operations.md (a test keeps the two the same)."""

    def stored(k: Kind) -> str:
        return f"`{k.stored}/`: {k.there}" if k.stored else k.there

    rows = [
        "| where (under the data directory) | what | scope | with `XPORT_STORAGE_URL` (under it) |",
        "|---|---|---|---|",
        *(f"| `{k.path}{'' if '.' in k.path else '/'}` | {k.what} | {k.scope} | {stored(k)} |" for k in KINDS.values()),
    ]
    return "\n".join(rows) + "\n"
