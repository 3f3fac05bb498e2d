"""The Airflow provider of xport-etl: the ``xport`` connection type and :class:`XportHook`.

Airflow discovers it through the ``apache_airflow_provider`` entry point, which names
:func:`get_provider_info`. Importing this package imports nothing from Airflow or the library:
the provider manager may read it in any Airflow process. :func:`get_provider_info` reads the
connection form's fields from the library's settings declarations (``xport_etl.settings``, a light
import: no pyarrow, no DuckDB).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "xport-airflow-provider"
CONN_TYPE = "xport"
HOOK_CLASS = "xport_airflow_provider.hooks.XportHook"


# a setting's type → the JSON schema type of its form field
_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def connection_form_fields() -> dict[str, dict[str, Any]]:
    """The labelled fields of the ``xport`` connection form: every extra declared with a ``label``
    (``xport_etl.settings``), its help and its fallbacks as the description. Every other setting
    is an extra too, typed into the form's Extra box (docs/settings.md lists them)."""
    from xport_etl.settings import SETTINGS

    fields = {}
    for s in SETTINGS:
        if s.label is None or not s.is_extra:
            continue
        schema: dict[str, Any] = {"type": [_JSON_TYPES.get(s.value_type.__name__, "string"), "null"]}
        choices = s.choice_values()
        if choices is not None:
            schema["enum"] = [*choices, None]
        default = f"default: {s.env}, else {s.shown_default()}"  # what the Connection does not set
        fields[s.name] = {"label": s.label, "description": f"{s.help}; {default}", "schema": schema}
    return fields


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers`` and the connection form know about this provider."""
    from xport_etl.settings import SETTING

    own = [s for s in SETTING.values() if s.connection]  # the Connection's own fields (host, login, password)
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
                "conn-fields": connection_form_fields(),
                "ui-field-behaviour": {
                    "hidden-fields": [],
                    "relabeling": {
                        **{s.connection: s.label for s in own if s.label},
                        "schema": f"Scheme (when {SETTING['base_url'].label} has none)",
                    },
                    "placeholders": {
                        **{s.connection: s.example for s in own if s.example},
                        "extra": '{"check_overrides": {}, "sign_template": null}',
                    },
                },
            }
        ],
    }
