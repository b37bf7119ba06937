"""A stream's tracked stick-table entries (HAProxy's stkctr slots sc0..sc2) and their events.

`StreamSticks` is what a stream carries once its configuration has stick tables: the three
tracking slots, the process's tables by name (what `src_*`, `table_*` and `track-sc*` look
tables up in) and the tables' clock. Each method applies one of HAProxy's counter events to
every entry it concerns, with the same table calls HAProxy's stream and session helpers make.
Sans I/O: time comes from the `now` callable (integer milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from nsproxy.stick.table import Entry, Key, StickTable

SLOTS = 3  # sc0, sc1, sc2 (HAProxy 2.6's default MAX_SESS_STKCTR)


class Tracker:
    """One used slot: the table, the entry holding one reference, and whether the tracking
    rule was a content one (`tcp-request content`, `http-request`: it ends with the HTTP
    transaction, HAProxy's STKCTR_TRACK_CONTENT) or a connection one (ends with the stream)."""

    __slots__ = ("content", "entry", "table")

    def __init__(self, table: StickTable, entry: Entry, content: bool) -> None:
        self.table = table
        self.entry = entry
        self.content = content


class StreamSticks:
    """The tracking slots of one stream, with the tables they point into."""

    __slots__ = ("now", "pending", "slots", "tables")

    def __init__(self, tables: Mapping[str, StickTable], now: Callable[[], int]) -> None:
        self.tables = tables
        self.now = now
        self.slots: list[Tracker | None] = [None, None, None]
        # `stick on|store-request` keys waiting for the server choice: (table, key)
        self.pending: list[tuple[StickTable, Key]] = []

    def tracker(self, idx: int) -> Tracker | None:
        """Slot `idx` (0..2), None when nothing is tracked there."""
        return self.slots[idx] if 0 <= idx < SLOTS else None

    def track(
        self, idx: int, table: StickTable, key: Key, content: bool, http: bool = False
    ) -> Tracker | None:
        """`track-scN`: the entry for `key` (created if needed) goes in slot N and starts its
        counters (conn_cur, conn_cnt, conn_rate). A slot already in use is kept (the first
        tracking rule wins); a full table tracks nothing. `content`: a `tcp-request content`
        or `http-request` rule (its tracking ends with the HTTP transaction). `http`: an
        `http-request` rule, which also counts the request being tracked."""
        if self.slots[idx] is not None:
            return None
        now = self.now()
        ts = table.get_entry(key, now)
        if ts is None:
            return None
        table.start_counters(ts, now)
        if http:
            table.inc_http_req(ts, now)
        t = Tracker(table, ts, content)
        self.slots[idx] = t
        return t

    def session_started(self) -> None:
        """The connection passed `tcp-request connection` rules: sess_cnt/sess_rate of the
        entries tracked so far (HAProxy counts the session on its own, connection-level
        counters)."""
        now = self.now()
        for t in self.slots:
            if t is not None:
                t.table.inc_sess(t.entry, now)

    def http_request(self) -> None:
        """A new HTTP request: http_req_cnt/http_req_rate of every tracked entry."""
        now = self.now()
        for t in self.slots:
            if t is not None:
                t.table.inc_http_req(t.entry, now)

    def http_error(self) -> None:
        """The request was denied (deny, tarpit, auth): http_err_cnt/http_err_rate."""
        now = self.now()
        for t in self.slots:
            if t is not None:
                t.table.inc_http_err(t.entry, now)

    def txn_done(
        self, status: int, bytes_in: int, bytes_out: int, http: bool, from_server: bool
    ) -> None:
        """A TCP stream or an HTTP transaction ended: a server's 4xx counts as an HTTP error
        (the proxy's own denials are counted by the rule: `http_error`), a server's 5xx
        other than 501/505 as a failure; the bytes; then the content trackers of an HTTP
        transaction stop (the next request tracks again)."""
        now = self.now()
        slots = self.slots
        for i, t in enumerate(slots):
            if t is None:
                continue
            table, ts = t.table, t.entry
            if from_server and 400 <= status < 500:
                table.inc_http_err(ts, now)
            elif from_server and status >= 500 and status not in (501, 505):
                table.inc_http_fail(ts, now)
            if bytes_in:
                table.add_bytes_in(ts, bytes_in, now)
            if bytes_out:
                table.add_bytes_out(ts, bytes_out, now)
            if http and t.content:
                table.stop_counters(ts, now)
                slots[i] = None

    def stop(self) -> None:
        """The stream ends: every tracked entry's conn_cur drops and its reference goes."""
        now = self.now()
        slots = self.slots
        for i, t in enumerate(slots):
            if t is not None:
                t.table.stop_counters(t.entry, now)
                slots[i] = None


__all__ = ["SLOTS", "StreamSticks", "Tracker"]
