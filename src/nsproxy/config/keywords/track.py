"""The stick-counter actions of `tcp-request` and `http-request` rules, compiled:
`track-sc0|1|2 KEY [table T]`, `sc-inc-gpc0(N)`, `sc-inc-gpc1(N)`, `sc-set-gpt0(N) VALUE`.

Each parser reads the action's words and returns a callable run on the stream (through the
`Txn.sticks` tracking slots) and the index of the first word after the action. Tables are
named here and found by name at run time; the names are recorded with the fetches' table
arguments (`CompileEnv.refs.table_uses`, argument position -1) so that the configuration
check (config/keywords/stick.py) reports a table nobody declares, as HAProxy does.
"""

from __future__ import annotations

from collections.abc import Callable

from nsproxy.config.registry import ConfigError
from nsproxy.sample import CompileEnv, Hook, SampleError
from nsproxy.sample.context import Txn
from nsproxy.sample.expr import parse_expr, unavailable
from nsproxy.sample.stick_fetch import sample_key
from nsproxy.sample.types import Missing, SmpType, read_int64
from nsproxy.stick.track import SLOTS

StickAct = Callable[[Txn], None]


def is_track(action: str) -> bool:
    return action.startswith("track-sc") and action[8:].isdigit()


def parse_track(
    action: str, args: list[str], i: int, env: CompileEnv, hook: Hook, http: bool
) -> tuple[StickAct, int]:
    """`track-scN KEY [table T]` from args[i]; `http`: an `http-request` rule, which counts
    the request it starts tracking. Raises ConfigError with HAProxy's text (no prefix)."""
    idx = int(action[8:])
    if idx >= SLOTS:
        raise ConfigError(f"{idx} track-sc number exceeding {SLOTS - 1} (MAX_SESS_STKCTR-1) value")
    text = args[i] if i < len(args) else ""
    if not text or text in ("if", "unless"):
        raise ConfigError("missing fetch method")
    try:
        expr, _ = parse_expr(text, env)
    except SampleError as e:
        raise ConfigError(str(e)) from None
    msg = unavailable(expr, hook)
    if msg is not None:
        raise ConfigError(msg)
    i += 1
    proxy = env.proxy or ""
    table = proxy
    if i < len(args) and args[i] == "table":
        table = args[i + 1] if i + 1 < len(args) and args[i + 1] else table
        i += 2
    env.refs.table_uses.append((env.file, env.line, table, -1, action, proxy))
    get = expr.get
    content = hook is not Hook.FE_CON_ACC

    def track(txn: Txn) -> None:
        sticks = txn.sticks
        if sticks is None or sticks.slots[idx] is not None:
            return
        t = sticks.tables.get(table)
        smp = get(txn)
        if t is None or smp is None or isinstance(smp, Missing):
            return
        key = sample_key(t, smp)
        if key is None:
            return
        sticks.track(idx, t, key, content, http)

    return track, i


def _sc_id(action: str) -> int:
    rest = action.partition("(")[2]
    if not rest:
        return 0
    word = rest[:-1] if rest.endswith(")") else rest
    n, used = read_int64(word)
    if not word or used != len(word) or not rest.endswith(")"):
        raise ConfigError(f"invalid stick table track ID. Expects {action}(<Track ID>)")
    if not 0 <= n < SLOTS:
        raise ConfigError(f"invalid stick table track ID. The max allowed ID is {SLOTS - 1}")
    return n


def parse_sc_action(
    action: str, args: list[str], i: int, env: CompileEnv, hook: Hook
) -> tuple[StickAct, int]:
    """`sc-inc-gpc0(N)`, `sc-inc-gpc1(N)`, `sc-set-gpt0(N) VALUE` from args[i]."""
    base = action.split("(", 1)[0]
    idx = _sc_id(action)
    if base in ("sc-inc-gpc0", "sc-inc-gpc1"):
        first = base == "sc-inc-gpc0"

        def inc(txn: Txn) -> None:
            sticks = txn.sticks
            if sticks is None:
                return
            t = sticks.slots[idx]
            if t is None:
                return
            table = t.table
            if first and (table.stores("gpc0") or table.stores("gpc0_rate")):
                table.inc_gpc0(t.entry, sticks.now())
            elif not first and (table.stores("gpc1") or table.stores("gpc1_rate")):
                table.inc_gpc1(t.entry, sticks.now())

        return inc, i
    text = args[i] if i < len(args) else ""
    value, used = read_int64(text)
    const: int | None = value if text and used == len(text) else None
    getter = None
    if const is None:
        if not text or text in ("if", "unless"):
            raise ConfigError("expects an integer or an expression")
        try:
            expr, _ = parse_expr(text, env)
        except SampleError as e:
            raise ConfigError(str(e)) from None
        msg = unavailable(expr, hook)
        if msg is not None:
            raise ConfigError(msg)
        getter = expr.get

    def set_gpt0(txn: Txn) -> None:
        sticks = txn.sticks
        if sticks is None:
            return
        t = sticks.slots[idx]
        if t is None:
            return
        v = const
        if getter is not None:
            smp = getter(txn)
            if smp is None or isinstance(smp, Missing):
                return
            if smp.type is not SmpType.SINT and smp.type is not SmpType.BOOL:
                return
            v = int(smp.value)
        assert v is not None
        t.table.set_gpt0(t.entry, v, sticks.now())

    return set_gpt0, i + 1


def is_sc_action(action: str) -> bool:
    return action.split("(", 1)[0] in ("sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0")
