"""One error tree (issue 25.5): every expected failure is an ``XportError`` that carries its exit
code, its hint and whether another try can help; ``cliutil.run_command`` prints those and nothing
else, and anything outside the tree is a bug (a traceback, exit 1)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import xport_etl
from xport_etl import errors
from xport_etl.cliutil import run_command
from xport_etl.errors import XportError

REPO = Path(__file__).resolve().parent.parent


def _tree() -> list[type[XportError]]:
    """Every subclass of XportError the library defines (all its modules imported)."""
    for module in pkgutil.walk_packages(xport_etl.__path__, "xport_etl."):
        importlib.import_module(module.name)
    found, todo = [], [XportError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("xport_etl.") and sub not in found:
                found.append(sub)
                todo.append(sub)
    return sorted(found, key=lambda c: c.__name__)


TREE = _tree()


def _instance(cls: type[XportError]) -> XportError:
    if cls.__name__ == "PagesUnreadableError":
        return cls("raw/taobao_orders/w/pages.jsonl.gz", "taobao_orders", "keys_x_0001", "cut short")  # type: ignore[call-arg]
    return cls(f"the {cls.__name__} message")


def test_the_tree_is_found():
    names = {c.__name__ for c in TREE}
    assert {"ConfigError", "CheckFailedError", "ManifestError", "PageError", "StaleDataError", "UsageError"} <= names


@pytest.mark.parametrize("cls", TREE, ids=lambda c: c.__name__)
def test_every_expected_failure_has_an_exit_code_and_a_hint(cls):
    exc = _instance(cls)
    assert exc.exit_code in range(2, 9), f"{cls.__name__} declares no exit code of its own"
    assert exc.hint and "\n" not in exc.hint and exc.hint != XportError.hint
    assert isinstance(exc.permanent, bool)


@pytest.mark.parametrize("cls", TREE, ids=lambda c: c.__name__)
def test_the_tree_in_errors_docstring_is_the_tree(cls):
    """errors.py's docstring draws the tree with each class's exit code (``*``: permanent)."""
    m = re.search(rf"[└├]── {cls.__name__}\s+(\d)(\*?) ", errors.__doc__ or "")
    assert m is not None, f"{cls.__name__} is not in the tree drawn in xport_etl/errors.py"
    assert (int(m[1]), m[2] == "*") == (cls.exit_code, cls.permanent), cls.__name__


def _run(capsys, exc: BaseException, command: str = "status") -> tuple[int, list[str]]:
    def func(args):
        raise exc

    code = run_command(argparse.Namespace(func=func, command=command))
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("cls", TREE, ids=lambda c: c.__name__)
def test_run_command_prints_the_message_and_the_hint_and_exits_with_the_code(cls, capsys, monkeypatch):
    monkeypatch.delenv("XPORT_UMASK", raising=False)
    exc = _instance(cls)
    code, lines = _run(capsys, exc)
    assert code == exc.exit_code
    assert lines == [f"error: {exc}", f"hint: {exc.hint.replace('{command}', 'status')}"]


def test_a_hint_and_an_exit_code_of_the_instance_win(capsys, monkeypatch):
    monkeypatch.delenv("XPORT_UMASK", raising=False)
    exc = errors.ConfigError("a bad thing", hint="do the other thing", exit_code=7)
    assert _run(capsys, exc) == (7, ["error: a bad thing", "hint: do the other thing"])
    assert errors.ConfigError("x").hint == "see `xport-etl {command} --help`"  # the class's is unchanged


@pytest.mark.parametrize(
    "exc", [KeyError("unknown thing"), ValueError("a bug"), XportError("declares no exit code")], ids=type
)
def test_anything_outside_the_tree_is_a_bug_with_a_traceback(exc, capsys, monkeypatch):
    monkeypatch.delenv("XPORT_UMASK", raising=False)
    code, lines = _run(capsys, exc)
    assert code == 1
    assert lines[0] == "Traceback (most recent call last):" and type(exc).__name__ + ": " in lines[-1]


def test_a_bare_key_error_in_a_command_is_a_traceback(tmp_path):
    # the whole CLI, as a person runs it: a KeyError raised by a command is not a usage error
    code = (
        "import sys, xport_etl.report.reports as r\n"
        "def broken(*a, **k): raise KeyError('rpt_spend_monthly')\n"
        "r.render_report = broken\n"
        "from xport_etl.cli import main\n"
        f"sys.exit(main(['report', 'spend', '--data-dir', {str(tmp_path)!r}]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 1, out.stderr
    assert "Traceback" in out.stderr and "KeyError: 'rpt_spend_monthly'" in out.stderr
    assert "hint:" not in out.stderr


def test_a_missing_file_is_the_file_systems_failure(capsys, monkeypatch):
    monkeypatch.delenv("XPORT_UMASK", raising=False)
    code, lines = _run(capsys, FileNotFoundError(2, "No such file or directory", "/srv/nowhere/x.html"))
    assert code == 7
    assert lines == [
        "error: No such file or directory: /srv/nowhere/x.html",
        "hint: no such file or directory: check --data-dir / XPORT_DATA_DIR and --out",
    ]


def test_what_was_a_key_error_or_a_missing_file_is_named_at_its_source(tmp_path, capsys):
    from xport_etl.cli import main

    assert main(["report", "no_such_report", "--data-dir", str(tmp_path)]) == 2
    error, hint = capsys.readouterr().err.strip().splitlines()
    assert error.startswith("error: unknown report 'no_such_report'; choose one of: ")
    assert hint == "hint: see `xport-etl report --help`"
    missing = tmp_path / "nowhere" / "manifest.json"
    assert main(["load", "--quiet", "--manifest", str(missing), "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: no manifest at {missing}",
        "hint: check --manifest and --data-dir / XPORT_DATA_DIR",
    ]
    assert main(["report", "spend", "--data-dir", str(tmp_path)]) == 2
    error, hint = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"error: no warehouse at {tmp_path / 'warehouse.duckdb'}")
    assert hint == "hint: check --data-dir / XPORT_DATA_DIR"


def test_no_warehouse_is_still_a_file_not_found_error(tmp_path):
    from xport_etl.load.connect import connect_reader

    with pytest.raises(FileNotFoundError, match="no warehouse at"):
        connect_reader(tmp_path)


def test_the_callback_receiver_refusing_the_sandbox_secret_is_two_lines(tmp_path, capsys, monkeypatch):
    pytest.importorskip("uvicorn")
    from xport_etl.cli import main

    monkeypatch.delenv("XPORT_ACCESS_SECRET", raising=False)
    assert main(["callbacks", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: refusing to receive callbacks on 0.0.0.0 with the sandbox's published secret",
        "hint: set XPORT_ACCESS_SECRET to the AccessSecret Xportcn signs with, or listen on 127.0.0.1",
    ]


@pytest.mark.parametrize("cls", TREE, ids=lambda c: c.__name__)
def test_the_airflow_tasks_decide_retries_from_the_tree(cls):
    from xport_airflow_provider.failures import is_permanent

    assert is_permanent(_instance(cls)) is cls.permanent


def test_what_a_retry_cannot_fix_is_permanent():
    from xport_airflow_provider.failures import is_permanent

    from xport_etl.extract.landing import ManifestError
    from xport_etl.extract.storage import PathOutsideError
    from xport_etl.load.checks import CheckFailedError
    from xport_etl.load.connect import WarehouseError

    permanent = (errors.AuthenticationError, errors.ConfigError, errors.FatalError, ManifestError, PathOutsideError)
    assert all(is_permanent(cls("x")) for cls in (*permanent, WarehouseError, errors.UsageError))
    transient = (errors.RetriableError, errors.RateLimiterUnavailableError, CheckFailedError, errors.NotFoundError)
    assert not any(is_permanent(cls("x")) for cls in transient)
    assert not is_permanent(OSError(28, "No space left on device")) and not is_permanent(KeyError("a bug"))


def test_errors_is_at_the_bottom_and_light():
    """errors.py imports nothing of the library and nothing beyond the standard library (every
    module may import it; the error classes elsewhere subclass its classes)."""
    source = (REPO / "xport_etl" / "errors.py").read_text()
    assert not re.search(r"^\s*(from|import) xport_etl", source, re.M)
    assert set(re.findall(r"^(?:from|import) (\w+)", source, re.M)) <= {"__future__", "re", "urllib"}


def test_ctrl_c_is_exit_130_and_one_line_without_a_traceback(capsys, monkeypatch):
    """Ctrl-C (README's exit codes): 130, the conventional 128 + SIGINT, and the two lines every
    expected failure prints; an interrupted run resumes with the same command."""
    monkeypatch.delenv("XPORT_UMASK", raising=False)
    code, lines = _run(capsys, KeyboardInterrupt())
    assert code == 130
    assert lines == ["error: interrupted", "hint: re-run the same command: windows are replaced, never duplicated"]
