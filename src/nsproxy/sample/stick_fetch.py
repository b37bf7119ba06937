"""Stick-table fetches: `sc_*`/`sc0_*`..`sc2_*` (tracked entries), `src_*` (the client's
address looked up in a table) and `table_*`, with HAProxy 2.6's arguments and answers.

They read the stream's `sticks` (nsproxy.stick.track.StreamSticks): the tracking slots and
the process's tables by name. Table arguments are names resolved at run time through it;
`src_*` and `table_*` default to the proxy being parsed, and every name used is recorded in
`CompileEnv.refs.table_uses` so the configuration check can report unknown tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address

from nsproxy.sample.args import ArgSpec, ArgType, ArgValue
from nsproxy.sample.context import Txn
from nsproxy.sample.fetch import FetchDef, addr_sample, register_fetch
from nsproxy.sample.patref import CompileEnv
from nsproxy.sample.places import Use
from nsproxy.sample.types import FetchResult, Sample, SmpType
from nsproxy.stick.table import U32, Entry, Key, StickTable

TableUse = tuple[str, int, str, int, str, str]  # file, line, table, arg position, kw, proxy


def sample_key(table: StickTable, smp: Sample) -> Key | None:
    """A sample as a key of `table` (HAProxy's smp_to_stkey()); None when it cannot be one."""
    t = table.key_type
    v = smp.value
    st = smp.type
    try:
        if t == "ip":
            if isinstance(v, IPv4Address):
                return int(v)
            if isinstance(v, IPv6Address):
                mapped = v.ipv4_mapped
                return None if mapped is None else int(mapped)
            if st is SmpType.STR:
                return int(IPv4Address(str(v)))
            if isinstance(v, int):
                return v & U32
            return None
        if t == "ipv6":
            if isinstance(v, IPv6Address):
                return v.packed
            if isinstance(v, IPv4Address):
                return IPv6Address(b"\0" * 10 + b"\xff\xff" + v.packed).packed
            if st is SmpType.STR:
                a = ip_address(str(v))
                return table.make_key(
                    a.packed if a.version == 6 else b"\0" * 10 + b"\xff\xff" + a.packed
                )
            return None
        if t == "integer":
            if isinstance(v, IPv4Address):
                return int(v)
            if isinstance(v, int):
                return v & U32
            if st is SmpType.STR and str(v).lstrip("-").isdigit():
                return int(str(v)) & U32
            return None
        if isinstance(v, bytes):
            return table.make_key(v)
        if isinstance(v, bool):
            v = int(v)
        return table.make_key(str(v).encode("latin-1", "replace"))
    except ValueError:
        return None


# -- finding the entry a fetch reads -------------------------------------------------------------
Found = tuple[StickTable, Entry | None]


def _tracked(txn: Txn, num: int, alt: str | None) -> Found | None:
    """smp_fetch_sc_stkctr() for sc_*/scN_*: the tracked entry, or the same key in `alt`."""
    sticks = txn.sticks
    if sticks is None:
        return None
    t = sticks.tracker(num)
    if t is None:
        return None
    if alt:
        table = sticks.tables.get(alt)
        if table is None:
            return None
        return table, table.lookup(t.entry.key)
    return t.table, t.entry


def _src(txn: Txn, name: str, create: bool = False) -> Found | None:
    """src_*: the client's address looked up in table `name` (created with `create`)."""
    sticks = txn.sticks
    if sticks is None:
        return None
    table = sticks.tables.get(name)
    smp = addr_sample(txn.src)
    if table is None or smp is None:
        return None
    key = sample_key(table, smp)
    if key is None:
        return None
    if create:
        ts = table.get_entry(key, sticks.now())
        if ts is not None:
            table.release(ts)
        return table, ts
    return table, table.lookup(key)


Locate = Callable[[Txn, Sequence[ArgValue]], Found | None]


def _loc_sc(txn: Txn, args: Sequence[ArgValue]) -> Found | None:
    return _tracked(txn, int(args[0]), str(args[1]) if len(args) > 1 else None)


def _loc_scn(num: int) -> Locate:
    def loc(txn: Txn, args: Sequence[ArgValue]) -> Found | None:
        return _tracked(txn, num, str(args[0]) if args else None)

    return loc


def _loc_src(txn: Txn, args: Sequence[ArgValue]) -> Found | None:
    return _src(txn, str(args[0]))


def _loc_src_create(txn: Txn, args: Sequence[ArgValue]) -> Found | None:
    return _src(txn, str(args[0]), create=True)


def _now(txn: Txn) -> int:
    sticks = txn.sticks
    assert sticks is not None
    return sticks.now()


# -- what a fetch does with the entry ------------------------------------------------------------
Op = Callable[[Txn, StickTable, Entry], int | None]  # None: the table does not store it


def _read(name: str, shift: int = 0) -> Op:
    def op(txn: Txn, table: StickTable, ts: Entry) -> int | None:
        v = table.get(ts, name, _now(txn))
        return None if v is None else int(v) >> shift

    return op


def _inc(which: int) -> Op:
    cnt, rate = ("gpc0", "gpc0_rate") if which == 0 else ("gpc1", "gpc1_rate")

    def op(txn: Txn, table: StickTable, ts: Entry) -> int | None:
        if not (table.stores(cnt) or table.stores(rate)):
            return 0
        now = _now(txn)
        return table.inc_gpc0(ts, now) if which == 0 else table.inc_gpc1(ts, now)

    return op


def _clr(which: int) -> Op:
    cnt = "gpc0" if which == 0 else "gpc1"

    def op(txn: Txn, table: StickTable, ts: Entry) -> int | None:
        now = _now(txn)
        old = table.get(ts, cnt, now)
        if old is None:
            return None
        table.set(ts, cnt, 0, now)
        table.touch_local(ts, now)
        return int(old)

    return op


def _trackers(txn: Txn, table: StickTable, ts: Entry) -> int | None:
    return ts.ref_cnt


def _updt_conn_cnt(txn: Txn, table: StickTable, ts: Entry) -> int | None:
    now = _now(txn)
    v = table.get(ts, "conn_cnt", now)
    if v is None:
        return None
    v = (int(v) + 1) & U32
    table.set(ts, "conn_cnt", v, now)
    table.touch_local(ts, now)
    return v


_OPS: dict[str, Op] = {
    "bytes_in_rate": _read("bytes_in_rate"),
    "bytes_out_rate": _read("bytes_out_rate"),
    "clr_gpc0": _clr(0),
    "clr_gpc1": _clr(1),
    "conn_cnt": _read("conn_cnt"),
    "conn_cur": _read("conn_cur"),
    "conn_rate": _read("conn_rate"),
    "get_gpt0": _read("gpt0"),
    "get_gpc0": _read("gpc0"),
    "get_gpc1": _read("gpc1"),
    "gpc0_rate": _read("gpc0_rate"),
    "gpc1_rate": _read("gpc1_rate"),
    "http_err_cnt": _read("http_err_cnt"),
    "http_err_rate": _read("http_err_rate"),
    "http_fail_cnt": _read("http_fail_cnt"),
    "http_fail_rate": _read("http_fail_rate"),
    "http_req_cnt": _read("http_req_cnt"),
    "http_req_rate": _read("http_req_rate"),
    "inc_gpc0": _inc(0),
    "inc_gpc1": _inc(1),
    "kbytes_in": _read("bytes_in_cnt", 10),
    "kbytes_out": _read("bytes_out_cnt", 10),
    "sess_cnt": _read("sess_cnt"),
    "sess_rate": _read("sess_rate"),
    "trackers": _trackers,
}
# src_* that create the client's entry when it is missing (HAProxy's smp_create_src_stkctr)
_CREATING = frozenset({"clr_gpc0", "clr_gpc1", "inc_gpc0", "inc_gpc1", "updt_conn_cnt"})
# Use.L4CLI for the byte counters of sc_*, as HAProxy 2.6 declares them
_L4CLI_SC = frozenset({"kbytes_in", "kbytes_out"})


def _counter_fetch(locate: Locate, op: Op) -> Callable[[Txn, Sequence[ArgValue]], FetchResult]:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        found = locate(txn, args)
        if found is None:
            return None
        table, ts = found
        if ts is None:
            return Sample(SmpType.SINT, 0)
        v = op(txn, table, ts)
        return None if v is None else Sample(SmpType.SINT, v)

    return fetch


def _tracked_fetch(locate: Locate) -> Callable[[Txn, Sequence[ArgValue]], FetchResult]:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        return Sample(SmpType.BOOL, locate(txn, args) is not None)

    return fetch


def _table_fetch(
    read: Callable[[StickTable], int],
) -> Callable[[Txn, Sequence[ArgValue]], FetchResult]:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        sticks = txn.sticks
        table = sticks.tables.get(str(args[0])) if sticks is not None else None
        return None if table is None else Sample(SmpType.SINT, read(table))

    return fetch


def _record(kw: str, pos: int) -> Callable[[list[ArgValue], CompileEnv], list[ArgValue]]:
    """Fills an empty table argument with the proxy being parsed and records the use."""

    def prepare(args: list[ArgValue], env: CompileEnv) -> list[ArgValue]:
        if len(args) > pos:
            if args[pos] == "" and env.proxy:
                args[pos] = env.proxy
            use: TableUse = (env.file, env.line, str(args[pos]), pos, kw, env.proxy or "")
            env.refs.table_uses.append(use)
        return args

    return prepare


_SINT, _TAB = ArgType.SINT, ArgType.TAB
_SC_ARGS = ArgSpec((_SINT, _TAB), 1)
_OPT_TAB = ArgSpec((_TAB,), 0)
_TAB1 = ArgSpec((_TAB,), 1)


def _defs() -> list[FetchDef]:
    defs: list[FetchDef] = []
    for name, op in _OPS.items():
        use = Use.L4CLI if name in _L4CLI_SC else Use.INTRN
        kw = f"sc_{name}"
        defs.append(
            FetchDef(
                kw,
                _counter_fetch(_loc_sc, op),
                SmpType.SINT,
                use,
                _SC_ARGS,
                prepare=_record(kw, 1),
            )
        )
        for n in range(3):
            kw = f"sc{n}_{name}"
            defs.append(
                FetchDef(
                    kw,
                    _counter_fetch(_loc_scn(n), op),
                    SmpType.SINT,
                    use,
                    _OPT_TAB,
                    prepare=_record(kw, 0),
                )
            )
        if name != "trackers":
            kw = f"src_{name}"
            locate = _loc_src_create if name in _CREATING else _loc_src
            defs.append(
                FetchDef(
                    kw,
                    _counter_fetch(locate, op),
                    SmpType.SINT,
                    Use.L4CLI,
                    _TAB1,
                    prepare=_record(kw, 0),
                )
            )
    defs.append(
        FetchDef(
            "src_updt_conn_cnt",
            _counter_fetch(_loc_src_create, _updt_conn_cnt),
            SmpType.SINT,
            Use.L4CLI,
            _TAB1,
            prepare=_record("src_updt_conn_cnt", 0),
        )
    )
    defs.append(
        FetchDef(
            "sc_tracked",
            _tracked_fetch(_loc_sc),
            SmpType.BOOL,
            Use.INTRN,
            _SC_ARGS,
            prepare=_record("sc_tracked", 1),
        )
    )
    for n in range(3):
        kw = f"sc{n}_tracked"
        defs.append(
            FetchDef(
                kw,
                _tracked_fetch(_loc_scn(n)),
                SmpType.BOOL,
                Use.INTRN,
                _OPT_TAB,
                prepare=_record(kw, 0),
            )
        )
    defs.append(
        FetchDef(
            "table_avl",
            _table_fetch(lambda t: max(t.size - t.current, 0)),
            SmpType.SINT,
            Use.INTRN,
            _TAB1,
            prepare=_record("table_avl", 0),
        )
    )
    defs.append(
        FetchDef(
            "table_cnt",
            _table_fetch(lambda t: t.current),
            SmpType.SINT,
            Use.INTRN,
            _TAB1,
            prepare=_record("table_cnt", 0),
        )
    )
    return defs


register_fetch(*_defs())

__all__ = ["TableUse", "sample_key"]
