"""Where each kind of state lives: the one place that knows the data directory's layout.

Every place the pipeline keeps something is a *kind* of state, declared once in :data:`KINDS`
with its place under the data directory (``XPORT_DATA_DIR``) and its scope:

- ``durable``: the pipeline's record. Losing it loses data, history or a run's unfinished work
  (raw pages, Parquet, the published warehouse, run plans and next states, the run and check
  ledgers, the callback inbox).
- ``host``: one machine's working space, safe to lose with the machine (locks, the rate-limit
  file, spool and spill files).

A :class:`DataLayout` (``settings.layout``, or :meth:`DataLayout.of` a data directory) answers
where each kind is; no other module joins ``"state"``, ``"parquet"`` or ``"warehouse.duckdb"``
onto a directory (``tests/test_data_layout.py`` holds that line). Only the raw pages can live
elsewhere today (``XPORT_RAW_URL``: a path or an fsspec URL). This is the seam for keeping every
durable kind in object storage: mapping a kind to a storage URL is a change to this module and
to the few readers and writers of that kind, not a hunt for path joins.

What lies *inside* a kind is its owner's format: a window's files under ``raw/`` belong to
:mod:`xport_etl.extract.landing`, the tables and batch markers under ``parquet/`` to
:mod:`xport_etl.load.staging`, the inbox's segments under ``callbacks/`` to
:mod:`xport_etl.callbacks.inbox`.
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

__all__ = ["DURABLE", "HOST", "KINDS", "DataLayout", "Kind", "Where", "layout_markdown"]

DURABLE, HOST = "durable", "host"


@dataclass(frozen=True)
class Kind:
    """One kind of state.

    Attributes:
        path: its place under the data directory, ``/``-separated (a folder or a file).
        scope: :data:`DURABLE` (the pipeline's record) or :data:`HOST` (one machine's working space).
        what: what it holds, in a few words (docs/operations.md's table).
    """

    path: str
    scope: str
    what: str


KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        "raw": Kind("raw", DURABLE, "raw pages as received, per endpoint and window (or `XPORT_RAW_URL`)"),
        "parquet": Kind("parquet", DURABLE, "staged Parquet batches, per table and month, and their markers"),
        "warehouse": Kind("warehouse.duckdb", DURABLE, "the published warehouse readers open"),
        "plans": Kind("state/plans", DURABLE, "resumable plans of `run` and `backfill`"),
        "next_states": Kind("state/next", DURABLE, "each run's next state of the warehouse, until it is published"),
        "runs": Kind("state/runs.jsonl", DURABLE, "the run ledger (`etl_runs`)"),
        "check_results": Kind("state/check_results.jsonl", DURABLE, "the check ledger (`etl_check_results`)"),
        "callbacks": Kind("callbacks", DURABLE, "the callback inbox, its read position and dead letters"),
        "run_lock": Kind("state/run.lock", HOST, "one `run`/`backfill` at a time (`flock`)"),
        "warehouse_lock": Kind("warehouse.lock", HOST, "one publisher at a time (`flock`)"),
        "ratelimit": Kind("state/ratelimit", HOST, "the access key's rate-limit budget, shared by this machine"),
        "spool": Kind("spool", HOST, "pages on their way to a remote raw root"),
        "tmp": Kind("tmp", HOST, "DuckDB's spill files while staging"),
    }
)


class _Located(Protocol):  # the settings, as far as the layout reads them
    @property
    def data_dir(self) -> Path: ...

    @property
    def raw_url(self) -> str | None: ...


# what a function that keeps state takes: a data directory, its layout, or the settings naming it
Where: TypeAlias = "DataLayout | _Located | str | os.PathLike[str]"


@dataclass(frozen=True)
class DataLayout:
    """Where each kind of state of one data directory lives.

    Attributes:
        data_dir: the data directory (``Settings.data_dir``).
        raw_url: the raw root if it is not ``<data_dir>/raw`` (``Settings.raw_url``).
    """

    data_dir: Path
    raw_url: str | None = None

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
            layout = cls(where.data_dir, where.raw_url)
        return layout if raw_url is None else replace(layout, raw_url=raw_url)

    def _at(self, kind: str) -> Path:
        return self.data_dir.joinpath(*KINDS[kind].path.split("/"))

    @property
    def raw(self):
        """The raw root: ``raw_url`` (a ``UPath`` for a remote store) or ``<data_dir>/raw``."""
        return storage.to_path(self.raw_url) if self.raw_url else self._at("raw")

    @property
    def raw_shown(self) -> str:
        """The raw root as logs and messages may show it (a URL without credentials)."""
        return storage.redact(self.raw_url) if self.raw_url else str(self._at("raw"))

    @property
    def parquet(self) -> Path:
        return self._at("parquet")

    @property
    def warehouse(self) -> Path:
        return self._at("warehouse")

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


def layout_markdown() -> str:
    """The data directory's table for docs/operations.md (a test keeps the two the same)."""
    rows = [
        "| where (under the data directory) | what | scope |",
        "|---|---|---|",
        *(f"| `{k.path}{'' if '.' in k.path else '/'}` | {k.what} | {k.scope} |" for k in KINDS.values()),
    ]
    return "\n".join(rows) + "\n"
