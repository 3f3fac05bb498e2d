"""What ``xport-etl check``'s answers say: each step of the diagnosis read from the requests it
sent (:class:`Probe`), and the report (:class:`Diagnosis`) the command prints and the Airflow
hook's "Test connection" shows. :mod:`xport_etl.extract.diagnose` decides which requests to send.

==================  ===============================================================================
step                what it looks at
==================  ===============================================================================
reachable           DNS, TLS and the TCP connection (told apart from the httpx exception); an
                    HTTP error page or a body that is not the API's JSON envelope
clock skew          the response's ``Date`` header against this machine's clock: a warning beyond
                    :data:`SKEW_WARN_S`, a failure beyond the API's timestamp window (600 s)
signature accepted  envelope 401 with the configured recipe: every other shipped recipe is tried
                    once, and the one accepted is named with the setting that selects it; when
                    none is, the secret is the likely culprit
user-id accepted    envelope 403: the ``user-id`` may not list orders
envelope and        ``code``, ``data.records`` a list, ``total``/``size``/``current``/``pages``
paging              integers that agree with each other and with the one-record request
rate-limit headers  ``X-RateLimit-*``, ``RateLimit-*`` and ``Retry-After`` if the server sends any
==================  ===============================================================================

No step, detail, hint or log line holds the secret: it is only an input to the signer.
"""

from __future__ import annotations

import email.utils
import json
import socket
import ssl
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from xport_etl.errors import AuthenticationError, RetriableError, XportError
from xport_etl.extract.auth import SignRecipe
from xport_etl.extract.responses import ApiResponse, loads_json, parse_retry_after, shown
from xport_etl.numbers import ascii_int
from xport_etl.settings import Settings
from xport_etl.streams.spec import EndpointSpec

__all__ = ["SKEW_WARN_S", "STEP_NAMES", "Diagnosis", "DiagnosisStep", "Probe", "format_json"]

STEP_NAMES = (
    "reachable",
    "clock skew",
    "signature accepted",
    "user-id accepted",
    "envelope and paging",
    "rate-limit headers",
)
STATUSES = ("ok", "warn", "fail", "skip")
SKEW_WARN_S = 60.0  # beyond this the clock is worth fixing before it drifts out of the window
SYMBOLS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "–"}
ASCII_SYMBOLS = {"ok": "+", "warn": "!", "fail": "x", "skip": "-"}


@dataclass(frozen=True)
class DiagnosisStep:
    """One question of the check and its answer.

    Attributes:
        name: one of :data:`STEP_NAMES`.
        status: ``"ok"``, ``"warn"`` (works, but worth a look), ``"fail"`` or ``"skip"`` (not
            checked because an earlier step failed).
        detail: what was seen, in one line.
        hint: what to change (empty when there is nothing to do).
    """

    name: str
    status: str
    detail: str
    hint: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        """False only for a failed step (a warning or a skipped step is not a failure)."""
        return self.status != "fail"


@dataclass
class Diagnosis:
    """What :func:`check_connection` found.

    Attributes:
        base_url: the API base URL checked.
        access_key: the AccessKey, shortened for display.
        user_id: the ``user-id`` sent.
        recipe: the configured signing recipe's name.
        steps: one :class:`DiagnosisStep` per name of :data:`STEP_NAMES`, in that order.
        working_recipe: the shipped recipe the server accepted when the configured one was
            refused, else None.
        skew_s: server clock minus this machine's clock in seconds, if the server sent ``Date``.
        requests: how many requests the check sent.
    """

    base_url: str
    access_key: str
    user_id: str
    recipe: str
    steps: list[DiagnosisStep] = field(default_factory=list)
    working_recipe: str | None = None
    skew_s: float | None = None
    requests: int = 0

    @property
    def ok(self) -> bool:
        """True when no step failed."""
        return all(step.ok for step in self.steps)

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 all good, 3 the API refused or could not be reached."""
        return 0 if self.ok else 3

    @property
    def failed(self) -> list[DiagnosisStep]:
        return [step for step in self.steps if step.status == "fail"]

    def step(self, name: str) -> DiagnosisStep:
        """The step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``--format json``)."""
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "base_url": self.base_url,
            "access_key": self.access_key,
            "user_id": self.user_id,
            "recipe": self.recipe,
            "working_recipe": self.working_recipe,
            "skew_s": None if self.skew_s is None else round(self.skew_s, 1),
            "requests": self.requests,
            "steps": [{**asdict(step), "ok": step.ok} for step in self.steps],
        }

    def format_text(self, *, unicode: bool = True) -> str:
        """One line per step with its status symbol, its hint indented below it."""
        symbols = SYMBOLS if unicode else ASCII_SYMBOLS
        width = max(len(name) for name in STEP_NAMES)
        lines = [
            f"xport-etl check: {self.base_url} as access-key {self.access_key}, "
            f"user-id {self.user_id}, signing recipe {self.recipe}"
        ]
        for step in self.steps:
            lines.append(f"{symbols[step.status]} {step.name:<{width}}  {step.detail}")
            if step.hint:
                lines.append(f"  {'':<{width}}  hint: {step.hint}")
        lines.append(self.headline())
        return "\n".join(lines)

    def headline(self) -> str:
        """``all checks passed`` or which checks failed, in one line."""
        if self.ok:
            warned = [s.name for s in self.steps if s.status == "warn"]
            return "all checks passed" + (f" (look at: {', '.join(warned)})" if warned else "")
        names = [s.name for s in self.failed]
        return f"{len(names)} check{'s' if len(names) > 1 else ''} failed: {', '.join(names)}"

    def summary(self) -> str:
        """A short message for Airflow's "Test connection": the failures with their hints, or
        what was checked."""
        if self.ok:
            parts = [f"{s.name}: {s.detail}" for s in self.steps if s.status in ("ok", "warn")]
            return f"Xportcn API at {self.base_url}: {self.headline()}. " + "; ".join(parts)
        parts = [f"{s.name}: {s.detail}" + (f" (hint: {s.hint})" if s.hint else "") for s in self.failed]
        return f"Xportcn API at {self.base_url}: {self.headline()}. " + "; ".join(parts)


@dataclass
class Probe:
    """One request of the check and what came back."""

    recipe: SignRecipe
    response: httpx.Response | None = None
    outcome: ApiResponse | XportError | None = None
    error: httpx.HTTPError | None = None
    sent_ms: int = 0
    received_ms: int = 0

    @property
    def envelope(self) -> dict | None:
        """The parsed JSON envelope of an HTTP 2xx answer, else None."""
        if self.response is None or not 200 <= self.response.status_code < 300:
            return None
        try:
            body = loads_json(self.response.content)
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) and "code" in body else None

    @property
    def kind(self) -> str:
        """``error`` (no answer), ``accepted``, ``refused`` (401), ``forbidden`` (envelope 403),
        ``envelope`` (another envelope code), ``malformed`` (2xx, no envelope) or ``http``."""
        if self.response is None:
            return "error"
        if isinstance(self.outcome, ApiResponse):
            return "accepted"
        status = self.response.status_code
        envelope = self.envelope
        code = self.outcome.code if isinstance(self.outcome, XportError) else None
        if isinstance(self.outcome, AuthenticationError) and (envelope is not None or status == 401):
            return "forbidden" if code == 403 and envelope is not None else "refused"
        if envelope is not None:
            return "envelope"
        return "malformed" if 200 <= status < 300 else "http"

    @property
    def server_msg(self) -> str:
        envelope = self.envelope
        return str(envelope.get("msg") or "") if envelope else ""

    @property
    def elapsed_ms(self) -> int:
        return max(0, self.received_ms - self.sent_ms)


# ---- each step, read from the answers


def skip_rest(steps: dict[str, DiagnosisStep], why: str) -> dict[str, DiagnosisStep]:
    for name in STEP_NAMES:
        steps.setdefault(name, DiagnosisStep(name, "skip", why))
    return steps


def _where(settings: Settings) -> tuple[str, int]:
    parts = urlsplit(settings.base_url)
    return parts.hostname or "?", parts.port or (443 if parts.scheme == "https" else 80)


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(out) < 10:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


def read_unreachable(exc: httpx.HTTPError, settings: Settings) -> DiagnosisStep:
    host, port = _where(settings)
    chain = _causes(exc)

    def find(kind: type[BaseException]) -> BaseException | None:
        return next((c for c in chain if isinstance(c, kind)), None)

    if (gai := find(socket.gaierror)) is not None:
        return DiagnosisStep(
            "reachable",
            "fail",
            f"DNS: cannot resolve {host} ({gai})",
            "check the host name in XPORT_BASE_URL, and this machine's DNS or proxy settings (HTTPS_PROXY)",
        )
    if (cert := find(ssl.SSLCertVerificationError)) is not None:
        reason = getattr(cert, "verify_message", None) or str(cert)
        return DiagnosisStep(
            "reachable",
            "fail",
            f"TLS: the certificate of {host} is not trusted ({reason})",
            "a proxy that intercepts TLS needs its CA in SSL_CERT_FILE; otherwise check the "
            "system's CA certificates and this machine's date",
        )
    if (tls := find(ssl.SSLError)) is not None:
        return DiagnosisStep(
            "reachable",
            "fail",
            f"TLS: the handshake with {host}:{port} failed ({tls})",
            "does that port speak TLS? check http:// against https:// in XPORT_BASE_URL",
        )
    if find(ConnectionRefusedError) is not None:
        return DiagnosisStep(
            "reachable",
            "fail",
            f"connect: {host}:{port} refused the connection",
            "nothing listens there: check the host and port in XPORT_BASE_URL "
            "(`xport-sandbox serve` serves a local API on 127.0.0.1:8765)",
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return DiagnosisStep(
            "reachable",
            "fail",
            f"connect: no answer from {host}:{port} within {settings.timeout:g} s (timed out)",
            "a firewall or proxy may drop the traffic: check outbound access to that host and "
            "port (HTTPS_PROXY if this machine needs a proxy)",
        )
    if isinstance(exc, httpx.TimeoutException):
        return DiagnosisStep(
            "reachable",
            "fail",
            f"connected to {host}:{port}, but no answer within {settings.timeout:g} s (timed out)",
            "the API is slow or stuck: try again later, or raise XPORT_TIMEOUT",
        )
    if isinstance(exc, httpx.ConnectError | httpx.NetworkError):
        return DiagnosisStep(
            "reachable",
            "fail",
            f"connect: {host}:{port}: {exc}",
            "check the host and port in XPORT_BASE_URL and this machine's network access",
        )
    return DiagnosisStep(
        "reachable",
        "fail",
        f"{type(exc).__name__} talking to {host}:{port}: {exc}",
        "check XPORT_BASE_URL (scheme, host, port, path)",
    )


def read_reachable(probe: Probe, settings: Settings) -> DiagnosisStep:
    assert probe.response is not None
    host, port = _where(settings)
    status = probe.response.status_code
    over = " over TLS" if settings.base_url.startswith("https:") else ""
    seen = f"connected to {host}:{port}{over}; HTTP {status} in {probe.elapsed_ms} ms"
    kind = probe.kind
    if kind in ("accepted", "refused", "forbidden", "envelope"):
        return DiagnosisStep("reachable", "ok", seen)
    body = " ".join(probe.response.content[:120].decode("utf-8", "replace").split())
    if kind == "malformed":
        return DiagnosisStep(
            "reachable",
            "fail",
            f"{seen}, but the body is not the API's JSON envelope: {body!r}",
            "check XPORT_BASE_URL: it should be the OpenAPI's base, e.g. https://www.xportcn.com/api",
        )
    if status == 404:
        hint = (
            "check the path in XPORT_BASE_URL: it should be the OpenAPI's base, e.g. "
            "https://www.xportcn.com/api (the check asks for <base>" + _probe_path(probe) + ")"
        )
    elif status in (301, 302, 303, 307, 308):
        location = probe.response.headers.get("location", "?")
        hint = f"the server redirects to {location}: put that base in XPORT_BASE_URL"
    elif status == 403:
        hint = "a gateway or firewall refused the request before the API saw it: is this machine's address allowed?"
    elif status == 429 or status >= 500:
        hint = "the API or a gateway in front of it is busy or failing: run the check again later"
    else:
        hint = "check XPORT_BASE_URL"
    return DiagnosisStep("reachable", "fail", f"{seen} from the server or a gateway: {body!r}", hint)


def _probe_path(probe: Probe) -> str:
    response = probe.response
    return response.request.url.path if response is not None else ""


def read_skew(probe: Probe, window_s: int) -> tuple[DiagnosisStep, float | None]:
    assert probe.response is not None
    date = probe.response.headers.get("date")
    when = None
    if date:
        try:
            when = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            when = None
    if when is None or when.tzinfo is None:
        return DiagnosisStep("clock skew", "skip", "not measured: the server sent no usable Date header"), None
    # Date has whole seconds: the server's time was somewhere in [Date, Date + 1 s)
    server_ms = when.timestamp() * 1000 + 500
    local_ms = (probe.sent_ms + probe.received_ms) / 2
    skew = (server_ms - local_ms) / 1000
    size = abs(skew)
    if size < 2:
        return DiagnosisStep("clock skew", "ok", "in step with the server (within about 1 s, by its Date header)"), skew
    direction = "behind" if skew > 0 else "ahead of"
    detail = f"this machine's clock is {size:.0f} s {direction} the server's (by its Date header)"
    fix = "sync this machine's clock (NTP, e.g. `timedatectl set-ntp true` or chrony)"
    if size <= SKEW_WARN_S:
        return DiagnosisStep("clock skew", "ok", detail), skew
    if size <= window_s:
        return DiagnosisStep(
            "clock skew",
            "warn",
            detail,
            f"{fix}: the API refuses a timestamp more than {window_s} s off",
        ), skew
    return DiagnosisStep(
        "clock skew",
        "fail",
        detail,
        f"{fix}: the API refuses a timestamp more than {window_s} s off, so every request fails",
    ), skew


def read_user_id(probe: Probe, settings: Settings) -> DiagnosisStep:
    kind = probe.kind
    if kind == "forbidden":
        return DiagnosisStep(
            "user-id accepted",
            "fail",
            f"user-id {settings.user_id} refused ({probe.server_msg or 'code 403'})",
            "check XPORT_USER_ID (Airflow Connection extra user_id): the (sub-)account id, digits, "
            "that this access key may act for",
        )
    if kind in ("accepted", "envelope"):
        return DiagnosisStep("user-id accepted", "ok", f"user-id {settings.user_id} may list Taobao orders")
    return DiagnosisStep("user-id accepted", "skip", "not checked: the signature was refused")


def read_shape(probe: Probe, endpoint: EndpointSpec) -> DiagnosisStep:
    kind = probe.kind
    name = "envelope and paging"
    if kind == "forbidden":
        return DiagnosisStep(name, "skip", "not checked: the user-id was refused")
    if kind == "envelope":
        answer = probe.envelope or {}
        code = answer.get("code")
        msg = answer.get("msg") or ""
        if code == 400:
            hint = (
                "the one-record request (pageNo=1, pageSize=1) was refused as a bad parameter: "
                "the API may name or place its page parameters differently"
            )
        elif isinstance(probe.outcome, RetriableError):
            hint = "the API is busy or failing: run the check again later"
        else:
            hint = "an envelope code the pipeline does not expect for a list request"
        return DiagnosisStep(name, "fail", f"envelope code {code}: {msg}", hint)
    if kind == "refused":
        return DiagnosisStep(name, "skip", "not checked: the signature was refused")
    if kind != "accepted":
        return DiagnosisStep(name, "skip", "not checked: no accepted answer")
    envelope = probe.envelope
    if envelope is None:  # classify accepted it, so this cannot happen; say so if it does
        return DiagnosisStep(name, "fail", "the accepted answer could not be parsed again")
    problems, notes = _shape_problems(envelope, endpoint)
    hint = (
        "the page shape differs from the one the pipeline assumes "
        "(data.records, total, size, current, pages): see docs/signing-and-first-contact.md"
    )
    if problems:
        return DiagnosisStep(name, "fail", "; ".join(problems), hint)
    # no problems: data is an object (_shape_problems reports any other data as a problem)
    seen = _shape_seen(envelope, envelope["data"], endpoint)
    if notes:
        return DiagnosisStep(name, "warn", f"{seen}; " + "; ".join(notes), "")
    return DiagnosisStep(name, "ok", seen)


def _shape_seen(envelope: dict, data: dict, endpoint: EndpointSpec) -> str:
    records = _at(data, endpoint.records_path)
    n = len(records) if isinstance(records, list) else 0
    where = ".".join(("data", *endpoint.records_path))
    return (
        f"code {envelope.get('code')}, {where}: {n} record{'s' if n != 1 else ''}, "
        f"total {data.get('total')}, size {data.get('size')}, current {data.get('current')}, "
        f"pages {data.get('pages')}"
    )


def _at(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _shape_problems(envelope: dict, endpoint: EndpointSpec) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    notes: list[str] = []
    if not isinstance(envelope.get("code"), int) or isinstance(envelope.get("code"), bool):
        notes.append(f"code is {type(envelope.get('code')).__name__}, not a number")
    if not envelope.get("requestId"):
        notes.append("no requestId in the envelope (errors will carry none)")
    data = envelope.get("data")
    if not isinstance(data, dict):
        return [f"data is {type(data).__name__}, not an object"], notes
    where = ".".join(("data", *endpoint.records_path))
    records = _at(data, endpoint.records_path)
    if not isinstance(records, list):
        lists = [f"data.{k}" for k, v in data.items() if isinstance(v, list)]
        found = f" (lists found at: {', '.join(lists)})" if lists else ""
        problems.append(f"{where} is {'missing' if records is None else type(records).__name__}, not a list{found}")
    numbers: dict[str, int] = {}
    for key in ("total", "size", "current", "pages"):
        value = data.get(key)
        number = ascii_int(value)
        if number is not None and isinstance(value, int | str) and not isinstance(value, bool):
            numbers[key] = number
            if isinstance(value, str):
                notes.append(f"data.{key} is a string")
        else:
            what = "missing" if value is None else shown(value)
            problems.append(f"data.{key} is {what}, not an integer")
    if len(numbers) == 4:
        total, size, current, pages = (numbers[k] for k in ("total", "size", "current", "pages"))
        if size != 1:
            problems.append(f"data.size is {size} for pageSize=1 (is pageSize read?)")
        if current != 1:
            problems.append(f"data.current is {current} for pageNo=1 (is pageNo read?)")
        if size > 0 and pages != -(-total // size):
            problems.append(f"data.pages is {pages}, but total {total} / size {size} makes {-(-total // size)}")
        if isinstance(records, list) and len(records) != min(total, 1):
            problems.append(f"{len(records)} records for pageSize=1 with total {total}")
        if total == 0:
            notes.append("no orders visible to this user-id yet, so no record's shape was seen")
    if isinstance(records, list) and records:
        record = records[0]
        if not isinstance(record, dict):
            problems.append(f"a record is {type(record).__name__}, not an object")
        else:
            missing = [k for k in endpoint.primary_key if k not in record]
            if missing:
                problems.append(f"the record has no {', '.join(missing)} (its key)")
    return problems, notes


def read_rate_limit_headers(probes: list[Probe], settings: Settings) -> DiagnosisStep:
    name = "rate-limit headers"
    answered = [p for p in probes if p.response is not None]
    if not answered:
        return DiagnosisStep(name, "skip", "not checked: no answer")
    seen: dict[str, str] = {}
    throttled = False
    for probe in answered:
        assert probe.response is not None
        for raw_key, raw_value in probe.response.headers.raw:
            key = raw_key.decode("latin-1")
            lower = key.lower()
            if lower.startswith(("x-ratelimit", "ratelimit")) or lower == "retry-after":
                seen[key] = raw_value.decode("latin-1")
        if probe.response.status_code == 429 or (probe.envelope or {}).get("code") == 429:
            throttled = True
    pace = f"{settings.rate_limit:g}/s" if settings.rate_limit else "unlimited"
    shown = ", ".join(f"{k}: {v}" for k, v in seen.items())
    if throttled:
        retry_after = next((parse_retry_after(v) for k, v in seen.items() if k.lower() == "retry-after"), None)
        wait = f", Retry-After {retry_after:g} s" if retry_after is not None else ""
        return DiagnosisStep(
            name,
            "warn",
            f"the check itself was throttled (429{wait}){'; ' + shown if shown else ''}",
            f"another process may be using this access key's budget; XPORT_RATE_LIMIT (now {pace}) "
            "is shared by every caller of the key",
        )
    if seen:
        return DiagnosisStep(name, "ok", shown)
    return DiagnosisStep(name, "ok", f"none sent; the client paces itself at XPORT_RATE_LIMIT = {pace}")


def format_json(report: Diagnosis) -> str:
    """The report as indented JSON (``--format json``)."""
    return json.dumps(report.as_dict(), ensure_ascii=False, indent=2)
