"""The Airflow provider of xport-etl: the ``xport`` connection type and :class:`XportHook`.

Airflow discovers it through the ``apache_airflow_provider`` entry point, which names
:func:`get_provider_info`. Importing this package imports nothing from Airflow or the library:
the provider manager may read it in any Airflow process.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "xport-airflow-provider"
CONN_TYPE = "xport"
HOOK_CLASS = "xport_airflow_provider.hooks.XportHook"


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers`` and the connection form know about this provider."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Xportcn OpenAPI (xport-etl)",
        "description": "Extract Taobao and 1688 purchases from the Xportcn OpenAPI into DuckDB:"
        " the `xport` connection type and XportHook.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Xportcn OpenAPI",
                "external-doc-url": "https://www.xportcn.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Xportcn OpenAPI",
                "python-modules": ["xport_airflow_provider.hooks"],
            }
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": HOOK_CLASS,
                "hook-name": "Xportcn OpenAPI",
                # labelled inputs stored as plain keys of the Connection's extra
                "conn-fields": {
                    "user_id": {
                        "label": "User ID",
                        "description": "the user-id header (required)",
                        "schema": {"type": ["string", "null"]},
                    },
                    "rate_limit": {
                        "label": "Rate limit (requests/s per AccessKey)",
                        "description": "0 = unlimited; default 10 (the API's assumed limit)",
                        "schema": {"type": ["number", "null"]},
                    },
                    "rate_limit_url": {
                        "label": "Shared rate-limit store",
                        "description": "redis://host:6379/0 to share the AccessKey's budget across"
                        " machines; empty = a lock file under the data directory (one machine)",
                        "schema": {"type": ["string", "null"]},
                    },
                    "sign_recipe": {
                        "label": "Signing recipe",
                        "description": "query or concat (the Test button says which one the API accepts)",
                        "schema": {"type": ["string", "null"], "enum": ["query", "concat", None]},
                    },
                    "data_dir": {
                        "label": "Data directory",
                        "description": "Parquet, warehouse and run state (default XPORT_DATA_DIR)",
                        "schema": {"type": ["string", "null"]},
                    },
                    "raw_url": {
                        "label": "Raw landing URL",
                        "description": "a path or fsspec URL shared by every worker, e.g. s3://bucket/raw",
                        "schema": {"type": ["string", "null"]},
                    },
                    "report_tz": {
                        "label": "Reporting time zone",
                        "description": "default Asia/Shanghai",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": [],
                    "relabeling": {
                        "host": "Base URL",
                        "schema": "Scheme (when Base URL has none)",
                        "login": "AccessKey",
                        "password": "AccessSecret",
                    },
                    "placeholders": {
                        "host": "https://www.xportcn.com/api",
                        "extra": '{"check_overrides": {}, "sign_template": null}',
                    },
                },
            }
        ],
    }
