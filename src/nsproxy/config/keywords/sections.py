"""Section keywords: global, defaults, frontend, backend, listen, namespace_list."""

from __future__ import annotations

import copy

from nsproxy.config.registry import PROXY_SECTIONS, SECTIONS, ConfigError, Ctx, Section

_CAPS = {"frontend": (True, False), "backend": (False, True), "listen": (True, True)}
_IGNORED = ("resolvers", "mailers", "program", "http-errors", "ring", "cache")


@SECTIONS.register("global", "")
def _global(ctx: Ctx, args: list[str]) -> None:
    ctx.state.current = ctx.state.global_


@SECTIONS.register("namespace_list", "")
def _namespace_list(ctx: Ctx, args: list[str]) -> None:
    ctx.state.current = Section("namespace_list", "", ctx.where)


_SHARED = (str, bytes, int, float, bool, tuple, frozenset, type(None))


def _inherited(value: object) -> object:
    """A defaults value for a new section: its lists, dicts and sets copied (a section's
    keywords add to them); frozen values (the model's dataclasses, tuples, strings, compiled
    rules and log formats) shared, as they never change; anything else deep-copied."""
    if isinstance(value, list):
        return [_inherited(v) for v in value]
    if isinstance(value, dict):
        return {k: _inherited(v) for k, v in value.items()}
    if isinstance(value, set):
        return {_inherited(v) for v in value}
    if isinstance(value, _SHARED) or _frozen(value) or callable(value):
        return value
    return copy.deepcopy(value)


def _frozen(value: object) -> bool:
    params = getattr(type(value), "__dataclass_params__", None)
    return bool(getattr(params, "frozen", False))


def _start_proxy(ctx: Ctx, args: list[str]) -> None:
    kind = args[0]
    if len(args) < 2 and kind != "defaults":
        raise ConfigError(f"'{kind}' expects <name> as an argument.")
    name = args[1] if len(args) > 1 else ""
    base: Section | None = None if kind == "defaults" else ctx.state.last_defaults
    if len(args) > 2:
        if args[2] != "from" or len(args) != 4:
            raise ConfigError(f"'{kind}' expects <name> [from <defaults>] as arguments.")
        base = ctx.state.defaults.get(args[3])
        if base is None:
            raise ConfigError(f"{kind} '{name}': unable to find defaults section '{args[3]}'.")
    fields = {
        k: _inherited(v)
        for k, v in (base.fields.items() if base is not None else ())
        if k not in ("binds", "servers")
    }
    fe, be = _CAPS.get(kind, (True, True))
    section = Section(kind, name, ctx.where, fields, fe, be)
    if kind == "defaults":
        ctx.state.last_defaults = section
        if name:
            ctx.state.defaults[name] = section
        ctx.state.current = section
        return
    for other in ctx.state.proxies:
        if other.name == name and ((other.is_frontend and fe) or (other.is_backend and be)):
            ctx.state.current = section
            raise ConfigError(
                f"{kind} '{name}' has the same name as {other.kind} '{name}' declared at "
                f"{other.where}."
            )
    ctx.state.proxies.append(section)
    ctx.state.current = section


for _kind in PROXY_SECTIONS:
    SECTIONS.register(_kind, "")(_start_proxy)


def _ignored(ctx: Ctx, args: list[str]) -> None:
    ctx.warn(f"section '{args[0]}' is not supported by nsproxy; its lines are ignored.")
    section = Section("ignored", args[1] if len(args) > 1 else "", ctx.where)
    section.skip = True
    ctx.state.current = section


for _kind in _IGNORED:
    SECTIONS.register(_kind, "")(_ignored)
