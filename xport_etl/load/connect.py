"""Connections to the warehouse: the publishing connection to a next state, and the readers'
connection to the published warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb

from xport_etl.errors import NotFoundError, XportError
from xport_etl.layout import Where
from xport_etl.load.published import PublishedWarehouse

__all__ = ["LOAD_MEMORY", "WarehouseError", "connect_reader", "connect_writer"]

# DuckDB's memory limit for publishing when ``Settings.load_memory`` (XPORT_LOAD_MEMORY) is unset:
# with the merge in groups of MERGE_ROWS a 1M-order load fits in it (see bench/NOTES.md)
LOAD_MEMORY = "192MB"


class WarehouseError(XportError):
    """The published warehouse cannot be opened: not a DuckDB file (corrupt, truncated, or
    written by a newer DuckDB), or unreadable."""

    exit_code = 7
    hint = "move the file aside and run `xport-etl load`: every landed window is published again from its raw pages"
    permanent = True


def connect_writer(path: Path, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """The publishing connection (to a next state: no writer opens the published file).
    ``memory_limit`` bounds DuckDB's memory (a merge larger than it spills to a temp directory
    beside the file; one that cannot spill raises, and the publish retries it once without the
    limit); None leaves DuckDB's default (80% of RAM)."""
    config: dict = {"preserve_insertion_order": False}
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(str(path), config=config)
    # Parquet times are UTC instants; the warehouse stores them as naive UTC TIMESTAMPs
    con.execute("set TimeZone = 'UTC'")
    return con


def connect_reader(data_dir: Where) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published warehouse (what analysts and reports use).

    Each call opens the file as it is now, in a database instance of its own: ``duckdb.connect``
    on a path hands back the process's cached instance of that path while any connection to it
    is open, which after a publish (``os.replace``) is the *old* file, so a pool of readers would
    never see a newer load and would keep the old file's space. An unnamed in-memory database is
    never cached; the warehouse is attached to it read-only and made the default catalog.

    Raises:
        NotFoundError: nothing has been published under ``data_dir`` (a ``FileNotFoundError``).
        WarehouseError: the file is not a readable DuckDB database.
    """
    published = PublishedWarehouse(data_dir)
    if not published.exists():
        raise NotFoundError(f"no warehouse at {published.path}: run `xport-etl run` or `make demo` first")
    path = published.path
    con = duckdb.connect(":memory:")
    try:
        con.execute("attach ? as warehouse (read_only)", [str(path)])
        con.execute("use warehouse")
        # read-only, and no way out of the file either: no ATTACH of another database for writing,
        # no COPY/EXPORT to files, and the settings cannot be changed back from inside the session
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        first = str(exc).splitlines()[0]
        raise WarehouseError(f"cannot open the warehouse {path}: {first}") from exc
    return con
