"""The raw landing layer on an S3-compatible store (moto's server over real HTTP on loopback) and
on the local disk: the same pipeline, the same warehouse, and the local layout unchanged.

The S3 tests run the real path: the sandbox over HTTP → pages landed as objects in a bucket →
staged (also in worker processes that get ``s3://`` window directories as arguments) → DuckDB on
the writer's local disk, compared with the sandbox's ground truth row for row.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import traceback
from datetime import timedelta
from pathlib import Path

import boto3
import duckdb
import pytest

from tests.helpers import assert_warehouse_equals_truth, moto_server
from xport_etl.errors import ConfigError
from xport_etl.extract import storage
from xport_etl.extract.landing import (
    MANIFEST_FILE,
    PAGES_FILE,
    Manifest,
    PageWriter,
    complete_windows,
    open_pages,
    read_manifest,
    read_pages,
    window_dir,
    window_id,
)
from xport_etl.layout import DataLayout
from xport_etl.run import engine as engine_run
from xport_etl.run import lander as lander_run
from xport_etl.run.engine import run_window
from xport_etl.run.paging import extract_window
from xport_etl.run.state import load_windows
from xport_etl.schemas import FCT_ORDERS
from xport_etl.settings import Settings
from xport_etl.streams import graph
from xport_sandbox.truth import truth_tables
from xport_sandbox.world import WorldConfig

BUCKET = "xport-raw"
# recognisable, so that a leak anywhere is found by a plain substring search
AWS_SECRET = "S3cr3t-AWS-key-0f-the-test/never+logged"
AWS_KEY = "AKIAXPORTTESTKEY0001"


@pytest.fixture(scope="module")
def moto_endpoint():
    """An S3-compatible server (moto in server mode) for this module: its tests share one fixed
    bucket name, so they keep a server of their own rather than the session's."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3(moto_endpoint, monkeypatch):
    """The standard AWS variables point at the moto server; a fresh bucket; a boto3 client."""
    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # a cached instance would keep an old endpoint
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        for obj in objects:
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
        client.delete_bucket(Bucket=BUCKET)
        s3fs.S3FileSystem.clear_instance_cache()


def _keys(client, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


# the served world of the `sandbox` fixture (tests/conftest.py)
SANDBOX = {"seed": 23, "orders": 400}


# ---- storage.py: URLs and paths


def test_storage_tells_local_paths_from_urls(tmp_path):
    assert storage.is_local(tmp_path) and storage.is_local(str(tmp_path))
    assert storage.is_local("relative/raw") and storage.is_local(f"file://{tmp_path}")
    assert not storage.is_local("s3://bucket/raw") and not storage.is_local("simplecache::s3://b/raw")
    assert storage.protocol("s3://bucket/raw") == "s3" and storage.protocol("/x") == "file"
    assert storage.local_path(f"file://{tmp_path}/raw") == tmp_path / "raw"
    assert storage.local_path("file://localhost/srv/raw") == Path("/srv/raw")
    assert storage.local_path("~/raw") == Path.home() / "raw"
    assert storage.to_path(f"file://{tmp_path}") == tmp_path
    remote = storage.to_path("s3://bucket/raw") / "taobao_orders" / "w1"
    assert str(remote) == "s3://bucket/raw/taobao_orders/w1"
    assert storage.join("s3://bucket/raw/", "/a/", "b") == "s3://bucket/raw/a/b"
    fs, path = storage.filesystem("s3://bucket/some/prefix")
    assert "s3" in fs.protocol and path == "bucket/some/prefix"
    with pytest.raises(ConfigError, match="nosuchproto"):
        storage.filesystem("nosuchproto://bucket/raw")


def test_storage_urls_never_carry_credentials(tmp_path):
    assert storage.redact("s3://AKIAX:topsecret@bucket/raw?endpoint=x#f") == "s3://bucket/raw"
    assert storage.redact("/srv/raw") == "/srv/raw"
    for url in ("s3://AKIAX:topsecret@bucket/raw", "s3://bucket/raw?secret=topsecret"):
        with pytest.raises(ConfigError) as info:
            Settings(data_dir=tmp_path, raw_url=url)
        assert "topsecret" not in str(info.value) and "AWS_ACCESS_KEY_ID" in str(info.value)
    with pytest.raises(ConfigError, match="no bucket"):
        Settings(data_dir=tmp_path, raw_url="s3://")


def test_settings_read_raw_url_from_the_environment(tmp_path):
    env = {"XPORT_DATA_DIR": str(tmp_path), "XPORT_RAW_URL": " s3://bucket/raw/ "}
    s = Settings.from_env(env)
    assert s.raw_url == "s3://bucket/raw" and s.redacted()["raw_url"] == "s3://bucket/raw"
    assert Settings.from_env({"XPORT_DATA_DIR": str(tmp_path)}).raw_url is None
    assert Settings.from_env({"XPORT_RAW_URL": ""}).raw_url is None
    assert Settings.from_env(env, raw_url="gs://other/raw").raw_url == "gs://other/raw"


# ---- the local default: layout and atomic files unchanged


def _manifest(endpoint: str = "taobao_orders", wid: str = "create_w1") -> Manifest:
    return Manifest(
        endpoint=endpoint,
        mode="create",
        window_id=wid,
        window_start="a",
        window_end="b",
        run_id="r",
        extracted_at="2026-01-01T00:00:00+00:00",
    )


def test_local_default_layout_is_unchanged(sandbox, tmp_path):
    settings = Settings(base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0)
    start = sandbox.world.config.start
    end = start + timedelta(days=20)
    path = extract_window(settings, "taobao_orders", start, end)
    wid = window_id("create", start, end)
    assert path == str(tmp_path / "raw" / "taobao_orders" / wid / MANIFEST_FILE)
    directory = tmp_path / "raw" / "taobao_orders" / wid
    assert sorted(p.name for p in directory.iterdir()) == [MANIFEST_FILE, PAGES_FILE]
    assert not (tmp_path / "spool").exists()
    assert window_dir(tmp_path, "taobao_orders", wid) == directory
    m = read_manifest(path)
    assert m.directory == directory and isinstance(m.directory, Path)
    assert read_manifest(directory).run_id == m.run_id
    with gzip.open(directory / PAGES_FILE, "rb") as f:
        lines = f.read().splitlines()
    assert len(lines) == m.pages > 0
    assert [body for _, body, _ in read_pages(m.directory)] == lines
    with open_pages(m.directory) as f:
        assert f.read().splitlines() == lines
    with open_pages(str(m.directory)) as f:  # a string (a staging worker's argv) works the same
        assert f.readline().rstrip(b"\n") == lines[0]
    assert [w.window_id for w in complete_windows(tmp_path)] == [wid]


def test_local_raw_url_and_file_url(tmp_path):
    for raw_url, root in (
        (str(tmp_path / "shared"), tmp_path / "shared"),
        (f"file://{tmp_path}/nfs", tmp_path / "nfs"),
    ):
        with PageWriter(tmp_path / "data", _manifest(), raw_url=raw_url) as w:
            w.write(b'{"a":\n1}', context={"key": "k1"})
            path = w.commit()
        assert path == root / "taobao_orders" / "create_w1" / MANIFEST_FILE
        assert [(n, b, c) for n, b, c in read_pages(path.parent)] == [(1, b'{"a": 1}', {"key": "k1"})]
        assert [m.directory for m in complete_windows(tmp_path / "data", raw_url=raw_url)] == [path.parent]
    assert not (tmp_path / "data" / "raw").exists()


# ---- S3: the pipeline end to end


@pytest.mark.slow  # the pipeline end to end against the sandbox, raw pages on S3
def test_pages_on_s3_load_equal_truth_from_any_writer(sandbox, s3, tmp_path, monkeypatch):
    raw_url = f"s3://{BUCKET}/raw"
    writer = tmp_path / "writer"
    # workers=2: staging worker processes get s3:// windows as argv
    settings = Settings(base_url=sandbox.base_url, data_dir=writer, rate_limit=0, raw_url=raw_url, workers=2)
    world = sandbox.world
    start, end = world.config.start, world.clock + timedelta(days=30)

    result = run_window(settings, start, end)
    counts = assert_warehouse_equals_truth(writer, world)
    assert counts["fct_orders"] > 100 and min(counts.values()) > 0, counts
    assert result["rows_written"]

    # every window is in the bucket, with its manifest; nothing landed on the writer's disk
    keys = _keys(s3, "raw/")
    manifests = [k for k in keys if k.endswith("/" + MANIFEST_FILE)]
    endpoints = {k.split("/")[1] for k in manifests}
    assert endpoints == set(graph.run_order()), endpoints
    for k in manifests:
        assert k.replace(MANIFEST_FILE, PAGES_FILE) in keys
    assert any(k.endswith("/context.json") for k in keys)  # fan-out windows keep their contexts
    assert not (writer / "raw").exists()
    spooled = [p for p in (writer / "spool").rglob("*") if p.is_file()]
    assert not spooled, "spooled pages are removed once uploaded"
    body = s3.get_object(Bucket=BUCKET, Key=manifests[0])["Body"].read()
    assert json.loads(body)["window_id"] == manifests[0].split("/")[2]

    # the windows as a writer lists them; read back through the same functions staging uses
    landed = complete_windows(writer, raw_url=raw_url)
    assert len(landed) == len(manifests)
    first = landed[0]
    assert str(first.directory).startswith(f"s3://{BUCKET}/raw/")
    assert (first.directory / PAGES_FILE).stat().st_size > 0  # what the worker count is sized by
    pages = list(read_pages(first.directory))
    assert len(pages) == first.pages and all(json.loads(b)["code"] == 200 for _, b, _ in pages)
    with open_pages(str(first.directory)) as f:
        assert f.read().splitlines() == [b for _, b, _ in pages]
    assert read_manifest(str(first.directory)).run_id == first.run_id
    assert read_manifest(f"{first.directory}/{MANIFEST_FILE}").run_id == first.run_id

    # another writer with an empty disk rebuilds the same warehouse from the bucket alone
    other = tmp_path / "other-writer"
    # no workers setting: sized by the landed bytes (UPath.stat on S3)
    load_windows(
        Settings(base_url=sandbox.base_url, data_dir=other, rate_limit=0, raw_url=raw_url),
        [str(m.directory / MANIFEST_FILE) for m in landed],
    )
    assert assert_warehouse_equals_truth(other, world) == counts


@pytest.mark.slow  # extract, load and a resumed run against the sandbox
def test_extract_on_workers_load_on_the_writer_and_resume(sandbox, s3, tmp_path, monkeypatch):
    """Two extract workers with their own disks land to the bucket; the writer loads their
    manifest URLs (what the DAG's XCom carries); a crashed run resumes without re-fetching."""
    raw_url = f"s3://{BUCKET}/raw"
    world = sandbox.world
    start = world.config.start
    mid, end = start + timedelta(days=40), world.clock + timedelta(days=30)
    paths = [
        extract_window(
            Settings(base_url=sandbox.base_url, data_dir=tmp_path / f"worker{i}", rate_limit=0, raw_url=raw_url),
            "taobao_orders",
            lo,
            hi,
        )
        for i, (lo, hi) in enumerate(((start, mid), (mid, end)))
    ]
    assert all(p.startswith(f"s3://{BUCKET}/raw/taobao_orders/") for p in paths)
    assert all(storage.exists(p) for p in paths)
    assert not storage.exists(f"s3://{BUCKET}/raw/taobao_orders/nope/{MANIFEST_FILE}")
    writer = tmp_path / "writer"
    settings = Settings(base_url=sandbox.base_url, data_dir=writer, rate_limit=0, raw_url=raw_url)
    load_windows(settings, paths)
    con = duckdb.connect(str(DataLayout.of(writer).warehouse), read_only=True)
    try:
        n = con.execute("select count(*) from fct_orders where platform = 'taobao'").fetchall()[0][0]
    finally:
        con.close()
    truth = truth_tables(world)[FCT_ORDERS.name]
    assert n == sum(1 for p in truth["platform"].to_pylist() if p == "taobao")

    # a run that dies after landing its lists resumes from the landed s3:// windows
    extracted: list[str] = []
    real_extract, real_merge = lander_run.extract_window, engine_run.merge_windows

    def counting_extract(*args, **kwargs):
        extracted.append(args[1])
        return real_extract(*args, **kwargs)

    def failing_load(*args, **kwargs):
        raise RuntimeError("the writer went away")

    monkeypatch.setattr(lander_run, "extract_window", counting_extract)  # where run's lander calls it
    monkeypatch.setattr(engine_run, "merge_windows", failing_load)
    lists = ("taobao_orders", "alibaba_orders")
    one_run = end - start  # one bounded run of several 31-day windows
    with pytest.raises(RuntimeError, match="went away"):
        run_window(settings, start, end, endpoints=lists, span=one_run)
    assert set(extracted) == set(lists) and len(extracted) > len(lists)  # 31-day chunks
    monkeypatch.setattr(engine_run, "merge_windows", real_merge)
    extracted.clear()
    result = run_window(settings, start, end, endpoints=lists, span=one_run)
    assert result["resumed"] and extracted == [], "landed windows on S3 are checkpoints"


def test_s3_failure_never_shows_the_secret(sandbox, s3, tmp_path, caplog, capsys):
    """A window landed to a bucket that does not exist fails with a plain error; neither it, nor
    any log record (botocore and s3fs at DEBUG), nor any file written names the AWS secret."""
    settings = Settings(
        base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0, raw_url="s3://no-such-bucket-xport/raw"
    )
    start = sandbox.world.config.start
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "aiobotocore", "s3fs", "fsspec", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    with pytest.raises(Exception) as info:  # noqa: B017 (whatever the store says, it must be clean)
        extract_window(settings, "taobao_orders", start, start + timedelta(days=5))
    text = "".join(traceback.format_exception(info.value)) + repr(info.value)
    out = capsys.readouterr()
    logged = caplog.text + out.out + out.err
    assert "no-such-bucket-xport" in text  # the error says which store failed
    assert caplog.records, "DEBUG logging was on"
    assert AWS_SECRET not in text and AWS_SECRET not in logged
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "runs.jsonl" for p in files)  # the failure is on record
    for p in files:
        assert AWS_SECRET.encode() not in p.read_bytes(), p
    assert AWS_SECRET not in repr(settings) and AWS_SECRET not in json.dumps(settings.redacted(), default=str)
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == AWS_SECRET


def test_a_store_that_cannot_take_a_window_fails_before_any_api_request(s3, tmp_path):
    """A missing bucket is found by an empty write-check object before the window's first page
    is asked for (it used to surface at commit, after a whole window of requests)."""
    import httpx

    from xport_etl.extract.client import XportClient

    asked: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(500)

    settings = Settings(data_dir=tmp_path, rate_limit=0, raw_url="s3://no-such-bucket-xport/raw")
    client = XportClient(settings, transport=httpx.MockTransport(api), sleep=lambda s: None)
    start = WorldConfig().start
    with pytest.raises(OSError, match="cannot write to the raw store at s3://no-such-bucket-xport/raw"):
        extract_window(settings, "taobao_orders", start, start + timedelta(days=5), client=client)
    assert asked == []
    assert json.loads((tmp_path / "state" / "runs.jsonl").read_text().splitlines()[-1])["outcome"] == "failed"

    # a store that takes it keeps one empty object at the raw root, which no window listing sees
    storage.check_writable(f"s3://{BUCKET}/raw")
    assert _keys(s3) == [f"raw/{storage.WRITE_CHECK}"]
    assert complete_windows(tmp_path, raw_url=f"s3://{BUCKET}/raw") == []
