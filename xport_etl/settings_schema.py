"""How a setting is declared, and what is made from the declarations: text parsing, validation
and its messages, flag help, docs/settings.md. The settings themselves are declared in
:mod:`xport_etl.settings` (the one module that reads the environment); this module knows no
setting by name.

A setting is one field of the frozen ``Settings`` dataclass, written with :func:`setting`::

    timeout: float = setting(30.0, "seconds a whole request may take", low=0, above=True, high=3600, unit="seconds")

and :func:`declarations` turns the fields into :class:`Setting` objects (name and type from the
field, ``XPORT_<NAME>`` as the variable unless told).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xport_etl.errors import ConfigError
from xport_etl.numbers import ascii_int, parse_number

__all__ = ["Setting", "declarations", "markdown", "setting"]

_BOOLS = {"1": True, "true": True, "0": False, "false": False}
_SECONDS, _DAY = "seconds", 86_400


@dataclass(frozen=True)
class Setting:
    """One setting, as declared by :func:`setting` on its field of :class:`~xport_etl.settings.Settings`.

    Attributes:
        name: the field; also its Connection extra's key.
        value_type: the field's type without ``None`` (``int`` for ``int | None``).
        optional: whether ``None`` is a value (``None`` then means "the pipeline's default").
        default: the field's default.
        help: one line: what it means (the flag's help, the form's description, the docs).
        env: its environment variable, or None (set only in code, e.g. ``max_pages``).
        low, above, high, unit, zero: numeric bounds (``above``: ``low`` itself excluded), the
            unit messages and docs name, and what 0 means when 0 is special (``"unlimited"``).
        choices: the values it takes (a tuple, or a function returning one, imported late).
        check: more validation, ``check(value, label, settings)``, raising ConfigError naming ``label``.
        coerce: normalises any given value (``None`` included) before validation.
        parse: ``parse(text, label)`` reads a variable's or an extra's text, for a type without a
            parser of its own.
        secret: never shown (repr, ``Settings.redacted()``, the docs' default).
        display: how ``Settings.redacted()`` shows it (a URL without its password).
        connection: the Airflow Connection's own field that holds it (``host``, ``login``,
            ``password``) instead of an extra.
        extra: whether a Connection extra of its name sets it.
        flag: its ``xport-etl`` flag, if any (which commands carry it is the CLI's choice).
        label: its label on the Airflow connection form: an extra's own field, or the
            relabelled Connection field (``login`` is "AccessKey").
        shown: the default as people read it (``every core``); default: the value itself.
        example: a value to show (``https://www.xportcn.com/api``).
        accepts: what a check (not bounds or choices) accepts, for the docs.
        doc: more for docs/settings.md (Markdown).
    """

    name: str
    value_type: type
    optional: bool
    default: Any
    help: str
    env: str | None
    low: int | float | None = None
    above: bool = False
    high: int | float | None = None
    unit: str = ""
    zero: str | None = None
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    check: Callable[[Any, str, Any], None] | None = None
    coerce: Callable[[Any], Any] | None = None
    parse: Callable[[str, str], Any] | None = None
    secret: bool = False
    display: Callable[[Any], Any] | None = None
    connection: str | None = None
    extra: bool = True
    flag: str | None = None
    label: str | None = None
    shown: str | None = None
    example: str | None = None
    accepts: str | None = None
    doc: str = ""

    @property
    def named(self) -> str:
        """What a message calls it when the person's own name for it is not known: its variable."""
        return self.env or self.name

    @property
    def is_extra(self) -> bool:
        """Whether a Connection extra of this name sets it (not the Connection's own fields, not
        what is set in code only)."""
        return self.extra and self.connection is None and self.env is not None

    def choice_values(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices

    def shown_default(self) -> str:
        """The default as the docs and ``--help`` show it."""
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "none"
        if self.value_type is bool:
            return "1" if self.default else "0"
        if isinstance(self.default, int | float):
            return f"{int(self.default):,}" if self.default == int(self.default) else f"{self.default:g}"
        return str(self.default)

    # -- text → value: the environment, a Connection extra, a flag's text

    def parse_text(self, raw: str, label: str) -> Any:
        """The value of ``raw`` (stripped, not empty), or ConfigError naming ``label``."""
        if self.parse is not None:
            return self.parse(raw, label)
        if self.value_type is bool:
            if raw.lower() not in _BOOLS:
                raise ConfigError(f"{label} must be 0, 1, false or true, got {raw!r}")
            return _BOOLS[raw.lower()]
        if self.value_type is int or self.value_type is float:
            # ASCII digits only and a bounded length: float() and int() also take "inf", "nan",
            # "1_000", "٣" and thousands of digits
            value = ascii_int(raw, max_digits=15) if self.value_type is int else parse_number(raw)
            if value is None:
                shown = repr(raw) if len(raw) <= 40 else f"{raw[:20]!r}… ({len(raw):,} characters)"
                raise ConfigError(f"{label} must be {self._kind()}, got {shown}")
            return value
        if self.value_type is Path:
            return Path(raw).expanduser()
        return raw  # text, or what `coerce` reads (a JSON object's text)

    def _kind(self) -> str:
        if self.value_type is float:
            return "a finite number"
        return "a positive integer" if self.low is not None and self.low >= 1 else "an integer"

    # -- validation

    def validate(self, value: Any, settings: Any) -> None:
        """Raise ConfigError naming :attr:`named` when ``value`` is not one this setting takes."""
        label = self.named
        if value is None and self.optional:
            return
        if self.value_type is bool and not isinstance(value, bool):
            raise ConfigError(f"{label} must be 0, 1, false or true, got {value!r}")
        if self.value_type is int or self.value_type is float:
            number = (int,) if self.value_type is int else (int, float)
            low = self.low
            if (
                isinstance(value, bool)
                or not isinstance(value, number)
                or (low is not None and not (value > low if self.above else value >= low))
            ):
                raise ConfigError(f"{label} must be {self._lower()}, got {value!r}")
            if self.high is not None and not value <= self.high:
                raise ConfigError(f"{label} must be at most {self.high:,} {self.unit}".rstrip() + f", got {value!r}")
        choices = self.choice_values()
        if choices is not None and value not in choices:
            raise ConfigError(f"{label} must be one of {', '.join(choices)}, got {value!r}")
        if self.check is not None:
            self.check(value, label, settings)

    def _lower(self) -> str:
        """``a positive integer``, ``> 0 seconds``, ``>= 0 (0 = unlimited)``: the lower bound, for messages."""
        if self.value_type is int:
            return self._kind() if self.low in (None, 1) else f"an integer >= {self.low}"
        if self.low is None:
            return "a number"
        if self.zero is not None:
            return f">= 0 (0 = {self.zero})"
        return f"{'>' if self.above else '>='} {self.low:g} {self.unit}".rstrip()

    def accepted(self) -> str:
        """What it accepts, for the docs."""
        if self.accepts is not None:
            return self.accepts
        choices = self.choice_values()
        if choices is not None:
            return ", ".join(f"`{c}`" for c in choices)
        if self.value_type is bool:
            return "`0`, `1`, `false`, `true`"
        if self.value_type is int or self.value_type is float:
            low = "" if self.low is None else (f"0 ({self.zero})" if self.zero else f"{self.low:,}")
            if self.high is None:
                return f"{'an integer' if self.value_type is int else 'a number'} {'above' if self.above else 'from'} {low}"
            high = _quantity(self.high, self.unit)
            return f"above {low}, at most {high}" if self.above else f"{low} to {high}"
        return "text" if self.value_type is str else "a path"

    def flag_help(self, note: str | None = None) -> str:
        """The flag's ``--help`` line: what it is, its variable and default, an example."""
        where = f"env {self.env}, default {self.shown_default()}" if self.env else f"default {self.shown_default()}"
        text = f"{self.help} ({where})"
        if note:
            text += f"; {note}"
        if self.example:
            text += f", e.g. {self.example}"
        return text


def _quantity(value: int | float, unit: str) -> str:
    """``604,800 seconds (7 days)``, ``1 GiB``: a bound as people read it."""
    text = f"{value:,} {unit}".rstrip()
    if unit == _SECONDS and value >= _DAY and not value % _DAY:
        return f"{text} ({int(value) // _DAY:,} days)"
    if unit == "bytes":
        for power, name in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
            if value >= 1024**power and not value % 1024**power:
                return f"{int(value) // 1024**power:,} {name}"
    return text


def setting(
    default: Any,
    help: str,
    *,
    env: str | None = "",
    repr: bool = True,
    **declared: Any,
) -> Any:
    """Declare a settings field and everything about it: ``declared`` holds the other
    attributes of :class:`Setting` (a name that is not one fails when :func:`declarations` reads it,
    at import).

    ``env`` defaults (``""``) to ``XPORT_<FIELD NAME>``; ``None`` means no variable (set in code
    only). A secret or displayed (redacted) setting is kept out of ``repr``; so is one declared
    ``repr=False``.
    """
    hidden = declared.get("secret") or declared.get("display") is not None or not repr
    metadata = {"setting": {"default": default, "help": help, "env": env, **declared}}
    if isinstance(default, dict):  # a mutable default: each instance its own (hashing it would fail)
        return field(default_factory=dict, repr=not hidden, hash=False, metadata=metadata)
    return field(default=default, repr=not hidden, metadata=metadata)


def declarations(cls: type) -> tuple[Setting, ...]:
    """Each field's :func:`setting` declaration in the dataclass ``cls``, completed with its name
    and type (in declaration order)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        declared = dict(f.metadata["setting"])
        hint = hints[f.name]
        optional = typing.get_origin(hint) in (types.UnionType, typing.Union) and type(None) in typing.get_args(hint)
        if optional:
            (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
        if declared["env"] == "":
            declared["env"] = f"XPORT_{f.name.upper()}"
        out.append(Setting(name=f.name, value_type=typing.get_origin(hint) or hint, optional=optional, **declared))
    return tuple(out)


_DOC_HEAD = """# Settings

<!-- generated from the declarations in xport_etl/settings.py by `make docs`: edit those, not this file -->

Every setting is read from its environment variable; a command-line flag, where there is one,
wins over it. In Airflow the same settings come from the Connection (conn type `xport`, default
`xport_default`): its host, login and password, and any other setting as an extra of its field
name, written as its variable would be (`{"user_id": "1000001", "workers": 2}`); an extra that
names no setting is refused. Whatever the Connection does not set falls back to the variables.

A value that does not parse or lies outside its bounds stops the command before its first request
(exit 2), and the message names what was set: `--workers must be a positive integer, got 0` when
the flag was given, `XPORT_WORKERS must …` when the variable was, `Connection extra 'workers' …`
in Airflow. Numbers are plain ASCII (`٣`, `1_0`, `inf`, `nan` and a 5,000-digit value are refused)
and every numeric setting is bounded, so that a typo cannot make a request wait for ever or a
buffer unbounded.

| variable | Airflow Connection | flag | default | accepted | meaning |
|---|---|---|---|---|---|
"""


def _default(s: Setting) -> str:
    """A default as the docs show it: a value in backticks with its unit, or the declared words."""
    if s.shown is not None:
        return s.shown
    if s.default is None or s.default == {}:
        return "—"
    return f"`{s.shown_default()}` {s.unit}".rstrip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(settings: tuple[Setting, ...]) -> str:
    """``docs/settings.md``: one row per setting that a person sets, from the declarations."""
    rows = []
    for s in settings:
        if s.env is None:
            continue  # set in code only
        where = f"`{s.connection}`" if s.connection else (f"extra `{s.name}`" if s.is_extra else "—")
        meaning = s.help[0].upper() + s.help[1:] + (f", e.g. `{s.example}`" if s.example else "") + "."
        if s.doc:
            meaning += " " + s.doc
        cells = (
            f"`{s.env}`",
            where,
            f"`{s.flag}`" if s.flag else "—",
            _default(s),
            s.accepted(),
            meaning,
        )
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |\n")
    return _DOC_HEAD + "".join(rows)
