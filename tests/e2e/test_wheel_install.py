"""Deploy as a stranger's Airflow would: docs/deploy-airflow.md, every command, as written.

Builds the wheels from a copy of the sources (what ``make wheels`` runs) into a checkout-like
folder beside ``constraints.txt``, makes a bare virtual environment (``python -m venv``, pip
pinned, nothing else: no ``--system-site-packages``, no ``PYTHONPATH``; pip's cache makes it
quick), then runs **every command of the guide's ``bash`` blocks, in order**, read out of the
guide itself, with that environment first on ``PATH`` (as an activated one). The only changes are
the placeholders in :data:`PLACEHOLDERS`, each of which must occur. So the guide cannot name a
command that does not work, or leave one out: its pip install (pulling Airflow itself), the
sandbox's own wheel and server, ``airflow db migrate`` before the pool, ``install-dags`` and
``airflow dags reserialize`` before ``airflow dags list``, the connection, unpausing and
triggering, ``airflow dags test`` of the ingest and reports DAGs (run through the demo's runner,
which stops at the first failed try instead of waiting out the retries), ``xport-etl status`` and
the DuckDB CLI (1.5.6, from the DuckDB 1.x readers' environment: tests/conftest.py). The
warehouse then equals the sandbox's truth; the DAG files are readable by other users; the
library and provider come from the virtual environment, which holds no test or benchmark tools.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import xport_sandbox as sandbox_defaults
from tests.helpers import assert_warehouse_equals_truth, free_port
from xport_sandbox import demo
from xport_sandbox.world import World, WorldConfig

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

PROJECT_DIR = Path(__file__).resolve().parents[2]
GUIDE = PROJECT_DIR / "docs" / "deploy-airflow.md"
SOURCES = ("pyproject.toml", "README.md", "xport_etl", "sql", "dags", "provider", "xport_sandbox")
# never in a runtime install: the test, benchmark and comparison tools
NOT_RUNTIME = ("pytest", "hypothesis", "moto", "dlt", "pyinstrument", "py-spy", "ruff", "pandas")
DAG_IDS = ("xport_callbacks", "xport_freshness", "xport_ingest", "xport_reports")
# the world `xport-sandbox serve --seed 5 --orders 120` serves (its defaults otherwise), and the
# `dags test` date whose data interval, [2026-06-30, 2026-07-01) UTC, holds its clock (the guide's step 2)
WORLD = WorldConfig(seed=5, orders=120)
LOGICAL_DATE = "2026-07-01"


def _run(cmd, *, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"$ {' '.join(map(str, cmd))}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything pointing back at this checkout or its venv."""
    drop = ("AIRFLOW", "XPORT_", "PYTHON", "VIRTUAL_ENV", "PIP_TARGET", "PIP_PREFIX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def guide_commands(text: str) -> list[str]:
    """The commands of every ```bash block, in order: continued lines joined, comments and blank
    lines left out (a command's trailing comment stays: the shell ignores it)."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```$", text, re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the sandbox exited: {log.read_text()[-3000:]}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the sandbox does not listen on {port} after {timeout} s")


@pytest.fixture
def checkout(tmp_path: Path) -> dict[str, Path]:
    """A checkout-like folder holding ``dist/`` (the wheels ``make wheels`` builds) and
    ``constraints.txt``, and a bare virtual environment beside it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = PROJECT_DIR / name
        ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy2(PROJECT_DIR / "constraints.txt", root / "constraints.txt")
    t0 = time.monotonic()
    # the Makefile's `wheels` recipe, on the copied sources
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", root / "dist"]
        + [src, src / "provider", src / "xport_sandbox"],
        cwd=tmp_path,
    )
    wheels = sorted(p.name.split("-")[0] for p in (root / "dist").glob("*.whl"))
    assert wheels == ["xport_airflow_provider", "xport_etl", "xport_sandbox"], wheels
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], env=_clean_env(), cwd=tmp_path)
    _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "pip==26.3"], env=_clean_env(), cwd=tmp_path)
    print(f"\nwheels and a bare venv: {time.monotonic() - t0:.1f} s")
    return {"root": root, "venv": venv, "tmp": tmp_path}


def test_the_guide_lists_the_deployment_in_order():
    """The steps a bare installation needs, in the order it needs them (cheap: no install)."""
    commands = guide_commands(GUIDE.read_text(encoding="utf-8"))

    def first(prefix: str) -> int:
        found = [i for i, c in enumerate(commands) if c.startswith(prefix)]
        assert found, f"the guide has no `{prefix} …` command"
        return found[0]

    order = [
        "pip install dist/xport_etl-",
        "airflow providers list",
        "pip install dist/xport_sandbox-",
        "xport-sandbox serve",
        "airflow db migrate",
        "airflow pools set xport_api",
        "xport-etl airflow install-dags",
        "airflow dags reserialize",
        "airflow dags list",
        "airflow connections add xport_default",
        "airflow dags unpause --yes --treat-dag-id-as-regex '^xport_(ingest|reports|freshness)$'",
        "airflow dags trigger xport_ingest",
        "airflow dags test xport_ingest",
        "airflow dags test xport_reports",
        "xport-etl status",
        "duckdb -readonly",
    ]
    positions = [first(p) for p in order]
    assert positions == sorted(positions), list(zip(order, positions, strict=True))
    # the sandbox's credentials, as the guide documents them, are the sandbox's
    text = GUIDE.read_text(encoding="utf-8")
    for value in (
        sandbox_defaults.DEFAULT_ACCESS_KEY,
        sandbox_defaults.DEFAULT_ACCESS_SECRET,
        sandbox_defaults.DEFAULT_USER_ID,
        "http://127.0.0.1:8765",
    ):
        assert f"`{value}`" in text, value
    assert "[sandbox]" not in text  # a wheel of its own, not an extra


def test_deploy_by_the_guide(checkout, duckdb1_readers, monkeypatch):
    root, venv, tmp = checkout["root"], checkout["venv"], checkout["tmp"]
    bin_dir = venv / "bin"
    home, data, port = tmp / "airflow", tmp / "data", free_port()
    env = _clean_env(
        PATH=os.pathsep.join([str(bin_dir), str(duckdb1_readers.bin), os.environ.get("PATH", "")]),
        VIRTUAL_ENV=str(venv),
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    # placeholder in the guide → the value here; every one must occur in some command
    placeholders = {
        "https://www.xportcn.com/api": f"http://127.0.0.1:{port}",
        "<AccessKey>": sandbox_defaults.DEFAULT_ACCESS_KEY,
        "<AccessSecret>": sandbox_defaults.DEFAULT_ACCESS_SECRET,
        '"user_id": "1000001"': f'"user_id": "{sandbox_defaults.DEFAULT_USER_ID}"',
        '"rate_limit": 10': '"rate_limit": 0',
        "/srv/xport/data": str(data),
        "--port 8765": f"--port {port}",
        '"$(date -u +%F)"': LOGICAL_DATE,
    }
    commands = guide_commands(GUIDE.read_text(encoding="utf-8"))
    for placeholder in placeholders:
        assert any(placeholder in c for c in commands), f"the guide no longer says {placeholder!r}"

    monkeypatch.setattr(demo, "_bin", lambda name: str(bin_dir / name))
    timings: list[tuple[float, str]] = []
    server: subprocess.Popen | None = None
    results: dict[str, dict[str, str]] = {}
    outputs: dict[str, str] = {}
    try:
        for command in commands:
            for placeholder, value in placeholders.items():
                command = command.replace(placeholder, value)
            t0 = time.monotonic()
            if command.endswith("&"):  # the sandbox, in the background until the end
                assert command.startswith("xport-sandbox serve"), command
                server_log = (tmp / "sandbox.log").open("w")
                server = subprocess.Popen(
                    ["bash", "-c", f"exec {command[:-1]}"], env=env, cwd=root, stdout=server_log, stderr=server_log
                )
                _wait_for_port(port, server, tmp / "sandbox.log")
            elif command.startswith("airflow dags test "):
                argv = shlex.split(command)
                dag_id, date, conf = argv[3], argv[4], json.loads(argv[6]) if len(argv) > 6 else None
                assert argv[:3] == ["airflow", "dags", "test"] and argv[5:6] in ([], ["--conf"]), argv
                results[dag_id] = demo.dags_test(env, dag_id, date, home / f"{dag_id}.log", conf=conf, timeout=300)
            else:
                out = _run(["bash", "-o", "pipefail", "-c", command], env=env, cwd=root, timeout=900)
                outputs[command] = out.stdout
            timings.append((time.monotonic() - t0, command[:70]))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
            server_log.close()
    print("\n" + "\n".join(f"{s:6.1f} s  {c}" for s, c in timings))

    # the run loaded the sandbox's world exactly
    assert len(results["xport_ingest"]) == 13, sorted(results["xport_ingest"])  # 12 extracts and loads, a publish
    counts = assert_warehouse_equals_truth(data, World(WORLD))
    assert counts["fct_orders"] > 100 and counts["fct_parcel_events"] > 0

    # what the guide's commands showed
    listed = next(out for cmd, out in outputs.items() if cmd.startswith("airflow dags list"))
    assert all(dag_id in listed for dag_id in DAG_IDS), listed
    unpaused = next(out for cmd, out in outputs.items() if cmd.startswith("airflow dags unpause"))
    assert all(d in unpaused for d in DAG_IDS[1:]) and "xport_callbacks" not in unpaused, unpaused
    ledger = next(out for cmd, out in outputs.items() if cmd.startswith("duckdb -readonly"))
    assert "started_at" in ledger and ledger.count("\n") >= 5, ledger

    # DAG files: code every user may read, wherever the DAG processor runs
    dags = Path(_run([bin_dir / "airflow", "config", "get-value", "core", "dags_folder"], env=env).stdout.strip())
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in dags.glob("*.py")}
    assert modes == {p.name: 0o644 for p in (PROJECT_DIR / "dags").glob("*.py")}, modes
    assert stat.S_IMODE(dags.stat().st_mode) & 0o005 == 0o005

    # the library and the provider come from the venv, never from this checkout
    py = bin_dir / "python"
    where = _run(
        [
            py,
            "-c",
            "import xport_etl, xport_airflow_provider, xport_sandbox, xport_etl.resources as r;"
            "print(xport_etl.__file__); print(xport_airflow_provider.__file__); print(xport_sandbox.__file__);"
            "print(r.SQL_DIR)",
        ],
        env=env,
        cwd=tmp,
    ).stdout.split()
    for path in where:
        assert Path(path).is_relative_to(venv), where
    assert Path(where[3]).name == "sql" and any(Path(where[3]).glob("checks/*.sql"))
    # the runtime pulls no test or benchmark tools
    listed = json.loads(_run([py, "-m", "pip", "list", "--format", "json"], env=env).stdout)
    names = {p["name"].lower() for p in listed}
    assert not names & set(NOT_RUNTIME), sorted(names & set(NOT_RUNTIME))
