"""The test suite's own rules (README, Tests): builders live in ``tests/factories/`` and fixtures in
``conftest.py``, never in a test module another one imports; every end-to-end test is ``slow``;
warnings are errors and an expected failure that passes fails."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def _is_test_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" and any(p.startswith("test_") or p == "conftest" for p in parts[1:])


def imported_test_modules(source: str, module: str) -> list[str]:
    """The test modules (``test_*``) and conftests that ``source`` (the text of ``module``, dotted)
    imports, relative imports resolved."""
    package = module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if _is_test_module(base):
                found.append(base)
            else:  # `from tests import test_load` names the module in the alias
                found += [f"{base}.{a.name}" for a in node.names if _is_test_module(f"{base}.{a.name}")]
    return found


def test_the_rule_finds_every_way_of_importing_a_test_module():
    assert imported_test_modules("from tests.test_load import land", "tests.test_cli") == ["tests.test_load"]
    assert imported_test_modules("import tests.e2e.test_dags_e2e", "tests.test_x") == ["tests.e2e.test_dags_e2e"]
    assert imported_test_modules("from tests import test_load", "tests.test_x") == ["tests.test_load"]
    assert imported_test_modules("from .conftest import Api", "tests.sandbox.test_x") == ["tests.sandbox.conftest"]
    assert imported_test_modules("from ..test_load import T0", "tests.normalize.test_x") == ["tests.test_load"]
    assert imported_test_modules("from tests.factories.served import order", "tests.test_cli") == []


def test_no_test_module_imports_another_test_module_or_a_conftest():
    found = {}
    for path in sorted(TESTS.rglob("*.py")):
        module = ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)
        if imports := imported_test_modules(path.read_text(encoding="utf-8"), module):
            found[module] = imports
    assert found == {}, "move what they share into tests/factories/ (builders) or a conftest.py (fixtures)"


def test_every_end_to_end_test_is_slow(collected: list[pytest.Item]):
    e2e = [item for item in collected if TESTS / "e2e" in item.path.parents]
    if not e2e:
        pytest.skip("tests/e2e/ was not collected in this session (run the whole suite or `make test-fast`)")
    assert [item.nodeid for item in e2e if item.get_closest_marker("slow") is None] == []


def test_the_normaliser_tests_are_one_family():
    """``tests/normalize/``: one file per normaliser module, the properties of them all."""
    assert sorted(p.name for p in TESTS.glob("test_normaliz*.py")) == []
    assert (TESTS / "normalize" / "__init__.py").exists()


def test_warnings_are_errors_and_expected_failures_strict(pytestconfig: pytest.Config):
    assert pytestconfig.getini("filterwarnings")[0] == "error"
    assert pytestconfig.getini("xfail_strict") is True
