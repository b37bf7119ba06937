"""`log-format` and `unique-id-format`: kept as text while parsing, compiled once the proxy's
mode is final (HAProxy parses them in its configuration check, a defaults section's format in
each frontend that inherits it)."""

from __future__ import annotations

from typing import Any

from nsproxy.config.model import Where
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


@KEYWORDS.register("log-format", *FE, backend=False)
def _log_format(ctx: Ctx, args: list[str]) -> None:
    _store(ctx, args, "log_format")


def forget_log_format(ctx: Ctx) -> None:
    """`option httplog`/`tcplog` replace a `log-format` given before (or inherited), as each
    of them sets HAProxy's one log format string."""
    ctx.section.fields.pop("_log_format_src", None)
    ctx.section.fields.pop("log_format", None)


@OPTIONS.register("tcplog")
def _tcplog(ctx: Ctx, args: list[str]) -> None:
    on = args[-1] == "on"
    ctx.section.fields["tcplog"] = on
    if on:
        forget_log_format(ctx)


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
