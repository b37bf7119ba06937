"""HAProxy 2.6 promex's metric families, read from `show info` fields and `show stat` rows."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from nsproxy.ops import identity
from nsproxy.ops.stat_fields import INFO_FIELDS, STAT_FIELDS
from nsproxy.ops.stats import info_fields, stat_rows

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Server
    from nsproxy.runtime.process import Runtime

NAN = math.nan
G, C = "gauge", "counter"
# promex's `state` label values, in its order
SERVER_STATES = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")
_CHECKS = "HANA SOCKERR L4OK L4TOUT L4CON L6OK L6TOUT L6RSP L7TOUT L7RSP L7OK L7OKC L7STS"
CHECK_STATES = (*_CHECKS.split(), "PROCERR", "PROCTOUT", "PROCOK")
CODES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")

# haproxy_process_<name> <g|c> <`show info` field>, in promex's order ("-": none)
_P = """
nbthread g Nbthread
nbproc g Nbproc
relative_process_id g Process_num
uptime_seconds g Uptime_sec
pool_failures_total c PoolFailed
max_fds g Ulimit-n
max_sockets g Maxsock
max_connections g Maxconn
hard_max_connections g Hard_maxconn
current_connections g CurrConns
connections_total c CumConns
requests_total c CumReq
max_ssl_connections g MaxSslConns
current_ssl_connections g CurrSslConns
ssl_connections_total c CumSslConns
max_pipes g Maxpipes
pipes_used_total c PipesUsed
pipes_free_total c PipesFree
current_connection_rate g ConnRate
limit_connection_rate g ConnRateLimit
max_connection_rate g MaxConnRate
current_session_rate g SessRate
limit_session_rate g SessRateLimit
max_session_rate g MaxSessRate
current_ssl_rate g SslRate
limit_ssl_rate g SslRateLimit
max_ssl_rate g MaxSslRate
current_frontend_ssl_key_rate g SslFrontendKeyRate
max_frontend_ssl_key_rate g SslFrontendMaxKeyRate
frontend_ssl_reuse g SslFrontendSessionReuse_pct
current_backend_ssl_key_rate g SslBackendKeyRate
max_backend_ssl_key_rate g SslBackendMaxKeyRate
ssl_cache_lookups_total c SslCacheLookups
ssl_cache_misses_total c SslCacheMisses
http_comp_bytes_in_total c CompressBpsIn
http_comp_bytes_out_total c CompressBpsOut
limit_http_comp g CompressBpsRateLim
current_zlib_memory g -
max_zlib_memory g -
current_tasks g Tasks
current_run_queue g Run_queue
idle_time_percent g Idle_pct
stopping g Stopping
jobs g Jobs
unstoppable_jobs g Unstoppable_Jobs
listeners g Listeners
active_peers g ActivePeers
connected_peers g ConnectedPeers
dropped_logs_total c DroppedLogs
busy_polling_enabled g BusyPolling
failed_resolutions c FailedResolutions
bytes_out_total c TotalBytesOut
spliced_bytes_out_total c TotalSplicdedBytesOut
bytes_out_rate g BytesOutRate
recv_logs_total c CumRecvLogs
build_info g -
max_memory_bytes g Memmax_bytes
pool_allocated_bytes g PoolAlloc_bytes
pool_used_bytes g PoolUsed_bytes
start_time_seconds g Start_time_sec
"""

# (<name>, type, `show stat` column, where): where = "" every proxy, "h" HTTP proxies only,
# "k" checked servers only; `status`, `http_responses_total`, `check_status` and `agg_*`
# carry a `state`/`code` label; a column in ms becomes seconds.
_F = """
current_sessions g scur
max_sessions g smax
limit_sessions g slim
sessions_total c stot
bytes_in_total c bin
bytes_out_total c bout
requests_denied_total c dreq
responses_denied_total c dresp
request_errors_total c ereq
status g status
limit_session_rate g rate_lim
max_session_rate g rate_max
http_responses_total c hrsp h
http_requests_rate_max g req_rate_max h
http_requests_total c req_tot h
http_comp_bytes_in_total c comp_in h
http_comp_bytes_out_total c comp_out h
http_comp_bytes_bypassed_total c comp_byp h
http_comp_responses_total c comp_rsp h
connections_rate_max g conn_rate_max
connections_total c conn_tot
intercepted_requests_total c intercepted h
denied_connections_total c dcon
denied_sessions_total c dses
failed_header_rewriting_total c wrew
http_cache_lookups_total c cache_lookups h
http_cache_hits_total c cache_hits h
internal_errors_total c eint
"""
_B = """
current_queue g qcur
max_queue g qmax
current_sessions g scur
max_sessions g smax
limit_sessions g slim
sessions_total c stot
bytes_in_total c bin
bytes_out_total c bout
requests_denied_total c dreq
responses_denied_total c dresp
connection_errors_total c econ
response_errors_total c eresp
retry_warnings_total c wretr
redispatch_warnings_total c wredis
status g status
weight g weight
active_servers g act
backup_servers g bck
check_up_down_total c chkdown
check_last_change_seconds g lastchg
downtime_seconds_total c downtime
loadbalanced_total c lbtot
max_session_rate g rate_max
http_responses_total c hrsp h
http_requests_total c req_tot h
client_aborts_total c cli_abrt
server_aborts_total c srv_abrt
http_comp_bytes_in_total c comp_in h
http_comp_bytes_out_total c comp_out h
http_comp_bytes_bypassed_total c comp_byp h
http_comp_responses_total c comp_rsp h
last_session_seconds g lastsess
queue_time_average_seconds g qtime
connect_time_average_seconds g ctime
response_time_average_seconds g rtime
total_time_average_seconds g ttime
failed_header_rewriting_total c wrew
connection_attempts_total c connect
connection_reuses_total c reuse
http_cache_lookups_total c cache_lookups h
http_cache_hits_total c cache_hits h
max_queue_time_seconds g qtime_max
max_connect_time_seconds g ctime_max
max_response_time_seconds g rtime_max
max_total_time_seconds g ttime_max
internal_errors_total c eint
uweight g uweight
agg_server_status g agg_server_status
agg_server_check_status g agg_server_check_status
agg_check_status g agg_check_status
"""
_S = """
current_queue g qcur
max_queue g qmax
current_sessions g scur
max_sessions g smax
limit_sessions g slim
sessions_total c stot
bytes_in_total c bin
bytes_out_total c bout
responses_denied_total c dresp
connection_errors_total c econ
response_errors_total c eresp
retry_warnings_total c wretr
redispatch_warnings_total c wredis
status g status
weight g weight
check_failures_total c chkfail
check_up_down_total c chkdown
check_last_change_seconds g lastchg
downtime_seconds_total c downtime
queue_limit g qlimit
current_throttle g throttle
loadbalanced_total c lbtot
max_session_rate g rate_max
check_status g check_status k
check_code g check_code k
check_duration_seconds g check_duration k
http_responses_total c hrsp h
client_aborts_total c cli_abrt
server_aborts_total c srv_abrt
last_session_seconds g lastsess
queue_time_average_seconds g qtime
connect_time_average_seconds g ctime
response_time_average_seconds g rtime
total_time_average_seconds g ttime
failed_header_rewriting_total c wrew
connection_attempts_total c connect
connection_reuses_total c reuse
idle_connections_current g srv_icur
idle_connections_limit g src_ilim
max_queue_time_seconds g qtime_max
max_connect_time_seconds g ctime_max
max_response_time_seconds g rtime_max
max_total_time_seconds g ttime_max
internal_errors_total c eint
unsafe_idle_connections_current g idle_conn_cur
safe_idle_connections_current g safe_conn_cur
used_connections_current g used_conn_cur
need_connections_current g need_conn_est
uweight g uweight
"""


def _table(text: str) -> tuple[tuple[str, str, str, str], ...]:
    rows = (line.split() for line in text.strip().split("\n"))
    return tuple((r[0], r[1], r[2], r[3] if len(r) > 3 else "") for r in rows)


FRONTEND, BACKEND, SERVER = _table(_F), _table(_B), _table(_S)
PROCESS = tuple((r[0], r[1], r[2]) for r in _table(_P))
_MS = {"qtime", "ctime", "rtime", "ttime", "qtime_max", "ctime_max", "rtime_max", "ttime_max"}
_MS.add("check_duration")
_STATE_HELP = "Current status of the service, per state label value."
_AVG = "time for last 1024 successful connections."
_HELP = {
    "qtime": f"Avg. queue {_AVG}",
    "ctime": f"Avg. connect {_AVG}",
    "rtime": f"Avg. response {_AVG}",
    "ttime": f"Avg. total {_AVG}",
    "qtime_max": "Maximum observed time spent in the queue",
    "ctime_max": "Maximum observed time spent waiting for a connection to complete",
    "rtime_max": "Maximum observed time spent waiting for a server response",
    "ttime_max": "Maximum observed total request+response time "
    "(request+queue+connect+response+processing)",
    "status": _STATE_HELP,
    "check_status": "Status of last health check, per state label value.",
    "agg_server_status": "Backend's aggregated gauge of servers' status",
    "agg_server_check_status": "Backend's aggregated gauge of servers' state check status",
    "agg_check_status": "Backend's aggregated gauge of servers' state check status",
    "hrsp": "Total number of HTTP responses with status 100-199 returned by this object since "
    "the worker process started",
    "intercepted": "Total number of HTTP requests intercepted on the frontend "
    "(redirects/stats/services) since the worker process started",
    "cache_lookups": "Total number of HTTP requests looked up in the cache on this "
    "frontend/backend since the worker process started",
    "cache_hits": "Total number of HTTP requests not found in the cache on this "
    "frontend/backend since the worker process started",
    "qlimit": "Limit on the number of connections in queue, for servers only (maxqueue argument)",
    "throttle": "Throttling ratio applied to a server's maxconn and weight during the slowstart "
    "period (0 to 100%)",
    "check_code": "layer5-7 code, if available of the last health check.",
    "src_ilim": "Limit on the number of available idle connections on this server (server "
    "'pool_max_conn' directive)",
}


_PROCESS_HELP = {
    "current_zlib_memory": "Amount of memory currently used by HTTP compression on the "
    "current worker process (in bytes)",
    "max_zlib_memory": "Limit on the amount of memory used by HTTP compression above which it "
    "is automatically disabled (in bytes, see global.maxzlibmem)",
}


def families() -> dict[str, list[str]]:
    """Every family name nsproxy exports as promex does, per kind (for tests and docs)."""
    return {
        "process": [f"haproxy_process_{n}" for n, _, _ in PROCESS],
        "frontend": [f"haproxy_frontend_{r[0]}" for r in FRONTEND],
        "backend": [f"haproxy_backend_{r[0]}" for r in BACKEND],
        "server": [f"haproxy_server_{r[0]}" for r in SERVER],
    }


# families whose values promex prints as floats ("%f": seconds from milliseconds)
FLOATS = frozenset(
    f"haproxy_{kind}_{r[0]}"
    for kind, table in (("frontend", FRONTEND), ("backend", BACKEND), ("server", SERVER))
    for r in table
    if r[2] in _MS
)
# promex's counters without the `_total` suffix (prometheus_client adds it to every counter)
_PLAIN = {"haproxy_process_failed_resolutions_total": "haproxy_process_failed_resolutions"}


def _text_value(v: float, flt: bool) -> str:
    """A sample's value as promex prints it: integers as integers, seconds with "%f"."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if flt:
        return f"{v:f}"
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return repr(float(v))


def _label_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition_text(families: Iterable[Metric]) -> bytes:
    """The text exposition as HAProxy 2.6's promex writes it: a family without samples is left
    out (nsproxy's own `nsproxy_*` families stay), labels in promex's order, `netns` last,
    values without a fraction unless promex prints one."""
    out: list[str] = []
    for fam in families:
        if not fam.samples and fam.name.startswith("haproxy_"):
            continue
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        name = _PLAIN.get(name, name)
        flt = name in FLOATS
        out.append(f"# HELP {name} {fam.documentation}\n# TYPE {name} {fam.type}\n")
        for smp in fam.samples:
            sname = _PLAIN.get(smp.name, smp.name)
            labels = ",".join(f'{k}="{_label_value(v)}"' for k, v in smp.labels.items())
            value = _text_value(smp.value, flt)
            out.append(f"{sname}{{{labels}}} {value}\n" if labels else f"{sname} {value}\n")
    return "".join(out).encode()


def _family(name: str, kind: str, doc: str, labels: list[str]) -> Metric:
    if kind in ("c", C):
        return CounterMetricFamily(name, doc, labels=labels)
    return GaugeMetricFamily(name, doc, labels=labels)


def _number(v: object, ms: bool = False) -> float:
    if v == "" or v is None:
        return NAN
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return v / 1000 if ms else float(v)
    try:
        return float(str(v))
    except ValueError:
        return NAN


def _ns_label(rt: Runtime) -> dict[tuple[str, str], str]:
    """The `netns` label of each FRONTEND/BACKEND/server row: (proxy, svname) -> names."""
    out: dict[tuple[str, str], str] = {}
    for fe in rt.frontends.values():
        names = {li.netns.name for li in fe.listeners if li.netns is not None}
        out[(fe.name, "FRONTEND")] = ",".join(sorted(names))
    for be in rt.backends.values():
        seen = set()
        for srv in be.servers:
            ns = server_ns(srv)
            out[(be.name, srv.name)] = ns
            seen.add(ns)
        out[(be.name, "BACKEND")] = ",".join(sorted(seen - {""}))
    return out


def server_ns(srv: Server) -> str:
    """A server's `netns` label: its namespace, `*` for `namespace *`, else empty."""
    if srv.cfg.use_client_netns:
        return "*"
    return srv.netns.name if srv.netns is not None else ""


def _process(rt: Runtime) -> Iterator[Metric]:
    info = {k.replace(" ", "_"): v for k, v in info_fields(rt)}
    for name, kind, fld in PROCESS:
        full = f"haproxy_process_{name}"
        if name == "build_info":
            fam = GaugeMetricFamily(full, "Build info", labels=["version"])
            fam.add_metric([identity.VERSION], 1)
            yield fam
            continue
        desc = INFO_FIELDS.get(fld.replace("_", " ") if fld == "Unstoppable_Jobs" else fld)
        doc = desc[3] if desc else _PROCESS_HELP.get(name, name.replace("_", " "))
        one = _family(full, kind, doc, [])
        one.add_metric([], _number(info.get(fld, "")))  # type: ignore[attr-defined]
        yield one


def _proxy_families(
    kind: str,
    table: tuple[tuple[str, str, str, str], ...],
    rows: list[dict[str, object]],
    ns: dict[tuple[str, str], str],
    http: set[str],
    checked: set[tuple[str, str]],
) -> Iterator[Metric]:
    base = ["proxy", "server"] if kind == "server" else ["proxy"]
    for name, tkind, col, where in table:
        extra: list[str] = []
        if col in ("status", "check_status") or col.startswith("agg_"):
            extra = ["state"]
        elif col == "hrsp":
            extra = ["code"]
        doc = _HELP.get(col) or (STAT_FIELDS[col][2] if col in STAT_FIELDS else name)
        fam = _family(f"haproxy_{kind}_{name}", tkind, doc, [*base, *extra, "netns"])
        for row in rows:
            px, sv = str(row["pxname"]), str(row["svname"])
            if where == "h" and px not in http:
                continue
            if where == "k" and (px, sv) not in checked:
                continue
            lv = [px, sv] if kind == "server" else [px]
            netns = ns.get((px, sv), "")
            for labels, value in _values(kind, col, row):
                fam.add_metric([*lv, *labels, netns], value)  # type: ignore[attr-defined]
        yield fam


def _values(kind: str, col: str, row: dict[str, object]) -> Iterator[tuple[list[str], float]]:
    """The samples of one row for one column: (extra label values, value)."""
    if col == "status":
        status = str(row.get("status", ""))
        if kind == "frontend":
            up = "UP" if status in ("OPEN", "FULL") else "DOWN"
            states: tuple[str, ...] = ("DOWN", "UP")
        elif kind == "backend":
            up, states = ("UP" if status == "UP" else "DOWN"), ("DOWN", "UP")
        else:
            up = "UP" if status == "no check" else status.split()[0]
            states = SERVER_STATES
        for st in states:
            yield [st], 1.0 if st == up else 0.0
    elif col == "check_status":
        status = str(row.get("check_status", ""))
        for st in CHECK_STATES:
            yield [st], 1.0 if st == status else 0.0
    elif col.startswith("agg_"):
        counts = row.get("_agg_" + col, {})
        states = tuple(CHECK_STATES) if col == "agg_check_status" else SERVER_STATES
        for st in states:
            yield [st], float(counts.get(st, 0)) if isinstance(counts, dict) else 0.0
    elif col == "hrsp":
        for code in CODES:
            yield [code], _number(row.get(f"hrsp_{code}", ""))
    else:
        yield [], _number(row.get(col, ""), ms=col in _MS)


def collect(rt: Runtime) -> Iterator[Metric]:
    """Every promex family with its samples, from the runtime's live counters."""
    rows = stat_rows(rt)
    ns = _ns_label(rt)
    http = {px.name for px in rt.config.proxies if px.mode == "http"}
    checked = {(chk.srv.backend.name, chk.srv.name) for chk in rt.health.checks}
    _aggregate(rows)
    yield from _process(rt)
    for kind, table, svname in (
        ("frontend", FRONTEND, lambda s: s == "FRONTEND"),
        ("backend", BACKEND, lambda s: s == "BACKEND"),
        ("server", SERVER, lambda s: s not in ("FRONTEND", "BACKEND")),
    ):
        selected = [r for r in rows if svname(str(r["svname"]))]
        yield from _proxy_families(kind, table, selected, ns, http, checked)


def _aggregate(rows: list[dict[str, object]]) -> None:
    """The backends' agg_* gauges: how many of their servers are in each state."""
    servers: dict[str, dict[str, int]] = {}
    checks: dict[str, dict[str, int]] = {}
    for row in rows:
        sv = str(row["svname"])
        if sv in ("FRONTEND", "BACKEND"):
            continue
        px = str(row["pxname"])
        st = str(row.get("status", ""))
        st = "UP" if st == "no check" else st.split()[0] if st else "DOWN"
        servers.setdefault(px, {})[st] = servers.setdefault(px, {}).get(st, 0) + 1
        chk = str(row.get("check_status", ""))
        if chk:
            checks.setdefault(px, {})[chk] = checks.setdefault(px, {}).get(chk, 0) + 1
    for row in rows:
        if row["svname"] == "BACKEND":
            px = str(row["pxname"])
            row["_agg_agg_server_status"] = servers.get(px, {})
            row["_agg_agg_server_check_status"] = servers.get(px, {})
            row["_agg_agg_check_status"] = checks.get(px, {})
