"""A stick table: keyed entries with HAProxy 2.6's data, eviction, expiry and reference counts.

Time is injected: every call that needs it takes `now_ms` (milliseconds of a monotonic clock,
a plain int). Entries keep their stored data inline in one list, in HAProxy's data-type order;
a freq counter takes three slots (see nsproxy.stick.freq).

Eviction follows HAProxy's expiry queue: entries sit in the queue under the expiry date they had
when queued; touching an entry only moves its date, and the queue is corrected lazily when the
entry is reached. A full table frees (size >> 8) + 1 entries from the head of that queue,
skipping entries in use (ref_cnt > 0), at most twice that many visits; `nopurge` refuses new
entries instead. Without `expire`, an entry's date is its last touch: least recently used first.

Memory, measured with tracemalloc for 1,000,000 `type ip` entries storing conn_cur and
conn_rate(10s): 370 bytes per entry, against 208 bytes of RSS growth per entry for HAProxy
2.6.12 with the same table (ratio 1.78); see docs/stick-tables.md.
"""

from __future__ import annotations

import bisect
import ipaddress
import struct
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from nsproxy.stick import freq
from nsproxy.stick.types import DICT, FRQP, KEY_TYPES, DataType, data_type

Key = int | bytes
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF


class Entry:
    """One entry (HAProxy's stksess): key, expiry date, users, queue date, update id, data."""

    __slots__ = ("data", "exp_key", "expire", "key", "ref_cnt", "upd")

    def __init__(self, key: Key, expire: int, data: list[int | str | None]) -> None:
        self.key = key
        self.expire = expire
        self.exp_key = expire
        self.ref_cnt = 0
        self.upd = 0
        self.data = data


class StickTable:
    """A table as `stick-table type T [len N] size S [expire E] [nopurge] [store ...]` declares.

    `store` lists (data type name, period in ms or None) as written in the configuration.
    `expire_ms` 0 means no expiry. `key_size` is HAProxy's: 4/16 for ip/integer/ipv6, 32 by
    default for string and binary, and N + 1 for `string len N` (room for the NUL).
    """

    def __init__(
        self,
        name: str,
        key_type: str,
        size: int,
        *,
        key_len: int | None = None,
        expire_ms: int = 0,
        nopurge: bool = False,
        store: Sequence[tuple[str, int | None]] = (),
        peers: str | None = None,
    ) -> None:
        if key_type not in KEY_TYPES:
            raise ValueError(f"unknown type '{key_type}'")
        default, custom = KEY_TYPES[key_type]
        self.name = name
        self.key_type = key_type
        self.key_size = default
        if key_len is not None and custom:
            self.key_size = key_len + 1 if key_type == "string" else key_len
        self.size = size
        self.expire_ms = expire_ms
        self.nopurge = nopurge
        self.peers = peers
        self.current = 0
        self.update = 0  # last local update id (HAProxy's t->update)
        self.periods: dict[int, int] = {}
        chosen: dict[int, DataType] = {}
        for dname, arg in store:
            dt = data_type(dname)
            if dt is None:
                raise ValueError(f"unknown store option '{dname}'")
            chosen[dt.num] = dt
            if dt.has_period:
                if arg is None:
                    raise ValueError(f"missing argument to store option '{dname}'")
                self.periods[dt.num] = arg
        self.stored: tuple[DataType, ...] = tuple(chosen[n] for n in sorted(chosen))
        self.offsets: dict[int, int] = {}
        width = 0
        for dt in self.stored:
            self.offsets[dt.num] = width
            width += dt.width
        self._template: list[int | str | None] = [
            None if dt.std == DICT else 0 for dt in self.stored for _ in range(dt.width)
        ]
        self._keys: dict[Key, Entry] = {}
        self._exps: deque[Entry] = deque()
        self._dead = 0  # freed entries still in _exps, dropped when reached or compacted
        self._updates: dict[Entry, None] | None = None  # local updates, oldest first
        self.on_update: Callable[[], None] | None = None  # told of local updates (peers)
        # offsets of the data the counter events touch, None when not stored
        o = self.offsets.get
        self._conn_cur, self._conn_cnt, self._conn_rate = o(6), o(4), o(5)
        self._sess_cnt, self._sess_rate = o(7), o(8)
        self._req_cnt, self._req_rate = o(9), o(10)
        self._err_cnt, self._err_rate = o(11), o(12)
        self._bin_cnt, self._bin_rate = o(13), o(14)
        self._bout_cnt, self._bout_rate = o(15), o(16)
        self._gpc0, self._gpc0_rate = o(2), o(3)
        self._gpc1, self._gpc1_rate = o(17), o(18)
        self._fail_cnt, self._fail_rate = o(20), o(21)

    # -- keys -----------------------------------------------------------------------------
    def make_key(self, value: int | str | bytes) -> Key:
        """Normalises a sample into this table's key: ip -> host-order u32 int, integer ->
        u32 int, ipv6 -> 16 bytes, string -> at most key_size - 1 bytes, binary -> bytes
        zero-padded (or cut) to key_size."""
        t = self.key_type
        if t == "ip":
            if isinstance(value, bytes):
                return int.from_bytes(value[:4], "big")
            if isinstance(value, str):
                return int(ipaddress.IPv4Address(value))
            return value & U32
        if t == "integer":
            if not isinstance(value, int):
                raise TypeError("integer table needs an int key")
            return value & U32
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, int):
            raise TypeError(f"{t} table needs a bytes key")
        if t == "ipv6":
            return bytes(value[:16]).ljust(16, b"\0")
        if t == "string":
            cut = value[: self.key_size - 1]
            nul = cut.find(b"\0")
            return cut if nul < 0 else cut[:nul]
        return bytes(value[: self.key_size]).ljust(self.key_size, b"\0")

    def order_key(self, key: Key) -> bytes | int:
        """The order HAProxy's key tree lists entries in (`show table`): memcmp of the stored
        key bytes, which for integer keys are little-endian."""
        if self.key_type == "integer":
            assert isinstance(key, int)
            return struct.pack("<I", key)
        return key

    # -- lookup, creation, references ---------------------------------------------------------
    def __len__(self) -> int:
        return self.current

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._keys.values()))

    def lookup(self, key: Key) -> Entry | None:
        """__stktable_lookup_key(): the entry or None; no reference taken, dates untouched."""
        return self._keys.get(key)

    def new_entry(self, key: Key, now_ms: int) -> Entry | None:
        """__stksess_new() + store: a fresh entry (evicting if full) or None if none fits."""
        if self.current >= self.size:
            if self.nopurge:
                return None
            if not self.trash_oldest((self.size >> 8) + 1):
                return None
        ts = Entry(key, now_ms + self.expire_ms, self._template.copy())
        self.current += 1
        self._keys[key] = ts
        self._queue(ts)
        return ts

    def get_entry(self, key: Key, now_ms: int) -> Entry | None:
        """stktable_get_entry(): existing or new entry with one more reference, or None."""
        ts = self._keys.get(key)
        if ts is None:
            ts = self.new_entry(key, now_ms)
            if ts is None:
                return None
        ts.ref_cnt += 1
        return ts

    def release(self, ts: Entry) -> None:
        """Drops one reference (stktable_release())."""
        ts.ref_cnt -= 1

    def touch_local(self, ts: Entry, now_ms: int, decref: bool = False) -> None:
        """stktable_touch_local(): new expiry date, new local update id (for peers)."""
        ts.expire = now_ms + self.expire_ms
        self.update = (self.update + 1) & U32
        ts.upd = self.update
        log = self._updates
        if log is not None:
            log.pop(ts, None)
            log[ts] = None
            if self.on_update is not None:
                self.on_update()
        if decref:
            ts.ref_cnt -= 1

    def keep_update_log(self) -> None:
        """Keeps local updates in order from now on (what peer sessions push from)."""
        if self._updates is None:
            self._updates = {}

    def touch_remote(self, ts: Entry, expire: int, decref: bool = False) -> None:
        """stktable_touch_remote(): an update learnt from a peer, with its expiry date."""
        ts.expire = expire
        if decref:
            ts.ref_cnt -= 1

    def kill(self, ts: Entry) -> bool:
        """__stksess_kill(): removes the entry unless in use; True if removed."""
        if ts.ref_cnt:
            return False
        if self._keys.get(ts.key) is ts:
            del self._keys[ts.key]
            self.current -= 1
            ts.exp_key = -1
            self._dead += 1
            if self._updates is not None:
                self._updates.pop(ts, None)
            if self._dead > 64 and self._dead * 2 > len(self._exps):
                self._compact()
        return True

    def _forget(self, ts: Entry) -> None:
        del self._keys[ts.key]
        self.current -= 1
        ts.exp_key = -1
        if self._updates is not None:
            self._updates.pop(ts, None)

    def queue_length(self) -> int:
        """Slots in the expiry queue, freed entries not yet dropped included."""
        return len(self._exps)

    def _compact(self) -> None:
        self._exps = deque(e for e in self._exps if e.exp_key >= 0)
        self._dead = 0

    def expired(self, ts: Entry, now_ms: int) -> bool:
        return bool(self.expire_ms) and ts.expire <= now_ms

    def kill_if_expired(self, ts: Entry, now_ms: int, decref: bool = False) -> bool:
        """stksess_kill_if_expired(): what ends a tracking or a `show table` visit."""
        if decref:
            ts.ref_cnt -= 1
        if self.expired(ts, now_ms):
            return self.kill(ts)
        return False

    # -- the expiry queue -------------------------------------------------------------------
    def _queue(self, ts: Entry) -> None:
        ts.exp_key = ts.expire
        q = self._exps
        if not q or q[-1].exp_key <= ts.exp_key:
            q.append(ts)
        else:  # a date earlier than the tail's (peer-learnt); rare, keep the queue sorted
            self._compact()
            q = self._exps
            keys = [e.exp_key for e in q]
            q.insert(bisect.bisect_right(keys, ts.exp_key), ts)

    def _head(self) -> Entry | None:
        q = self._exps
        while q and q[0].exp_key < 0:
            q.popleft()
            self._dead -= 1
        return q[0] if q else None

    def trash_oldest(self, to_batch: int) -> int:
        """__stktable_trash_oldest(): frees up to `to_batch` entries from the queue head."""
        max_search = to_batch * 2
        batched = 0
        held: list[Entry] = []
        q = self._exps
        while batched < to_batch:
            if self._head() is None:
                break
            max_search -= 1
            if max_search < 0:
                break
            ts = q.popleft()
            if ts.ref_cnt:
                held.append(ts)
                continue
            if ts.expire != ts.exp_key:
                self._queue(ts)
                q = self._exps
                continue
            self._forget(ts)
            batched += 1
        self._exps.extendleft(reversed(held))
        return batched

    def expire_entries(self, now_ms: int) -> int | None:
        """stktable_trash_expired(): frees what expired; returns the next date to call again
        (None: nothing queued). Tables without `expire` never expire."""
        if not self.expire_ms:
            return None
        held: list[Entry] = []
        q = self._exps
        nxt: int | None = None
        while True:
            ts = self._head()
            if ts is None:
                break
            if now_ms < ts.exp_key:
                nxt = ts.exp_key
                break
            q.popleft()
            if ts.ref_cnt:
                held.append(ts)
                continue
            if ts.expire > now_ms:
                self._queue(ts)
                q = self._exps
                continue
            self._forget(ts)
        self._exps.extendleft(reversed(held))
        return nxt

    # -- data -------------------------------------------------------------------------------
    def stores(self, name: str) -> bool:
        dt = data_type(name)
        return dt is not None and dt.num in self.offsets

    def get(self, ts: Entry, name: str, now_ms: int) -> int | str | None:
        """A stored value as `show table` and the sc_*/table_* fetches read it (rates per
        period); None when the table does not store it."""
        dt = data_type(name)
        if dt is None or dt.num not in self.offsets:
            return None
        at = self.offsets[dt.num]
        if dt.std == FRQP:
            return freq.read_period(ts.data, at, self.periods[dt.num], now_ms)  # type: ignore[arg-type]
        return ts.data[at]

    def set(self, ts: Entry, name: str, value: int | str | None, now_ms: int) -> None:
        """Stores a value the way `set table` does (C integer casts; rates become `value` in
        the current period). Does not touch the entry."""
        dt = data_type(name)
        if dt is None or dt.num not in self.offsets:
            raise KeyError(name)
        at = self.offsets[dt.num]
        if dt.std == FRQP:
            assert isinstance(value, int)
            freq.set_value(ts.data, at, value, now_ms)  # type: ignore[arg-type]
        elif dt.std == DICT:
            ts.data[at] = value
        else:
            assert isinstance(value, int)
            if dt.std == "sint":
                v = value & U32
                ts.data[at] = v - (1 << 32) if v & 0x80000000 else v
            else:
                ts.data[at] = value & (U64 if dt.std == "ull" else U32)

    def _add(
        self,
        ts: Entry,
        cnt: int | None,
        rate: int | None,
        rate_num: int,
        inc: int,
        now_ms: int,
        mask: int = U32,
    ) -> bool:
        d = ts.data
        if cnt is not None:
            d[cnt] = (d[cnt] + inc) & mask  # type: ignore[operator]
        if rate is not None:
            freq.update_period(d, rate, self.periods[rate_num], inc, now_ms)  # type: ignore[arg-type]
        return cnt is not None or rate is not None

    # -- counter events, as HAProxy's stream/session helpers apply them -------------------------
    def start_counters(self, ts: Entry, now_ms: int) -> None:
        """Tracking starts (track-sc*): conn_cur++, conn_cnt++, conn_rate +1, then touch."""
        d = ts.data
        if self._conn_cur is not None:
            d[self._conn_cur] = (d[self._conn_cur] + 1) & U32  # type: ignore[operator]
        self._add(ts, self._conn_cnt, self._conn_rate, 5, 1, now_ms)
        self.touch_local(ts, now_ms)

    def stop_counters(self, ts: Entry, now_ms: int) -> None:
        """Tracking ends (session_store_counters): conn_cur-- and touch if stored, then the
        tracker's reference is dropped and the entry freed if it expired meanwhile."""
        c = self._conn_cur
        if c is not None:
            if ts.data[c]:
                ts.data[c] -= 1  # type: ignore[operator]
            self.touch_local(ts, now_ms)
        self.kill_if_expired(ts, now_ms, decref=True)

    def inc_sess(self, ts: Entry, now_ms: int) -> None:
        """A tracked connection became a session: sess_cnt++, sess_rate +1."""
        if self._add(ts, self._sess_cnt, self._sess_rate, 8, 1, now_ms):
            self.touch_local(ts, now_ms)

    def inc_http_req(self, ts: Entry, now_ms: int) -> None:
        """A tracked HTTP request: http_req_cnt++, http_req_rate +1."""
        if self._add(ts, self._req_cnt, self._req_rate, 10, 1, now_ms):
            self.touch_local(ts, now_ms)

    def inc_http_err(self, ts: Entry, now_ms: int) -> None:
        """A tracked request answered 4xx: http_err_cnt++, http_err_rate +1."""
        if self._add(ts, self._err_cnt, self._err_rate, 12, 1, now_ms):
            self.touch_local(ts, now_ms)

    def inc_http_fail(self, ts: Entry, now_ms: int) -> None:
        """A tracked response counted as a server failure: http_fail_cnt++, rate +1."""
        if self._add(ts, self._fail_cnt, self._fail_rate, 21, 1, now_ms):
            self.touch_local(ts, now_ms)

    def add_bytes_in(self, ts: Entry, n: int, now_ms: int) -> None:
        """Bytes from the client: bytes_in_cnt += n, bytes_in_rate + n."""
        if self._add(ts, self._bin_cnt, self._bin_rate, 14, n, now_ms, U64):
            self.touch_local(ts, now_ms)

    def add_bytes_out(self, ts: Entry, n: int, now_ms: int) -> None:
        """Bytes to the client: bytes_out_cnt += n, bytes_out_rate + n."""
        if self._add(ts, self._bout_cnt, self._bout_rate, 16, n, now_ms, U64):
            self.touch_local(ts, now_ms)

    def inc_gpc0(self, ts: Entry, now_ms: int) -> int:
        """sc-inc-gpc0: gpc0++ and gpc0_rate +1; returns the new gpc0 (0 if not stored)."""
        self._add(ts, self._gpc0, self._gpc0_rate, 3, 1, now_ms)
        self.touch_local(ts, now_ms)
        return int(ts.data[self._gpc0] or 0) if self._gpc0 is not None else 0

    def inc_gpc1(self, ts: Entry, now_ms: int) -> int:
        """sc-inc-gpc1: gpc1++ and gpc1_rate +1; returns the new gpc1 (0 if not stored)."""
        self._add(ts, self._gpc1, self._gpc1_rate, 18, 1, now_ms)
        self.touch_local(ts, now_ms)
        return int(ts.data[self._gpc1] or 0) if self._gpc1 is not None else 0

    def set_gpt0(self, ts: Entry, value: int, now_ms: int) -> None:
        """sc-set-gpt0."""
        if self.stores("gpt0"):
            self.set(ts, "gpt0", value, now_ms)
            self.touch_local(ts, now_ms)

    def set_server(self, ts: Entry, server_id: int, server_key: str | None, now_ms: int) -> None:
        """`stick store`/`stick on` after the server is chosen: server_id and server_key."""
        if self.stores("server_id"):
            self.set(ts, "server_id", server_id, now_ms)
        if self.stores("server_key"):
            self.set(ts, "server_key", server_key, now_ms)
        self.touch_local(ts, now_ms)

    def updates_after(self, update_id: int) -> list[Entry]:
        """Entries locally updated after `update_id`, oldest first (what to teach a peer)."""

        def newer(e: Entry) -> bool:
            return 0 < ((e.upd - update_id) & U32) < 0x80000000

        if self._updates is not None:
            out = []
            for e in reversed(self._updates):
                if not newer(e):
                    break
                out.append(e)
            out.reverse()
            return out
        found = [e for e in self._keys.values() if e.upd and newer(e)]
        found.sort(key=lambda e: (e.upd - update_id) & U32)
        return found
