"""The `bind` keyword and its options (namespace, interface, backlog, accept-proxy, ...)."""

from __future__ import annotations

from typing import Any

from nsproxy.addresses import AddressError, parse_bind
from nsproxy.config.keywords.namespace import netns_exists
from nsproxy.config.model import BindCfg
from nsproxy.config.registry import BIND_OPTIONS, KEYWORDS, ConfigError, Ctx, parse_int
from nsproxy.netns import check_name

OPTS = "_bind_opts"


@KEYWORDS.register("bind", "frontend", "listen")
def _bind(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError(
            "'bind' expects [addr1]:port1[-end1]{,[addr]:port[-end]}... as arguments."
        )
    line = f"'bind {args[1]}' in section '{ctx.section.kind}'"
    try:
        addrs = parse_bind(args[1])
    except AddressError as exc:
        raise ConfigError(f"{line} : {exc}") from None
    opts: dict[str, Any] = {}
    ctx.section.fields[OPTS] = opts
    rest = args[2:]
    while rest:
        kw = BIND_OPTIONS.get(rest[0])
        if kw is None:
            raise ConfigError(
                f"{line} : unknown keyword '{rest[0]}'. Registered keywords : "
                + ", ".join(BIND_OPTIONS.names())
            )
        try:
            kw.handler(ctx, rest)
        except ConfigError as exc:
            raise ConfigError(f"{line} : {exc}") from None
    del ctx.section.fields[OPTS]
    binds = ctx.section.fields.setdefault("binds", [])
    if "namespace" in opts:
        if not netns_exists(ctx, opts["namespace"]):
            ctx.state.errors.append(f"Cannot open namespace '{opts['namespace']}'.")
            raise ConfigError(f"{line} : error encountered while processing 'namespace'.")
        ctx.state.used_namespaces.setdefault(opts["namespace"], ctx.where)
    opts.setdefault("id", sum(len(b.addrs) for b in binds) + 1)
    binds.append(BindCfg(where=ctx.where, addrs=tuple(addrs), **opts))


def _option(name: str, field: str, kind: str) -> None:
    """Declares a bind option: a flag, or one argument checked as `kind` (str/int/octal/netns)."""

    def handler(ctx: Ctx, rest: list[str]) -> None:
        opts = ctx.section.fields[OPTS]
        word = rest.pop(0)
        if kind == "flag":
            opts[field] = True
            return
        if not rest:
            if kind == "netns":
                raise ConfigError("'namespace' : missing namespace id")
            raise ConfigError(f"'{word}' : missing value")
        value = rest.pop(0)
        if kind == "int":
            opts[field] = parse_int(value, word)
        elif kind == "octal":
            try:
                opts[field] = int(value, 8)
            except ValueError:
                raise ConfigError(f"'{word}' : invalid octal mode '{value}'") from None
        elif kind == "netns":
            why = check_name(value)
            if why is not None:
                raise ConfigError(f"'{word}' : {why}")
            opts[field] = value
        elif kind == "ignored":
            pass
        else:
            opts[field] = value

    BIND_OPTIONS.register(name)(handler)


for _name, _field, _kind in (
    ("namespace", "namespace", "netns"),
    ("interface", "interface", "str"),
    ("backlog", "backlog", "int"),
    ("maxconn", "maxconn", "int"),
    ("name", "name", "str"),
    ("id", "id", "int"),
    ("mode", "mode", "octal"),
    ("v4v6", "v4v6", "flag"),
    ("v6only", "v6only", "flag"),
    ("accept-proxy", "accept_proxy", "flag"),
    ("transparent", "transparent", "flag"),
    ("user", "", "ignored"),
    ("group", "", "ignored"),
    ("process", "", "ignored"),
    ("thread", "", "ignored"),
):
    _option(_name, _field, _kind)


def _ignored_flag(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)


for _name in ("defer-accept", "tfo"):
    BIND_OPTIONS.register(_name)(_ignored_flag)
