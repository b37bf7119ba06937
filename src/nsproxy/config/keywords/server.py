"""The `server` and `default-server` keywords and their options."""

from __future__ import annotations

import dataclasses
from typing import Any

from nsproxy.addresses import AddressError, parse_server
from nsproxy.config.keywords.namespace import netns_exists
from nsproxy.config.keywords.proxy import BE, parse_source_args
from nsproxy.config.model import CheckCfg, ServerCfg, Where
from nsproxy.config.registry import (
    KEYWORDS,
    SERVER_OPTIONS,
    ConfigError,
    Ctx,
    Section,
    parse_int,
    parse_time,
)
from nsproxy.netns import check_name

OPTS = "_srv_opts"
DEFAULTS = "_default_server"
PP2_OPTIONS = frozenset(
    ("ssl", "cert-cn", "ssl-cipher", "cert-sig", "cert-key", "authority", "crc32c", "unique-id")
)
_CHECK_FIELDS = {f.name for f in dataclasses.fields(CheckCfg)}


# HAProxy refuses these in the runtime API's `add server` ('namespace' is nsproxy's addition:
# a tenant's server is added at runtime in its namespace).
NOT_DYNAMIC = frozenset(("non-stick", "no-check"))


def _apply_options(
    ctx: Ctx, rest: list[str], opts: dict[str, Any], dynamic: bool = False
) -> dict[str, Any]:
    ctx.section.fields[OPTS] = opts
    try:
        while rest:
            kw = SERVER_OPTIONS.get(rest[0])
            if kw is None:
                raise ConfigError(f"unknown keyword '{rest[0]}'.")
            if dynamic and rest[0] in NOT_DYNAMIC:
                raise ConfigError(f"'{rest[0]}' option is not accepted for dynamic server")
            kw.handler(ctx, rest)
    finally:
        del ctx.section.fields[OPTS]
    return opts


def _parse_options(ctx: Ctx, rest: list[str], line: str) -> dict[str, Any]:
    opts: dict[str, Any] = dict(ctx.section.fields.get(DEFAULTS, {}))
    try:
        return _apply_options(ctx, rest, opts)
    except ConfigError as exc:
        raise ConfigError(f"{line} : {exc}", "bracket") from None


def _checked(line: str, opts: dict[str, Any]) -> tuple[CheckCfg, dict[str, Any]]:
    """The health check settings and the other ServerCfg fields of parsed options."""
    check = CheckCfg(**{k[6:]: v for k, v in opts.items() if k.startswith("check.")})
    if check.enabled and opts.get("use_client_netns"):
        raise ConfigError(
            f"{line}'check' cannot be used with 'namespace *': a health check has no client "
            "connection, so it has no namespace to run in."
        )
    return check, {k: v for k, v in opts.items() if not k.startswith("check.")}


def dynamic_server(where: Where, backend: str, name: str, words: list[str]) -> ServerCfg:
    """The runtime API's `add server <backend>/<name> <addr> [options]`, parsed with the
    configuration's server option table; as in HAProxy the server starts in maintenance
    unless `enabled` is given. Raises ConfigError with HAProxy's message (no location)."""
    if not words:
        raise ConfigError("'server' expects <name> and <addr>[:<port>] as arguments.")
    try:
        addr = parse_server(words[0])
    except AddressError as exc:
        raise ConfigError(str(exc)) from None
    ctx = Ctx(where, Section("backend", backend, where, is_backend=True), None)
    opts = _apply_options(ctx, list(words[1:]), {"disabled": True}, dynamic=True)
    check, fields = _checked("", opts)
    return ServerCfg(where=where, name=name, addr=addr, check=check, **fields)


@KEYWORDS.register("server", "backend", "listen")
def _server(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 3:
        raise ConfigError("'server' expects <name> and <addr>[:<port>] as arguments.")
    name = args[1]
    px = ctx.section.name
    line = f"'server {px}/{name}'"
    try:
        addr = parse_server(args[2])
    except AddressError as exc:
        raise ConfigError(f"{line} : {exc}") from None
    opts = _parse_options(ctx, args[3:], line)
    servers: list[ServerCfg] = ctx.section.fields.setdefault("servers", [])
    for other in servers:
        if other.name == name:
            raise ConfigError(
                f"{line} : backend '{px}' has already a server named '{name}' "
                f"declared at {other.where}."
            )
    check, fields = _checked(f"{line} : ", opts)
    if opts.get("namespace") is not None:
        if not netns_exists(ctx, opts["namespace"]):
            raise ConfigError(f"{line} : Cannot open namespace '{opts['namespace']}'.", "bracket")
        ctx.state.used_namespaces.setdefault(opts["namespace"], ctx.where)
    fields.setdefault("puid", len(servers) + 1)
    servers.append(ServerCfg(where=ctx.where, name=name, addr=addr, check=check, **fields))


@KEYWORDS.register("default-server", *BE, frontend=False)
def _default_server(ctx: Ctx, args: list[str]) -> None:
    opts = _parse_options(ctx, args[1:], "'default-server'")
    opts.pop("puid", None)
    ctx.section.fields[DEFAULTS] = opts


def _opt(name: str, field: str, kind: str, value: Any = True) -> None:
    """Declares a server option: a flag setting `field` to `value`, or one typed argument."""

    def handler(ctx: Ctx, rest: list[str]) -> None:
        opts = ctx.section.fields[OPTS]
        word = rest.pop(0)
        if kind == "flag":
            if field:  # no field: accepted and ignored (non-stick)
                opts[field] = value
            return
        if not rest:
            raise ConfigError(f"'{word}' expects <{kind}> as argument.")
        arg = rest.pop(0)
        if kind == "int":
            opts[field] = parse_int(arg, word)
        elif kind == "weight":
            opts[field] = parse_int(arg, word, 0, 256)
        elif kind == "count":
            opts[field] = parse_int(arg, word, 1)
        elif kind == "time":
            opts[field] = parse_time(arg)
        elif kind == "port":
            opts[field] = parse_int(arg, word, 1, 65535)
        elif kind != "ignored":
            opts[field] = arg

    SERVER_OPTIONS.register(name)(handler)


for _n, _f, _k, _v in (
    ("disabled", "disabled", "flag", True),
    ("enabled", "disabled", "flag", False),
    ("backup", "backup", "flag", True),
    ("non-stick", "", "flag", None),
    ("weight", "weight", "weight", None),
    ("maxconn", "maxconn", "int", None),
    ("id", "puid", "count", None),
    ("no-send-proxy", "send_proxy", "flag", 0),
    ("check", "check.enabled", "flag", True),
    ("no-check", "check.enabled", "flag", False),
    ("check-send-proxy", "check.send_proxy", "flag", True),
    ("inter", "check.inter", "time", None),
    ("fastinter", "check.fastinter", "time", None),
    ("downinter", "check.downinter", "time", None),
    ("rise", "check.rise", "count", None),
    ("fall", "check.fall", "count", None),
    ("port", "check.port", "port", None),
    ("addr", "check.addr", "str", None),
    ("maxqueue", "", "ignored", None),
    ("slowstart", "", "ignored", None),
    ("minconn", "", "ignored", None),
):
    _opt(_n, _f, _k, _v)


def _v2(extra: frozenset[str]) -> Any:
    def handler(ctx: Ctx, rest: list[str]) -> None:
        rest.pop(0)
        opts = ctx.section.fields[OPTS]
        opts["send_proxy"] = 2
        opts["pp2_options"] = frozenset(opts.get("pp2_options", frozenset()) | extra)

    return handler


@SERVER_OPTIONS.register("send-proxy")
def _send_proxy(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)
    opts = ctx.section.fields[OPTS]
    opts["send_proxy"] = max(opts.get("send_proxy", 0), 1)


SERVER_OPTIONS.register("send-proxy-v2")(_v2(frozenset()))
SERVER_OPTIONS.register("send-proxy-v2-ssl")(_v2(frozenset({"ssl"})))
SERVER_OPTIONS.register("send-proxy-v2-ssl-cn")(_v2(frozenset({"ssl", "cert-cn"})))


@SERVER_OPTIONS.register("proxy-v2-options")
def _pp2_options(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)
    if not rest:
        raise ConfigError("'proxy-v2-options' expects a comma-delimited list of options.")
    opts = ctx.section.fields[OPTS]
    chosen = set(opts.get("pp2_options", frozenset()))
    for word in rest.pop(0).split(","):
        if word not in PP2_OPTIONS:
            raise ConfigError(f"'{word}' : proxy v2 option not implemented.")
        chosen.add(word)
        if word in ("cert-cn", "ssl-cipher", "cert-sig", "cert-key"):
            chosen.add("ssl")
    opts["pp2_options"] = frozenset(chosen)
    # HAProxy turns PROXY sending on for any PROXY option; v2 only with send-proxy-v2
    opts.setdefault("send_proxy", 1)


@SERVER_OPTIONS.register("namespace")
def _namespace(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)
    if not rest:
        raise ConfigError("'namespace' : expects <name> as argument.")
    name = rest.pop(0)
    opts = ctx.section.fields[OPTS]
    if name == "*":
        opts["use_client_netns"] = True
        opts["namespace"] = None
        return
    why = check_name(name)
    if why is not None:
        raise ConfigError(f"'namespace' : {why}")
    opts["use_client_netns"] = False
    opts["namespace"] = name


@SERVER_OPTIONS.register("source")
def _source(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)
    take = rest[:1]
    del rest[:1]
    while len(rest) >= 2 and rest[0] in ("usesrc", "interface"):
        take += rest[:2]
        del rest[:2]
    ctx.section.fields[OPTS]["source"] = parse_source_args(take, allow_range=True)
