"""Importing the library does nothing but define things.

Every module of ``xport_etl`` is imported in a fresh interpreter, in an empty working directory:
no file of the project is read but its code (``sql/``, the templates and the DAG files are read
when a function needs them), nothing is written, the process umask is unchanged, and the
environment is unchanged but for one documented, deliberate exception: ``ARROW_DEFAULT_MEMORY_POOL``
(Arrow's allocator, read once when pyarrow is first imported; ``xport_etl/__init__.py`` sets
``system`` unless the variable is set already: README, *Configuration*). The provider's hook
module, imported as the DAG processor imports it, leaves the umask alone too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, os, pkgutil, sys
from pathlib import Path

root = Path(sys.argv[1]).resolve()
code_suffixes = {".py", ".pyc"}
read = []

def audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = Path(os.fsdecode(args[0])).resolve()
        if root in path.parents and path.suffix not in code_suffixes and ".venv" not in path.parts:
            read.append(str(path.relative_to(root)))

sys.addaudithook(audit)
before_env, before_umask = dict(os.environ), os.umask(0o022)
os.umask(before_umask)
import importlib
for name in sys.argv[2:]:
    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
after_umask = os.umask(0o022)
os.umask(after_umask)
env = {k: v for k, v in os.environ.items() if before_env.get(k) != v}
print(json.dumps({"read": sorted(set(read)), "umask": [before_umask, after_umask], "env": env,
                  "cwd": sorted(os.listdir("."))}))
"""


def _import(tmp_path: Path, *packages: str, env: dict[str, str] | None = None) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("XPORT_", "ARROW_"))}
    environ.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), *packages],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_importing_every_module_reads_writes_and_changes_nothing(tmp_path):
    seen = _import(tmp_path, "xport_etl")
    assert seen["read"] == []  # no sql/, templates or DAG file read at import time
    assert seen["cwd"] == []  # nothing written where it runs
    assert seen["umask"][0] == seen["umask"][1]
    assert seen["env"] == {"ARROW_DEFAULT_MEMORY_POOL": "system"}  # the one deliberate change


def test_an_arrow_pool_chosen_by_the_user_is_kept(tmp_path):
    seen = _import(tmp_path, "xport_etl", env={"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"})
    assert seen["env"] == {}


@pytest.mark.airflow
def test_importing_the_provider_hook_leaves_the_umask_alone(tmp_path):
    seen = _import(tmp_path, "xport_airflow_provider")
    assert seen["umask"][0] == seen["umask"][1]
