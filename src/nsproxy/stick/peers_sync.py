"""Between a stick table and the peers codec: announce a table, encode and apply entry updates."""

from __future__ import annotations

from nsproxy.stick.peers_proto import FreqValue, TableDef, Update, Value
from nsproxy.stick.table import Entry, StickTable
from nsproxy.stick.types import DICT, FRQP

U32 = 0xFFFFFFFF


def table_def(t: StickTable, table_id: int, name: str | None = None) -> TableDef:
    """The definition message HAProxy would send for `t` (`name`: the shared name, which
    for a table declared in a peers section is "<peers>/<table>")."""
    return TableDef(
        table_id,
        name or t.name,
        t.key_type,
        t.key_size,
        tuple(dt.num for dt in t.stored),
        tuple(sorted(t.periods.items())),
        t.expire_ms,
    )


def entry_update(
    t: StickTable, ts: Entry, now_ms: int, update_id: int | None, timed: bool | None = None
) -> Update:
    """An update carrying `ts` as it is at `now_ms` (timed when the table expires, as 2.6)."""
    vals: list[Value] = []
    for dt in t.stored:
        at = t.offsets[dt.num]
        if dt.std == FRQP:
            tick, curr, prev = ts.data[at], ts.data[at + 1], ts.data[at + 2]
            assert isinstance(tick, int) and isinstance(curr, int) and isinstance(prev, int)
            vals.append(FreqValue((now_ms - tick) & U32, curr, prev))
        else:
            vals.append(ts.data[at])
    if timed is None:
        timed = bool(t.expire_ms)
    exp = max(ts.expire - now_ms, 0) if timed else None
    return Update(update_id, exp, ts.key, tuple(vals))


def apply_update(t: StickTable, td: TableDef, u: Update, now_ms: int) -> Entry | None:
    """peer_treat_updatemsg(): stores what a peer taught (local-only types such as conn_cur
    are skipped, types this table does not store are ignored); None if no room."""
    key = t.make_key(u.key) if not isinstance(u.key, int) else u.key & U32
    # HAProxy allocates before looking the key up: a full table evicts (or, nopurge,
    # ignores the update) even when the key is already there
    if t.current >= t.size and (t.nopurge or not t.trash_oldest((t.size >> 8) + 1)):
        return None
    ts = t.lookup(key)
    if ts is None:
        ts = t.new_entry(key, now_ms)
        if ts is None:
            return None
    ts.ref_cnt += 1
    mine = {dt.num: dt for dt in t.stored}
    for num, v in zip(sorted(td.data_types), u.values, strict=True):
        dt = mine.get(num)
        if dt is None or dt.local:
            continue
        at = t.offsets[num]
        if dt.std == FRQP:
            assert isinstance(v, FreqValue)
            ts.data[at] = (now_ms - v.elapsed) & ~1 & U32
            ts.data[at + 1] = v.curr
            ts.data[at + 2] = v.prev
        elif dt.std == DICT:
            if isinstance(v, str):
                ts.data[at] = v
        elif isinstance(v, int):
            ts.data[at] = v
    expire = now_ms + (u.expire if u.expire is not None else t.expire_ms)
    t.touch_remote(ts, expire, decref=True)
    return ts
