"""The access secret never leaves memory: not into the data directory (raw pages, manifests,
Parquet, the warehouse, the run ledger), not into logs at DEBUG, not into exception messages,
and not into ``repr``/``str`` of the settings or the client.

A real sandbox (over HTTP) is run with a recognisable secret; the pipeline runs once
successfully and then fails in three ways (wrong user id, wrong secret, unreachable URL) so that
error paths are exercised too. Then every byte written is searched for the secret string, in the
files as stored and in their decoded contents (gzip pages, Parquet values and metadata, every
warehouse table cast to text), since compression could hide a leak from a plain byte search.
(The Airflow hook's masking of the Connection password is tested in ``tests/test_dags.py``.)
"""

from __future__ import annotations

import gzip
import logging
import traceback
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow.parquet as pq
import pytest

from xport_etl.extract.client import XportClient
from xport_etl.layout import DataLayout
from xport_etl.run import engine as engine_run
from xport_etl.run import paging as paging_run
from xport_etl.settings import Settings

SECRET = "SECRET-canary-7f3a9c"
CST = ZoneInfo("Asia/Shanghai")
START, END = datetime(2026, 1, 1, tzinfo=CST), datetime(2026, 7, 1, tzinfo=CST)


# the served world of the `sandbox` fixture (tests/conftest.py)
SANDBOX = {"seed": 5, "orders": 200, "access_secret": SECRET}


@pytest.fixture
def debug_log(tmp_path):
    """Every log record of every logger, at DEBUG, into a file."""
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s %(args)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def _texts_of(path: Path) -> list[bytes]:
    """The file's bytes, plus its decoded contents where compression could hide a string."""
    raw = path.read_bytes()
    out = [raw]
    if path.name.endswith(".gz"):
        out.append(gzip.decompress(raw))
    elif path.suffix == ".parquet":
        pf = pq.ParquetFile(path)
        out.append(repr(pf.metadata.metadata).encode())
        out.append(pf.schema_arrow.to_string(show_schema_metadata=True).encode())
        out.append(pf.read().to_pylist().__repr__().encode("utf-8", "backslashreplace"))
    return out


def _warehouse_text(data_dir: Path) -> str:
    """Every value of every table and view of the published warehouse, as text."""
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        parts = []
        for name, sql in con.execute("select table_name, sql from duckdb_tables()").fetchall():
            parts.append(sql or "")
            parts.append(repr(con.execute(f'select * from "{name}"').fetchall()))
        for (sql,) in con.execute("select sql from duckdb_views() where not internal").fetchall():
            parts.append(sql or "")
        parts.append(repr(con.execute("select * from duckdb_settings()").fetchall()))
        return "\n".join(parts)
    finally:
        con.close()


def _hits(data_dir: Path, log: Path, messages: list[str]) -> list[str]:
    needle = SECRET.encode()
    hits = []
    files = [p for p in Path(data_dir).rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.name.endswith(".gz") for p in files)
    assert any(p.name == "runs.jsonl" for p in files) and DataLayout.of(data_dir).warehouse in files
    for path in [*files, log]:
        if any(needle in blob for blob in _texts_of(path)):
            hits.append(str(path))
    if SECRET in _warehouse_text(data_dir):
        hits.append("warehouse contents")
    hits += [f"exception: {m[:80]}" for m in messages if SECRET in m]
    return hits


def _fails(settings: Settings, monkeypatch) -> str:
    """Run the pipeline expecting failure; the exception's message, repr and traceback."""
    with pytest.raises(Exception) as info:
        engine_run.run_window(settings, START, END, endpoints=["taobao_orders"])
    exc = info.value
    chain = []
    while exc is not None:
        chain += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(chain)


@pytest.mark.slow  # the pipeline end to end against the sandbox
def test_the_secret_is_nowhere_on_disk_in_logs_or_errors(sandbox, tmp_path, debug_log, monkeypatch):
    data_dir = tmp_path / "data"
    settings = Settings(base_url=sandbox.base_url, data_dir=data_dir, rate_limit=0, access_secret=SECRET)

    result = engine_run.run_window(settings, START, END)
    assert result["rows_written"].get("fct_orders", 0) > 0  # the secret did sign real requests
    logging.getLogger("xport_etl").debug("settings in a log line: %s %r", settings, settings)

    messages = [
        _fails(
            Settings(
                base_url=sandbox.base_url, data_dir=data_dir, rate_limit=0, access_secret=SECRET, user_id="999999"
            ),
            monkeypatch,
        )
    ]
    messages.append(
        _fails(
            Settings(base_url=sandbox.base_url, data_dir=data_dir, rate_limit=0, access_secret=SECRET + "-wrong"),
            monkeypatch,
        )
    )
    # an unreachable API: retried, then given up (no waiting between tries here)
    monkeypatch.setattr(paging_run, "_make_client", lambda s: XportClient(s, sleep=lambda _s: None))
    messages.append(
        _fails(
            Settings(base_url="http://127.0.0.1:9", data_dir=data_dir, rate_limit=0, access_secret=SECRET), monkeypatch
        )
    )
    ledger = (data_dir / "state" / "runs.jsonl").read_text()
    assert ledger.count('"failed"') >= 3  # the failed runs are on record (with their errors)

    assert _hits(data_dir, debug_log, messages) == []
    assert debug_log.stat().st_size > 0


def test_settings_and_client_never_show_the_secret(tmp_path):
    settings = Settings(base_url="http://127.0.0.1:8765", data_dir=tmp_path, access_secret=SECRET)
    client = XportClient(settings)
    try:
        shown = [
            repr(settings),
            str(settings),
            repr(settings.redacted()),
            str(settings.redacted()),
            repr(client),
            str(client),
            f"{settings}",
            f"{settings!r}",
        ]
    finally:
        client.close()
    assert not [s for s in shown if SECRET in s]
    assert settings.access_secret == SECRET


def test_check_never_shows_the_secret(sandbox, tmp_path, debug_log, capsys, monkeypatch):
    from xport_etl.cli import main
    from xport_etl.extract.auth import now_ms
    from xport_etl.extract.diagnose import check_connection

    base = dict(base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0)
    shown = []
    for settings, clock in [
        (Settings(**base, access_secret=SECRET), None),  # all good
        (Settings(**base, access_secret=SECRET, sign_recipe="concat"), None),  # the other recipe
        (Settings(**base, access_secret=SECRET + "-wrong"), None),  # every recipe refused
        (Settings(**base, access_secret=SECRET, user_id="999999"), None),
        (Settings(**base, access_secret=SECRET), lambda: now_ms() + 900_000),  # a skewed clock
        (Settings(**{**base, "base_url": "http://127.0.0.1:9"}, access_secret=SECRET), None),
    ]:
        report = check_connection(settings, **({"clock": clock} if clock else {}))
        shown += [report.format_text(), repr(report), str(report.as_dict()), report.summary()]
    monkeypatch.setenv("XPORT_ACCESS_SECRET", SECRET)
    monkeypatch.setenv("XPORT_DATA_DIR", str(tmp_path))
    for argv in (
        ["check", "--base-url", sandbox.base_url, "-v"],
        ["check", "--base-url", sandbox.base_url, "--sign-recipe", "concat", "--format", "json"],
    ):
        main(argv)
        out, err = capsys.readouterr()
        shown += [out, err]
    assert [s[:80] for s in shown if SECRET in s] == []
    assert SECRET not in debug_log.read_text(encoding="utf-8")
