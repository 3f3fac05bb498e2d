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
    from xport_etl.load import publish
    from xport_etl.run.tasks import refresh_warehouse

    limits = []
    real = publish.connect_writer

    def spy(path, memory_limit=None):
        limits.append(memory_limit)
        return real(path, memory_limit)

    monkeypatch.setattr(publish, "connect_writer", spy)
    monkeypatch.delenv("XPORT_LOAD_MEMORY", raising=False)
    refresh_warehouse(Settings(data_dir=tmp_path, load_memory="300MB"))
    # (creating the schema of a fresh next state is not bounded: it always was not)
    assert set(limits) - {None} == {"300MB"}
    limits.clear()
    refresh_warehouse(Settings(data_dir=tmp_path))
    assert set(limits) - {None} == {publish.LOAD_MEMORY}


def _taobao_window(data_dir):
    from tests.factories.landed import land
    from tests.factories.served import order, page

    return land(data_dir, [page([order(id="1"), order(id="2")])])


def test_sql_normalizer_off_stages_with_python(tmp_path, monkeypatch):
    from xport_etl.load import staging
    from xport_etl.run import stage

    def no_sql(*args, **kwargs):
        raise AssertionError("the DuckDB normaliser ran")

    monkeypatch.setattr(staging, "_stage_sql", no_sql)
    monkeypatch.delenv("XPORT_SQL_NORMALIZER", raising=False)
    m = _taobao_window(tmp_path)
    settings = Settings(data_dir=tmp_path, sql_normalizer=False)
    _, (batch,) = stage.stage_windows(settings, [m.directory / "manifest.json"])
    assert batch.counts["orders"] == 2
    # a staging worker process gets the setting as an argument, not from the environment
    staging._worker_main(
        [
            str(tmp_path),
            json.dumps(_assumption_fields(), default=dict),
            json.dumps(stage._stage_options(settings)),
            str(m.directory),
        ]
    )
    with pytest.raises(AssertionError, match="DuckDB normaliser"):
        stage.stage_windows(Settings(data_dir=tmp_path), [m.directory / "manifest.json"])


def _assumption_fields():
    import dataclasses

    from xport_etl.extract.endpoints import ASSUMED

    fields = {f.name: getattr(ASSUMED, f.name) for f in dataclasses.fields(ASSUMED)}
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in fields.items()}


def test_stage_memory_and_workers_settings_reach_the_shared_staging(tmp_path, monkeypatch):
    from xport_etl.load import staging
    from xport_etl.run.stage import SqlStager

    limits = []
    real = staging.stage_connection

    def spy(tmp_dir, threads=None, memory_limit=None):
        limits.append(memory_limit)
        return real(tmp_dir, threads, memory_limit)

    monkeypatch.setattr(staging, "stage_connection", spy)
    m = _taobao_window(tmp_path)
    stager = SqlStager(Settings(data_dir=tmp_path, stage_memory="200MB", workers=1))
    try:
        assert stager._pool._max_workers == 1  # (capped at the cores)
        stager.submit("w", m)
        assert stager.result("w").counts["orders"] == 2
        assert stager._shared.con.execute("select current_setting('memory_limit')").fetchone()[0] == "190.7 MiB"
    finally:
        stager.close()
    assert limits == ["200MB"]


def test_workers_flag_reaches_settings(monkeypatch):
    from xport_etl.cli import build_parser
    from xport_etl.cliutil import pipeline_settings as _settings

    monkeypatch.delenv("XPORT_WORKERS", raising=False)
    assert _settings(build_parser().parse_args(["load", "--workers", "1"])).workers == 1
    assert _settings(build_parser().parse_args(["load"])).workers is None
    with pytest.raises(ConfigError, match="--workers must be a positive integer"):
        _settings(build_parser().parse_args(["load", "--workers", "0"]))


# --- one settings schema (issue 25.3): each setting declared once, everything else made from it


REAL_CREDENTIALS = {k: v for k, v in REAL.items() if k != "XPORT_BASE_URL"}


def _declared():
    from xport_etl.settings import SETTINGS

    return SETTINGS


def _sample(s, tmp_path) -> str:
    """A value of ``s`` other than its default, as a person types it."""
    if s.name == "assumptions":
        path = tmp_path / "assumptions.json"
        path.write_text('{"nonce_window_s": 300}')
        return str(path)
    if s.example is not None:
        return s.example
    choices = s.choice_values()
    if choices is not None:
        return next(c for c in choices if c != s.default)
    if s.value_type is bool:
        return "0" if s.default else "1"
    if s.value_type is int or s.value_type is float:
        value = s.high if s.high is not None else max(int(s.low or 1), 1) + 1
        return str(int(value) if s.value_type is int else float(value))
    return "sample-value"


def _expected(s, text: str):
    """What ``text`` becomes once read and normalised as the declaration says."""
    value = s.parse_text(text, s.named)
    return s.coerce(value) if s.coerce is not None else value


def _comparable(s, value):
    return value.nonce_window_s if s.name == "assumptions" else value


@pytest.mark.parametrize("name", [s.name for s in _declared() if s.env])
def test_every_setting_round_trips_from_its_variable(name, tmp_path):
    from xport_etl.settings import SETTING

    s = SETTING[name]
    text = _sample(s, tmp_path)
    settings = Settings.from_env({**REAL_CREDENTIALS, s.env: text})
    got = getattr(settings, name)
    assert _comparable(s, got) == _comparable(s, _expected(s, text)) != _comparable(s, s.default)


@pytest.mark.parametrize("name", [s.name for s in _declared() if s.is_extra])
def test_every_extra_round_trips_from_the_connection(name, tmp_path):
    from xport_etl.settings import SETTING, settings_from_connection

    s = SETTING[name]
    text = _sample(s, tmp_path)
    settings = settings_from_connection(
        DEFAULT_BASE_URL, "k" * 32, SECRET, {"user_id": "42", name: text} if name != "user_id" else {name: text}, {}
    )
    assert getattr(settings, name) == _expected(s, text) != s.default


def test_the_connection_fields_and_what_is_no_extra():
    from xport_etl.errors import ConfigError as Refused
    from xport_etl.settings import overrides_from_extras, settings_from_connection

    settings = settings_from_connection("https://www.xportcn.com/api/", "k" * 32, SECRET, {"user_id": "42"}, {})
    assert (settings.base_url, settings.access_key, settings.access_secret) == (
        "https://www.xportcn.com/api",
        "k" * 32,
        SECRET,
    )
    for name in ("base_url", "access_secret", "max_pages", "assumptions", "wokers"):
        with pytest.raises(Refused, match=f"unknown Connection extra '{name}'"):
            overrides_from_extras({name: "x"})


def _flagged_args(flag: str, value: str):
    """``xport-etl <the first command that takes flag> flag value``, parsed."""
    import argparse

    from xport_etl.cli import build_parser

    def commands(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from commands(sub, [*path, name])
        yield path, parser

    parser = build_parser()
    for path, sub in commands(parser, []):
        if path and any(flag in a.option_strings for a in sub._actions):
            try:
                return parser.parse_args([*path, flag, value])
            except SystemExit:  # a command with a required option of its own
                continue
    raise AssertionError(f"no command takes {flag} alone")


@pytest.mark.parametrize("name", [s.name for s in _declared() if s.flag])
def test_every_flag_round_trips_to_its_setting(name, tmp_path, monkeypatch):
    from xport_etl.cliutil import settings_from_args
    from xport_etl.settings import ENV_VARS, SETTING

    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    for var, value in REAL_CREDENTIALS.items():
        monkeypatch.setenv(var, value)
    s = SETTING[name]
    text = _sample(s, tmp_path)
    settings = settings_from_args(_flagged_args(s.flag, text))
    assert getattr(settings, name) == _expected(s, text) != s.default


def _too_big(s) -> str:
    return str(int(s.high) * 2 if s.value_type is int else float(s.high) * 2)


BOUNDED = [s.name for s in _declared() if s.high is not None and s.env]


@pytest.mark.parametrize("name", BOUNDED)
def test_bounds_are_refused_naming_what_was_set(name, monkeypatch):
    from xport_etl.cliutil import settings_from_args
    from xport_etl.settings import SETTING, settings_from_connection

    s = SETTING[name]
    most = f"must be at most {s.high:,}"
    with pytest.raises(ConfigError, match=f"^{s.env} {most}"):
        Settings.from_env({s.env: _too_big(s)})
    with pytest.raises(ConfigError, match=f"^Connection extra '{name}' {most}"):
        settings_from_connection(None, None, None, {name: _too_big(s)}, {})
    if s.flag:
        monkeypatch.delenv(s.env, raising=False)
        with pytest.raises(ConfigError, match=f"^{s.flag} {most}"):
            settings_from_args(_flagged_args(s.flag, _too_big(s)))
    below = "0" if s.low == 1 or s.above else "-1"
    with pytest.raises(ConfigError, match=f"^{s.env} must be "):
        Settings.from_env({s.env: below})


def test_every_number_a_person_sets_is_bounded_and_every_setting_is_explained():
    for s in _declared():
        assert s.help and not s.help.endswith("."), s.name  # the docs add the full stop
        if s.env and (s.value_type is int or s.value_type is float) and s.check is None:
            assert s.high is not None and s.low is not None, f"{s.name} has no bounds (nor a check)"
        if s.check is not None or s.parse is not None:
            assert s.accepts, f"{s.name} is checked by code: say what it accepts (accepts=)"


def test_the_settings_doc_is_current():
    from xport_etl.settings import SETTINGS_DOC, settings_markdown

    path = Path(__file__).resolve().parent.parent / SETTINGS_DOC
    assert path.read_text(encoding="utf-8") == settings_markdown(), (
        f"{SETTINGS_DOC} is not what the settings' declarations make: run `make docs` and commit it"
    )
    doc = path.read_text(encoding="utf-8")
    for s in _declared():
        assert (f"`{s.env}`" in doc) == (s.env is not None), s.name


def test_the_secret_is_declared_secret_and_never_shown():
    from xport_etl.settings import SETTING

    assert SETTING["access_secret"].secret and SETTING["access_secret"].flag is None
    s = Settings.from_env({**REAL, "XPORT_RATE_LIMIT_URL": "redis://:hunter2-pass@redis:6379/0"})
    assert "hunter2-pass" not in repr(s) and "hunter2-pass" not in str(s.redacted())
    assert s.redacted()["rate_limit_url"] == "redis://redis:6379/0"


def test_shown_defaults_are_the_pipelines_own():
    """Three defaults belong to the code that applies them when the setting is None; the
    declarations show them, and must say the same."""
    from xport_etl.load import publish, staging
    from xport_etl.run.lander import EXTRACT_WORKERS
    from xport_etl.settings import SETTING

    assert SETTING["stage_memory"].shown == staging.STAGE_MEMORY
    assert SETTING["load_memory"].shown == publish.LOAD_MEMORY
    assert SETTING["extract_workers"].shown == str(EXTRACT_WORKERS)


def test_one_report_time_zone_default():
    from xport_etl.report import docs, views
    from xport_etl.settings import DEFAULT_REPORT_TZ

    assert Settings().report_tz == DEFAULT_REPORT_TZ
    assert views.DEFAULT_REPORT_TZ is DEFAULT_REPORT_TZ and docs.DEFAULT_REPORT_TZ is DEFAULT_REPORT_TZ
    package = Path(__file__).resolve().parent.parent / "xport_etl"
    spelled = sorted(
        str(p.relative_to(package)) for p in package.rglob("*.py") if f'"{DEFAULT_REPORT_TZ}"' in p.read_text()
    )
    assert spelled == ["settings.py"]


def test_an_assumptions_file_with_the_old_rate_limit_says_where_it_went(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"rate_limit": 5}')
    with pytest.raises(ConfigError, match="the rate limit is the setting XPORT_RATE_LIMIT"):
        Settings.from_env({"XPORT_API_ASSUMPTIONS": str(path)})


def test_settings_and_the_rate_limiter_do_not_import_each_other():
    import ast

    package = Path(__file__).resolve().parent.parent / "xport_etl"
    tree = ast.parse((package / "settings.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "xport_etl.extract.ratelimit" not in imported
