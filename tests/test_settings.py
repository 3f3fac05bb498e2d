"""Settings: environment, overrides, validation, no secret in reprs."""

from __future__ import annotations

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
    s = Settings.from_env({"XPORT_SIGN_TEMPLATE": "{timestamp}{nonce}{access_key}{secret}",
                           "XPORT_TIMESTAMP_UNIT": "s"})
    assert s.signer.name == "custom" and s.signer.timestamp_unit == "s"
    with pytest.raises(ConfigError, match="XPORT_SIGN_RECIPE"):
        Settings.from_env({"XPORT_SIGN_RECIPE": "sha1"})
    with pytest.raises(ConfigError, match="XPORT_SIGN_TEMPLATE"):
        Settings.from_env({"XPORT_SIGN_TEMPLATE": "{access_key}{nonce}{timestamp}"})
