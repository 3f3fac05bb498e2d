"""The warehouse file and its schema: a next state's file in the warehouse's DuckDB storage
version (and the one-off migration of a published file written in another), and its tables brought
to this version's columns.

The upgrade path between released versions is additive: a publish by a newer version creates the
tables it adds and appends the columns it adds (:func:`ensure_schema`), and re-creates every view,
macro and comment (:mod:`xport_etl.report.views`); nothing is dropped, so the readers of an older
version still read what a newer one publishes. ``tests/upgrade/`` upgrades a data directory written
by a released commit in place.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import duckdb

from xport_etl.errors import ConfigError
from xport_etl.load.connect import WarehouseError
from xport_etl.schemas import WAREHOUSE_TABLES
from xport_etl.settings import DEFAULT_WAREHOUSE_STORAGE_VERSION

__all__ = ["create_state_file", "ensure_schema", "set_settings"]

log = logging.getLogger(__name__)


def create_state_file(path: Path, storage_version: str, published: Path | None = None) -> bool:
    """Create the DuckDB file ``path`` in ``storage_version``: empty, or holding what ``published``
    holds (tables, views, macros).

    The warehouse is written in one DuckDB storage version (``Settings.warehouse_storage_version``,
    default :data:`~xport_etl.settings.DEFAULT_WAREHOUSE_STORAGE_VERSION`, which DuckDB 1.0 and
    later can open). A new file gets it when created (DuckDB's ``storage_compatibility_version``),
    and a file keeps the version it was created in from then on, whoever opens it. So a published
    file already in that version is copied byte for byte (what every publish does), and one in
    another version (written with ``latest``, or by a newer DuckDB) is
    copied over by DuckDB (``COPY FROM DATABASE``) into the new file: the one-off migration, on the
    next publish, of an existing warehouse.

    Returns:
        True when ``published`` was migrated from another storage version.

    Raises:
        ConfigError: this DuckDB does not know ``storage_version``.
        WarehouseError: ``published`` is not a readable DuckDB database.
    """
    try:
        con = duckdb.connect(
            ":memory:",
            config={
                "storage_compatibility_version": storage_version,
                "preserve_insertion_order": False,
                # a rewrite that spills does so beside the new file, as the publishing connection
                # does (an in-memory database would spill under the working directory)
                "temp_directory": f"{path}.tmp",
            },
        )
    except duckdb.InvalidInputException:
        raise ConfigError(
            f"XPORT_WAREHOUSE_STORAGE_VERSION: DuckDB {duckdb.__version__} knows no storage version "
            f"{storage_version!r}; use a DuckDB release such as {DEFAULT_WAREHOUSE_STORAGE_VERSION} or latest"
        ) from None
    try:
        con.execute("attach ? as next", [str(path)])
        if published is None:
            return False
        try:
            con.execute("attach ? as published (read_only)", [str(published)])
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open the warehouse {published}: {str(exc).splitlines()[0]}") from exc
        versions = dict(
            con.execute(
                "select database_name, tags['storage_version'] from duckdb_databases() "
                "where database_name in ('next', 'published')"
            ).fetchall()
        )
        migrate = versions["next"] != versions["published"]
        if migrate:
            log.info(
                "the published warehouse is in DuckDB storage version %s: rewriting it in %s "
                "(XPORT_WAREHOUSE_STORAGE_VERSION=%s)",
                versions["published"],
                versions["next"],
                storage_version,
            )
            con.execute("copy from database published to next")
    finally:
        con.close()
    if not migrate:
        Path(f"{path}.wal").unlink(missing_ok=True)  # nothing of the empty file may be replayed into the copy
        shutil.copyfile(published, path)
    return migrate


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Bring ``con``'s database to this version's tables: each created if missing, and the columns
    a later version added appended (nothing is ever dropped or retyped, so an older version's
    reader still reads the file); ``etl_settings`` for the views' settings."""
    for spec in WAREHOUSE_TABLES:
        con.execute(spec.ddl())
        have = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns where table_name = ?", [spec.name]
            ).fetchall()
        }
        for col in spec.columns:  # additive migrations: new columns appear, nothing is dropped
            if col.name not in have:
                con.execute(f"alter table {spec.name} add column {col.name} {col.duckdb_type}")
    con.execute("create table if not exists etl_settings (key varchar, value varchar)")


def set_settings(con: duckdb.DuckDBPyConnection, values: dict[str, str]) -> None:
    """Set keys of the warehouse's ``etl_settings`` (what the views read, and the checks' records)."""
    for key, value in values.items():
        con.execute("delete from etl_settings where key = ?", [key])
        con.execute("insert into etl_settings values (?, ?)", [key, value])
