"""One client connection from accept to close: PROXY header, server choice, connect, relay, log."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import resource
import select
import socket
import struct
import time
from typing import TYPE_CHECKING

from nsproxy import proxy_protocol as pp
from nsproxy.addresses import PortMode
from nsproxy.netns import Namespace, NetnsError
from nsproxy.ops.log import LEVELS, LOG_ERR, LOG_INFO, accept_date, addr_text, alert
from nsproxy.runtime import connect, poller, relay
from nsproxy.runtime.relay import Half

if TYPE_CHECKING:
    from nsproxy.runtime.listener import Listener
    from nsproxy.runtime.objects import Server
    from nsproxy.runtime.process import Runtime

Addr = tuple[str, int] | str | bytes | None
_LINGER_RST = struct.pack("ii", 1, 0)
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


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


class Stream:
    """A client connection and, once connected, its server connection."""

    __slots__ = (
        "authority",
        "backend",
        "backend_local",
        "c2s",
        "closed",
        "connect_ts",
        "csock",
        "dst",
        "fe",
        "hdr_buf",
        "last_c",
        "last_s",
        "listener",
        "loop",
        "netns",
        "pending",
        "poller",
        "proxied",
        "queued",
        "redispatched",
        "retries",
        "rt",
        "s2c",
        "server",
        "src",
        "ssock",
        "start_ts",
        "t0",
        "target",
        "tc",
        "termination",
        "timer",
        "tw",
        "unique_id",
    )

    def __init__(self, rt: Runtime, listener: Listener, csock: socket.socket, peer: Addr) -> None:
        self.rt = rt
        self.loop = rt.loop
        self.poller = poller.get(self.loop)
        self.listener = listener
        self.fe = listener.frontend
        self.backend = self.fe.backend
        self.csock = csock
        self.src: Addr = peer
        self.dst: Addr = None
        self.netns: Namespace | None = listener.netns
        self.start_ts = time.time()
        self.t0 = self.loop.time()
        self.last_c = self.last_s = self.t0
        self.server: Server | None = None
        self.ssock: socket.socket | None = None
        self.target: tuple[int, Addr] | None = None
        self.c2s: Half | None = None
        self.s2c: Half | None = None
        self.pending = b""
        self.hdr_buf: bytearray | None = None
        self.proxied = False
        self.retries = 0
        self.redispatched = False
        self.tc = -1
        self.tw = 0
        self.connect_ts = 0.0
        self.queued = False
        self.timer: object = None
        self.termination = "--"
        self.unique_id: bytes | None = None
        self.authority: bytes | None = None
        self.closed = False
        self.backend_local: Addr = None

    # -- start: optional PROXY header --------------------------------------------------------
    def start(self) -> None:
        if self.listener.expects_proxy(self.src):
            self.hdr_buf = bytearray()
            self.poller.set_reader(self.csock.fileno(), self._on_header_data)
            self._arm(self.fe.cfg.timeouts.client, self._on_header_timeout)
        else:
            self._connect()

    def _on_header_data(self, _ev: int = 0) -> None:
        assert self.hdr_buf is not None
        try:
            data = self.csock.recv(min(16384, pp.MAX_V2_LEN - len(self.hdr_buf)))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._header_failed(pp.ErrorKind.ABORT)
            return
        if not data:
            kind = pp.ErrorKind.EMPTY if not self.hdr_buf else pp.ErrorKind.TRUNCATED
            self._header_failed(kind)
            return
        self.hdr_buf += data
        try:
            result = pp.decode(self.hdr_buf)
        except pp.ProxyProtocolError as exc:
            if exc.src is not None:
                self.src = exc.src
            self._header_failed(exc.kind, rst=True)
            return
        if result is pp.NEED_MORE:
            return
        assert isinstance(result, tuple)
        header, used = result
        self.poller.clear_reader(self.csock.fileno())
        self._cancel_timer()
        self.pending = bytes(self.hdr_buf[used:])
        self.hdr_buf = None
        if not header.local and header.src is not None:
            self.src, self.dst = header.src, header.dst
            self.proxied = True
        self.authority = header.authority
        self.unique_id = header.unique_id
        names = header.netns_names
        if names:
            found = [ns for ns in map(self.rt.registry.lookup, names) if ns is not None]
            if found:
                self._move_to(found[-1])
            else:
                raw_ns = names[-1]
                self.rt.unknown_netns += 1
                name = raw_ns.decode("ascii", "backslashreplace")
                if self.fe.cfg.reject_unknown_netns:
                    self._log_error(f"Rejected unknown namespace '{name}' in PROXY protocol header")
                    self.fe.stats.denied += 1
                    self._finish_early()
                    return
                self._log_error(f"Ignored unknown namespace '{name}' in PROXY protocol header")
        self._connect()

    def _on_header_timeout(self) -> None:
        self.timer = None
        self._header_failed(pp.ErrorKind.TIMEOUT)

    def _move_to(self, ns: Namespace) -> None:
        """The connection now belongs to `ns` (a NETNS TLV): its counters move with it."""
        if self.netns is not None:
            self.netns.conns -= 1
            self.netns.total_conns -= 1
        self.netns = ns
        ns.conns += 1
        ns.total_conns += 1

    def _header_failed(self, kind: pp.ErrorKind, rst: bool = False) -> None:
        self.fe.stats.failed_headers += 1
        if self.netns is not None:
            self.netns.errors += 1
        if not (self.fe.cfg.dontlognull and kind in (pp.ErrorKind.EMPTY, pp.ErrorKind.ABORT)):
            self._log_error(kind.message)
        if rst:
            self._rst_client()
        self._finish_early()

    def _rst_client(self) -> None:
        with contextlib.suppress(OSError):
            self.csock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)

    def _log_error(self, msg: str) -> None:
        logger = self.fe.logger
        if not logger:
            return
        ci, cp = addr_text(self.src)
        level = LOG_ERR if self.fe.cfg.log_separate_errors else LOG_INFO
        logger.emit(
            level,
            f"{ci}:{cp} [{accept_date(self.start_ts)}] {self.fe.name}/{self.listener.label}: {msg}",
        )

    def _finish_early(self) -> None:
        self.hdr_buf = None
        self._cancel_timer()
        self.closed = True
        self.poller.forget(self.csock.fileno())
        self.csock.close()
        self.rt.stream_closed(self)

    # -- connect ------------------------------------------------------------------------------
    def local_addr(self) -> Addr:
        if self.dst is None:
            try:
                self.dst = self.csock.getsockname()
            except OSError:
                self.dst = None
        return self.dst

    def _hash_key(self) -> bytes | None:
        if self.backend is None or self.backend.cfg.balance != "source":
            return None
        if isinstance(self.src, tuple):
            try:
                return ipaddress.ip_address(self.src[0]).packed
            except ValueError:
                return None
        return None

    def _connect(self) -> None:
        be = self.backend
        if be is None:
            self.termination = "SC"
            self.close()
            return
        exclude = None
        if self.server is not None and be.cfg.redispatch and self.retries == be.cfg.retries:
            exclude = self.server
            self.server = None
            self.rt.server_release(exclude)
        if self.server is None:
            srv = be.pick(self._hash_key(), exclude)
            if srv is None:
                if self.rt.try_queue(self):
                    return
                be.stats.conn_errors += 1
                self.termination = "SC"
                self.close()
                return
            if exclude is not None and srv is not exclude:
                self.redispatched = True
                be.stats.redispatches += 1
            self.server = srv
            self.rt.server_take(srv)
        self._connect_to(self.server)

    def dequeue(self) -> None:
        self.queued = False
        self._cancel_timer()
        self.tw = int((self.loop.time() - self.t0) * 1000)
        self._connect()

    def queue_timeout(self) -> None:
        self.timer = None
        self.queued = False
        self.tw = int((self.loop.time() - self.t0) * 1000)
        self.termination = "sQ"
        self.close()

    def _connect_to(self, srv: Server) -> None:
        cfg = srv.cfg
        netns = self.netns if cfg.use_client_netns else srv.netns
        target = self._target(srv)
        if target is None:
            self.termination = "PC"
            self._log_error(
                f"server {srv.backend.name}/{srv.name} connects to the client's "
                "destination, but the connection has none usable"
            )
            self.close()
            return
        if (
            cfg.addr.uses_client_dst
            and not self.proxied
            and netns is self.listener.netns
            and self.listener.owns(target[1])
        ):
            self.termination = "PC"
            self._log_error(
                f"server {srv.backend.name}/{srv.name} would connect back to this listener "
                "(server '*' without a PROXY header); connection refused to avoid a loop"
            )
            self.close()
            return
        self.target = target
        self.connect_ts = self.loop.time()
        try:
            sock = connect.open_socket(self.rt, srv, target[0], netns, self)
        except NetnsError as exc:
            self._log_error(f"Cannot get a server socket: {exc.strerror}")
            self._connect_failed(immediate=True)
            return
        except connect.SourceBindError as exc:
            _log_bind_error(srv, exc)
            self._connect_failed(immediate=True, turnaround=False)
            return
        except OSError as exc:
            if exc.errno in _RESOURCE_ERRNOS:
                self._log_error(_resource_message(srv.backend.name, exc.errno))
            else:
                self._log_error(
                    f"Cannot bind to source address before connect() for backend "
                    f"{srv.backend.name}: {exc.strerror}"
                )
            self._connect_failed(immediate=True)
            return
        self.ssock = sock
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
        dst: tuple[str, int] = ("", 0)
        if a.uses_client_dst or a.port_mode is not PortMode.FIXED:
            local = self.local_addr()
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
        self.tc = int((self.loop.time() - self.connect_ts) * 1000)
        self._start_relay()

    def _on_connect_timeout(self) -> None:
        if self.c2s is not None:  # connected: the connect timer was kept as the idle timer
            self._on_idle_timer()
            return
        self.timer = None
        self._connect_failed(immediate=False)

    def _connect_failed(self, immediate: bool, turnaround: bool = True) -> None:
        if self.ssock is not None:
            self.poller.forget(self.ssock.fileno())
            self.ssock.close()
            self.ssock = None
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
        self.termination = "SC" if immediate else "sC"
        self.close()

    def _retry(self) -> None:
        self.timer = None
        self._connect()  # the same server, unless this last retry redispatches

    # -- relay -------------------------------------------------------------------------------
    def _start_relay(self) -> None:
        srv = self.server
        sock = self.ssock
        assert srv is not None and sock is not None
        head = connect.proxy_header(self.rt, self, srv) if srv.cfg.send_proxy else b""
        fe, be = self.fe.cfg, srv.backend.cfg
        tcp = self.listener.addr.family != socket.AF_UNIX and srv.cfg.addr.family != socket.AF_UNIX
        auto = tcp and (fe.splice_auto or be.splice_auto)
        up = auto or (tcp and (fe.splice_request or be.splice_request))
        down = auto or (tcp and (fe.splice_response or be.splice_response))
        self.c2s = Half(self, self.csock, sock, head + self.pending, up)
        self.s2c = Half(self, sock, self.csock, b"", down)
        Half.link(self.c2s, self.s2c)
        self.pending = b""
        now = self.loop.time()
        self.last_c = self.last_s = now
        if not self.c2s.pending:
            self.poller.clear_writer(sock.fileno())  # first: the reader's MOD then drops OUT
        self.c2s.start()
        self.s2c.start()
        timer = self.timer
        if timer is not None:
            # one timer per stream: the connect timer stays if it expires before idle would
            deadline = self._idle_deadline()
            if deadline is None or timer.when() <= deadline:  # type: ignore[attr-defined]
                return
            self._cancel_timer()
        self._arm_idle()

    def activity(self, half: Half) -> None:
        now = self.loop.time()
        if half is self.c2s:
            self.last_c = now
        else:
            self.last_s = now
        if self.timer is None:
            self._arm_idle()

    def half_done(self, half: Half) -> None:
        if self.c2s is not None and self.s2c is not None and self.c2s.shut and self.s2c.shut:
            self.close()
        else:
            ft = self.fe.cfg.timeouts
            bt = self.backend.cfg.timeouts if self.backend is not None else ft
            if self.timer is None or ft.client_fin is not None or bt.server_fin is not None:
                # the limits change only with client-fin/server-fin: else the timer stands
                self._cancel_timer()
                self._arm_idle()

    def half_error(self, half: Half, on_read: bool) -> None:
        client_side = (half is self.c2s) == on_read
        self.termination = "CD" if client_side else "SD"
        self.close()

    def _idle_limits(self) -> tuple[float | None, float | None]:
        t = self.backend.cfg.timeouts if self.backend is not None else self.fe.cfg.timeouts
        ft = self.fe.cfg.timeouts
        tunnel = t.tunnel if t.tunnel is not None else ft.tunnel
        tc = tunnel if tunnel is not None else ft.client
        ts = tunnel if tunnel is not None else t.server
        if self.c2s is not None and self.c2s.eof and ft.client_fin is not None:
            tc = ft.client_fin
        if self.s2c is not None and self.s2c.eof and t.server_fin is not None:
            ts = t.server_fin
        return tc, ts

    def _idle_deadline(self) -> float | None:
        tc, ts = self._idle_limits()
        if tc is None:
            return None if ts is None else self.last_s + ts
        return self.last_c + tc if ts is None else min(self.last_c + tc, self.last_s + ts)

    def _arm_idle(self) -> None:
        deadline = self._idle_deadline()
        if deadline is not None:
            self.timer = self.loop.call_at(deadline, self._on_idle_timer)

    def _on_idle_timer(self) -> None:
        self.timer = None
        now = self.loop.time()
        tc, ts = self._idle_limits()
        if tc is not None and now >= self.last_c + tc:
            self.termination = "cD"
            self.close()
        elif ts is not None and now >= self.last_s + ts:
            self.termination = "sD"
            self.close()
        else:
            self._arm_idle()

    # -- timers and close ---------------------------------------------------------------------
    def _arm(self, delay: float | None, cb: object) -> None:
        self._cancel_timer()
        if delay is not None:
            self.timer = self.loop.call_later(delay, cb)  # type: ignore[arg-type]

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()  # type: ignore[attr-defined]
            self.timer = None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._cancel_timer()
        if self.queued:
            self.rt.unqueue(self)
        for half in (self.c2s, self.s2c):
            if half is not None:
                half.stop()
        if self.termination[0] in "CS" and self.termination[1] == "D":
            self._rst_client()
        elif self.c2s is None:
            self._drain_client()
        if self.fe.cfg.log_format:
            # %fi/%fp and %bi/%bp are written after the sockets are closed
            self.local_addr()
            if self.ssock is not None and self.c2s is not None:
                with contextlib.suppress(OSError):
                    self.backend_local = self.ssock.getsockname()
        self.poller.forget(self.csock.fileno())
        self.csock.close()
        if self.ssock is not None:
            self.poller.forget(self.ssock.fileno())
            self.ssock.close()
        self.rt.stream_closed(self)

    def _drain_client(self) -> None:
        """Reads what the client already sent, as HAProxy has it buffered, so close is a FIN."""
        with contextlib.suppress(OSError):
            self.csock.recv_into(relay.BUFFER)

    @property
    def bytes_in(self) -> int:
        return self.c2s.nbytes if self.c2s is not None else 0

    @property
    def bytes_out(self) -> int:
        return self.s2c.nbytes if self.s2c is not None else 0
