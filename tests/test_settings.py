"""Settings: environment, overrides, validation, no secret in reprs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xport_etl.errors import ConfigError
from xport_etl.settings import Settings
from xport_sandbox import DEFAULT_ACCESS_SECRET, DEFAULT_BASE_URL

SECRET = "s3cr3t-value-0123456789"
REAL = {
    "XPORT_BASE_URL": "https://www.xportcn.com/api/",
    "XPORT_ACCESS_KEY": "a" * 32,
    "XPORT_ACCESS_SECRET": SECRET,
    "XPORT_USER_ID": "42",
}


def test_defaults_point_at_sandbox():
    s = Settings.from_env({})
    assert s.base_url == DEFAULT_BASE_URL
    assert s.page_size == 100 and s.rate_limit == 10.0 and s.timeout == 30.0
    assert s.data_dir == Path("data")


def test_env_is_read_and_parsed():
    env = {
        **REAL,
        "XPORT_DATA_DIR": "/tmp/xp",
        "XPORT_REPORT_TZ": "Asia/Manila",
        "XPORT_RATE_LIMIT": "2.5",
        "XPORT_PAGE_SIZE": "50",
        "XPORT_TIMEOUT": "5",
    }
    s = Settings.from_env(env)
    assert s.base_url == "https://www.xportcn.com/api"  # trailing slash dropped
    assert s.access_secret == SECRET
    assert s.user_id == "42"
    assert s.data_dir == Path("/tmp/xp")
    assert s.report_tz == "Asia/Manila"
    assert s.rate_limit == 2.5 and s.page_size == 50 and s.timeout == 5.0


def test_overrides_win_and_none_overrides_are_ignored():
    s = Settings.from_env({**REAL, "XPORT_PAGE_SIZE": "50"}, page_size=20, user_id=None)
    assert s.page_size == 20
    assert s.user_id == "42"


def test_empty_env_values_are_ignored():
    assert Settings.from_env({"XPORT_PAGE_SIZE": ""}).page_size == 100


def test_unknown_override_rejected():
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_env({}, nope=1)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"XPORT_REPORT_TZ": "Mars/Olympus"}, "time zone"),
        ({"XPORT_PAGE_SIZE": "101"}, "1..100"),
        ({"XPORT_PAGE_SIZE": "0"}, "1..100"),
        ({"XPORT_PAGE_SIZE": "ten"}, "integer"),
        ({"XPORT_RATE_LIMIT": "-1"}, "RATE_LIMIT"),
        ({"XPORT_TIMEOUT": "0"}, "TIMEOUT"),
        ({"XPORT_BASE_URL": "ftp://x"}, "http"),
        ({"XPORT_BASE_URL": "https://www.xportcn.com/api"}, "XPORT_ACCESS_KEY"),
    ],
)
def test_validation_errors_are_one_line(env, match):
    with pytest.raises(ConfigError, match=match) as info:
        Settings.from_env(env)
    assert "\n" not in str(info.value)


def test_real_url_needs_all_three_credentials():
    env = dict(REAL)
    del env["XPORT_USER_ID"]
    with pytest.raises(ConfigError, match="XPORT_USER_ID"):
        Settings.from_env(env)


def test_unlimited_rate():
    assert Settings.from_env({"XPORT_RATE_LIMIT": "0"}).rate_limit == 0


def test_secret_never_shown():
    s = Settings.from_env(REAL)
    assert SECRET not in repr(s)
    assert SECRET not in str(s)
    assert SECRET not in str(s.redacted())
    assert s.redacted()["access_secret"] == "***"
    assert DEFAULT_ACCESS_SECRET not in repr(Settings())


def test_frozen():
    s = Settings()
    with pytest.raises(AttributeError):
        s.page_size = 5  # type: ignore[misc]


def test_sign_recipe_settings_from_env_and_validated():
    s = Settings.from_env({})
    assert s.sign_recipe == "query" and s.sign_template is None and s.timestamp_unit is None
    assert s.signer.name == "query" and s.signer.timestamp_unit == "ms"
    s = Settings.from_env({"XPORT_SIGN_RECIPE": "concat"})
    assert s.signer.name == "concat" and s.signer.timestamp_unit == "s"
    s = Settings.from_env(
        {"XPORT_SIGN_TEMPLATE": "{timestamp}{nonce}{access_key}{secret}", "XPORT_TIMESTAMP_UNIT": "s"}
    )
    assert s.signer.name == "custom" and s.signer.timestamp_unit == "s"
    with pytest.raises(ConfigError, match="XPORT_SIGN_RECIPE"):
        Settings.from_env({"XPORT_SIGN_RECIPE": "sha1"})
    with pytest.raises(ConfigError, match="XPORT_SIGN_TEMPLATE"):
        Settings.from_env({"XPORT_SIGN_TEMPLATE": "{access_key}{nonce}{timestamp}"})


# --- one configuration path (issue 16): every knob a field, the environment read in one module


def test_only_settings_reads_the_environment():
    import re

    package = Path(__file__).resolve().parent.parent / "xport_etl"
    reads = re.compile(r"\bos\.(environ|getenv)\b|\bfrom os import [^\n]*\b(environ|getenv)\b")
    readers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if reads.search(p.read_text()))
    assert readers == ["settings.py"]


@pytest.mark.parametrize(
    ("raw", "value"), [("0", False), ("false", False), ("FALSE", False), ("1", True), ("true", True)]
)
def test_sql_normalizer_from_env(raw, value):
    assert Settings.from_env({"XPORT_SQL_NORMALIZER": raw}).sql_normalizer is value
    assert Settings.from_env({}).sql_normalizer is True


def test_new_fields_are_validated_and_reach_the_connection_extras():
    from xport_etl.settings import ENV_VARS, overrides_from_extras

    assert Settings.from_env({"XPORT_FRESHNESS_HOURS": "12.5"}).freshness_hours == 12.5
    assert Settings().freshness_hours == 26
    with pytest.raises(ConfigError, match="XPORT_SQL_NORMALIZER must be 0, 1, false or true"):
        Settings.from_env({"XPORT_SQL_NORMALIZER": "maybe"})
    with pytest.raises(ConfigError, match="XPORT_SQL_NORMALIZER"):
        Settings(sql_normalizer="no")
    with pytest.raises(ConfigError, match="XPORT_FRESHNESS_HOURS must be > 0"):
        Settings.from_env({"XPORT_FRESHNESS_HOURS": "0"})
    with pytest.raises(ConfigError, match="XPORT_FRESHNESS_HOURS must be a finite number"):
        Settings.from_env({"XPORT_FRESHNESS_HOURS": "a day"})
    assert {"sql_normalizer", "freshness_hours"} <= set(ENV_VARS)
    extras = overrides_from_extras({"sql_normalizer": False, "freshness_hours": 48, "workers": 2})
    assert extras == {"sql_normalizer": False, "freshness_hours": 48.0, "workers": 2}
    assert Settings.from_env({}, **extras).sql_normalizer is False


def test_load_memory_setting_reaches_the_publishing_connection(tmp_path, monkeypatch):
    from xport_etl import run
    from xport_etl.load import publish

    limits = []
    real = publish.connect_writer

    def spy(path, memory_limit=None):
        limits.append(memory_limit)
        return real(path, memory_limit)

    monkeypatch.setattr(publish, "connect_writer", spy)
    monkeypatch.delenv("XPORT_LOAD_MEMORY", raising=False)
    run.refresh_warehouse(Settings(data_dir=tmp_path, load_memory="300MB"))
    # (creating the schema of a fresh next state is not bounded: it always was not)
    assert set(limits) - {None} == {"300MB"}
    limits.clear()
    run.refresh_warehouse(Settings(data_dir=tmp_path))
    assert set(limits) - {None} == {publish.LOAD_MEMORY}


def _taobao_window(data_dir):
    from tests.test_load import land
    from tests.test_normalize import order, page

    return land(data_dir, [page([order(id="1"), order(id="2")])])


def test_sql_normalizer_off_stages_with_python(tmp_path, monkeypatch):
    from xport_etl import run
    from xport_etl.load import staging

    def no_sql(*args, **kwargs):
        raise AssertionError("the DuckDB normaliser ran")

    monkeypatch.setattr(staging, "_stage_sql", no_sql)
    monkeypatch.delenv("XPORT_SQL_NORMALIZER", raising=False)
    m = _taobao_window(tmp_path)
    settings = Settings(data_dir=tmp_path, sql_normalizer=False)
    _, (batch,) = run.stage_windows(settings, [m.directory / "manifest.json"])
    assert batch.counts["orders"] == 2
    # a staging worker process gets the setting as an argument, not from the environment
    staging._worker_main(
        [
            str(tmp_path),
            json.dumps(_assumption_fields(), default=dict),
            json.dumps(run._stage_options(settings)),
            str(m.directory),
        ]
    )
    with pytest.raises(AssertionError, match="DuckDB normaliser"):
        run.stage_windows(Settings(data_dir=tmp_path), [m.directory / "manifest.json"])


def _assumption_fields():
    import dataclasses

    from xport_etl.extract.endpoints import ASSUMED

    fields = {f.name: getattr(ASSUMED, f.name) for f in dataclasses.fields(ASSUMED)}
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in fields.items()}


def test_stage_memory_and_workers_settings_reach_the_shared_staging(tmp_path, monkeypatch):
    from xport_etl import run
    from xport_etl.load import staging

    limits = []
    real = staging.stage_connection

    def spy(tmp_dir, threads=None, memory_limit=None):
        limits.append(memory_limit)
        return real(tmp_dir, threads, memory_limit)

    monkeypatch.setattr(staging, "stage_connection", spy)
    m = _taobao_window(tmp_path)
    stager = run.SqlStager(Settings(data_dir=tmp_path, stage_memory="200MB", workers=1))
    try:
        assert stager._pool._max_workers == 1  # (capped at the cores)
        stager.submit("w", m)
        assert stager.result("w").counts["orders"] == 2
        assert stager._shared.con.execute("select current_setting('memory_limit')").fetchone()[0] == "190.7 MiB"
    finally:
        stager.close()
    assert limits == ["200MB"]


def test_workers_flag_reaches_settings(monkeypatch):
    from xport_etl.cli import _settings, build_parser

    monkeypatch.delenv("XPORT_WORKERS", raising=False)
    assert _settings(build_parser().parse_args(["load", "--workers", "1"])).workers == 1
    assert _settings(build_parser().parse_args(["load"])).workers is None
    with pytest.raises(ConfigError, match="--workers must be a positive integer"):
        _settings(build_parser().parse_args(["load", "--workers", "0"]))
