"""`show table`, `clear table` and `set table` as HAProxy 2.6 answers them: pure text functions."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from nsproxy.stick.table import Entry, Key, StickTable
from nsproxy.stick.types import DICT, FRQP, data_type

# (words, usage, help) of the three commands, as HAProxy 2.6's `help` lists them
COMMANDS = (
    (
        ("clear", "table"),
        "clear table <table> [<filter>]*",
        "remove an entry from a table (filter: data/key)",
    ),
    (
        ("set", "table"),
        "set table <table> key <k> [data.* <v>]*",
        "update or create a table entry's data",
    ),
    (
        ("show", "table"),
        "show table <table> [<filter>]*",
        "report table usage stats or dump this table's contents (filter: data/key)",
    ),
)
FILTER_LEN = 4
OPS = ("eq", "ne", "le", "ge", "lt", "gt")
PERMISSION_DENIED = "Permission denied\n"
_EXPECT_DATA = '"data.<type>" followed by a value expected\n'
_ERR_ARGS = {
    "show": 'Optional argument only supports "data.<store_data_type>" <operator> <value> '
    "and key <key>\n",
    "clear": 'Required arguments: <table> "data.<store_data_type>" <operator> <value> '
    "or <table> key <key>\n",
    "set": "Required arguments: <table> key <key> [data.<store_data_type> <value>]*\n",
}
_NO_BIN = {
    "show": "Showing keys from tables of type other than ip, ipv6, string and integer "
    "is not supported\n",
    "clear": "Removing keys from tables of type other than ip, ipv6, string and integer "
    "is not supported\n",
    "set": "Inserting keys into tables of type other than ip, ipv6, string and integer "
    "is not supported\n",
}


def inetaddr_host(text: str) -> int:
    """HAProxy's inetaddr_host(): dotted digits to a host-order u32, with its quirks
    (`10.1` is 10.1.0.0, a group keeps its last three digits and carries: 300.1.1.1 is
    44.1.1.1, anything else stops the parse)."""
    zero = 0x30303030
    d1 = d10 = d100 = zero
    s = 24
    t = text.encode("latin-1", "replace") + b"\0"
    p = start = 0
    while True:
        while 0x30 <= t[p] <= 0x39:
            p += 1
        if p != start:
            d = p - 1
            d1 |= t[d] << s
            if d != start:
                d -= 1
                d10 |= t[d] << s
                if d != start:
                    d -= 1
                    d100 |= t[d] << s
        if not s or t[p] != 0x2E:
            break
        s -= 8
        p += 1
        start = p
    m = 0xFFFFFFFF
    return ((((d100 - zero) & m) * 10 + ((d10 - zero) & m)) * 10 + ((d1 - zero) & m)) & m


def strl2llrc(s: str) -> int | None:
    """HAProxy's strl2llrc(): a signed 64-bit integer or None (it lets characters below '0'
    through as negative digits, like HAProxy)."""
    if not s:
        return None
    i = 0
    lo, hi = -(1 << 63), (1 << 63) - 1
    if s[0] != "-":
        for ch in s:
            j = ord(ch) - 48
            if j > 9 or i > hi // 10:
                return None
            i *= 10
            if i + j > hi:
                return None
            i += j
    else:
        for ch in s[1:]:
            j = ord(ch) - 48
            if j > 9 or i < -(-lo // 10):
                return None
            i *= 10
            if i - j < lo:
                return None
            i -= j
    return i


def _strtoul(s: str) -> int | None:
    p = 0
    while p < len(s) and s[p] in " \t\n\v\f\r":
        p += 1
    neg = False
    if p < len(s) and s[p] in "+-":
        neg = s[p] == "-"
        p += 1
    q = p
    while q < len(s) and s[q].isdigit() and s[q].isascii():
        q += 1
    if q == p:
        return None
    v = int(s[p:q])
    if v > 0xFFFFFFFFFFFFFFFF:
        return None
    if neg:
        v = (-v) & 0xFFFFFFFFFFFFFFFF
    return v if v <= 0xFFFFFFFF else None


def parse_cli_key(t: StickTable, text: str, action: str) -> Key | str:
    """The key of a `key K` argument, or the error message HAProxy answers."""
    if t.key_type == "ip":
        return inetaddr_host(text)
    if t.key_type == "ipv6":
        try:
            return socket.inet_pton(socket.AF_INET6, text)
        except OSError:
            return "Invalid key\n"
    if t.key_type == "integer":
        v = _strtoul(text)
        return "Invalid key\n" if v is None else v
    if t.key_type == "string":
        return t.make_key(text.encode())
    return _NO_BIN[action]


def _dump_text(b: bytes) -> str:
    out = []
    esc = {0x09: "t", 0x0A: "n", 0x0D: "r", 0x1B: "e", 0x5C: "\\", 0x20: " ", 0x3D: "="}
    for c in b:
        if c == 0:
            break
        if c in esc:
            out.append("\\" + esc[c])
        elif 0x20 < c < 0x7F:
            out.append(chr(c))
        else:
            out.append(f"\\x{c:02X}")
    return "".join(out)


def format_key(t: StickTable, key: Key) -> str:
    if t.key_type == "ip":
        assert isinstance(key, int)
        return str(ipaddress.IPv4Address(key))
    if t.key_type == "integer":
        return str(key)
    assert isinstance(key, bytes)
    if t.key_type == "ipv6":
        return socket.inet_ntop(socket.AF_INET6, key)
    if t.key_type == "string":
        return _dump_text(key)
    return key.hex().upper()


def head_line(t: StickTable) -> str:
    return f"# table: {t.name}, type: {t.key_type}, size:{t.size}, used:{t.current}\n"


def entry_line(t: StickTable, ts: Entry, now_ms: int) -> str:
    """One `show table` entry line; `use` counts the users other than the dump itself."""
    parts = [
        f"{id(ts):#x}: key={format_key(t, ts.key)} use={ts.ref_cnt} "
        f"exp={max(ts.expire - now_ms, 0) if t.expire_ms else 0}"
    ]
    for dt in t.stored:
        if dt.std == FRQP:
            parts.append(f" {dt.name}({t.periods[dt.num]})={t.get(ts, dt.name, now_ms)}")
        elif dt.std == DICT:
            v = ts.data[t.offsets[dt.num]]
            parts.append(f" {dt.name}={v if v is not None else '-'}")
        else:
            parts.append(f" {dt.name}={ts.data[t.offsets[dt.num]]}")
    return "".join(parts) + "\n"


def _find(tables: Sequence[StickTable], name: str) -> StickTable | None:
    return next((t for t in tables if t.name == name), None)


def _filter_value(t: StickTable, ts: Entry, num: int, now_ms: int) -> int:
    dt = next(d for d in t.stored if d.num == num)
    if dt.std == DICT:
        return 0
    v = t.get(ts, dt.name, now_ms)
    assert isinstance(v, int)
    return v


def _skip(data: int, op: str, value: int) -> bool:
    return (
        (data < value and op in ("eq", "gt", "ge"))
        or (data == value and op in ("ne", "gt", "lt"))
        or (data > value and op in ("eq", "lt", "le"))
    )


def table_command(
    action: str,
    args: Sequence[str],
    tables: Sequence[StickTable],
    now_ms: int,
    oper: bool = True,
) -> str:
    """Runs `<action> table <args...>` (action: show, clear or set) over `tables` listed in
    configuration order; returns exactly what HAProxy 2.6 writes back (without the CLI's
    final empty line). `oper`: the session is at least at operator level."""
    a = [*args, "", "", ""]
    if not a[0]:
        if action != "show":
            return _ERR_ARGS[action]
        return "".join(head_line(t) for t in reversed(tables))
    t = _find(tables, a[0])
    if t is None:
        return "No such table\n"
    if a[1] == "key":
        return _per_key(action, t, a, now_ms, oper)
    filters: list[tuple[int, str, int]] = []
    if a[1].startswith("data."):
        if action not in ("show", "clear"):
            return 'content-based lookup is only supported with the "show" and "clear" actions\n'
        i = 0
        while i < FILTER_LEN:
            w = a[1 + 3 * i] if 1 + 3 * i < len(a) else ""
            if i > 0 and not w:
                break
            dt = data_type(w[5:])
            if dt is None:
                return f"Filter entry #{i + 1}: Unknown data type\n"
            if dt.num not in t.offsets:
                return f"Filter entry #{i + 1}: Data type not stored in this table\n"
            op = a[2 + 3 * i] if 2 + 3 * i < len(a) else ""
            if op not in OPS:
                return (
                    f'Filter entry #{i + 1}: Require and operator among "eq", "ne", "le", '
                    '"ge", "lt", "gt"\n'
                )
            vs = a[3 + 3 * i] if 3 + 3 * i < len(a) else ""
            v = strl2llrc(vs) if vs else None
            if v is None:
                return f"Filter entry #{i + 1}: Require a valid integer value to compare against\n"
            filters.append((dt.num, op, v))
            i += 1
        nxt = 1 + 3 * i
        if nxt < len(a) and a[nxt]:
            return (
                f"Detected extra data in filter, {nxt + 3}th word of input, after '{a[nxt - 1]}'\n"
            )
    elif a[1]:
        return _ERR_ARGS[action]
    return _walk(action, t, filters, now_ms, oper)


def _walk(
    action: str, t: StickTable, filters: list[tuple[int, str, int]], now_ms: int, oper: bool
) -> str:
    show = action == "show"
    out = [head_line(t)] if show else []
    if not oper:
        if show:
            out.append("# contents not dumped due to insufficient privileges\n")
        return "".join(out)
    entries = sorted(t, key=lambda e: t.order_key(e.key))
    for i, ts in enumerate(entries):
        skip = any(_skip(_filter_value(t, ts, n, now_ms), op, v) for n, op, v in filters)
        if show:
            if not skip:
                out.append(entry_line(t, ts, now_ms))
            t.kill_if_expired(ts, now_ms)
        else:
            # HAProxy 2.6 checks the *next* entry's users before freeing this one
            following = entries[i + 1] if i + 1 < len(entries) else ts
            if not skip and not following.ref_cnt:
                t.kill(ts)
    return "".join(out)


def _per_key(action: str, t: StickTable, a: list[str], now_ms: int, oper: bool) -> str:
    if not a[2]:
        return "Key value expected\n"
    key = parse_cli_key(t, a[2], action)
    if isinstance(key, str):
        return key
    if not oper:
        return PERMISSION_DENIED
    if action == "show":
        ts = t.lookup(key)
        if ts is None:
            return ""
        return head_line(t) + entry_line(t, ts, now_ms)
    if action == "clear":
        ts = t.lookup(key)
        if ts is None:
            return ""
        if not t.kill(ts):
            return "Entry currently in use, cannot remove\n"
        return ""
    ts = t.get_entry(key, now_ms)
    if ts is None:
        return "Unable to allocate a new entry\n"
    err = ""
    i = 3
    while i < len(a) and a[i]:
        name = a[i]
        if not name.startswith("data."):
            err = _EXPECT_DATA
            break
        dt = data_type(name[5:])
        if dt is None:
            err = "Unknown data type\n"
            break
        if dt.num not in t.offsets:
            err = "Data type not stored in this table\n"
            break
        vs = a[i + 1] if i + 1 < len(a) else ""
        v = strl2llrc(vs) if vs else None
        if v is None:
            err = "Require a valid integer value to store\n"
            break
        if dt.std != DICT:
            t.set(ts, dt.name, v, now_ms)
        i += 2
    t.touch_local(ts, now_ms, decref=True)
    return err
