"""``xport-sandbox``: serve the sandbox, write its ground truth, or run the demo.

    xport-sandbox serve --port 8765 --seed 7 --orders 2000 --rate-limit 10
    xport-sandbox serve --faults flaky --fault-seed 3
    xport-sandbox serve --sign-recipe concat
    xport-sandbox truth --seed 7 --orders 2000 --out data/truth
    xport-sandbox demo --orders 3000 --fresh

Each parsed namespace carries ``func(args) -> int``. ``python -m xport_sandbox.cli`` is the same
program.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from datetime import datetime

from xport_sandbox import DEFAULT_ACCESS_KEY, DEFAULT_HOST, DEFAULT_PORT
from xport_sandbox.faults import PROFILES
from xport_sandbox.world import MIX_NAMES, WorldConfig

log = logging.getLogger("xport_sandbox")

_DEFAULTS = WorldConfig()


def _aware_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset, e.g. 2026-07-01T00:00:00+08:00")
    return value


def _add_world_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed",
        type=int,
        default=_DEFAULTS.seed,
        help=f"seed of the world (default {_DEFAULTS.seed}), e.g. --seed 42",
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=_DEFAULTS.orders,
        help=f"Taobao orders created between the start and the clock (default {_DEFAULTS.orders}), e.g. --orders 20000",
    )
    parser.add_argument(
        "--start",
        type=_aware_datetime,
        default=_DEFAULTS.start,
        help="when the world begins, ISO 8601 with offset "
        "(default 2026-01-01T00:00:00+08:00), e.g. --start 2026-03-01T00:00:00+08:00",
    )
    parser.add_argument(
        "--clock",
        type=_aware_datetime,
        default=_DEFAULTS.clock,
        help="initial simulated now, ISO 8601 with offset "
        "(default 2026-07-01T00:00:00+08:00), e.g. --clock 2026-07-15T12:00:00+08:00",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        default=False,
        help="serve the plain Taobao order list (no WorldConfig.variety: no odd-but-allowed "
        "forms beyond the awkward share, no undecodable receiver, no corrupt copy)",
    )
    parser.add_argument(
        "--mix",
        choices=MIX_NAMES,
        default=_DEFAULTS.mix,
        help=f"rates of the varied forms (WorldConfig.mix; default {_DEFAULTS.mix}): ~0.4%% / ~2%% / ~5%% "
        "of the records served carry a warning or a reject (or are a corrupt copy's twin), e.g. --mix odd2",
    )


def _config(args: argparse.Namespace) -> WorldConfig:
    config = WorldConfig(
        seed=args.seed,
        orders=args.orders,
        start=args.start,
        clock=args.clock,
        variety=not getattr(args, "plain", False),
        mix=getattr(args, "mix", _DEFAULTS.mix),
    )
    if getattr(args, "warm", False):
        # every order of the world, plus room for a few months of orders created later
        config = dataclasses.replace(
            config, detail_cache=max(config.detail_cache, 2 * (config.orders + config.n_orders_1688))
        )
    return config


def serve(args: argparse.Namespace) -> int:
    """Serve the sandbox until interrupted."""
    import time

    import uvicorn

    from xport_sandbox.faults import profile_for
    from xport_sandbox.server import create_app
    from xport_sandbox.world import World

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    world = World(_config(args))
    if args.warm:
        started = time.perf_counter()
        built = world.warm()
        log.info("warmed: %d orders' details built in %.1f s", built, time.perf_counter() - started)
    rate = args.rate_limit if args.rate_limit and args.rate_limit > 0 else None
    profile = profile_for(args.faults)
    if args.fault_slow is not None:
        profile = dataclasses.replace(profile, slow_s=args.fault_slow)
    app = create_app(
        world,
        rate_limit=rate,
        faults=profile,
        fault_seed=args.fault_seed,
        sign_recipe=args.sign_recipe,
    )
    # the sandbox secret is a public default, still never printed. printed, not logged: the
    # main CLI's log level (warnings, unless -v) would hide where the sandbox listens
    print(
        f"xport-sandbox at http://{args.host}:{args.port} (access-key {DEFAULT_ACCESS_KEY}, "
        f"signing recipe {args.sign_recipe}, clock {world.clock.isoformat()}, "
        f"{world.taobao.count_visible(world.clock_ms)} orders, rate limit {f'{rate}/s' if rate else 'off'})",
        flush=True,
    )
    if profile.active:
        drift = (
            f", the first {profile.drift_requests} list pages move the clock {profile.drift_step_s:g} s each"
            if profile.drift_requests and profile.drift_step_s
            else ""
        )
        print(
            f"fault profile {profile.name!r} (seed {args.fault_seed}): {profile.rate * 100:.0f}% of API "
            f"requests get a fault{drift}; counts at /_sandbox/stats",
            flush=True,
        )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="off")
    return 0


def truth(args: argparse.Namespace) -> int:
    """Write the ground-truth Parquet files of the configured world."""
    from xport_sandbox.truth import write_truth
    from xport_sandbox.world import World

    world = World(_config(args))
    for name, path in write_truth(world, args.out).items():
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``xport-sandbox`` parser: ``serve``, ``truth`` and ``demo``."""
    parser = argparse.ArgumentParser(
        prog="xport-sandbox",
        description="The local Xportcn sandbox (a test double of the API) and the demo that runs "
        "the pipeline against it.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve_parser = commands.add_parser(
        "serve",
        help="serve a local Xportcn sandbox",
        description="Serve a faithful local Xportcn API with a deterministic world of orders. "
        "Example: xport-sandbox serve --port 8765 --seed 7 --orders 2000",
    )
    serve_parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"interface to listen on (default {DEFAULT_HOST}), e.g. --host 0.0.0.0",
    )
    serve_parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}), e.g. --port 9000",
    )
    serve_parser.add_argument(
        "--rate-limit",
        type=float,
        default=10.0,
        help="requests per second per access key; 0 turns the limit off (default 10), e.g. --rate-limit 50",
    )
    serve_parser.add_argument(
        "--faults",
        choices=sorted(PROFILES),
        default="none",
        help="fault profile: none; flaky (~10%% of API requests get a retriable gateway or "
        "envelope error); drift (the clock jumps while a run pages); nasty (~25%%: also "
        "dropped connections, cut-off and slow answers, some drift). Default none, "
        "e.g. --faults flaky",
    )
    serve_parser.add_argument(
        "--fault-seed",
        type=int,
        default=0,
        help="seed of the fault decisions (default 0), e.g. --fault-seed 3",
    )
    serve_parser.add_argument(
        "--fault-slow",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long a 'slow' fault waits before answering (default 2); make it longer than "
        "the client's XPORT_TIMEOUT to see timeouts, e.g. --fault-slow 35",
    )
    serve_parser.add_argument(
        "--sign-recipe",
        choices=("query", "concat"),
        default="query",
        help="the signing recipe the sandbox accepts (both are assumptions about the real API): query = "
        "md5(access-key=…&nonce-str=…&timestamp=…&secret=…) with an epoch-ms timestamp; concat = "
        "md5(ak + ts + nonce + secret) with an epoch-seconds timestamp (default query), "
        "e.g. --sign-recipe concat",
    )
    serve_parser.add_argument(
        "--warm",
        action="store_true",
        help="build every order's details before serving and keep them all in memory (about "
        "4.5 KB an order), so that no request pays for generating them: what the benchmarks "
        "use, e.g. --warm",
    )
    _add_world_options(serve_parser)
    serve_parser.set_defaults(func=serve)
    truth_parser = commands.add_parser(
        "truth",
        help="write the ground-truth warehouse tables as Parquet",
        description="Write fct_orders.parquet, fct_order_lines.parquet ... for the world at its "
        "clock. Example: xport-sandbox truth --seed 7 --out data/truth",
    )
    _add_world_options(truth_parser)
    truth_parser.add_argument("--out", required=True, help="directory for the Parquet files, e.g. --out data/truth")
    truth_parser.set_defaults(func=truth)
    _add_demo_parser(commands)
    return parser


def _add_demo_parser(commands: argparse._SubParsersAction) -> None:
    """``xport-sandbox demo``: the options of :func:`xport_sandbox.demo.run_demo`, same defaults."""
    from xport_sandbox import demo

    demo_parser = commands.add_parser(
        "demo",
        help="start the sandbox, run the DAGs through Airflow, print the reports",
        description="Serve the sandbox, run the ingest and reports DAGs once through Airflow, "
        "print the reports. What `make demo` runs. Example: xport-sandbox demo --orders 3000 --fresh",
    )
    demo_parser.add_argument(
        "--port", type=int, default=None, help="sandbox port (default: a free one), e.g. --port 8765"
    )
    demo_parser.add_argument(
        "--seed",
        type=int,
        default=demo.SANDBOX_SEED,
        help=f"sandbox world seed (default {demo.SANDBOX_SEED}), e.g. --seed 42",
    )
    demo_parser.add_argument(
        "--orders",
        type=int,
        default=demo.SANDBOX_ORDERS,
        help=f"Taobao orders in the world (default {demo.SANDBOX_ORDERS}), e.g. --orders 3000",
    )
    demo_parser.add_argument(
        "--rate-limit",
        type=float,
        default=demo.RATE_LIMIT,
        help="the sandbox's requests/s per key, and the connection's pace "
        f"(default {demo.RATE_LIMIT:g}), e.g. --rate-limit 50",
    )
    demo_parser.add_argument(
        "--sandbox-url",
        default=None,
        help="use a sandbox already running at this URL (default: start one), e.g. --sandbox-url http://127.0.0.1:8765",
    )
    demo_parser.add_argument(
        "--logical-date",
        default=demo.LOGICAL_DATE,
        help=f"the DAG runs' logical date, the interval end (default {demo.LOGICAL_DATE})",
    )
    demo_parser.add_argument(
        "--lookback-days",
        type=int,
        default=demo.LOOKBACK_DAYS,
        help=f"how far back the ingest run re-reads, in days (default {demo.LOOKBACK_DAYS})",
    )
    demo_parser.add_argument("--fresh", action="store_true", help="delete data/demo before the run")
    demo_parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from xport_sandbox.demo import run_demo

    return run_demo(
        port=args.port,
        seed=args.seed,
        orders=args.orders,
        rate_limit=args.rate_limit,
        sandbox_url=args.sandbox_url,
        logical_date=args.logical_date,
        lookback_days=args.lookback_days,
        fresh=args.fresh,
    )


def main(argv: list[str] | None = None) -> int:
    """``xport-sandbox serve|truth|demo …``."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
