"""`log-format` and `unique-id-format`: kept as text while parsing, compiled once the proxy's
mode is final (HAProxy parses them in its configuration check, a defaults section's format in
each frontend that inherits it)."""

from __future__ import annotations

import dataclasses
from typing import Any

from nsproxy.config.model import Where
from nsproxy.config.model_http import HttpCfg
from nsproxy.config.registry import KEYWORDS, OPTIONS, Ctx, pre_build
from nsproxy.sample import Hook, SampleError, compile_logformat
from nsproxy.sample.patref import CompileEnv, PatRefs

FE = ("defaults", "frontend", "listen")
# field of the compiled format -> (field of its source text, HAProxy's name in errors)
FORMATS = {
    "log_format": ("_log_format_src", "log-format"),
    "unique_id_format": ("_uid_src", "unique-id"),
}


def _store(ctx: Ctx, args: list[str], field: str) -> None:
    ctx.need(args, 1, "an argument")
    src, _ = FORMATS[field]
    ctx.section.fields[src] = (" ".join(args[1:]), ctx.where)
    ctx.section.fields.pop(field, None)


def warn_format_override(ctx: Ctx, new: str) -> None:
    """HAProxy's warning when a `defaults` section sets a log format over another one."""
    if ctx.section.kind != "defaults":
        return
    f = ctx.section.fields
    http: HttpCfg | None = f.get("http")
    old = None
    if f.get("_log_format_src") is not None or f.get("log_format") is not None:
        old = "log-format"
    elif http is not None and http.httplog:
        old = "option httplog clf" if http.clf else "option httplog"
    elif f.get("tcplog"):
        old = "option tcplog"
    if old is not None:
        ctx.state.warnings.append(
            f"parsing [{ctx.where}]: '{new}' overrides previous '{old}' in 'defaults' section."
        )


def forget_log_format(ctx: Ctx) -> None:
    """`option httplog`/`tcplog` replace a `log-format` given before (or inherited), as each
    of them sets HAProxy's one log format string."""
    ctx.section.fields.pop("_log_format_src", None)
    ctx.section.fields.pop("log_format", None)


def forget_httplog(ctx: Ctx) -> None:
    """A later `option tcplog` or `log-format` replaces `option httplog`'s format, as in HAProxy
    (one log format per proxy: the last directive wins, and no fallback warning follows)."""
    ctx.section.fields["_httplog_where"] = None
    http: HttpCfg | None = ctx.section.fields.get("http")
    if http is not None and http.httplog:
        ctx.section.fields["http"] = dataclasses.replace(http, httplog=False, clf=False)


@KEYWORDS.register("log-format", *FE, backend=False)
def _log_format(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an argument")
    warn_format_override(ctx, "log-format")
    _store(ctx, args, "log_format")
    forget_httplog(ctx)


@OPTIONS.register("tcplog")
def _tcplog(ctx: Ctx, args: list[str]) -> None:
    on = args[-1] == "on"
    if on:
        warn_format_override(ctx, "option tcplog")
    ctx.section.fields["tcplog"] = on
    if on:
        forget_log_format(ctx)
        forget_httplog(ctx)


@KEYWORDS.register("unique-id-format", *FE, backend=False)
def _unique_id_format(ctx: Ctx, args: list[str]) -> None:
    _store(ctx, args, "unique_id_format")


@pre_build
def _compile_formats(state: Any) -> None:
    """Each frontend's formats compiled in its mode; errors as HAProxy's check reports them."""
    for sec in state.proxies:
        fields = sec.fields
        for field, (src, name) in FORMATS.items():
            text_where: tuple[str, Where] | None = fields.pop(src, None)
            if text_where is None or not sec.is_frontend:
                continue
            text, where = text_where
            http = fields.get("mode") == "http"
            refs = state.global_.fields.setdefault("pattern_refs", PatRefs())
            env = CompileEnv(refs, where.file, where.line, sec.name or None)
            try:
                fields[field] = compile_logformat(
                    text, Hook.FE_LOG_END, env, http=http, mode_http=http
                )
            except SampleError as exc:
                state.errors.append(f"Parsing [{where}]: failed to parse {name} : {exc}.")
