"""Deploy as a stranger's Airflow would: from the wheels, not from this checkout.

Builds the two wheels (``xport-etl`` and ``xport-airflow-provider``) from a copy of the sources,
installs them with the pinned constraints into a fresh virtual environment (a real install: no
``--system-site-packages``, no ``PYTHONPATH``; pip's cache makes it quick), copies the DAG files to
a folder outside the checkout with ``xport-etl airflow install-dags``, registers the connection
with ``--conn-type xport`` and runs ``airflow dags test xport_ingest`` and ``xport_reports``
against the sandbox from that installation; the warehouse then equals the sandbox's truth.
``airflow providers list`` shows the provider, and the runtime install pulls no test or
benchmark tools.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import xport_sandbox as sandbox_defaults
from tests.helpers import serve
from xport_sandbox import demo

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

PROJECT_DIR = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "xport_etl", "sql", "dags", "provider")
# never in a runtime install: the test, benchmark and comparison tools
NOT_RUNTIME = ("pytest", "hypothesis", "moto", "dlt", "pyinstrument", "py-spy", "ruff", "pandas")
LOGICAL_DATE = "2026-07-01"  # [2026-06-30, 2026-07-01) UTC holds the sandbox clock


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


@pytest.fixture
def installed(tmp_path: Path) -> dict[str, Path]:
    """Wheels built and installed into a fresh venv; returns its paths and the timings."""
    timings = {}
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = PROJECT_DIR / name
        ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path / "dist"
    t0 = time.monotonic()
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            dist,
            src,
            src / "provider",
        ],
        cwd=tmp_path,
    )
    timings["wheels_s"] = time.monotonic() - t0
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == ["xport_airflow_provider", "xport_etl"]

    venv = tmp_path / "venv"
    env = _clean_env()
    t0 = time.monotonic()
    _run([sys.executable, "-m", "venv", venv], env=env, cwd=tmp_path)
    py = venv / "bin" / "python"
    _run([py, "-m", "pip", "install", "--quiet", "pip==26.3"], env=env, cwd=tmp_path)
    # the runtime install: the two wheels, their dependencies at the pinned versions
    _run(
        [py, "-m", "pip", "install", "--quiet", *wheels, "-c", PROJECT_DIR / "constraints.txt"],
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    timings["install_s"] = time.monotonic() - t0
    print(f"\nwheel build {timings['wheels_s']:.1f} s, fresh install {timings['install_s']:.1f} s")
    return {"venv": venv, "bin": venv / "bin", "py": py, "tmp": tmp_path}


def test_deploy_from_the_wheels(installed, monkeypatch):
    tmp, bin_dir, py = installed["tmp"], installed["bin"], installed["py"]
    env = _clean_env()

    # the library and the provider come from the venv, never from this checkout
    where = _run(
        [
            py,
            "-c",
            "import xport_etl, xport_airflow_provider, xport_etl.resources as r;"
            "print(xport_etl.__file__); print(xport_airflow_provider.__file__); print(r.SQL_DIR)",
        ],
        env=env,
        cwd=tmp,
    ).stdout.split()
    for path in where:
        assert Path(path).is_relative_to(installed["venv"]), where
    assert Path(where[2]).name == "sql" and any(Path(where[2]).glob("checks/*.sql"))
    # the runtime pulls no test or benchmark tools
    listed = json.loads(_run([py, "-m", "pip", "list", "--format", "json"], env=env).stdout)
    names = {p["name"].lower() for p in listed}
    assert not names & set(NOT_RUNTIME), sorted(names & set(NOT_RUNTIME))

    # DAG files into a folder outside the checkout
    dags = tmp / "deployed" / "dags"
    copied = _run([bin_dir / "xport-etl", "airflow", "install-dags", "--to", dags], env=env, cwd=tmp)
    assert sorted(Path(p).name for p in copied.stdout.split()) == sorted(
        p.name for p in (PROJECT_DIR / "dags").glob("*.py")
    )

    home = tmp / "airflow"
    env = _clean_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        XPORT_DATA_DIR=str(tmp / "data"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    airflow = bin_dir / "airflow"
    t0 = time.monotonic()
    _run([airflow, "db", "migrate"], env=env, cwd=tmp)
    providers = _run([airflow, "providers", "list", "--output", "json"], env=env, cwd=tmp).stdout
    listed = {p["package_name"]: p for p in json.loads(providers[providers.index("[") :])}
    assert "xport-airflow-provider" in listed, sorted(listed)
    _run([airflow, "pools", "set", "xport_api", "2", "Xportcn API calls"], env=env, cwd=tmp)

    with serve(seed=5, orders=120) as sandbox:
        added = _run(
            [
                airflow,
                "connections",
                "add",
                "xport_default",
                "--conn-type",
                "xport",
                "--conn-host",
                sandbox.base_url,
                "--conn-login",
                sandbox_defaults.DEFAULT_ACCESS_KEY,
                "--conn-password",
                sandbox_defaults.DEFAULT_ACCESS_SECRET,
                "--conn-extra",
                json.dumps({"user_id": sandbox_defaults.DEFAULT_USER_ID, "rate_limit": 0}),
            ],
            env=env,
            cwd=tmp,
        )
        assert "invalid" not in (added.stdout + added.stderr).lower(), added.stdout + added.stderr
        conn = json.loads(
            _run([airflow, "connections", "get", "xport_default", "--output", "json"], env=env, cwd=tmp).stdout
        )
        assert conn[0]["conn_type"] == "xport"

        # `dags test` from the venv's airflow; the demo's runner stops at the first failed try
        monkeypatch.setattr(demo, "_bin", lambda name: str(bin_dir / name))
        results = demo.dags_test(
            env, "xport_ingest", LOGICAL_DATE, home / "ingest.log", conf={"lookback_days": 400}, timeout=240
        )
        assert len(results) == 13, sorted(results)  # 12 extracts and loads, one publish
        demo.dags_test(env, "xport_reports", LOGICAL_DATE, home / "reports.log", timeout=120)
        world = sandbox.world
    print(f"airflow from the wheels: {time.monotonic() - t0:.1f} s")

    from tests.e2e.test_dags_e2e import assert_warehouse_equals_truth

    counts = assert_warehouse_equals_truth(tmp / "data", world)
    assert counts["fct_orders"] > 100 and counts["fct_parcel_events"] > 0
