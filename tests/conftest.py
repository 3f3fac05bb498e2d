"""Fixtures shared by the test modules (the builders they use are in ``tests/factories/``).

Kept light to import: a module's fixtures import what they build when they build it, so that
running one small test file does not pay for the sandbox, DuckDB or Airflow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# every test collected in this session, selected or not (tests/test_suite.py reads their marks)
COLLECTED = pytest.StashKey[list[pytest.Item]]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[COLLECTED] = list(items)


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest):
    """A served world for the module, described by the module's `SANDBOX` dict.

    `SANDBOX = {"seed": 5, "orders": 300}` (plus any `SandboxServer` keyword, e.g.
    `"access_secret"`) is passed to `tests.factories.sandbox.serve`. tests/sandbox/ has its own
    fixture.
    """
    from tests.factories.sandbox import serve

    with serve(**request.module.SANDBOX) as server:
        yield server


@pytest.fixture
def con():
    """An in-memory warehouse: every table (empty), view and macro; fill it with the row builders
    of ``tests/factories/warehouse.py``."""
    from tests.factories.warehouse import memory_warehouse

    c = memory_warehouse()
    yield c
    c.close()


@pytest.fixture(scope="session")
def sandbox_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory of a small sandbox world (``PUBLISHED_WORLD`` of
    ``tests/factories/sandbox.py``) loaded by the pipeline over real HTTP and published; built once
    per session, never changed: a test that changes it copies it first."""
    from tests.factories.sandbox import PUBLISHED_WORLD, publish_world

    data_dir = tmp_path_factory.mktemp("sandbox_warehouse")
    publish_world(data_dir, **PUBLISHED_WORLD)
    return data_dir


@pytest.fixture(scope="session")
def published_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with one landed window of two Taobao orders (created in February and in
    March), loaded and published by ``xport-etl load``; built once per session, never changed:
    a test that changes it takes ``published``."""
    from tests.factories.landed import land
    from tests.factories.served import order, page
    from xport_etl.cli import main

    data_dir = tmp_path_factory.mktemp("published")
    land(data_dir, [page([order(id="1"), order(id="2", createTime="2026-03-05 10:00:00")])])
    assert main(["load", "--quiet", "--data-dir", str(data_dir)]) == 0
    return data_dir


@pytest.fixture
def published(published_once: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    """A copy of ``published_once`` of the test's own (a copy costs far less than a publish)."""
    capsys.readouterr()
    return Path(shutil.copytree(published_once, tmp_path / "published"))


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clients the pipeline builds record their retry waits here instead of sleeping (a test of
    a failure that is retried takes no time; a test of one that must not be can assert none)."""
    from xport_etl.extract.client import XportClient
    from xport_etl.run import paging

    sleeps: list[float] = []
    monkeypatch.setattr(paging, "_make_client", lambda s: XportClient(s, sleep=sleeps.append))
    return sleeps


@pytest.fixture(scope="session")
def duckdb1_readers(tmp_path_factory: pytest.TempPathFactory):
    """Readers on DuckDB 1.x (:class:`tests.factories.readers.DuckDB1Readers`), installed from the
    package index once per test session (a few seconds with pip's cache): a venv without pip of
    its own, filled by this pip (``--python``)."""
    from tests.factories.readers import OLDEST_READER_PIN, READER_PINS, DuckDB1Readers

    root = tmp_path_factory.mktemp("duckdb1")
    venv, oldest = root / "venv", root / "oldest"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    for cmd in (
        [*pip, "--python", str(python), "install", "--quiet", *READER_PINS],
        [*pip, "install", "--quiet", "--no-deps", "--target", str(oldest), OLDEST_READER_PIN],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            pytest.fail(f"$ {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return DuckDB1Readers(python=python, bin=venv / "bin", oldest=oldest)


@pytest.fixture
def collected(request: pytest.FixtureRequest) -> list[pytest.Item]:
    """Every test collected in this session, the deselected ones included (``-m "not slow"``)."""
    return request.config.stash.get(COLLECTED, [])


# ---- an S3-compatible server (moto's server mode over real HTTP on loopback)


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 server on a free loopback port, for the session (each test takes its own bucket)."""
    from tests.helpers import moto_server

    with moto_server() as endpoint:
        yield endpoint


# the AWS variables a test's processes get: moto's server, throwaway keys (a test may grep for the secret)
MOTO_SECRET = "moto-Secret-key/of+the-storage-tests"


@pytest.fixture
def s3_url(moto_endpoint, monkeypatch, request) -> str:
    """A fresh bucket on the moto server, the standard AWS variables pointing at it (this process
    and its children); its ``s3://`` URL with a prefix. Emptied and removed afterwards."""
    import re
    import uuid

    import boto3
    import s3fs

    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAXPORTSTORAGETEST",
        "AWS_SECRET_ACCESS_KEY": MOTO_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    s3fs.S3FileSystem.clear_instance_cache()  # a cached instance would keep an old endpoint
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    try:
        yield f"s3://{bucket}/xport"
    finally:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for page in pages:
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def redis_server(tmp_path):
    """A throwaway ``redis-server`` for the test (:class:`tests.helpers.RedisServer`); skips when the
    binary is missing."""
    from tests.helpers import REDIS_SERVER, RedisServer

    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()
