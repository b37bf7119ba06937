"""Server health checks: TCP connect or `tcp-check` rules, run from the server's namespace,
in TLS with `check-ssl` (or `ssl` on a server checked on its own address and port)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nsproxy.ops.stat_counters as stat_counters
from nsproxy import proxy_protocol as pp
from nsproxy.config.keywords.sslhellochk import SSL_HELLO_RULES
from nsproxy.config.model import TcpCheckRule
from nsproxy.config.model_check import HttpCheckCfg
from nsproxy.ops import log
from nsproxy.proto import sslv3_hello
from nsproxy.runtime import connect, tls_wire
from nsproxy.runtime.xprt_tls import TlsError, TlsTransport, Want

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Backend, Server
    from nsproxy.runtime.process import Runtime

LOG_EMERG = 0
LOG_ALERT = 1
LOG_NOTICE = 5
_LINGER_RST = struct.pack("ii", 1, 0)

# HAProxy's check status: (description, passed, prints "code: N")
STATUSES = {
    "SOCKERR": ("Socket error", False, False),
    "L4OK": ("Layer4 check passed", True, False),
    "L4TOUT": ("Layer4 timeout", False, False),
    "L4CON": ("Layer4 connection problem", False, False),
    "L6OK": ("Layer6 check passed", True, False),
    "L6TOUT": ("Layer6 timeout", False, False),
    "L6RSP": ("Layer6 invalid response", False, False),
    "L7TOUT": ("Layer7 timeout", False, False),
    "L7RSP": ("Layer7 invalid response", False, False),
    "L7OK": ("Layer7 check passed", True, True),
    "L7OKC": ("Layer7 check conditionally passed", True, True),
    "L7STS": ("Layer7 wrong status", False, True),
}


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one check: HAProxy status name, info text, duration in ms."""

    status: str
    info: str = ""
    duration: int = 0
    code: int = 0

    @property
    def passed(self) -> bool:
        return STATUSES[self.status][1]

    def reason(self) -> str:
        desc, _, with_code = STATUSES[self.status]
        text = f", reason: {desc}"
        if with_code:
            text += f", code: {self.code}"
        if self.info:
            text += ', info: "' + self.info.replace('"', '\\"') + '"'
        return text + f", check duration: {self.duration}ms"


class _Failed(Exception):
    def __init__(self, result: Result) -> None:
        self.result = result


def proxy_type(be: Backend) -> str:
    """HAProxy's proxy_type_str(): 'proxy' for a listen section."""
    return "proxy" if be.cfg.is_frontend else "backend"


class ServerCheck:
    """The health check of one server: rise/fall accounting, intervals, state changes."""

    def __init__(self, rt: Runtime, srv: Server) -> None:
        self.rt = rt
        self.srv = srv
        self.cfg = srv.cfg.check
        rules = srv.backend.cfg.tcp_check
        # `option ssl-hello-chk` is a protocol check: no tcp-check step in its messages
        self.ssl_hello = rules == SSL_HELLO_RULES
        self.rules: tuple[TcpCheckRule, ...] = () if self.ssl_hello else rules
        self.http_check: HttpCheckCfg | None = srv.backend.cfg.http_check
        self.rise = self.cfg.rise
        self.fall = self.cfg.fall
        # HAProxy starts a checked server UP, one failure away from DOWN
        # (a server the state file restored DOWN must pass `rise` checks first)
        self.health = 0 if srv.admin_maint or not srv.up else self.rise
        self.family, self.host, self.port = self._target()
        tls = srv.cfg.tls
        # as HAProxy: `check-ssl`, or `ssl` when the check goes to the server's own address
        self.use_ssl = tls is not None and (
            tls.check_ssl or (tls.enabled and self.cfg.port is None and self.cfg.addr is None)
        )
        self.task: asyncio.Task[None] | None = None
        self.last: Result | None = None

    def _target(self) -> tuple[int, str, int]:
        a = self.srv.cfg.addr
        if a.family == socket.AF_UNIX:
            return socket.AF_UNIX, a.host or "", 0
        host = a.host or ("::" if a.family == socket.AF_INET6 else "0.0.0.0")
        family = a.family
        if self.cfg.addr is not None:
            host = self.cfg.addr.strip("[]")
            try:
                family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else 2
            except ValueError:
                info = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0]
                family, host = info[0], str(info[4][0])
        port = self.cfg.port if self.cfg.port is not None else a.port
        return family, host, port

    # -- scheduling ---------------------------------------------------------------------------
    def interval(self) -> float:
        """HAProxy's srv_getinter(): inter when steady UP, downinter when DOWN, else fastinter."""
        c = self.cfg
        if self.health == self.rise + self.fall - 1:
            return c.inter
        if self.health == 0 and not self.srv.up:
            return c.downinter if c.downinter is not None else c.inter
        return c.fastinter if c.fastinter is not None else c.inter

    def start(self, delay: float) -> None:
        self.task = self.rt.loop.create_task(self._run(delay))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self, delay: float) -> None:
        await asyncio.sleep(delay)
        while True:
            if not self.srv.admin_maint:
                self.apply(await self.run_once())
            await asyncio.sleep(self.interval())

    # -- health accounting --------------------------------------------------------------------
    def apply(self, result: Result) -> None:
        previous = self.last
        self.last = result
        srv = self.srv
        srv.check_status = result.status
        before = self.health
        if result.passed:
            if self.health < self.rise + self.fall - 1:
                self.health += 1
                if self.health >= self.rise:
                    self.health = self.rise + self.fall - 1
        elif self.health > 0:
            self.health -= 1
            if self.health < self.rise:
                self.health = 0
        stat_counters.check_done(srv, result.passed, before, self.rise)
        logged = srv.backend.cfg.log_health_checks
        if logged and (
            previous is None or previous.status != result.status or before != self.health
        ):
            self._log_check(result)
        if result.passed and self.health >= self.rise and not srv.up:
            srv.nolb = result.status == "L7OKC"
            self._set_up(None if logged else result)
        elif not result.passed and self.health == 0 and srv.up:
            srv.nolb = False
            self._set_down(None if logged else result)
        elif result.passed and srv.up and srv.nolb != (result.status == "L7OKC"):
            srv.nolb = not srv.nolb  # `http-check disable-on-404`: a 404 stops new traffic
            self._set_up(None if logged else result)

    def _log_check(self, result: Result) -> None:
        """`option log-health-checks`: one line per change of the check's status or health."""
        srv, h = self.srv, self.health
        if h >= self.rise:
            where = f"{h - self.rise + 1}/{self.fall} {'UP' if srv.weight else 'DRAIN'}"
        else:
            where = f"{h}/{self.rise} DOWN"
        msg = (
            f"Health check for {'backup ' if srv.backup else ''}server "
            f"{srv.backend.name}/{srv.name} {'succeeded' if result.passed else 'failed'}"
            f"{result.reason()}, status: {where}."
        )
        log.warning(msg)
        srv.backend.logger.emit(LOG_NOTICE, msg)

    def _counts(self) -> tuple[int, int]:
        servers = self.srv.backend.servers
        act = sum(1 for s in servers if not s.backup and s.usable())
        bck = sum(1 for s in servers if s.backup and s.usable())
        return act, bck

    def _set_down(self, result: Result | None) -> None:
        """The server goes DOWN; `result` is None when its check line already said why."""
        srv = self.srv
        be = srv.backend
        before = sum(self._counts())
        srv.up = False
        be.server_changed(srv, self.rt.clock.time())
        act, bck = self._counts()
        running_backup = " Running on backup." if bck and not act else ""
        why = result.reason() if result else ""
        msg = (
            f"{'Backup ' if srv.backup else ''}Server {be.name}/{srv.name} is DOWN{why}. "
            f"{act} active and {bck} backup servers left.{running_backup} "
            f"{srv.cur_conns} sessions active, 0 requeued, 0 remaining in queue."
        )
        log.warning(msg)
        be.logger.emit(LOG_ALERT, msg)
        if before and not act and not bck:
            log.alert(f"{proxy_type(be)} '{be.name}' has no server available!")
            be.logger.emit(LOG_EMERG, f"{proxy_type(be)} {be.name} has no server available!")

    def _set_up(self, result: Result | None) -> None:
        srv = self.srv
        be = srv.backend
        srv.up = True
        moved = be.server_changed(srv, self.rt.clock.time())
        act, bck = self._counts()
        running_backup = " Running on backup." if bck and not act else ""
        why = result.reason() if result else ""
        state = "stopping" if srv.nolb else "UP"
        msg = (
            f"{'Backup ' if srv.backup else ''}Server {be.name}/{srv.name} is {state}{why}. "
            f"{act} active and {bck} backup servers online.{running_backup} "
            f"{moved} sessions requeued, 0 total in queue."
        )
        log.warning(msg)
        be.logger.emit(LOG_NOTICE, msg)
        if srv.nolb and not act and not bck:
            log.alert(f"{proxy_type(be)} '{be.name}' has no server available!")
            be.logger.emit(LOG_EMERG, f"{proxy_type(be)} {be.name} has no server available!")

    # -- one check ----------------------------------------------------------------------------
    async def run_once(self) -> Result:
        loop = self.rt.loop
        t0 = loop.time()
        inter = self.cfg.inter
        tm = self.srv.backend.cfg.timeouts
        if tm.check is not None:
            conn_timeout = min(tm.connect, inter) if tm.connect is not None else inter
            deadline = None
        else:
            conn_timeout = inter
            deadline = t0 + inter
        run = _Run(self, conn_timeout, deadline, tm.check)
        code = 0
        try:
            if self.http_check is not None:
                status, info, code = await run.http_check(self.http_check)
            elif self.ssl_hello:
                status, info = await run.ssl_hello_check()
            else:
                status, info = await run.execute()
        except _Failed as exc:
            status, info, code = exc.result.status, exc.result.info, exc.result.code
        finally:
            run.close()
        return Result(status, info, int((loop.time() - t0) * 1000), code)


class _Run:
    """The sockets and buffer of one check run."""

    def __init__(
        self, chk: ServerCheck, conn_timeout: float, deadline: float | None, read: float | None
    ) -> None:
        self.chk = chk
        self.loop = chk.rt.loop
        self.conn_timeout = conn_timeout
        self.deadline = deadline
        self.read_timeout = read
        self.read_deadline: float | None = None
        self.sock: socket.socket | None = None
        self.tls: TlsTransport | None = None
        self.buf = bytearray()
        self.eof = False
        self.step = 0
        self.rule: TcpCheckRule | None = None
        self.must_read = False

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            if self.tls is not None:
                self.tls.close()
                self.tls = None
            else:
                self.sock.close()
            self.sock = None

    def _where(self) -> str:
        """HAProxy's suffix naming the tcp-check step that failed."""
        if not self.chk.rules:
            return ""
        if not self.step:
            return " at initial connection step of tcp-check"
        r = self.rule
        assert r is not None
        what = ""
        if r.action == "connect":
            what = f" (connect port {r.arg})" if r.arg else " (connect)"
        elif r.action == "send":
            what = " (send)"
        elif r.action == "string":
            what = f" (expect string '{r.arg}')"
        elif r.action == "rstring":
            what = " (expect regex)"
        return f" at step {self.step} of tcp-check{what}"

    def _left(self, limit: float | None) -> float | None:
        now = self.loop.time()
        ends = [t for t in (self.deadline, None if limit is None else now + limit) if t]
        return max(0.0, min(ends) - now) if ends else None

    async def execute(self) -> tuple[str, str]:
        rules = self.chk.rules
        if not rules or rules[0].action != "connect":
            await self._connect(None)
        for i, rule in enumerate(rules, 1):
            self.step, self.rule = i, rule
            if rule.action == "connect":
                await self._connect(int(rule.arg) if rule.arg else None)
            elif rule.action == "send":
                await self._send(rule.arg.encode("utf-8", "surrogateescape"))
            else:
                await self._expect(rule)
        if not rules:
            return ("L6OK" if self.tls is not None else "L4OK"), ""
        last = rules[-1]
        if last.action == "connect":
            return "L4OK", "(tcp-check)"
        return "L7OK", "(tcp-check)"

    def _fail(self, status: str, info: str, code: int = 0) -> _Failed:
        return _Failed(Result(status, info, code=code))

    async def http_check(self, hc: HttpCheckCfg) -> tuple[str, str, int]:
        """`option httpchk`: one request, the status line (and body) judged as HAProxy does."""
        await self._connect(None)
        await self._send(hc.request())
        bufsize = self.chk.rt.config.global_.bufsize
        wants_body = hc.expect is not None and hc.expect.kind in ("string", "rstring")
        await self._read()
        while not (self.eof or len(self.buf) >= bufsize):
            if not wants_body and (b"\r\n\r\n" in self.buf or b"\n\n" in self.buf):
                break
            await self._read()
        data = bytes(self.buf)
        m = _STATUS_LINE.match(data)
        if m is None:
            raise self._fail("L7RSP", "Invalid HTTP response")
        code = int(m.group(1))
        reason = m.group(2).decode("latin-1").strip()
        if hc.disable_on_404 and code == 404:
            return "L7OKC", "", code
        ex = hc.expect
        if ex is None:
            ok = 200 <= code < 400
        elif ex.kind == "status":
            ok = _status_in(code, ex.pattern)
        elif ex.kind == "rstatus":
            assert ex.regex is not None
            ok = ex.regex.search(str(code)) is not None
        else:
            end = data.find(b"\r\n\r\n")
            body = data[end + 4 :].decode("latin-1") if end >= 0 else ""
            ok = (
                ex.pattern in body
                if ex.kind == "string"
                else bool(ex.regex and ex.regex.search(body))
            )
        if ex is not None and ex.negate:
            ok = not ok
        if ok:
            return "L7OK", "", code
        if ex is not None and ex.kind in ("string", "rstring"):
            raise self._fail("L7RSP", "HTTP content check did not match", code)
        raise self._fail("L7STS", reason, code)

    async def ssl_hello_check(self) -> tuple[str, str]:
        """`option ssl-hello-chk`: an SSLv3 ClientHello; a TLS record type back passes (L6)."""
        await self._connect(None)
        await self._send(sslv3_hello.client_hello(int(time.time())))
        bufsize = self.chk.rt.config.global_.bufsize
        while True:
            try:
                await self._read()
            except _Failed as exc:
                if exc.result.status != "L7TOUT":
                    raise
                raise self._fail("L6TOUT", "") from None
            verdict = sslv3_hello.judge(bytes(self.buf), self.eof or len(self.buf) >= bufsize)
            if verdict is sslv3_hello.Verdict.PASSED:
                return "L6OK", ""
            if verdict is sslv3_hello.Verdict.FAILED:
                raise self._fail("L6RSP", "")
            if verdict is sslv3_hello.Verdict.EMPTY:
                raise self._fail("L6RSP", "TCPCHK got an empty response at step 2")

    def _conn_error(self, exc: OSError) -> _Failed:
        return self._fail("L4CON", _strerror(exc) + self._where())

    async def _connect(self, port: int | None) -> None:
        chk = self.chk
        self.close()
        self.buf.clear()
        self.eof = False
        self.must_read = True
        try:
            sock = connect.open_socket(chk.rt.registry, chk.srv, chk.family, chk.srv.netns)
        except OSError as exc:
            raise self._fail("SOCKERR", _strerror(exc) + self._where()) from None
        self.sock = sock
        addr: str | tuple[str, int] = (
            chk.host if chk.family == socket.AF_UNIX else (chk.host, port or chk.port)
        )
        try:
            await asyncio.wait_for(
                self.loop.sock_connect(sock, addr), self._left(self.conn_timeout)
            )
        except TimeoutError:
            raise self._fail("L4TOUT", self._where()) from None
        except OSError as exc:
            raise self._conn_error(exc) from None
        if self.read_timeout is not None:
            self.read_deadline = self.loop.time() + self.read_timeout
        head = self._proxy_header(sock)
        if head:
            await self._send(head)
        if chk.use_ssl:
            await self._handshake(sock)

    async def _wait_io(self, fd: int, write: bool, timeout: float | None) -> None:
        """Until `fd` is readable (writable); raises TimeoutError."""
        fut: asyncio.Future[None] = self.loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        if write:
            self.loop.add_writer(fd, ready)
        else:
            self.loop.add_reader(fd, ready)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            if write:
                self.loop.remove_writer(fd)
            else:
                self.loop.remove_reader(fd)

    async def _handshake(self, sock: socket.socket) -> None:
        """The TLS handshake of a check, within the connect timeout: L6TOUT, L6RSP."""
        chk = self.chk
        client = tls_wire.state(chk.rt).server_client(chk.srv)
        ctx, name, session = client.connect_params(None)
        tx = TlsTransport(sock, ctx, False, name, session)
        self.tls = tx
        while True:
            try:
                want = tx.handshake()
            except TlsError as exc:
                client.sessions.forget()
                raise self._fail("L6RSP", exc.reason + self._where()) from None
            if want is Want.DONE:
                client.sessions.keep(tx.obj)
                return
            try:
                await self._wait_io(tx.fd, want is Want.WRITE, self._left(self.conn_timeout))
            except TimeoutError:
                raise self._fail("L6TOUT", self._where()) from None

    def _proxy_header(self, sock: socket.socket) -> bytes:
        c = self.chk
        scfg = c.srv.cfg
        if not (c.cfg.send_proxy or (scfg.send_proxy and c.cfg.port is None and not c.cfg.addr)):
            return b""
        try:
            local, peer = sock.getsockname(), sock.getpeername()
        except OSError:
            local = peer = None
        src = (local[0], local[1]) if isinstance(local, tuple) else None
        dst = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        if scfg.send_proxy == 2:
            local_cmd = not c.rt.config.global_.pp2_never_send_local
            return pp.encode_v2(src, dst, local=local_cmd)
        return pp.encode_v1(src, dst)

    def _timeout_left(self) -> float | None:
        ends = [t for t in (self.deadline, self.read_deadline) if t is not None]
        return max(0.0, min(ends) - self.loop.time()) if ends else None

    async def _tls_send(self, tx: TlsTransport, data: bytes) -> None:
        view = memoryview(data)
        while view or tx.want_write:
            if tx.want_write and not tx.flush():
                await self._wait_io(tx.fd, True, self._timeout_left())
                continue
            if view:
                try:
                    view = view[tx.send(view) :]
                except BlockingIOError:
                    await self._wait_io(tx.fd, True, self._timeout_left())

    async def _tls_recv(self, tx: TlsTransport, size: int) -> bytes:
        buf = bytearray(size)
        while True:
            try:
                n = tx.recv_into(buf)
            except BlockingIOError:
                await self._wait_io(tx.fd, False, self._timeout_left())
                continue
            return bytes(buf[:n])

    async def _send(self, data: bytes) -> None:
        assert self.sock is not None
        try:
            if self.tls is not None and self.tls.done:
                await self._tls_send(self.tls, data)
            else:
                await asyncio.wait_for(
                    self.loop.sock_sendall(self.sock, data), self._timeout_left()
                )
        except TimeoutError:
            raise self._fail("L7TOUT", self._where()) from None
        except OSError as exc:
            raise self._conn_error(exc) from None
        self.buf.clear()
        self.must_read = True

    async def _read(self) -> None:
        assert self.sock is not None
        room = self.chk.rt.config.global_.bufsize - len(self.buf)
        try:
            if self.tls is not None:
                data = await self._tls_recv(self.tls, max(room, 1))
            else:
                data = await asyncio.wait_for(
                    self.loop.sock_recv(self.sock, max(room, 1)), self._timeout_left()
                )
        except TimeoutError:
            raise self._fail("L7TOUT", self._where()) from None
        except OSError as exc:
            raise self._conn_error(exc) from None
        if data:
            self.buf += data
        else:
            self.eof = True

    async def _expect(self, rule: TcpCheckRule) -> None:
        bufsize = self.chk.rt.config.global_.bufsize
        regex = (
            re.compile(rule.arg.encode("utf-8", "surrogateescape"))
            if rule.action == "rstring"
            else None
        )
        needle = rule.arg.encode("utf-8", "surrogateescape")
        if self.must_read:
            self.must_read = False
            await self._read()
        while True:
            data = bytes(self.buf)
            match = bool(regex.search(data)) if regex is not None else needle in data
            last = self.eof or len(self.buf) >= bufsize
            if match or last:
                break
            await self._read()
        if match != rule.negate:
            return
        if not self.buf:
            raise self._fail("L7RSP", f"TCPCHK got an empty response at step {self.step}")
        kind = " (regex)" if regex is not None else f" '{rule.arg}'"
        what = "TCPCHK matched unwanted content" if match else "TCPCHK did not match content"
        raise self._fail("L7RSP", f"{what}{kind} at step {self.step}")


_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})([^\r\n]*)\r?\n")


def _status_in(code: int, spec: str) -> bool:
    """`http-check expect status 200,300-399`: a list of codes and ranges."""
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        if lo.isdigit() and (hi.isdigit() or not hi) and int(lo) <= code <= int(hi or lo):
            return True
    return False


def _strerror(exc: OSError) -> str:
    """The C library's text for the error, as HAProxy prints it."""
    return os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))


class HealthChecks:
    """Every server check of a runtime; started once listeners are up."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.checks: list[ServerCheck] = []

    def start(self) -> None:
        for be in self.rt.backends.values():
            for srv in be.servers:
                if srv.cfg.check.enabled and not srv.cfg.use_client_netns:
                    self.checks.append(ServerCheck(self.rt, srv))
        if not self.checks:
            return
        # HAProxy spreads the first checks evenly over the shortest interval
        first = min(c.interval() for c in self.checks)
        n = len(self.checks)
        for i, chk in enumerate(self.checks):
            chk.start(first * i / n)

    def stop(self) -> None:
        tasks = [chk.task for chk in self.checks if chk.task is not None]
        for chk in self.checks:
            chk.stop()
        loop = self.rt.loop
        if tasks and not loop.is_running() and not loop.is_closed():
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
