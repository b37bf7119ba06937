"""Prometheus metrics (`prometheus-exporter ADDR:PORT`): promex's families plus `netns`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from nsproxy.addresses import SockAddr
from nsproxy.ops import promex
from nsproxy.ops.runtime_api import ADMIN, CommandSet, Session
from nsproxy.ops.stats import live_bytes

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands
command = COMMANDS.command

# Families that describe the configuration or a state, not a worker's share: from worker 1.
_FROM_FIRST = (
    "_status",
    "_weight",
    "_uweight",
    "_active_servers",
    "_backup_servers",
    "_start_time_seconds",
    "_uptime_seconds",
    "_stopping",
    "_listeners",
    "_last_change_seconds",
    "_last_session_seconds",
    "_average_seconds",
    "_check_code",
    "_check_duration_seconds",
    "_build_info",
    "_idle_time_percent",
    "_max_fds",
    "_max_sockets",
    "_relative_process_id",
    "_nbproc",
)
_MAX_REQUEST = 16384
_Key = tuple[str, tuple[tuple[str, str], ...]]


class RuntimeCollector(Collector):
    """Reads the live counters of a Runtime at each scrape (on the event loop's thread)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        yield from promex.collect(self.rt)
        yield from self._netns(live_bytes(self.rt))

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
    return promex.exposition_text(RuntimeCollector(rt).collect())


@command("_metrics")
def _metrics(session: Session, args: list[str]) -> str:
    """A worker's exposition, for the master to merge (admin level: the private socket)."""
    session.need(ADMIN)
    return exposition(session.rt).decode()


def merge(texts: list[str], workers: int) -> bytes:
    """The workers' expositions as one: samples matched on name and labels, counters and
    limits summed (as the master's `show stat`), states and settings from worker 1."""
    families: dict[str, Metric] = {}
    # per family: (sample name, sorted labels) -> (the labels in their order, the value)
    values: dict[str, dict[_Key, tuple[dict[str, str], float]]] = {}
    for text in texts:
        for fam in text_string_to_metric_families(text):
            have = values.get(fam.name)
            if have is None:
                families[fam.name] = Metric(fam.name, fam.documentation, fam.type)
                have = values[fam.name] = {}
            summed = not fam.name.endswith(_FROM_FIRST)
            for smp in fam.samples:
                key = (smp.name, tuple(sorted(smp.labels.items())))
                seen = have.get(key)
                if seen is None:
                    have[key] = (smp.labels, smp.value)
                elif summed:
                    have[key] = (seen[0], seen[1] + smp.value)
    for name, fam in families.items():
        for (sample, _), (labels, v) in values[name].items():
            if name == "haproxy_process_nbthread":
                v = workers
            fam.add_sample(sample, labels, v)
    return promex.exposition_text(families.values())


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
