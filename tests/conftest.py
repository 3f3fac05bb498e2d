"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import serve


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest):
    """A served world for the module, described by the module's `SANDBOX` dict.

    `SANDBOX = {"seed": 5, "orders": 300}` (plus any `SandboxServer` keyword, e.g.
    `"access_secret"`) is passed to `tests.helpers.serve`. tests/sandbox/ has its own fixture.
    """
    with serve(**request.module.SANDBOX) as server:
        yield server


# ---- readers on DuckDB 1.x (tests/test_duckdb1_readers.py, tests/e2e/test_wheel_install.py)

# what a reader outside this project runs: the newest DuckDB 1.x with its CLI, and a BI tool's
# SQLAlchemy driver with the newest SQLAlchemy whose column reflection works (duckdb_engine#1391)
READER_PINS = ("duckdb==1.5.6", "duckdb-cli==1.5.6", "duckdb-engine==0.17.0", "SQLAlchemy==2.0.44")
# the oldest DuckDB that opens the warehouse (the storage version v1.0.0 it is written in)
OLDEST_READER_PIN = "duckdb==1.0.0"


@dataclass(frozen=True)
class DuckDB1Readers:
    """A virtual environment of :data:`READER_PINS`, and :data:`OLDEST_READER_PIN` installed apart."""

    python: Path  # the venv's interpreter: duckdb 1.5.6, duckdb_engine, SQLAlchemy
    bin: Path  # the venv's scripts: the DuckDB CLI `duckdb`
    oldest: Path  # a folder to put first on PYTHONPATH: duckdb 1.0.0

    def run(self, script: str, *args: str, oldest: bool = False, timeout: float = 120) -> str:
        """Run ``script`` with the venv's Python (duckdb 1.0.0 first on the path when ``oldest``);
        its stdout, or a failed test naming what it printed."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        if oldest:
            env["PYTHONPATH"] = str(self.oldest)
        out = subprocess.run(
            [str(self.python), "-c", script, *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        if out.returncode != 0:
            pytest.fail(f"the DuckDB 1.x reader failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
        return out.stdout


@pytest.fixture(scope="session")
def duckdb1_readers(tmp_path_factory: pytest.TempPathFactory) -> DuckDB1Readers:
    """Readers on DuckDB 1.x, installed from the package index once per test session (a few
    seconds with pip's cache): a venv without pip of its own, filled by this pip (``--python``)."""
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


# ---- an S3-compatible server (moto's server mode over real HTTP on loopback)


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 server on a free loopback port, for the session (each test takes its own bucket)."""
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


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
