"""``xport-etl check``: one cheap signed request that diagnoses first contact with the API.

Run against real loopback sandboxes configured with each shipped signing recipe: a client
configured rightly is all green; a client with the other recipe is told which recipe works and
how to set it; a wrong secret, a skewed clock, an unknown user-id and a closed port are each named
with a hint. Rarer shapes (DNS and TLS failures, rate-limit headers, an unexpected page shape)
come from an ``httpx.MockTransport``.
"""

from __future__ import annotations

import json
import re
import socket
import ssl

import httpx
import pytest

import xport_etl.extract.diagnose as check_module
from xport_etl.cli import main
from xport_etl.extract.auth import now_ms
from xport_etl.extract.diagnose import check_connection
from xport_etl.extract.diagnosis import STEP_NAMES
from xport_etl.settings import Settings
from xport_sandbox import DEFAULT_ACCESS_SECRET
from xport_sandbox.testing import SandboxServer
from xport_sandbox.world import WorldConfig

TINY = WorldConfig(seed=3, orders=30)
RECIPES = ("query", "concat")
OTHER = {"query": "concat", "concat": "query"}


@pytest.fixture(scope="module")
def sandboxes():
    with SandboxServer(TINY, sign_recipe="query") as q, SandboxServer(TINY, sign_recipe="concat") as c:
        yield {"query": q, "concat": c}


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    for var in (
        "XPORT_SIGN_RECIPE",
        "XPORT_SIGN_TEMPLATE",
        "XPORT_TIMESTAMP_UNIT",
        "XPORT_USER_ID",
        "XPORT_ACCESS_SECRET",
        "XPORT_ACCESS_KEY",
        "XPORT_BASE_URL",
        "XPORT_API_ASSUMPTIONS",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XPORT_TIMEOUT", "5")


def run(capsys, *argv):
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def lines_by_step(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        for name in STEP_NAMES:
            if f" {name} " in f"{line} " and name not in found:
                found[name] = line
    return found


def requests_served(server: SandboxServer) -> int:
    return server.stats()["requests"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_rightly_configured_client_is_all_green(sandboxes, capsys, monkeypatch, recipe):
    monkeypatch.setenv("XPORT_SIGN_RECIPE", recipe)
    before = requests_served(sandboxes[recipe])
    code, out, err = run(capsys, "--base-url", sandboxes[recipe].base_url)
    assert code == 0, out + err
    steps = lines_by_step(out)
    assert list(steps) == list(STEP_NAMES)
    for name in ("reachable", "clock skew", "signature accepted", "user-id accepted", "envelope and paging"):
        assert steps[name].lstrip().startswith("✓"), steps[name]
    assert "✗" not in out
    assert requests_served(sandboxes[recipe]) - before == 1  # one cheap request


@pytest.mark.parametrize("recipe", RECIPES)
def test_other_recipe_says_which_one_works_and_how_to_set_it(sandboxes, capsys, monkeypatch, recipe):
    server = sandboxes[recipe]
    before = requests_served(server)
    code, out, err = run(capsys, "--base-url", server.base_url, "--sign-recipe", OTHER[recipe])
    assert code == 3, out + err
    steps = lines_by_step(out)
    assert steps["reachable"].lstrip().startswith("✓")
    assert steps["signature accepted"].lstrip().startswith("✗")
    assert f"XPORT_SIGN_RECIPE={recipe}" in out
    assert f'{{"sign_recipe": "{recipe}"}}' in out
    # the rest was checked with the recipe that works
    assert steps["user-id accepted"].lstrip().startswith("✓")
    assert steps["envelope and paging"].lstrip().startswith("✓")
    assert requests_served(server) - before == 2  # bounded: the configured recipe, then the other
    assert err.startswith("error: ") and "hint: " in err


def test_the_result_names_the_working_recipe(sandboxes):
    settings = Settings(base_url=sandboxes["concat"].base_url, sign_recipe="query")
    report = check_connection(settings)
    assert not report.ok and report.exit_code == 3 and report.working_recipe == "concat"
    step = report.step("signature accepted")
    assert step.status == "fail" and "concat" in step.detail and "XPORT_SIGN_RECIPE=concat" in step.hint
    assert [s.name for s in report.steps] == list(STEP_NAMES)


def test_wrong_secret_fails_every_recipe_and_names_the_secret(sandboxes, capsys, monkeypatch):
    server = sandboxes["query"]
    monkeypatch.setenv("XPORT_ACCESS_SECRET", "not-the-secret-4d2")
    before = requests_served(server)
    code, out, err = run(capsys, "--base-url", server.base_url)
    assert code == 3
    assert lines_by_step(out)["signature accepted"].lstrip().startswith("✗")
    assert "check XPORT_ACCESS_SECRET" in out
    assert "not-the-secret-4d2" not in out + err and DEFAULT_ACCESS_SECRET not in out + err
    assert requests_served(server) - before == len(RECIPES)  # each shipped recipe once, no more


def test_skew_beyond_the_window_is_reported_with_a_hint(sandboxes):
    settings = Settings(base_url=sandboxes["query"].base_url)
    report = check_connection(settings, clock=lambda: now_ms() + 900_000)
    skew = report.step("clock skew")
    assert skew.status == "fail" and "ahead" in skew.detail
    # the Date header has whole seconds: the measure is good to about a second
    assert 898 <= int(re.search(r"(\d+) s ahead", skew.detail)[1]) <= 902
    assert -902 <= report.skew_s <= -898
    assert "NTP" in skew.hint and "600" in skew.hint
    assert report.exit_code == 3
    # the signature is not blamed: with the clock corrected the recipe is accepted
    sig = report.step("signature accepted")
    assert "clock" in (sig.detail + sig.hint)
    assert "XPORT_ACCESS_SECRET" not in sig.hint


def test_small_skew_is_a_warning_and_the_check_passes(sandboxes):
    settings = Settings(base_url=sandboxes["concat"].base_url, sign_recipe="concat")
    report = check_connection(settings, clock=lambda: now_ms() - 120_000)
    skew = report.step("clock skew")
    assert skew.status == "warn" and "behind" in skew.detail and "NTP" in skew.hint
    assert report.ok and report.exit_code == 0


def test_skewed_clock_through_the_cli(sandboxes, capsys, monkeypatch):
    monkeypatch.setattr(check_module, "now_ms", lambda: now_ms() - 700_000)
    code, out, _ = run(capsys, "--base-url", sandboxes["query"].base_url)
    assert code == 3
    assert lines_by_step(out)["clock skew"].lstrip().startswith("✗") and "behind" in out and "NTP" in out


def test_unknown_user_id_is_named(sandboxes, capsys):
    code, out, _ = run(
        capsys, "--base-url", sandboxes["concat"].base_url, "--sign-recipe", "concat", "--user-id", "4242"
    )
    assert code == 3
    steps = lines_by_step(out)
    assert steps["signature accepted"].lstrip().startswith("✓")
    assert steps["user-id accepted"].lstrip().startswith("✗") and "4242" in steps["user-id accepted"]
    assert "XPORT_USER_ID" in out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_is_a_connect_failure(capsys):
    code, out, err = run(capsys, "--base-url", f"http://127.0.0.1:{closed_port()}")
    assert code == 3
    steps = lines_by_step(out)
    assert steps["reachable"].lstrip().startswith("✗") and "refused" in steps["reachable"]
    assert all(steps[n].lstrip().startswith("–") for n in STEP_NAMES[1:])
    assert "Traceback" not in err


def test_json_format(sandboxes, capsys):
    code, out, _ = run(capsys, "--base-url", sandboxes["query"].base_url, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True and doc["exit_code"] == 0
    assert [s["name"] for s in doc["steps"]] == list(STEP_NAMES)
    assert set(doc["steps"][0]) >= {"name", "status", "ok", "detail", "hint"}


def test_bad_configuration_exits_2(capsys, monkeypatch):
    monkeypatch.setenv("XPORT_SIGN_RECIPE", "sha1")
    code, _, err = run(capsys)
    assert code == 2 and "XPORT_SIGN_RECIPE" in err


# -- rarer answers, from a mock transport ---------------------------------------------------------


def mock(handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def raising(exc: BaseException):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def connect_error(cause: BaseException) -> httpx.ConnectError:
    try:
        raise httpx.ConnectError(str(cause)) from cause
    except httpx.ConnectError as exc:
        return exc


REAL = dict(base_url="https://api.example.invalid/api", access_key="a" * 32, access_secret="s3cr3t-x", user_id="42")


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (connect_error(socket.gaierror(-2, "Name or service not known")), "DNS"),
        (connect_error(ssl.SSLCertVerificationError(1, "certificate verify failed")), "TLS"),
        (connect_error(ConnectionRefusedError(111, "Connection refused")), "refused"),
        (httpx.ConnectTimeout("timed out"), "timed out"),
    ],
)
def test_reachable_distinguishes_dns_tls_and_connect(exc, needle):
    report = check_connection(Settings(**REAL), transport=mock(raising(exc)))
    step = report.step("reachable")
    assert step.status == "fail" and needle in step.detail and step.hint
    assert report.exit_code == 3


def envelope(data, code=200, msg="成功"):
    return {"requestId": "r" * 32, "code": code, "developId": "1", "msg": msg, "data": data}


def page_data(records, total=1):
    return {"records": records, "total": total, "size": 1, "current": 1, "pages": total}


def test_rate_limit_headers_are_reported():
    def handler(request):
        return httpx.Response(
            200,
            json=envelope(page_data([{"id": "1"}], total=7)),
            headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9"},
        )

    report = check_connection(Settings(**REAL), transport=mock(handler))
    assert report.ok
    step = report.step("rate-limit headers")
    assert "X-RateLimit-Limit: 10" in step.detail and "X-RateLimit-Remaining: 9" in step.detail
    assert report.step("envelope and paging").status == "ok"


def test_a_page_shape_other_than_the_contract_is_named():
    def handler(request):
        return httpx.Response(200, json=envelope({"list": [{"id": "1"}], "count": 1}))

    report = check_connection(Settings(**REAL), transport=mock(handler))
    step = report.step("envelope and paging")
    assert step.status == "fail" and "records" in step.detail and "data.list" in step.detail
    assert report.exit_code == 3


def test_http_404_points_at_the_base_url():
    report = check_connection(Settings(**REAL), transport=mock(lambda r: httpx.Response(404, text="nope")))
    step = report.step("reachable")
    assert step.status == "fail" and "404" in step.detail and "XPORT_BASE_URL" in step.hint


def test_the_request_is_one_record_of_the_taobao_order_list():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json=envelope(page_data([{"id": "1"}])))

    check_connection(Settings(**REAL), transport=mock(handler))
    (request,) = seen
    assert request.method == "POST" and request.url.path == "/api/open/purchase/page"
    assert json.loads(request.content) == {"pageNo": 1, "pageSize": 1}
    assert "s3cr3t-x" not in str(request.headers) + str(request.url)


def test_a_busy_gateway_gets_one_more_try_after_a_pause_and_no_more():
    answers = iter(
        [
            httpx.Response(503, text="<html>busy</html>", headers={"Retry-After": "2"}),
            httpx.Response(200, json=envelope(page_data([{"id": "1"}]))),
        ]
    )
    sleeps = []
    report = check_connection(Settings(**REAL), transport=mock(lambda r: next(answers)), sleep=sleeps.append)
    assert report.ok and report.requests == 2 and sleeps == [2.0]

    sleeps.clear()
    throttled = httpx.Response(429, json={"code": 429, "msg": "Too Many Requests"}, headers={"Retry-After": "60"})
    report = check_connection(Settings(**REAL), transport=mock(lambda r: throttled), sleep=sleeps.append)
    assert report.requests == 2 and sleeps == [5.0]  # the pause is capped
    step = report.step("reachable")
    assert step.status == "fail" and "429" in step.detail and "later" in step.hint
    assert report.step("rate-limit headers").status == "warn"


def test_a_gateway_403_is_not_blamed_on_the_user_id():
    report = check_connection(Settings(**REAL), transport=mock(lambda r: httpx.Response(403, text="denied")))
    assert report.step("reachable").status == "fail" and "gateway" in report.step("reachable").hint
    assert report.step("user-id accepted").status == "skip"


def test_an_accepted_answer_without_a_data_object_is_a_failed_step_not_a_crash():
    def handler(request):
        return httpx.Response(200, json=envelope(None))

    report = check_connection(Settings(**REAL), transport=mock(handler))
    step = report.step("envelope and paging")
    assert step.status == "fail" and "data is NoneType, not an object" in step.detail
    assert report.exit_code == 3


@pytest.mark.parametrize("count", ["²", "٣", "1e9999999"])
def test_a_paging_count_that_is_not_ascii_digits_is_a_named_problem_not_a_crash(count):
    data = page_data([{"id": "1"}])
    data["total"] = count

    report = check_connection(Settings(**REAL), transport=mock(lambda r: httpx.Response(200, json=envelope(data))))
    step = report.step("envelope and paging")
    assert step.status == "fail" and "data.total is" in step.detail and "not an integer" in step.detail


def test_an_answer_over_the_size_cap_is_refused_and_named():
    body = json.dumps(envelope(page_data([{"id": "1"}]))).encode() + b" " * 5000
    settings = Settings(**REAL, max_response_bytes=4096)
    report = check_connection(settings, transport=mock(lambda r: httpx.Response(200, content=body)))
    step = report.step("reachable")
    assert step.status == "fail" and "XPORT_MAX_RESPONSE_BYTES=4,096" in step.detail
    assert report.exit_code == 3
