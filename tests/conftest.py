"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from tests.helpers import serve


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest):
    """A served world for the module, described by the module's `SANDBOX` dict.

    `SANDBOX = {"seed": 5, "orders": 300}` (plus any `SandboxServer` keyword, e.g.
    `"access_secret"`) is passed to `tests.helpers.serve`. tests/sandbox/ has its own fixture.
    """
    with serve(**request.module.SANDBOX) as server:
        yield server
