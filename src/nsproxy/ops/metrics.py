"""Prometheus metrics (`prometheus-exporter ADDR:PORT`), HAProxy-exporter names plus `netns`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from nsproxy.addresses import SockAddr
from nsproxy.netns import Namespace
from nsproxy.ops.runtime_api import ADMIN, CommandSet, Session
from nsproxy.ops.stats import live_bytes, server_status
from nsproxy.runtime.backend import Server

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands
command = COMMANDS.command

_Family = GaugeMetricFamily | CounterMetricFamily
_SERVER_STATES = ("UP", "DOWN", "MAINT", "DRAIN", "NOLB", "no check")
# Families that describe the configuration or a state, not a worker's share: from worker 1.
_FROM_FIRST = (
    "_status",
    "_weight",
    "_active_servers",
    "_backup_servers",
    "_start_time_seconds",
    "_uptime_seconds",
    "_stopping",
    "_listeners",
)
_MAX_REQUEST = 16384


# key: (name after `haproxy_<kind>_`, help, a counter rather than a gauge)
_FAMILIES: dict[str, tuple[str, str, bool]] = {
    "status": ("status", "Current status of the service.", False),
    "queue": ("current_queue", "Number of current queued connections.", False),
    "cur": ("current_sessions", "Number of current sessions.", False),
    "max": ("max_sessions", "Maximum observed number of active sessions.", False),
    "lim": ("limit_sessions", "Configured session limit.", False),
    "tot": ("sessions", "Total number of sessions.", True),
    "conn": ("connections", "Total number of connections.", True),
    "in": ("bytes_in", "Current total of incoming bytes.", True),
    "out": ("bytes_out", "Current total of outgoing bytes.", True),
    "den": ("denied_connections", "Total number of requests denied by connection rules.", True),
    "econ": ("connection_errors", "Total number of connection errors.", True),
    "retry": ("retry_warnings", "Total number of retry warnings.", True),
    "redisp": ("redispatch_warnings", "Total number of redispatch warnings.", True),
    "act": ("active_servers", "Current number of active servers.", False),
    "bck": ("backup_servers", "Current number of backup servers.", False),
    "weight": ("weight", "Service weight.", False),
}


def _families(kind: str, labels: list[str], keys: str) -> dict[str, _Family]:
    """The `haproxy_<kind>_*` families named by the space-separated `keys`, in that order."""
    out: dict[str, _Family] = {}
    for key in keys.split():
        name, doc, counter = _FAMILIES[key]
        family = CounterMetricFamily if counter else GaugeMetricFamily
        out[key] = family(f"haproxy_{kind}_{name}", doc, labels=labels)
    return out


def _ns_label(namespaces: Iterable[Namespace | None]) -> str:
    return ",".join(sorted({ns.name for ns in namespaces if ns is not None}))


def _server_ns(srv: Server) -> str:
    if srv.cfg.use_client_netns:
        return "*"
    return srv.netns.name if srv.netns is not None else ""


class RuntimeCollector(Collector):
    """Reads the live counters of a Runtime at each scrape (on the event loop's thread)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        rt = self.rt
        live = live_bytes(rt)
        yield from self._process()
        yield from self._frontends(live)
        yield from self._backends(live)
        yield from self._netns(live)

    def _process(self) -> Iterator[Metric]:
        rt, g = self.rt, self.rt.config.global_
        values = [
            ("nbthread", "Number of started threads.", 1, False),
            ("start_time_seconds", "Start time in seconds.", rt.start_time, False),
            ("uptime_seconds", "How long ago this worker process was started.", 0, False),
            ("max_connections", "Maximum number of concurrent connections.", g.maxconn, False),
            ("current_connections", "Number of active sessions.", rt.stats.cur_conns, False),
            ("connections", "Total number of created sessions.", rt.stats.total_conns, True),
            ("stopping", "Non zero means stopping in progress.", int(rt.stopping), False),
            (
                "listeners",
                "Number of listeners.",
                sum(li.sock is not None for li in rt.listeners),
                False,
            ),
        ]
        for name, doc, value, counter in values:
            if name == "uptime_seconds":
                value = time.time() - rt.start_time
            family = CounterMetricFamily if counter else GaugeMetricFamily
            yield family(f"haproxy_process_{name}", doc, value=value)

    def _frontends(self, live: dict[object, tuple[int, int]]) -> Iterator[Metric]:
        m = _families("frontend", ["proxy", "netns"], "status cur max lim tot conn in out den")
        g = self.rt.config.global_
        for fe in self.rt.frontends.values():
            lv = [fe.name, _ns_label(li.netns for li in fe.listeners)]
            a, b = live.get(fe, (0, 0))
            opened = any(li.sock is not None for li in fe.listeners) and not self.rt.stopping
            m["status"].add_metric(lv, 1 if opened else 0)
            m["cur"].add_metric(lv, fe.stats.cur_conns)
            m["max"].add_metric(lv, fe.stats.max_conns)
            m["lim"].add_metric(lv, fe.cfg.maxconn or g.maxconn)
            m["tot"].add_metric(lv, fe.stats.total_conns)
            m["conn"].add_metric(lv, fe.stats.total_conns)
            m["in"].add_metric(lv, fe.stats.bytes_in + a)
            m["out"].add_metric(lv, fe.stats.bytes_out + b)
            m["den"].add_metric(lv, fe.stats.denied)
        yield from m.values()

    def _backends(self, live: dict[object, tuple[int, int]]) -> Iterator[Metric]:
        sl = ["proxy", "server", "netns"]
        b = _families(
            "backend",
            ["proxy", "netns"],
            "status queue cur max tot in out econ retry redisp act bck weight",
        )
        s: dict[str, _Family] = {
            "status": GaugeMetricFamily(
                "haproxy_server_status",
                "Current status of the service, per state label value.",
                labels=[*sl, "state"],
            ),
            **_families("server", sl, "cur max tot in out econ weight"),
        }
        for be in self.rt.backends.values():
            blv = [be.name, ",".join(sorted({_server_ns(x) for x in be.servers} - {""}))]
            active = [x for x in be.servers if x.usable() and not x.backup]
            backup = [x for x in be.servers if x.usable() and x.backup]
            a, o = live.get(be, (0, 0))
            b["status"].add_metric(blv, 1 if active or backup else 0)
            b["queue"].add_metric(blv, len(be.queue))
            b["cur"].add_metric(blv, be.stats.cur_conns)
            b["max"].add_metric(blv, be.stats.max_conns)
            b["tot"].add_metric(blv, be.stats.total_conns)
            b["in"].add_metric(blv, be.stats.bytes_in + a)
            b["out"].add_metric(blv, be.stats.bytes_out + o)
            b["econ"].add_metric(blv, be.stats.conn_errors)
            b["retry"].add_metric(blv, be.stats.retries)
            b["redisp"].add_metric(blv, be.stats.redispatches)
            b["act"].add_metric(blv, len(active))
            b["bck"].add_metric(blv, len(backup))
            b["weight"].add_metric(blv, sum(x.weight for x in (active or backup)))
            for srv in be.servers:
                slv = [be.name, srv.name, _server_ns(srv)]
                a, o = live.get(srv, (0, 0))
                state = server_status(srv)
                for st in _SERVER_STATES:
                    s["status"].add_metric([*slv, st], 1 if st == state else 0)
                s["cur"].add_metric(slv, srv.cur_conns)
                s["max"].add_metric(slv, srv.stats.max_conns)
                s["tot"].add_metric(slv, srv.stats.total_conns)
                s["in"].add_metric(slv, srv.stats.bytes_in + a)
                s["out"].add_metric(slv, srv.stats.bytes_out + o)
                s["econ"].add_metric(slv, srv.stats.conn_errors)
                s["weight"].add_metric(slv, srv.weight if srv.usable() else 0)
        yield from b.values()
        yield from s.values()

    def _netns(self, live: dict[object, tuple[int, int]]) -> Iterator[Metric]:
        labels = ["netns"]
        cur = GaugeMetricFamily(
            "nsproxy_netns_current_connections",
            "Client connections currently open in the namespace.",
            labels=labels,
        )
        tot = CounterMetricFamily(
            "nsproxy_netns_connections", "Client connections accepted.", labels=labels
        )
        bin_ = CounterMetricFamily(
            "nsproxy_netns_bytes_in", "Bytes received from clients.", labels=labels
        )
        bout = CounterMetricFamily(
            "nsproxy_netns_bytes_out", "Bytes sent to clients.", labels=labels
        )
        errors = CounterMetricFamily(
            "nsproxy_netns_errors",
            "Connections of the namespace that ended in an error (bad PROXY header, "
            "connect failure, timeout, reset).",
            labels=labels,
        )
        limit = GaugeMetricFamily(
            "nsproxy_netns_max_connections",
            "The namespace's own connection limit (namespace-pattern maxconn; 0: none).",
            labels=labels,
        )
        for ns in self.rt.registry:
            limit.add_metric([ns.name], ns.maxconn)
            errors.add_metric([ns.name], ns.errors)
            a, b = live.get(ns, (0, 0))
            cur.add_metric([ns.name], ns.conns)
            tot.add_metric([ns.name], ns.total_conns)
            bin_.add_metric([ns.name], ns.bytes_in + a)
            bout.add_metric([ns.name], ns.bytes_out + b)
        yield from (cur, tot, bin_, bout, errors, limit)


def exposition(rt: Runtime) -> bytes:
    """The text exposition of one runtime's counters."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(rt))
    return generate_latest(registry)


@command("_metrics")
def _metrics(session: Session, args: list[str]) -> str:
    """A worker's exposition, for the master to merge (admin level: the private socket)."""
    session.need(ADMIN)
    return exposition(session.rt).decode()


class _Merged(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def merge(texts: list[str], workers: int) -> bytes:
    """The workers' expositions as one: samples matched on name and labels, counters and
    limits summed (as the master's `show stat`), states and settings from worker 1."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for fam in text_string_to_metric_families(text):
            have = values.get(fam.name)
            if have is None:
                families[fam.name] = Metric(fam.name, fam.documentation, fam.type)
                have = values[fam.name] = {}
            summed = not fam.name.endswith(_FROM_FIRST)
            for smp in fam.samples:
                key = (smp.name, tuple(sorted(smp.labels.items())))
                if key not in have:
                    have[key] = smp.value
                elif summed:
                    have[key] += smp.value
    for name, fam in families.items():
        for (sample, labels), v in values[name].items():
            if name == "haproxy_process_nbthread":
                v = workers
            fam.add_sample(sample, dict(labels), v)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(list(families.values())))
    return generate_latest(registry)


def http_answer(request: bytes, body: Callable[[], bytes]) -> bytes | None:
    """The reply to an HTTP/1.x request (GET /metrics or /), or None while the request's
    head is incomplete; b"" means close without a reply (a head too long)."""
    if b"\r\n\r\n" not in request and b"\n\n" not in request:
        return b"" if len(request) > _MAX_REQUEST else None
    line = request.split(b"\n", 1)[0].decode("latin-1").split()
    method, path = [*line, "", ""][:2]
    if method not in ("GET", "HEAD"):
        code, reason, text = 405, "Method Not Allowed", b""
    elif path.split("?")[0] in ("/metrics", "/"):
        code, reason, text = 200, "OK", body()
        if method == "HEAD":
            text = b""
    else:
        code, reason, text = 404, "Not Found", b"Not Found\n"
    head = (
        f"HTTP/1.1 {code} {reason}\r\n"
        "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + text


def open_socket(addr: SockAddr) -> socket.socket:
    """The endpoint's listening socket, non-blocking."""
    sock = socket.socket(addr.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr.sockaddr())
        sock.listen(16)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Http(asyncio.Protocol):
    """One scrape: the request, then the reply, then close."""

    def __init__(self, exporter: MetricsExporter) -> None:
        self.exporter = exporter
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        reply = http_answer(bytes(self.buf), self.exporter.body)
        if reply is None or self.transport is None:
            return
        self.transport.write(reply)
        self.transport.close()


class MetricsExporter:
    """The HTTP endpoint; it runs on the event loop, so scrapes see consistent counters."""

    def __init__(self, rt: Runtime, addr: SockAddr) -> None:
        self.rt = rt
        self.addr = addr
        self.sock: socket.socket | None = None
        self.server: asyncio.AbstractServer | None = None

    def body(self) -> bytes:
        return exposition(self.rt)

    def open(self) -> None:
        self.sock = open_socket(self.addr)

    def start(self) -> None:
        if self.sock is None:
            return
        sock, self.sock = self.sock, None

        async def serve() -> None:
            self.server = await self.rt.loop.create_server(lambda: _Http(self), sock=sock)

        self.rt.loop.create_task(serve())

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
