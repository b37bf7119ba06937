"""Stick tables in traffic: server persistence (`stick match|on|store-*`) around the server
choice, and the counter events of a stream's life for its tracked entries.

The stream calls `sticky_server()` where it picks a server; the runtime calls `session_started`,
`http_request`, `store_response`, `txn_done` and `stream_closed` at those moments of a
stream (one line each, in runtime/stream.py, analysers.py, http_ana.py and process.py). The
tracking slots themselves (`track-sc*`) are nsproxy.stick.track.StreamSticks, filled by the
compiled rules (config/keywords/track.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nsproxy.sample.context import final_view
from nsproxy.sample.stick_fetch import sample_key
from nsproxy.sample.types import Verdict
from nsproxy.stick.table import StickTable
from nsproxy.stick.track import StreamSticks

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Backend, Server
    from nsproxy.runtime.process import Runtime
    from nsproxy.runtime.stream import Stream

MAX_STORES = 8  # HAProxy's s->store[] (one entry per table, store-request and store-response)


def new_sticks(rt: Runtime) -> StreamSticks | None:
    """A new stream's tracking slots; None when the configuration has no stick table."""
    return StreamSticks(rt.tables, rt.stick.now_ms) if rt.tables else None


def _stuck_server(be: Backend, server_id: int) -> Server | None:
    for srv in be.servers:
        if srv.puid == server_id:
            return srv
    return None


def match(s: Stream, be: Backend, assigned: bool) -> Server | None:
    """HAProxy's process_sticking_rules(): the backend's `stick match|on|store-request` rules
    in order. A `match`/`on` rule whose key is in its table gives the server it names, if no
    server is assigned yet and that server is not down (or `option persist`); the entry is
    touched either way. `on`/`store-request` rules record (table, key) for `store()`, the first
    rule per table only."""
    sticks = s.sticks
    if sticks is None:
        return None
    pending = sticks.pending
    view = final_view(s)
    now = sticks.now()
    stuck: Server | None = None
    for rule in be.cfg.stick_rules:
        if rule.on_response or rule.fetch is None:
            continue
        table = sticks.tables.get(rule.table if rule.table is not None else be.name)
        if table is None:
            continue
        if rule.stores and any(t is table for t, _ in pending):
            continue
        if rule.test is not None and rule.test(view) is not Verdict.PASS:
            continue
        smp = rule.fetch(view)
        key = None if smp is None else sample_key(table, smp)
        if key is None:
            continue
        if rule.matches:
            ts = table.lookup(key)
            if ts is not None:
                if not assigned and stuck is None:
                    sid = table.get(ts, "server_id", now)
                    srv = _stuck_server(be, sid) if isinstance(sid, int) else None
                    if srv is not None and ((srv.up and not srv.admin_maint) or be.cfg.persist):
                        stuck = srv
                table.touch_local(ts, now)
        if rule.stores and len(pending) < MAX_STORES:
            pending.append((table, key))
    return stuck


def store(s: Stream, srv: Server) -> None:
    """process_store_rules(): every recorded key now points to `srv` (server_id and
    server_key), created if needed. Called each time a server is assigned, so a redispatch
    re-points the entries to the server finally used."""
    sticks = s.sticks
    if sticks is None or not sticks.pending:
        return
    now = sticks.now()
    for table, key in sticks.pending:
        ts = table.get_entry(key, now)
        if ts is None:
            continue
        table.set_server(ts, srv.puid, srv.name, now)
        table.release(ts)


def store_response(s: Stream) -> None:
    """`stick store-response` rules (HTTP): on the server's response head, the first rule
    per table that applies points its key to the server that answered."""
    sticks, be, srv = s.sticks, s.backend, s.server
    if sticks is None or be is None or srv is None or not be.cfg.stick_rules:
        return
    view = final_view(s)
    now = sticks.now()
    done: list[StickTable] = []
    for rule in be.cfg.stick_rules:
        if not rule.on_response or rule.fetch is None:
            continue
        table = sticks.tables.get(rule.table if rule.table is not None else be.name)
        if table is None or any(t is table for t in done):
            continue
        if rule.test is not None and rule.test(view) is not Verdict.PASS:
            continue
        smp = rule.fetch(view)
        key = None if smp is None else sample_key(table, smp)
        if key is None:
            continue
        done.append(table)
        ts = table.get_entry(key, now)
        if ts is not None:
            table.set_server(ts, srv.puid, srv.name, now)
            table.release(ts)


def sticky_server(
    s: Stream, be: Backend, forced: Server | None, exclude: Server | None, hash_key: bytes | None
) -> Server | None:
    """The server for a backend with `stick` rules: a usable `use-server` choice, else the
    stuck server, else the balancer's; then the `stick on|store-request` entries point to it.
    When redispatching (`exclude`), the rules are not matched again."""
    if forced is not None and (exclude is not None or not forced.usable()):
        forced = None
    stuck = match(s, be, forced is not None) if exclude is None else None
    srv = forced or stuck or be.pick(hash_key, exclude)
    if srv is not None:
        store(s, srv)
    return srv


# -- counter events ----------------------------------------------------------------------------
def session_started(s: Stream) -> None:
    """The connection was accepted by `tcp-request connection` rules: a session."""
    if s.sticks is not None:
        s.sticks.session_started()


def http_request(s: Stream) -> None:
    """A new HTTP request head arrived: counted on what is tracked already."""
    if s.sticks is not None:
        s.sticks.http_request()


def txn_done(s: Stream) -> None:
    """A TCP stream or an HTTP transaction ended (the bytes, 4xx, end of content tracking)."""
    sticks = s.sticks
    if sticks is None:
        return
    txn = s.http
    if txn is None:
        sticks.txn_done(-1, s.bytes_in, s.bytes_out, False, False)
    else:
        sticks.txn_done(txn.status, s.bytes_in, s.bytes_out, True, not txn.answered)
    sticks.pending.clear()


def stream_closed(s: Stream) -> None:
    """The stream is gone: every tracked entry stops counting it."""
    if s.sticks is not None:
        s.sticks.stop()


__all__ = [
    "http_request",
    "match",
    "new_sticks",
    "session_started",
    "sticky_server",
    "store",
    "store_response",
    "stream_closed",
    "txn_done",
]
