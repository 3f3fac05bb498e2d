"""Every test under tests/e2e/ runs the pipeline end to end (against the sandbox, through Airflow,
from an installed wheel, or killed and resumed): all are marked ``slow``, so that ``make
test-fast`` leaves them to ``make test`` (CI). A new file here is slow without saying so."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)
