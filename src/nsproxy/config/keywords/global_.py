"""Keywords of the `global` section, and `log`, which proxies share."""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

from nsproxy.addresses import AddressError, SockAddr, parse_bind, parse_source
from nsproxy.config.model import LogTarget, StatsSocketCfg
from nsproxy.config.model_tls import GlobalTls, SslOptions
from nsproxy.config.registry import (
    KEYWORDS,
    PROXY_SECTIONS,
    ConfigError,
    ConfigWarning,
    Ctx,
    parse_int,
    parse_time,
)
from nsproxy.ops.log import FACILITIES, LEVELS
from nsproxy.tls.options import (
    FORCE_FLAGS,
    IGNORED_FLAGS,
    NO_VERSION_FLAGS,
    OptionError,
    tls_version,
)

_FACILITIES = tuple(FACILITIES)
_FORMATS = ("raw", "rfc3164", "rfc5424", "short", "local", "iso", "timed", "priority")
# the longest UNIX socket path HAProxy accepts (sun_path less the ".<pid>.tmp" it binds first)
MAX_UNIX_PATH = 97


@KEYWORDS.register("log", "global", *PROXY_SECTIONS)
def _log(ctx: Ctx, args: list[str]) -> None:
    logs = ctx.section.fields.setdefault("logs", [])
    if len(args) == 2 and args[1] == "global":
        if ctx.section.kind == "global":
            raise ConfigError("'log global' is only allowed in proxy sections.")
        logs.extend(ctx.state.global_.fields.get("logs", []))
        return
    if len(args) < 3:
        raise ConfigError("'log' expects either <address[:port]> and <facility> or 'global'.")
    target, rest = args[1], args[2:]
    fmt = "rfc3164"
    while rest and rest[0] in ("len", "format", "sample"):
        if len(rest) < 2:
            raise ConfigError(f"'log' : missing value after '{rest[0]}'.")
        if rest[0] == "format":
            if rest[1] not in _FORMATS:
                raise ConfigError(f"unknown log format '{rest[1]}'")
            fmt = rest[1]
        rest = rest[2:]
    if not rest or rest[0] not in _FACILITIES:
        raise ConfigError(f"unknown log facility '{rest[0] if rest else ''}'")
    facility, levels = rest[0], rest[1:]
    for lvl in levels:
        if lvl not in LEVELS:
            raise ConfigError(f"unknown optional log level '{lvl}'")
    udp: SockAddr | None = None
    if target not in ("stdout", "stderr") and not target.startswith("/"):
        addr = target[5:] if target.startswith("udp@") else target
        if addr.startswith("udp4@") or addr.startswith("udp6@"):
            addr = addr[5:]
        try:
            udp = parse_source(
                addr if ":" in addr.strip("[]") or addr.startswith("[") else addr + ":514"
            )
        except AddressError as exc:
            raise ConfigError(f"'log' : {exc}") from None
        if udp.port == 0:
            udp = SockAddr(udp.family, udp.host, 514)
    logs.append(
        LogTarget(
            target=target,
            facility=facility,
            level=levels[0] if levels else "debug",
            min_level=levels[1] if len(levels) > 1 else "emerg",
            format=fmt,
            udp=udp,
        )
    )


@KEYWORDS.register("maxconn", "global")
def _maxconn(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["maxconn"] = parse_int(args[1], "maxconn", 1)


@KEYWORDS.register("daemon", "global")
def _daemon(ctx: Ctx, args: list[str]) -> None:
    ctx.section.fields["daemon"] = True


@KEYWORDS.register("master-worker", "global")
def _master_worker(ctx: Ctx, args: list[str]) -> None:
    ctx.section.fields["master_worker"] = True


@KEYWORDS.register("pidfile", "global")
def _pidfile(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "a file name as an argument")
    ctx.section.fields["pidfile"] = args[1]


@KEYWORDS.register("nbthread", "global")
def _nbthread(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["nbthread"] = parse_int(args[1], "nbthread", 1, 64)


@KEYWORDS.register("nbproc", "global")
def _nbproc(ctx: Ctx, args: list[str]) -> None:
    raise ConfigError(
        "'nbproc' is not supported any more since HAProxy 2.5. Threads will "
        "automatically be used on multi-processor machines if available."
    )


def _name_or_id(field: str) -> object:
    def handler(ctx: Ctx, args: list[str]) -> None:
        ctx.need(args, 1, "an argument")
        value: object = args[1]
        if field in ("uid", "gid"):
            value = parse_int(args[1], field)
        ctx.section.fields[field] = value

    return handler


for _f in ("user", "group", "uid", "gid", "chroot", "node"):
    KEYWORDS.register(_f, "global")(_name_or_id(_f))  # type: ignore[arg-type]


@KEYWORDS.register("log-tag", "global")
def _log_tag(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "a tag for use in syslog")
    ctx.section.fields["log_tag"] = args[1]


@KEYWORDS.register("log-send-hostname", "global")
def _log_send_hostname(ctx: Ctx, args: list[str]) -> None:
    ctx.section.fields["log_send_hostname"] = args[1] if len(args) > 1 else socket.gethostname()


@KEYWORDS.register("h1-case-adjust", "global")
def _h1_case_adjust(ctx: Ctx, args: list[str]) -> None:
    if len(args) > 3:
        raise ConfigError(f"'{args[0]}' cannot handle unexpected argument '{args[3]}'.")
    if len(args) < 3 or not args[1] or not args[2]:
        raise ConfigError(f"'{args[0]}' expects <from> and <to> as argument.")
    if args[1].lower() != args[2].lower():
        raise ConfigError("<from> and <to> must not differ execpt the case")  # sic
    ctx.section.fields.setdefault("h1_case_adjust", []).append((args[1], args[2]))


@KEYWORDS.register("pp2-never-send-local", "global")
def _pp2_never_send_local(ctx: Ctx, args: list[str]) -> None:
    ctx.section.fields["pp2_never_send_local"] = True


@KEYWORDS.register("tune.bufsize", "global")
def _bufsize(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["bufsize"] = parse_int(args[1], "tune.bufsize", 1024)


@KEYWORDS.register("tune.maxrewrite", "global")
def _maxrewrite(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["maxrewrite"] = parse_int(args[1], "tune.maxrewrite")


@KEYWORDS.register("tune.http.maxhdr", "global")
def _maxhdr(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["maxhdr"] = parse_int(args[1], "tune.http.maxhdr", 1, 32767)


@KEYWORDS.register("maxpipes", "global")
def _maxpipes(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["maxpipes"] = parse_int(args[1], "maxpipes")


@KEYWORDS.register("hard-stop-after", "global")
def _hard_stop_after(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "a time value")
    ctx.section.fields["hard_stop_after"] = parse_time(args[1])


@KEYWORDS.register("stats", "global")
def _stats(ctx: Ctx, args: list[str]) -> None:
    if len(args) >= 2 and args[1] == "bind-process":
        return
    if len(args) >= 2 and args[1] == "maxconn":
        try:
            ctx.section.fields["stats_maxconn"] = parse_int(args[2] if len(args) > 2 else "", "", 1)
        except ConfigError:
            raise ConfigError("'stats maxconn' expects a positive value") from None
        return
    if len(args) >= 3 and args[1] == "timeout":
        ctx.section.fields["stats_timeout"] = parse_time(args[2])
        return
    if len(args) < 3 or args[1] != "socket":
        raise ConfigError("'stats' expects 'socket', 'maxconn', 'timeout' in 'global' section.")
    try:
        addr = (
            parse_bind(args[2])[0]
            if "@" in args[2] or not args[2].startswith("/")
            else SockAddr(socket.AF_UNIX, args[2], 0)
        )
    except AddressError as exc:
        raise ConfigError(f"'stats socket' : {exc}") from None
    if addr.family == socket.AF_UNIX and len(addr.host or "") > MAX_UNIX_PATH:
        # HAProxy names the place twice in this message
        raise ConfigError(
            f"parsing [{ctx.where}] : 'stats socket' : socket path '{addr.host}' too long "
            f"(max {MAX_UNIX_PATH})"
        )
    mode: int | None = None
    level = "operator"
    expose_fd = False
    maxconn = 0
    opts = args[3:]
    while opts:
        word = opts.pop(0)
        if (
            word in ("mode", "level", "user", "group", "uid", "gid", "name", "process", "maxconn")
            and opts
        ):
            value = opts.pop(0)
            if word == "maxconn":
                maxconn = parse_int(value, "maxconn", 1)
            elif word == "mode":
                mode = int(value, 8)
            elif word == "level":
                if value not in ("user", "operator", "admin"):
                    raise ConfigError(
                        f"'level' only supports 'user', 'operator', and 'admin' (got '{value}')"
                    )
                level = value
        elif word == "expose-fd" and opts and opts[0] == "listeners":
            opts.pop(0)
            expose_fd = True
        else:
            raise ConfigError(f"'stats socket' : unknown keyword '{word}'.")
    ctx.section.fields.setdefault("stats_sockets", []).append(
        StatsSocketCfg(addr, mode, level, expose_fd, maxconn)
    )


@KEYWORDS.register("prometheus-exporter", "global")
def _prometheus_exporter(ctx: Ctx, args: list[str]) -> None:
    """nsproxy's own: serves Prometheus metrics on ADDR:PORT (HAProxy uses an HTTP service)."""
    ctx.need(args, 1, "an <address:port> to listen on")
    try:
        addrs = parse_bind(args[1])
    except AddressError as exc:
        raise ConfigError(f"'prometheus-exporter' : {exc}") from None
    if len(addrs) != 1 or addrs[0].family == socket.AF_UNIX:
        raise ConfigError("'prometheus-exporter' expects one <address:port>.")
    ctx.section.fields["prometheus_exporter"] = addrs[0]


_TOLERATED = [
    "spread-checks",
    "tune.maxaccept",
    "tune.pipesize",
    "tune.rcvbuf.client",
    "tune.rcvbuf.server",
    "tune.sndbuf.client",
    "tune.sndbuf.server",
    "setenv",
    "presetenv",
    "unsetenv",
    "resetenv",
    "expose-experimental-directives",
]


def _tolerated(ctx: Ctx, args: list[str]) -> None:
    raise ConfigWarning(f"'{args[0]}' is not used by nsproxy; ignored.")


for _kw in _TOLERATED:
    KEYWORDS.register(_kw, "global")(_tolerated)


# ---- TLS: ssl-default-*, crt-base, ca-base, ssl-server-verify, tune.ssl.*


def _tls(ctx: Ctx) -> GlobalTls:
    found = ctx.section.fields.get("tls")
    return found if isinstance(found, GlobalTls) else GlobalTls()


def _set_tls(ctx: Ctx, **changes: object) -> None:
    ctx.section.fields["tls"] = dataclasses.replace(_tls(ctx), **changes)  # type: ignore[arg-type]


def _default_options(ctx: Ctx, args: list[str]) -> None:
    side = "bind_defaults" if "-bind-" in args[0] else "server_defaults"
    base: SslOptions = getattr(_tls(ctx), side)
    fields: dict[str, Any] = {}
    no: set[str] = set(base.no_versions)
    words = args[1:]
    where = f"on global statement '{args[0]}'"
    while words:
        word = words.pop(0)
        if word in ("ssl-min-ver", "ssl-max-ver"):
            try:
                fields[word[4:7] + "_ver"] = tls_version(word, words.pop(0) if words else None)
            except OptionError as exc:
                raise ConfigError(f"{exc} {where}.") from None
        elif word in NO_VERSION_FLAGS:
            no.add(NO_VERSION_FLAGS[word])
        elif word in FORCE_FLAGS:
            fields["min_ver"] = fields["max_ver"] = FORCE_FLAGS[word]
        elif word == "no-tls-tickets":
            fields["no_tickets"] = True
        elif word in IGNORED_FLAGS or word in ("no-ca-names", "strict-sni"):
            pass
        else:
            raise ConfigError(f"unknown option '{word}' {where}.")
    _set_tls(ctx, **{side: dataclasses.replace(base, no_versions=frozenset(no), **fields)})


def _default_ciphers(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError(f"global statement '{args[0]}' expects a cipher suite as an argument.")
    if len(args) > 2:
        raise ConfigError(f"'{args[0]}' cannot handle unexpected argument '{args[2]}'.")
    side = "bind_defaults" if "-bind-" in args[0] else "server_defaults"
    field = "ciphersuites" if args[0].endswith("ciphersuites") else "ciphers"
    base: SslOptions = getattr(_tls(ctx), side)
    changes: dict[str, Any] = {field: args[1]}
    _set_tls(ctx, **{side: dataclasses.replace(base, **changes)})


for _kw in ("ssl-default-bind-options", "ssl-default-server-options"):
    KEYWORDS.register(_kw, "global")(_default_options)
for _kw in (
    "ssl-default-bind-ciphers",
    "ssl-default-bind-ciphersuites",
    "ssl-default-server-ciphers",
    "ssl-default-server-ciphersuites",
):
    KEYWORDS.register(_kw, "global")(_default_ciphers)


def _base_dir(ctx: Ctx, args: list[str]) -> None:
    field = "crt_base" if args[0] == "crt-base" else "ca_base"
    if getattr(_tls(ctx), field) is not None:
        raise ConfigError(f"'{args[0]}' already specified.")
    if len(args) < 2:
        raise ConfigError(f"global statement '{args[0]}' expects a directory path as an argument.")
    _set_tls(ctx, **{field: args[1]})


KEYWORDS.register("crt-base", "global")(_base_dir)
KEYWORDS.register("ca-base", "global")(_base_dir)


@KEYWORDS.register("ssl-server-verify", "global")
def _ssl_server_verify(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    if args[1] not in ("none", "required"):
        raise ConfigError("'ssl-server-verify' expects 'none' or 'required' as argument.")
    _set_tls(ctx, server_verify=args[1])


@KEYWORDS.register("tune.ssl.cachesize", "global")
def _ssl_cachesize(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    _set_tls(ctx, cachesize=parse_int(args[1], args[0]))


@KEYWORDS.register("tune.ssl.maxrecord", "global")
def _ssl_maxrecord(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    _set_tls(ctx, maxrecord=parse_int(args[1], args[0]))


@KEYWORDS.register("tune.ssl.default-dh-param", "global")
def _ssl_dh_param(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    value = parse_int(args[1], args[0])
    if value < 1024:
        raise ConfigError("'tune.ssl.default-dh-param' expects a value >= 1024.")
    _set_tls(ctx, default_dh_param=value)


@KEYWORDS.register("tune.ssl.lifetime", "global")
def _ssl_lifetime(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "a time value")
    try:
        _set_tls(ctx, lifetime=parse_time(args[1], "s"))
    except ConfigError:
        bad = args[1].lstrip("0123456789")[:1]
        raise ConfigError(f"unexpected character '{bad}' in argument to <{args[0]}>.") from None
