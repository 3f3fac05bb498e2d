"""Assertions and plumbing shared by test modules (import them from here, never from another test
module; the builders of test data are in ``tests/factories/``)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb

from xport_etl.layout import DataLayout
from xport_etl.normalize.pages import to_table
from xport_etl.normalize.registry import NORMALIZERS
from xport_etl.schemas import (
    ETL_REJECTS,
    FCT_ORDER_LINES,
    FCT_ORDERS,
    FCT_PARCEL_EVENTS,
    FCT_PARCELS,
    FCT_REFUNDS,
    STAGED_TABLES,
)
from xport_etl.store import LocalStore
from xport_sandbox.truth import truth_tables

# the five fact tables the sandbox's ground truth holds
TABLES = (FCT_ORDERS, FCT_ORDER_LINES, FCT_REFUNDS, FCT_PARCELS, FCT_PARCEL_EVENTS)


def assert_warehouse_equals_truth(data_dir: Path, world, tables=TABLES) -> dict[str, int]:
    """Every public column of every fact table (of ``tables``) in ``data_dir``'s published warehouse
    equals the sandbox's ground truth of ``world``, both ways, row for row; returns the row counts."""
    truth = truth_tables(world)
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    counts = {}
    try:
        for spec in tables:
            assert spec.name in truth, f"the sandbox truth has no {spec.name}"
            cols = ", ".join(spec.public_columns)
            con.register(f"truth_{spec.name}", truth[spec.name])
            missing = con.sql(
                f"select {cols} from truth_{spec.name} except all select {cols} from {spec.name}"
            ).fetchall()
            extra = con.sql(
                f"select {cols} from {spec.name} except all select {cols} from truth_{spec.name}"
            ).fetchall()
            assert not missing and not extra, (
                f"{spec.name}: {len(missing)} truth rows missing or different,"
                f" {len(extra)} unexpected rows; e.g. missing {missing[:2]},"
                f" unexpected {extra[:2]}"
            )
            counts[spec.name] = con.execute(f"select count(*) from {spec.name}").fetchall()[0][0]
            assert counts[spec.name] == truth[spec.name].num_rows
    finally:
        con.close()
    return counts


def assert_no_duplicates(data_dir: Path, tables=TABLES) -> None:
    """No key of a fact table (of ``tables``) appears twice in ``data_dir``'s published warehouse."""
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        for spec in tables:
            keys = ", ".join(spec.key)
            dupes = con.execute(
                f"select count(*) from (select {keys} from {spec.name} group by all having count(*) > 1)"
            ).fetchall()[0][0]
            assert dupes == 0, spec.name
    finally:
        con.close()


def free_port() -> int:
    """A loopback TCP port nothing listens on (at the moment of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server (server mode, real HTTP) on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """A throwaway ``redis-server`` on loopback: no persistence, files under ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        tmp.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(tmp),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.proc.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ---- the normalisers (tests/normalize/)

NOW = datetime(2026, 7, 1)  # the normalisers' clock (``rejected_at``) in these tests


def run_normalizer(endpoint: str, pages, rejected_at: datetime = NOW):
    """Run ``endpoint``'s normaliser (the registry's) over ``[(body, context), ...]``, numbered
    from 1, as window ``w1``."""
    numbered = [(n, body, ctx) for n, (body, ctx) in enumerate(pages, start=1)]
    return NORMALIZERS[endpoint](numbered, endpoint=endpoint, window_id="w1", rejected_at=rejected_at)


def assert_fits_schemas(out, *, every_column: bool = True) -> None:
    """A normaliser's output fits what staging writes: every row has its staged table's columns
    (all of them, minus the two the stager adds; with ``every_column=False`` some may be left for
    ``to_table`` to fill with null, as the Taobao order normalisers leave ``refund_id``) in the
    declared Arrow types, and so do the rejects."""
    for table, rows in out.tables.items():
        expected = set(STAGED_TABLES[table].spec.staged_columns) - {"extracted_at", "data_clock"}
        for row in rows:
            assert set(row) == expected if every_column else set(row) <= expected, (table, set(row) ^ expected)
        to_table(rows, STAGED_TABLES[table].spec.arrow_schema())
    to_table(out.rejects, ETL_REJECTS.arrow_schema())


class Counted(LocalStore):
    """A local store that counts the requests an S3 store makes for each call (a listing is one,
    ``get_many`` one per key, a delete one batch); ``log`` holds each request and its path."""

    def __init__(self, root, requests: Counter | None = None, log: list | None = None) -> None:
        super().__init__(root)
        self.requests = Counter() if requests is None else requests
        self.log = [] if log is None else log

    def child(self, prefix: str) -> Counted:
        return Counted(self._path(prefix), self.requests, self.log)

    def total(self) -> int:
        return sum(self.requests.values())

    def _count(self, request: str, key: str = "") -> None:
        self.requests[request] += 1
        self.log.append((request, str(self._path(key)) if key else str(self.root)))

    def get(self, key):
        self._count("get", key)
        return super().get(key)

    def put(self, key, data):
        self._count("put", key)
        return super().put(key, data)

    def create(self, key, data):
        self._count("create", key)
        return super().create(key, data)

    def replace(self, key, data, etag):
        self._count("replace", key)
        return super().replace(key, data, etag)

    def sizes(self, prefix="", *, after=None):
        self._count("list", prefix)
        return super().sizes(prefix, after=after)

    def exists(self, key):
        self._count("head", key)
        return super().exists(key)

    def delete(self, keys):
        self._count("delete")
        return super().delete(keys)

    def upload(self, path, key):
        self._count("upload", key)
        return super().upload(path, key)

    def download(self, key, path):
        self._count("download", key)
        return super().download(key, path)
