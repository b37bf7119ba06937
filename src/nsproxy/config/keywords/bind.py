"""The `bind` keyword and its options (namespace, interface, backlog, accept-proxy, ...)."""

from __future__ import annotations

import os
from typing import Any

from nsproxy.addresses import AddressError, parse_bind
from nsproxy.config.keywords.namespace import netns_exists
from nsproxy.config.model import BindCfg, Config
from nsproxy.config.model_tls import BindTls, GlobalTls, SslOptions
from nsproxy.config.registry import (
    BIND_OPTIONS,
    KEYWORDS,
    ConfigError,
    Ctx,
    parse_int,
    post_check,
)
from nsproxy.netns import check_name
from nsproxy.tls.contexts import ContextError, server_context
from nsproxy.tls.crtlist import read_crt_list
from nsproxy.tls.options import (
    FORCE_FLAGS,
    IGNORED_ARGS,
    IGNORED_FLAGS,
    NO_VERSION_FLAGS,
    OptionError,
    build_options,
    resolve,
    take_option,
)
from nsproxy.tls.pem import PemError, crt_dir_files, load_bundle, load_verify_file

OPTS = "_bind_opts"
TLS = "_tls"  # the TLS options of the bind being parsed, as SslOptions fields


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
    if TLS in opts:
        opts["tls"] = _bind_tls(opts.pop(TLS), args[1])
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
    ("defer-accept", "defer_accept", "flag"),
    ("tfo", "tfo", "flag"),
    ("user", "", "ignored"),
    ("group", "", "ignored"),
    ("process", "", "ignored"),
    ("thread", "", "ignored"),
):
    _option(_name, _field, _kind)


# ---- TLS (`ssl`, `crt`, `crt-list`, `verify`, ...): certificates are loaded while parsing, as
# HAProxy does, so that a missing file or key is reported on its line.


def _tls_fields(ctx: Ctx) -> dict[str, Any]:
    opts: dict[str, Any] = ctx.section.fields[OPTS]
    fields: dict[str, Any] = opts.setdefault(
        TLS, {"enabled": False, "crts": [], "crt_lists": [], "opts": {}}
    )
    return fields


def _global_tls(ctx: Ctx) -> GlobalTls:
    found = ctx.state.global_.fields.get("tls") if ctx.state is not None else None
    return found if isinstance(found, GlobalTls) else GlobalTls()


def _load_crt(path: str) -> None:
    try:
        load_bundle(path)
    except PemError as exc:
        raise ConfigError(str(exc)) from None


@BIND_OPTIONS.register("ssl")
def _ssl(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)
    _tls_fields(ctx)["enabled"] = True


@BIND_OPTIONS.register("crt")
def _crt(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)
    if not rest:
        raise ConfigError("'crt' : missing certificate location")
    path = resolve(rest.pop(0), _global_tls(ctx).crt_base)
    if os.path.isdir(path):
        for name in crt_dir_files(path):
            _load_crt(name)
    else:
        _load_crt(path)
    _tls_fields(ctx)["crts"].append(path)


@BIND_OPTIONS.register("crt-list")
def _crt_list(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)
    if not rest:
        raise ConfigError("'crt-list' : missing certificate location")
    g = _global_tls(ctx)
    path = rest.pop(0)
    try:
        entries = read_crt_list(path, g.crt_base, g.ca_base)
        for entry in entries:
            try:
                load_bundle(entry.crt)
            except PemError as exc:
                raise OptionError(f"'crt-list' : {exc}") from None
            for f in (entry.options.ca_file, entry.options.crl_file):
                if f is not None:
                    load_verify_file(f)
    except (OptionError, PemError) as exc:
        raise ConfigError(str(exc)) from None
    _tls_fields(ctx)["crt_lists"].append(path)


@BIND_OPTIONS.register("strict-sni")
def _strict_sni(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)
    _tls_fields(ctx)["strict_sni"] = True


def _ssl_option(ctx: Ctx, rest: list[str]) -> None:
    word = rest[0]
    fields = _tls_fields(ctx)["opts"]
    try:
        take_option(rest, fields, _global_tls(ctx).ca_base)
    except OptionError as exc:
        raise ConfigError(str(exc)) from None
    if word in ("ca-file", "crl-file"):
        path = fields[word.replace("-", "_")]
        try:
            load_verify_file(path)
        except PemError as exc:
            ctx.state.errors.append(str(exc))
            raise ConfigError(f"'{word}' : unable to load {path}") from None


for _name in (
    "verify",
    "ca-file",
    "crl-file",
    "alpn",
    "ssl-min-ver",
    "ssl-max-ver",
    "ciphers",
    "ciphersuites",
    "no-tls-tickets",
    "ca-ignore-err",
    "crt-ignore-err",
    *NO_VERSION_FLAGS,
    *FORCE_FLAGS,
    *IGNORED_FLAGS,
    *IGNORED_ARGS,
):
    BIND_OPTIONS.register(_name)(_ssl_option)


def _bind_tls(fields: dict[str, Any], name: str) -> BindTls:
    return BindTls(
        enabled=fields["enabled"],
        crts=tuple(fields["crts"]),
        crt_lists=tuple(fields["crt_lists"]),
        options=build_options(fields["opts"]),
        strict_sni=fields.get("strict_sni", False),
        name=name,
    )


def _entry_options(tls: BindTls, defaults: SslOptions) -> list[SslOptions]:
    """The merged options of the bind and of each of its crt-list entries."""
    base = tls.options.over(defaults)
    out = [base]
    for path in tls.crt_lists:
        try:
            out.extend(e.options.over(base) for e in read_crt_list(path))
        except OptionError:
            continue
    return out


def _has_certificates(tls: BindTls) -> bool:
    if tls.crt_lists:
        return True
    return any(not os.path.isdir(p) or crt_dir_files(p) for p in tls.crts)


@post_check
def _tls_binds(state: Any, config: Config) -> None:
    defaults = config.global_.tls.bind_defaults
    for px in config.frontends:
        for bind in px.binds:
            tls = bind.tls
            if tls is None or not tls.enabled:
                continue
            at = f"for bind '{tls.name}' at [{bind.where}]"
            head = f"Proxy '{px.name}': "
            if not tls.crts and not tls.crt_lists:
                state.errors.append(f"{head}no SSL certificate specified {at} (use 'crt').")
                continue
            if not _has_certificates(tls):
                state.warnings.append(
                    f"{head}no SSL certificate specified {at}, ssl connections will fail "
                    "(use 'crt')."
                )
            merged = _entry_options(tls, defaults)
            if any(o.verify in ("optional", "required") and o.ca_file is None for o in merged):
                state.errors.append(f"{head}verify is enabled but no CA file specified {at}.")
                continue
            base = merged[0]
            if base.no_versions and (base.min_ver is not None or base.max_ver is not None):
                state.warnings.append(
                    f"{head}no-sslv3/no-tlsv1x are ignored {at}. "
                    "Use only 'ssl-min-ver' and 'ssl-max-ver' to fix."
                )
            for opts in merged:
                try:
                    server_context(
                        None, SslOptions(ciphers=opts.ciphers, ciphersuites=opts.ciphersuites)
                    )
                except ContextError as exc:
                    msg = str(exc).replace("unable to set ", "")
                    state.errors.append(f"{head}unable to set {msg} {at}.")
                    break
