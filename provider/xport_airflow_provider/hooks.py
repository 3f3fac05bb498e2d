"""An Airflow hook that turns an ``xport`` Connection into ``xport_etl`` settings.

The hook is deliberately thin: it reads the Connection, masks the secret in Airflow's logs and
returns a :class:`xport_etl.settings.Settings`. Paging, parsing and retries live in the library.

Connection fields:

- ``host``: the API base URL, either whole (``https://www.xportcn.com/api``) or split into
  ``schema`` (``http``/``https``, default ``https``), ``host`` (may carry a path) and ``port``.
- ``login``: the AccessKey; ``password``: the AccessSecret.
- ``extra``: ``{"user_id": "…"}`` and any other setting of ``xport_etl.settings.Settings`` by
  its name, written as its ``XPORT_*`` environment variable would be (``xport_etl.settings.
  overrides_from_extras``; every one is listed in docs/settings.md, made from the settings'
  declarations, as the form's labelled fields are). An extra that names no setting is refused
  (a typo would otherwise be ignored); a bad value is named as the Connection's field or extra.

:meth:`XportHook.test_connection` (Airflow's "Test connection" button) runs the library's
``xport-etl check`` and answers ``(ok, message)``; when the API refuses the configured signing
recipe but accepts another, the message names the extra to set.

Whatever the Connection does not set falls back to the ``XPORT_*`` environment variables (for
example ``XPORT_DATA_DIR``), then to the library's defaults.

The provider (``get_provider_info`` in this package) registers the ``xport`` connection type with
this hook, its labelled form fields and field behaviour. DAGs import it as ``from
xport_airflow_provider.hooks import XportHook``. Build the hook inside a task, never at import time.

Example (environment variable)::

    AIRFLOW_CONN_XPORT_DEFAULT='{"conn_type": "xport", "host": "https://www.xportcn.com/api",
        "login": "<access key>", "password": "<access secret>", "extra": {"user_id": "1000001"}}'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from xport_etl.settings import Settings


def base_url_from_connection(conn: Connection) -> str | None:
    """Return the API base URL a Connection describes, without a trailing slash.

    A host that already holds a scheme (``http://…``) is taken whole; otherwise the URL is built
    from ``schema`` (the URL scheme, as the HTTP provider does), ``host`` and ``port``.
    """
    host = (conn.host or "").strip()
    if not host:
        return None
    if "://" in host:
        return host.rstrip("/")
    scheme = (conn.schema or "https").strip().rstrip(":/") or "https"
    netloc, sep, path = host.partition("/")
    if conn.port:
        netloc = f"{netloc}:{conn.port}"
    return f"{scheme}://{netloc}{sep}{path}".rstrip("/")


class XportHook(BaseHook):
    """Read an ``xport`` Connection and return the library's settings.

    Args:
        xport_conn_id: the Connection id; ``xport_default`` unless told otherwise.
    """

    conn_name_attr = "xport_conn_id"
    default_conn_name = "xport_default"
    conn_type = "xport"
    hook_name = "Xportcn OpenAPI"

    def __init__(self, xport_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.xport_conn_id = xport_conn_id

    def get_settings(self) -> Settings:
        """Map the Connection onto :class:`~xport_etl.settings.Settings`, for a task's own process:
        the process's umask becomes the settings' (``XPORT_UMASK``, 077), since what the task
        writes (raw pages, Parquet, the ledger, the warehouse) holds receivers' personal data.

        Fields the Connection leaves empty are ``None`` overrides, so the ``XPORT_*`` environment
        variables and the library's defaults still apply to them. Importing this module or
        building the hook changes nothing; :meth:`test_connection` (run by the API server, not a
        task) reads the settings without touching the umask.
        """
        settings = self._settings()
        os.umask(settings.umask)
        return settings

    def _settings(self) -> Settings:
        from xport_etl.settings import settings_from_connection

        conn = self.get_connection(self.xport_conn_id)
        if conn.password:
            # the task sdk masks sensitive extras but not always the password field itself
            from airflow.sdk.log import mask_secret

            mask_secret(conn.password, name="access_secret")
        # host, login and password, then every other setting by its name (user_id, rate_limit, ...)
        return settings_from_connection(base_url_from_connection(conn), conn.login, conn.password, conn.extra_dejson)

    def test_connection(self) -> tuple[bool, str]:
        """One cheap signed request, diagnosed (``xport-etl check``): ``(ok, message)``.

        The message names each failed step with its hint (which signing recipe the API accepts
        and the extra that selects it, the user-id, the clock, ...), or what was checked.
        """
        from xport_etl.errors import ConfigError
        from xport_etl.extract.diagnose import check_connection

        try:
            settings = self._settings()
        except (ConfigError, ValueError) as exc:
            return False, f"the Connection's settings are invalid: {exc}"
        report = check_connection(settings)
        return report.ok, report.summary()

    def get_conn(self) -> Settings:
        """Return the settings (the library's client is built from them by the caller)."""
        return self.get_settings()
