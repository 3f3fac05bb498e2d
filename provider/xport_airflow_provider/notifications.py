"""The failure-notification hook point of the xport DAGs: configured, never hard-coded.

Every xport DAG sets ``on_failure_callback=notify_failure``. When a task fails,
:func:`notify_failure` looks for a notifier, first in the Airflow Variable
``xport_failure_notifier``, then in the environment variable ``XPORT_FAILURE_NOTIFIER``. Either
holds ``module:attribute`` naming a callable that takes the task's context: an Airflow notifier
instance (``SmtpNotifier``, ``SlackNotifier``, … are callable with the context) or a plain
function. For example, a file ``xport_alerts.py`` on the workers' ``sys.path`` (the DAGs folder
is on it)::

    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    notify = SmtpNotifier(to="data-oncall@example.com",
                          subject="xport: {{ ti.dag_id }}.{{ ti.task_id }} failed")

and ``airflow variables set xport_failure_notifier xport_alerts:notify``. Nothing is configured:
nothing happens (the failure is in the task log and the UI as always). Nothing is imported when
a DAG file is parsed; the notifier is imported when a task fails, and a notifier that cannot be
imported or raises is logged, never allowed to mask the task's own failure.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import Any

__all__ = ["FAILURE_NOTIFIER_ENV", "FAILURE_NOTIFIER_VARIABLE", "notify_failure", "resolve_notifier"]

FAILURE_NOTIFIER_VARIABLE = "xport_failure_notifier"
FAILURE_NOTIFIER_ENV = "XPORT_FAILURE_NOTIFIER"

log = logging.getLogger(__name__)


def configured_notifier() -> str | None:
    """The ``module:attribute`` the Variable or the environment names, or ``None``."""
    try:
        from airflow.sdk import Variable

        value = Variable.get(FAILURE_NOTIFIER_VARIABLE, default=None)
    except Exception as exc:  # no metadata database or API server reachable: use the environment
        log.debug("Variable %s not readable: %s", FAILURE_NOTIFIER_VARIABLE, exc)
        value = None
    value = (value or os.environ.get(FAILURE_NOTIFIER_ENV) or "").strip()
    return value or None


def resolve_notifier(spec: str) -> Callable[[Any], Any]:
    """Import ``module:attribute`` (dots allowed after the colon) and return the callable.

    Raises:
        ValueError: the spec is not ``module:attribute`` or does not name a callable.
        ImportError: the module cannot be imported.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"a failure notifier is 'module:attribute', got {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{spec} is not callable")
    return target


def notify_failure(context: Any) -> None:
    """``on_failure_callback``: hand the failed task's context to the configured notifier."""
    spec = configured_notifier()
    if spec is None:
        return
    try:
        resolve_notifier(spec)(context)
    except Exception:
        log.exception("the failure notifier %s failed (the task's own failure stands)", spec)
