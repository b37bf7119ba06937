"""`lua-load`, `lua-load-per-thread`, `lua-prepend-path`, and the `lua.NAME` services the
loaded scripts register for `http-request use-service`."""

from __future__ import annotations

from typing import Any

from nsproxy.config.keywords.http_reply import reason
from nsproxy.config.model_http import HttpResult, Verb
from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx
from nsproxy.lua.applet import run_http_service
from nsproxy.lua.engine import LuaEngine, LuaError
from nsproxy.sample.context import Txn
from nsproxy.sample.patref import PatRefs


def _engine(ctx: Ctx) -> LuaEngine:
    refs: PatRefs = ctx.state.global_.fields.setdefault("pattern_refs", PatRefs())
    if refs.lua is None:
        try:
            refs.lua = LuaEngine()
        except LuaError as exc:
            raise ConfigError(str(exc)) from None
    engine: LuaEngine = refs.lua
    return engine


@KEYWORDS.register("lua-load", "global")
@KEYWORDS.register("lua-load-per-thread", "global")
def _lua_load(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2 or not args[1]:
        what = "a file name" if args[0] == "lua-load" else "a file"
        raise ConfigError(f"'{args[0]}' expects {what} as parameter.")
    try:
        _engine(ctx).load(args[1])
    except LuaError as exc:
        raise ConfigError(str(exc)) from None


@KEYWORDS.register("lua-prepend-path", "global")
def _lua_prepend_path(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2 or not args[1]:
        raise ConfigError("'lua-prepend-path' expects to receive a <path> as argument")
    kind = args[2] if len(args) > 2 else "path"
    if kind not in ("path", "cpath"):
        raise ConfigError("'lua-prepend-path' expects <type> to either be 'path' or 'cpath'")
    _engine(ctx).prepend_path(args[1], kind)


def lua_service(refs: PatRefs, name: str) -> Any | None:
    """The rule action of `use-service NAME` when NAME is `lua.<service>` of a loaded script
    (None otherwise): it answers with what the applet wrote."""
    engine = refs.lua
    if not isinstance(engine, LuaEngine) or not name.startswith("lua."):
        return None
    fn = engine.service(name[4:])
    if fn is None:
        return None

    def act(txn: Txn) -> HttpResult:
        status, data, close, err = run_http_service(engine, fn, txn, reason)
        if err:
            err = f"Lua applet http '<{name}>': [state-id 0] runtime error: {err}."
        return HttpResult(Verb.SERVICE, status, data, close, service=name, error=err)

    return act
