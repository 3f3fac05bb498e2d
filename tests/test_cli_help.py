"""One CLI framework: every user command of the library is a subcommand of the ``xport-etl``
parser (and every command of the sandbox one of ``xport-sandbox``), each with a one-line help, and
every option or positional that takes one of a fixed set of values lists them in ``--help``.

The parsers are walked as built (nothing runs); the sources are parsed with ``ast`` to check that
no other module builds an ``argparse.ArgumentParser`` of its own (a standalone mini-CLI).
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from xport_etl.cli import build_parser
from xport_etl.extract.auth import SIGN_RECIPES
from xport_etl.extract.endpoints import ENDPOINTS
from xport_etl.report.reports import report_views
from xport_sandbox.cli import build_parser as build_sandbox_parser
from xport_sandbox.faults import PROFILES

REPO = Path(__file__).resolve().parent.parent


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser`` (itself first), with the words that reach it."""
    yield path, parser
    for action in _subparsers(parser):
        for name, sub in action.choices.items():
            yield from _walk(sub, (*path, name))


def _commands(build) -> dict[str, argparse.ArgumentParser]:
    return {" ".join(path): p for path, p in _walk(build()) if path}


def _action(parser: argparse.ArgumentParser, dest: str) -> argparse.Action:
    return next(a for a in parser._actions if a.dest == dest)


@pytest.mark.parametrize("build", [build_parser, build_sandbox_parser], ids=["xport-etl", "xport-sandbox"])
def test_every_subcommand_has_a_one_line_help_in_its_parents_help(build):
    seen = 0
    for path, parser in _walk(build()):
        text = parser.format_help()
        for action in _subparsers(parser):
            helps = {c.dest: c.help for c in action._choices_actions}
            for name in action.choices:
                seen += 1
                where = " ".join((*path, name))
                assert helps.get(name), f"`{where}` has no help line in `{' '.join(path) or 'top'} --help`"
                assert "\n" not in helps[name], f"`{where}`'s help is not one line"
                listed = " ".join(text.split())  # argparse wraps long help lines
                assert f" {name} {' '.join(helps[name].split())}" in listed, (
                    f"`{where}` and its help line are not listed in its parent's --help"
                )
    assert seen >= 3


@pytest.mark.parametrize("build", [build_parser, build_sandbox_parser], ids=["xport-etl", "xport-sandbox"])
def test_every_option_with_choices_lists_them_in_help(build):
    checked = 0
    for path, parser in _walk(build()):
        text = parser.format_help()
        for action in parser._actions:
            if action.choices is None or isinstance(action, argparse._SubParsersAction):
                continue  # a subcommand is listed with its help line (the test above)
            listed = "{" + ",".join(str(c) for c in action.choices) + "}"
            assert listed in text, f"`{' '.join(path)} --help` does not list {listed} ({action.dest})"
            checked += 1
    assert checked >= 2


def test_the_commands_are_the_documented_ones():
    assert set(_commands(build_parser)) == {
        "extract",
        "load",
        "run",
        "backfill",
        "status",
        "report",
        "check",
        "airflow",
        "airflow install-dags",
        "callbacks",
        "callbacks serve",
        "callbacks consume",
        "dashboard",
        "docs",
    }
    assert set(_commands(build_sandbox_parser)) == {"serve", "truth", "demo"}


def test_fixed_sets_of_values_are_declared():
    commands = _commands(build_parser)
    windowed = {name for name, spec in ENDPOINTS.items() if spec.windows}
    assert set(_action(commands["extract"], "endpoint").choices) == windowed
    for name in ("extract", "load", "run", "backfill", "status", "report", "check"):
        assert set(_action(commands[name], "sign_recipe").choices) == set(SIGN_RECIPES)
    for name, formats in (
        ("status", {"table", "csv", "json"}),
        ("report", {"table", "csv", "json"}),
        ("check", {"text", "json"}),
        ("docs", {"md", "html", "both"}),
    ):
        assert set(_action(commands[name], "format").choices) == formats
    for name in ("extract", "run", "backfill"):
        assert set(_action(commands[name], "mode").choices) == {"create", "update"}
    assert set(_action(commands["status"], "section").choices) == {"runs", "freshness", "checks"}
    assert set(_subparsers(commands["airflow"])[0].choices) == {"install-dags"}
    assert set(_subparsers(commands["callbacks"])[0].choices) == {"serve", "consume"}
    # the report name is a metavar listing the short names (a view's own name is taken too)
    short = sorted(n for n in report_views() if not n.startswith("rpt_"))
    assert _action(commands["report"], "name").metavar == "{" + ",".join(short) + "}"
    assert "{" + ",".join(short) + "}" in commands["report"].format_help()

    sandbox = _commands(build_sandbox_parser)
    assert set(_action(sandbox["serve"], "faults").choices) == set(PROFILES)
    assert set(_action(sandbox["serve"], "sign_recipe").choices) == set(SIGN_RECIPES)


def test_the_sandbox_demo_takes_run_demos_options_with_its_defaults():
    import inspect

    from xport_sandbox.demo import run_demo

    args = build_sandbox_parser().parse_args(["demo"])
    defaults = {name: p.default for name, p in inspect.signature(run_demo).parameters.items()}
    assert {name: getattr(args, name) for name in defaults} == defaults
    args = build_sandbox_parser().parse_args(["demo", "--orders", "3000", "--fresh", "--port", "8765"])
    assert (args.orders, args.fresh, args.port) == (3000, True, 8765)


def _parser_constructions(package: str) -> dict[str, int]:
    """``relative path → count`` of ``argparse.ArgumentParser(...)`` calls in ``package``'s source."""
    found: dict[str, int] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name == "ArgumentParser":
                key = path.relative_to(REPO).as_posix()
                found[key] = found.get(key, 0) + 1
    return found


@pytest.mark.parametrize("package,only", [("xport_etl", "xport_etl/cli.py"), ("xport_sandbox", "xport_sandbox/cli.py")])
def test_only_the_cli_module_builds_an_argument_parser(package, only):
    found = _parser_constructions(package)
    assert set(found) == {only}, (
        f"{sorted(set(found) - {only})} build their own argparse.ArgumentParser: add the command to "
        f"{only} instead (a module contributes a subcommand with register(subparsers))"
    )
