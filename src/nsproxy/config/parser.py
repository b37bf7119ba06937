"""The parser core: reads lines, dispatches them through the keyword tables, builds the model."""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nsproxy.config import keywords as _keywords  # noqa: F401  (fills the keyword tables)
from nsproxy.config.lexer import LexError, split_line
from nsproxy.config.model import (
    Config,
    GlobalCfg,
    NamespacePattern,
    ProxyCfg,
    Timeouts,
    Where,
)
from nsproxy.config.registry import (
    KEYWORDS,
    POST_CHECKS,
    PRE_BUILDS,
    SECTIONS,
    ConfigError,
    ConfigWarning,
    Ctx,
    Section,
)
from nsproxy.netns import NETNS_RUN_DIR


@dataclass(slots=True)
class ParseState:
    """Everything gathered while parsing: sections, defaults, namespaces, errors, warnings."""

    netns_dir: str = NETNS_RUN_DIR
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    global_: Section = field(default_factory=lambda: Section("global", "", Where("", 0)))
    defaults: dict[str, Section] = field(default_factory=dict)
    last_defaults: Section | None = None
    proxies: list[Section] = field(default_factory=list)
    namespaces: dict[str, Where] = field(default_factory=dict)
    used_namespaces: dict[str, Where] = field(default_factory=dict)
    namespace_patterns: list[NamespacePattern] = field(default_factory=list)
    current: Section | None = None

    def error(self, where: Where, msg: str, style: str = "parsing") -> None:
        if style == "nospace":
            self.errors.append(f"parsing [{where}]: {msg}")
        elif style == "bracket":
            self.errors.append(f"[{where}] : {msg}")
        else:
            self.errors.append(f"parsing [{where}] : {msg}")

    def warn(self, where: Where, msg: str) -> None:
        self.warnings.append(f"parsing [{where}] : {msg}")


def _dispatch(state: ParseState, where: Where, words: list[str]) -> None:
    section_kw = SECTIONS.get(words[0])
    if section_kw is not None:
        section_kw.handler(Ctx(where, state.global_, state), words)
        return
    section = state.current
    if section is None:
        raise ConfigError(f"unknown keyword '{words[0]}' out of section.")
    if section.skip:
        return
    kw = KEYWORDS.get(words[0], section.kind)
    if kw is None:
        raise ConfigError(f"unknown keyword '{words[0]}' in '{section.kind}' section")
    if section.kind in ("frontend", "backend", "listen") and (
        (not kw.frontend and not section.is_backend) or (not kw.backend and not section.is_frontend)
    ):
        cap = "backend" if not kw.frontend else "frontend"
        state.warn(
            where,
            f"'{words[0]}' ignored because {section.kind} '{section.name}' "
            f"has no {cap} capability.",
        )
        return
    kw.handler(Ctx(where, section, state), words)


def _fields_for(cls: type[Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in names:
            continue
        if isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


def _build(state: ParseState) -> Config:
    gfields = _fields_for(GlobalCfg, state.global_.fields)
    proxies: list[ProxyCfg] = []
    # A `stats socket` makes HAProxy's internal GLOBAL frontend, which takes id 1.
    first_id = 2 if gfields.get("stats_sockets") else 1
    for pid, sec in enumerate(state.proxies, start=first_id):
        fields = _fields_for(ProxyCfg, sec.fields)
        fields["timeouts"] = Timeouts(**sec.fields.get("timeouts", {}))
        fields.setdefault("id", pid)
        proxies.append(
            ProxyCfg(
                where=sec.where,
                name=sec.name,
                is_frontend=sec.is_frontend,
                is_backend=sec.is_backend,
                **{k: v for k, v in fields.items() if k not in ("where", "name")},
            )
        )
    names = dict(state.used_namespaces)
    names.update(state.namespaces)
    patterns = tuple(state.namespace_patterns)
    return Config(GlobalCfg(**gfields), tuple(proxies), tuple(names), patterns)


def parse_lines(
    lines: Iterable[tuple[Where, list[str]]], state: ParseState | None = None
) -> tuple[Config | None, ParseState]:
    """Parses already-split lines. Returns the model (None when there were errors)."""
    state = state or ParseState()
    for where, words in lines:
        try:
            _dispatch(state, where, words)
        except ConfigWarning as exc:
            state.warn(where, str(exc))
        except ConfigError as exc:
            state.error(where, str(exc), exc.style)
    for step in PRE_BUILDS:
        step(state)
    try:
        config = _build(state)
    except (TypeError, ValueError) as exc:
        state.errors.append(f"config : {exc}")
        return None, state
    for check in POST_CHECKS:
        check(state, config)
    return (None if state.errors else config), state


def _section_name(state: ParseState) -> str:
    return state.current.name if state.current is not None else ""


def expand_paths(paths: Iterable[str]) -> list[str]:
    """`-f` arguments: files as given, directories as their `*.cfg` files in name order."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            out.extend(
                os.path.join(path, n)
                for n in sorted(os.listdir(path))
                if n.endswith(".cfg") and os.path.isfile(os.path.join(path, n))
            )
        else:
            out.append(path)
    return out


def parse_files(
    paths: Iterable[str],
    env: Mapping[str, str] | None = None,
    netns_dir: str = NETNS_RUN_DIR,
    presets: Mapping[str, Any] | None = None,
) -> tuple[Config | None, ParseState]:
    """Reads and parses configuration files; every error is collected, not just the first.

    `presets`: global-section fields set before the first line (the command line's -L)."""
    state = ParseState(netns_dir=netns_dir)
    state.global_.fields.update(presets or {})
    env = os.environ if env is None else env

    base_env = dict(env)

    def gen() -> Iterable[tuple[Where, list[str]]]:
        for path in expand_paths(paths):
            state.current = None
            try:
                with open(path, encoding="utf-8", errors="surrogateescape") as f:
                    text = f.read()
            except OSError as exc:
                state.errors.append(f"Could not open configuration file {path} : {exc.strerror}")
                continue
            for lineno, line in enumerate(text.split("\n"), start=1):
                where = Where(path, lineno)
                scope: collections.ChainMap[str, str] = collections.ChainMap(
                    {".FILE": path, ".LINE": str(lineno), ".SECTION": _section_name(state)},
                    base_env,
                )
                try:
                    words = split_line(line, scope)
                except LexError as exc:
                    state.error(where, str(exc))
                    continue
                if words:
                    yield where, words

    cwd = os.getcwd()
    try:
        return parse_lines(gen(), state)
    finally:
        os.chdir(cwd)  # `default-path` changes it while the files are read
