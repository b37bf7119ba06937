"""The running process: builds runtime objects from the config, owns limits, logs and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Callable

import nsproxy.config.keywords.server_state as server_state_files
import nsproxy.ops.admin_log as admin_log
import nsproxy.ops.stat_counters as stat_counters
from nsproxy.config.model import Config
from nsproxy.netns import Namespace, NamespaceRegistry
from nsproxy.ops import log
from nsproxy.ops.log import LEVELS, LOG_INFO, Logger, Sink, addr_text
from nsproxy.proto.h1.head import Limits
from nsproxy.runtime import relay, server_state, stickiness
from nsproxy.runtime.backend import Backend, Server
from nsproxy.runtime.clock import Clock
from nsproxy.runtime.health import HealthChecks
from nsproxy.runtime.listener import Listener
from nsproxy.runtime.netns_watch import NetnsWatch
from nsproxy.runtime.objects import Counters, Frontend
from nsproxy.runtime.pool import IdlePool
from nsproxy.runtime.stream import Stream
from nsproxy.runtime.tables import StickTables
from nsproxy.sample.logformat import (
    CLF_FORMAT,
    HTTPLOG_FORMAT,
    TCPLOG_FORMAT,
    accept_date,
    compile_logformat,
)
from nsproxy.sample.types import Sample
from nsproxy.stick.freq import FreqCtr


class Runtime:
    """Everything one nsproxy process runs: listeners, backends, streams, counters."""

    def __init__(
        self,
        config: Config,
        loop: asyncio.AbstractEventLoop,
        registry: NamespaceRegistry | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.loop = loop
        self.clock: Clock = clock or loop
        self.registry = registry or NamespaceRegistry()
        self.stats = Counters()
        # the bytes in and out of the compressor, per second (`show info` CompressBpsIn/Out)
        self.comp_bps_in = FreqCtr()
        self.comp_bps_out = FreqCtr()
        self.streams: set[Stream] = set()
        self.frontends: dict[str, Frontend] = {}
        self.backends: dict[str, Backend] = {}
        self.listeners: list[Listener] = []
        self.paused_for_limit: list[Listener] = []
        self.unknown_netns = 0
        self.unlogged_requests = 0  # first requests that never began, kept out of the logs
        self.stopping = False
        self.proc_vars: dict[str, Sample] = {}
        self.idle_pool = IdlePool(loop)
        # `http-request use-service NAME`: the body each service answers with (set by ops)
        self.services: dict[str, Callable[[Runtime], bytes]] = {}
        # pages a proxy serves itself (`stats uri`): status and response, None if not theirs
        self.pages: dict[str, Callable[[Stream], tuple[int, bytes] | None]] = {}
        g = config.global_
        self.h1_limits = Limits.from_tune(g.bufsize, g.maxrewrite, g.maxhdr)
        self.httplog_format = compile_logformat(HTTPLOG_FORMAT, http=True, mode_http=True)
        self.clf_format = compile_logformat(CLF_FORMAT, http=True, mode_http=True)
        self.tcplog_format = compile_logformat(TCPLOG_FORMAT, http=True, mode_http=True)
        self.backend_rules = any(
            px.is_backend and (px.rules.tcp_request_content or px.rules.use_server)
            for px in config.proxies
        )
        self.start_time = time.time()
        self._sinks: dict[object, Sink] = {}
        self._stopped = asyncio.Event()
        self._on_idle: list[Callable[[], None]] = []
        self.on_stop: list[Callable[[], None]] = []  # runtime API, metrics: closed on stop
        self.fds_exported = False  # listeners handed to a new process: keep UNIX paths
        self.netns_watch: NetnsWatch | None = None
        self.health = HealthChecks(self)
        relay.set_buffer_size(config.global_.bufsize)
        self.maxconn = config.global_.maxconn
        relay.set_pipes(config.global_.maxpipes or config.global_.maxconn // 4)
        # stick tables (runtime/tables.py): built once, by name in declaration order; peers
        # sections start with start(), teach a successor on soft stop (holding the stop)
        self.stick = StickTables(config, self.clock)
        self.tables = self.stick.tables
        self.stop_holds = 0
        self.tls_state: object | None = None  # runtime/tls_wire.py's TlsState, made on first use

    # -- building -----------------------------------------------------------------------------
    def _ns(self, name: str | None) -> Namespace | None:
        return None if name is None else self.registry.open(name)

    def build(self) -> None:
        g = self.config.global_
        for name in self.config.namespaces:
            self.registry.open(name)
        restored = server_state_files.restored(self.config)
        for px in self.config.proxies:
            if px.disabled:
                continue
            logger = Logger.build(
                px.logs,
                g.log_tag,
                self._sinks,  # type: ignore[arg-type]
                g.log_send_hostname,
            )
            if px.is_backend:
                be = Backend(px, logger=logger)
                servers = [Server(s, be, self._ns(s.namespace)) for s in px.servers]
                if px.name in restored:
                    server_state.put_back(servers, restored[px.name])
                be.set_servers(servers)
                self.backends[px.name] = be
        templates = {p.template for p in self.config.namespace_patterns}
        for px in self.config.proxies:
            if px.disabled or not px.is_frontend:
                continue
            target = self.backends.get(px.name) if px.is_backend else None
            if px.default_backend is not None:
                target = self.backends.get(px.default_backend)
            logger = Logger.build(
                px.logs,
                g.log_tag,
                self._sinks,  # type: ignore[arg-type]
                g.log_send_hostname,
            )
            fe = Frontend(px, target, logger)
            for bind in () if px.name in templates else px.binds:
                ns = self._ns(bind.namespace)
                for i, addr in enumerate(bind.addrs):
                    fe.listeners.append(Listener(self, fe, bind, addr, bind.id + i, ns))
            self.frontends[px.name] = fe
            self.listeners.extend(fe.listeners)

    def open_listeners(self, inherited: dict[Listener, socket.socket] | None = None) -> bool:
        """Opens every listener, adopting the sockets in `inherited` (taken out of it).

        Returns False, after HAProxy's alert for each, when some address could not be bound.
        """
        ok = True
        inherited = {} if inherited is None else inherited
        for li in self.listeners:
            try:
                li.open(inherited.pop(li, None))
            except OSError as exc:
                ok = False
                kind = "listen" if li.frontend.cfg.is_backend else "frontend"
                log.alert(
                    f"Binding [{li.bind.where}] for {kind} {li.frontend.name}: "
                    f"cannot bind socket ({exc.strerror}) for [{li.addr}]"
                )
        return ok

    def open_peers(self) -> bool:
        """Binds the local peers' listeners (runtime/tables.py); False after the alert."""
        return self.stick.open_peers(self.loop, self)

    def start(self) -> None:
        for li in self.listeners:
            li.resume()
        if self.config.namespace_patterns or len(self.registry):
            try:
                self.netns_watch = NetnsWatch(self)
                self.netns_watch.start()
            except OSError as exc:
                if self.config.namespace_patterns:
                    raise
                log.warning(
                    f"not watching {self.registry.run_dir} ({exc.strerror}): "
                    "namespace deletions will not be logged."
                )
                self.netns_watch = None
        self.health.start()
        self.stick.start(self.loop, self)

    # -- limits -------------------------------------------------------------------------------
    def full(self, fe: Frontend) -> bool:
        return self.stats.cur_conns >= self.maxconn or fe.stats.cur_conns >= fe.maxconn

    def pause_for_limit(self, li: Listener) -> None:
        li.pause()
        self.paused_for_limit.append(li)

    def accept_resource_error(self, li: Listener, exc: OSError) -> None:
        log.alert(
            f"Proxy {li.frontend.name} reached the file descriptor or memory limit "
            f"({exc.strerror}); accepting again in 100 ms."
        )
        li.pause()

        def again() -> None:
            if not self.stopping:
                li.resume()

        self.loop.call_later(0.1, again)

    def accepted(self, li: Listener, csock: socket.socket, peer: object) -> None:
        fe = li.frontend
        src = peer if isinstance(peer, tuple) else None
        csock.setblocking(False)
        if li.addr.family != socket.AF_UNIX:
            # as HAProxy: a client already gone (EINVAL, ECONNRESET) is met by the first read
            with contextlib.suppress(OSError):
                csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = Stream(self, li, csock, src)
        self.streams.add(stream)
        self.stats.cur_conns += 1
        self.stats.total_conns += 1
        fe.stats.cur_conns += 1
        fe.stats.total_conns += 1
        fe.stats.max_conns = max(fe.stats.max_conns, fe.stats.cur_conns)
        stat_counters.session(fe.stats, self.stats, conn=True)
        ns = li.netns
        if ns is not None:
            ns.conns += 1
            ns.total_conns += 1
        if li.bind.tls is None or not li.bind.tls.enabled:  # TLS: after the handshake
            self.log_connect(stream)
        stream.start()

    def log_connect(self, stream: Stream) -> None:
        """`Connect from` of a frontend without a log format, as HAProxy logs a new stream."""
        fe = stream.fe
        httplog = fe.cfg.http is not None and fe.cfg.http.httplog
        if fe.logger and not fe.cfg.tcplog and fe.cfg.log_format is None and not httplog:
            ci, cp = addr_text(stream.src)
            fi, fp = addr_text(stream.local_addr())
            fe.logger.emit(LOG_INFO, f"Connect from {ci}:{cp} to {fi}:{fp} ({fe.name}/TCP)")

    # -- end of a stream ------------------------------------------------------------------
    def stream_closed(self, stream: Stream) -> None:
        if stream not in self.streams:
            return
        self.streams.discard(stream)
        self.stats.cur_conns -= 1
        stream.fe.stats.cur_conns -= 1
        ns = stream.cli.netns
        if ns is not None:
            ns.conns -= 1
            if stream.termination != "--":
                ns.errors += 1
        if not (stream.quiet and stream.http is not None):  # (else counted when it ended)
            self.txn_done(stream)
        stickiness.stream_closed(stream)
        while self.paused_for_limit and not self.stopping:
            li = self.paused_for_limit.pop()
            li.resume()
        if self.stopping:
            self._check_stopped()

    def txn_done(self, stream: Stream) -> None:
        """A TCP stream, or one HTTP request, ended: byte counters, the log line, the server.

        The one place where bytes are counted and a server slot is given back.
        """
        bytes_in, bytes_out = stream.bytes_in, stream.bytes_out
        fe = stream.fe
        fe.stats.bytes_in += bytes_in
        fe.stats.bytes_out += bytes_out
        stat_counters.txn_ended(stream)
        ns = stream.cli.netns
        if ns is not None:
            ns.bytes_in += bytes_in
            ns.bytes_out += bytes_out
        srv = stream.server
        if srv is not None:
            srv.stats.bytes_in += bytes_in
            srv.stats.bytes_out += bytes_out
            srv.backend.stats.bytes_in += bytes_in
            srv.backend.stats.bytes_out += bytes_out
        stickiness.txn_done(stream)
        if stream.logged:
            stream.ending = True
            self._log_stream(stream)
            stream.ending = False
        if srv is not None:
            srv.backend.release(srv)

    def _log_stream(self, s: Stream) -> None:
        fe = s.listener.frontend
        logger = fe.logger
        if not logger:
            return
        if s.http is not None:
            self._log_http(s)
            return
        # `option httplog` in TCP mode falls back to tcplog, as HAProxy warns at load
        httplog = fe.cfg.http is not None and fe.cfg.http.httplog
        if not (fe.cfg.tcplog or httplog or fe.cfg.log_format is not None):
            return
        if fe.cfg.dontlognull and s.bytes_in == 0 and s.bytes_out == 0 and s.termination == "--":
            return
        if fe.cfg.log_format is not None:
            logger.emit(LOG_INFO, fe.cfg.log_format(s))
            return
        be = s.backend
        srv = s.server
        ci, cp = addr_text(s.cli.src)
        tt = int((self.clock.time() - s.t0) * 1000)
        rc = ("+" if s.redispatched else "") + str(s.retries)
        # As HAProxy logs: this stream still counts in %ac/%fc, no longer in %bc/%sc.
        bc = (be.stats.cur_conns - (srv is not None)) if be else 0
        sc = srv.cur_conns - 1 if srv else 0
        line = (
            f"{ci}:{cp} [{accept_date(s.start_ts)}] {fe.name} "
            f"{be.name if be else fe.name}/{srv.name if srv else '<NOSRV>'} "
            f"{s.tw if (srv or s.tw) else -1}/{s.tc}/{tt} {s.bytes_out} {s.termination} "
            f"{self.stats.cur_conns + 1}/{fe.stats.cur_conns + 1}/{bc}/{sc}/{rc} 0/0"
        )
        logger.emit(LOG_INFO, line)

    def metrics_exposition(self) -> bytes:
        """The Prometheus exposition (`http-request use-service prometheus-exporter`)."""
        from nsproxy.ops import metrics

        return metrics.exposition(self)

    def _log_http(self, s: Stream) -> None:
        """One request's line: log-format, else httplog (or clf), else nothing."""
        fe = s.fe
        txn = s.http
        assert txn is not None
        if txn.log_level == "silent":
            return
        cfg = fe.cfg
        fmt = cfg.log_format
        if fmt is None:
            http = fe.http  # (none on a TCP frontend whose stream became HTTP)
            if http is not None and http.httplog and not http.clf:
                if cfg.dontlognull and txn.t_first < 0 and s.termination == "--":
                    return
                fe.logger.emit(LEVELS.get(txn.log_level or "", LOG_INFO), httplog_line(s))
                return
            if http is not None and http.httplog:
                fmt = self.clf_format
            elif cfg.tcplog or (cfg.http is not None and cfg.http.httplog):
                # `option tcplog` on an HTTP frontend, or a TCP frontend (where `option
                # httplog` falls back to tcplog): HAProxy logs the TCP format
                fmt = self.tcplog_format
            else:
                return
        if cfg.dontlognull and txn.t_first < 0 and s.termination == "--":
            return
        level = LEVELS.get(txn.log_level or "", LOG_INFO)
        fe.logger.emit(level, fmt(s))

    # -- stopping -------------------------------------------------------------------------
    def soft_stop(self) -> None:
        """Closes listeners; the process ends when the last connection ends."""
        if self.stopping:
            return
        self.stopping = True
        self.health.stop()
        self._run_on_stop()
        for li in self.listeners:
            li.close()
        admin_log.proxies_stopped(self)
        log.warning("Proxies stopped; waiting for the remaining connections to finish.")
        for stream in list(self.streams):  # keep-alive connections between two requests
            if stream.idle_between_requests:
                stream.finish_early()
        self.idle_pool.close()
        self.stick.soft_stop()
        self._check_stopped()
        hard = self.config.global_.hard_stop_after
        if hard is not None:
            self.loop.call_later(hard, self.hard_stop)

    def hold_stop(self) -> None:
        """Something besides streams keeps a soft-stopping process alive (a peers lesson)."""
        self.stop_holds += 1

    def release_stop(self) -> None:
        self.stop_holds -= 1
        if self.stopping:
            self._check_stopped()

    def _check_stopped(self) -> None:
        if not self.streams and self.stop_holds <= 0:
            self._stopped.set()

    def hard_stop(self) -> None:
        self.stopping = True
        self._run_on_stop()
        for li in self.listeners:
            li.close()
        for s in list(self.streams):
            s.close()
        self._stopped.set()

    def _run_on_stop(self) -> None:
        hooks, self.on_stop = self.on_stop, []
        for hook in hooks:
            hook()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def install_signals(self) -> None:
        self.loop.add_signal_handler(signal.SIGTERM, self.hard_stop)
        self.loop.add_signal_handler(signal.SIGINT, self.hard_stop)
        self.loop.add_signal_handler(signal.SIGUSR1, self.soft_stop)
        self.loop.add_signal_handler(signal.SIGTTOU, self._pause_listeners)
        self.loop.add_signal_handler(signal.SIGTTIN, self._resume_listeners)

    def _pause_listeners(self) -> None:
        for li in self.listeners:
            li.pause()

    def _resume_listeners(self) -> None:
        if not self.stopping:
            for li in self.listeners:
                li.resume()

    def close(self) -> None:
        self.health.stop()
        self._run_on_stop()
        self.stick.close()
        if self.netns_watch is not None:
            self.netns_watch.stop()
        for li in self.listeners:
            li.close()
        for s in list(self.streams):
            s.close()
        self.idle_pool.close()
        for sink in self._sinks.values():
            sink.close()
        self.registry.close()


def listener_key(li: Listener) -> str:
    """Identifies a listener across reloads: frontend, namespace and address."""
    ns = li.netns.name if li.netns is not None else ""
    return f"{li.frontend.name}|{ns}|{li.addr}"


def _captures(values: list[str | None]) -> str:
    return "{" + "|".join([v or "" for v in values]) + "}" if values else ""


def httplog_line(s: Stream) -> str:
    """`option httplog`'s line: what HTTPLOG_FORMAT compiled renders, read natively from the
    stream (the format is HAProxy's fixed one; a test compares both on the same traffic)."""
    txn = s.http
    assert txn is not None
    src = s.cli.src
    ci, cp = addr_text(src) if src is not None else ("unknown", "unknown")
    ft = s.fe.name + ("~" if s.cli.facts is not None else "")
    be = s.backend
    b = be.name if be is not None else s.fe.name
    srv = s.server
    if srv is not None:
        sv = srv.name
    elif txn.applet is not None:
        sv = f"<{txn.applet}>"
    else:
        sv = "<NOSRV>"
    rc = ("+" if s.redispatched else "") + str(s.retries)
    tail = " ".join(
        [x for x in (_captures(txn.captures_req), _captures(txn.captures_res)) if x]
        + [f'"{txn.req_line or "<BADREQ>"}"']
    )
    return (
        f"{ci}:{cp} [{accept_date(s.request_ts)}] {ft} {b}/{sv} "
        f"{s.t_request}/{s.t_queue}/{s.tc}/{s.t_response}/{s.t_active} {txn.status} "
        f"{s.bytes_out} - - {s.termination}{txn.ck_cli}{txn.ck_srv} "
        f"{s.conn_process}/{s.conn_frontend}/{s.conn_backend}/{s.conn_server}/{rc} "
        f"{s.queue_server}/{s.queue_backend} {tail}"
    )
