"""The `stats` keywords of proxy sections: the statistics page served in HTTP mode."""

from __future__ import annotations

import dataclasses
from typing import Any

from nsproxy.config.keywords.rules import env_of
from nsproxy.config.model_stats import StatsPageCfg
from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx, parse_time
from nsproxy.sample import AclSet, Hook, SampleError, compile_condition

_SECTIONS = ("defaults", "frontend", "backend", "listen")
_EXPECTS = (
    "'stats' expects 'admin', 'auth', 'enable', 'hide-version', 'http-request', 'realm', "
    "'refresh', 'scope', 'show-desc', 'show-legends', 'show-node' or 'uri'."
)


def _page(ctx: Ctx) -> StatsPageCfg:
    page: StatsPageCfg | None = ctx.section.fields.get("stats_page")
    return page if page is not None else StatsPageCfg()


def _update(ctx: Ctx, **changes: Any) -> None:
    ctx.section.fields["stats_page"] = dataclasses.replace(_page(ctx), **changes)


@KEYWORDS.register("stats", *_SECTIONS)
def _stats(ctx: Ctx, args: list[str]) -> None:
    what = args[1] if len(args) > 1 else ""
    value = args[2] if len(args) > 2 else ""
    page = _page(ctx)
    if what == "enable":
        _update(ctx)
    elif what == "uri":
        if not value:
            raise ConfigError("'stats uri' needs an URI prefix.")
        _update(ctx, uri=value)
    elif what == "realm":
        if not value:
            raise ConfigError("'stats realm' needs an realm name.")
        _update(ctx, realm=" ".join(args[2:]))
    elif what == "refresh":
        if not value:
            raise ConfigError("'stats refresh' needs a positive interval.")
        try:
            seconds = parse_time(value, "s")
        except ConfigError:
            raise ConfigError("'stats refresh' needs a positive interval.") from None
        _update(ctx, refresh=max(1, int(seconds)))
    elif what == "auth":
        user, sep, password = value.partition(":")
        if not value or not sep:
            raise ConfigError("'stats auth' needs a user:password account.")
        _update(ctx, auth=(*page.auth, (user, password)))
    elif what == "admin":
        _admin(ctx, args, page)
    elif what == "show-legends":
        _update(ctx, show_legends=True)
    elif what == "hide-version":
        _update(ctx, hide_version=True)
    elif what == "show-node":
        _update(ctx, show_node=value)
    elif what == "scope":
        if not value:
            raise ConfigError("'stats scope' needs a proxy name.")
        _update(ctx, scope=(*page.scope, value))
    elif what == "show-desc":
        _update(ctx)
    else:
        raise ConfigError(_EXPECTS)


def _admin(ctx: Ctx, args: list[str], page: StatsPageCfg) -> None:
    if ctx.section.kind == "defaults":
        raise ConfigError("'stats admin' not supported in 'defaults' section.")
    if len(args) < 3 or args[2] not in ("if", "unless"):
        raise ConfigError("'stats admin' requires either 'if' or 'unless' followed by a condition.")
    acls: AclSet = ctx.section.fields.setdefault("acls", AclSet())
    try:
        cond = compile_condition(
            args[2:], acls, Hook.FE_HRQ_HDR, env_of(ctx), ctx.state.warnings.append
        )
    except SampleError as exc:
        raise ConfigError(f"error detected while parsing a 'stats admin' rule : {exc}.") from None
    _update(ctx, admin=(*page.admin, cond))
