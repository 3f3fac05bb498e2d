"""Shared helpers of the benchmarks: a sandbox world in a subprocess, a cache of landed pages,
measuring one system in a fresh subprocess (wall time + peak RSS), and writing results.

The sandbox always runs in its own process (uvicorn, one core of the two) so that the client
under test does not share a GIL with the server, and its memory is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
CACHE = Path(os.environ.get("XPORT_BENCH_CACHE", BENCH / ".cache"))
WORK = Path(os.environ.get("XPORT_BENCH_WORK", "/tmp/xport-bench"))
PY = sys.executable


def world_bounds() -> tuple[datetime, datetime]:
    """The whole history of a default world: ``[WorldConfig.start, WorldConfig.clock)`` in UTC."""
    from xport_sandbox.world import WorldConfig

    cfg = WorldConfig()
    return cfg.start.astimezone(UTC), cfg.clock.astimezone(UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    """``xport-sandbox serve`` in a subprocess: ``base_url``, ``stats()``.

    ``warm``: the server builds every order's details before it answers (``--warm``), so that a
    measured client never waits for the sandbox generating its world (startup is not measured).
    """

    def __init__(
        self, orders: int, *, seed: int = 7, rate_limit: float = 0.0, warm: bool = False, mix: str = "varied"
    ) -> None:
        self.orders, self.seed, self.rate_limit, self.warm = orders, seed, rate_limit, warm
        self.mix = mix
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.startup_s = 0.0

    def start(self) -> Sandbox:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "xport_sandbox.cli",
                "serve",
                "--port",
                str(self.port),
                "--seed",
                str(self.seed),
                "--orders",
                str(self.orders),
                "--rate-limit",
                str(self.rate_limit),
                *(["--warm"] if self.warm else []),
                *(["--plain"] if self.mix == "plain" else ["--mix", self.mix]),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 600
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.base_url + "/_sandbox/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sandbox did not start")
            time.sleep(0.1)
        self.startup_s = time.perf_counter() - t0
        return self

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.base_url + "/_sandbox/stats", timeout=10).json()

    def cpu_s(self) -> float:
        """CPU seconds the sandbox process has used so far (its server is one Python process)."""
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- one system in a fresh subprocess


def run_child(
    task: str, args: dict[str, Any], *, env: dict[str, str] | None = None, timeout: float = 7200, poll_s: float = 0.05
) -> dict[str, Any]:
    """Run ``python -m bench.systems <task>`` with ``args``; return its JSON result plus
    ``peak_rss_mb`` (sum of the RSS of the process tree, polled every ``poll_s``),
    ``maxrss_mb`` (the child's own ``ru_maxrss``, and its children's) and ``process_s``."""
    out = Path(args.get("workdir", WORK)) / f".{task}.{os.getpid()}.{time.time_ns()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen([PY, "-m", "bench.systems", task, json.dumps(args), str(out)], cwd=ROOT, env=full_env)
    peak = 0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            procs = [ps, *ps.children(recursive=True)]
            total = 0
            for p in procs:
                with suppress(psutil.Error):
                    total += p.memory_info().rss
            peak = max(peak, total)
        except psutil.Error:
            pass
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            raise RuntimeError(f"{task} timed out after {timeout} s")
        time.sleep(poll_s)
    process_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{task} failed with exit code {proc.returncode}")
    result = json.loads(out.read_text())
    out.unlink()
    result["peak_rss_mb"] = round(max(peak, result.get("maxrss_self_kb", 0) * 1024) / 2**20, 1)
    result["process_s"] = round(process_s, 2)
    # other work on the machine during the measurement (2 cores: a load above ~2 means sharing)
    result["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def fresh_dir(name: str) -> Path:
    path = WORK / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# ---- the landed-pages cache


# the sandbox worlds a benchmark can run on (``--mix``): "plain" is ``WorldConfig(variety=False)``,
# the others ``WorldConfig(mix=...)`` (xport_sandbox/world.py: MIXES); "varied" is the default world
MIXES = ("plain", "varied", "odd2", "odd5")


def _names(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in allowed]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)} (comma-separated), not {text!r}")
        return names

    return parse


def add_world_options(parser, *, windows: bool = False) -> None:
    """``--mix`` (comma-separated: each world is measured in turn, a result each; ``--plain`` is the
    old spelling of ``--mix plain``) and, with ``windows``, ``--windows many,one`` (``--one-window``:
    ``--windows one``) for a benchmark's parser."""
    parser.add_argument(
        "--mix",
        type=_names(MIXES),
        default=["varied"],
        help="the sandbox world(s), comma-separated: plain, varied (the default world, ~0.4%% odd records), "
        "odd2 (~2%%), odd5 (~5%%); e.g. --mix plain,varied,odd2,odd5",
    )
    parser.add_argument("--plain", action="store_const", const=["plain"], dest="mix", help="the same as --mix plain")
    if windows:
        parser.add_argument(
            "--windows",
            type=_names(("many", "one")),
            default=["many"],
            help="the history landed in 31-day windows (many) or as one window (one), comma-separated; "
            "e.g. --windows many,one",
        )
        parser.add_argument(
            "--one-window", action="store_const", const=["one"], dest="windows", help="the same as --windows one"
        )


def landed_cache(
    orders: int,
    *,
    seed: int = 7,
    endpoints: tuple[str, ...] = ("taobao_orders",),
    mix: str = "varied",
    one_window: bool = False,
) -> dict:
    """Land the whole history of ``endpoints`` once with our pipeline (no rate limit) and reuse it.

    Returns ``{"data_dir", "manifests": {endpoint: [paths]}, "pages", "records", "bytes"}``.
    The cache lives in ``bench/.cache/seed<seed>_orders<orders>_<mix>[_one]/`` (keyed by seed,
    size, world and split: 31-day windows, or with ``one_window`` the whole history as one window,
    as ``xport-etl extract --start … --end …`` lands a period).
    """
    root = CACHE / f"seed{seed}_orders{orders}_{mix}{'_one' if one_window else ''}"
    meta_path = root / "cache.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"manifests": {}}
    missing = [e for e in endpoints if e not in meta["manifests"]]
    if missing:
        data_dir = root / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        with Sandbox(orders, seed=seed, rate_limit=0, mix=mix) as sb:
            print(
                f"[cache] landing {missing} for seed={seed} orders={orders} "
                f"(sandbox started in {sb.startup_s:.1f} s) ...",
                flush=True,
            )
            res = run_child(
                "ours_extract",
                {
                    "base_url": sb.base_url,
                    "data_dir": str(data_dir),
                    "rate_limit": 0,
                    "endpoints": missing,
                    "workdir": str(root),
                    "one_window": one_window,
                    "one_pass": True,
                },
            )
        for e in missing:
            meta["manifests"][e] = res["manifests"][e]
        meta["data_dir"] = str(data_dir)
        meta_path.write_text(json.dumps(meta, indent=1))
        print(f"[cache] landed in {res['seconds']:.1f} s", flush=True)
    for e in endpoints:
        files = [Path(m).parent / "pages.jsonl.gz" for m in meta["manifests"][e]]
        mans = [json.loads(Path(m).read_text()) for m in meta["manifests"][e]]
        meta.setdefault("summary", {})[e] = {
            "windows": len(files),
            "pages": sum(m["pages"] for m in mans),
            "records": sum(m["records"] for m in mans),
            "gz_bytes": sum(f.stat().st_size for f in files),
        }
    return meta


def page_files(meta: dict, endpoint: str = "taobao_orders") -> list[str]:
    return [str(Path(m).parent / "pages.jsonl.gz") for m in meta["manifests"][endpoint]]


# ---- reporting


def machine() -> dict[str, Any]:
    import duckdb

    try:
        import dlt

        dlt_version = dlt.__version__
    except Exception:  # noqa: BLE001
        dlt_version = None
    cpu = ""
    with suppress(OSError, StopIteration), open("/proc/cpuinfo") as info:
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "dlt": dlt_version,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "git_dirty": bool(
            subprocess.run(
                ["git", "status", "--porcelain", "xport_etl", "sql"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
        ),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "command": " ".join([Path(PY).name, *sys.argv]), "machine": machine(), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


@contextmanager
def stats_sampler(sandbox: Sandbox, every: float = 1.0):
    """Sample the sandbox's stats every ``every`` s in a thread; yields the list of samples
    ``(t, requests, throttled)``."""
    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            s = sandbox.stats()
            samples.append((time.perf_counter(), s["requests"], s["throttled"]))
            stop.wait(every)

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    try:
        yield samples
    finally:
        stop.set()
        th.join()
        s = sandbox.stats()
        samples.append((time.perf_counter(), s["requests"], s["throttled"]))
