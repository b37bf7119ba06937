"""The `stats socket` runtime API: HAProxy's text protocol on UNIX and TCP sockets."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from typing import TYPE_CHECKING

from nsproxy.config.model import StatsSocketCfg
from nsproxy.ops.commands import TABLE
from nsproxy.ops.runtime_api import LEVEL_NAMES, PAYLOAD, CommandTable, Session

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

_MAX_LINE = 65536
_MAX_PAYLOAD = 1 << 20


class CliConn:
    """One client: reads lines, runs them, writes the answers; one line unless `prompt`."""

    def __init__(self, server: StatsSocket, sock: socket.socket) -> None:
        self.server = server
        self.loop = server.rt.loop
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.session = Session(server.rt, LEVEL_NAMES[server.cfg.level], server.cfg.expose_fd, sock)
        self.closing = False
        self.closed = False
        self.timer: object = None
        self.loop.add_reader(sock.fileno(), self._on_read)
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()  # type: ignore[attr-defined]
        self.timer = self.loop.call_later(self.server.rt.config.global_.stats_timeout, self.close)

    def _on_read(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        self._arm()
        if not data:
            if self.inbuf.strip():
                self._run_line(self.inbuf.decode("utf-8", "replace"))
            self.inbuf.clear()
            self.closing = True
            self._flush()
            return
        self.inbuf += data
        while not self.closing and not self.closed:
            nl = self.inbuf.find(b"\n")
            if nl < 0:
                if len(self.inbuf) > _MAX_LINE:
                    self.close()
                return
            line = self.inbuf[:nl].decode("utf-8", "replace").rstrip("\r")
            if line.endswith("<<"):  # a payload follows, up to an empty line
                end = self.inbuf.find(b"\n\n", nl)
                if end < 0:
                    if len(self.inbuf) > _MAX_PAYLOAD:
                        self.close()
                    return
                payload = self.inbuf[nl + 1 : end + 1]
                self.session.state[PAYLOAD] = payload.decode("utf-8", "replace")
                line = line[:-2]
                del self.inbuf[: end + 2]
            else:
                del self.inbuf[: nl + 1]
            self._run_line(line)
            self.session.state.pop(PAYLOAD, None)
            if not self.session.prompt:
                self.closing = True
            elif not self.session.end:
                self.outbuf += b"> "
            if self.session.end:
                self.closing = True
            self._flush()

    def _run_line(self, line: str) -> None:
        self.outbuf += self.server.table.run_line(self.session, line).encode()

    def _flush(self) -> None:
        if self.closed:
            return
        while self.outbuf:
            try:
                n = self.sock.send(self.outbuf)
            except (BlockingIOError, InterruptedError):
                self.loop.add_writer(self.sock.fileno(), self._flush)
                return
            except OSError:
                self.close()
                return
            del self.outbuf[:n]
        with contextlib.suppress(Exception):
            self.loop.remove_writer(self.sock.fileno())
        if self.closing:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
            self.loop.remove_writer(self.sock.fileno())
        self.sock.close()
        self.server.conns.discard(self)


class StatsSocket:
    """One `stats socket` line: a listening socket and its clients."""

    def __init__(self, rt: Runtime, cfg: StatsSocketCfg, table: CommandTable = TABLE) -> None:
        self.rt = rt
        self.cfg = cfg
        self.table = table
        self.sock: socket.socket | None = None
        self.conns: set[CliConn] = set()

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
        if self.sock is not None:
            self.rt.loop.add_reader(self.sock.fileno(), self._on_accept)

    def _on_accept(self) -> None:
        assert self.sock is not None
        for _ in range(16):
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
            with contextlib.suppress(Exception):
                self.rt.loop.remove_reader(self.sock.fileno())
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
