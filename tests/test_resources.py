"""Where the library finds its SQL and the DAG files (the checkout here, the package in a wheel:
``tests/e2e/test_wheel_install.py``), and ``xport-etl airflow install-dags``."""

from __future__ import annotations

from pathlib import Path

from xport_etl import resources
from xport_etl.cli import main
from xport_etl.load import checks
from xport_etl.load import publish as load

PROJECT_DIR = Path(__file__).resolve().parents[1]


def test_sql_and_dags_come_from_the_checkout():
    assert resources.SQL_DIR == PROJECT_DIR / "sql" == load.SQL_DIR
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
