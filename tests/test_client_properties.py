"""Property tests of the API client: no answer can hang or flood it (issue 22 item 5).

Generated answers are served to the real client, which pages a window and lands it
(:func:`xport_etl.run.paging.extract_window`): envelopes whose ``code``, ``msg`` and ``requestId`` are any
JSON; paging fields (``total``, ``pages``, ``current``, ``size``) and records holding huge numbers
(``1e9999999``, 5,000 digits), NaN and Infinity, Unicode digits (``"²"``, ``"٣"``), nesting around
the parsers' limits, wrong types, bytes that are not UTF-8; bodies cut off, over the size cap,
empty or garbage; any HTTP status and ``Retry-After``. Every answer must end, in bounded time, in:

- landed pages, which the normaliser turns into rows and rejects (or refuses whole with a
  ``PageError``: exit code 5); or
- one :class:`~xport_etl.errors.XportError` whose message is one line, which the CLI turns into
  one ``error:`` line, one ``hint:`` line and its documented exit code: 5 for a page that is not
  a page (``BadPageError``, the size cap included), 3 for every other API failure.

The first property serves through an httpx ``MockTransport`` that streams each body in chunks (the
client's capped, streamed read); the second over real HTTP from a tiny server, with the wire's own
faults: a Content-Length that lies or is absurd, chunked and gzip bodies, a compression bomb, a
body that dribbles past ``XPORT_TIMEOUT``, a connection cut mid-body.

A hang that holds the GIL (``int(Decimal("1e9999999"))`` did) cannot be interrupted from another
thread: :func:`finishes` then waits for it, and the suite's pytest-timeout ends the run.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xport_etl import jsonutil
from xport_etl.cli import main
from xport_etl.cliutil import run_command
from xport_etl.errors import BadPageError, XportError
from xport_etl.extract.client import RetryPolicy, XportClient
from xport_etl.extract.landing import read_pages
from xport_etl.load.staging import _normalizers
from xport_etl.normalize.values import PageError
from xport_etl.run.paging import extract_window
from xport_etl.settings import Settings

CAP = 64 * 1024  # XPORT_MAX_RESPONSE_BYTES in these tests
START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
NOW = datetime(2026, 7, 1)
BAD = "@@BAD@@"  # replaced by bytes that are not UTF-8

# ---- answers

NUMBERS = [
    "1e9999999",
    "-1e9999999",
    "1e-9999999",
    "1E+999999999",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 5000,
    "-" + "9" * 4400,
    "1" + "0" * 400 + ".5",
    "18446744073709551616",
    "-0",
    "2.5",
    "25.0",
    "2E1",
    "0",
]
STRINGS = [
    '"²"',
    '"٣"',
    '"１２"',
    '"1_0"',
    '" 7 "',
    '"-3"',
    '"+4"',
    '"\\ud800"',
    '"abc"',
    '""',
    '"' + "9" * 5000 + '"',
    '"200"',
    '"x' + BAD + 'y"',
    '"2026-02-30 10:00:00"',
    '"2026-01-10 10:00:00"',
    '"line\\nbreak"',
]
DEPTHS = [2, 990, 1010, 1030, 3000]  # the exact parser stops near 1000, orjson at 1024

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
json_texts = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
).map(lambda v: jsonutil.dumps(v, floats="allow"))
fragments = json_texts | st.sampled_from(NUMBERS + STRINGS) | st.sampled_from(DEPTHS).map(lambda d: "[" * d + "]" * d)


def obj(members: dict[str, str]) -> str:
    """A JSON object's text from members already written as JSON text."""
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in members.items()) + "}"


counts = st.integers(-3, 300).map(str) | fragments
ids = st.integers(1, 10**6).map(lambda n: f'"{n}"') | st.integers(1, 10**6).map(str) | st.just("null") | fragments
record_fields = {
    "id": ids,
    "updateTime": fragments | st.just('"2026-01-10 10:00:00"'),
    "createTime": fragments,
    "purchaseAmount": fragments,
    "status": fragments,
    "subOrderVOS": fragments,
}
records = st.fixed_dictionaries({}, optional=record_fields).map(obj) | fragments
record_lists = st.lists(records, max_size=5).map(lambda rs: "[" + ",".join(rs) + "]") | fragments
datas = (
    st.fixed_dictionaries(
        {}, optional={"records": record_lists, "total": counts, "pages": counts, "current": counts, "size": counts}
    ).map(obj)
    | fragments
)
codes = st.sampled_from(["200", "200", '"200"', "429", "500", "401", "403", "404", "400"]) | fragments
envelopes = st.fixed_dictionaries(
    {"code": codes}, optional={"requestId": fragments, "msg": fragments, "data": datas}
).map(obj)


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    wire: str = "whole"  # how the real-HTTP server sends it (see RawServer)


@st.composite
def answers(draw, wires: tuple[str, ...] = ("whole",)) -> Answer:
    body = draw(envelopes).encode("utf-8", "surrogatepass").replace(BAD.encode(), b"\xff\xc3(")
    mutation = draw(st.sampled_from(["none"] * 6 + ["truncate", "oversize", "garbage", "empty", "bom"]))
    if mutation == "truncate":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    elif mutation == "oversize":
        body += b" " * (CAP + 1 - len(body) + draw(st.integers(0, 100)))
    elif mutation == "garbage":
        body = draw(st.binary(max_size=64))
    elif mutation == "empty":
        body = b""
    elif mutation == "bom":
        body = b"\xef\xbb\xbf" + body
    status = draw(st.sampled_from([200] * 6 + [204, 301, 400, 401, 403, 404, 429, 500, 502, 503, 504]))
    headers = {}
    if draw(st.booleans()):
        headers["Retry-After"] = draw(
            st.sampled_from(["1", "-5", "1e9999999", "NaN", "inf", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "9" * 30])
        )
    return Answer(status, body, headers, draw(st.sampled_from(wires)))


# ---- what every answer must end in


def finishes(fn, within: float = 60.0) -> Any:
    """``fn()``'s result or the exception it raised, asserting that it ended within ``within``
    seconds (a hang fails the example instead of holding the suite)."""
    box: list = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # noqa: BLE001 (handed back to the test)
            box.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(within)
    assert box, f"still running after {within} s"
    return box[0]


def exit_code(exc: BaseException) -> tuple[int, str]:
    """What ``xport-etl`` makes of ``exc``: its exit code and what it printed on stderr."""

    def fail(args: argparse.Namespace) -> int:
        raise exc

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_command(argparse.Namespace(command="extract", func=fail))
    return code, err.getvalue()


def assert_ends_well(outcome: Any) -> None:
    """``outcome`` of extract_window: a landed window the normaliser reads, or one-line error."""
    if isinstance(outcome, str):
        pages = list(read_pages(Path(outcome).parent))
        assert pages  # at least the first answer was landed
        normalize = _normalizers()["taobao_orders"]
        try:
            out = normalize(pages, endpoint="taobao_orders", window_id="w", rejected_at=NOW)
        except PageError as exc:
            assert exit_code(exc)[0] == 5
        else:
            assert out.records >= 0
        return
    assert isinstance(outcome, XportError), repr(outcome)
    text = str(outcome)
    assert "\n" not in text and "\r" not in text and len(text) < 1200, text
    code, printed = exit_code(outcome)
    assert code == (5 if isinstance(outcome, BadPageError) else 3), (code, text)
    lines = printed.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), printed


@pytest.fixture(scope="module")
def work():
    """Where the examples land their windows: in memory where the machine has it (landing fsyncs)."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="xport-client-properties-", dir=shm if shm.is_dir() else None) as d:
        yield Path(d)


@contextlib.contextmanager
def settings_in(work: Path, **kw: Any):
    """Settings of one example, landing in a directory of its own (removed afterwards)."""
    data_dir = work / uuid.uuid4().hex
    try:
        yield Settings(rate_limit=0, max_pages=3, max_response_bytes=CAP, data_dir=data_dir, **kw)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def extract(settings: Settings, client: XportClient) -> Any:
    with client:
        return extract_window(settings, "taobao_orders", START, END, client=client)


class Streamed(httpx.SyncByteStream):
    def __init__(self, body: bytes, size: int = 4096) -> None:
        self.body, self.size = body, size

    def __iter__(self):
        for at in range(0, len(self.body), self.size):
            yield self.body[at : at + self.size]


PROFILE = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@PROFILE
@given(answers())
def test_every_answer_ends_in_landed_pages_or_one_line_error_with_its_exit_code(work: Path, answer: Answer) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answer.status, headers=answer.headers, stream=Streamed(answer.body))

    with settings_in(work, timeout=5.0) as settings:
        transport = httpx.MockTransport(respond)
        client = XportClient(settings, transport=transport, sleep=lambda s: None, retry=RetryPolicy(max_tries=2))
        assert_ends_well(finishes(lambda: extract(settings, client)))


# ---- the same over real HTTP, with the wire's faults


class RawServer:
    """A tiny HTTP/1.1 server on 127.0.0.1 that writes :attr:`answer` byte for byte as its
    ``wire`` says: ``whole`` (Content-Length), ``chunked``, ``gzip`` (Content-Encoding),
    ``close`` (no length: the body ends with the connection), ``short`` (a Content-Length 100
    bytes longer than the body, then the connection is cut), ``huge`` (a Content-Length of 1 TB),
    ``bomb`` (gzip that decodes to 16 times the cap), ``dribble`` (a byte every 0.2 s, past
    the client's timeout)."""

    def __init__(self) -> None:
        self.answer = Answer(200, b"{}")
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.close_connection = True
                with contextlib.suppress(OSError):
                    owner.write(self.wfile, owner.answer)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def write(out: Any, answer: Answer) -> None:
        import time

        body, wire = answer.body, answer.wire
        head = [f"HTTP/1.1 {answer.status} X", "Connection: close", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in answer.headers.items()]
        if wire == "gzip":
            body = gzip.compress(body)
            head.append("Content-Encoding: gzip")
        elif wire == "bomb":
            body = gzip.compress(body + b" " * (16 * CAP))
            head.append("Content-Encoding: gzip")
        if wire in ("whole", "gzip", "bomb", "dribble"):
            head.append(f"Content-Length: {len(body)}")
        elif wire == "short":
            head.append(f"Content-Length: {len(body) + 100}")
        elif wire == "huge":
            head.append("Content-Length: 1000000000000")
        elif wire == "chunked":
            head.append("Transfer-Encoding: chunked")
        out.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if wire == "chunked":
            for at in range(0, len(body), 1000):
                part = body[at : at + 1000]
                out.write(b"%x\r\n%s\r\n" % (len(part), part))
            out.write(b"0\r\n\r\n")
        elif wire == "dribble":
            for byte in body[:10]:
                out.write(bytes([byte]))
                out.flush()
                time.sleep(0.2)
        else:
            out.write(body)
        out.flush()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def raw_server():
    server = RawServer()
    yield server
    server.close()


WIRES = ("whole", "whole", "chunked", "gzip", "close", "short", "huge", "bomb", "dribble")


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(answers(wires=WIRES))
def test_every_answer_over_real_http_ends_within_the_deadline(
    work: Path, raw_server: RawServer, answer: Answer
) -> None:
    raw_server.answer = answer
    with settings_in(work, base_url=raw_server.base_url, timeout=1.0) as settings:
        client = XportClient(settings, sleep=lambda s: None, retry=RetryPolicy(max_tries=1))
        # each request ends within XPORT_TIMEOUT: a window's few requests end well within this bound
        assert_ends_well(finishes(lambda: extract(settings, client), within=30.0))


# ---- through the command line, as an operator meets it


@pytest.mark.parametrize(
    ("body", "cap", "code", "needle"),
    [
        (b'{"code": 200, "data": {"records": [{"id": "1"}], "total": 1e9999999}}', None, 5, "'total' is not a count"),
        (b'{"code": "\xc2\xb2", "msg": "m", "data": null}', None, 3, "envelope code \u00b2"),
        (b'{"code": 200, "data": {"records": []}}' + b" " * 5000, "4096", 5, "XPORT_MAX_RESPONSE_BYTES=4,096"),
    ],
)
def test_extract_ends_a_hostile_answer_with_one_line_and_its_exit_code(
    raw_server, tmp_path, monkeypatch, capsys, body, cap, code, needle
):
    raw_server.answer = Answer(200, body)
    monkeypatch.setenv("XPORT_BASE_URL", raw_server.base_url)
    monkeypatch.setenv("XPORT_RATE_LIMIT", "0")
    if cap:
        monkeypatch.setenv("XPORT_MAX_RESPONSE_BYTES", cap)
    argv = ["extract", "--endpoint", "taobao_orders", "--start", "2026-01-01", "--end", "2026-02-01"]
    assert main([*argv, "--data-dir", str(tmp_path), "--quiet"]) == code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and needle in lines[0], err
    assert "Traceback" not in err
