"""Runtime API commands: show info/stat/servers state/sess/netns and server state changes."""

from __future__ import annotations

import os
import resource
import time
from typing import TYPE_CHECKING

from nsproxy.ops import admin_log, identity, stat_counters, stat_formats
from nsproxy.ops.cli_args import parse_weight
from nsproxy.ops.runtime_api import ADMIN, OPERATOR, CliError, CommandSet, Session
from nsproxy.ops.server_addr import set_addr
from nsproxy.runtime.backend import Backend, Server
from nsproxy.runtime.health import STATUSES, ServerCheck
from nsproxy.runtime.objects import Counters
from nsproxy.runtime.tls_wire import SslProcess, TlsState

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands
command = COMMANDS.command

# HAProxy 2.6's `show stat` columns, in order (the fields after '-' come from its stats modules).
_STAT_COLUMNS = (
    "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,"
    "throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
    "check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
    "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,"
    "lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,"
    "agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,"
    "agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,"
    "intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,"
    "qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,"
    "used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,"
    "agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,"
    "h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,"
    "h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,"
    "h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,"
    "h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,"
    "h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out"
)
STAT_COLUMNS = tuple(_STAT_COLUMNS.split(","))

SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port"
)


# -- live counters ----------------------------------------------------------------------------
def live_bytes(rt: Runtime) -> dict[object, tuple[int, int]]:
    """Bytes in/out of the streams still open, per frontend, backend, server and namespace.

    The counters of closed streams are in each object's Counters; open streams add theirs.
    """
    out: dict[object, tuple[int, int]] = {}
    for s in rt.streams:
        bi, bo = s.bytes_in, s.bytes_out
        if not bi and not bo:
            continue
        keys: list[object] = [s.listener.frontend]
        if s.server is not None:
            keys += [s.server, s.server.backend]
        if s.netns is not None:
            keys.append(s.netns)
        for k in keys:
            a, b = out.get(k, (0, 0))
            out[k] = (a + bi, b + bo)
    return out


def _bytes(live: dict[object, tuple[int, int]], obj: object, c: Counters) -> tuple[int, int]:
    a, b = live.get(obj, (0, 0))
    return c.bytes_in + a, c.bytes_out + b


def server_status(srv: Server) -> str:
    """HAProxy's `status` column for a server."""
    if srv.admin_maint:
        return "MAINT"
    if srv.drain:
        return "DRAIN" if srv.up else "DOWN"
    if not srv.cfg.check.enabled:
        return "no check"
    return "UP" if srv.up else "DOWN"


def _since(rt: Runtime, srv: Server) -> int:
    if not srv.last_change:
        return int(time.time() - rt.start_time)
    return int(rt.clock.time() - srv.last_change)


def _addr(srv: Server) -> str:
    a = srv.cfg.addr
    host = getattr(a, "host", None)
    port = getattr(a, "port", 0)
    return f"{host}:{port}" if host else "*"


# columns of HAProxy's stats modules and of features nsproxy has not: 0 as HAProxy has them
_MODULE_ZEROS = {
    c: 0
    for c in STAT_COLUMNS[STAT_COLUMNS.index("-") + 1 :]
    if c.startswith(("ssl_", "h2_", "h1_spliced"))
}
_SERVER_ZEROS: dict[str, object] = {
    "wrew": 0,
    "srv_icur": 0,
    "eint": 0,
    "idle_conn_cur": 0,
    "safe_conn_cur": 0,
}
_SERVER_ZEROS |= {"-": "-", "ssl_sess": 0, "ssl_reused_sess": 0, "ssl_failed_handshake": 0}
_BACKEND_ZEROS = {"agg_server_status": 0, "agg_server_check_status": 0, "agg_check_status": 0}


def _proxy_zeros(http: bool) -> dict[str, object]:
    out: dict[str, object] = {"wrew": 0, "eint": 0, "-": "-", **_MODULE_ZEROS}
    if http:
        out |= {"cache_lookups": 0, "cache_hits": 0}
    return out


def _comp(c: Counters) -> dict[str, object]:
    """The compression filter's counters of a FRONTEND or BACKEND row."""
    return {
        "comp_in": c.comp_in,
        "comp_out": c.comp_out,
        "comp_byp": c.comp_byp,
        "comp_rsp": c.comp_rsp,
    }


def _h1_columns(http: bool, conns: int, streams: int, cur: int, bi: int, bo: int) -> dict[str, int]:
    """The h1 stats module's counters: HTTP/1 connections and streams, 0 for TCP proxies."""
    if not http:
        conns = streams = cur = bi = bo = 0
    return {
        "h1_open_connections": cur,
        "h1_open_streams": cur,
        "h1_total_connections": conns,
        "h1_total_streams": streams,
        "h1_bytes_in": bi,
        "h1_bytes_out": bo,
    }


def _hrsp(c: Counters) -> dict[str, int]:
    names = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")
    return dict(zip(names, c.hrsp, strict=True))


def _frontend_extra(c: Counters, http: bool, bi: int, bo: int) -> dict[str, object]:
    """Rates, request counters and module columns of a FRONTEND row."""
    out: dict[str, object] = {
        "rate": stat_counters.rate(c.sess_rate),
        "rate_lim": 0,
        "rate_max": c.sess_rate_max,
        "req_rate": stat_counters.rate(c.req_rate),
        "req_rate_max": c.req_rate_max,
        "req_tot": c.http_requests,
        "conn_rate": stat_counters.rate(c.conn_rate),
        "conn_rate_max": c.conn_rate_max,
        **_proxy_zeros(http),
        **_comp(c),
        **_h1_columns(http, c.total_conns, c.http_requests, c.cur_conns, bi, bo),
    }
    if http:
        out |= _hrsp(c)
        out["intercepted"] = c.intercepted
    return out


def _session_columns(c: Counters, http: bool) -> dict[str, object]:
    """Rates, aborts, connects, last session and time averages of a server or BACKEND row."""
    qt, ct, rt_, tt = stat_counters.averages(c)
    last = int(time.monotonic() - c.last_sess) if c.last_sess else -1
    out: dict[str, object] = {
        "rate": stat_counters.rate(c.sess_rate),
        "rate_max": c.sess_rate_max,
        "cli_abrt": c.cli_abrt,
        "srv_abrt": c.srv_abrt,
        "lastsess": last,
        "qtime": qt,
        "ctime": ct,
        "rtime": rt_,
        "ttime": tt,
        "qtime_max": c.qtime_max,
        "ctime_max": c.ctime_max,
        "rtime_max": c.rtime_max,
        "ttime_max": c.ttime_max,
        "connect": c.connect,
        "reuse": c.reuse,
    }
    if http:
        out |= _hrsp(c)
        out["req_tot"] = c.req_tot
    return out


def _check_columns(rt: Runtime, srv: Server, chk: ServerCheck | None) -> dict[str, object]:
    """chkfail, chkdown, downtime and the last check's result, for a checked server."""
    if chk is None:
        return {}
    out: dict[str, object] = {
        "chkfail": srv.stats.chk_fail,
        "chkdown": srv.stats.chk_down,
        "downtime": stat_counters.downtime(srv.stats, rt.clock.time()),
        "check_rise": chk.rise,
        "check_fall": chk.fall,
        "check_health": chk.health,
    }
    last = chk.last
    if last is not None:
        desc, _, with_code = STATUSES[last.status]
        out |= {"check_duration": last.duration, "last_chk": last.info, "check_desc": desc}
        if with_code:
            out["check_code"] = 0
    return out


def stat_rows(rt: Runtime) -> list[dict[str, object]]:
    """One dict per `show stat` row: FRONTEND, each server, BACKEND, in proxy order."""
    pid = os.getpid()
    live = live_bytes(rt)
    g = rt.config.global_
    rows: list[dict[str, object]] = []
    checks = {chk.srv: chk for chk in rt.health.checks}
    for px in rt.config.proxies:
        fe = rt.frontends.get(px.name)
        be = rt.backends.get(px.name)
        if fe is not None:
            bi, bo = _bytes(live, fe, fe.stats)
            opened = any(li.sock is not None for li in fe.listeners) and not rt.stopping
            rows.append(
                {
                    "pxname": px.name,
                    "svname": "FRONTEND",
                    "scur": fe.stats.cur_conns,
                    "smax": fe.stats.max_conns,
                    "slim": px.maxconn or g.maxconn,
                    "stot": fe.stats.total_conns,
                    "bin": bi,
                    "bout": bo,
                    "dreq": 0,
                    "dresp": 0,
                    "ereq": fe.stats.failed_headers + fe.stats.failed_req,
                    "status": "PAUSED" if fe.disabled and opened else "OPEN" if opened else "STOP",
                    "pid": pid,
                    "iid": px.id,
                    "sid": 0,
                    "type": 0,
                    "mode": px.mode,
                    "conn_tot": fe.stats.total_conns,
                    "dcon": fe.stats.denied,
                    "dses": 0,
                    "netns": "",
                    **_frontend_extra(fe.stats, px.mode == "http", bi, bo),
                }
            )
        if be is None:
            continue
        for srv in be.servers:
            bi, bo = _bytes(live, srv, srv.stats)
            rows.append(
                {
                    "pxname": px.name,
                    "svname": srv.name,
                    "qcur": 0,
                    "qmax": 0,
                    "scur": srv.cur_conns,
                    "smax": srv.stats.max_conns,
                    "slim": srv.maxconn or "",
                    "stot": srv.stats.total_conns,
                    "bin": bi,
                    "bout": bo,
                    "dresp": 0,
                    "econ": srv.stats.conn_errors,
                    "eresp": 0,
                    "wretr": srv.stats.retries,
                    "wredis": srv.stats.redispatches,
                    "status": server_status(srv),
                    "weight": srv.weight,  # HAProxy keeps it while down, in maint or drain
                    "act": 0 if srv.backup else 1,
                    "bck": 1 if srv.backup else 0,
                    "lastchg": _since(rt, srv),
                    "pid": pid,
                    "iid": px.id,
                    "sid": srv.puid,
                    "lbtot": srv.stats.total_conns,
                    "type": 2,
                    "check_status": srv.check_status if srv.cfg.check.enabled else "",
                    "addr": _addr(srv),
                    "mode": px.mode,
                    "uweight": srv.weight,
                    "netns": srv.netns.name if srv.netns is not None else "",
                    **_check_columns(rt, srv, checks.get(srv)),
                    **_session_columns(srv.stats, px.mode == "http"),
                    **_SERVER_ZEROS,
                    "used_conn_cur": srv.cur_conns,
                    "need_conn_est": srv.cur_conns,
                }
            )
        bi, bo = _bytes(live, be, be.stats)
        active = [s for s in be.servers if s.usable() and not s.backup]
        backup = [s for s in be.servers if s.usable() and s.backup]
        rows.append(
            {
                "pxname": px.name,
                "svname": "BACKEND",
                "qcur": len(be.queue),
                "qmax": 0,
                "scur": be.stats.cur_conns,
                "smax": be.stats.max_conns,
                "slim": px.maxconn or g.maxconn,
                "stot": be.stats.total_conns,
                "bin": bi,
                "bout": bo,
                "dreq": 0,
                "dresp": 0,
                "econ": be.stats.conn_errors,
                "eresp": 0,
                "wretr": be.stats.retries,
                "wredis": be.stats.redispatches,
                "status": "UP" if active or backup else "DOWN",
                "weight": sum(s.weight for s in (active or backup)),
                "act": len(active),
                "bck": len(backup),
                "lastchg": int(time.time() - rt.start_time),
                "pid": pid,
                "iid": px.id,
                "sid": 0,
                "lbtot": be.stats.total_conns,
                "type": 1,
                "mode": px.mode,
                "algo": px.balance,
                "uweight": sum(s.weight for s in (active or backup)),
                "netns": "",
                "chkdown": be.stats.chk_down,
                "downtime": stat_counters.downtime(be.stats, rt.clock.time()),
                **_session_columns(be.stats, px.mode == "http"),
                **_proxy_zeros(px.mode == "http"),
                **_comp(be.stats),
                **_BACKEND_ZEROS,
                **_h1_columns(px.mode == "http", be.stats.connect, be.stats.req_tot, 0, bi, bo),
            }
        )
    return rows


@command(
    "show",
    "stat",
    usage="show stat [desc|json|no-maint|typed|up]*",
    help="report counters for each proxy and server",
)
def _show_stat(session: Session, args: list[str]) -> str:
    o = stat_formats.parse_options(args[2:], filters=True)
    rt = session.rt
    if o.proxy is not None and o.proxy not in {px.name for px in rt.config.proxies}:
        raise CliError("No such proxy.\n")
    rows = stat_formats.select_rows(stat_rows(rt), o)
    if o.fmt == "typed":
        return stat_formats.stat_typed(rows, STAT_COLUMNS, o.desc)
    if o.fmt == "json":
        return stat_formats.stat_json(rows, STAT_COLUMNS)
    return stat_formats.stat_text(rows, STAT_COLUMNS)


def _ssl_info(rt: Runtime) -> tuple[list[tuple[str, object]], list[tuple[str, object]]]:
    """The SSL fields of `show info`: the connection counts, then the rates (HAProxy's
    global.sslconns, totalsslconns, ssl_per_sec, ssl_fe_keys_per_sec, ssl_be_keys_per_sec)."""
    tls = rt.tls_state
    p = tls.process if isinstance(tls, TlsState) else SslProcess()
    sess_rate = stat_counters.rate(p.rate)
    key_rate = stat_counters.rate(p.fe_keys)
    reuse = 0
    if key_rate < sess_rate:
        reuse = 100 - (100 * key_rate + (sess_rate - 1) // 2) // sess_rate
    return [("MaxSslConns", 0), ("CurrSslConns", p.cur), ("CumSslConns", p.total)], [
        ("SslRate", sess_rate),
        ("SslRateLimit", 0),
        ("MaxSslRate", p.rate_max),
        ("SslFrontendKeyRate", key_rate),
        ("SslFrontendMaxKeyRate", p.fe_keys_max),
        ("SslFrontendSessionReuse_pct", reuse),
        ("SslBackendKeyRate", stat_counters.rate(p.be_keys)),
        ("SslBackendMaxKeyRate", p.be_keys_max),
        # HAProxy 2.6 (Debian, OpenSSL 3) shows 0 for both, even while it resumes sessions
        ("SslCacheLookups", 0),
        ("SslCacheMisses", 0),
    ]


def cum_req(rt: Runtime) -> int:
    """HAProxy's CumReq (global.req_count): its streams, one per HTTP request (those whose head
    never completed included, unless kept out of the logs) and per TCP session. HAProxy's own
    CLI sessions count too; nsproxy's stats socket is not a proxy and does not."""
    n = -rt.unlogged_requests
    for fe in rt.frontends.values():
        n += fe.stats.http_requests if fe.cfg.mode == "http" else fe.stats.total_conns
    return n


def info_fields(rt: Runtime) -> list[tuple[str, object]]:
    """`show info` fields in HAProxy's order (the peers fields stay 0)."""
    up = int(time.time() - rt.start_time)
    g = rt.config.global_
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    out_bytes = sum(fe.stats.bytes_out for fe in rt.frontends.values())
    live = live_bytes(rt)
    out_bytes += sum(live.get(fe, (0, 0))[1] for fe in rt.frontends.values())
    ssl_conns, ssl_rates = _ssl_info(rt)
    return [
        ("Name", identity.NAME),
        ("Version", identity.VERSION),
        ("Release_date", identity.RELEASE_DATE),
        ("Nbthread", 1),
        ("Nbproc", 1),
        ("Process_num", 1),
        ("Pid", os.getpid()),
        ("Uptime", f"{up // 86400}d {up % 86400 // 3600}h{up % 3600 // 60:02d}m{up % 60:02d}s"),
        ("Uptime_sec", up),
        ("Memmax_MB", 0),
        ("PoolAlloc_MB", 0),
        ("PoolUsed_MB", 0),
        ("PoolFailed", 0),
        ("Ulimit-n", nofile),
        ("Maxsock", nofile),
        ("Maxconn", g.maxconn),
        ("Hard_maxconn", g.maxconn),
        ("CurrConns", rt.stats.cur_conns),
        ("CumConns", rt.stats.total_conns),
        ("CumReq", cum_req(rt)),
        *ssl_conns,
        ("Maxpipes", g.maxpipes),
        ("PipesUsed", 0),
        ("PipesFree", 0),
        ("ConnRate", stat_counters.rate(rt.stats.conn_rate)),
        ("ConnRateLimit", 0),
        ("MaxConnRate", rt.stats.conn_rate_max),
        ("SessRate", stat_counters.rate(rt.stats.sess_rate)),
        ("SessRateLimit", 0),
        ("MaxSessRate", rt.stats.sess_rate_max),
        *ssl_rates,
        ("CompressBpsIn", stat_counters.rate(rt.comp_bps_in)),
        ("CompressBpsOut", stat_counters.rate(rt.comp_bps_out)),
        ("CompressBpsRateLim", 0),
        ("Tasks", len(rt.streams)),
        ("Run_queue", 0),
        ("Idle_pct", 100),
        ("node", g.node or os.uname().nodename),
        ("Stopping", int(rt.stopping)),
        ("Jobs", len(rt.streams) + sum(1 for li in rt.listeners if li.sock is not None)),
        ("Unstoppable Jobs", 0),
        ("Listeners", sum(1 for li in rt.listeners if li.sock is not None)),
        ("ActivePeers", 0),
        ("ConnectedPeers", 0),
        ("DroppedLogs", 0),
        ("BusyPolling", 0),
        ("FailedResolutions", 0),
        ("TotalBytesOut", out_bytes),
        ("TotalSplicdedBytesOut", 0),
        ("BytesOutRate", 0),
        ("DebugCommandsIssued", 0),
        ("CumRecvLogs", 0),
        ("Build info", identity.VERSION),
        ("Memmax_bytes", 0),
        ("PoolAlloc_bytes", 0),
        ("PoolUsed_bytes", 0),
        ("Start_time_sec", int(rt.start_time)),
        ("Tainted", 0),
        ("Namespaces", len(rt.registry)),
    ]


@command(
    "show",
    "info",
    usage="show info [desc|json|typed|float]*",
    help="report information about the running process",
)
def _show_info(session: Session, args: list[str]) -> str:
    o = stat_formats.parse_options(args[2:], filters=False)
    fields = info_fields(session.rt)
    if o.fmt == "typed":
        return stat_formats.info_typed(fields, o.desc)
    if o.fmt == "json":
        return stat_formats.info_json(fields)
    return stat_formats.info_text(fields, o.desc)


@command(
    "show",
    "servers",
    "state",
    usage="show servers state [<backend>]",
    help="dump volatile server information (all or for a single backend)",
)
def _show_servers_state(session: Session, args: list[str]) -> str:
    rt = session.rt
    backends = list(rt.backends.values())
    if len(args) > 3:
        be = rt.backends.get(args[3])
        if be is None:
            raise CliError("Can't find backend.\n")
        backends = [be]
    lines = ["1", SERVERS_STATE_HEADER]
    for be in backends:
        for srv in be.servers:
            a = srv.cfg.addr
            host = getattr(a, "host", None) or "-"
            port = getattr(a, "port", 0)
            check = srv.cfg.check
            st = _state_columns(srv)
            lines.append(
                f"{be.cfg.id} {be.name} {srv.puid} {srv.name} {host} {st[0]} "
                f"{st[1]} {srv.weight} {srv.cfg.weight} {_since(rt, srv)} "
                f"{st[2]} {st[3]} {st[4]} {st[5]} 0 0 0 - {port} - 0 "
                f"{check.port or 0} {check.addr or '-'} - 0"
            )
    return "\n".join(lines) + "\n"


# HAProxy 2.6's codes (enum healthcheck_status, chk_result) and flags (SRV_ADMF_*, CHK_ST_*)
_CHECK_CODES = {"SOCKERR": 5, "L4OK": 6, "L4TOUT": 7, "L4CON": 8, "L7TOUT": 12, "L7RSP": 13}
_CHECK_CODES["L7OK"] = 15  # HCHK_STATUS_L7OKD
_FMAINT, _CMAINT, _FDRAIN = 0x01, 0x04, 0x08
_CHK_CONFIGURED_ENABLED, _CHK_PAUSED = 0x06, 0x08


def _state_columns(srv: Server) -> tuple[int, int, int, int, int, int]:
    """srv_op_state, srv_admin_state, srv_check_status, srv_check_result, srv_check_health
    and srv_check_state as HAProxy 2.6 writes them for the same states.

    A server `disabled` in the configuration keeps CMAINT (as in HAProxy, `enable server`
    only clears the forced maintenance)."""
    check = srv.cfg.check
    running = srv.up and not srv.admin_maint
    admin = (
        (_FMAINT if srv.admin_maint else 0)
        | (_CMAINT if srv.cfg.disabled else 0)
        | (_FDRAIN if srv.drain else 0)
    )
    if check.enabled:
        status = _CHECK_CODES.get(srv.check_status, 1)  # 1: INI, no result yet
        passed = srv.check_status in ("L4OK", "L7OK")
        result = 3 if passed else (2 if srv.check_status in _CHECK_CODES else 0)
        health = check.rise + check.fall - 1 if running else 0
    else:
        status, result = 1, 0
        health = check.rise if running and not srv.cfg.disabled else 0
    state = (_CHK_CONFIGURED_ENABLED if check.enabled else 0) | (
        _CHK_PAUSED if srv.cfg.disabled or (check.enabled and srv.admin_maint) else 0
    )
    return (2 if running else 0), admin, status, result, health, state


@command("show", "sess", usage="show sess", help="report the list of current sessions")
def _show_sess(session: Session, args: list[str]) -> str:
    session.need(OPERATOR)
    rt = session.rt
    now = rt.clock.time()
    out = []
    for s in list(rt.streams):
        src = s.src
        if isinstance(src, tuple):
            proto = "tcpv6" if ":" in str(src[0]) else "tcpv4"
            where = f"[{src[0]}]:{src[1]}" if proto == "tcpv6" else f"{src[0]}:{src[1]}"
        else:
            proto, where = "unix_stream", "unix"
        be = s.backend.name if s.backend is not None else "<NONE>"
        srv = s.server.name if s.server is not None else "<none>"
        ns = s.netns.name if s.netns is not None else "-"
        out.append(
            f"0x{id(s):x}: proto={proto} src={where} fe={s.fe.name} be={be} srv={srv} "
            f"ts=00 age={int(now - s.t0)}s calls=0 netns={ns} "
            f"bin={s.bytes_in} bout={s.bytes_out}\n"
        )
    return "".join(out)


@command(
    "show",
    "netns",
    usage="show netns",
    help="list network namespaces with their connection and byte counters",
)
def _show_netns(session: Session, args: list[str]) -> str:
    rt = session.rt
    live = live_bytes(rt)
    lines = ["# name inode cur_conns total_conns bytes_in bytes_out listeners servers errors state"]
    for ns in rt.registry:
        a, b = live.get(ns, (0, 0))
        listeners = sum(1 for li in rt.listeners if li.netns is ns and li.sock is not None)
        servers = sum(1 for be in rt.backends.values() for s in be.servers if s.netns is ns)
        lines.append(
            f"{ns.name} {ns.inode} {ns.conns} {ns.total_conns} {ns.bytes_in + a} "
            f"{ns.bytes_out + b} {listeners} {servers} {ns.errors} {rt.registry.state(ns)}"
        )
    return "\n".join(lines) + "\n"


# -- server state ---------------------------------------------------------------------------
def find_server(rt: Runtime, ref: str | None) -> tuple[Backend, Server]:
    """`backend/server` as HAProxy's CLI resolves it, with its error messages."""
    if not ref or "/" not in ref:
        raise CliError("Require 'backend/server'.\n")
    bname, _, sname = ref.partition("/")
    be = rt.backends.get(bname)
    if be is None:
        raise CliError("No such backend.\n")
    srv = be.server(sname)
    if srv is None:
        raise CliError("No such server.\n")
    return be, srv


def set_state(rt: Runtime, be: Backend, srv: Server, state: str) -> None:
    """ready / drain / maint, as `set server b/s state`, logged as HAProxy logs it.

    As in HAProxy, a checked server leaving maintenance starts UP, one failed check away
    from DOWN."""
    was = admin_log.before(be, srv)
    srv.admin_maint = state == "maint"
    srv.drain = state == "drain"
    if was.maint and not srv.admin_maint:
        chk = next((c for c in rt.health.checks if c.srv is srv), None)
        if chk is not None:
            chk.health = chk.rise
            srv.up = True
    if srv.admin_maint and not was.maint:
        rt.idle_pool.drop(srv)  # as HAProxy: a server in maintenance keeps no idle connection
    be.server_changed(srv, rt.clock.time())
    admin_log.admin_changed(be, srv, was)


def set_weight(rt: Runtime, be: Backend, srv: Server, text: str) -> None:
    """An absolute weight (0-256) or a percentage of the configured weight."""
    srv.weight = parse_weight(text, srv.cfg.weight)
    be.server_changed(srv, rt.clock.time())


@command(
    "disable",
    "server",
    usage="disable server (DEPRECATED)",
    help="disable a server for maintenance (use 'set server' instead)",
)
def _disable_server(session: Session, args: list[str]) -> str:
    session.need(ADMIN)
    be, srv = find_server(session.rt, args[2] if len(args) > 2 else None)
    set_state(session.rt, be, srv, "maint")
    return ""


@command(
    "enable",
    "server",
    usage="enable server  (DEPRECATED)",
    help="enable a disabled server (use 'set server' instead)",
)
def _enable_server(session: Session, args: list[str]) -> str:
    session.need(ADMIN)
    be, srv = find_server(session.rt, args[2] if len(args) > 2 else None)
    set_state(session.rt, be, srv, "drain" if srv.drain else "ready")
    return ""


_SET_SERVER_USAGE = (
    "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send "
    "| check-addr | check-port | fqdn | health | ssl | state | weight\n"
)


@command(
    "set",
    "server",
    usage="set server <bk>/<srv> [opts]",
    help="change a server's state, weight, address or ssl",
)
def _set_server(session: Session, args: list[str]) -> str:
    session.need(ADMIN)
    be, srv = find_server(session.rt, args[2] if len(args) > 2 else None)
    what = args[3] if len(args) > 3 else ""
    if what == "state":
        if len(args) < 5 or args[4] not in ("ready", "drain", "maint"):
            raise CliError("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n")
        set_state(session.rt, be, srv, args[4])
        return ""
    if what == "weight":
        set_weight(session.rt, be, srv, args[4] if len(args) > 4 else "")
        return ""
    if what == "addr":
        answer = set_addr(srv, args[4:])
        session.rt.idle_pool.drop(srv)  # idle connections to the old address are not reused
        return answer
    raise CliError(_SET_SERVER_USAGE)


@command(
    "set",
    "weight",
    usage="set weight <bk>/<srv>  (DEPRECATED)",
    help="change a server's weight (use 'set server' instead)",
)
def _set_weight(session: Session, args: list[str]) -> str:
    session.need(ADMIN)
    be, srv = find_server(session.rt, args[2] if len(args) > 2 else None)
    set_weight(session.rt, be, srv, args[3] if len(args) > 3 else "")
    return ""


@command("get", "weight", usage="get weight <bk>/<srv>", help="report a server's current weight")
def _get_weight(session: Session, args: list[str]) -> str:
    _, srv = find_server(session.rt, args[2] if len(args) > 2 else None)
    return f"{srv.weight} (initial {srv.cfg.weight})\n"
