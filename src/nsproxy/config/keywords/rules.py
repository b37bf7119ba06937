"""Rule keywords: acl, use_backend, use-server, tcp-request, tcp-response, compiled by the engine.

The handlers keep, per proxy section, an `AclSet` and a `ProxyRules` value in
`section.fields["acls"]` / `section.fields["rules"]`, and one `CompileEnv` (the map and ACL
file references, shared by the whole configuration) in the global section's
`fields["pattern_refs"]`.
"""

from __future__ import annotations

import dataclasses

from nsproxy.config.keywords.track import (
    StickAct,
    is_sc_action,
    is_track,
    parse_sc_action,
    parse_track,
)
from nsproxy.config.model_rules import Expr, ProxyRules, SwitchRule, TcpRule
from nsproxy.config.registry import (
    KEYWORDS,
    ConfigError,
    Ctx,
    parse_time,
)
from nsproxy.sample import (
    AclSet,
    CompileEnv,
    Hook,
    PatRefs,
    SampleError,
    compile_condition,
    compile_logformat,
)
from nsproxy.sample.acl import Condition, Conflict, conflict_warning
from nsproxy.sample.context import Txn
from nsproxy.sample.expr import Getter, parse_expr, unavailable
from nsproxy.sample.places import hook_name
from nsproxy.sample.types import Missing, Sample
from nsproxy.sample.vars import parse_conditions, parse_var_name

PROXIES = ("frontend", "backend", "listen")
FE = ("frontend", "listen")
BE = ("backend", "listen")

_CONTENT_ACTIONS = (
    "'accept', 'reject', 'capture', 'expect-proxy', 'expect-netscaler-cip', 'track-sc0' ... "
    "'track-sc2', 'ot-group', 'set-log-level', 'set-nice', 'switch-mode', 'use-service', "
    "'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', 'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', "
    "'send-spoe-group', 'do-resolve(*)', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', "
    "'set-src', 'set-src-port', 'set-dst', 'set-dst-port', 'set-mark', 'set-tos', "
    "'silent-drop', 'set-priority-class', 'set-priority-offset'"
)
_RESPONSE_ACTIONS = (
    "'accept', 'close', 'reject', 'ot-group', 'set-log-level', 'set-nice', 'sc-inc-gpc(*)', "
    "'sc-inc-gpc0(*)', 'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'send-spoe-group', "
    "'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'set-mark', 'set-tos', 'silent-drop'"
)
_RESPONSE_SUPPORTED = {"accept", "close", "reject", "silent-drop"}
_SUPPORTED = {
    "accept",
    "reject",
    "silent-drop",
    "expect-proxy",
    "set-src",
    "set-dst",
    "set-src-port",
    "set-dst-port",
}


def env_of(ctx: Ctx) -> CompileEnv:
    """The configuration's shared pattern references, placed at this line."""
    refs = ctx.state.global_.fields.setdefault("pattern_refs", PatRefs())
    return CompileEnv(refs, ctx.where.file, ctx.where.line, ctx.section.name or None)


def _acls(ctx: Ctx) -> AclSet:
    acls: AclSet = ctx.section.fields.setdefault("acls", AclSet())
    return acls


def _rules(ctx: Ctx) -> ProxyRules:
    rules: ProxyRules = ctx.section.fields.get("rules", ProxyRules())
    return rules


def _update(ctx: Ctx, **changes: object) -> None:
    ctx.section.fields["rules"] = dataclasses.replace(_rules(ctx), **changes)  # type: ignore[arg-type]


def _px(ctx: Ctx) -> str:
    """HAProxy's proxy_type_str(): a `listen` section is a 'proxy'."""
    kind = "proxy" if ctx.section.kind == "listen" else ctx.section.kind
    return f"{kind} '{ctx.section.name}'"


def _no_anonymous_defaults(ctx: Ctx, what: str) -> None:
    if ctx.section.kind == "defaults" and not ctx.section.name:
        raise ConfigError(f"{what} is not allowed in anonymous 'defaults' sections")


@KEYWORDS.register("acl", "defaults", *PROXIES)
def _acl(ctx: Ctx, args: list[str]) -> None:
    if ctx.section.kind == "defaults" and not ctx.section.name:
        raise ConfigError("'acl' not allowed in anonymous 'defaults' section.")
    if len(args) < 2:
        raise ConfigError("'acl' expects a name and a criterion.")
    name = args[1]
    bad = next((c for c in name if not (c.isascii() and c.isalnum()) and c not in "._-:"), None)
    if bad is not None:
        raise ConfigError(f"character '{bad}' is not permitted in acl name '{name}'.")
    if name.lower() == "or":
        raise ConfigError(
            f"acl name '{name}' will never match. 'or' is used to express a logical "
            "disjunction within a condition."
        )
    try:
        _acls(ctx).add(args[1:], env_of(ctx), ctx.state.warnings.append)
    except SampleError as e:
        raise ConfigError(f"error detected while parsing ACL '{name}' : {e}.") from None


def _condition(ctx: Ctx, words: list[str], hook: Hook) -> Condition:
    # ACL warnings print without a place (HAProxy's); conflicts are reported by the caller.
    return compile_condition(
        words, _acls(ctx), hook, env_of(ctx), ctx.state.warnings.append, check_conflicts=False
    )


@KEYWORDS.register("use_backend", *FE, backend=False)
def _use_backend(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'use_backend' expects a backend name.")
    cond = None
    if len(args) > 2:
        if args[2] not in ("if", "unless"):
            raise ConfigError(
                f"unexpected keyword '{args[2]}' after switching rule, only 'if' and 'unless' "
                "are allowed."
            )
        try:
            cond = _condition(ctx, args[2:], Hook.FE_SET_BCK)
        except SampleError as e:
            raise ConfigError(f"error detected while parsing switching rule : {e}.") from None
        _warn_conflict(ctx, cond, Hook.FE_SET_BCK)
    dynamic = None
    if "%" in args[1]:
        try:
            dynamic = compile_logformat(
                args[1], Hook.FE_HRQ_HDR, env_of(ctx), mandatory=False, merge_spaces=False
            )
        except SampleError as e:
            raise ConfigError(
                f"failed to parse use_backend rule '{args[1]}' : {e}.", style="nospace"
            ) from None
    rule = SwitchRule(ctx.where, args[1], dynamic, cond)
    _update(ctx, use_backend=(*_rules(ctx).use_backend, rule))


@KEYWORDS.register("use-server", *BE, frontend=False)
def _use_server(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'use-server' expects a server name.")
    if len(args) < 3 or args[2] not in ("if", "unless"):
        raise ConfigError("'use-server' requires either 'if' or 'unless' followed by a condition.")
    try:
        cond = _condition(ctx, args[2:], Hook.BE_SET_SRV)
    except SampleError as e:
        raise ConfigError(f"error detected while parsing switching rule : {e}.") from None
    _warn_conflict(ctx, cond, Hook.BE_SET_SRV)
    dynamic = None
    if "%" in args[1]:
        try:
            dynamic = compile_logformat(
                args[1], Hook.FE_HRQ_HDR, env_of(ctx), mandatory=False, merge_spaces=False
            )
        except SampleError as e:
            raise ConfigError(
                f"failed to parse use-server rule '{args[1]}' : {e}.", style="nospace"
            ) from None
    rule = SwitchRule(ctx.where, args[1], dynamic, cond)
    _update(ctx, use_server=(*_rules(ctx).use_server, rule))


def _warn_conflict(ctx: Ctx, cond: Condition, hook: Hook) -> None:
    c = cond.conflict(hook)
    if c is not None:
        ctx.warn(conflict_warning(c, hook))


def _tcp_conflict(c: Conflict, args: list[str], hook: Hook) -> str:
    place = hook_name(hook)
    if c.full:
        if c.acl:
            return (
                f"acl '{c.acl}' will never match in '{args[0]} {args[1]}' because it only "
                f"involves keywords that are incompatible with '{place}'"
            )
        return (
            f"anonymous acl will never match in '{args[0]} {args[1]}' because it uses keyword "
            f"'{c.kw}' which is incompatible with '{place}'"
        )
    if c.acl:
        return f"acl '{c.acl}' involves keyword '{c.kw}' which is incompatible with '{place}'"
    return f"anonymous acl involves keyword '{c.kw}' which is incompatible with '{place}'"


def _hooks(ctx: Ctx, fe: Hook, be: Hook) -> Hook:
    hook = Hook(0)
    if ctx.section.is_frontend:
        hook |= fe
    if ctx.section.is_backend:
        hook |= be
    return hook or fe


def _tcp_rule(ctx: Ctx, args: list[str], hook: Hook) -> TcpRule:
    """`tcp-request|tcp-response KIND ACTION [args] [if|unless cond]` (args[2] is the action)."""
    kind = f"{args[0]} {args[1]}"
    if len(args) < 3:
        raise ConfigError(f"'{kind}' expects {_CONTENT_ACTIONS} in {_px(ctx)} (got '').")
    action = args[2]
    i = 3
    expr = None
    act: StickAct | None = None
    var = None
    var_conds: frozenset[str] = frozenset()
    base = action.split("(", 1)[0]
    if base in ("set-var", "unset-var"):
        name = action[len(base) :]
        expects = (
            "Expects 'set-var(<var-name>)', 'set-var-fmt(<var-name>)' or 'unset-var(<var-name>)'"
        )
        if not name.startswith("("):
            raise ConfigError(f"invalid or incomplete action '{action}'. {expects}")
        if not name.endswith(")"):
            raise ConfigError(f"incomplete argument after action '{action}'. {expects}")
        var_name, *cond_words = name[1:-1].split(",")
        try:
            var = parse_var_name(var_name)
            var_conds = parse_conditions(cond_words)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if base == "set-var":
            text = args[3] if len(args) > 3 else ""
            try:
                parsed, _ = parse_expr(text, env_of(ctx))
            except SampleError as e:
                raise ConfigError(str(e)) from None
            msg = unavailable(parsed, hook)
            if msg is not None:
                raise ConfigError(msg.replace(f"'{parsed.fetch.name}'", f"'{action}'", 1))
            expr = _plain(parsed.get)
            i = 4
    elif (
        base in ("set-src", "set-dst", "set-src-port", "set-dst-port") and args[0] == "tcp-request"
    ):
        text = args[3] if len(args) > 3 else ""
        try:
            parsed, _ = parse_expr(text, env_of(ctx))
        except SampleError as e:
            raise ConfigError(str(e)) from None
        # (HAProxy does not check where these expressions' data is available.)
        expr = _plain(parsed.get)
        i = 4
    elif action == "expect-proxy":
        got = args[3] if len(args) > 3 else ""
        if got != "layer4":
            raise ConfigError(
                f"'{kind} {action}' only supports 'layer4' in {_px(ctx)} (got '{got}')"
            )
        if args[1] != "connection":
            raise ConfigError(f"'{action} layer4' is not allowed in '{kind}' rules in {_px(ctx)}")
        i = 4
    elif is_track(action) and args[0] == "tcp-request":
        try:
            act, i = parse_track(action, args, 3, env_of(ctx), hook, http=False)
        except ConfigError as e:
            raise ConfigError(f"'{kind} {action}' : {e}") from None
    elif is_sc_action(action):
        try:
            act, i = parse_sc_action(action, args, 3, env_of(ctx), hook)
        except ConfigError as e:
            raise ConfigError(str(e)) from None  # HAProxy's bare message here
    elif action not in (_RESPONSE_SUPPORTED if args[0] == "tcp-response" else _SUPPORTED):
        if (
            action
            in (
                "capture",
                "set-mark",
                "set-tos",
                "set-log-level",
                "set-nice",
                "switch-mode",
                "use-service",
                "do-resolve",
                "set-var-fmt",
                "send-spoe-group",
                "set-priority-class",
                "set-priority-offset",
                "expect-netscaler-cip",
            )
            or "(" in action
        ):
            raise ConfigError(f"'{kind} {action}' is not supported by nsproxy in {_px(ctx)}.")
        allowed = _RESPONSE_ACTIONS if args[0] == "tcp-response" else _CONTENT_ACTIONS
        raise ConfigError(f"'{kind}' expects {allowed} in {_px(ctx)} (got '{action}').")
    cond = None
    if i < len(args):
        if args[i] not in ("if", "unless"):
            raise ConfigError(
                f"'{kind} {action}' only accepts 'if' or 'unless', in {_px(ctx)} (got '{args[i]}')"
            )
        try:
            cond = _condition(ctx, args[i:], hook)
        except SampleError as e:
            raise ConfigError(
                f"'{kind} {action}' : error detected in {_px(ctx)} while parsing "
                f"'{args[i]}' condition : {e}"
            ) from None
        c = cond.conflict(hook)
        if c is not None:
            ctx.warn(_tcp_conflict(c, args, hook))
    return TcpRule(ctx.where, base, cond, expr, var, var_conds, act)


def _plain(get: Getter) -> Expr:
    """The getter of an expression, answering None when data is still missing."""

    def run(txn: Txn) -> Sample | None:
        r = get(txn)
        return None if isinstance(r, Missing) else r

    return run


def _delay(ctx: Ctx, args: list[str], what: str) -> float:
    if len(args) < 3:
        raise ConfigError(f"'{what}' expects a positive delay in milliseconds, in {_px(ctx)}")
    try:
        return parse_time(args[2])
    except ConfigError as e:
        msg = str(e)
        detail = msg.split(" in time value")[0] if msg.startswith("unexpected character") else msg
        raise ConfigError(
            f"'{what}' expects a positive delay in milliseconds, in {_px(ctx)} ({detail})"
        ) from None


@KEYWORDS.register("tcp-request", "defaults", *PROXIES)
def _tcp_request(ctx: Ctx, args: list[str]) -> None:
    kind = args[1] if len(args) > 1 else ""
    if kind not in ("connection", "session", "content", "inspect-delay"):
        raise ConfigError(
            f"'tcp-request' expects 'inspect-delay', 'connection', or 'content' in {_px(ctx)} "
            f"(got '{kind}')"
        )
    _no_anonymous_defaults(ctx, f"tcp-request {kind}")
    if kind == "inspect-delay":
        _update(ctx, inspect_delay=_delay(ctx, args, "tcp-request inspect-delay"))
        return
    if kind == "connection":
        if not ctx.section.is_frontend:
            raise ConfigError(
                f"tcp-request connection is not allowed because {ctx.section.kind} "
                f"{ctx.section.name} is not a frontend"
            )
        rule = _tcp_rule(ctx, args, Hook.FE_CON_ACC)
        if _rules(ctx).tcp_request_content:
            ctx.warn(
                "a 'tcp-request' rule placed after a 'tcp-request content' rule will still be "
                "processed before."
            )
        _update(ctx, tcp_request_connection=(*_rules(ctx).tcp_request_connection, rule))
        return
    if kind == "session":
        raise ConfigError(f"'tcp-request session' is not supported by nsproxy in {_px(ctx)}.")
    rule = _tcp_rule(ctx, args, _hooks(ctx, Hook.FE_REQ_CNT, Hook.BE_REQ_CNT))
    _update(ctx, tcp_request_content=(*_rules(ctx).tcp_request_content, rule))


@KEYWORDS.register("tcp-response", "defaults", *PROXIES)
def _tcp_response(ctx: Ctx, args: list[str]) -> None:
    kind = args[1] if len(args) > 1 else ""
    if kind not in ("content", "inspect-delay"):
        raise ConfigError(
            f"'tcp-response' expects 'inspect-delay' or 'content' in {_px(ctx)} (got '{kind}')"
        )
    if ctx.section.kind == "defaults" or not ctx.section.is_backend:
        raise ConfigError(
            f"tcp-response {kind} is only allowed in 'backend' sections or 'defaults' section "
            "with a name"
        )
    if kind == "inspect-delay":
        _update(ctx, response_inspect_delay=_delay(ctx, args, "tcp-response inspect-delay"))
        return
    rule = _tcp_rule(ctx, args, _hooks(ctx, Hook.FE_RES_CNT, Hook.BE_RES_CNT))
    _update(ctx, tcp_response_content=(*_rules(ctx).tcp_response_content, rule))
    ctx.warn(
        "'tcp-response content' rules are checked but not applied by nsproxy yet: responses "
        "are relayed as if no rule matched."
    )
