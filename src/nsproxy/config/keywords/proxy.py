"""Keywords of proxy sections (defaults, frontend, backend, listen): mode, timeouts, options."""

from __future__ import annotations

import re

from nsproxy.addresses import AddressError, parse_source
from nsproxy.config.keywords.sslhellochk import add_tcp_rule, use_tcp_check
from nsproxy.config.model import SourceCfg, TcpCheckRule
from nsproxy.config.model_http import HttpCfg
from nsproxy.config.registry import (
    KEYWORDS,
    OPTIONS,
    PROXY_SECTIONS,
    TIMEOUTS,
    ConfigError,
    ConfigWarning,
    Ctx,
    parse_int,
    parse_time,
)

ALL = PROXY_SECTIONS
FE = ("defaults", "frontend", "listen")
BE = ("defaults", "backend", "listen")
ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source")


@KEYWORDS.register("mode", *ALL)
def _mode(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2 or args[1] not in ("tcp", "http", "health"):
        raise ConfigError("'mode' expects one of 'tcp', 'http' or 'health'.")
    if args[1] == "health":
        ctx.warn("'mode health' is not supported by nsproxy yet; the proxy runs in TCP mode.")
    if args[1] == "http":
        ctx.section.fields.setdefault("http", HttpCfg())
    ctx.section.fields["mode"] = args[1]


@KEYWORDS.register("default_backend", *ALL, backend=False)
def _default_backend(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "a backend name")
    ctx.section.fields["default_backend"] = args[1]
    ctx.section.fields["_default_backend_where"] = ctx.where


@KEYWORDS.register("timeout", *ALL)
def _timeout(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'timeout' expects a timer name and a value.")
    kw = TIMEOUTS.get(args[1])
    if kw is None:
        raise ConfigError(
            f"'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'tunnel', "
            f"'client-fin' and 'server-fin' (got '{args[1]}')"
        )
    if len(args) < 3:
        raise ConfigError(f"'timeout {args[1]}' expects an integer value (in milliseconds)")
    try:
        value = parse_time(args[2])
    except ConfigError as exc:
        msg = str(exc)
        if msg.startswith("unexpected character"):
            msg = msg.split(" in time value")[0] + f" in 'timeout {args[1]}'"
            raise ConfigError(msg) from None
        raise ConfigError(f"'timeout {args[1]}' : {msg}") from None
    kw.handler(ctx, [args[1], str(value)])


def _timer(field: str) -> None:
    def handler(ctx: Ctx, args: list[str]) -> None:
        ctx.section.fields.setdefault("timeouts", {})[field] = float(args[1])

    TIMEOUTS.register(field.replace("_", "-"))(handler)


for _name in (
    "connect",
    "client",
    "server",
    "client_fin",
    "server_fin",
    "tunnel",
    "queue",
    "check",
):
    _timer(_name)


def _legacy_timer(field: str) -> None:
    def handler(ctx: Ctx, args: list[str]) -> None:
        ctx.need(args, 1, "a time value")
        ctx.section.fields.setdefault("timeouts", {})[field] = parse_time(args[1])
        ctx.warn(f"the '{args[0]}' directive is deprecated; use 'timeout {field}' instead.")

    KEYWORDS.register(f"{field}timeout", *ALL)(handler)


for _name in ("connect", "client", "server"):
    _legacy_timer(_name)


@KEYWORDS.register("maxconn", *FE, backend=False)
def _maxconn(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["maxconn"] = parse_int(args[1], "maxconn")


@KEYWORDS.register("backlog", *ALL, backend=False)
def _backlog(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["backlog"] = parse_int(args[1], "backlog", 1)


@KEYWORDS.register("balance", *ALL, frontend=False)
def _balance(ctx: Ctx, args: list[str]) -> None:
    algo = args[1] if len(args) > 1 else ""
    if algo.startswith("random"):
        # HAProxy compares only the first six characters, then reads an optional `(draws)`
        ctx.section.fields["random_draws"] = random_draws(algo[6:])
        ctx.section.fields["balance"] = "random"
        return
    if algo not in ALGORITHMS:
        raise ConfigError(
            f"'balance' only supports 'roundrobin', 'static-rr', 'leastconn', 'first', "
            f"'source' and 'random' in nsproxy (got '{algo}')."
        )
    ctx.section.fields["balance"] = algo


def random_draws(rest: str) -> int:
    """The number of draws of `balance random[(<draws>)]` from what follows `random`."""
    if not rest.startswith("(") or rest[1:2] == ")":
        return 2
    m = re.match(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)?", rest[1:])
    assert m is not None
    digits = m.group(2) or "0"
    value = (
        int(digits, 0)
        if digits.lower().startswith("0x")
        else int(digits, 8 if digits[0] == "0" else 10)
    )
    if m.group(1) == "-":
        value = -value
    end = rest[1 + (m.end() if m.group(2) else 0) :]
    if end[:1] != ")":
        if not end:
            raise ConfigError("balance random : missing closing parenthesis.")
        raise ConfigError(f"balance random : unexpected character '{end[0]}' after argument.")
    if value < 1:
        raise ConfigError("balance random : number of draws must be at least 1.")
    return value


@KEYWORDS.register("hash-type", *ALL, frontend=False)
def _hash_type(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2 or args[1] not in ("map-based", "consistent"):
        raise ConfigError("'hash-type' expects 'map-based' or 'consistent'.")
    if len(args) > 2 and args[2] not in ("sdbm", "djb2", "wt6", "crc32", "none"):
        raise ConfigError(f"'hash-type' : unknown hash function '{args[2]}'.")
    if len(args) > 3 and args[3] != "avalanche":
        raise ConfigError(f"'hash-type' : unknown hash modifier '{args[3]}'.")
    ctx.section.fields["hash_type"] = args[1]
    # a bare method keeps HAProxy's default modifier; naming a function turns it off unless
    # 'avalanche' follows
    ctx.section.fields["hash_avalanche"] = (len(args) > 3) if len(args) > 2 else None


@KEYWORDS.register("retries", *ALL, frontend=False)
def _retries(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["retries"] = parse_int(args[1], "retries")


@KEYWORDS.register("id", "frontend", "backend", "listen")
def _id(ctx: Ctx, args: list[str]) -> None:
    ctx.need(args, 1, "an integer argument")
    ctx.section.fields["id"] = parse_int(args[1], "id", 1)


@KEYWORDS.register("disabled", *ALL)
def _disabled(ctx: Ctx, args: list[str]) -> None:
    ctx.section.fields["disabled"] = True


@KEYWORDS.register("enabled", *ALL)
def _enabled(ctx: Ctx, args: list[str]) -> None:
    ctx.section.fields["disabled"] = False


@KEYWORDS.register("description", "global", *ALL)
def _description(ctx: Ctx, args: list[str]) -> None:
    ctx.section.fields["description"] = " ".join(args[1:])


def parse_source_args(args: list[str], allow_range: bool) -> SourceCfg:
    """`source ADDR[:PORT|:LOW-HIGH] [usesrc ...] [interface IF]` (args without 'source')."""
    if not args:
        raise ConfigError("'source' expects <addr>[:<port>] as argument.")
    text, port_range = args[0], None
    head, sep, tail = text.rpartition(":")
    if sep and "-" in tail:
        if not allow_range:
            raise ConfigError(
                f"'source' : port ranges are only allowed on 'server' lines ('{text}')."
            )
        lo, _, hi = tail.partition("-")
        if not (lo.isdigit() and hi.isdigit()) or not 0 < int(lo) <= int(hi) <= 65535:
            raise ConfigError(f"'source' : invalid source port range '{tail}'.")
        port_range, text = (int(lo), int(hi)), head
    try:
        addr = parse_source(text)
    except AddressError as exc:
        raise ConfigError(f"'source' : {exc}") from None
    usesrc: str | None = None
    usesrc_addr = None
    interface: str | None = None
    rest = args[1:]
    while rest:
        word = rest.pop(0)
        if word == "usesrc":
            if not rest:
                raise ConfigError(
                    "'usesrc' expects <addr>[:<port>], 'client', 'clientip', "
                    "or 'hdr_ip(name,#)' as argument."
                )
            what = rest.pop(0)
            if what in ("client", "clientip"):
                usesrc = what
            elif what.startswith("hdr_ip("):
                raise ConfigError("'usesrc hdr_ip(...)' needs HTTP mode, which nsproxy lacks.")
            else:
                try:
                    usesrc_addr = parse_source(what)
                except AddressError:
                    raise ConfigError(
                        f"'usesrc {what}' : invalid address: '{what}' in '{what}'"
                    ) from None
                usesrc = "addr"
        elif word == "interface":
            if not rest:
                raise ConfigError("'interface' expects an interface name.")
            interface = rest.pop(0)
        else:
            raise ConfigError(f"'source' : unknown keyword '{word}'.")
    return SourceCfg(addr, port_range, usesrc, usesrc_addr, interface)


@KEYWORDS.register("source", *ALL, frontend=False)
def _source(ctx: Ctx, args: list[str]) -> None:
    ctx.section.fields["source"] = parse_source_args(args[1:], allow_range=False)


@KEYWORDS.register("usesrc", *BE, frontend=False)
def _usesrc(ctx: Ctx, args: list[str]) -> None:
    raise ConfigError("'usesrc' only allowed after a 'source' statement.")


@KEYWORDS.register("tcp-check", *BE, frontend=False)
def _tcp_check(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'tcp-check' expects 'connect', 'send', 'expect' or 'comment'.")
    rules: list[TcpCheckRule] = []
    action = args[1]
    if action == "comment":
        return
    if action == "connect":
        port = ""
        if args[2:4] and args[2] == "port" and len(args) >= 4:
            port = str(parse_int(args[3], "tcp-check connect port", 1, 65535))
        elif len(args) > 2:
            raise ConfigError(
                f"'tcp-check connect' : only 'port <port>' is supported, not '{args[2]}'."
            )
        rules.append(TcpCheckRule("connect", port))
    elif action in ("send", "send-lf"):
        ctx.need(args[1:], 1, "a string argument")
        data = args[2].replace("\\r", "\r").replace("\\n", "\n")
        rules.append(TcpCheckRule("send", data + ("\n" if action == "send-lf" else "")))
    elif action == "expect":
        rest = args[2:]
        negate = bool(rest) and rest[0] == "!"
        if negate:
            rest = rest[1:]
        if len(rest) < 2 or rest[0] not in ("string", "rstring"):
            raise ConfigError("'tcp-check expect' expects 'string <pattern>' or 'rstring <regex>'.")
        rules.append(TcpCheckRule(rest[0], rest[1], negate))
    else:
        raise ConfigError(f"'tcp-check' : unknown action '{action}'.")
    for rule in rules:
        add_tcp_rule(ctx, rule)


@KEYWORDS.register("option", *ALL)
def _option(ctx: Ctx, args: list[str]) -> None:
    _set_option(ctx, args, True)


@KEYWORDS.register("no", "global", *ALL)
def _no(ctx: Ctx, args: list[str]) -> None:
    if len(args) >= 2 and args[1] == "log":
        ctx.section.fields["logs"] = []
        return
    if len(args) < 3 or args[1] != "option":
        raise ConfigError("'no' only applies to 'option' and 'log'.")
    _set_option(ctx, args[1:], False)


def _set_option(ctx: Ctx, args: list[str], on: bool) -> None:
    if len(args) < 2:
        raise ConfigError("'option' expects an option name.")
    kw = OPTIONS.get(args[1])
    if kw is None:
        raise ConfigError(f"unknown option '{args[1]}'.")
    kw.handler(ctx, args[1:] + (["on"] if on else ["off"]))


def _flag(name: str, field: str, *sections: str) -> None:
    def handler(ctx: Ctx, args: list[str]) -> None:
        ctx.section.fields[field] = args[-1] == "on"

    OPTIONS.register(name, *sections)(handler)


for _opt, _field in (
    ("dontlognull", "dontlognull"),
    ("redispatch", "redispatch"),
    ("allbackups", "allbackups"),
    ("splice-request", "splice_request"),
    ("splice-response", "splice_response"),
    ("splice-auto", "splice_auto"),
    ("log-separate-errors", "log_separate_errors"),
    ("reject-unknown-netns", "reject_unknown_netns"),
    ("log-health-checks", "log_health_checks"),
):
    _flag(_opt, _field)


@OPTIONS.register("tcp-check")
def _option_tcp_check(ctx: Ctx, args: list[str]) -> None:
    use_tcp_check(ctx)


_IGNORED_OPTIONS = [
    "tcpka",
    "clitcpka",
    "srvtcpka",
    "abortonclose",
    "contstats",
    "dontlog-normal",
    "nolinger",
    "socket-stats",
    "transparent",
    "independent-streams",
    "splice-auto",
]


def _ignored_option(ctx: Ctx, args: list[str]) -> None:
    if args[-1] == "off":
        return  # `no option X`: what nsproxy does anyway
    raise ConfigWarning(f"'option {args[0]}' is not used by nsproxy; ignored.")


for _opt in _IGNORED_OPTIONS:
    if OPTIONS.get(_opt) is None:
        OPTIONS.register(_opt)(_ignored_option)
