"""Issue 17, items 8-17: hostile files, slow servers, permissions, one-line failures, the CLI's
rough edges. Each test reproduces the fault (an injected ``OSError``, a read-only directory, a
raw socket server that dribbles bytes) and checks what the operator now gets."""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime

import pytest

from xport_etl.errors import MalformedBodyError, RetriableError
from xport_etl.extract.client import RetryPolicy, XportClient
from xport_etl.extract.endpoints import ENDPOINTS
from xport_etl.extract.ratelimit import RateLimiter
from xport_etl.extract.responses import classify
from xport_etl.settings import Settings

ORDERS = ENDPOINTS["taobao_orders"]
BODY = json.dumps({"code": 200, "msg": "ok", "requestId": "r", "data": {"total": 0, "records": []}}).encode()


class DribblingServer:
    """A loopback HTTP server that sends its answer ``chunk`` bytes every ``every`` seconds:
    the headers too when ``headers`` is set, else only the body."""

    def __init__(self, *, every: float = 0.3, chunk: int = 8, headers: bool = False):
        self.every, self.chunk, self.headers = every, chunk, headers
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    _read_request(conn)
                    head = (
                        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        f"Content-Length: {len(BODY)}\r\n\r\n"
                    ).encode()
                    slow = head + BODY if self.headers else BODY
                    if not self.headers:
                        conn.sendall(head)
                    for i in range(0, len(slow), self.chunk):
                        if self._stop.wait(self.every):
                            return
                        conn.sendall(slow[i : i + self.chunk])
                except OSError:
                    continue  # the client hung up: what it should do

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length:
        body += conn.recv(65536)


# ---- 9: XPORT_TIMEOUT bounds the whole request


@pytest.mark.parametrize("headers", [False, True], ids=["dribbled body", "dribbled headers"])
def test_timeout_bounds_the_whole_request_not_each_read(tmp_path, headers):
    with DribblingServer(headers=headers) as server:
        settings = Settings(base_url=server.url, data_dir=tmp_path, timeout=1.0, rate_limit=0)
        # the answer would take len(BODY)/8 * 0.3 s (about 4-6 s); each read alone is quick
        with XportClient(settings, limiter=RateLimiter(None), retry=RetryPolicy(max_tries=1)) as client:
            started = time.monotonic()
            with pytest.raises(RetriableError) as info:
                client.request(ORDERS, body={"pageNo": 1})
            elapsed = time.monotonic() - started
    assert elapsed < 1.8, elapsed
    assert "XPORT_TIMEOUT=1 s" in str(info.value)


def test_a_deadline_does_not_outlive_its_request(tmp_path):
    with DribblingServer(every=0.01, chunk=64) as server:
        settings = Settings(base_url=server.url, data_dir=tmp_path, timeout=0.5, rate_limit=0)
        with XportClient(settings, limiter=RateLimiter(None), retry=RetryPolicy(max_tries=1)) as client:
            assert client.request(ORDERS, body={"pageNo": 1}).outline == {"total": 0, "records": []}
            time.sleep(0.6)  # longer than the timeout: the next request has its own deadline
            assert client.request(ORDERS, body={"pageNo": 1}).status_code == 200


# ---- 12: a body nested 5,000 deep is a bad response, not a crash


def test_a_body_nested_too_deep_is_a_malformed_body_not_a_recursion_error():
    import httpx

    deep = b'{"code": 200, "data": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    req = httpx.Request("POST", "http://x/api")
    outcome = classify(httpx.Response(200, content=deep, request=req), "taobao_orders")
    assert isinstance(outcome, MalformedBodyError) and "nested too deep" in str(outcome)


# ---- 17: retry warnings do not say "gave up" while retrying


def test_retry_warnings_say_what_happens_next(tmp_path, caplog):
    import httpx

    answers = iter([httpx.Response(503, text="busy"), httpx.Response(200, content=BODY)])
    settings = Settings(data_dir=tmp_path, rate_limit=0)
    client = XportClient(
        settings,
        transport=httpx.MockTransport(lambda r: next(answers)),
        limiter=RateLimiter(None),
        sleep=lambda s: None,
    )
    with caplog.at_level(logging.WARNING, logger="xport_etl.extract.client"):
        client.request(ORDERS, body={"pageNo": 1})
    (line,) = [r.getMessage() for r in caplog.records]
    assert "gave up" not in line and "attempt 1 of 6 failed" in line and "trying again in" in line


# ---- 8: a landed manifest cannot make `load` write or delete outside the data directory


def _hostile_window(data_dir, wid: str):
    """A copy of a real landed window whose manifest claims ``wid`` (as a shared raw bucket
    could hold)."""
    import shutil

    from tests.factories.landed import land
    from tests.factories.served import order, page

    m = land(data_dir, [page([order(id="1")])])
    hostile = m.directory.parent / "w_hostile"
    shutil.copytree(m.directory, hostile)
    shutil.rmtree(m.directory)
    doc = json.loads((hostile / "manifest.json").read_text())
    doc["window_id"] = wid
    (hostile / "manifest.json").write_text(json.dumps(doc))
    return hostile


def test_a_manifest_with_a_path_for_window_id_is_refused_by_load(tmp_path, capsys):
    from xport_etl.cli import main

    data_dir = tmp_path / "data"
    hostile = _hostile_window(data_dir, "x/../../../../outside")
    bait = tmp_path / "outside.json"
    code = main(["load", "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 5, err
    assert "window_id 'x/../../../../outside' is not a plain name" in err
    assert err.count("\n") == 2 and err.startswith("error: ") and "hint: " in err
    assert not bait.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert not (data_dir / "parquet").exists() and (hostile / "pages.jsonl.gz").exists()


def test_staging_refuses_a_hostile_window_id_even_without_reading_a_manifest(tmp_path):
    from xport_etl.extract.landing import Manifest, ManifestError
    from xport_etl.load.staging import stage_window

    m = Manifest(
        endpoint="taobao_orders",
        mode="create",
        window_id="../../../../evil",
        window_start="",
        window_end="",
        run_id="r",
        extracted_at="2026-01-01T00:00:00+00:00",
    )
    with pytest.raises(ManifestError):
        stage_window(tmp_path / "data", m)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"endpoint": "../orders"}, "endpoint '../orders'"),
        ({"window_id": "create_20260201T000000Z_20260202T000000Z"}, "not the directory it is in"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_manifests_are_checked_when_read(tmp_path, change, needle):
    from xport_etl.extract.landing import ManifestError, read_manifest

    hostile = _hostile_window(tmp_path, "w_hostile")
    doc = {**json.loads((hostile / "manifest.json").read_text()), **change}
    (hostile / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match="refusing") as info:
        read_manifest(hostile)
    assert needle in str(info.value)


def test_contained_follows_symlinks(tmp_path):
    from xport_etl.extract.storage import PathOutsideError, contained

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "link").symlink_to(tmp_path)
    assert contained(tmp_path / "data", tmp_path / "data" / "a" / "b") == tmp_path / "data" / "a" / "b"
    with pytest.raises(PathOutsideError):
        contained(tmp_path / "data", tmp_path / "data" / "link" / "x")


# ---- 10: a new reader sees the newest published state, even while an old reader is open


def test_a_new_reader_sees_a_newer_publish_while_an_old_reader_is_open(tmp_path):
    from tests.factories.landed import land
    from tests.factories.served import order, page
    from xport_etl.load.connect import connect_reader
    from xport_etl.load.publish import publish
    from xport_etl.load.staging import stage_window

    publish(tmp_path, [stage_window(tmp_path, land(tmp_path, [page([order(id="1")])]))])
    old = connect_reader(tmp_path)  # a BI pool's connection, kept open
    try:
        assert old.execute("select count(*) from fct_orders").fetchall() == [(1,)]
        later = land(tmp_path, [page([order(id="2")])], start=datetime(2026, 3, 1, tzinfo=UTC))
        publish(tmp_path, [stage_window(tmp_path, later)])
        new = connect_reader(tmp_path)
        try:
            assert new.execute("select count(*) from fct_orders").fetchall() == [(2,)]
            assert new.execute("select count(*) from rpt_spend_monthly").fetchall()[0][0] >= 1  # views too
        finally:
            new.close()
        assert old.execute("select count(*) from fct_orders").fetchall() == [(1,)]  # its own snapshot
    finally:
        old.close()


def test_a_corrupt_warehouse_is_one_line_not_a_traceback(tmp_path, capsys):
    from xport_etl.cli import main

    (tmp_path / "warehouse.duckdb").write_bytes(b"not a database " * 1000)
    code = main(["report", "spend", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 7, err
    assert err.startswith("error: cannot open the warehouse") and "Traceback" not in err
    assert "xport-etl load" in err.splitlines()[-1]


# ---- 11: personal data is written for the pipeline's user only


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_landed_windows_are_private_whatever_the_umask(tmp_path):
    from tests.factories.landed import land
    from tests.factories.served import order, page

    old = os.umask(0o022)  # a typical login shell's
    try:
        m = land(tmp_path, [page([order(id="1")])])
    finally:
        os.umask(old)
    assert {p.name: _mode(p) for p in m.directory.iterdir()} == {"pages.jsonl.gz": 0o600, "manifest.json": 0o600}
    assert _mode(m.directory) == 0o700


def test_what_the_cli_creates_is_private(tmp_path, capsys):
    from tests.factories.landed import land
    from tests.factories.served import order, page
    from xport_etl.cli import main

    data_dir = tmp_path / "data"
    land(data_dir, [page([order(id="1")])])
    old = os.umask(0o022)
    try:
        assert main(["load", "--quiet", "--data-dir", str(data_dir)]) == 0, capsys.readouterr().err
        assert os.umask(0o022) == 0o022  # the CLI gives the caller's umask back
    finally:
        os.umask(old)
    files = {p.relative_to(data_dir).as_posix(): _mode(p) for p in data_dir.rglob("*") if p.is_file()}
    dirs = {p.relative_to(data_dir).as_posix(): _mode(p) for p in data_dir.rglob("*") if p.is_dir()}
    assert {"warehouse.duckdb", "state/runs.jsonl"} <= set(files)
    assert any(name.startswith("parquet/orders/") for name in files)
    assert {name: mode for name, mode in files.items() if mode != 0o600} == {}
    assert {name: mode for name, mode in dirs.items() if mode != 0o700} == {}


def test_a_group_for_readers_is_a_documented_choice(tmp_path, capsys, monkeypatch):
    from tests.factories.landed import land
    from tests.factories.served import order, page
    from xport_etl.cli import main

    data_dir = tmp_path / "data"
    m = land(data_dir, [page([order(id="1")])])
    monkeypatch.setenv("XPORT_UMASK", "027")
    assert main(["load", "--quiet", "--data-dir", str(data_dir)]) == 0, capsys.readouterr().err
    assert _mode(data_dir / "warehouse.duckdb") == 0o640 and _mode(data_dir / "state") == 0o750
    assert _mode(m.directory / "pages.jsonl.gz") == 0o600  # raw pages stay the pipeline's own
    monkeypatch.setenv("XPORT_UMASK", "022")
    assert main(["status", "--data-dir", str(data_dir)]) == 2
    assert "every user of the machine" in capsys.readouterr().err


# ---- 12: one line and an exit code, never a traceback


def _one_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 2, err
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), err


@pytest.mark.parametrize(
    "var,value,needle",
    [
        ("XPORT_WORKERS", "abc", "XPORT_WORKERS must be a positive integer"),
        ("XPORT_EXTRACT_WORKERS", "0", "XPORT_EXTRACT_WORKERS must be a positive integer"),
        ("XPORT_STAGE_MEMORY", "lots", "XPORT_STAGE_MEMORY must be a size"),
        ("XPORT_LOAD_MEMORY", "-5", "XPORT_LOAD_MEMORY must be a size"),
        ("XPORT_LOAD_MEMORY", "10KB", "at least 16MB"),
    ],
)
def test_bad_knobs_fail_at_start(tmp_path, capsys, monkeypatch, var, value, needle):
    from xport_etl.cli import main

    monkeypatch.setenv(var, value)
    assert main(["load", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    _one_line(err)
    assert needle in err


def test_a_data_directory_that_is_a_file(tmp_path, capsys):
    from xport_etl.cli import main

    (tmp_path / "data").write_text("oops")
    assert main(["run", "--start", "2026-01-01", "--end", "2026-01-02", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    _one_line(err)
    assert "is a file" in err


def _read_only(monkeypatch, path):
    """``path`` made read-only; as root (who writes anyway) the refusal is injected where the
    data directory is first written."""
    path.chmod(0o555)
    if os.geteuid() == 0:
        real = os.open

        def refuse(file, flags, *args, **kwargs):
            if str(file).startswith(str(path)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real(file, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)


def test_a_read_only_data_directory(tmp_path, capsys, monkeypatch):
    from tests.factories.landed import land
    from tests.factories.served import order, page
    from xport_etl.cli import main

    data_dir = tmp_path / "data"
    land(data_dir, [page([order(id="1")])])
    _read_only(monkeypatch, data_dir)
    try:
        code = main(["load", "--quiet", "--data-dir", str(data_dir)])
    finally:
        data_dir.chmod(0o755)
    err = capsys.readouterr().err
    assert code == 7, err
    _one_line(err)
    assert "Permission denied" in err and str(data_dir) in err and "writable" in err


@pytest.mark.parametrize("fault", ["OSError", "duckdb"])
def test_disk_full_while_publishing(tmp_path, capsys, monkeypatch, fault):
    import duckdb

    from tests.factories.landed import land
    from tests.factories.served import order, page
    from xport_etl.cli import main
    from xport_etl.load import published as load

    land(tmp_path, [page([order(id="1")])])
    assert main(["load", "--quiet", "--data-dir", str(tmp_path)]) == 0
    before = (tmp_path / "warehouse.duckdb").read_bytes()
    land(tmp_path, [page([order(id="2")])], start=datetime(2026, 3, 1, tzinfo=UTC))

    def full(name):
        if name == "publish.replace":
            if fault == "duckdb":
                raise duckdb.IOException("IO Error: Could not write file: No space left on device")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "warehouse.duckdb.next"))

    monkeypatch.setattr(load, "crashpoint", full)
    code = main(["load", "--quiet", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 7, err
    _one_line(err)
    assert "space" in err and "unchanged" in err
    assert (tmp_path / "warehouse.duckdb").read_bytes() == before
    assert not (tmp_path / "warehouse.duckdb.next").exists()


def test_dashboard_into_a_read_only_folder(tmp_path, capsys, monkeypatch):
    from xport_etl.cli import main
    from xport_etl.report import dashboard

    target = tmp_path / "site"
    target.mkdir()

    def refuse(data_dir, out, **kwargs):  # the write, refused as a read-only folder refuses it
        raise PermissionError(errno.EACCES, "Permission denied", str(out.with_name(out.name + ".tmp")))

    monkeypatch.setattr(dashboard, "build_dashboard", refuse)
    code = main(["dashboard", "--out", str(target / "report.html"), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 7, err
    _one_line(err)
    assert str(target) in err


# ---- 13: an empty or reversed window is refused


@pytest.mark.parametrize("start,end", [("2026-06-05", "2026-06-01"), ("2026-06-01", "2026-06-01")])
@pytest.mark.parametrize("command", ["run", "backfill", "extract"])
def test_an_empty_window_is_refused(tmp_path, capsys, command, start, end):
    from xport_etl.cli import main

    code = main([command, "--start", start, "--end", end, "--data-dir", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    _one_line(err)
    assert f"--end {end} is not after --start {start}" in err
    assert list(tmp_path.iterdir()) == []


# ---- 14: status is one JSON document, or one CSV section


@pytest.fixture
def loaded(tmp_path, capsys):
    from tests.factories.landed import land
    from tests.factories.served import order, page
    from xport_etl.cli import main

    land(tmp_path, [page([order(id="1")])])
    assert main(["load", "--quiet", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    return tmp_path


def test_status_json_is_one_document(loaded, capsys):
    from xport_etl.cli import main

    assert main(["status", "--format", "json", "--data-dir", str(loaded)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"data_dir", "runs", "freshness", "checks"}
    assert doc["runs"][0]["endpoints"] == "taobao_orders" and doc["freshness"][0]["table"] == "fct_orders"
    assert set(doc["checks"]) == {"publish_id", "violations"}
    assert main(["status", "--format", "json", "--section", "freshness", "--data-dir", str(loaded)]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"data_dir", "freshness"}


def test_status_csv_is_one_section(loaded, capsys):
    import csv
    import io

    from xport_etl.cli import main

    assert main(["status", "--format", "csv", "--data-dir", str(loaded)]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["endpoints"] for r in rows] == ["taobao_orders"] and not out.endswith("\n\n")
    assert main(["status", "--format", "csv", "--section", "freshness", "--data-dir", str(loaded)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["table"] for r in rows} >= {"fct_orders", "fct_order_lines"}


# ---- 15: the sandbox says where it listens


def test_sandbox_prints_its_address(capsys, monkeypatch):
    import uvicorn

    from xport_sandbox.cli import main

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw))
    assert main(["serve", "--port", "8799", "--orders", "20"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("xport-sandbox at http://127.0.0.1:8799 ") and served[0]["port"] == 8799


# ---- 16: --out: a .html/.md path is a file, anything without a suffix a directory


def test_docs_out_names_a_file_or_a_directory(tmp_path, capsys):
    from xport_etl.cli import main

    assert main(["docs", "--out", str(tmp_path / "dict.html")]) == 0
    assert (tmp_path / "dict.html").is_file() and "<html" in (tmp_path / "dict.html").read_text()
    assert main(["docs", "--out", str(tmp_path / "d.md")]) == 0 and (tmp_path / "d.md").is_file()
    assert main(["docs", "--out", str(tmp_path / "folder"), "--format", "md"]) == 0
    assert [p.name for p in (tmp_path / "folder").iterdir()] == ["DATA_DICTIONARY.md"]
    capsys.readouterr()
    for bad in (["--out", str(tmp_path / "x.md"), "--format", "html"], ["--out", str(tmp_path / "x.pdf")]):
        assert main(["docs", *bad]) == 2
        _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.md", "dict.html", "folder"]


def test_dashboard_out_names_a_file_or_a_directory(tmp_path):
    from xport_etl.errors import ConfigError
    from xport_etl.report.dashboard import dashboard_file

    assert dashboard_file(tmp_path / "report.html") == tmp_path / "report.html"
    assert dashboard_file(tmp_path / "site") == tmp_path / "site" / "dashboard.html"
    (tmp_path / "v1.2").mkdir()
    assert dashboard_file(tmp_path / "v1.2") == tmp_path / "v1.2" / "dashboard.html"
    with pytest.raises(ConfigError, match="HTML"):
        dashboard_file(tmp_path / "report.pdf")


# ---- 17: progress, summary, tables


def test_window_labels_are_the_dates_typed():
    from xport_etl.cli import window_label

    assert window_label("taobao_orders", "create_20260531T160000Z_20260607T160000Z", "Asia/Shanghai") == (
        "taobao_orders 2026-06-01 → 2026-06-08"
    )
    assert window_label("taobao_orders", "update_20260601T010000Z_20260601T020000Z", "UTC") == (
        "taobao_orders updated 2026-06-01 01:00 → 2026-06-01 02:00"
    )
    assert window_label("taobao_logistics", "keys_20260601T010203123456Z_0002") == "taobao_logistics details, batch 3"


def test_piped_progress_says_one_line_per_window_and_step():
    import io

    from xport_etl.cli import _PageProgress

    stream = io.StringIO()
    wid = "create_20260531T160000Z_20260607T160000Z"
    with _PageProgress(report_tz="Asia/Shanghai", stream=stream, interactive=False) as progress:
        for n in range(1, 155):
            progress(
                {
                    "event": "page",
                    "endpoint": "taobao_orders",
                    "window": wid,
                    "page": n,
                    "pages": 154,
                    "records": n * 100,
                }
            )
        progress({"event": "staged", "endpoint": "taobao_orders", "window": wid})
        progress(
            {
                "event": "page",
                "endpoint": "alibaba_logistics",
                "window": "keys_20260601T000000000001Z_0000",
                "page": 50,
                "pages": 80,
                "records": 50,
            }
        )
        progress({"event": "publish", "phase": "start", "batches": 2})
        progress({"event": "publish", "phase": "done", "batches": 2, "rows_written": {"fct_orders": 5}, "seconds": 1.5})
    lines = [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == [
        "landed taobao_orders 2026-06-01 → 2026-06-08: 154 pages, 15,400 records",
        "staged taobao_orders 2026-06-01 → 2026-06-08",
        "publishing 2 windows",
        "published 2 windows in 1.5 s: 5 rows written",
        "landed alibaba_logistics details, batch 1: 50 pages, 50 records",  # said when the command ends well
    ]


def test_bars_finish_when_the_command_ends_well():
    import io

    from xport_etl.cli import _PageProgress

    progress = _PageProgress(stream=io.StringIO(), interactive=True)
    with progress:
        progress(
            {"event": "page", "endpoint": "taobao_orders", "window": "w1", "page": 150, "pages": 154, "records": 15000}
        )
        progress(
            {
                "event": "page",
                "endpoint": "alibaba_logistics",
                "window": "keys_20260601T000000Z_0000",
                "page": 50,
                "pages": 80,
                "records": 50,
            }
        )
    assert [(t.completed, t.total) for t in progress.progress.tasks] == [(154, 154), (80, 80)]


def test_the_summary_is_readable_lines():
    from xport_etl.cli import format_result

    text = format_result(
        {
            "warehouse": "data/warehouse.duckdb",
            "batches": 3,
            "records": 1234,
            "rejects": 2,
            "rows_written": {"fct_orders": 1234, "fct_order_lines": 2345},
        }
    )
    assert text.splitlines() == [
        "published data/warehouse.duckdb: 1,234 records in 3 windows",
        "  fct_order_lines          2,345 rows",
        "  fct_orders               1,234 rows",
        "  rejected records             2",
    ]
    assert "{" not in text
    assert format_result({"warehouse": None, "rows_written": {}}) == "nothing was published: no window was landed"


def test_tables_fit_the_terminal_or_become_blocks_never_cut(monkeypatch):
    # (tests/test_cli_terminal.py holds every command at every width; this is the rule in brief)
    from decimal import Decimal

    from xport_etl.report.reports import format_rows

    rows = [("a" * 80, 1.5, Decimal("10.00"), None), ("b", 22.25, Decimal("1.00"), 3)]
    text = format_rows("t", ["text", "hours", "amount", "n"], rows, width=60)
    assert "a" * 80 in text.splitlines() and "hours   22.25" in text and "--format csv" in text
    text = format_rows("t", ["text", "hours", "amount", "n"], rows[1:], width=60)
    line = next(line for line in text.splitlines() if "22.25" in line)
    cells = [c for c in line.split("│") if c.strip()]
    assert cells[1].endswith("22.25 ") and cells[2].endswith("1.00 ") and cells[3].endswith("3 ")
    monkeypatch.setenv("COLUMNS", "70")
    assert "x" * 200 in format_rows("t", ["text"], [("x" * 200,)]).splitlines()
    monkeypatch.delenv("COLUMNS")
    assert "│ " + "x" * 200 + " │" in format_rows("t", ["text"], [("x" * 200,)])  # piped: as wide as needed


def test_csv_has_no_blank_record_at_the_end():
    from xport_etl.report.reports import format_rows

    assert format_rows("t", ["a", "b"], [(1, "x")], "csv") == "a,b\n1,x"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"\\u00b2": {"order_id": "1"}}', "'²' is not a page number"),
        ('{"1_0": {}}', "'1_0' is not a page number"),
        ('{"' + "9" * 5000 + '": {}}', "is not a page number"),
        ("[1, 2]", "not a JSON object"),
        ("{", "not JSON"),
    ],
)
def test_page_contexts_are_checked_when_read(tmp_path, text, needle):
    # a window's context.json (what each fan-out page was asked for) may come from shared storage
    from xport_etl.extract.landing import CONTEXT_FILE, ManifestError, read_pages

    hostile = _hostile_window(tmp_path, "w_hostile")
    (hostile / CONTEXT_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError, match="refusing the page contexts") as info:
        list(read_pages(hostile))
    assert needle in str(info.value) and "\n" not in str(info.value)
