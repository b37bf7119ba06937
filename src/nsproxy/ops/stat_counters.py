"""The counters behind `show stat`'s rates, time averages, aborts, checks and downtime."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nsproxy.stick import freq

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Backend, Server
    from nsproxy.runtime.objects import Counters
    from nsproxy.runtime.stream import Stream

SAMPLES = 512  # HAProxy 2.6's TIME_STATS_SAMPLES: qtime/ctime/rtime/ttime average over these
PERIOD = 1000  # rates are per second


def now_ms() -> int:
    """HAProxy's now_ms: the monotonic clock in milliseconds."""
    return int(time.monotonic() * 1000)


def session(*counters: Counters, conn: bool = False) -> None:
    """A session starts on each of `counters` (a frontend with `conn`: a connection too)."""
    ms = now_ms()
    for c in counters:
        c.sess_rate_max = max(c.sess_rate_max, c.sess_rate.update(PERIOD, 1, ms))
        if conn:
            c.conn_rate_max = max(c.conn_rate_max, c.conn_rate.update(PERIOD, 1, ms))
        c.last_sess = ms / 1000


def rate(c: freq.FreqCtr) -> int:
    """The events of the last second, as HAProxy's read_freq_ctr()."""
    return c.read(PERIOD, now_ms())


def _add_times(c: Counters, tq: int, tc: int, tr: int, tt: int) -> None:
    c.time_samples += 1
    n = SAMPLES if c.time_samples > SAMPLES else 0  # swrate_add_dynamic while filling
    c.q_time = freq.swrate_add_dynamic(c.q_time, n, tq)
    c.c_time = freq.swrate_add_dynamic(c.c_time, n, tc)
    c.d_time = freq.swrate_add_dynamic(c.d_time, n, tr)
    c.t_time = freq.swrate_add_dynamic(c.t_time, n, tt)
    c.qtime_max = max(c.qtime_max, tq)
    c.ctime_max = max(c.ctime_max, tc)
    c.rtime_max = max(c.rtime_max, tr)
    c.ttime_max = max(c.ttime_max, tt)


def averages(c: Counters) -> tuple[int, int, int, int]:
    """qtime, ctime, rtime, ttime: the averages over the last SAMPLES sessions (0 if none)."""
    n = min(c.time_samples, SAMPLES)
    if not n:
        return 0, 0, 0, 0
    avg = freq.swrate_avg
    return avg(c.q_time, n), avg(c.c_time, n), avg(c.d_time, n), avg(c.t_time, n)


def _status_class(status: int) -> int:
    return status // 100 - 1 if 100 <= status < 600 else 5


def txn_ended(s: Stream) -> None:
    """A TCP session or one HTTP transaction ended: times, aborts, responses, connects."""
    srv = s.server
    be = srv.backend if srv is not None else s.backend
    txn = s.http
    if txn is not None and s.quiet:
        return  # the end of a connection whose last request was counted when it ended
    targets = [x.stats for x in (srv, be) if x is not None]
    if txn is not None and (txn.req is not None or txn.status > 0):
        fs = s.fe.stats
        fs.req_rate_max = max(fs.req_rate_max, fs.req_rate.update(PERIOD, 1, now_ms()))
        if txn.status > 0:
            fs.hrsp[_status_class(txn.status)] += 1
            for c in targets:
                c.hrsp[_status_class(txn.status)] += 1
        for c in targets:
            c.req_tot += 1
    if srv is None:
        return
    first = s.termination[0]
    for c in targets:
        if first == "C":
            c.cli_abrt += 1
        elif first == "S":
            c.srv_abrt += 1
        c.connect += s.retries
    if s.tc < 0:
        return
    reused = txn is not None and txn.reuse_server
    tr = 0
    if txn is not None:
        tr = s.t_response
        if tr < 0:
            return
    for c in targets:
        if reused:
            c.reuse += 1
        else:
            c.connect += 1
        _add_times(c, max(s.tw, 0), s.tc, tr, max(s.t_total, 0))


def compressed(s: Stream, consumed: int, produced: int, bypass: bool, end: bool) -> None:
    """The compression filter passed `consumed` bytes of a response and emitted `produced`
    (`bypass`: identity, the bytes only pass); `end`: the response is complete.

    As HAProxy 2.6 counts them on the frontend and on the backend: comp_in/comp_out and the
    process' CompressBpsIn/Out rates, or comp_byp; comp_rsp once per response."""
    fe = s.fe.stats
    be = s.backend.stats if s.backend is not None else None
    if bypass:
        fe.comp_byp += consumed
        if be is not None:
            be.comp_byp += consumed
    else:
        ms = now_ms()
        rt = s.rt
        rt.comp_bps_in.update(PERIOD, consumed, ms)
        rt.comp_bps_out.update(PERIOD, produced, ms)
        fe.comp_in += consumed
        fe.comp_out += produced
        if be is not None:
            be.comp_in += consumed
            be.comp_out += produced
    if end:
        if s.fe.cfg.mode == "http":
            fe.comp_rsp += 1
        if be is not None:
            be.comp_rsp += 1


def check_done(srv: Server, passed: bool, health_before: int, rise: int) -> None:
    """A health check ran: a failure while the server was up counts in chkfail."""
    if not passed and health_before >= rise:
        srv.stats.chk_fail += 1


def mark_state(c: Counters, running: bool, now: float) -> None:
    """Whether `c`'s object runs at `now`: a DOWN transition starts a downtime period."""
    if running and c.down_since >= 0:
        c.down_time += now - c.down_since
        c.down_since = -1.0
    elif not running and c.down_since < 0:
        c.down_since = now
        c.chk_down += 1


def server_changed(be: Backend, srv: Server, now: float) -> None:
    """A server's state changed: DOWN transitions and downtime of it and of its backend."""
    mark_state(srv.stats, srv.up and not srv.admin_maint, now)
    mark_state(be.stats, any(s.usable() for s in be.servers), now)


def downtime(c: Counters, now: float) -> int:
    """Seconds spent down, including the current period of being down."""
    extra = now - c.down_since if c.down_since >= 0 else 0.0
    return int(c.down_time + extra)
