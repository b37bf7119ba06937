"""Keyword tables: each keyword is declared once, beside the function that parses it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nsproxy.config.model import Where

_INTEGER = re.compile(r"[+-]?[0-9]+")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(Exception):
    """A configuration problem; the parser collects these and reports them all.

    `style` picks HAProxy's layout for the location: "parsing [f:L] : msg" (default),
    "parsing [f:L]: msg" ("nospace") or "[f:L] : msg" ("bracket", server lines).
    """

    def __init__(self, msg: str, style: str = "parsing") -> None:
        super().__init__(msg)
        self.style = style


class ConfigWarning(Exception):
    """Raised by a keyword to report a warning and ignore the line."""


def parse_time(text: str, default_unit: str = "ms") -> float:
    """HAProxy time syntax ('10s', '500', '1m30s' is not allowed): seconds as a float."""
    digits = len(text) - len(text.lstrip("0123456789"))
    if digits == 0:
        raise ConfigError(f"unexpected character '{text[:1]}' in time value '{text}'")
    unit = text[digits:] or default_unit
    if unit not in _UNITS:
        raise ConfigError(f"unexpected character '{unit[0]}' in time value '{text}'")
    value = int(text[:digits]) * _UNITS[unit]
    if value > 2147483.647:
        raise ConfigError(f"timer overflow in argument '{text}' (maximum value is 2147483647 ms)")
    return value


def parse_int(text: str, what: str, lo: int = 0, hi: int = 2**31 - 1) -> int:
    """A decimal integer of ASCII digits (not int()'s Unicode digits, '_' or spaces)."""
    if not _INTEGER.fullmatch(text):
        raise ConfigError(f"'{what}' expects an integer argument, got '{text}'.")
    value = int(text, 10)
    if not lo <= value <= hi:
        raise ConfigError(f"'{what}' expects a value between {lo} and {hi}, got '{text}'.")
    return value


@dataclass(slots=True)
class Section:
    """The section being parsed: its kind, name and the fields gathered for its dataclass."""

    kind: str
    name: str
    where: Where
    fields: dict[str, Any] = field(default_factory=dict)
    is_frontend: bool = False
    is_backend: bool = False
    skip: bool = False


@dataclass(slots=True)
class Ctx:
    """What a keyword handler sees: the line's place, the current section, the parse state."""

    where: Where
    section: Section
    state: Any

    def warn(self, msg: str) -> None:
        self.state.warn(self.where, msg)

    def need(self, args: list[str], count: int, usage: str) -> None:
        if len(args) < count + 1:
            raise ConfigError(f"'{args[0]}' expects {usage}.")


Handler = Callable[[Ctx, list[str]], None]


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword: its word, the section kinds it is valid in, and its parser."""

    name: str
    sections: frozenset[str]
    handler: Handler
    frontend: bool = True
    backend: bool = True


@dataclass(slots=True)
class KeywordTable:
    """A table of keywords for one place (sections, `option`, `timeout`, bind/server options).

    One word may be declared several times for disjoint sets of sections.
    """

    what: str
    entries: dict[str, list[Keyword]] = field(default_factory=dict)

    def register(
        self, name: str, *sections: str, frontend: bool = True, backend: bool = True
    ) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            kw = Keyword(name, frozenset(sections), fn, frontend, backend)
            same = self.entries.setdefault(name, [])
            if any(k.sections & kw.sections or not k.sections for k in same):
                raise RuntimeError(f"{self.what} keyword '{name}' declared twice")
            same.append(kw)
            return fn

        return deco

    def get(self, name: str, section: str | None = None) -> Keyword | None:
        for kw in self.entries.get(name, ()):
            if section is None or not kw.sections or section in kw.sections:
                return kw
        return None

    def names(self, section: str | None = None) -> list[str]:
        return sorted(
            name
            for name, kws in self.entries.items()
            if any(section is None or section in k.sections for k in kws)
        )


SECTIONS = KeywordTable("section")
KEYWORDS = KeywordTable("keyword")
OPTIONS = KeywordTable("option")
TIMEOUTS = KeywordTable("timeout")
BIND_OPTIONS = KeywordTable("bind")
SERVER_OPTIONS = KeywordTable("server")

PROXY_SECTIONS = ("defaults", "frontend", "backend", "listen")


PostCheck = Callable[[Any, Any], None]
POST_CHECKS: list[PostCheck] = []


def post_check(fn: PostCheck) -> PostCheck:
    """Registers a whole-configuration check that runs once every line is parsed."""
    POST_CHECKS.append(fn)
    return fn


PreBuild = Callable[[Any], None]
PRE_BUILDS: list[PreBuild] = []


def pre_build(fn: PreBuild) -> PreBuild:
    """Registers a step over the parse state that runs once every line is parsed, before the
    model is built (what HAProxy resolves only when a section's settings are final)."""
    PRE_BUILDS.append(fn)
    return fn
