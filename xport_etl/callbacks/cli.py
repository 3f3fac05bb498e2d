"""``xport-etl callbacks serve|consume``: :func:`register` adds the command to the ``xport-etl``
parser (:mod:`xport_etl.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys

from xport_etl.callbacks.inbox import (
    DEAD_LETTER_FILE,
    INBOX_FILE,
    INBOX_PREFIX,
    ObjectInbox,
)
from xport_etl.callbacks.receiver import (
    CALLBACK_PATH,
    DEFAULT_MAX_FUTURE_S,
    create_receiver,
    is_loopback,
    log,
    receiver_config,
)
from xport_etl.callbacks.refresh import (
    refresh_from_callbacks,
)
from xport_etl.cliutil import add_setting_flags, int_arg, number_arg, settings_from_args
from xport_etl.errors import ConfigError

# ---- CLI


def cmd_serve(args) -> int:
    import uvicorn

    from xport_etl.settings import DEFAULT_ACCESS_SECRET

    settings = settings_from_args(args)
    if settings.access_secret == DEFAULT_ACCESS_SECRET and not is_loopback(args.host):
        # the sandbox's secret is published in the source: anyone could sign a callback
        raise ConfigError(
            f"refusing to receive callbacks on {args.host} with the sandbox's published secret",
            hint="set XPORT_ACCESS_SECRET to the AccessSecret Xportcn signs with, or listen on 127.0.0.1",
        )
    if settings.access_secret == DEFAULT_ACCESS_SECRET:
        log.warning("XPORT_ACCESS_SECRET is not set: verifying callbacks with the sandbox's secret")
    layout = settings.layout
    inbox_dir = layout.callbacks
    inbox = ObjectInbox(layout.store("callbacks")) if layout.stored else None
    app = create_receiver(
        settings.access_secret,
        inbox_dir,
        max_age_s=settings.callback_max_age,
        max_future_s=args.max_skew,
        max_body=settings.callback_max_body,
        rotate_bytes=settings.inbox_rotate_bytes,
        seen_horizon_s=settings.callback_dedup_horizon,
        inbox=inbox,
    )
    into = inbox.store.where(INBOX_PREFIX) if inbox is not None else inbox_dir / INBOX_FILE
    print(
        f"receiving callbacks on http://{args.host}:{args.port}{CALLBACK_PATH} into {into}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.Server(receiver_config(app, settings, host=args.host, port=args.port)).run()
    return 0


def cmd_consume(args) -> int:
    result = refresh_from_callbacks(settings_from_args(args))
    print(json.dumps(result, default=str))
    print(consume_summary(result), file=sys.stderr)  # for people; stdout stays the JSON for scripts
    return 0


def consume_summary(result: dict) -> str:
    """One line for people about a ``callbacks consume``: how many new messages, what they
    refreshed, what was dead-lettered, its run id; an empty inbox says so (it is not a failure)."""
    n = result.get("messages", 0)
    if not n and not result.get("corrupt"):
        return "callbacks: 0 new messages: nothing to refresh"
    refreshed = f"{result.get('orders', 0):,} orders and {result.get('refunds', 0):,} refunds refreshed"
    rows = sum((result.get("rows_written") or {}).values())
    line = f"callbacks: {n:,} new message{'' if n == 1 else 's'}: {refreshed}, {rows:,} rows written"
    dead = result.get("dead_lettered", 0)
    if dead:
        line += f"; {dead:,} dead-lettered (see {DEAD_LETTER_FILE} under the callbacks folder)"
    if result.get("run_id"):
        line += f"; run {result['run_id']}"
    return line


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``callbacks`` command (``serve`` and ``consume``) to ``subparsers``."""
    parser = subparsers.add_parser(
        "callbacks",
        help="receive Xportcn message callbacks, or refresh what they name",
        description="Receive Xportcn's message callbacks (docs/api-contract.md#6-message-callbacks) into an fsynced inbox, and "
        "refresh the orders and refunds they name (Taobao and 1688, whatever the message's type).\n"
        "example: xport-etl callbacks serve --port 8780 --data-dir data\n"
        "example: xport-etl callbacks consume --data-dir data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="callbacks_command", required=True)
    serve = commands.add_parser(
        "serve",
        help=f"serve POST {CALLBACK_PATH} (secret from XPORT_ACCESS_SECRET)",
        description=f"Serve POST {CALLBACK_PATH}: verify the HMAC and the timestamp's age, store the message "
        "under <data-dir>/callbacks/inbox.jsonl, answer 200.\n"
        "example: XPORT_ACCESS_SECRET=… xport-etl callbacks serve --host 0.0.0.0 --port 8780",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default 127.0.0.1), e.g. --host 0.0.0.0",
    )
    serve.add_argument(
        "--port", type=int_arg(0, 65535), default=8780, help="port to listen on (default 8780), e.g. --port 9000"
    )
    add_setting_flags(serve, "data_dir", note="the inbox is <data-dir>/callbacks/")
    add_setting_flags(serve, "callback_max_age")
    serve.add_argument(
        "--max-skew",
        type=number_arg(0, 86_400, above=True),
        default=DEFAULT_MAX_FUTURE_S,
        help=f"how far ahead of this machine's clock a message timestamp may be, seconds (default "
        f"{DEFAULT_MAX_FUTURE_S}), e.g. --max-skew 900",
    )
    serve.set_defaults(func=cmd_serve)
    consume = commands.add_parser(
        "consume",
        help="refresh the orders and refunds named by new callbacks, and publish",
        description="Read the inbox from the stored offset, re-read the orders and refunds the messages "
        "name (docs/callbacks.md), publish, dead-letter what can never be used, then advance the offset.\n"
        "example: xport-etl callbacks consume --data-dir data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_setting_flags(consume, "data_dir")
    consume.set_defaults(func=cmd_consume)
    return parser
