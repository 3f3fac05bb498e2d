"""Which failures of an xport task Airflow retries, and which fail the task at once.

The library raises its own exceptions (:mod:`xport_etl.errors`, one tree) and never imports
Airflow; the DAG tasks translate here. Each error class says whether another try can succeed
without a person changing something (``permanent``); a permanent one fails the task at once with
Airflow's ``AirflowFailException`` (no retries; the failure notifier still runs). Today these are
permanent (the tree in ``xport_etl/errors.py`` is the reference):

========================  ==================================================================
library exception         what a person must fix
========================  ==================================================================
``AuthenticationError``   the signature, AccessKey/AccessSecret, the user-id, the machine clock (HTTP or envelope 401/403)
``ConfigError``           a setting (the Connection's fields and extras, ``XPORT_*``)
``UsageError``            an argument (a report name, a window)
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


def is_permanent(exc: BaseException) -> bool:
    """True when another try of the task cannot succeed without a person fixing something: the
    error's class (or the error itself) says so (``XportError.permanent``)."""
    # imported when a task fails: a DAG file that imports this module at parse time imports nothing
    from xport_etl.errors import XportError

    return isinstance(exc, XportError) and exc.permanent


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
