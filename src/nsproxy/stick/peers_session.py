"""One peers-protocol session as a sans-I/O state machine: handshake, resync, live updates.

The runtime owns the socket and the clock: it feeds received bytes with `receive(data, now)`,
writes what `outgoing()` returns, calls `tick(now)` by `next_deadline()`, and `push(now)`
after local updates (StickTable.touch_local). Learnt entries go straight into the tables.

Timers are HAProxy 2.6's: a heartbeat after 3 s without sending, the session dropped after
5 s without receiving anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from nsproxy.stick import peers_proto as pp
from nsproxy.stick.peers_sync import apply_update, entry_update, table_def
from nsproxy.stick.table import Entry, StickTable

HEARTBEAT_MS = 3000
RECONNECT_MS = 5000

# states
HELLO_SENT, WAIT_HELLO, ESTABLISHED, CLOSED = "hello-sent", "wait-hello", "established", "closed"


@dataclass(slots=True)
class SharedTable:
    """A local table as this session shares it: our id for it, what the peer has acked,
    what we pushed, and the peer's definition of its table of the same name."""

    table: StickTable
    local_id: int
    net_name: str
    last_pushed: int = 0
    acked: int = 0
    announced: bool = False
    remote: pp.TableDef | None = None
    last_get: int = 0
    last_acked_get: int = 0
    definition: pp.TableDef | None = None

    def define(self) -> pp.TableDef:
        if self.definition is None:
            self.definition = table_def(self.table, self.local_id, self.net_name)
        return self.definition


@dataclass(slots=True)
class Events:
    """What one call observed: entries learnt, control messages, the session's end."""

    learnt: list[tuple[StickTable, Entry]] = field(default_factory=list)
    resync_requested: bool = False
    resync_finished: bool = False
    resync_partial: bool = False
    resync_confirmed: bool = False
    established: bool = False
    closed: str | None = None


class PeerSession:
    """A session with peer `remote_name`, seen from local peer `local_name`.

    `tables` maps the shared name of each table (its name, or "<peers>/<table>") to it.
    Connect side: `PeerSession.connect(...)` (sends the hello); accept side:
    `PeerSession.accept(...)` (waits for one and answers with a status line).
    """

    def __init__(
        self,
        local_name: str,
        tables: Mapping[str, StickTable],
        now_ms: int,
        known_peers: tuple[str, ...] = (),
        remote_name: str = "",
    ) -> None:
        self.local_name = local_name
        self.remote_name = remote_name
        self.known_peers = known_peers
        self.state = CLOSED
        self.status: int | None = None
        self.shared = [SharedTable(t, i, name) for i, (name, t) in enumerate(tables.items(), 1)]
        for st in self.shared:
            st.table.keep_update_log()
        self._by_name = {s.net_name: s for s in self.shared}
        self._out = bytearray()
        self._in = bytearray()
        self._last_rx = now_ms
        self._last_tx = now_ms
        self._current_out: SharedTable | None = None
        self._current_in: SharedTable | None = None
        self._remote_defs: dict[int, pp.TableDef] = {}
        self._dict = pp.DictCache()  # server_key values by id, both ways, for this session
        self.teaching = False
        self.learning = False
        # what the runtime decides: whether a lesson we give ends with `resync finished`
        # (we are up to date) or `partial`, and the status for an accepted peer's hello
        self.up_to_date = True
        self.admit: Callable[[str], int] | None = None

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        local_name: str,
        remote_name: str,
        tables: Mapping[str, StickTable],
        now_ms: int,
        pid: int | None = None,
    ) -> PeerSession:
        s = cls(local_name, tables, now_ms, remote_name=remote_name)
        s.state = HELLO_SENT
        s._send(
            pp.Hello(remote_name, local_name, os.getpid() if pid is None else pid).encode(), now_ms
        )
        return s

    @classmethod
    def accept(
        cls,
        local_name: str,
        known_peers: tuple[str, ...],
        tables: Mapping[str, StickTable],
        now_ms: int,
    ) -> PeerSession:
        s = cls(local_name, tables, now_ms, known_peers=known_peers)
        s.state = WAIT_HELLO
        return s

    # -- I/O surface --------------------------------------------------------------------------
    def outgoing(self) -> bytes:
        """Bytes to write now (taken: the next call returns only newer ones)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _send(self, b: bytes, now_ms: int) -> None:
        self._out += b
        self._last_tx = now_ms

    def close(self, reason: str, ev: Events) -> Events:
        self.state = CLOSED
        ev.closed = reason
        return ev

    def next_deadline(self) -> int | None:
        if self.state == CLOSED:
            return None
        if self.state != ESTABLISHED:
            return self._last_rx + RECONNECT_MS
        return min(self._last_tx + HEARTBEAT_MS, self._last_rx + RECONNECT_MS)

    def tick(self, now_ms: int) -> Events:
        """Heartbeats and the silent-peer timeout."""
        ev = Events()
        if self.state == CLOSED:
            return ev
        if now_ms - self._last_rx >= RECONNECT_MS:
            return self.close("timeout", ev)
        if self.state == ESTABLISHED and now_ms - self._last_tx >= HEARTBEAT_MS:
            self._send(pp.control(pp.HEARTBEAT), now_ms)
        return ev

    # -- receiving ----------------------------------------------------------------------------
    def receive(self, data: bytes, now_ms: int) -> Events:
        """Feeds bytes read from the peer (b"" means the peer closed)."""
        ev = Events()
        if self.state == CLOSED:
            return ev
        if not data:
            return self.close("peer closed", ev)
        self._last_rx = now_ms
        self._in += data
        if self.state == WAIT_HELLO:
            r = pp.split_lines(bytes(self._in), 3)
            if r is None:
                return ev
            lines, used = r
            del self._in[:used]
            status, hello = pp.check_hello(lines, self.local_name, self.known_peers)
            if hello is not None and self.admit is not None:
                status = self.admit(hello.local_id)
                if status != pp.SUCCESS:
                    hello = None
            self._send(pp.status_line(status), now_ms)
            self.status = status
            if hello is None:
                return self.close(f"hello refused ({status})", ev)
            self.remote_name = hello.local_id
            self.state = ESTABLISHED
            ev.established = True
        elif self.state == HELLO_SENT:
            r = pp.split_lines(bytes(self._in), 1)
            if r is None:
                return ev
            lines, used = r
            del self._in[:used]
            self.status = int(lines[0]) if lines[0].isdigit() else pp.ERR_PROTO
            if self.status != pp.SUCCESS:
                return self.close(f"status {lines[0]}", ev)
            self.state = ESTABLISHED
            ev.established = True
        try:
            for f in pp.read_frames(self._in):
                self._frame(f, now_ms, ev)
                if self.state == CLOSED:
                    return ev
        except pp.ProtocolError as exc:
            self._send(pp.error(pp.ERROR_PROTOCOL), now_ms)
            return self.close(f"protocol error: {exc}", ev)
        self._send_acks(now_ms)
        return ev

    def _frame(self, f: pp.Frame, now_ms: int, ev: Events) -> None:
        if f.cls == pp.CLASS_CONTROL:
            if f.type == pp.RESYNC_REQUEST:
                ev.resync_requested = True
                self.teach_all(now_ms, finished=self.up_to_date)
            elif f.type in (pp.RESYNC_FINISHED, pp.RESYNC_PARTIAL):
                ev.resync_finished = f.type == pp.RESYNC_FINISHED
                ev.resync_partial = f.type == pp.RESYNC_PARTIAL
                self.learning = False
                self._send(pp.control(pp.RESYNC_CONFIRM), now_ms)
            elif f.type == pp.RESYNC_CONFIRM:
                self.teaching = False
                ev.resync_confirmed = True
            return
        if f.cls == pp.CLASS_ERROR:
            self.close(f"peer error {f.type}", ev)
            return
        if f.cls != pp.CLASS_STICKTABLE:
            raise pp.ProtocolError(f"unknown message class {f.cls}")
        if f.type == pp.DEFINE:
            td = pp.TableDef.decode(f.payload)
            st = self._by_name.get(td.name)
            self._current_in = None
            if st is not None and (st.table.key_type, st.table.key_size) == (
                td.key_type,
                td.key_size,
            ):
                st.remote = td
                self._remote_defs[td.table_id] = td
                self._current_in = st
        elif f.type == pp.SWITCH:
            tid = pp.decode_switch(f.payload)
            self._current_in = next(
                (s for s in self.shared if s.remote is not None and s.remote.table_id == tid), None
            )
        elif f.type == pp.ACK:
            tid, upd = pp.decode_ack(f.payload)
            for s in self.shared:
                if s.local_id == tid:
                    s.acked = upd
        elif f.type in (pp.UPDATE, pp.INC_UPDATE, pp.UPDATE_TIMED, pp.INC_UPDATE_TIMED):
            st = self._current_in
            if st is None or st.remote is None:
                return
            u = pp.decode_update(st.remote, f, self._dict)
            st.last_get = u.update_id if u.update_id is not None else st.last_get + 1
            ts = apply_update(st.table, st.remote, u, now_ms)
            if ts is not None:
                ev.learnt.append((st.table, ts))

    def _send_acks(self, now_ms: int) -> None:
        for s in self.shared:
            if s.remote is not None and s.last_get != s.last_acked_get:
                self._send(pp.ack(s.remote.table_id, s.last_get), now_ms)
                s.last_acked_get = s.last_get

    # -- sending ------------------------------------------------------------------------------
    def request_resync(self, now_ms: int) -> None:
        """Asks the peer for everything it knows (what a starting HAProxy asks)."""
        self.learning = True
        self._send(pp.control(pp.RESYNC_REQUEST), now_ms)

    def _switch_to(self, st: SharedTable) -> None:
        if not st.announced:
            self._out += st.define().encode()
            st.announced = True
            self._current_out = st
        elif self._current_out is not st:
            self._out += pp.switch(st.local_id)
            self._current_out = st

    def _send_entry(
        self, st: SharedTable, ts: Entry, upd: int, now_ms: int, lesson: bool = False
    ) -> None:
        """A live push goes untimed; a lesson carries each entry's remaining time (when the
        table expires), as HAProxy 2.6 teaches, so that the learner keeps the dates."""
        self._switch_to(st)
        use_id = lesson or upd != (st.last_pushed + 1) & 0xFFFFFFFF
        timed = None if lesson else False
        u = entry_update(st.table, ts, now_ms, upd if use_id else None, timed=timed)
        self._out += pp.encode_update(st.define(), u, self._dict)
        st.last_pushed = upd
        self._last_tx = now_ms

    def push(self, now_ms: int) -> int:
        """Sends the entries updated locally since the last push; returns how many."""
        if self.state != ESTABLISHED:
            return 0
        n = 0
        for st in self.shared:
            for ts in st.table.updates_after(st.last_pushed):
                self._send_entry(st, ts, ts.upd, now_ms)
                n += 1
        return n

    def teach_all(self, now_ms: int, finished: bool = True) -> int:
        """A full resync: every entry of every shared table, then `resync finished` (or
        `partial` when we do not consider ourselves up to date). Returns entries sent."""
        self.teaching = True
        n = 0
        for st in self.shared:
            for ts in list(st.table):
                self._send_entry(st, ts, ts.upd, now_ms, lesson=True)
                n += 1
            st.last_pushed = st.table.update
        self._send(pp.control(pp.RESYNC_FINISHED if finished else pp.RESYNC_PARTIAL), now_ms)
        return n
