"""First contact with the API, diagnosed: what ``xport-etl check`` and the hook's
``test_connection`` run.

One cheap signed request — page 1 of the Taobao order list with ``pageSize=1`` — answers most of
what can go wrong the first time the pipeline meets the real API. :func:`check_connection` sends
it and returns a :class:`~xport_etl.extract.diagnosis.Diagnosis`: one step per question (reachable,
clock skew, signature accepted, user-id accepted, envelope and paging, rate-limit headers; what
each looks at: :mod:`xport_etl.extract.diagnosis`), each with a status (``ok``, ``warn``, ``fail``
or ``skip``), what was seen and a hint saying what to change.

It is bounded: one request, one more after a pause if the gateway answers 429/5xx, one more with
the clock corrected when the clock is the reason for a refusal, and one per other shipped recipe
when the signature is refused — a handful at most, never the client's retry loop. It paces itself
with ``XPORT_RATE_LIMIT`` in-process and writes nothing. The secret is only an input to the
signer: no step, detail, hint or log line holds it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from xport_etl import jsonutil
from xport_etl.errors import RetriableError, XportError
from xport_etl.extract.auth import SIGN_RECIPES, SignRecipe, XportAuth, now_ms
from xport_etl.extract.diagnosis import (
    STEP_NAMES,
    Diagnosis,
    DiagnosisStep,
    Probe,
    read_rate_limit_headers,
    read_reachable,
    read_shape,
    read_skew,
    read_unreachable,
    read_user_id,
    skip_rest,
)
from xport_etl.extract.endpoints import endpoints_for
from xport_etl.extract.ratelimit import Limiter, RateLimiter
from xport_etl.extract.responses import classify, parse_retry_after
from xport_etl.extract.transport import http_client, request_capped
from xport_etl.settings import Settings
from xport_etl.streams.spec import EndpointSpec

__all__ = ["ENDPOINT", "check_connection"]

log = logging.getLogger(__name__)

RETRY_PAUSE_CAP_S = 5.0  # the longest the check waits before its one retry of a 429/5xx
ENDPOINT = "taobao_orders"  # the cheapest signed request: one record of the order list


class _Prober:
    """Sends the check's one request, signed with a given recipe and clock; counts requests."""

    def __init__(
        self,
        settings: Settings,
        endpoint: EndpointSpec,
        transport: httpx.BaseTransport | None,
        limiter: Limiter,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.limiter = limiter
        self.sent = 0
        self._http = http_client(settings, transport=transport, agent="check")

    def send(self, recipe: SignRecipe, clock: Callable[[], int]) -> Probe:
        s = self.settings
        auth = XportAuth(s.access_key, s.access_secret, s.user_id, clock=clock, recipe=recipe)
        paging = {"pageNo": 1, "pageSize": 1}
        kwargs: dict[str, Any] = {"auth": auth}
        if self.endpoint.pages_in_body:
            kwargs.update(content=jsonutil.dumps(paging).encode("utf-8"), headers={"Content-Type": "application/json"})
        else:
            kwargs["params"] = paging
        self.limiter.acquire()
        self.sent += 1
        probe = Probe(recipe, sent_ms=int(clock()))
        try:
            response = request_capped(
                self._http, self.settings.max_response_bytes, self.endpoint.method, self.endpoint.path, **kwargs
            )
        except XportError as exc:  # reached, but refused (too large, undecodable): a body saying so
            probe.received_ms = int(clock())
            request = self._http.build_request(self.endpoint.method, self.endpoint.path)
            probe.response = httpx.Response(exc.http_status or 200, content=str(exc).encode(), request=request)
            probe.outcome = exc
            return probe
        except httpx.HTTPError as exc:
            probe.error = exc
            probe.received_ms = int(clock())
            log.info("check: %s with recipe %s: %s", self.endpoint.path, recipe.name, type(exc).__name__)
            return probe
        probe.received_ms = int(clock())
        probe.response = response
        probe.outcome = classify(response, self.endpoint.name, assumptions=s.assumptions)
        log.info(
            "check: %s with recipe %s: HTTP %s, %s",
            self.endpoint.path,
            recipe.name,
            response.status_code,
            probe.kind,
        )
        return probe

    def close(self) -> None:
        self._http.close()


def check_connection(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], int] | None = None,
    limiter: Limiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Diagnosis:
    """Send the check's request and say, step by step, what works and what to change.

    Args:
        settings: the settings to check (base URL, credentials, user-id, signing recipe).
        transport: an httpx transport (``httpx.MockTransport`` in tests).
        clock: this machine's clock in epoch milliseconds, used both to sign and to measure the
            skew against the server's ``Date``; injectable to simulate a wrong clock.
        limiter: paces the requests; default an in-process limiter at ``settings.rate_limit``.
        sleep: how to wait before the one retry of a 429/5xx (injectable for tests).

    Returns:
        The report; it never raises for what the API answers (or fails to answer).
    """
    clock = clock or (lambda: now_ms())  # late-bound: tests may replace this module's now_ms
    endpoint = endpoints_for(settings.assumptions)[ENDPOINT]
    configured = settings.signer
    report = Diagnosis(
        base_url=settings.base_url,
        access_key=_short(settings.access_key),
        user_id=settings.user_id,
        recipe=configured.name,
    )
    prober = _Prober(settings, endpoint, transport, limiter or RateLimiter(settings.rate_limit or None))
    try:
        steps = _diagnose(settings, configured, prober, clock, sleep, report)
    finally:
        prober.close()
        report.requests = prober.sent
    report.steps = [steps.get(name) or DiagnosisStep(name, "skip", "not checked") for name in STEP_NAMES]
    return report


def _diagnose(
    settings: Settings,
    configured: SignRecipe,
    prober: _Prober,
    clock: Callable[[], int],
    sleep: Callable[[float], None],
    report: Diagnosis,
) -> dict[str, DiagnosisStep]:
    """Send the first request (and the few the answers call for); the steps by name."""
    endpoint = prober.endpoint
    steps: dict[str, DiagnosisStep] = {}
    first = prober.send(configured, clock)
    probes = [first]
    if first.kind in ("http", "malformed", "envelope") and isinstance(first.outcome, RetriableError):
        # a busy or failing gateway: one more try after a pause, not the client's retry loop
        assert first.response is not None
        retry_after = parse_retry_after(first.response.headers.get("retry-after"))
        sleep(min(RETRY_PAUSE_CAP_S, retry_after if retry_after is not None else 1.0))
        first = prober.send(configured, clock)
        probes.append(first)

    if first.response is None:
        assert first.error is not None
        steps["reachable"] = read_unreachable(first.error, settings)
        return skip_rest(steps, "not checked: the API was not reached")
    steps["reachable"] = read_reachable(first, settings)
    window_s = settings.assumptions.timestamp_window_s
    steps["clock skew"], report.skew_s = read_skew(first, window_s)
    if not steps["reachable"].ok:
        steps["rate-limit headers"] = read_rate_limit_headers(probes, settings)
        return skip_rest(steps, "not checked: the answer was not the API's")

    effective = first
    if first.kind == "refused":
        search_clock = clock
        clock_off = steps["clock skew"].status == "fail" and report.skew_s is not None
        if clock_off:
            assert report.skew_s is not None  # clock_off says so
            offset_ms = int(round(report.skew_s * 1000))
            search_clock = lambda: clock() + offset_ms  # noqa: E731
            again = prober.send(configured, search_clock)
            probes.append(again)
            if again.kind != "refused":
                effective = again
                steps["signature accepted"] = DiagnosisStep(
                    "signature accepted",
                    "fail",
                    f"refused ({first.server_msg or 'code 401'}); with the clock corrected by "
                    f"{report.skew_s:+.0f} s recipe {configured.name!r} is accepted",
                    "fix this machine's clock (see the clock skew step): the recipe and the credentials are right",
                )
        if "signature accepted" not in steps:
            steps["signature accepted"], working = _search_recipes(
                first, configured, prober, search_clock, probes, clock_off
            )
            if working is not None:
                report.working_recipe = working.recipe.name
                effective = working
    elif first.kind in ("accepted", "forbidden", "envelope"):
        passed = "" if first.kind != "envelope" else " (the request got past authentication)"
        steps["signature accepted"] = DiagnosisStep(
            "signature accepted", "ok", f"recipe {configured.name!r} accepted{passed}"
        )

    steps["user-id accepted"] = read_user_id(effective, settings)
    steps["envelope and paging"] = read_shape(effective, endpoint)
    steps["rate-limit headers"] = read_rate_limit_headers(probes, settings)
    return steps


_UNIT_NAMES = {"ms": "epoch-millisecond", "s": "epoch-second"}


def _recipe_setting(name: str) -> str:
    return f'set XPORT_SIGN_RECIPE={name} (Airflow Connection extra {{"sign_recipe": "{name}"}})'


def _search_recipes(
    first: Probe,
    configured: SignRecipe,
    prober: _Prober,
    clock: Callable[[], int],
    probes: list[Probe],
    clock_corrected: bool,
) -> tuple[DiagnosisStep, Probe | None]:
    refused = f"recipe {configured.name!r} refused ({first.server_msg or 'code 401'})"
    tried = [f"{configured.name} ({first.server_msg or 'code 401'})"]
    for recipe in SIGN_RECIPES.values():
        if recipe == configured:
            continue
        probe = prober.send(recipe, clock)
        probes.append(probe)
        tried.append(f"{recipe.name} ({probe.server_msg or probe.kind})")
        if probe.kind in ("accepted", "forbidden", "envelope"):
            unset = (
                "; unset XPORT_SIGN_TEMPLATE and XPORT_TIMESTAMP_UNIT (Connection extras sign_template, timestamp_unit)"
                if configured.name not in SIGN_RECIPES or configured != SIGN_RECIPES[configured.name]
                else ""
            )
            clock_note = " (with the clock corrected)" if clock_corrected else ""
            return DiagnosisStep(
                "signature accepted",
                "fail",
                f"{refused}; recipe {recipe.name!r} ({_UNIT_NAMES[recipe.timestamp_unit]} timestamps) "
                f"accepted{clock_note}",
                _recipe_setting(recipe.name) + unset,
            ), probe
        if probe.response is None:
            break  # the API went away mid-check: say what is known
    if clock_corrected:
        hint = (
            "fix this machine's clock first, then run the check again; if it still fails, "
            "check XPORT_ACCESS_SECRET (and XPORT_ACCESS_KEY)"
        )
    else:
        hint = "check XPORT_ACCESS_SECRET (and XPORT_ACCESS_KEY): with a wrong secret every recipe is refused"
    return DiagnosisStep(
        "signature accepted",
        "fail",
        f"refused with every shipped recipe: {', '.join(tried)}",
        hint,
    ), None


def _short(access_key: str) -> str:
    return access_key if len(access_key) <= 10 else f"{access_key[:4]}…{access_key[-4:]}"
