"""What every ``xport-etl`` subcommand shares: running a parsed command with the documented exit
codes, one ``error:`` and one ``hint:`` line per expected failure (see :mod:`xport_etl.cli`), and
the flags that set settings, made from their declarations (:mod:`xport_etl.settings`).

The subcommands that live beside their step (``callbacks``, ``dashboard``, ``docs``, ``status``,
``report``) are added to the one ``xport-etl`` parser by their module's ``register(subparsers)``
(``status`` and ``report`` also take the pipeline commands' shared flags as ``parents``) and run through
:func:`run_command` too; those modules never import :mod:`xport_etl.cli`, so that nothing imports
the CLI back.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from typing import Any

from xport_etl.errors import UsageError, XportError

__all__ = [
    "UsageError",
    "add_setting_flags",
    "int_arg",
    "number_arg",
    "pipeline_settings",
    "run_command",
    "settings_from_args",
]


def run_command(args) -> int:
    """Run the parsed command. An expected failure (an :class:`~xport_etl.errors.XportError`) is
    its message and its hint, one line each, and its exit code; so are the file system's own
    errors (exit 7), a missing optional extra (2) and Ctrl-C (130). Anything else is a bug: its
    traceback, exit 1."""
    import duckdb

    from xport_etl.settings import umask_from_env

    command = str(getattr(args, "command", "") or "")
    old_umask = None
    try:
        old_umask = os.umask(umask_from_env())
        return args.func(args)
    except XportError as exc:
        if exc.exit_code == 1:  # a failure that says not how it ends: a bug (tests/test_errors.py)
            traceback.print_exc()
            return 1
        _fail(str(exc), exc.hint.replace("{command}", command))
        return exc.exit_code
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:  # not an optional package: a broken installation, i.e. a bug to report
            traceback.print_exc()
            return 1
        command = " ".join(str(part) for part in (command, getattr(args, "callbacks_command", "")) if part)
        _fail(
            f"`xport-etl {command}` needs {exc.name}, which is not installed",
            f"install the `{extra}` extra: pip install 'xport-etl[{extra}]' (with -c constraints.txt for the tested versions)",
        )
        return 2
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


def add_setting_flags(parser, *names: str, note: str | None = None) -> None:
    """Add the flag of each named setting to ``parser`` (an ``ArgumentParser`` or a group), as
    its declaration says: the flag, its help (variable, default, example), its choices, an ASCII
    number type for a number. Bounds are not argparse's: :class:`~xport_etl.settings.Settings`
    checks them and names the flag (:func:`settings_from_args`). ``note`` is appended to the help."""
    from xport_etl.settings import SETTING

    for name in names:
        s = SETTING[name]
        if s.flag is None:
            raise ValueError(f"setting {name} declares no flag")
        kwargs: dict[str, Any] = {"dest": name, "metavar": s.flag.lstrip("-").replace("-", "_").upper()}
        if s.value_type is int:
            kwargs["type"] = int_arg()
        elif s.value_type is float:
            kwargs["type"] = number_arg()
        choices = s.choice_values()
        if choices is not None:
            kwargs.update(choices=choices, metavar=None)
        parser.add_argument(s.flag, help=s.flag_help(note), **kwargs)


def settings_from_args(args, **overrides: Any):
    """The :class:`~xport_etl.settings.Settings` of a parsed command: the environment, then every
    setting's flag the command has (:func:`add_setting_flags`) and was given, then ``overrides``;
    a failed check names the flag that was given. A flag's text is read as its variable's would
    be (an empty one is not given)."""
    from xport_etl.settings import SETTINGS, Settings

    given: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for s in SETTINGS:
        if s.flag is None:
            continue
        value = getattr(args, s.name, None)
        if isinstance(value, str):
            value = s.parse_text(value.strip(), s.flag) if value.strip() else None
        if value is not None:
            given[s.name], flags[s.name] = value, s.flag
    return Settings.from_env(given_as=flags, **{**given, **overrides})


def pipeline_settings(args):
    """:func:`settings_from_args` for a command that reads or writes the data directory: a data
    directory that is a file is a usage error."""
    settings = settings_from_args(args)
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise UsageError(
            f"the data directory {settings.data_dir} is a file: give --data-dir / XPORT_DATA_DIR a directory"
        )
    return settings


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
    from xport_etl.numbers import parse_number

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
    if exc.errno == errno.ENOENT:
        return message, "no such file or directory: check --data-dir / XPORT_DATA_DIR and --out"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return (
            message,
            "a file is where a directory should be (or the reverse): check --data-dir / XPORT_DATA_DIR and --out",
        )
    return message, "check the data directory (--data-dir / XPORT_DATA_DIR), --out and the disk"


def _fail(message: str, hint: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    print(f"hint: {hint}", file=sys.stderr)
