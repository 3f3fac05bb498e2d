"""Where the library finds its SQL and the DAG files (the checkout here, the package in a wheel:
``tests/e2e/test_wheel_install.py``), and ``xport-etl airflow install-dags``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from xport_etl import resources
from xport_etl.cli import main
from xport_etl.load import checks
from xport_etl.report import docs

PROJECT_DIR = Path(__file__).resolve().parents[1]


def test_sql_and_dags_come_from_the_checkout():
    assert resources.SQL_DIR == PROJECT_DIR / "sql" == docs.SQL_DIR
    assert checks.CHECKS_DIR == PROJECT_DIR / "sql" / "checks"
    assert resources.dag_files() == sorted((PROJECT_DIR / "dags").glob("*.py"))


def test_install_dags_copies_this_versions_files(tmp_path, capsys):
    target = tmp_path / "airflow" / "dags"
    target.mkdir(parents=True)
    (target / "xport_ingest.py").write_text("# an older version\n")
    (target / "someone_elses_dag.py").write_text("# untouched\n")
    assert main(["airflow", "install-dags", "--to", str(target)]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == [p.name for p in resources.dag_files()]
    for src in resources.dag_files():
        assert (target / src.name).read_bytes() == src.read_bytes()
    assert (target / "someone_elses_dag.py").read_text() == "# untouched\n"
    assert not list(target.glob(".*.tmp"))


def test_installed_dag_files_are_readable_by_the_dag_processor_whatever_the_umask(tmp_path, monkeypatch):
    """DAG files are code: a DAG processor running as another user must read them, so the copies
    are 0644 and the folders install-dags creates 0755, even under the CLI's private umask (077)."""
    monkeypatch.setenv("XPORT_UMASK", "077")
    existing = tmp_path / "airflow"
    existing.mkdir(mode=0o750)
    os.chmod(existing, 0o750)
    target = existing / "deployed" / "dags"
    (tmp_path / "old").mkdir()
    old = tmp_path / "old" / "xport_ingest.py"
    old.write_text("# an older copy, private\n")
    os.chmod(old, 0o600)
    before = os.umask(0o022)
    try:
        assert main(["airflow", "install-dags", "--to", str(target)]) == 0
        old.replace(target / "xport_ingest.py")  # an older private copy is replaced by a readable one
        assert main(["airflow", "install-dags", "--to", str(target)]) == 0
        after = os.umask(before)
    finally:
        os.umask(before)
    assert after == 0o022  # the CLI restored the caller's umask
    for folder in (target, target.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
    assert stat.S_IMODE(existing.stat().st_mode) == 0o750  # a folder that was there keeps its mode
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()}
    assert modes == {p.name: 0o644 for p in resources.dag_files()}
