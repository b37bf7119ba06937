"""The `stats socket` runtime API: HAProxy's text protocol on UNIX and TCP sockets."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import os
import socket
from typing import TYPE_CHECKING

from nsproxy.config.model import StatsSocketCfg
from nsproxy.ops.commands import TABLE
from nsproxy.ops.runtime_api import (
    LEVEL_NAMES,
    SESSION_TIMEOUT,
    CommandTable,
    Session,
    split_commands,
)

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

MAX_LINE = 65536
# Answers held for one client before it must read them: past this, its commands wait and its
# socket is not read (HAProxy's CLI stops as its output buffer fills).
OUTPUT_CAP = 65536


class CliConn:
    """One client: reads lines, runs them, writes the answers; one line unless `prompt`.

    One command runs per turn of the event loop, and none while the client has more than
    OUTPUT_CAP bytes of answers unread; input is only read when nothing is pending, so a
    client that sends and never reads holds at most a line and OUTPUT_CAP of output.
    `stats timeout` runs from the last complete line or the last answer bytes it took.
    """

    def __init__(self, server: StatsSocket, sock: socket.socket) -> None:
        self.server = server
        self.loop = server.rt.loop
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.pending: collections.deque[str] = collections.deque()
        self.session = Session(server.rt, LEVEL_NAMES[server.cfg.level], server.cfg.expose_fd, sock)
        self.eof = False
        self.closing = False
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
        if data:
            self.inbuf += data
            if b"\n" not in self.inbuf and len(self.inbuf) > MAX_LINE:
                self.close()
                return
        else:
            self.eof = True
        self._pump()

    def _next_line(self) -> str | None:
        if self.closing:
            return None
        nl = self.inbuf.find(b"\n")
        if nl >= 0:
            line = self.inbuf[:nl].decode("utf-8", "surrogateescape").rstrip("\r")
            del self.inbuf[: nl + 1]
            return line
        if self.eof and self.inbuf.strip():
            line = self.inbuf.decode("utf-8", "surrogateescape")
            self.inbuf.clear()
            return line
        return None

    def _pump(self) -> None:
        """Runs the next command, if the client has room for its answer; then yields."""
        self.step = None
        if self.closed:
            return
        if not self.pending and len(self.outbuf) <= OUTPUT_CAP:
            line = self._next_line()
            if line is not None:
                self.pending.extend(split_commands(line))
        if self.pending and len(self.outbuf) <= OUTPUT_CAP:
            text = self.pending.popleft()
            if not self.session.end:
                answer = self.server.table.execute(self.session, text)
                if answer or not self.session.end:
                    self.outbuf += answer.encode("utf-8", "surrogateescape") + b"\n"
            if self.session.end:
                self.pending.clear()
            if not self.pending:
                self._line_done()
        if self.eof and not self.pending and not self._has_line():
            self.closing = True
        self._flush()
        self._schedule()

    def _has_line(self) -> bool:
        return not self.closing and (b"\n" in self.inbuf or (self.eof and bool(self.inbuf.strip())))

    def _line_done(self) -> None:
        self._arm()
        if not self.session.prompt or self.session.end:
            self.closing = True
        elif not (self.eof and not self._has_line()):
            self.outbuf += b"> "

    def _schedule(self) -> None:
        if self.closed:
            return
        room = len(self.outbuf) <= OUTPUT_CAP
        busy = bool(self.pending) or self._has_line()
        if busy and room and self.step is None:
            self.step = self.loop.call_soon(self._pump)
        self._reading(not busy and room and not self.eof and not self.closing)

    def _flush(self) -> None:
        if self.closed:
            return
        while self.outbuf:
            try:
                n = self.sock.send(self.outbuf)
            except (BlockingIOError, InterruptedError):
                if not self.writing:
                    self.writing = True
                    self.loop.add_writer(self.sock.fileno(), self._on_writable)
                return
            except OSError:
                self.close()
                return
            del self.outbuf[:n]
            self._arm()
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.sock.fileno())
        if self.closing and not self.pending:
            self.close()

    def _on_writable(self) -> None:
        self._flush()
        self._schedule()

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
