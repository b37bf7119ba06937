"""The `stats socket` runtime API: HAProxy's text protocol on UNIX and TCP sockets."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from typing import TYPE_CHECKING

from nsproxy.config.model import StatsSocketCfg
from nsproxy.ops.cli_stream import CliStream
from nsproxy.ops.commands import TABLE
from nsproxy.ops.runtime_api import LEVEL_NAMES, SESSION_TIMEOUT, CommandTable, Session

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime


class CliConn:
    """One client of a stats socket: a CliStream on the event loop.

    One command runs per turn of the loop, and none while the client has more than
    OUTPUT_CAP bytes of answers unread; input is only read when nothing is pending.
    `stats timeout` runs from the last complete line or the last answer bytes it took.
    """

    def __init__(self, server: StatsSocket, sock: socket.socket) -> None:
        self.server = server
        self.loop = server.rt.loop
        self.sock = sock
        self.session = Session(server.rt, LEVEL_NAMES[server.cfg.level], server.cfg.expose_fd, sock)
        self.cli = CliStream(server.table, self.session)
        self.closed = False
        self.reading = False
        self.writing = False
        self.step: asyncio.Handle | None = None
        self.timer: asyncio.TimerHandle | None = None
        self._reading(True)
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        delay = self.session.state.get(SESSION_TIMEOUT, self.server.rt.config.global_.stats_timeout)
        assert isinstance(delay, float)
        self.timer = self.loop.call_later(delay, self.close)

    def _reading(self, on: bool) -> None:
        if on == self.reading or self.closed:
            return
        self.reading = on
        if on:
            self.loop.add_reader(self.sock.fileno(), self._on_read)
        else:
            self.loop.remove_reader(self.sock.fileno())

    def _on_read(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not self.cli.feed(data):
            self.close()
            return
        self._pump()

    def _pump(self) -> None:
        """Runs the next command, if the client has room for its answer; then yields."""
        self.step = None
        if self.closed:
            return
        if self.cli.step():
            self._arm()
        self._flush()
        if self.closed:
            return
        if self.cli.runnable() and self.step is None:
            self.step = self.loop.call_soon(self._pump)
        self._reading(self.cli.wants_input())

    def _flush(self) -> None:
        if self.closed:
            return
        out = self.cli.outbuf
        while out:
            try:
                n = self.sock.send(out)
            except (BlockingIOError, InterruptedError):
                if not self.writing:
                    self.writing = True
                    self.loop.add_writer(self.sock.fileno(), self._on_writable)
                return
            except OSError:
                self.close()
                return
            self.cli.sent(n)
            self._arm()
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.sock.fileno())
        if self.cli.finished():
            self.close()

    def _on_writable(self) -> None:
        self._flush()
        if not self.closed:
            if self.cli.runnable() and self.step is None:
                self.step = self.loop.call_soon(self._pump)
            self._reading(self.cli.wants_input())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for handle in (self.timer, self.step):
            if handle is not None:
                handle.cancel()
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
            self.loop.remove_writer(self.sock.fileno())
        self.sock.close()
        self.server.released(self)


class StatsSocket:
    """One `stats socket` line: a listening socket and its clients."""

    def __init__(self, rt: Runtime, cfg: StatsSocketCfg, table: CommandTable = TABLE) -> None:
        self.rt = rt
        self.cfg = cfg
        self.table = table
        self.sock: socket.socket | None = None
        self.conns: set[CliConn] = set()
        self.maxconn = cfg.maxconn or rt.config.global_.stats_maxconn
        self.accepting = False

    def open(self) -> None:
        a = self.cfg.addr
        sock = socket.socket(a.family, socket.SOCK_STREAM)
        try:
            if a.family == socket.AF_UNIX:
                # Bound under a temporary name then renamed over the path: a reload never
                # leaves the path missing, and the old process's socket keeps its clients.
                tmp = f"{a.host}.{os.getpid()}.tmp"
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                sock.bind(tmp)
                if self.cfg.mode is not None:
                    os.chmod(tmp, self.cfg.mode)
                sock.listen(16)
                os.rename(tmp, a.host)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind(a.sockaddr())
                sock.listen(16)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def start(self) -> None:
        self._accepting(True)

    def _accepting(self, on: bool) -> None:
        """Watches the listening socket, or leaves new clients in its backlog (at maxconn)."""
        if self.sock is None or on == self.accepting:
            return
        self.accepting = on
        if on:
            self.rt.loop.add_reader(self.sock.fileno(), self._on_accept)
        else:
            self.rt.loop.remove_reader(self.sock.fileno())

    def released(self, conn: CliConn) -> None:
        """A client has gone: one more may be accepted."""
        self.conns.discard(conn)
        if len(self.conns) < self.maxconn:
            self._accepting(True)

    def _on_accept(self) -> None:
        assert self.sock is not None
        for _ in range(16):
            if len(self.conns) >= self.maxconn:
                self._accepting(False)
                return
            try:
                csock, _peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    return
                continue
            csock.setblocking(False)
            self.conns.add(CliConn(self, csock))

    def close(self, clients: bool = True) -> None:
        if self.sock is not None:
            self._accepting(False)
            a = self.cfg.addr
            if a.family == socket.AF_UNIX:
                with contextlib.suppress(OSError):
                    # Only our own socket file: after a reload the path is the new process's.
                    if os.stat(a.host).st_ino == os.fstat(self.sock.fileno()).st_ino:
                        os.unlink(a.host)
            self.sock.close()
            self.sock = None
        if clients:
            for c in list(self.conns):
                c.close()


class StatsSockets:
    """Every `stats socket` of the configuration, opened and closed together."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.sockets = [StatsSocket(rt, cfg) for cfg in rt.config.global_.stats_sockets]

    def open(self) -> list[tuple[StatsSocket, OSError]]:
        """Opens every socket; returns those that failed with their error."""
        failed = []
        for s in self.sockets:
            try:
                s.open()
            except OSError as exc:
                failed.append((s, exc))
        return failed

    def start(self) -> None:
        for s in self.sockets:
            s.start()

    def close(self) -> None:
        for s in self.sockets:
            s.close()
