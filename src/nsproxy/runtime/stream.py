"""One client connection's life: analysers, server choice, connect, the mux, close and log."""

from __future__ import annotations

import contextlib
import enum
import errno
import ipaddress
import resource
import select
import socket
import struct
import time
from collections.abc import Callable, MutableMapping, MutableSequence
from typing import TYPE_CHECKING, Any

from nsproxy import proxy_protocol as pp
from nsproxy.addresses import PortMode
from nsproxy.config.model_http import AddrHeader, HttpCfg
from nsproxy.netns import Namespace, NetnsError
from nsproxy.ops.log import LEVELS, LOG_ERR, LOG_INFO, addr_text, alert
from nsproxy.proto.h1.case_adjust import adjust_head, case_map
from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import RequestHead, ResponseHead, serialize_request
from nsproxy.proto.h1.reader import Data, Event, RequestReader, ResponseReader
from nsproxy.proto.h1.sniff import Sniffed, sniff_again
from nsproxy.runtime import connect, http_ana, poller, relay, tls_wire
from nsproxy.runtime.analysers import Verdict
from nsproxy.runtime.conn import Addr, Connection
from nsproxy.runtime.deadline import Deadline
from nsproxy.runtime.http_txn import NO_EVENTS, HttpTxn
from nsproxy.runtime.mux import Mux
from nsproxy.runtime.mux_h1 import AnswerMux, H1Mux
from nsproxy.runtime.mux_pt import PassThroughMux
from nsproxy.runtime.pool import may_share
from nsproxy.runtime.stickiness import new_sticks, sticky_server
from nsproxy.sample.logformat import accept_date

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Server
    from nsproxy.runtime.listener import Listener
    from nsproxy.runtime.process import Runtime
    from nsproxy.sample.types import Sample
    from nsproxy.tls.fetches import HandshakeFacts

_LINGER_RST = struct.pack("ii", 1, 0)
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_NO_DATA = bytearray()  # never written: a stream without analysers never reads into `req`


class Phase(enum.IntEnum):
    """Where a stream is; each phase owns the stream's one timer for its own purpose."""

    ANALYSE = 0  # analysers read client bytes (PROXY header, rules); timer: their delay
    QUEUED = 1  # waiting in the backend queue; timer: timeout queue
    CONNECT = 2  # connecting, or waiting to retry; timer: timeout connect / turn-around
    MUX = 3  # the mux moves bytes; timer: the idle timeouts
    CLOSED = 4


def _resource_message(proxy: str, err: int | None) -> str:
    """HAProxy's words when a server socket cannot be had for lack of fds or memory."""
    maxsock = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if err == errno.EMFILE:
        what, hint = "process FD limit", "Please check 'ulimit-n' and restart."
    elif err == errno.ENFILE:
        what, hint = "system FD limit", "Please check system tunables."
    else:
        what, hint = "system memory limit", "Please check system tunables."
    return f"Proxy {proxy} reached {what} (maxsock={maxsock}). {hint}"


def _log_bind_error(srv: Server, exc: connect.SourceBindError) -> None:
    """HAProxy's emergency line on the backend's log, and an alert that adds the reason."""
    what = "tproxy source" if exc.foreign else "source"
    msg = f"Cannot bind to {what} address before connect() for backend {srv.backend.name}."
    alert(f"{msg} Aborting. ({exc.strerror})")
    srv.backend.logger.emit(LEVELS["emerg"], msg)


class Stream(Deadline):
    """A client connection and, once connected, its server connection."""

    __slots__ = (
        "an_index",
        "backend",
        "cli",
        "clock",
        "connect_ts",
        "ending",
        "fe",
        "ff_cache",
        "forced_server",
        "h1",
        "http",
        "http_body",
        "http_events",
        "idle_conn",
        "idle_reader",
        "idle_server",
        "last_c",
        "last_s",
        "listener",
        "loop",
        "mux",
        "phase",
        "poller",
        "quiet",
        "read_first",
        "redispatched",
        "req",
        "req_eof",
        "req_error",
        "req_final",
        "retries",
        "rt",
        "server",
        "sniffed",
        "srv_conn",
        "start_ts",
        "sticks",
        "t0",
        "tc",
        "termination",
        "timer",
        "tw",
        "txn_count",
        "txn_vars",
        "uid",
        "want_proxy",
    )

    def __init__(self, rt: Runtime, listener: Listener, csock: socket.socket, peer: Addr) -> None:
        self.rt = rt
        self.loop = rt.loop
        self.clock = rt.clock
        self.poller = poller.get(self.loop)
        self.listener = listener
        self.fe = listener.frontend
        self.backend = self.fe.backend
        self.cli = Connection(csock, peer, None, listener.netns)
        self.srv_conn: Connection | None = None
        self.start_ts = time.time()
        self.t0 = self.clock.time()
        self.last_c = self.last_s = self.t0
        self.phase = Phase.ANALYSE
        self.an_index = 0
        self.req = _NO_DATA
        self.req_eof = False
        self.req_error = False
        self.req_final = False
        self.read_first = False
        self.want_proxy = False
        self.forced_server: Server | None = None
        # X-Forwarded-For for this client: (its address, the option, the value or None)
        self.ff_cache: tuple[Addr, AddrHeader, bytes | None] | None = None
        self.txn_vars: MutableMapping[str, MutableMapping[str, Sample]] | None = None
        self.uid: str | None = None
        self.server: Server | None = None
        self.mux: Mux | None = None
        self.retries = 0
        self.redispatched = False
        self.tc = -1
        self.tw = 0
        self.connect_ts = 0.0
        Deadline.__init__(self)
        self.timer: Deadline | None = None  # self, while something waits on the deadline
        self.termination = "--"
        self.quiet = False
        self.ending = False
        self.txn_count = 0
        self.http: HttpTxn | None = None
        # TCP mode: (buffer length, head, wait) of the last parse of `req` by an HTTP fetch
        self.sniffed: Sniffed | None = None
        self.h1: RequestReader | None = None
        self.http_body: list[Event] = NO_EVENTS  # HTTP streams get their own lists at start
        self.http_events: list[Event] = NO_EVENTS
        self.idle_conn: Connection | None = None
        self.idle_reader: ResponseReader | None = None
        self.idle_server: Server | None = None
        self.sticks = new_sticks(rt)  # track-sc* slots, `stick` keys

    # -- facts of the client connection ------------------------------------------------------
    @property
    def src(self) -> Addr:
        return self.cli.src

    @property
    def netns(self) -> Namespace | None:
        return self.cli.netns

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    def local_addr(self) -> Addr:
        return self.cli.local_addr()

    # -- what the rules engine and log-format read (sample.context.Txn) ----------------------
    @property
    def dst(self) -> Addr:
        return self.cli.local_addr()

    @property
    def so_id(self) -> int:
        return self.listener.id

    @property
    def so_name(self) -> str | None:
        return self.listener.bind.name

    @property
    def frontend_name(self) -> str:
        return self.fe.name

    @property
    def frontend_id(self) -> int:
        return self.fe.cfg.id

    @property
    def backend_name(self) -> str | None:
        return self.backend.name if self.backend is not None else None

    @property
    def backend_id(self) -> int:
        return self.backend.cfg.id if self.backend is not None else 0

    @property
    def server_name(self) -> str | None:
        if self.server is None and self.http is not None and self.http.applet is not None:
            return f"<{self.http.applet}>"
        return self.server.name if self.server is not None else None

    @property
    def server_id(self) -> int:
        return self.server.puid if self.server is not None else 0

    @property
    def fc_netns(self) -> str | None:
        ns = self.cli.netns
        return ns.name if ns is not None else None

    @property
    def bc_netns(self) -> str | None:
        srv = self.server
        if srv is None:
            return None
        ns = self.cli.netns if srv.cfg.use_client_netns else srv.netns
        return ns.name if ns is not None else None

    @property
    def req_data(self) -> bytes:
        if not self.read_first:
            self._read_first()
        return bytes(self.req)

    @property
    def res_data(self) -> bytes:
        return b""

    @property
    def res_final(self) -> bool:
        return True

    @property
    def vars(self) -> MutableMapping[str, MutableMapping[str, Sample]]:
        v = self.txn_vars
        if v is None:
            v = self.txn_vars = {
                "proc": self.rt.proc_vars,
                "sess": {},
                "txn": {},
                "req": {},
                "res": {},
            }
        return v

    def nbsrv(self, backend: str) -> int | None:
        be = self.rt.backends.get(backend)
        return None if be is None else sum(1 for s in be.servers if s.usable())

    @property
    def server_addr(self) -> Addr:
        return self.srv_conn.dst if self.srv_conn is not None else None

    @property
    def backend_local(self) -> Addr:
        return self.srv_conn.src if self.srv_conn is not None else None

    @property
    def accept_ts(self) -> float:
        return self.start_ts

    @property
    def t_queue(self) -> int:
        applet = self.http is not None and self.http.applet is not None
        return self.tw if (self.server is not None or self.tw or applet) else -1

    @property
    def t_connect(self) -> int:
        return self.tc

    @property
    def t_total(self) -> int:
        txn = self.http
        start = self.t0 if txn is None else txn.start
        return int((self.clock.time() - start) * 1000)

    # At close (the log line) this stream still counts in %ac/%fc but not in %bc/%sc.
    @property
    def conn_process(self) -> int:
        return self.rt.stats.cur_conns + (self.phase is Phase.CLOSED)

    @property
    def conn_frontend(self) -> int:
        return self.fe.stats.cur_conns + (self.phase is Phase.CLOSED)

    @property
    def conn_backend(self) -> int:
        be = self.backend
        if be is None:
            return 0
        return be.stats.cur_conns - (self.ending and self.server is not None)

    @property
    def conn_server(self) -> int:
        srv = self.server
        return 0 if srv is None else srv.stats.cur_conns - self.ending

    @property
    def queue_server(self) -> int:
        return 0

    @property
    def queue_backend(self) -> int:
        return 0

    @property
    def unique_id(self) -> str | None:
        """%ID: unique-id-format computed once for the stream (None without one)."""
        if self.uid is None:
            fmt = self.fe.cfg.unique_id_format
            if fmt is not None:
                self.uid = fmt(self)
        return self.uid

    @property
    def request_counter(self) -> int:
        return self.rt.stats.total_conns

    def move_to(self, ns: Namespace) -> None:
        """The connection now belongs to `ns` (a NETNS TLV): its counters move with it."""
        old = self.cli.netns
        if old is not None:
            old.conns -= 1
            old.total_conns -= 1
        self.cli.netns = ns
        ns.conns += 1
        ns.total_conns += 1

    # -- analysers ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.listener.http:
            self.h1 = RequestReader(self.rt.h1_limits)
            self.http_body = NO_EVENTS  # (lists of their own once there are events)
            self.http_events = NO_EVENTS
            self.http = HttpTxn(self.t0, self.start_ts)
        if self.listener.analysers:
            self.req = bytearray()
            self._analyse(False)
        else:
            self._connect()

    def _read_first(self) -> None:
        """TCP mode: what the client already sent, read once when a rule first looks at the
        request while nothing is buffered yet (rules without inspect-delay then see those
        bytes, as HAProxy's usually do); rules that never look cost no read."""
        self.read_first = True
        if self.req or self.http is not None or self.cli.tls is not None:
            return
        if self.phase is not Phase.ANALYSE or self.req_eof or self.req_error:
            return
        try:
            data = self.cli.sock.recv(min(16384, max(len(relay.BUFFER), pp.MAX_V2_LEN)))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.req_error = True
            return
        if data:
            self.req += data
        else:
            self.req_eof = True

    def _analyse(self, expired: bool) -> None:
        analysers = self.listener.analysers
        while self.an_index < len(analysers):
            an = analysers[self.an_index]
            verdict = an.run(self, expired)
            if verdict is Verdict.WAIT:
                if not self.req_eof and not self.req_error:
                    self.poller.set_reader(self.cli.fd, self._on_req_data)
                    tls = self.cli.tls  # TLS: plaintext inside OpenSSL, epoll cannot see it
                    if tls is not None and tls.done and tls.pending():
                        self.loop.call_soon(self.resume_read)
                deadline = an.deadline(self)
                timer = self.timer
                if timer is None or timer.when() != deadline:
                    self._cancel_timer()
                    if deadline is not None:
                        self.timer = self.at(deadline, self._on_analyse_timeout)
                return
            if verdict is Verdict.STOP:
                return
            self.an_index += 1
            expired = False
            self._cancel_timer()
        self.poller.clear_reader(self.cli.fd)
        self._connect()

    def _on_req_data(self, _ev: int = 0) -> None:
        room = max(len(relay.BUFFER), pp.MAX_V2_LEN) - len(self.req)  # a PROXY v2 header fits
        if room <= 0:  # full: the analysers decide with what they have
            self.poller.clear_reader(self.cli.fd, sync=True)
            self._analyse(True)
            return
        # -- TLS (tls_wire): the handshake step reads the socket itself; then plaintext
        if self.cli.tls is not None:
            if self.cli.tls.done:
                tls_wire.fill_req(self)
            self._analyse(False)
            return
        # -- end TLS
        try:
            data = self.cli.sock.recv(min(16384, room))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.req_error = True
            self.poller.clear_reader(self.cli.fd, sync=True)
        else:
            if data:
                self.req += data
            else:
                self.req_eof = True
                self.poller.clear_reader(self.cli.fd, sync=True)
        self._analyse(False)

    def _on_analyse_timeout(self) -> None:
        self.timer = None
        self._analyse(True)

    # -- TLS (tls_wire) ----------------------------------------------------------------------
    def resume_analyse(self, _ev: int = 0) -> None:
        """The analysers run again (the handshake step waited for writability)."""
        if self.phase is Phase.ANALYSE:
            self._analyse(False)

    def resume_read(self) -> None:
        if self.phase is Phase.ANALYSE and self.cli.tls is not None:
            self._on_req_data()

    def server_tls_done(self) -> None:
        """The handshake with the server finished: the mux starts."""
        self._start_mux()

    def server_tls_failed(self) -> None:
        self._connect_failed(immediate=True, turnaround=False)

    @property
    def fc_tls(self) -> HandshakeFacts | None:
        """The client connection's handshake facts (fetches, %sslv, PROXY v2 SSL TLV)."""
        return self.cli.facts

    @property
    def t_handshake(self) -> int:
        """%Th: ms from the accept to the end of the TLS handshake (0 without TLS)."""
        return self.cli.hs_ms

    @property
    def bc_tls(self) -> HandshakeFacts | None:
        sc = self.srv_conn
        return sc.facts if sc is not None else None

    # -- end TLS

    # -- errors before a server is involved --------------------------------------------------
    def log_error(self, msg: str) -> None:
        """One line on the frontend's log, as HAProxy words connection-level errors."""
        logger = self.fe.logger
        if not logger:
            return
        ci, cp = addr_text(self.cli.src)
        level = LOG_ERR if self.fe.cfg.log_separate_errors else LOG_INFO
        logger.emit(
            level,
            f"{ci}:{cp} [{accept_date(self.start_ts)}] {self.fe.name}/{self.listener.label}: {msg}",
        )

    def rst_client(self) -> None:
        with contextlib.suppress(OSError):
            self.cli.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)

    def finish_early(self) -> None:
        """Closes a connection whose own log line was already written (no stream log)."""
        self.quiet = True
        self.close()

    # -- server choice and connect -----------------------------------------------------------
    def _hash_key(self) -> bytes | None:
        if self.backend is None or self.backend.cfg.balance != "source":
            return None
        src = self.cli.src
        if isinstance(src, tuple):
            try:
                return ipaddress.ip_address(src[0]).packed
            except ValueError:
                return None
        return None

    def _connect(self) -> None:
        self.phase = Phase.CONNECT
        be = self.backend
        if be is None:
            self._fail("SC", 503)
            return
        exclude = None
        if self.server is not None and be.cfg.redispatch and self.retries == be.cfg.retries:
            exclude = self.server
            self.server = None
            be.release(exclude)
        if self.server is None:
            forced = self.forced_server
            srv: Server | None
            if be.cfg.stick_rules:  # `stick match|on|store-request`: runtime/stickiness.py
                srv = sticky_server(self, be, forced, exclude, self._hash_key())
            elif forced is not None and exclude is None and forced.usable():
                srv = forced
            else:
                srv = be.pick(self._hash_key(), exclude)
            if srv is None:
                if be.can_queue():
                    self._enqueue()
                    return
                be.stats.conn_errors += 1
                self._fail("SC", 503)
                return
            if exclude is not None and srv is not exclude:
                self.redispatched = True
                be.stats.redispatches += 1
            self.server = srv
            be.take(srv)
        self._connect_to(self.server)

    def _enqueue(self) -> None:
        be = self.backend
        assert be is not None
        be.enqueue(self)
        self.phase = Phase.QUEUED
        t = be.cfg.timeouts
        tq = t.queue if t.queue is not None else t.connect
        self._arm(tq, self._on_queue_timeout)

    def dequeue(self) -> None:
        """A server slot may be free: pick again (called by the backend)."""
        self._cancel_timer()
        self.tw = int((self.clock.time() - self.t0) * 1000)
        self._connect()

    def _on_queue_timeout(self) -> None:
        self.timer = None
        self.tw = int((self.clock.time() - self.t0) * 1000)
        self._fail("sQ", 503)

    def _fail(self, termination: str, status: int) -> None:
        """No server connection: HTTP answers `status` (503 ...); TCP just closes."""
        if self.http is not None and self.http.req is not None:
            self._drop_server_conn()
            self.phase = Phase.MUX
            http_ana.error(self, status, termination)
        else:
            self.close(termination)

    def _connect_to(self, srv: Server) -> None:
        cfg = srv.cfg
        netns = self.cli.netns if cfg.use_client_netns else srv.netns
        if self.http is not None and self._reuse(srv, netns):
            return
        target = self._target(srv)
        if target is None:
            self.log_error(
                f"server {srv.backend.name}/{srv.name} connects to the client's "
                "destination, but the connection has none usable"
            )
            self.close("PC")
            return
        if (
            cfg.addr.uses_client_dst
            and not self.cli.proxied
            and netns is self.listener.netns
            and self.listener.owns(target[1])
        ):
            self.log_error(
                f"server {srv.backend.name}/{srv.name} would connect back to this listener "
                "(server '*' without a PROXY header); connection refused to avoid a loop"
            )
            self.close("PC")
            return
        self.connect_ts = self.clock.time()
        try:
            sock = connect.open_socket(self.rt.registry, srv, target[0], netns, self.cli.src)
        except NetnsError as exc:
            self.log_error(f"Cannot get a server socket: {exc.strerror}")
            self._connect_failed(immediate=True)
            return
        except connect.SourceBindError as exc:
            _log_bind_error(srv, exc)
            self._connect_failed(immediate=True, turnaround=False)
            return
        except OSError as exc:
            if exc.errno in _RESOURCE_ERRNOS:
                self.log_error(_resource_message(srv.backend.name, exc.errno))
            else:
                self.log_error(
                    f"Cannot bind to source address before connect() for backend "
                    f"{srv.backend.name}: {exc.strerror}"
                )
            self._connect_failed(immediate=True)
            return
        self.srv_conn = Connection(sock, None, target[1], netns)
        err: int | None
        try:
            err = sock.connect_ex(target[1])  # type: ignore[arg-type]
        except OSError as exc:  # raised, not returned, for an address refused before connect(2)
            err = exc.errno
        if err in (0, errno.EINPROGRESS):
            self.poller.set_writer(sock.fileno(), self._on_connect_done)
            self._arm(srv.backend.cfg.timeouts.connect, self._on_connect_timeout)
        else:
            self._connect_failed(immediate=True)

    def _target(self, srv: Server) -> tuple[int, Addr] | None:
        a = srv.cfg.addr
        if a.family == socket.AF_UNIX:
            return socket.AF_UNIX, a.host
        dst: tuple[str, int] | tuple[str, int, int, int] = ("", 0)
        if a.uses_client_dst or a.port_mode is not PortMode.FIXED:
            local = self.cli.local_addr()
            if not isinstance(local, tuple):
                return None
            dst = local
        family: int
        if a.uses_client_dst:
            host = str(dst[0])
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
        else:
            assert a.host is not None
            host, family = a.host, a.family
        if a.port_mode is PortMode.FIXED:
            port = a.port
        else:
            port = int(dst[1]) + (a.port if a.port_mode is PortMode.OFFSET else 0)
            if not 0 < port < 65536:
                return None
        if family == socket.AF_INET6 and "." in host and ":" not in host:
            host = "::ffff:" + host
        return family, (host, port)

    def _on_connect_done(self, ev: int) -> None:
        # the connect timer stands: a failure re-arms or closes, a success may keep it for idle
        # EPOLLERR, not HUP: a unix server that already wrote and closed reports HUP
        if ev & select.EPOLLERR:  # refused, reset, unreachable: no getsockopt(SO_ERROR) needed
            self._connect_failed(immediate=True)
            return
        self.tc = int((self.clock.time() - self.connect_ts) * 1000)
        srv = self.server
        if srv is not None and srv.cfg.tls is not None and srv.cfg.tls.enabled:  # TLS
            tls_wire.start_server_tls(self, srv)
            return
        self._start_mux()

    def _on_connect_timeout(self) -> None:
        if self.phase is Phase.MUX:  # connected: the connect timer was kept as the idle timer
            self._on_idle_timer()
            return
        self.timer = None
        self._connect_failed(immediate=False)

    def _connect_failed(self, immediate: bool, turnaround: bool = True) -> None:
        sc = self.srv_conn
        if sc is not None:
            self.poller.forget(sc.fd)
            sc.close()
            self.srv_conn = None
        srv = self.server
        be = self.backend
        assert srv is not None and be is not None
        srv.stats.conn_errors += 1
        if self.retries < be.cfg.retries:
            self.retries += 1
            srv.stats.retries += 1
            be.stats.retries += 1
            delay = 0.0
            if immediate and turnaround:
                tconnect = be.cfg.timeouts.connect
                delay = 1.0 if tconnect is None else min(1.0, tconnect)
            self._arm(delay, self._retry)
            return
        be.stats.conn_errors += 1
        self._fail("SC" if immediate else "sC", 503)

    def _retry(self) -> None:
        self.timer = None
        self._connect()  # the same server, unless this last retry redispatches

    # -- the mux -----------------------------------------------------------------------------
    def _start_mux(self) -> None:
        srv = self.server
        sc = self.srv_conn
        assert srv is not None and sc is not None
        # once per server connection (over TLS it went out in clear before the handshake)
        head = b""
        if srv.cfg.send_proxy and sc.tls is None and not sc.private:
            head = connect.proxy_header(self.rt, self, srv)
            sc.private = True
        self.phase = Phase.MUX
        self.last_c = self.last_s = self.clock.time()
        txn = self.http
        if txn is not None and txn.req is not None:
            reader = (
                self.idle_reader
                if self.idle_reader is not None
                else ResponseReader(self.rt.h1_limits)
            )
            self.idle_reader = None
            h1 = H1Mux(self, reader, txn.req)
            self.mux = h1
            txn.t_sent = self.clock.time()
            body, self.http_body = self.http_body, NO_EVENTS
            h1.start(head + self.server_head(serialize_request(txn.req)), body)
            if self.phase is not Phase.MUX:
                return
        else:
            fe, be = self.fe.cfg, srv.backend.cfg
            tcp = self.listener.addr.family != socket.AF_UNIX
            tcp = tcp and srv.cfg.addr.family != socket.AF_UNIX
            tcp = tcp and self.cli.tls is None and sc.tls is None  # TLS: no splice
            auto = tcp and (fe.splice_auto or be.splice_auto)
            up = auto or (tcp and (fe.splice_request or be.splice_request))
            down = auto or (tcp and (fe.splice_response or be.splice_response))
            analysed = len(self.req)
            if self.req:
                head += self.req
                self.req = _NO_DATA
            pt = PassThroughMux(self, self.cli, sc, head, up, down)
            pt.c2s.nbytes = analysed  # bytes read by the analysers count in %U
            self.mux = pt
            pt.start()
        timer = self.timer
        if timer is not None:
            # one timer per stream: the connect timer stays if it expires before idle would
            deadline = self._idle_deadline()
            if deadline is None or timer.when() <= deadline:
                return
            self._cancel_timer()
        self.arm_idle()

    # -- HTTP transactions ---------------------------------------------------------------------
    def server_head(self, data: bytes) -> bytes:
        """A request head as the server gets it (`option h1-case-adjust-bogus-server`)."""
        be = self.be_http
        if be is None or not be.case_adjust_server:
            return data
        return adjust_head(data, case_map(self.rt.config.global_.h1_case_adjust))

    def client_head(self, data: bytes) -> bytes:
        """A response head as the client gets it (`option h1-case-adjust-bogus-client`)."""
        fe = self.fe_http
        if fe is None or not fe.case_adjust_client:
            return data
        return adjust_head(data, case_map(self.rt.config.global_.h1_case_adjust))

    @property
    def fe_http(self) -> HttpCfg | None:
        return self.fe.http

    @property
    def be_http(self) -> HttpCfg | None:
        be = self.backend
        return be.cfg.http if be is not None else None

    def send_answer(self, data: bytes) -> None:
        """The proxy answers this request itself (rules, errors): then the transaction ends."""
        self._cancel_timer()
        if self.mux is not None:
            self.mux.stop()
        self._drop_server_conn()
        answer = AnswerMux(self, data)
        self.mux = answer
        self.phase = Phase.MUX
        self.last_c = self.clock.time()
        answer.start()
        if self.phase is Phase.MUX and self.mux is answer and self.timer is None:
            self.arm_idle()

    def http_error(self, status: int, termination: str) -> None:
        http_ana.error(self, status, termination)

    def http_response_rules(self) -> bytes | None:
        return http_ana.response_rules(self)

    def http_after_response(self, head: bytes) -> bytes:
        return http_ana.after_response(self, head)

    def http_captured_response(self) -> None:
        http_ana.capture_response(self)

    def http_cookie_response(self) -> None:
        http_ana.cookie_response(self)

    @property
    def idle_between_requests(self) -> bool:
        """An HTTP keep-alive connection waiting for its next request (none begun yet)."""
        txn = self.http
        return (
            txn is not None
            and self.txn_count > 0
            and txn.t_first < 0
            and self.phase is Phase.ANALYSE
        )

    @property
    def cookie_status(self) -> str:
        """%tsc's last two characters: the persistence cookie in the request and response."""
        txn = self.http
        return "--" if txn is None else txn.ck_cli + txn.ck_srv

    def tarpit(self, data: bytes, status: int) -> None:
        """`http-request tarpit`: hold the client for `timeout tarpit`, then answer."""
        self._cancel_timer()
        self.poller.clear_reader(self.cli.fd)
        t = self.fe.cfg.timeouts
        delay = t.tarpit if t.tarpit is not None else t.connect
        self.phase = Phase.MUX

        def release() -> None:
            self.timer = None
            http_ana.answer(self, data, status, "PT", True)

        self._arm(delay or 0.0, release)

    def http_tunnel(self) -> None:
        """After a 101 (or a 2xx to CONNECT): the rest is a TCP tunnel on the pass-through mux."""
        mux = self.mux
        sc = self.srv_conn
        h1 = self.h1
        assert isinstance(mux, H1Mux) and sc is not None and h1 is not None
        mux.stop()
        up = h1.take_tunnel() + bytes(mux.to_srv)
        down = mux.reader.take_tunnel()
        txn = self.http
        pt = PassThroughMux(self, self.cli, sc, up, False, False)
        pt.s2c.pending = down
        if txn is not None:  # the request's line is written when the tunnel ends
            pt.c2s.nbytes, pt.s2c.nbytes = txn.bytes_in, txn.bytes_out
        self.mux = pt
        pt.start()
        self._cancel_timer()
        self.arm_idle()

    def txn_end(self) -> None:
        """The exchange is over: log it, keep or close the server side, wait for the next."""
        txn = self.http
        assert txn is not None
        mux = self.mux
        if mux is not None:
            mux.stop()
        self._cancel_timer()
        self.rt.txn_done(self)
        keep = txn.keep_client and not self.rt.stopping
        sc = self.srv_conn
        if sc is not None:
            self.srv_conn = None
            if keep and txn.reuse_server and isinstance(mux, H1Mux) and not mux.to_srv:
                self.idle_conn, self.idle_reader, self.idle_server = sc, mux.reader, self.server
                self.poller.set_reader(sc.fd, self._on_idle_server)
            else:
                self.poller.forget(sc.fd)
                sc.close()
        self.server = None
        if not keep:
            self.finish_early()
            return
        now = self.clock.time()
        self.txn_count += 1
        self.http = HttpTxn(now, time.time())
        v = self.txn_vars
        if v is not None:  # a new transaction: its txn/req/res variables start empty
            v["txn"], v["req"], v["res"] = {}, {}, {}
        self.mux = None
        self.http_body = NO_EVENTS  # (a body an answer left unsent is not the next one's)
        self.backend = self.fe.backend
        self.forced_server = None
        self.retries = 0
        self.redispatched = False
        self.tc = -1
        self.tw = 0
        self.termination = "--"
        self.uid = None
        self.last_c = now
        self.phase = Phase.ANALYSE
        self.an_index = self.listener.an_http
        h1 = self.h1
        assert h1 is not None
        try:
            self.http_events = h1.next_message()
        except H1Error as exc:
            http_ana.raw_error(self, exc.status, "PR")
            return
        self._analyse(False)

    def _reuse(self, srv: Server, netns: Namespace | None) -> bool:
        """HTTP: connects through the kept or a pooled idle connection to `srv`, if any."""
        idle = self.idle_conn
        reader = self.idle_reader
        kept = self.idle_server
        if idle is not None:
            self.idle_conn = None
            self.idle_server = None
            self.poller.clear_reader(idle.fd)
            if kept is not srv or idle.netns is not netns:
                self.idle_reader = None
                if kept is not None and reader is not None and not idle.private:
                    self.rt.idle_pool.put(kept, idle, reader)
                else:
                    self._drop_idle(idle)
                idle = None
        if idle is None:
            reuse = (
                self.backend.cfg.http.http_reuse
                if self.backend and self.backend.cfg.http
                else "safe"
            )
            if not may_share(reuse, self.txn_count == 0):
                return False
            pooled = self.rt.idle_pool.take(srv, netns)
            if pooled is None:
                return False
            idle, reader = pooled
        self.srv_conn = idle
        self.idle_reader = reader
        self.tc = 0
        self._start_mux()
        return True

    def _on_idle_server(self, _ev: int = 0) -> None:
        """The kept server connection spoke or closed while idle: it cannot be reused."""
        idle = self.idle_conn
        if idle is not None:
            self.idle_conn = None
            self._drop_idle(idle)

    def _drop_idle(self, idle: Connection) -> None:
        self.idle_reader = None
        self.idle_server = None
        self.poller.forget(idle.fd)
        idle.close()

    def _drop_server_conn(self) -> None:
        sc = self.srv_conn
        if sc is not None:
            self.srv_conn = None
            self.poller.forget(sc.fd)
            sc.close()

    # -- what HTTP rules, fetches and logs read (sample.context.Txn) ---------------------------
    @property
    def http_req(self) -> RequestHead | None:
        http = self.http
        if http is not None:
            return http.req
        return self.sniff()[0]

    @property
    def http_req_pending(self) -> bool:
        return self.http is None and self.sniff()[1]

    def sniff(self) -> tuple[RequestHead | None, bool]:
        """TCP mode: the request head the buffered bytes hold and whether more bytes may still
        make one (proto.h1.sniff), parsed once per buffer length."""
        if not self.read_first:
            self._read_first()
        s = self.sniffed = sniff_again(self.sniffed, self.req, self.rt.h1_limits)
        return s[1], s[2]

    @property
    def http_resp(self) -> ResponseHead | None:
        return self.http.resp if self.http is not None else None

    @property
    def req_body(self) -> bytes:
        return b"".join(ev.data for ev in self.http_body if isinstance(ev, Data))

    @property
    def req_captures(self) -> MutableSequence[str | None]:
        txn = self.http
        return txn.captures_req if txn is not None else []

    @property
    def res_captures(self) -> MutableSequence[str | None]:
        txn = self.http
        return txn.captures_res if txn is not None else []

    def set_log_level(self, level: str) -> None:
        if self.http is not None:
            self.http.log_level = level

    @property
    def request_ts(self) -> float:
        txn = self.http
        if txn is None:
            return self.start_ts
        idle = txn.t_first - txn.start if txn.t_first >= 0 else 0.0
        return txn.start_ts + idle

    @property
    def t_request(self) -> int:
        txn = self.http
        return -1 if txn is None else txn.ms(txn.t_first, txn.t_head)

    @property
    def t_idle(self) -> int:
        txn = self.http
        if txn is None:
            return -1
        if not self.txn_count and self.cli.hs_ms:  # TLS: the first request's idle time
            return txn.ms(txn.start + self.cli.hs_ms / 1000, txn.t_first)  # starts after it
        return txn.ms(txn.start, txn.t_first)

    @property
    def t_response(self) -> int:
        txn = self.http
        if txn is not None and txn.applet is not None:
            return 0  # an applet answers as soon as it is called
        return -1 if txn is None or txn.answered else txn.ms(txn.t_sent, txn.t_resp)

    @property
    def t_active(self) -> int:
        txn = self.http
        if txn is None:
            return -1
        if txn.t_first < 0:  # no request byte: HAProxy's Ta is then the total time
            return self.t_total
        return int((self.clock.time() - txn.t_first) * 1000)

    @property
    def http_status(self) -> int:
        """%ST: the status sent (-1: none yet); 0 outside HTTP mode, as HAProxy logs it."""
        txn = self.http
        return 0 if txn is None else txn.status

    @property
    def request_line(self) -> str:
        txn = self.http
        return "" if txn is None else txn.req_line

    def limits_changed(self) -> None:
        """One direction finished: `timeout client-fin`/`server-fin` may now apply."""
        ft = self.fe.cfg.timeouts
        bt = self.backend.cfg.timeouts if self.backend is not None else ft
        if self.timer is None or ft.client_fin is not None or bt.server_fin is not None:
            # the limits change only with client-fin/server-fin: else the timer stands
            self._cancel_timer()
            self.arm_idle()

    def _idle_limits(self) -> tuple[float | None, float | None]:
        t = self.backend.cfg.timeouts if self.backend is not None else self.fe.cfg.timeouts
        ft = self.fe.cfg.timeouts
        tunnel = t.tunnel if t.tunnel is not None else ft.tunnel
        tc = tunnel if tunnel is not None else ft.client
        ts = tunnel if tunnel is not None else t.server
        mux = self.mux
        if mux is not None:
            if mux.client_eof and ft.client_fin is not None:
                tc = ft.client_fin
            if mux.server_eof and t.server_fin is not None:
                ts = t.server_fin
            if not mux.expects_client:
                tc = None
            if not mux.expects_server:
                ts = None
        return tc, ts

    def _idle_deadline(self) -> float | None:
        tc, ts = self._idle_limits()
        if tc is None:
            return None if ts is None else self.last_s + ts
        return self.last_c + tc if ts is None else min(self.last_c + tc, self.last_s + ts)

    def arm_idle(self) -> None:
        deadline = self._idle_deadline()
        if deadline is not None:
            self.timer = self.at(deadline, self._on_idle_timer)

    def _on_idle_timer(self) -> None:
        self.timer = None
        now = self.clock.time()
        tc, ts = self._idle_limits()
        mux = self.mux
        if tc is not None and now >= self.last_c + tc:
            if mux is not None:
                mux.timed_out(True)
            else:
                self.close("cD")
        elif ts is not None and now >= self.last_s + ts:
            if mux is not None:
                mux.timed_out(False)
            else:
                self.close("sD")
        else:
            self.arm_idle()

    # -- timers and close --------------------------------------------------------------------
    def _arm(self, delay: float | None, cb: Callable[[], Any]) -> None:
        self._cancel_timer()
        if delay is not None:
            self.timer = self.at(self.clock.time() + delay, cb)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self, termination: str | None = None) -> None:
        """Ends the stream once: both sockets closed, counters updated, the log line written."""
        if self.phase is Phase.CLOSED:
            return
        if termination is not None:
            self.termination = termination
        phase, self.phase = self.phase, Phase.CLOSED
        self._cancel_timer()
        self.drop_timer()
        if phase is Phase.QUEUED and self.backend is not None:
            self.backend.unqueue(self)
        mux = self.mux
        if mux is not None:
            mux.stop()
        cli = self.cli
        if not self.quiet:
            if self.termination[0] in "CS" and self.termination[1] == "D":
                self.rst_client()
            elif mux is None:
                self._drain_client()
            if self.fe.cfg.log_format is not None:
                # %fi/%fp and %bi/%bp are written after the sockets are closed
                cli.local_addr()
                if self.srv_conn is not None and mux is not None:
                    self.srv_conn.read_local()
        self.poller.forget(cli.fd)
        cli.close()
        sc = self.srv_conn
        if sc is not None:
            self.poller.forget(sc.fd)
            sc.close()
        idle = self.idle_conn
        if idle is not None:
            self.idle_conn = None
            if self.idle_server is not None and self.idle_reader is not None and not idle.private:
                self.poller.clear_reader(idle.fd)
                self.rt.idle_pool.put(self.idle_server, idle, self.idle_reader)
            else:
                self._drop_idle(idle)
        self.rt.stream_closed(self)

    def _drain_client(self) -> None:
        """Reads what the client already sent, as HAProxy has it buffered, so close is a FIN."""
        with contextlib.suppress(OSError):
            self.cli.sock.recv_into(relay.BUFFER)

    @property
    def logged(self) -> bool:
        """Whether this stream's end gets a log line (errors before it wrote their own).

        In HTTP mode each request is logged when it ends; a connection closed while waiting
        for a request that never began is not.
        """
        if self.quiet:
            return False
        txn = self.http
        if txn is not None:
            return txn.t_first >= 0 or (not self.txn_count and self.termination != "--")
        return self.mux is not None or self.termination != "--"

    @property
    def bytes_in(self) -> int:
        mux = self.mux
        if mux is not None:
            return mux.bytes_in
        txn = self.http  # a request that ended before any mux (the analysers read it)
        return txn.bytes_in if txn is not None else 0

    @property
    def bytes_out(self) -> int:
        return self.mux.bytes_out if self.mux is not None else 0
