"""Where the files the library reads at run time live: the SQL (``sql/``) and the DAG files.

In the repository they are top-level folders (``sql/``, ``dags/``); the wheel ships them inside
the package as ``xport_etl/sql/`` and ``xport_etl/airflow_dags/`` (``pyproject.toml`` maps the
folders with ``package-dir``), so an installed library finds them through
:mod:`importlib.resources` and a checkout finds them next to the package. Nothing here imports
Airflow: the DAG files are data to this library, copied by ``xport-etl airflow install-dags``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["DAGS_DIR", "SQL_DIR", "dag_files"]

_CHECKOUT = Path(__file__).resolve().parent.parent


def _resource_dir(packaged: str, checkout: str) -> Path:
    # an installed wheel: a real directory inside the package (zip imports are not supported)
    shipped = resources.files(__package__).joinpath(packaged)
    if shipped.is_dir():
        return Path(str(shipped))
    return _CHECKOUT / checkout


SQL_DIR = _resource_dir("sql", "sql")
DAGS_DIR = _resource_dir("airflow_dags", "dags")


def dag_files() -> list[Path]:
    """The DAG files this version ships (``dags/*.py``, helpers starting with ``_`` included)."""
    return sorted(p for p in DAGS_DIR.glob("*.py") if p.is_file())
