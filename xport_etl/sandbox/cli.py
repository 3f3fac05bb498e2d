"""The ``sandbox`` CLI command: serve the sandbox, or write its ground truth.

    xport-etl sandbox --port 8765 --seed 7 --orders 2000 --rate-limit 10
    xport-etl sandbox --faults flaky --fault-seed 3
    xport-etl sandbox --sign-recipe concat
    xport-etl sandbox truth --seed 7 --orders 2000 --out data/truth

``register(subparsers)`` adds the command to the main CLI; each parsed namespace carries
``func(args) -> int``. ``python -m xport_etl.sandbox.cli`` runs this command alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from datetime import datetime

from xport_etl.sandbox import DEFAULT_ACCESS_KEY, DEFAULT_HOST, DEFAULT_PORT
from xport_etl.sandbox.faults import PROFILES
from xport_etl.sandbox.world import WorldConfig

log = logging.getLogger("xport_etl.sandbox")

_DEFAULTS = WorldConfig()


def _aware_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs an offset, e.g. 2026-07-01T00:00:00+08:00"
        )
    return value


def _add_world_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # the truth sub-command repeats these with SUPPRESS defaults, so values given before
    # "truth" are not overwritten by the sub-parser's defaults
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--seed",
        type=int,
        default=default(_DEFAULTS.seed),
        help=f"seed of the world (default {_DEFAULTS.seed}), e.g. --seed 42",
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=default(_DEFAULTS.orders),
        help="Taobao orders created between the start and the clock "
        f"(default {_DEFAULTS.orders}), e.g. --orders 20000",
    )
    parser.add_argument(
        "--start",
        type=_aware_datetime,
        default=default(_DEFAULTS.start),
        help="when the world begins, ISO 8601 with offset "
        "(default 2026-01-01T00:00:00+08:00), e.g. --start 2026-03-01T00:00:00+08:00",
    )
    parser.add_argument(
        "--clock",
        type=_aware_datetime,
        default=default(_DEFAULTS.clock),
        help="initial simulated now, ISO 8601 with offset "
        "(default 2026-07-01T00:00:00+08:00), e.g. --clock 2026-07-15T12:00:00+08:00",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        default=default(False),
        help="serve the plain Taobao order list (no WorldConfig.variety: no odd-but-allowed "
        "forms beyond the awkward share, no undecodable receiver, no corrupt copy)",
    )


def _config(args: argparse.Namespace) -> WorldConfig:
    config = WorldConfig(seed=args.seed, orders=args.orders, start=args.start, clock=args.clock,
                         variety=not getattr(args, "plain", False))
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

    from xport_etl.sandbox.faults import profile_for
    from xport_etl.sandbox.server import create_app
    from xport_etl.sandbox.world import World

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
        f"xport-etl sandbox at http://{args.host}:{args.port} (access-key {DEFAULT_ACCESS_KEY}, "
        f"signing recipe {args.sign_recipe}, clock {world.clock.isoformat()}, "
        f"{world.taobao.count_visible(world.clock_ms)} orders, rate limit {f'{rate}/s' if rate else 'off'})",
        flush=True,
    )
    if profile.active:
        drift = (f", the first {profile.drift_requests} list pages move the clock {profile.drift_step_s:g} s each"
                 if profile.drift_requests and profile.drift_step_s else "")
        print(
            f"fault profile {profile.name!r} (seed {args.fault_seed}): {profile.rate * 100:.0f}% of API "
            f"requests get a fault{drift}; counts at /_sandbox/stats",
            flush=True,
        )
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="off"
    )
    return 0


def truth(args: argparse.Namespace) -> int:
    """Write the ground-truth Parquet files of the configured world."""
    from xport_etl.sandbox.truth import write_truth
    from xport_etl.sandbox.world import World

    world = World(_config(args))
    for name, path in write_truth(world, args.out).items():
        print(f"{name}: {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sandbox`` command (and its ``truth`` sub-command) to ``subparsers``."""
    parser = subparsers.add_parser(
        "sandbox",
        help="serve a local Xportcn sandbox, or write its ground truth",
        description="Serve a faithful local Xportcn API with a deterministic world of orders. "
        "Example: xport-etl sandbox --port 8765 --seed 7 --orders 2000",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"interface to listen on (default {DEFAULT_HOST}), e.g. --host 0.0.0.0",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}), e.g. --port 9000",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=10.0,
        help="requests per second per access key; 0 turns the limit off "
        "(default 10), e.g. --rate-limit 50",
    )
    parser.add_argument(
        "--faults",
        choices=sorted(PROFILES),
        default="none",
        help="fault profile: none; flaky (~10%% of API requests get a retriable gateway or "
        "envelope error); drift (the clock jumps while a run pages); nasty (~25%%: also "
        "dropped connections, cut-off and slow answers, some drift). Default none, "
        "e.g. --faults flaky",
    )
    parser.add_argument(
        "--fault-seed",
        type=int,
        default=0,
        help="seed of the fault decisions (default 0), e.g. --fault-seed 3",
    )
    parser.add_argument(
        "--fault-slow",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long a 'slow' fault waits before answering (default 2); make it longer than "
        "the client's XPORT_TIMEOUT to see timeouts, e.g. --fault-slow 35",
    )
    parser.add_argument(
        "--sign-recipe",
        choices=("query", "concat"),
        default="query",
        help="the signing recipe the sandbox accepts (both are assumptions about the real API): query = "
        "md5(access-key=…&nonce-str=…&timestamp=…&secret=…) with an epoch-ms timestamp; concat = "
        "md5(ak + ts + nonce + secret) with an epoch-seconds timestamp (default query), "
        "e.g. --sign-recipe concat",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="build every order's details before serving and keep them all in memory (about "
        "4.5 KB an order), so that no request pays for generating them: what the benchmarks "
        "use, e.g. --warm",
    )
    _add_world_options(parser, suppress=False)
    parser.set_defaults(func=serve)
    commands = parser.add_subparsers(dest="sandbox_command", metavar="{truth}")
    truth_parser = commands.add_parser(
        "truth",
        help="write the ground-truth warehouse tables as Parquet",
        description="Write fct_orders.parquet, fct_order_lines.parquet ... for the world at its "
        "clock. Example: xport-etl sandbox truth --seed 7 --out data/truth",
    )
    _add_world_options(truth_parser, suppress=True)
    truth_parser.add_argument(
        "--out", required=True, help="directory for the Parquet files, e.g. --out data/truth"
    )
    truth_parser.set_defaults(func=truth)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``sandbox`` command alone: ``python -m xport_etl.sandbox.cli sandbox ...``."""
    parser = argparse.ArgumentParser(prog="xport-etl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
