"""Fixtures for the sandbox tests: a small served world and a signed caller of it (the builders are
in ``tests/factories/sandbox.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.factories.sandbox import SMALL, Api
from xport_sandbox.testing import SandboxServer


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """A read-only served world; tests that move the clock start their own."""
    with SandboxServer(SMALL) as server:
        yield server


@pytest.fixture(scope="session")
def api(sandbox: SandboxServer) -> Iterator[Api]:
    caller = Api(sandbox.base_url)
    yield caller
    caller.http.close()
