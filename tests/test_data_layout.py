"""The data directory's layout: one object knows where each kind of state lives.

Every kind resolves where the code before the layout object put it (a data directory written by
that code keeps working); settings, a layout and a plain path all name a layout; and no module of
the library but ``xport_etl/layout.py`` builds a path of a kind (an ``ast`` scan, like
tests/test_layout.py: nothing is imported).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from xport_etl.layout import DURABLE, HOST, KINDS, DataLayout, layout_markdown
from xport_etl.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "xport_etl"

# where each kind lived before the layout object (state written then must be found now)
BEFORE = {
    "raw": "raw",
    "parquet": "parquet",
    "warehouse": "warehouse.duckdb",
    "plans": "state/plans",
    "next_states": "state/next",
    "runs": "state/runs.jsonl",
    "check_results": "state/check_results.jsonl",
    "callbacks": "callbacks",
    "run_lock": "state/run.lock",
    "warehouse_lock": "warehouse.lock",
    "ratelimit": "state/ratelimit",
    "spool": "spool",
    "tmp": "tmp",
    "ledger_cache": "state/ledger-cache",  # new with the storage URL's host cache (never written without one)
}


@pytest.mark.parametrize("kind", sorted(BEFORE))
def test_every_kind_is_where_it_was(kind, tmp_path):
    assert getattr(DataLayout(tmp_path), kind) == tmp_path / BEFORE[kind]


def test_every_kind_is_declared_once_with_a_scope():
    assert set(KINDS) == set(BEFORE)
    assert {k.scope for k in KINDS.values()} == {DURABLE, HOST}
    assert len({k.path for k in KINDS.values()}) == len(KINDS)


def test_settings_a_layout_and_a_path_name_the_same_layout(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.layout == DataLayout.of(settings) == DataLayout.of(tmp_path) == DataLayout.of(str(tmp_path))
    assert DataLayout.of(settings.layout) is not None and DataLayout.of(settings.layout) == settings.layout
    assert settings.layout.plan("0123abcd") == tmp_path / "state" / "plans" / "0123abcd.json"


def test_the_raw_root_follows_raw_url(tmp_path):
    local = Settings(data_dir=tmp_path / "data", raw_url=str(tmp_path / "elsewhere"))
    assert local.layout.raw == tmp_path / "elsewhere"
    assert local.layout.parquet == tmp_path / "data" / "parquet"  # only the raw pages move
    assert DataLayout.of(tmp_path, raw_url=str(tmp_path / "r")).raw == tmp_path / "r"
    assert DataLayout.of(local.layout).raw == tmp_path / "elsewhere"
    remote = DataLayout(tmp_path, "s3://bucket/raw")
    assert str(remote.raw) == "s3://bucket/raw" and remote.raw_shown == "s3://bucket/raw"
    assert DataLayout(tmp_path).raw_shown == str(tmp_path / "raw")


def test_docs_describe_every_kind():
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert layout_markdown() in text, "docs/operations.md's data-directory table is not layout_markdown()'s"


# ---- no module but layout.py builds a kind's path

COMPONENTS = {part for kind in KINDS.values() for part in kind.path.split("/")}
PATH_CALLS = {"Path", "joinpath", "join", "PurePath", "UPath"}


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"``: a path part may hide behind a constant's name."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _text(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _names_a_kind(text: str | None) -> bool:
    return text is not None and any(part in COMPONENTS for part in text.split("/"))


def path_joins(source: str) -> list[tuple[int, str]]:
    """Where ``source`` joins a kind's name onto a path: ``x / "state"``, ``x / WAREHOUSE_FILE``,
    ``Path(x, "parquet")``, ``x.joinpath("raw")``, ``os.path.join(x, "tmp")``, ``f"{x}/raw"``."""
    tree = ast.parse(source)
    constants = _constants(tree)
    found = []
    for node in ast.walk(tree):
        pieces: list[str | None] = []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            pieces = [_text(node.left, constants), _text(node.right, constants)]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in PATH_CALLS:
                pieces = [_text(a, constants) for a in node.args]
        elif isinstance(node, ast.JoinedStr):  # f"{x}/raw": a "/" right after a value
            pieces = [
                str(v.value).split()[0]
                for before, v in zip(node.values, node.values[1:], strict=False)
                if isinstance(before, ast.FormattedValue) and str(getattr(v, "value", "")).startswith("/")
            ]
        found += [(node.lineno, p) for p in pieces if _names_a_kind(p)]
    return found


def test_the_scan_finds_what_the_code_before_wrote():
    before = """
WAREHOUSE_FILE = "warehouse.duckdb"
SPOOL_DIR = "spool"
def a(data_dir): return Path(data_dir) / "state" / "runs.jsonl"
def b(data_dir): return Path(data_dir) / WAREHOUSE_FILE
def c(data_dir, e): return Path(data_dir) / SPOOL_DIR / e
def d(s): return f"{s.data_dir}/raw"
def e(root): return root.joinpath("parquet")
def f(x): return x.join(x, "tmp")
def g(versions): return versions["next"] != versions["published"]  # a key, not a path
"""
    assert sorted(line for line, _ in path_joins(before)) == [4, 4, 5, 6, 7, 8, 9]


def test_no_module_but_the_layout_builds_a_kind_path():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} joins {text!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "layout.py" or path.parent != PACKAGE
        for line, text in path_joins(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
