"""Server health checks: TCP connect or `tcp-check` rules, run from the server's namespace."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nsproxy.ops.stat_counters as stat_counters
from nsproxy import proxy_protocol as pp
from nsproxy.config.model import TcpCheckRule
from nsproxy.ops import log
from nsproxy.runtime import connect

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
    "L7TOUT": ("Layer7 timeout", False, False),
    "L7RSP": ("Layer7 invalid response", False, False),
    "L7OK": ("Layer7 check passed", True, True),
}


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one check: HAProxy status name, info text, duration in ms."""

    status: str
    info: str = ""
    duration: int = 0

    @property
    def passed(self) -> bool:
        return STATUSES[self.status][1]

    def reason(self) -> str:
        desc, _, with_code = STATUSES[self.status]
        text = f", reason: {desc}"
        if with_code:
            text += ", code: 0"
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
        self.rules: tuple[TcpCheckRule, ...] = srv.backend.cfg.tcp_check
        self.rise = self.cfg.rise
        self.fall = self.cfg.fall
        # HAProxy starts a checked server UP, one failure away from DOWN
        self.health = 0 if srv.admin_maint else self.rise
        self.family, self.host, self.port = self._target()
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
            self._set_up(None if logged else result)
        elif not result.passed and self.health == 0 and srv.up:
            self._set_down(None if logged else result)

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
        msg = (
            f"{'Backup ' if srv.backup else ''}Server {be.name}/{srv.name} is UP{why}. "
            f"{act} active and {bck} backup servers online.{running_backup} "
            f"{moved} sessions requeued, 0 total in queue."
        )
        log.warning(msg)
        be.logger.emit(LOG_NOTICE, msg)

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
        try:
            status, info = await run.execute()
        except _Failed as exc:
            status, info = exc.result.status, exc.result.info
        finally:
            run.close()
        return Result(status, info, int((loop.time() - t0) * 1000))


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
        self.buf = bytearray()
        self.eof = False
        self.step = 0
        self.rule: TcpCheckRule | None = None
        self.must_read = False

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
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
            return "L4OK", ""
        last = rules[-1]
        if last.action == "connect":
            return "L4OK", "(tcp-check)"
        return "L7OK", "(tcp-check)"

    def _fail(self, status: str, info: str) -> _Failed:
        return _Failed(Result(status, info))

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

    async def _send(self, data: bytes) -> None:
        assert self.sock is not None
        try:
            await asyncio.wait_for(self.loop.sock_sendall(self.sock, data), self._timeout_left())
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
