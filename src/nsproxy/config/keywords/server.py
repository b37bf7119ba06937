"""The `server` and `default-server` keywords and their options."""

from __future__ import annotations

import dataclasses
from typing import Any

from nsproxy.addresses import AddressError, parse_server
from nsproxy.config.keywords.namespace import netns_exists
from nsproxy.config.keywords.proxy import BE, parse_source_args
from nsproxy.config.model import CheckCfg, Config, ServerCfg, Where
from nsproxy.config.model_tls import GlobalTls, ServerTls
from nsproxy.config.registry import (
    KEYWORDS,
    SERVER_OPTIONS,
    ConfigError,
    Ctx,
    Section,
    parse_int,
    parse_time,
    post_check,
)
from nsproxy.netns import check_name
from nsproxy.tls.contexts import ContextError, client_context
from nsproxy.tls.options import (
    FORCE_FLAGS,
    NO_VERSION_FLAGS,
    OptionError,
    alpn_list,
    resolve,
    tls_version,
    verify_method,
)
from nsproxy.tls.pem import PemError, load_bundle, load_verify_file

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
    fields = {k: v for k, v in opts.items() if not k.startswith(("check.", "tls."))}
    tls = _server_tls(opts)
    if tls is not None:
        fields["tls"] = tls
    return check, fields


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
    add_server(ctx, args[1], args[2], args[3:])


def add_server(ctx: Ctx, name: str, addr_word: str, options: list[str]) -> None:
    """One server of the current backend from its name, address word and option words."""
    px = ctx.section.name
    line = f"'server {px}/{name}'"
    try:
        addr = parse_server(addr_word)
    except AddressError as exc:
        raise ConfigError(f"{line} : {exc}") from None
    opts = _parse_options(ctx, options, line)
    servers: list[ServerCfg] = ctx.section.fields.setdefault("servers", [])
    for other in servers:
        if other.name == name:
            raise ConfigError(
                f"backend '{px}', another server named '{name}' was already defined at line "
                f"{other.where.line}, please use distinct names."
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


# ---- TLS to the server (`ssl`, `verify`, `ca-file`, `crt`, `sni`, `alpn`, `check-ssl`, ...)

_TLS_FIELDS = {f.name for f in dataclasses.fields(ServerTls)}


def _server_tls(opts: dict[str, Any]) -> ServerTls | None:
    fields = {k[4:]: v for k, v in opts.items() if k.startswith("tls.") and k[4:] in _TLS_FIELDS}
    if not fields.get("enabled") and not fields.get("check_ssl"):
        return None
    return ServerTls(**fields)


def _global_tls(ctx: Ctx) -> GlobalTls:
    found = ctx.state.global_.fields.get("tls") if ctx.state is not None else None
    return found if isinstance(found, GlobalTls) else GlobalTls()


def _seed(ctx: Ctx, opts: dict[str, Any]) -> None:
    """The first TLS word of a server starts from the global `ssl-default-server-*` values."""
    if "tls.seeded" in opts:
        return
    g = _global_tls(ctx)
    d = g.server_defaults
    opts["tls.seeded"] = True
    opts["tls.verify"] = g.server_verify
    for name in ("min_ver", "max_ver", "ciphers", "ciphersuites"):
        if getattr(d, name) is not None:
            opts["tls." + name] = getattr(d, name)
    if d.no_tickets:
        opts["tls.no_tickets"] = True
    if d.no_versions:
        opts["tls.no_versions"] = d.no_versions


def _tls_flag(field: str, value: object) -> Any:
    def handler(ctx: Ctx, rest: list[str]) -> None:
        rest.pop(0)
        opts = ctx.section.fields[OPTS]
        _seed(ctx, opts)
        opts["tls." + field] = value

    return handler


for _word, _field, _value in (
    ("ssl", "enabled", True),
    ("no-ssl", "enabled", False),
    ("check-ssl", "check_ssl", True),
    ("no-check-ssl", "check_ssl", False),
    ("ssl-reuse", "reuse", True),
    ("no-ssl-reuse", "reuse", False),
    ("no-tls-tickets", "no_tickets", True),
    ("tls-tickets", "no_tickets", False),
    ("no-verifyhost", "verifyhost", None),
    ("allow-0rtt", "", None),
):
    SERVER_OPTIONS.register(_word)(_tls_flag(_field or "ignored", _value))


def _no_version(version: str) -> Any:
    def handler(ctx: Ctx, rest: list[str]) -> None:
        rest.pop(0)
        opts = ctx.section.fields[OPTS]
        _seed(ctx, opts)
        opts["tls.no_versions"] = frozenset(opts.get("tls.no_versions", frozenset()) | {version})

    return handler


for _word, _version in NO_VERSION_FLAGS.items():
    SERVER_OPTIONS.register(_word)(_no_version(_version))


def _force(version: str) -> Any:
    def handler(ctx: Ctx, rest: list[str]) -> None:
        rest.pop(0)
        opts = ctx.section.fields[OPTS]
        _seed(ctx, opts)
        opts["tls.min_ver"] = opts["tls.max_ver"] = version

    return handler


for _word, _version in FORCE_FLAGS.items():
    SERVER_OPTIONS.register(_word)(_force(_version))


@SERVER_OPTIONS.register("verify")
@SERVER_OPTIONS.register("ca-file")
@SERVER_OPTIONS.register("crl-file")
@SERVER_OPTIONS.register("crt")
@SERVER_OPTIONS.register("sni")
@SERVER_OPTIONS.register("alpn")
@SERVER_OPTIONS.register("ssl-min-ver")
@SERVER_OPTIONS.register("ssl-max-ver")
@SERVER_OPTIONS.register("ciphers")
@SERVER_OPTIONS.register("ciphersuites")
@SERVER_OPTIONS.register("verifyhost")
@SERVER_OPTIONS.register("check-sni")
@SERVER_OPTIONS.register("check-alpn")
@SERVER_OPTIONS.register("npn")
def _tls_arg(ctx: Ctx, rest: list[str]) -> None:
    word = rest.pop(0)
    value = rest.pop(0) if rest else None
    opts = ctx.section.fields[OPTS]
    _seed(ctx, opts)
    g = _global_tls(ctx)
    try:
        if word == "verify":
            if value is None:
                raise ConfigError("'verify' : missing verify method.")
            opts["tls.verify"] = verify_method(word, value, server=True)
        elif word in ("ca-file", "crl-file"):
            if value is None:
                what = "CAfile" if word == "ca-file" else "CRLfile"
                raise ConfigError(f"'{word}' : missing {what} path.")
            path = resolve(value, g.ca_base)
            try:
                load_verify_file(path)
            except PemError as exc:
                raise ConfigError(str(exc)) from None
            opts["tls." + word.replace("-", "_")] = path
        elif word == "crt":
            if value is None:
                raise ConfigError("'crt' : missing certificate file path.")
            path = resolve(value, g.crt_base)
            try:
                load_bundle(path)
            except PemError as exc:
                raise ConfigError(str(exc)) from None
            opts["tls.crt"] = path
        elif word in ("sni", "check-sni"):
            if value is None:
                raise ConfigError(f"'{word}' : missing sni expression.")
            opts["tls.sni"] = value if word == "sni" else opts.get("tls.sni")
        elif word in ("alpn", "check-alpn"):
            alpn = alpn_list(word, value, server=True)
            if word == "alpn":
                opts["tls.alpn"] = alpn
        elif word in ("ssl-min-ver", "ssl-max-ver"):
            opts["tls." + word[4:7] + "_ver"] = tls_version(word, value, server=True)
        elif word in ("ciphers", "ciphersuites"):
            if value is None:
                raise ConfigError(f"'{word}' : missing cipher suite.")
            opts["tls." + word] = value
        elif word == "verifyhost":
            if value is None:
                raise ConfigError("'verifyhost' : missing hostname.")
            opts["tls.verifyhost"] = value
    except OptionError as exc:
        raise ConfigError(str(exc)) from None


_NO_CA = (
    "verify is enabled by default but no CA file specified. If you're running on a LAN where "
    "you're certain to trust the server's certificate, please set an explicit 'verify none' "
    "statement on the 'server' line, or use 'ssl-server-verify none' in the global section to "
    "disable server-side verifications by default."
)


@post_check
def _tls_servers(state: Any, config: Config) -> None:
    for px in config.backends:
        for srv in px.servers:
            tls = srv.tls
            if tls is None:
                continue
            line = f"'server {px.name}/{srv.name}'"
            if tls.no_versions and (tls.min_ver is not None or tls.max_ver is not None):
                state.warnings.append(
                    f"[{srv.where}] : {line} : no-sslv3/no-tlsv1x are ignored for this server. "
                    "Use only 'ssl-min-ver' and 'ssl-max-ver' to fix."
                )
            if tls.verify == "required" and tls.ca_file is None:
                state.error(srv.where, f"{line} : {_NO_CA}", "bracket")
                continue
            try:
                client_context(
                    ServerTls(
                        enabled=True,
                        verify="none",
                        ciphers=tls.ciphers,
                        ciphersuites=tls.ciphersuites,
                    )
                )
            except ContextError as exc:
                state.error(srv.where, f"{line} : {exc}.", "bracket")
