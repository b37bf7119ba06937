"""HTTP-mode keywords: options, timeouts, rules, redirects, captures, error files, checks.

Each keyword updates the section's `HttpCfg` (`section.fields["http"]`, becoming
`ProxyCfg.http`). Rules compile at load (http_actions.py, http_reply.py) with the
section's ACLs (`fields["acls"]`, shared with the `acl` keyword) and the configuration's
pattern references. Keywords HAProxy accepts in TCP mode and ignores there are accepted, and
the configuration check prints HAProxy's warnings for them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from typing import Any

from nsproxy.config.keywords.http_actions import (
    KNOWN,
    SUPPORTED,
    RuleEnv,
    known_action,
    parse_action,
    suggest,
)
from nsproxy.config.keywords.http_reply import (
    compile_redirect,
    load_errorfile,
    parse_redirect,
)
from nsproxy.config.keywords.log_formats import forget_log_format, warn_format_override
from nsproxy.config.keywords.rules import env_of
from nsproxy.config.model import Config
from nsproxy.config.model_http import (
    FORWARDFOR_HEADER,
    ORIGINALTO_HEADER,
    AddrHeader,
    Capture,
    ErrorFile,
    HttpCfg,
    HttpResult,
    HttpRule,
    Run,
)
from nsproxy.config.registry import (
    KEYWORDS,
    OPTIONS,
    TIMEOUTS,
    ConfigError,
    ConfigWarning,
    Ctx,
    post_check,
)
from nsproxy.http import answers
from nsproxy.proto.h1.connection import HttpMode
from nsproxy.sample import AclSet, Hook, SampleError, Verdict, compile_condition
from nsproxy.sample.acl import Condition, conflict_warning
from nsproxy.sample.context import Txn

PROXIES = ("frontend", "backend", "listen")
ALL = ("defaults", *PROXIES)
FE = ("defaults", "frontend", "listen")
BE = ("defaults", "backend", "listen")


def http_cfg(ctx: Ctx) -> HttpCfg:
    """The section's HTTP settings so far."""
    cfg: HttpCfg = ctx.section.fields.get("http") or HttpCfg()
    return cfg


def _update(ctx: Ctx, **changes: Any) -> None:
    ctx.section.fields["http"] = dataclasses.replace(http_cfg(ctx), **changes)


def update_http(ctx: Ctx, **changes: Any) -> None:
    """Replaces fields of the section's HTTP settings (for keyword modules beside this one)."""
    _update(ctx, **changes)


def _px(ctx: Ctx) -> str:
    """HAProxy's proxy_type_str() and name: "frontend 'fe'", "proxy 'l'" for a listen."""
    kind = "proxy" if ctx.section.kind == "listen" else ctx.section.kind
    return f"{kind} '{ctx.section.name}'"


# --- timeouts -----------------------------------------------------------------------------


def _timer(field: str) -> None:
    def handler(ctx: Ctx, args: list[str]) -> None:
        ctx.section.fields.setdefault("timeouts", {})[field] = float(args[1])

    TIMEOUTS.register(field.replace("_", "-"))(handler)


for _name in ("http_request", "http_keep_alive", "tarpit"):
    _timer(_name)


# --- options ------------------------------------------------------------------------------


@OPTIONS.register("httplog")
def _httplog(ctx: Ctx, args: list[str]) -> None:
    on = args[-1] == "on"
    rest = args[1:-1]
    if rest and rest[0] != "clf":
        raise ConfigError("keyword 'httplog' only supports option 'clf'.")
    if on and not ctx.section.is_frontend and ctx.section.kind != "defaults":
        raise ConfigWarning(
            f"backend '{ctx.section.name}' : 'option httplog' directive is ignored in backends."
        )
    if on:
        warn_format_override(ctx, "option httplog clf" if rest else "option httplog")
    ctx.section.fields["_httplog_where"] = ctx.where if on else None
    if on:
        ctx.section.fields["tcplog"] = False
        forget_log_format(ctx)
    _update(ctx, httplog=on, clf=on and bool(rest))


def _addr_header(ctx: Ctx, args: list[str], option: str, default: str) -> AddrHeader | None:
    if args[-1] != "on":
        return None
    rest = args[1:-1]
    header = default
    except_net = None
    if_none = False
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "except":
            value = rest[i + 1] if i + 1 < len(rest) else ""
            try:
                except_net = ipaddress.ip_network(value, strict=False) if value else None
            except ValueError:
                except_net = None
            if except_net is None:
                raise ConfigError(f"'option {option} except' expects <address>[/mask] as argument.")
            i += 2
        elif word == "header":
            if i + 1 >= len(rest):
                raise ConfigError(f"'option {option} header' expects <header_name> as argument.")
            header = rest[i + 1]
            i += 2
        elif word == "if-none" and option == "forwardfor":
            if_none = True
            i += 1
        else:
            supported = (
                "'except', 'header' and 'if-none'"
                if option == "forwardfor"
                else "'except' and 'header'"
            )
            raise ConfigError(f"'option {option}' only supports optional values: {supported}.")
    return AddrHeader(header, except_net, if_none)


@OPTIONS.register("forwardfor")
def _forwardfor(ctx: Ctx, args: list[str]) -> None:
    _update(ctx, forwardfor=_addr_header(ctx, args, "forwardfor", FORWARDFOR_HEADER))


@OPTIONS.register("originalto")
def _originalto(ctx: Ctx, args: list[str]) -> None:
    _update(ctx, originalto=_addr_header(ctx, args, "originalto", ORIGINALTO_HEADER))


def _conn_mode(mode: HttpMode) -> None:
    def handler(ctx: Ctx, args: list[str]) -> None:
        if args[-1] == "on":
            _update(ctx, mode=mode)
        elif http_cfg(ctx).mode is mode:
            _update(ctx, mode=HttpMode.KEEP_ALIVE)

    OPTIONS.register(mode.value)(handler)


for _mode in HttpMode:
    _conn_mode(_mode)


@OPTIONS.register("http-buffer-request")
def _buffer_request(ctx: Ctx, args: list[str]) -> None:
    _update(ctx, http_buffer_request=args[-1] == "on")


@OPTIONS.register("http-pretend-keepalive")
def _pretend_keepalive(ctx: Ctx, args: list[str]) -> None:
    if ctx.section.kind == "frontend":
        ctx.warn(
            f"'{args[0]}' ignored because frontend '{ctx.section.name}' has no backend capability."
        )
        return
    _update(ctx, pretend_keepalive=args[-1] == "on")


def _case_adjust(field: str, side: str) -> Callable[[Ctx, list[str]], None]:
    """An HTTP option only the proxy's `side` uses (h1-case-adjust-bogus-client|server,
    http-ignore-probes)."""
    other = "frontend" if side == "backend" else "backend"

    def handler(ctx: Ctx, args: list[str]) -> None:
        if ctx.section.kind == other:
            ctx.warn(
                f"'{args[0]}' ignored because {other} '{ctx.section.name}' has no {side} "
                "capability."
            )
            return
        _update(ctx, **{field: args[-1] == "on"})

    return handler


OPTIONS.register("h1-case-adjust-bogus-client")(_case_adjust("case_adjust_client", "frontend"))
OPTIONS.register("h1-case-adjust-bogus-server")(_case_adjust("case_adjust_server", "backend"))
# a client that connects and leaves (or times out) without a byte: no 408, no log, no counter
OPTIONS.register("http-ignore-probes")(_case_adjust("ignore_probes", "frontend"))


def _removed(since: str, advice: str) -> Callable[[Ctx, list[str]], None]:
    def handler(ctx: Ctx, args: list[str]) -> None:
        raise ConfigError(
            f"option '{args[0]}' is not supported any more since HAProxy {since}, please just "
            f"remove it, {advice}",
            style="nospace",
        )

    return handler


OPTIONS.register("forceclose")(_removed("2.0", "or use 'option httpclose' if absolutely needed."))
OPTIONS.register("http-tunnel")(_removed("2.1", "it shouldn't be needed."))


def _not_used(ctx: Ctx, args: list[str]) -> None:
    raise ConfigWarning(f"'option {args[0]}' is not used by nsproxy; ignored.")


for _opt in (
    "http-no-delay",
    "http-use-proxy-header",
    "accept-invalid-http-request",
    "accept-invalid-http-response",
    "http-restrict-req-hdr-names",
    "disable-h2-upgrade",
):
    if OPTIONS.get(_opt) is None:
        OPTIONS.register(_opt)(_not_used)


# --- proxy keywords -----------------------------------------------------------------------


@KEYWORDS.register("monitor-uri", *ALL, backend=False)
def _monitor_uri(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2 or not args[1]:
        raise ConfigError("'monitor-uri' expects an URI.")
    if len(args) > 2:
        raise ConfigError(f"'monitor-uri' cannot handle unexpected argument '{args[2]}'.")
    _update(ctx, monitor_uri=args[1].encode("latin-1", "surrogateescape"))


@KEYWORDS.register("unique-id-header", *ALL)
def _unique_id_header(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("unique-id-header expects an argument.")
    _update(ctx, unique_id_header=args[1])


_REUSE = ("never", "safe", "aggressive", "always")


@KEYWORDS.register("http-reuse", *ALL, frontend=False)
def _http_reuse(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2 or args[1] not in _REUSE:
        raise ConfigError("'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'.")
    _update(ctx, http_reuse=args[1])


@KEYWORDS.register("capture", *ALL, backend=False)
def _capture(ctx: Ctx, args: list[str]) -> None:
    what = args[1] if len(args) > 1 else ""
    if what == "cookie":
        if len(args) < 5 or args[3] != "len":
            raise ConfigError("'capture' expects 'cookie' <cookie_name> 'len' <len>.")
        _update(ctx, capture_cookie=(args[2], _atoi(args[4])))
        return
    if what not in ("request", "response"):
        raise ConfigError("'capture' expects 'cookie' or 'request header' or 'response header'.")
    if len(args) < 6 or args[2] != "header" or args[4] != "len":
        raise ConfigError(f"'capture {what}' expects 'header' <header_name> 'len' <len>.")
    cap = Capture(args[3].lower(), _atoi(args[5]))
    cfg = http_cfg(ctx)
    if what == "request":
        _update(ctx, req_captures=(*cfg.req_captures, cap))
    else:
        _update(ctx, res_captures=(*cfg.res_captures, cap))


def _atoi(text: str) -> int:
    digits = len(text) - len(text.lstrip("0123456789"))
    return int(text[:digits]) if digits else 0


@KEYWORDS.register("declare", *ALL)
def _declare(ctx: Ctx, args: list[str]) -> None:
    if not ctx.section.is_frontend or ctx.section.kind == "defaults":
        raise ConfigError("'declare' only available in frontend or listen section")
    if len(args) < 2 or not args[1]:
        raise ConfigError(
            "'declare' needs a second keyword that specify the type of declaration ('capture')"
        )
    if args[1] != "capture":
        raise ConfigError(f"unknown declaration type '{args[1]}' (supports 'capture')")
    if len(args) < 3 or args[2] not in ("request", "response"):
        raise ConfigError("'declare capture' requires a direction ('request' or 'response')")
    if len(args) < 4 or args[3] != "len":
        raise ConfigError("'declare capture' requires a capture length ('len')")
    if len(args) < 5 or not args[4]:
        raise ConfigError(
            "'declare capture': 'len' requires a numeric value that represents the capture length"
        )
    if not args[4].isdigit():
        raise ConfigError("'declare capture': cannot parse the length 'len'.")
    length = int(args[4])
    if length <= 0:
        raise ConfigError("length must be > 0")
    cfg = http_cfg(ctx)
    cap = Capture(None, length)
    if args[2] == "request":
        _update(ctx, req_captures=(*cfg.req_captures, cap))
    else:
        _update(ctx, res_captures=(*cfg.res_captures, cap))


@KEYWORDS.register("errorfile", *ALL)
def _errorfile(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 3:
        raise ConfigError("errorfile : expects <status_code> and <file> as arguments.")
    status = _atoi(args[1])
    if status not in answers.MESSAGES:
        raise ConfigError(f"errorfile : status code '{status}' not handled.")
    ef = load_errorfile(status, args[2])
    kept = tuple(e for e in http_cfg(ctx).errorfiles if e.status != status)
    _update(ctx, errorfiles=(*kept, ef))


@KEYWORDS.register("errorfiles", *ALL)
def _errorfiles(ctx: Ctx, args: list[str]) -> None:
    raise ConfigError("'errorfiles' (http-errors sections) is not supported by nsproxy yet.")


@KEYWORDS.register("http-error", *ALL)
def _http_error(ctx: Ctx, args: list[str]) -> None:
    raise ConfigError("'http-error' is not supported by nsproxy yet.")


# --- rules --------------------------------------------------------------------------------


def _acls(ctx: Ctx) -> AclSet:
    acls: AclSet = ctx.section.fields.setdefault("acls", AclSet())
    return acls


def _hook(ctx: Ctx, kind: str) -> Hook:
    """Where the rules of `kind` run in this proxy (the frontend's place when it has one)."""
    fe = ctx.section.is_frontend
    if kind == "http-request":
        return Hook.FE_HRQ_HDR if fe else Hook.BE_HRQ_HDR
    return Hook.FE_HRS_HDR if fe else Hook.BE_HRS_HDR


def _errorfile_lookup(ctx: Ctx) -> Callable[[int], ErrorFile | None]:
    fields = ctx.section.fields

    def find(status: int) -> ErrorFile | None:
        cfg: HttpCfg | None = fields.get("http")
        return None if cfg is None else cfg.errorfile(status)

    return find


def _new_capture(ctx: Ctx) -> Callable[[int], int]:
    def new(length: int) -> int:
        if not ctx.section.is_frontend:
            raise ConfigError(f"proxy '{ctx.section.name}' has no frontend capability")
        cfg = http_cfg(ctx)
        _update(ctx, req_captures=(*cfg.req_captures, Capture(None, length)))
        return len(cfg.req_captures)

    return new


def _capture_len(ctx: Ctx, response: bool) -> Callable[[int], int | None]:
    fields = ctx.section.fields

    def length(idx: int) -> int | None:
        cfg: HttpCfg | None = fields.get("http")
        if cfg is None:
            return None
        slots = cfg.res_captures if response else cfg.req_captures
        return slots[idx].length if idx < len(slots) else None

    return length


def _guard(cond: Condition | None, act: Run) -> Run:
    if cond is None:
        return act
    run_cond = cond.run
    passed = Verdict.PASS

    def run(txn: Txn) -> HttpResult | None:
        if run_cond(txn) is not passed:
            return None
        return act(txn)

    return run


def _condition(ctx: Ctx, args: list[str], i: int, what: str, hook: Hook) -> Condition | None:
    if i >= len(args):
        return None
    if args[i] not in ("if", "unless"):
        raise ConfigError(
            f"'{what}' expects either 'if' or 'unless' followed by a condition but found "
            f"'{args[i]}'.",
            style="nospace",
        )
    try:
        cond = compile_condition(args[i:], _acls(ctx), hook, env_of(ctx))
    except SampleError as e:
        raise ConfigError(f"error detected while parsing an '{what}' condition : {e}.") from None
    c = cond.conflict(hook)
    if c is not None:
        ctx.warn(conflict_warning(c, hook))
    return cond


def _warn_misplaced(ctx: Ctx, what: str, before: tuple[str, ...]) -> None:
    """HAProxy's warning for a rule written after rules that run later than it."""
    rules = ctx.section.fields.get("rules")
    cfg = http_cfg(ctx)
    present = {
        "redirect": bool(cfg.redirect),
        "use_backend": bool(getattr(rules, "use_backend", ())),
        "use-server": bool(getattr(rules, "use_server", ())),
    }
    for other in before:
        if present[other]:
            ctx.warn(
                f"a '{what}' rule placed after a '{other}' rule will still be processed before."
            )
            return


def _rule(ctx: Ctx, args: list[str]) -> None:
    kind = args[0]
    if ctx.section.kind == "defaults" and not ctx.section.name:
        raise ConfigError(f"'{kind}' not allowed in anonymous 'defaults' section.")
    action = args[1] if len(args) > 1 else ""
    if not known_action(kind, action):
        missing = " (missing argument)" if not action else ""
        best = suggest(kind, action)
        hint = f" Did you mean '{best}' maybe ?" if best else ""
        raise ConfigError(
            f"'{kind}' expects {KNOWN[kind]}, but got '{action}'{missing}.{hint}",
            style="nospace",
        )
    base = action.split("(", 1)[0]
    if base not in SUPPORTED[kind]:
        raise ConfigError(f"'{kind} {action}' is not supported by nsproxy in {_px(ctx)}.")
    hook = _hook(ctx, kind)
    response = kind != "http-request"
    renv = RuleEnv(
        kind,
        ctx.section.name,
        hook,
        env_of(ctx),
        ctx.warn,
        _errorfile_lookup(ctx),
        _new_capture(ctx),
        _capture_len(ctx, response),
    )
    try:
        act, i = parse_action(args, renv)
    except ConfigError as e:
        raise ConfigError(
            f"error detected in {_px(ctx)} while parsing '{kind} {action}' rule : {e}."
        ) from None
    if base == "capture" and i > 0 and args[i - 2] == "id":
        ctx.section.fields.setdefault("_capture_ids", []).append((kind, int(args[i - 1])))
    cond = _condition(ctx, args, i, f"{kind} {action}", hook)
    if kind == "http-request":
        _warn_misplaced(ctx, kind, ("redirect", "use_backend", "use-server"))
    if ctx.section.fields.get("_httplog_where") is not None:
        # HAProxy reports `option httplog` at the last rule line parsed after it
        ctx.section.fields["_httplog_where"] = ctx.where
    rule = HttpRule(ctx.where, base, _guard(cond, act), cond)
    cfg = http_cfg(ctx)
    field = kind.replace("-", "_")
    _update(ctx, **{field: (*getattr(cfg, field), rule)})


for _rule_kind in ("http-request", "http-response", "http-after-response"):
    KEYWORDS.register(_rule_kind, *ALL)(_rule)


@KEYWORDS.register("redirect", *PROXIES)
def _redirect(ctx: Ctx, args: list[str]) -> None:
    hook = _hook(ctx, "http-request")
    try:
        spec, i = parse_redirect(args, 1, env_of(ctx), hook)
    except ConfigError as e:
        raise ConfigError(
            f"error detected in {_px(ctx)} while parsing redirect rule : {e}."
        ) from None
    cond = None
    if i < len(args):
        try:
            cond = compile_condition(args[i:], _acls(ctx), hook, env_of(ctx))
        except SampleError as e:
            raise ConfigError(
                f"error detected in {_px(ctx)} while parsing redirect rule : error in "
                f"condition: {e}."
            ) from None
        c = cond.conflict(hook)
        if c is not None:
            ctx.warn(conflict_warning(c, hook))
    _warn_misplaced(ctx, "redirect", ("use_backend", "use-server"))
    rule = HttpRule(ctx.where, "redirect", _guard(cond, compile_redirect(spec)), cond)
    _update(ctx, redirect=(*http_cfg(ctx).redirect, rule))


# --- configuration checks -----------------------------------------------------------------


def _kind(section: Any) -> str:
    return "proxy" if section.kind == "listen" else section.kind


def _no_log_address(state: Any, sec: Any, px: str, httplog: bool) -> None:
    """A frontend with a log format (httplog, tcplog, log-format) and nowhere to log it."""
    fields = sec.fields
    has_format = httplog or fields.get("tcplog") or fields.get("log_format") is not None
    if has_format and sec.is_frontend and not fields.get("logs"):
        state.warnings.append(f"config : log format ignored for {px} since it has no log address.")


@post_check
def _http_in_tcp_mode(state: Any, config: Config) -> None:
    """HAProxy's warnings for HTTP settings of a proxy left in TCP mode, and its errors for
    capture ids no slot declares."""
    for sec in state.proxies:
        fields = sec.fields
        cfg: HttpCfg | None = fields.get("http")
        px = f"{_kind(sec)} '{sec.name}'"
        for kind, idx in fields.get("_capture_ids", ()):
            slots = (
                (cfg.res_captures if kind != "http-request" else cfg.req_captures) if cfg else ()
            )
            if idx >= len(slots):
                state.errors.append(
                    f"Proxy '{sec.name}': unable to find capture id '{idx}' referenced by "
                    f"{kind} capture rule."
                )
        tcp = fields.get("mode", "tcp") != "http"
        if cfg is None:
            _no_log_address(state, sec, px, False)
            continue
        if tcp and cfg.monitor_uri is not None:
            state.warnings.append(
                f"config : monitor-uri will be ignored for {px} (needs 'mode http')."
            )
        where = fields.get("_httplog_where")
        if tcp and cfg.httplog and where is not None and sec.is_frontend:
            state.warnings.append(
                f"config : parsing [{where}] : 'option httplog' not usable with {px} (needs "
                "'mode http'). Falling back to 'option tcplog'."
            )
        _no_log_address(state, sec, px, cfg.httplog)
        if not tcp:
            continue
        for field, name in (
            ("http_request", "http-request"),
            ("http_response", "http-response"),
            ("http_after_response", "http-after-response"),
            ("redirect", "redirect"),
        ):
            if getattr(cfg, field):
                state.warnings.append(
                    f"config : '{name}' rules ignored for {px} as they require HTTP mode."
                )
        for field, name in (("forwardfor", "forwardfor"), ("originalto", "originalto")):
            if getattr(cfg, field) is not None:
                state.warnings.append(
                    f"config : 'option {name}' ignored for {px} as it requires HTTP mode."
                )
        if cfg.http_buffer_request:
            state.warnings.append(
                f"config : 'option http-buffer-request' ignored for {px} as it requires HTTP mode."
            )
        if cfg.ignore_probes and sec.is_frontend:
            state.warnings.append(
                f"config : 'option http-ignore-probes' ignored for {px} as it requires HTTP mode."
            )
        if cfg.pretend_keepalive and sec.is_backend:
            state.warnings.append(
                f"config : 'option http-pretend-keepalive' ignored for {px} as it requires HTTP "
                "mode."
            )
