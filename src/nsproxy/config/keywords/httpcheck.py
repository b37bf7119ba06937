"""`option httpchk` and the `http-check` keyword, declared here with their parsers."""

from __future__ import annotations

import dataclasses
import re

from nsproxy.config.model_check import HttpCheckCfg, HttpExpect
from nsproxy.config.registry import KEYWORDS, OPTIONS, ConfigError, ConfigWarning, Ctx

_EXPECTS = ("status", "rstatus", "string", "rstring")


def _cfg(ctx: Ctx) -> HttpCheckCfg:
    cfg: HttpCheckCfg = ctx.section.fields.get("http_check") or HttpCheckCfg()
    return cfg


def _need_backend(ctx: Ctx, what: str) -> None:
    if not ctx.section.is_backend and ctx.section.kind != "defaults":
        raise ConfigWarning(
            f"'{what}' ignored because {ctx.section.kind} '{ctx.section.name}' has no backend "
            "capability."
        )


@OPTIONS.register("httpchk")
def _httpchk(ctx: Ctx, args: list[str]) -> None:
    """`option httpchk [[METHOD] URI [VERSION]]`."""
    _need_backend(ctx, "httpchk")
    if args[-1] == "off":
        ctx.section.fields.pop("http_check", None)
        return
    words = args[1:-1] if args[-1] == "on" else args[1:]
    cfg = HttpCheckCfg()
    if len(words) == 1:
        cfg = dataclasses.replace(cfg, uri=words[0])
    elif len(words) == 2:
        cfg = dataclasses.replace(cfg, method=words[0], uri=words[1])
    elif len(words) >= 3:
        cfg = dataclasses.replace(cfg, method=words[0], uri=words[1], version=" ".join(words[2:]))
    ctx.section.fields["http_check"] = dataclasses.replace(
        cfg, expect=_cfg(ctx).expect, disable_on_404=_cfg(ctx).disable_on_404
    )


def _send(ctx: Ctx, words: list[str]) -> HttpCheckCfg:
    cfg = _cfg(ctx)
    headers = list(cfg.headers)
    i = 0
    while i < len(words):
        key = words[i]
        if key in ("meth", "uri", "ver", "body") and i + 1 < len(words):
            value = words[i + 1]
            if key == "meth":
                cfg = dataclasses.replace(cfg, method=value)
            elif key == "uri":
                cfg = dataclasses.replace(cfg, uri=value)
            elif key == "ver":
                cfg = dataclasses.replace(cfg, version=value)
            else:
                cfg = dataclasses.replace(cfg, body=value)
            i += 2
        elif key == "hdr" and i + 2 < len(words):
            headers.append((words[i + 1], words[i + 2]))
            i += 3
        else:
            raise ConfigError(
                f"'http-check send' : unknown keyword '{key}' (expects 'meth', 'uri', 'ver', "
                "'hdr', 'body', 'uri-lf', 'body-lf' or 'comment')."
            )
    return dataclasses.replace(cfg, headers=tuple(headers))


def _expect(words: list[str]) -> HttpExpect:
    negate = bool(words) and words[0] == "!"
    if negate:
        words = words[1:]
    if len(words) < 2 or words[0] not in _EXPECTS:
        raise ConfigError(
            "'http-check expect' : expects a keyword among 'status', 'rstatus', 'string' and "
            "'rstring' followed by a pattern."
        )
    kind, pattern = words[0], " ".join(words[1:])
    regex = None
    if kind.startswith("r"):
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"'http-check expect' : regex '{pattern}' : {exc}") from None
    return HttpExpect(kind, pattern, negate, regex)


@KEYWORDS.register("http-check", "defaults", "backend", "listen", frontend=False)
def _http_check(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError(
            "'http-check' expects 'comment', 'connect', 'disable-on-404', 'expect', "
            "'send-state', 'set-var', 'unset-var' or 'send'."
        )
    kind = args[1]
    if kind == "comment":
        return
    if kind == "disable-on-404":
        ctx.section.fields["http_check"] = dataclasses.replace(_cfg(ctx), disable_on_404=True)
    elif kind == "send":
        ctx.section.fields["http_check"] = _send(ctx, args[2:])
    elif kind == "expect":
        ctx.section.fields["http_check"] = dataclasses.replace(_cfg(ctx), expect=_expect(args[2:]))
    elif kind in ("send-state", "connect"):
        raise ConfigWarning(f"'http-check {kind}' is not supported by nsproxy yet; ignored.")
    else:
        raise ConfigError(
            f"'http-check' expects 'comment', 'connect', 'disable-on-404', 'expect', "
            f"'send-state', 'set-var', 'unset-var' or 'send' (got '{kind}')."
        )
