"""Where the files the library reads at run time live: the SQL (``sql/``) and the DAG files.

In the repository they are top-level folders (``sql/``, ``dags/``); the wheel ships them inside
the package as ``xport_etl/sql/`` and ``xport_etl/airflow_dags/`` (``pyproject.toml`` maps the
folders with ``package-dir``), so an installed library finds them through
:mod:`importlib.resources` and a checkout finds them next to the package. Nothing here imports
Airflow: the DAG files are data to this library, copied by ``xport-etl airflow install-dags``
(:func:`install_dags`).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from xport_etl.fsutil import write_atomic

__all__ = ["DAGS_DIR", "SQL_DIR", "dag_files", "install_dags", "sql_objects"]

# DAG files are code, not data: the DAG processor (often another user than the one who installs
# them) must read them, whatever the umask (XPORT_UMASK keeps the pipeline's data private)
DAG_FILE_MODE = 0o644
DAG_DIR_MODE = 0o755

_CHECKOUT = Path(__file__).resolve().parent.parent


def _resource_dir(packaged: str, checkout: str) -> Path:
    # an installed wheel: a real directory inside the package (zip imports are not supported)
    shipped = resources.files(__package__).joinpath(packaged)
    if shipped.is_dir():
        return Path(str(shipped))
    return _CHECKOUT / checkout


SQL_DIR = _resource_dir("sql", "sql")
DAGS_DIR = _resource_dir("airflow_dags", "dags")


def sql_objects(folder: str) -> list[tuple[str, str]]:
    """``(name, text)`` for each ``sql/<folder>/*.sql`` file, in name order: the checks
    (``checks``), the report views (``reports``), the fan-outs' key queries (``fanout``)."""
    return [(p.stem, p.read_text()) for p in sorted((SQL_DIR / folder).glob("*.sql"))]


def dag_files() -> list[Path]:
    """The DAG files this version ships (``dags/*.py``, helpers starting with ``_`` included)."""
    return sorted(p for p in DAGS_DIR.glob("*.py") if p.is_file())


def install_dags(target: Path, files: list[Path] | None = None) -> list[Path]:
    """Copy this version's DAG files (or ``files``) into the folder ``target``; return the copies.

    Each copy replaces an older one atomically (a DAG processor never parses half a file) and is
    made :data:`DAG_FILE_MODE` (0644); the folders this creates are :data:`DAG_DIR_MODE` (0755),
    whatever the process umask. A folder that already exists keeps its mode and owner: that is
    the deployment's choice (e.g. 0750 with the Airflow users' group)."""
    missing = []
    folder = Path(target)
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        os.chmod(folder, DAG_DIR_MODE)
    copies = []
    for src in dag_files() if files is None else files:
        dest = Path(target) / src.name
        write_atomic(dest, src.read_bytes(), mode=DAG_FILE_MODE)
        copies.append(dest)
    return copies
