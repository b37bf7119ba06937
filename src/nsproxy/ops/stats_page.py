"""The statistics page (`stats enable`, `stats uri`, ...) in HAProxy's layout, served in HTTP
mode as the runtime's "stats" page, plus nsproxy's per-namespace traffic and error plots."""

from __future__ import annotations

import base64
import html
import os
import time
import urllib.parse
from typing import TYPE_CHECKING

from nsproxy.http import answers
from nsproxy.ops import identity, stat_formats
from nsproxy.ops.netns_history import NetnsHistory, Rate
from nsproxy.ops.runtime_api import CliError
from nsproxy.ops.stats import (
    STAT_COLUMNS,
    find_server,
    info_fields,
    live_bytes,
    set_state,
    stat_rows,
)
from nsproxy.proto.h1.head import header_values
from nsproxy.sample import Verdict

if TYPE_CHECKING:
    from nsproxy.config.model_stats import StatsPageCfg
    from nsproxy.runtime.process import Runtime
    from nsproxy.runtime.stream import Stream

Row = dict[str, object]
UNAUTHORIZED = (
    b"<html><body><h1>401 Unauthorized</h1>\n"
    b"You need a valid user and password to access this content.\n</body></html>\n"
)
ACTIONS = ("ready", "drain", "maint")
_CSS = """
body { font-family: arial, helvetica, sans-serif; font-size: 12px; font-weight: normal;
       color: black; background: white; }
th, td { font-size: 10px; }
h1 { font-size: x-large; margin-bottom: 0.5em; }
h1 a { color: #ffffff; }
h1 { background: #0060c0; color: #ffffff; padding: 0.2em; }
h2 { font-size: large; color: #000040; }
h3 { font-size: 16px; color: #000040; }
table.tbl { border-collapse: collapse; border-style: none; }
table.tbl td, table.tbl th { border: 1px solid gray; padding: 1px 3px; text-align: right; }
table.tbl th.pxname { background: #b00040; color: #ffff40; font-weight: bold; text-align: left; }
table.tbl th.empty { border-style: none; background: white; }
tr.titre th { background: #20D0D0; }
tr.frontend, tr.backend { background: #e8e8d0; }
td.ac { text-align: center; }
.active_up { background: #c0ffc0; } .backup_up { background: #b0d0ff; }
.active_down { background: #ff9090; } .backup_down { background: #ff9090; }
.active_going_down { background: #ffffa0; } .backup_going_down { background: #ffd050; }
.active_going_up { background: #ffd020; } .backup_going_up { background: #d0d0d0; }
.active_draining, .backup_draining { background: #20a0ff; }
.maintain { background: #c07820; } .active_no_check, .backup_no_check { background: #e0e0e0; }
table.lgd { border-collapse: collapse; } table.lgd td { border: 1px solid gray; padding: 2px; }
table.lgd td.noborder { border-style: none; padding: 2px; white-space: nowrap; }
svg.plot { background: #f8f8f8; border: 1px solid gray; }
"""


# -- the HTTP side ----------------------------------------------------------------------------
def install(rt: Runtime) -> None:
    """Serves every proxy's `stats` page and samples the namespaces for its plots."""
    if not any(px.stats_page is not None for px in rt.config.proxies):
        return
    history = NetnsHistory(rt)
    rt.pages["stats"] = lambda s: serve(s, history)
    rt.loop.call_soon(history.start)


def serve(s: Stream, history: NetnsHistory) -> tuple[int, bytes] | None:
    """The stats page's answer to this request, or None when the request is not for it."""
    cfg = s.fe.cfg.stats_page
    txn = s.http
    if cfg is None or txn is None or txn.req is None:
        return None
    target = txn.req.target.decode("latin-1")
    if not target.startswith(cfg.uri):
        return None
    if cfg.auth and not _authorized(cfg, txn.req.headers):
        realm = cfg.realm.replace('"', "")
        head = (
            f"HTTP/1.1 401 Unauthorized\r\ncontent-length: {len(UNAUTHORIZED)}\r\n"
            "cache-control: no-cache\r\ncontent-type: text/html\r\n"
            f'www-authenticate: Basic realm="{realm}"\r\n\r\n'
        )
        return 401, head.encode("latin-1") + UNAUTHORIZED
    options = set(target[len(cfg.uri) :].split(";")[1:])
    admin = any(c(s) is Verdict.PASS for c in cfg.admin)
    if txn.req.method == b"POST":
        status = _admin_post(s, s.req_body, admin)
        where = f"{cfg.uri};st={status}"
        head = (
            "HTTP/1.1 303 See Other\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\n"
            f"content-length: 0\r\nlocation: {where}\r\n\r\n"
        )
        return 303, head.encode("latin-1")
    rt = s.rt
    if "csv" in options:
        body = stat_formats.stat_text(stat_rows(rt), STAT_COLUMNS).encode()
        ctype = "text/plain"
    else:
        body = render(rt, cfg, history, options, admin).encode("latin-1", "xmlcharrefreplace")
        ctype = "text/html"
    refresh = ""
    if cfg.refresh and "norefresh" not in options:  # (HAProxy sends it with the CSV too)
        refresh = f"refresh: {cfg.refresh}\r\n"
    head = f"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: {ctype}\r\n{refresh}"
    if txn.req.method == b"HEAD":  # the head alone, without a length or a chunked body
        return 200, head.encode("latin-1") + b"\r\n"
    head += "transfer-encoding: chunked\r\n\r\n"
    return 200, head.encode("latin-1") + answers.applet_body(body)


def _authorized(cfg: StatsPageCfg, headers: list[tuple[bytes, bytes]]) -> bool:
    for value in header_values(headers, b"authorization"):
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"basic":
            continue
        try:
            user, _, password = base64.b64decode(token.strip(), validate=True).partition(b":")
        except ValueError:
            continue
        pair = (user.decode("latin-1"), password.decode("latin-1"))
        if pair in cfg.auth:
            return True
    return False


def _admin_post(s: Stream, body: bytes, admin: bool) -> str:
    """Applies the page's admin form (b=backend, s=server..., action=...); HAProxy's st=."""
    if not admin:
        return "DENY"
    form = urllib.parse.parse_qs(body.decode("latin-1"))
    action = (form.get("action") or [""])[0]
    backend = (form.get("b") or [""])[0]
    servers = form.get("s") or []
    if action not in ACTIONS:
        return "ERRP"
    if not servers:
        return "NONE"
    done = 0
    for name in servers:
        try:
            be, srv = find_server(s.rt, f"{backend}/{name}")
        except CliError:
            continue
        set_state(s.rt, be, srv, action)
        done += 1
    return "DONE" if done == len(servers) else "PART" if done else "ERRP"


# -- the page -------------------------------------------------------------------------------
def _esc(v: object) -> str:
    return html.escape(str(v), quote=True)


def _human(sec: object) -> str:
    if not isinstance(sec, int) or sec < 0:
        return ""
    d, h, m, s = sec // 86400, sec % 86400 // 3600, sec % 3600 // 60, sec % 60
    if d:
        return f"{d}d{h}h"
    if h:
        return f"{h}h{m}m"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def render(
    rt: Runtime, cfg: StatsPageCfg, history: NetnsHistory, options: set[str], admin: bool
) -> str:
    """The whole page: process information and legend, one table per proxy, namespaces."""
    info = dict(info_fields(rt))
    title = "HAProxy" if cfg.show_node is None else (cfg.show_node or str(info["node"]))
    version = "" if cfg.hide_version else f" version {identity.VERSION}, released "
    version += "" if cfg.hide_version else str(identity.RELEASE_DATE)
    out = [
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN"\n'
        '"http://www.w3.org/TR/html4/loose.dtd">\n'
        f"<html><head><title>Statistics Report for {_esc(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        '<meta http-equiv="content-type" content="text/html; charset=iso-8859-1">\n'
        f'<style type="text/css"><!--{_CSS}--></style></head>\n'
        f"<body><h1>HAProxy{_esc(version)}</h1>\n"
        f"<h2>Statistics Report for pid {os.getpid()}</h2>\n"
        '<hr width="100%" class="hr">\n<h3>&gt; General process information</h3>\n'
    ]
    out.append(_general(info, cfg, options))
    rows = stat_rows(rt)
    hide_down = "up" in options
    for px in rt.config.proxies:
        if cfg.scope and px.name not in cfg.scope:
            continue
        mine = [r for r in rows if r["pxname"] == px.name]
        if hide_down:
            mine = [
                r for r in mine if r["svname"] in ("FRONTEND", "BACKEND") or r["status"] != "DOWN"
            ]
        out.append(
            _proxy_table(px.name, px.mode, px.id, px.is_frontend, px.is_backend, mine, cfg, admin)
        )
    out.append(_namespaces(rt, history))
    out.append("</body></html>\n")
    return "".join(out)


def _general(info: dict[str, object], cfg: StatsPageCfg, options: set[str]) -> str:
    uri = _esc(cfg.uri)
    legend = (
        '<table class="lgd"><tr>'
        '<td class="active_up">&nbsp;</td><td class="noborder">active UP </td>'
        '<td class="backup_up">&nbsp;</td><td class="noborder">backup UP </td></tr><tr>'
        '<td class="active_going_down"></td><td class="noborder">active UP, going down </td>'
        '<td class="backup_going_down"></td><td class="noborder">backup UP, going down </td>'
        "</tr><tr>"
        '<td class="active_going_up"></td><td class="noborder">active DOWN, going up </td>'
        '<td class="backup_going_up"></td><td class="noborder">backup DOWN, going up </td>'
        "</tr><tr>"
        '<td class="active_down"></td><td class="noborder">active or backup DOWN &nbsp;</td>'
        '<td class="active_no_check"></td><td class="noborder">not checked </td></tr><tr>'
        '<td class="maintain"></td><td class="noborder" colspan="3">active or backup DOWN for '
        "maintenance (MAINT) &nbsp;</td></tr><tr>"
        '<td class="active_draining"></td><td class="noborder" colspan="3">active or backup SOFT '
        "STOPPED for maintenance &nbsp;</td></tr></table>\n"
        'Note: "NOLB"/"DRAIN" = UP with load-balancing disabled.'
    )
    return (
        '<table border=0><tr><td align="left" nowrap width="1%">\n'
        f"<p><b>pid = </b> {info['Pid']} (process #1, nbproc = 1, "
        f"nbthread = {info['Nbthread']})<br>\n"
        f"<b>uptime = </b> {_esc(info['Uptime'])}<br>\n"
        f"<b>system limits:</b> memmax = unlimited; ulimit-n = {info['Ulimit-n']}<br>\n"
        f"<b>maxsock = </b> {info['Maxsock']}; <b>maxconn = </b> {info['Maxconn']}; "
        f"<b>maxpipes = </b> {info['Maxpipes']}<br>\n"
        f"current conns = {info['CurrConns']}; current pipes = 0/0; "
        f"conn rate = {info['ConnRate']}/sec; bit rate = 0.000 kbps<br>\n"
        f"Running tasks: 0/{info['Tasks']}; idle = {info['Idle_pct']} %<br>\n"
        f'</td><td align="center" nowrap>\n{legend if cfg.show_legends else ""}</td>'
        '<td align="left" valign="top" nowrap width="1%"><b>Display option:</b>'
        '<ul style="margin-top: 0.25em;">'
        f"<li><a href=\"{uri};up\">Hide 'DOWN' servers</a><br>\n"
        f'<li><a href="{uri};norefresh">Disable refresh</a><br>\n'
        f'<li><a href="{uri}">Refresh now</a><br>\n'
        f'<li><a href="{uri};csv;norefresh">CSV export</a><br>\n'
        "</ul></td></tr></table>\n"
    )


_COLUMNS = (
    "Cur Max Limit Cur Max Limit Cur Max Limit Total LbTot Last In Out Req Resp Req "
    "Conn Resp Retr Redis Status LastChk Wght Act Bck Chk Dwn Dwntme Thrtle"
)
_HEAD = (
    '<tr class="titre"><th rowspan=2></th><th rowspan=2></th><th colspan=3>Queue</th>'
    "<th colspan=3>Session rate</th><th colspan=6>Sessions</th><th colspan=2>Bytes</th>"
    "<th colspan=2>Denied</th><th colspan=3>Errors</th><th colspan=2>Warnings</th>"
    "<th colspan=9>Server</th></tr>\n"
    '<tr class="titre">' + "".join(f"<th>{h}</th>" for h in _COLUMNS.split()) + "</tr>\n"
)


def _row_class(row: Row) -> str:
    backup = row.get("bck") == 1
    kind = "backup" if backup else "active"
    status = str(row.get("status", ""))
    if status == "MAINT":
        return "maintain"
    if status == "DRAIN":
        return f"{kind}_draining"
    if status == "no check":
        return f"{kind}_no_check"
    return f"{kind}_up" if status.startswith("UP") else f"{kind}_down"


_BOUT = 13  # the bytes out among the cells


def _cells(row: Row, kind: str) -> list[str]:
    g = row.get
    last = _human(g("lastsess")) if g("lastsess", -1) != -1 else ""
    common = [
        g("qcur", ""),
        g("qmax", ""),
        g("qlimit", "") if kind == "server" else "",
        g("rate", ""),
        g("rate_max", ""),
        g("rate_lim", "") if kind == "frontend" else "",
        g("scur", ""),
        g("smax", ""),
        g("slim", ""),
        g("stot", ""),
        g("lbtot", ""),
        last,
        g("bin", ""),
        g("bout", ""),
        g("dreq", ""),
        g("dresp", ""),
        g("ereq", ""),
        g("econ", ""),
        g("eresp", ""),
        g("wretr", ""),
        g("wredis", ""),
    ]
    if kind == "frontend":
        status = [g("status", ""), "", "", "", "", "", "", "", ""]
    else:
        chk = ""
        if g("check_status"):
            chk = f"{g('check_status')} in {g('check_duration', 0)}ms"
        lastchg = _human(g("lastchg"))
        status = [
            f"{lastchg} {g('status', '')}".strip(),
            chk,
            g("weight", ""),
            g("act", ""),
            g("bck", ""),
            g("chkfail", ""),
            g("chkdown", ""),
            _human(g("downtime")),
            "-",
        ]
    cells = [_esc(v) for v in common + status]
    if kind != "server":
        cells[_BOUT] = _bytes_out(row)
    return cells


def _bytes_out(row: Row) -> str:
    """A FRONTEND/BACKEND row's bytes out, with the compression counters in a tooltip once
    a response went through the compression filter (HAProxy's labels and percentages)."""
    out = _int(row.get("bout"))
    c_in, c_out, byp = (
        _int(row.get("comp_in")),
        _int(row.get("comp_out")),
        _int(row.get("comp_byp")),
    )
    if not c_in and not byp:
        return str(out)
    saved = c_in - c_out
    ratio = c_out * 100 // c_in if c_in else 0
    saved_pct = saved * 100 // out if out else 0
    return (
        f"<u>{out}<div class=tips><table class=det>"
        f"<tr><th>Response bytes in:</th><td>{out}</td></tr>"
        f"<tr><th>Compression in:</th><td>{c_in}</td></tr>"
        f"<tr><th>Compression out:</th><td>{c_out}</td><td>({ratio}%)</td></tr>"
        f"<tr><th>Compression bypass:</th><td>{byp}</td></tr>"
        f"<tr><th>Total bytes saved:</th><td>{saved}</td><td>({saved_pct}%)</td></tr>"
        "</table></div></u>"
    )


def _int(v: object) -> int:
    return v if isinstance(v, int) else 0


def _proxy_table(
    name: str,
    mode: str,
    iid: int,
    fe: bool,
    be: bool,
    rows: list[Row],
    cfg: StatsPageCfg,
    admin: bool,
) -> str:
    cap = "frontend" if fe and not be else "backend" if be and not fe else "proxy"
    anchor = _esc(name)
    admin_here = admin and be
    out = []
    if admin_here:
        out.append('<form method="post">')
    out.append(
        '<table class="tbl" width="100%">\n<tr class="titre"><th class="pxname" width="10%">'
        f'<a name="{anchor}"></a><u><a class=px href="#{anchor}">{anchor}</a>'
        f"<div class=tips>cap: {cap}, mode: {_esc(mode)}, id: {iid}</div></u></th>"
        '<th class="empty" width="90%"></th></tr>\n</table>\n'
        f'<table class="tbl" width="100%">\n{_HEAD}'
    )
    for row in rows:
        sv = str(row["svname"])
        if sv == "FRONTEND":
            cls, label, kind = "frontend", "Frontend", "frontend"
        elif sv == "BACKEND":
            cls, label, kind = "backend", "Backend", "backend"
        else:
            cls, label, kind = _row_class(row), sv, "server"
        check = ""
        if admin_here and kind == "server":
            check = f'<input type="checkbox" name="s" value="{_esc(sv)}">'
        cells = "".join(f"<td>{c}</td>" for c in _cells(row, kind))
        out.append(
            f'<tr class="{cls}"><td>{check}</td><td class=ac><a name="{anchor}/{_esc(label)}"></a>'
            f"{_esc(label)}</td>{cells}</tr>\n"
        )
    out.append("</table>")
    if admin_here:
        options = "".join(f'<option value="{a}">Set state to {a.upper()}</option>' for a in ACTIONS)
        out.append(
            f'Choose the action to perform on the checked servers : <select name="action">'
            f'<option value="">Choose an action...</option>{options}</select>'
            f'<input type="hidden" name="b" value="{anchor}">'
            '&nbsp;<input type="submit" value="Apply"></form>'
        )
    out.append("<p>\n")
    return "".join(out)


# -- nsproxy's addition: the namespaces -------------------------------------------------------
PLOT_W, PLOT_H = 480, 90


def _polyline(rates: list[Rate], value: str, color: str, now: float, span: float) -> str:
    if not rates:
        return ""
    top = max(max(getattr(r, value) for r in rates), 1e-9)
    points = []
    for r in rates:
        x = PLOT_W - (now - r.at) / span * PLOT_W
        y = PLOT_H - 4 - getattr(r, value) / top * (PLOT_H - 8)
        points.append(f"{x:.1f},{y:.1f}")
    return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(points)}"/>'


def _plot(title: str, rates: list[Rate], value: str, color: str, now: float, span: float) -> str:
    peak = max((getattr(r, value) for r in rates), default=0.0)
    return (
        f'<div class="plotbox"><b>{_esc(title)}</b> (peak {peak:.1f}/s)<br>'
        f'<svg class="plot" width="{PLOT_W}" height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}">'
        f'<line x1="0" y1="{PLOT_H - 4}" x2="{PLOT_W}" y2="{PLOT_H - 4}" stroke="#c0c0c0"/>'
        f"{_polyline(rates, value, color, now, span)}</svg></div>"
    )


def _namespaces(rt: Runtime, history: NetnsHistory) -> str:
    live = live_bytes(rt)
    window = history.every * history.keep
    now = rt.clock.time()
    oldest = min((ring[0].at for ring in history.series.values() if ring), default=now)
    span = min(window, max(5 * history.every, now - oldest))  # the plots fill their width
    out = [
        "<h3>&gt; Network namespaces</h3>\n",
        f"<p>Plots: up to the last {int(window // 60)} minutes (now {int(span)}s), one sample "
        f"every {history.every:g}s ({time.strftime('%H:%M:%S')}).</p>\n",
        '<table class="tbl ns" width="100%"><tr class="titre"><th>Namespace</th><th>Inode</th>'
        "<th>State</th><th>Cur conns</th><th>Total conns</th><th>Bytes in</th>"
        "<th>Bytes out</th><th>Errors</th><th>Samples</th></tr>\n",
    ]
    plots = []
    for ns in rt.registry:
        a, b = live.get(ns, (0, 0))
        samples = len(history.series.get(ns.name, ()))
        out.append(
            f"<tr><td class=ac>{_esc(ns.name)}</td><td>{ns.inode}</td>"
            f"<td class=ac>{_esc(rt.registry.state(ns))}</td><td>{ns.conns}</td>"
            f"<td>{ns.total_conns}</td><td>{ns.bytes_in + a}</td><td>{ns.bytes_out + b}</td>"
            f"<td>{ns.errors}</td><td class=samples>{samples}</td></tr>\n"
        )
        rates = history.rates(ns.name)
        plots.append(
            f'<div class="netns" id="netns-{_esc(ns.name)}"><h4>{_esc(ns.name)}</h4>'
            + _plot("traffic (bytes/s)", rates, "bytes", "#e07000", now, span)
            + _plot("connections/s", rates, "conns", "#20a020", now, span)
            + _plot("errors/s", rates, "errors", "#c00000", now, span)
            + "</div>\n"
        )
    out.append("</table>\n")
    out += plots
    return "".join(out)


__all__ = ["install", "render", "serve"]
