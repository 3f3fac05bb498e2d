"""Which failures of an xport task Airflow retries, and which fail the task at once.

The library raises its own exceptions (:mod:`xport_etl.errors`) and never imports Airflow; the
DAG tasks translate here. A failure that another try cannot fix, because it needs a person to
change something, fails the task at once with Airflow's ``AirflowFailException`` (no retries; the
failure notifier still runs):

========================  ==================================================================
library exception         what a person must fix
========================  ==================================================================
``AuthenticationError``   the signature, AccessKey/AccessSecret, the user-id, the machine clock (HTTP or envelope 401/403)
``ConfigError``           a setting (the Connection's fields and extras, ``XPORT_*``)
``FatalError``            a request the API refuses for good (400/404, another code): bad arguments
``ManifestError``,        a landed window xport-etl did not write (a shared ``XPORT_RAW_URL``)
``PathOutsideError``
``WarehouseError``        a published warehouse that is not a readable DuckDB file
========================  ==================================================================

Everything else keeps the DAG's retries: the API or its gateway failing (``RetriableError`` after
the client's own retries: 5xx, 429, cut connections, timeouts), an unreachable Redis
(``RateLimiterUnavailableError``), a malformed page (the next try fetches it again), a full disk,
a bug, and a data check that failed (``CheckFailedError``: the next try checks again, after a
callbacks refresh may have published the rows it missed or an operator set
``XPORT_CHECK_OVERRIDES``).

Used as a decorator under ``@task`` (``functools.wraps`` keeps the signature Airflow reads)::

    @task(pool="xport_api")
    @fail_fast
    def extract_list(endpoint: str, **context): ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["fail_fast", "is_permanent"]

F = TypeVar("F", bound=Callable[..., Any])


def _permanent() -> tuple[type[BaseException], ...]:
    # imported when a task fails (every one of these modules is loaded by then): a DAG file that
    # imports this module at parse time pulls in no pyarrow or DuckDB
    from xport_etl.errors import AuthenticationError, ConfigError, FatalError
    from xport_etl.extract.landing import ManifestError
    from xport_etl.extract.storage import PathOutsideError
    from xport_etl.load.publish import WarehouseError

    return AuthenticationError, ConfigError, FatalError, ManifestError, PathOutsideError, WarehouseError


def is_permanent(exc: BaseException) -> bool:
    """True when another try of the task cannot succeed without a person fixing something."""
    return isinstance(exc, _permanent())


def fail_fast(func: F) -> F:
    """Run the task; a permanent failure (:func:`is_permanent`) becomes ``AirflowFailException``
    (the task fails now, no retries), with the library's message and the exception chained."""

    @functools.wraps(func)
    def task(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not is_permanent(exc):
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"{type(exc).__name__}: {exc} (not retried: another try cannot fix this; fix it, then clear the task)"
            ) from exc

    return cast(F, task)
