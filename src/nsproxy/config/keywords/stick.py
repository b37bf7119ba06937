"""Keywords for stick tables: `stick-table`, `stick`, `localpeer` and the `peers` section."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from nsproxy.config.keywords.rules import env_of
from nsproxy.config.model_stick import PeerCfg, PeersCfg, StickRuleCfg, StickTableCfg
from nsproxy.config.registry import (
    KEYWORDS,
    OPTIONS,
    PROXY_SECTIONS,
    SECTIONS,
    ConfigError,
    ConfigWarning,
    Ctx,
    Section,
    post_check,
)
from nsproxy.sample import AclSet, Hook, SampleError, compile_condition
from nsproxy.sample.context import Txn
from nsproxy.sample.expr import Getter, parse_expr
from nsproxy.sample.places import use_names
from nsproxy.sample.types import Missing, Sample
from nsproxy.stick.types import ARRAY_NAMES, KEY_TYPES, data_type

# Parse-state keys kept in the global section's fields (the model keeps `localpeer` and
# `peers`; the others are bookkeeping that GlobalCfg ignores).
TABLES_SEEN = "stick_tables_seen"
TABLE_NAMES = "table_names"  # GlobalCfg.table_names: declaration order
PEERS = "peers"
LOCALPEER = "localpeer"
LOCALPEER_CMDLINE = "localpeer_cmdline"  # set by the command line's -L before parsing


# -- value parsers with HAProxy's error positions --------------------------------------------
def parse_size(text: str) -> tuple[int | None, str]:
    """parse_size_err(): (value, "") or (None, the offending character)."""
    if not text[:1].isdigit():
        return None, text[:1]
    p = 0
    v = 0
    while p < len(text) and "0" <= text[p] <= "9":
        v = v * 10 + ord(text[p]) - 48
        if v > 0xFFFFFFFF:
            return None, text[p]
        p += 1
    if p < len(text):
        shift = {"k": 10, "m": 20, "g": 30}.get(text[p].lower())
        if shift is None:
            return None, text[p]
        if v > 0xFFFFFFFF >> shift:
            return None, text[p]
        v <<= shift
        if p + 1 < len(text):
            return None, text[p + 1]
    return v, ""


def parse_time_ms(text: str, warnings: list[str] | None = None) -> int | str:
    """parse_time_err() in ms (rounded up): the value, "over", "under", or the offending
    character. Characters after a unit only draw HAProxy 2.6's warning into `warnings`."""
    if not text[:1].isdigit():
        return text[:1] or "\0"
    p = 0
    while p < len(text) and text[p].isdigit():
        p += 1
    v = int(text[:p])
    rest = text[p:]
    if not rest:
        mult, div = 1, 1
    elif rest[0] == "s":
        mult, div = 1000, 1
    elif rest[0] == "u":
        if rest[1:2] != "s":
            return rest[0]
        mult, div, rest = 1, 1000, rest[1:]
    elif rest[0] == "m":
        if rest[1:2] == "s":
            mult, div, rest = 1, 1, rest[1:]
        else:
            mult, div = 60000, 1
    elif rest[0] == "h":
        mult, div = 3600000, 1
    elif rest[0] == "d":
        mult, div = 86400000, 1
    else:
        return rest[0]
    if len(rest) > 1 and warnings is not None:
        warnings.append(
            f"config : unexpected character '{rest[1]}' after the timer value '{text}', only "
            "(us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are "
            "supported. This will be reported as an error in next versions."
        )
    result = (v * mult + div - 1) // div
    if result >= 0x80000000:
        return "over"
    if not result and v:
        return "under"
    return result


def invalid_char(name: str) -> str | None:
    """HAProxy's invalid_char(): the first character outside [A-Za-z0-9._:-], if any."""
    for ch in name:
        if not (ch.isascii() and ch.isalnum()) and ch not in "._:-":
            return ch
    return None


# -- stick-table -------------------------------------------------------------------------------
def parse_stick_table(
    args: list[str], idx: int, name: str, kw: str, peers: str | None, ctx: Ctx
) -> StickTableCfg:
    """parse_stick_table(): the words from `idx` on; `peers` is set for a peers `table`."""
    key_type: str | None = None
    key_size = 0
    key_len: int | None = None
    size = 0
    expire = 0
    nopurge = False
    srvkey = "name"
    table_peers = peers
    store: list[tuple[str, int | None]] = []
    seen_types: set[str] = set()
    a = [*args, "", "", "", ""]
    while a[idx]:
        word = a[idx]
        if word == "size":
            idx += 1
            if not a[idx]:
                raise ConfigError(f"{kw}: missing argument after 'size'.")
            v, bad = parse_size(a[idx])
            if v is None:
                raise ConfigError(f"{kw}: unexpected character '{bad}' in argument of 'size'.")
            size = v
            idx += 1
        elif word == "peers" and peers is None:
            idx += 1
            if not a[idx]:
                raise ConfigError(f"{kw}: missing argument after 'peers'.")
            table_peers = a[idx]
            idx += 1
        elif word == "expire":
            idx += 1
            if not a[idx]:
                raise ConfigError(f"{kw}: missing argument after 'expire'.")
            t = parse_time_ms(a[idx], ctx.state.warnings)
            if t == "over":
                raise ConfigError(
                    f"{kw}: timer overflow in argument <{a[idx]}> to <expire>, maximum value "
                    "is 2147483647 ms (~24.8 days).",
                    "nospace",
                )
            if t == "under":
                raise ConfigError(
                    f"{kw}: timer underflow in argument <{a[idx]}> to <expire>, minimum "
                    "non-null value is 1 ms.",
                    "nospace",
                )
            if isinstance(t, str):
                raise ConfigError(f"{kw}: unexpected character '{t}' in argument of 'expire'.")
            expire = t
            idx += 1
        elif word == "nopurge":
            nopurge = True
            idx += 1
        elif word == "type":
            idx += 1
            kt = a[idx]
            if kt not in KEY_TYPES:
                raise ConfigError(f"{kw}: unknown type '{kt}'.")
            key_type = kt
            key_size, custom = KEY_TYPES[kt]
            idx += 1
            if custom and a[idx] == "len":
                idx += 1
                n = _atol(a[idx])
                if not n:
                    raise ConfigError(f"{kw}: unknown type '{a[idx]}'.")
                key_len = n
                key_size = n + 1 if kt == "string" else n
                idx += 1
        elif word == "store":
            idx += 1
            for item, arg in _split_store(a[idx], kw):
                if item in ARRAY_NAMES:
                    raise ConfigError(f"{kw}: store option '{item}' is not supported by nsproxy.")
                dt = data_type(item)
                if dt is None:
                    raise ConfigError(f"{kw}: unknown store option '{item}'.")
                if dt.name in seen_types:
                    ctx.state.warnings.append(
                        f"parsing [{ctx.where}]: {kw}: store option '{item}' already enabled, "
                        "ignored."
                    )
                    continue
                period: int | None = None
                if dt.has_period:
                    if arg is None:
                        raise ConfigError(f"{kw}: missing argument to store option '{item}'.")
                    t = parse_time_ms(arg, ctx.state.warnings)
                    if isinstance(t, str):
                        raise ConfigError(f"{kw}: error when processing store option '{item}'.")
                    period = t
                elif arg is not None:
                    raise ConfigError(f"{kw}: unexpected argument to store option '{item}'.")
                seen_types.add(dt.name)
                store.append((dt.name, period))
            idx += 1
        elif word == "srvkey":
            idx += 1
            if a[idx] not in ("name", "addr"):
                raise ConfigError(f"{kw} : unknown server key type '{a[idx]}'.")
            srvkey = a[idx]
            idx += 1
        else:
            raise ConfigError(f"{kw}: unknown argument '{word}'.")
    if not size:
        raise ConfigError(f"{kw}: missing size.")
    if key_type is None:
        raise ConfigError(f"{kw}: missing type.")
    return StickTableCfg(
        ctx.where,
        name,
        key_type,
        key_size,
        size,
        expire,
        nopurge,
        table_peers,
        tuple(store),
        srvkey,
        key_len,
    )


def _atol(text: str) -> int:
    p = 0
    while p < len(text) and text[p] in " \t":
        p += 1
    q = p + (1 if p < len(text) and text[p] in "+-" else 0)
    r = q
    while r < len(text) and text[r].isdigit():
        r += 1
    if r == q:
        return 0
    v = int(text[q:r])
    return -v if text[p:q] == "-" else v


def _split_store(text: str, kw: str) -> list[tuple[str, str | None]]:
    """The comma-separated `store` list, `name(arg)` items (a comma inside the parentheses
    separates a second argument, which only array types take)."""
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(text):
        start = i
        arg: str | None = None
        name_end = None
        while i < len(text) and text[i] != ",":
            if text[i] == "(":
                name_end = i
                j = text.find(")", i)
                if j < 0:
                    raise ConfigError(
                        f"{kw}: missing closing parenthesis after store option '{text[start:i]}'."
                    )
                arg = text[i + 1 : j].split(",", 1)[0]
                i = j
            i += 1
        name = text[start : name_end if name_end is not None else i]
        out.append((name, arg))
        i += 1
    return out


def _seen(ctx: Ctx) -> dict[str, tuple[str, str, Any]]:
    seen: dict[str, tuple[str, str, Any]] = ctx.state.global_.fields.setdefault(TABLES_SEEN, {})
    return seen


def _declared(ctx: Ctx, name: str, kind: str, owner: str) -> None:
    _seen(ctx)[name] = (kind, owner, ctx.where)
    ctx.state.global_.fields.setdefault(TABLE_NAMES, []).append(name)


def _cap(section: Section) -> str:
    if section.is_frontend and section.is_backend:
        return "listen"
    return "frontend" if section.is_frontend else "backend"


@KEYWORDS.register("stick-table", *PROXY_SECTIONS)
def _stick_table(ctx: Ctx, args: list[str]) -> None:
    sec = ctx.section
    if sec.kind == "defaults":
        raise ConfigError("'stick-table' is not supported in 'defaults' section.")
    seen = _seen(ctx)
    other = seen.get(sec.name)
    if other is not None:
        raise ConfigError(
            f"stick-table name '{sec.name}' conflicts with table declared in "
            f"{other[0]} '{other[1]}' at {other[2]}."
        )
    cfg = parse_stick_table(args, 1, sec.name, "stick-table", None, ctx)
    _declared(ctx, sec.name, _cap(sec), sec.name)
    sec.fields["stick_table"] = cfg


_STICK_KINDS = {
    "store": "store-request",
    "store-request": "store-request",
    "store-response": "store-response",
    "match": "match",
    "on": "on",
}


@KEYWORDS.register("stick", *PROXY_SECTIONS, frontend=False)
def _stick(ctx: Ctx, args: list[str]) -> None:
    if ctx.section.kind == "defaults":
        raise ConfigError("'stick' not allowed in 'defaults' section.")
    a = [*args, "", "", ""]
    kind = _STICK_KINDS.get(a[1])
    if kind is None:
        raise ConfigError("'stick' expects 'on', 'match', or 'store'.")
    if not a[2]:
        raise ConfigError("'stick' expects a fetch method.")
    expr = a[2]
    i = 3
    table = None
    if a[i] == "table":
        table = a[i + 1]
        i += 2
    cond: tuple[str, ...] = ()
    if a[i] in ("if", "unless"):
        cond = tuple(args[i:])
    elif a[i]:
        raise ConfigError(f"'stick': unknown keyword '{a[i]}'.")
    hook = Hook.BE_STO_RUL if kind == "store-response" else Hook.BE_SET_SRV
    env = env_of(ctx)
    try:
        parsed, _ = parse_expr(expr, env)
    except SampleError as e:
        raise ConfigError(f"'stick': {e}") from None
    if not parsed.fetch.val & hook:
        during = "response" if kind == "store-response" else "request"
        raise ConfigError(
            f"'stick': fetch method '{parsed.fetch.name}' extracts information from "
            f"'{use_names(parsed.fetch.use)}', none of which is available during {during}.",
        )
    test = None
    if cond:
        acls: AclSet = ctx.section.fields.setdefault("acls", AclSet())
        try:
            test = compile_condition(list(cond), acls, hook, env, ctx.state.warnings.append)
        except SampleError as e:
            raise ConfigError(
                f"'stick': error detected while parsing sticking condition : {e}."
            ) from None
    rule = StickRuleCfg(ctx.where, kind, expr, table, cond, _plain(parsed.get), test)
    ctx.section.fields.setdefault("stick_rules", []).append(rule)


@OPTIONS.register("persist")
def _option_persist(ctx: Ctx, args: list[str]) -> None:
    """`option persist`: a stuck client keeps its server even when the server is down."""
    sec = ctx.section
    if sec.kind == "frontend":
        raise ConfigWarning(
            f"'{args[0]}' ignored because frontend '{sec.name}' has no backend capability."
        )
    sec.fields["persist"] = args[-1] == "on"


def _plain(get: Getter) -> Callable[[Txn], Sample | None]:
    def run(txn: Txn) -> Sample | None:
        r = get(txn)
        return None if isinstance(r, Missing) else r

    return run


# -- localpeer and peers sections ----------------------------------------------------------------
@KEYWORDS.register("localpeer", "global")
def _localpeer(ctx: Ctx, args: list[str]) -> None:
    if len(args) > 2:
        raise ConfigError(f"'{args[0]}' cannot handle unexpected argument '{args[2]}'.")
    if len(args) < 2 or not args[1]:
        raise ConfigError("'localpeer' expects a name as an argument.")
    g = ctx.state.global_.fields
    if g.get(LOCALPEER_CMDLINE) or g.get(LOCALPEER):
        ctx.warn(
            "'localpeer' ignored since it is already set by using the '-L' command line "
            "argument or a previous use of 'localpeer'."
        )
        return
    g[LOCALPEER] = args[1]


def local_peer_name(state: Any) -> str:
    """The local peer name: -L, else `localpeer`, else the host name (as HAProxy 2.6)."""
    g = state.global_.fields
    return str(g.get(LOCALPEER_CMDLINE) or g.get(LOCALPEER) or socket.gethostname())


def _peers_list(ctx: Ctx) -> list[PeersCfg]:
    out: list[PeersCfg] = ctx.state.global_.fields.setdefault(PEERS, [])
    return out


def _update_peers(ctx: Ctx, **changes: Any) -> PeersCfg:
    lst = _peers_list(ctx)
    lst[-1] = dataclasses.replace(lst[-1], **changes)
    return lst[-1]


@SECTIONS.register("peers", "")
def _peers_section(ctx: Ctx, args: list[str]) -> None:
    sec = Section("peers", args[1] if len(args) > 1 else "", ctx.where)
    ctx.state.current = sec
    if len(args) < 2 or not args[1]:
        sec.skip = True
        raise ConfigError("missing name for peers section.")
    if len(args) > 2:
        sec.skip = True
        raise ConfigError(f"'peers' cannot handle unexpected argument '{args[2]}'.")
    bad = invalid_char(args[1])
    if bad is not None:
        sec.skip = True
        raise ConfigError(f"character '{bad}' is not permitted in 'peers' name '{args[1]}'.")
    lst = _peers_list(ctx)
    for other in lst:
        if other.name == args[1]:
            ctx.state.errors.append(
                f"Parsing [{ctx.where}]: peers section '{args[1]}' has the same name as another "
                f"peers section declared at {other.where}."
            )
    lst.append(PeersCfg(ctx.where, args[1]))
    sec.fields["peer_line"] = False
    sec.fields["bind_line"] = False


def _split_addr(text: str) -> tuple[str, int | None] | str:
    """ADDR[:PORT] -> (host, port), or an error text in HAProxy's words."""
    host, port_s = text, ""
    if text.startswith("["):
        end = text.find("]")
        host, port_s = text[1:end], text[end + 2 :] if end >= 0 else ""
    elif text.count(":") == 1:
        host, port_s = text.split(":")
    elif text.count(":") > 1 and not text.endswith("]"):
        host, _, port_s = text.rpartition(":")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            host, port_s = text, ""
    port: int | None = None
    if port_s:
        if not port_s.isdigit() or int(port_s) > 65535:
            return f"invalid port '{port_s}'"
        port = int(port_s)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            return f"invalid address: '{host}' in '{text}'"
    return host, port


@KEYWORDS.register("peer", "peers")
@KEYWORDS.register("server", "peers")
def _peer(ctx: Ctx, args: list[str]) -> None:
    sec = ctx.section
    is_peer = args[0] == "peer"
    if is_peer:
        if sec.fields.get("bind_line"):
            raise ConfigError('mixing "peer" and "bind" line is forbidden')
        sec.fields["peer_line"] = True
    name = args[1] if len(args) > 1 else ""
    if not name:
        return
    bad = invalid_char(name)
    if bad is not None:
        raise ConfigError(f"character '{bad}' is not permitted in peer name '{name}'.", "bracket")
    cur = _peers_list(ctx)[-1]
    me = local_peer_name(ctx.state)
    local = name == me
    if local and cur.local is not None:
        raise ConfigError(
            f"'{args[0]} {name}' : local peer name already referenced at "
            f"{cur.local.where}. {cur.local.name}"
        )
    prefix = me if (local or cur.local is not None) else "(null)"
    host: str | None = None
    port: int | None = None
    if len(args) > 2 and (is_peer or not local):
        r = _split_addr(args[2])
        if isinstance(r, str):
            raise ConfigError(f"'server {prefix}/{name}' : {r}", "bracket")
        host, port = r
    if len(args) > 3:
        raise ConfigError(f"'server {prefix}/{name}' : unknown keyword '{args[3]}'.", "bracket")
    _update_peers(ctx, peers=(*cur.peers, PeerCfg(ctx.where, name, host, port, local, not is_peer)))


@KEYWORDS.register("bind", "peers")
def _peers_bind(ctx: Ctx, args: list[str]) -> None:
    if ctx.section.fields.get("peer_line"):
        raise ConfigError('mixing "peer" and "bind" line is forbidden')
    ctx.section.fields["bind_line"] = True
    cur = _peers_list(ctx)[-1]
    if cur.bind is not None:
        raise ConfigError(
            f'One listener per "peers" section is authorized but another is '
            f"already configured at [{cur.where}]."
        )
    _update_peers(ctx, bind=args[1] if len(args) > 1 else "")


@KEYWORDS.register("table", "peers")
def _peers_table(ctx: Ctx, args: list[str]) -> None:
    cur = _peers_list(ctx)[-1]
    seen = _seen(ctx)
    arg1 = args[1] if len(args) > 1 else ""
    other = seen.get(arg1)
    if other is not None:
        raise ConfigError(
            f"stick-table name '{arg1}' conflicts with table declared in "
            f"{other[0]} '{other[1]}' at {other[2]}."
        )
    full = f"{cur.name}/{arg1}"
    cfg = parse_stick_table(args, 2, full, "table", cur.name, ctx)
    _declared(ctx, full, "peers", cur.name)
    _update_peers(ctx, tables=(*cur.tables, cfg))


@KEYWORDS.register("disabled", "peers")
def _peers_disabled(ctx: Ctx, args: list[str]) -> None:
    _update_peers(ctx, disabled=True)


@KEYWORDS.register("enabled", "peers")
def _peers_enabled(ctx: Ctx, args: list[str]) -> None:
    _update_peers(ctx, disabled=False)


def _ignored_in_peers(ctx: Ctx, args: list[str]) -> None:
    ctx.warn(f"'{args[0]}' in a 'peers' section is not supported by nsproxy; ignored.")


for _kw in ("default-bind", "default-server", "log"):
    KEYWORDS.register(_kw, "peers")(_ignored_in_peers)


# -- whole-configuration checks ------------------------------------------------------------------
@post_check
def _stick_references(state: Any, config: Any) -> None:
    if state.errors:
        return
    seen: dict[str, Any] = state.global_.fields.get(TABLES_SEEN, {})
    peers = {p.name: p for p in state.global_.fields.get(PEERS, [])}
    for sec in state.proxies:
        for rule in sec.fields.get("stick_rules", ()):
            target = rule.table if rule.table is not None else sec.name
            if target not in seen:
                what = "store table" if rule.on_response else "stick-table"
                state.errors.append(f"Proxy '{sec.name}': unable to find {what} '{target}'.")
        table = sec.fields.get("stick_table")
        if table is not None and table.peers is not None:
            p = peers.get(table.peers)
            if p is None:
                state.errors.append(
                    f"Proxy '{sec.name}': unable to find sync peers '{table.peers}'."
                )
            elif not p.disabled and not p.peers and not p.tables and p.bind is None:
                state.errors.append(
                    f"Proxy '{sec.name}': unable to find local peer '{local_peer_name(state)}' "
                    f"in peers section '{p.name}'."
                )
    refs = state.global_.fields.get("pattern_refs")
    for file, line, name, pos, kw, proxy in getattr(refs, "table_uses", ()):
        if name in seen:
            continue
        if pos < 0:  # track-sc*
            state.errors.append(
                f"Proxy '{proxy}': unable to find table '{name}' referenced by {kw}."
            )
        else:
            state.errors.append(
                f"parsing [{file}:{line}]: unable to find table '{name}' referenced in arg "
                f"{pos + 1} of ACL keyword '{kw}' in proxy '{proxy}'."
            )
    for p in peers.values():
        if not p.disabled and p.local is None:
            state.warnings.append(
                f"config : Removing incomplete section 'peers {p.name}' "
                f"(no peer named '{local_peer_name(state)}')."
            )


def effective_tables(state: Any) -> list[StickTableCfg]:
    """Every table in declaration order, with server_id and server_key added to those a
    `stick` rule uses (as HAProxy 2.6 does when it checks the configuration)."""
    by_name: dict[str, StickTableCfg] = {}
    for sec in state.proxies:
        t = sec.fields.get("stick_table")
        if t is not None:
            by_name[t.name] = t
    for p in state.global_.fields.get(PEERS, []):
        for t in p.tables:
            by_name[t.name] = t
    used: set[str] = set()
    for sec in state.proxies:
        for rule in sec.fields.get("stick_rules", ()):
            used.add(rule.table if rule.table is not None else sec.name)
    tables: list[StickTableCfg] = []
    for name in state.global_.fields.get(TABLES_SEEN, {}):
        t = by_name.get(name)
        if t is None:
            continue
        if name in used:
            names = {n for n, _ in t.store}
            extra = tuple((n, None) for n in ("server_id", "server_key") if n not in names)
            t = dataclasses.replace(t, store=t.store + extra)
        tables.append(t)
    return tables
