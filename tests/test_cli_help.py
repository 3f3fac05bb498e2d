"""One CLI framework: every user command of the library is a subcommand of the ``xport-etl``
parser (and every command of the sandbox one of ``xport-sandbox``), each with a one-line help, and
every option or positional that takes one of a fixed set of values lists them in ``--help``.

The parsers are walked as built (nothing runs); the sources are parsed with ``ast`` to check that
no other module builds an ``argparse.ArgumentParser`` of its own (a standalone mini-CLI).
"""

from __future__ import annotations

import argparse
import ast
import re
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
        "pull",
        "storage",
        "storage import",
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
    assert set(_action(commands["status"], "section").choices) == {
        *("runs", "freshness", "checks"),  # status
        *("run", "steps", "windows", "tables", "rejects"),  # status --run ID (and its checks)
    }
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
    """``relative path → count`` of ``argparse.ArgumentParser(...)`` calls in ``package``'s source
    (or of a subclass of it defined there)."""
    found: dict[str, int] = {}
    trees = {
        path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in sorted((REPO / package).rglob("*.py"))
    }

    def _name(node: ast.expr) -> str | None:
        return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None

    parsers = {"ArgumentParser"} | {
        node.name
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any(_name(base) == "ArgumentParser" for base in node.bases)
    }
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if name in parsers:
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


# ---- every command a hint, a help text or a document names exists (issue 22.8: hints named
# `xport-etl sandbox`, which had become `xport-sandbox serve`)

_SCANNED = ("README.md", "BENCHMARKS.md", "Makefile", "docs", "xport_etl", "xport_sandbox", "dags", "provider", "bench")
_CODE = re.compile(r"``(.+?)``|`([^`\n]+)`")  # inline code in Markdown and docstrings, and hints in backticks
_MENTION = re.compile(r"\b(xport-etl|xport-sandbox)((?: +[^\s`'\"|;&>)]+)*)")


def _mentions() -> Iterator[tuple[str, str, list[str]]]:
    """``(where, program, words)`` for every command line naming ``xport-etl`` or ``xport-sandbox``
    in inline code, a fenced code block, or an ``example:`` line."""
    paths = []
    for name in _SCANNED:
        root = REPO / name
        paths += [root] if root.is_file() else [p for p in root.rglob("*") if p.suffix in (".py", ".md", ".html")]
    for path in sorted(paths):
        fenced = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            code = fenced or "example" in line or (path.name == "Makefile" and not line.lstrip().startswith("#"))
            spans = [line] if code else [a or b for a, b in _CODE.findall(line)]
            for span in spans:
                for m in _MENTION.finditer(span):
                    yield f"{path.relative_to(REPO)}:{number}", m.group(1), m.group(2).split()


def _placeholder(word: str) -> bool:
    return bool(re.search(r"[<{$…*]|^[A-Z][A-Z_]*$|^\.\.\.$|^\[", word))


def _unknown_words(parser: argparse.ArgumentParser, words: list[str]) -> str | None:
    """The first word of ``words`` that ``parser`` does not know (a subcommand, an option), else None."""
    i = 0
    while i < len(words):
        word = words[i]
        if _placeholder(word) or (i == 0 and word.endswith(":")):
            return None  # what follows is the reader's to fill in (or the line is output: `xport-etl check: …`)
        subs = _subparsers(parser)
        if word.startswith("-"):
            option = word.split("=", 1)[0]
            action = next((a for a in parser._actions if option in a.option_strings), None)
            if action is None:
                return word
            i += 2 if action.nargs != 0 and "=" not in word else 1
            continue
        if subs:
            if word not in subs[0].choices:
                return word
            parser = subs[0].choices[word]
        elif word not in _action_choices(parser):
            return None  # a positional value (a report name is checked below), or prose after the command
        i += 1
    return None


def _action_choices(parser: argparse.ArgumentParser) -> set[str]:
    return {c for a in parser._actions if not a.option_strings and a.choices for c in a.choices}


def test_every_command_a_hint_or_a_document_names_exists():
    parsers = {"xport-etl": build_parser(), "xport-sandbox": build_sandbox_parser()}
    reports = set(report_views())
    seen, wrong = 0, []
    for where, program, words in _mentions():
        seen += 1
        bad = _unknown_words(parsers[program], words)
        if bad is None and program == "xport-etl" and words[:1] == ["report"] and len(words) > 1:
            name = words[1]
            bad = None if _placeholder(name) or name in reports or name.startswith("-") else name
        if bad is not None:
            wrong.append(f"{where}: `{program} {' '.join(words)}` ({bad!r} is not in the parser)")
    assert seen > 100  # the scan finds the commands the documents name
    assert wrong == []


def test_the_scan_finds_a_command_that_does_not_exist():
    parser = build_parser()
    assert _unknown_words(parser, ["sandbox"]) == "sandbox"
    assert _unknown_words(parser, ["run", "--start", "2026-01-01", "--chunk", "7"]) == "--chunk"
    assert _unknown_words(parser, ["callbacks", "status"]) == "status"
    assert _unknown_words(parser, ["callbacks", "serve", "--port", "8780"]) is None
    assert _unknown_words(parser, ["extract", "--endpoint", "{endpoint}", "--mode", "{mode}"]) is None
