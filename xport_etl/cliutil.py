"""What every ``xport-etl`` subcommand shares: running a parsed command with the documented exit
codes, one ``error:`` and one ``hint:`` line per expected failure (see :mod:`xport_etl.cli`).

The subcommands that live beside their step (``callbacks``, ``dashboard``, ``docs``) are added to
the one ``xport-etl`` parser by their module's ``register(subparsers)`` and run through
:func:`run_command` too; those modules never import :mod:`xport_etl.cli`, so that nothing imports
the CLI back.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback

__all__ = ["UsageError", "int_arg", "number_arg", "run_command"]


class UsageError(Exception):
    """Bad arguments: exit code 2 with a one-line message."""


def run_command(args) -> int:
    """Run the parsed command; map every expected failure to one error line, one hint line and
    the documented exit code (see the module docstring)."""
    import duckdb

    from xport_etl.errors import (
        AuthenticationError,
        BadPageError,
        ConfigError,
        RateLimiterUnavailableError,
        RunInProgressError,
        XportError,
    )
    from xport_etl.extract.landing import ManifestError, PagesUnreadableError
    from xport_etl.extract.storage import PathOutsideError
    from xport_etl.load.publish import CheckFailedError, WarehouseError
    from xport_etl.normalize.values import PageError
    from xport_etl.report.status import StaleDataError
    from xport_etl.settings import umask_from_env

    old_umask = None
    try:
        old_umask = os.umask(umask_from_env())
        return args.func(args)
    except (UsageError, ConfigError, KeyError) as exc:
        # a KeyError's str() is the repr of its message: the message itself, its quotes intact
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        _fail(message, "see `xport-etl {} --help`".format(getattr(args, "command", "")))
        return 2
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:  # not an optional package: a broken installation, i.e. a bug to report
            traceback.print_exc()
            return 1
        command = " ".join(
            str(part) for part in (getattr(args, "command", ""), getattr(args, "callbacks_command", "")) if part
        )
        _fail(
            f"`xport-etl {command}` needs {exc.name}, which is not installed",
            f"install the `{extra}` extra: pip install 'xport-etl[{extra}]' (with -c constraints.txt for the tested versions)",
        )
        return 2
    except FileNotFoundError as exc:
        _fail(str(exc), "check --data-dir / XPORT_DATA_DIR")
        return 2
    except AuthenticationError as exc:
        _fail(str(exc), "check XPORT_ACCESS_KEY, XPORT_ACCESS_SECRET, XPORT_USER_ID and the machine clock")
        return 3
    except RateLimiterUnavailableError as exc:
        _fail(
            str(exc),
            "start Redis or fix XPORT_RATE_LIMIT_URL (unset it to share the budget through a "
            "lock file on this machine only)",
        )
        return 3
    except BadPageError as exc:  # the API answered, with something that is not a page
        _fail(
            str(exc),
            "the pages landed before it are kept; re-run the same command to fetch the window again, and if "
            "the answer stays malformed, give its request_id to the API's support",
        )
        return 5
    except XportError as exc:
        _fail(str(exc), "is the API reachable at XPORT_BASE_URL? (`xport-sandbox serve` starts a local one)")
        return 3
    except CheckFailedError as exc:
        _fail(
            str(exc),
            "the published warehouse is unchanged; see sql/checks/ for what each check means "
            "and docs/data-checks.md for XPORT_CHECK_OVERRIDES",
        )
        return 4
    except StaleDataError as exc:
        _fail(str(exc), "see `xport-etl status` for the last runs and their errors")
        return 6
    except RunInProgressError as exc:
        _fail(
            str(exc),
            "wait for it (run again without --no-wait), or stop it; a killed run resumes "
            "from its checkpoints when the same command runs again",
        )
        return 8
    except PageError as exc:
        _fail(str(exc), "the window's raw pages are kept under raw/; re-run the window to fetch it again")
        return 5
    except PagesUnreadableError as exc:
        _fail(str(exc), f"{exc.again()}; nothing was published")
        return 5
    except (ManifestError, PathOutsideError) as exc:
        _fail(
            str(exc),
            "xport-etl did not write this window: move its directory out of the raw root (and check "
            "who may write to XPORT_RAW_URL), then extract the window again; nothing was loaded",
        )
        return 5
    except WarehouseError as exc:
        _fail(
            str(exc),
            "move the file aside and run `xport-etl load`: every landed window is published again from its raw pages",
        )
        return 7
    except BrokenPipeError:  # `xport-etl report … | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    except OSError as exc:
        _fail(*_storage_failure(exc))
        return 7
    except duckdb.IOException as exc:  # DuckDB's own file errors (a full disk while publishing, say)
        message = str(exc).splitlines()[0]
        full = "space" in message.lower()
        _fail(
            message,
            _DISK_FULL
            if full
            else "check the data directory's disk and permissions (--data-dir / "
            "XPORT_DATA_DIR); the published warehouse is unchanged",
        )
        return 7
    except KeyboardInterrupt:
        _fail("interrupted", "re-run the same command: windows are replaced, never duplicated")
        return 130
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        if old_umask is not None:
            os.umask(old_umask)


# the optional packages and the extra that installs each (pyproject.toml's optional-dependencies)
_EXTRAS = {
    "plotly": "dashboard",
    "jinja2": "dashboard",
    "markupsafe": "dashboard",
    "starlette": "callbacks",
    "uvicorn": "callbacks",
    "h11": "callbacks",
    "s3fs": "s3",
    "aiobotocore": "s3",
    "botocore": "s3",
    "redis": "redis",
}


def int_arg(low: int | None = None, high: int | None = None):
    """An argparse ``type`` for an integer option: ASCII digits only (``int()`` also takes ``٣``,
    ``1_0`` and thousands of digits), from ``low`` to ``high`` (unbounded when None: a setting
    such as ``--workers``, whose bounds :class:`~xport_etl.settings.Settings` checks and names)."""
    from xport_etl.numbers import ascii_int

    def parse(text: str) -> int:
        value = ascii_int(text, max_digits=12, signed=True)
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            bounds = f" from {low:,} to {high:,}" if low is not None and high is not None else ""
            raise argparse.ArgumentTypeError(f"expected a whole number{bounds}, got {text[:40]!r}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its own messages
    return parse


def number_arg(low: float | None = None, high: float | None = None, *, above: bool = False):
    """An argparse ``type`` for a number option: a plain, finite ASCII decimal (``float()`` also
    takes ``inf``, ``nan`` and ``1_000``), from ``low`` (excluded with ``above``) to ``high``
    (unbounded when None, as :func:`int_arg`)."""
    from xport_etl.settings import parse_number

    def parse(text: str) -> float:
        value = parse_number(text)
        if value is not None and low is not None and high is not None:
            inside = (low < value if above else low <= value) and value <= high
            value = value if inside else None
        if value is None:
            bounds = "" if low is None or high is None else f" {'above' if above else 'from'} {low:g} up to {high:g}"
            raise argparse.ArgumentTypeError(f"expected a number{bounds}, got {text[:40]!r}")
        return value

    parse.__name__ = "number"
    return parse


_DISK_FULL = (
    "free space on that disk (Parquet under parquet/ and old raw windows can be rebuilt or removed), "
    "then re-run the same command: the published warehouse is replaced only by a complete state, so "
    "it is unchanged"
)


def _storage_failure(exc: OSError) -> tuple[str, str]:
    """One line and a hint for a file system error: what failed where, and what to do."""
    where = exc.filename or ""
    what = exc.strerror or str(exc)
    message = f"{what}: {where}" if where else str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full: {message}", _DISK_FULL
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return message, (
            "this user cannot write there: fix the owner or mode of that path, or point "
            "--data-dir / XPORT_DATA_DIR (or --out) at a writable directory"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return (
            message,
            "a file is where a directory should be (or the reverse): check --data-dir / XPORT_DATA_DIR and --out",
        )
    return message, "check the data directory (--data-dir / XPORT_DATA_DIR), --out and the disk"


def _fail(message: str, hint: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    print(f"hint: {hint}", file=sys.stderr)
