"""The Airflow provider (``provider/``): what ``get_provider_info`` declares is valid for Airflow,
Airflow's provider manager registers the ``xport`` connection type with its labelled form, and
the failure-notifier hook point calls what is configured and nothing else.
"""

from __future__ import annotations

import json
import logging
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module", autouse=True)
def airflow_home(tmp_path_factory: pytest.TempPathFactory):
    """Airflow writes its config into its home on first import: a throwaway one, unless an
    earlier test module (test_dags.py) already chose one."""
    if "airflow" in sys.modules:
        yield
        return
    home = tmp_path_factory.mktemp("airflow_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(home))
    mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    mp.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}")
    yield
    mp.undo()


def _schema(name: str) -> dict:
    import airflow

    return json.loads((Path(airflow.__file__).parent / name).read_text())


def test_provider_info_is_valid_for_airflow():
    import jsonschema
    from xport_airflow_provider import HOOK_CLASS, get_provider_info

    info = get_provider_info()
    jsonschema.validate(info, _schema("provider_info.schema.json"))
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "xport" and conn["hook-class-name"] == HOOK_CLASS
    behaviour = conn["ui-field-behaviour"]
    jsonschema.validate(
        {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        },
        _schema("customized_form_field_behaviours.schema.json"),
    )
    assert {"user_id", "rate_limit", "rate_limit_url", "sign_recipe"} <= set(conn["conn-fields"])
    module, _, cls = HOOK_CLASS.rpartition(".")
    hook = getattr(__import__(module, fromlist=[cls]), cls)
    assert hook.conn_type == "xport" and hook.hook_name == conn["hook-name"]


def test_the_connection_form_is_made_from_the_settings_declarations():
    from xport_airflow_provider import get_provider_info

    from xport_etl.settings import SETTING, SETTINGS

    (conn,) = get_provider_info()["connection-types"]
    labelled = {s.name for s in SETTINGS if s.label and s.is_extra}
    assert set(conn["conn-fields"]) == labelled and len(labelled) >= 7
    for name, form in conn["conn-fields"].items():
        s = SETTING[name]
        assert form["label"] == s.label and form["description"].startswith(s.help)
        assert s.env in form["description"]  # what the form leaves empty comes from the variable
    assert conn["conn-fields"]["sign_recipe"]["schema"]["enum"] == ["query", "concat", None]
    assert conn["conn-fields"]["rate_limit"]["schema"]["type"] == ["number", "null"]
    behaviour = conn["ui-field-behaviour"]
    assert {s.connection: s.label for s in SETTINGS if s.connection} == {
        field: behaviour["relabeling"][field] for field in ("host", "login", "password")
    }
    assert behaviour["placeholders"]["host"] == SETTING["base_url"].example


def test_the_provider_is_installed_with_its_entry_point():
    try:
        dist = metadata.distribution("xport-airflow-provider")
    except metadata.PackageNotFoundError:
        pytest.fail("xport-airflow-provider is not installed: `make venv` installs it (pip install -e provider)")
    (ep,) = [e for e in dist.entry_points if e.group == "apache_airflow_provider"]
    assert ep.value == "xport_airflow_provider:get_provider_info"
    assert ep.load()()["package-name"] == "xport-airflow-provider"


def test_airflow_registers_the_xport_connection_type():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    assert "xport-airflow-provider" in manager.providers
    hook = ProvidersManagerTaskRuntime().hooks["xport"]
    assert hook is not None and hook.hook_class_name == "xport_airflow_provider.hooks.XportHook"
    assert manager.field_behaviours["xport"]["relabeling"]["login"] == "AccessKey"
    assert "extra__xport__user_id" in manager.connection_form_widgets


def test_importing_the_provider_imports_neither_airflow_nor_the_library():
    import subprocess

    code = "import sys, xport_airflow_provider; print([m for m in ('airflow', 'xport_etl') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


CALLS: list = []


def record(context):
    CALLS.append(context)


def explode(context):
    raise RuntimeError("the mail server is down")


def test_notify_failure_calls_the_configured_notifier(monkeypatch):
    from xport_airflow_provider import notifications

    CALLS.clear()
    monkeypatch.delenv("XPORT_FAILURE_NOTIFIER", raising=False)
    notifications.notify_failure({"task": "t"})  # nothing configured: nothing happens
    assert CALLS == []
    monkeypatch.setenv("XPORT_FAILURE_NOTIFIER", f"{__name__}:record")
    notifications.notify_failure({"task": "t"})
    assert CALLS == [{"task": "t"}]


def test_a_failing_notifier_never_masks_the_failure(monkeypatch, caplog):
    from xport_airflow_provider import notifications

    for spec in (f"{__name__}:explode", "no_such_module_xport:notify", "not-a-spec"):
        monkeypatch.setenv("XPORT_FAILURE_NOTIFIER", spec)
        with caplog.at_level(logging.ERROR, logger=notifications.__name__):
            notifications.notify_failure({})
        assert spec in caplog.text
        caplog.clear()
