"""`option ssl-hello-chk`, and which ruleset a backend's check runs, as HAProxy 2.6 picks it:
the last of `option tcp-check` and `option ssl-hello-chk` (an `option httpchk` replaces both);
`tcp-check` rules without `option tcp-check` are kept aside, unused, with HAProxy's warning."""

from __future__ import annotations

from typing import Any

from nsproxy.config.model import Config, TcpCheckRule
from nsproxy.config.registry import OPTIONS, ConfigError, ConfigWarning, Ctx, post_check

# The backend's tcp_check rules while `option ssl-hello-chk` is its check (HAProxy's
# "*ssl-hello-check" ruleset); the health checker runs it as one protocol check.
SSL_HELLO_RULES = (TcpCheckRule("ssl-hello"),)
_RULES = "_tcp_rules"  # every `tcp-check` rule of the section, in order
_KIND = "_check_kind"  # "tcp-check", "ssl-hello-chk" or absent
_OWNER = "_tcp_rules_of"  # the section that declared the rules (not one inheriting them)


def add_tcp_rule(ctx: Ctx, rule: TcpCheckRule) -> None:
    """A `tcp-check` rule: in use once `option tcp-check` is the section's check. A section's
    own rules replace those it inherited from `defaults` (HAProxy's per-proxy ruleset)."""
    f = ctx.section.fields
    if f.get(_OWNER) != id(ctx.section):
        f[_OWNER] = id(ctx.section)
        f[_RULES] = []
    f[_RULES].append(rule)
    _sync(ctx)


def use_tcp_check(ctx: Ctx) -> None:
    """`option tcp-check`: the section's `tcp-check` rules become its check."""
    ctx.section.fields.pop("http_check", None)
    ctx.section.fields[_KIND] = "tcp-check"
    _sync(ctx)


def _sync(ctx: Ctx) -> None:
    f = ctx.section.fields
    kind = f.get(_KIND)
    if kind == "ssl-hello-chk":
        f["tcp_check"] = list(SSL_HELLO_RULES)
    elif kind == "tcp-check":
        f["tcp_check"] = list(f.get(_RULES, []))
    else:
        f["tcp_check"] = []


@OPTIONS.register("ssl-hello-chk")
def _ssl_hello_chk(ctx: Ctx, args: list[str]) -> None:
    """The last check option of a section wins: this one replaces `option httpchk` and
    `option tcp-check` before it."""
    if args[-1] == "off":
        raise ConfigError(
            "negation/default is not supported for option 'ssl-hello-chk'.", style="nospace"
        )
    if len(args) > 2:
        raise ConfigError(f"'option ssl-hello-chk' cannot handle unexpected argument '{args[1]}'.")
    if not ctx.section.is_backend and ctx.section.kind != "defaults":
        raise ConfigWarning(
            f"'ssl-hello-chk' ignored because {ctx.section.kind} '{ctx.section.name}' has no "
            "backend capability."
        )
    ctx.section.fields.pop("http_check", None)
    ctx.section.fields[_KIND] = "ssl-hello-chk"
    _sync(ctx)


@post_check
def _unused_tcp_rules(state: Any, config: Config) -> None:
    for sec in state.proxies:
        f = sec.fields
        own = f.get(_OWNER) == id(sec)
        if sec.is_backend and own and f.get(_RULES) and f.get(_KIND) != "tcp-check":
            kind = "proxy" if sec.kind == "listen" else sec.kind
            state.warnings.append(
                f"config : {kind} '{sec.name}' uses tcp-check rules without 'option tcp-check', "
                "so the rules are ignored."
            )
