"""Loopback harness: raw bytes through a local HAProxy 2.6 to a recording backend and back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from lab.netlab import stop_listener

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

Done = Callable[[bytes], bool]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def head_done(buf: bytes) -> bool:
    """True once a whole head arrived (no body expected)."""
    return b"\r\n\r\n" in buf


def _chunked_done(body: bytes) -> bool:
    last = 0 if body.startswith(b"0\r\n") else body.find(b"\r\n0\r\n") + 2
    return (last >= 0 and body.find(b"\r\n\r\n", last) >= 0) or body[last:] == b"0\r\n\r\n"


def message_done(buf: bytes) -> bool:
    """True once one message forwarded by HAProxy (lower-case names) is complete.

    Interim 1xx heads count as part of the message; a message without a length never ends.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = buf[:end].lower() + b"\r\n"
    body = buf[end + 4 :]
    if head.startswith(b"http/1.1 1") and not head.startswith(b"http/1.1 101"):
        return message_done(body)
    if head.startswith(b"head ") or head.startswith(b"http/1.1 101"):
        return True
    if b"\r\ntransfer-encoding: chunked\r\n" in head:
        return _chunked_done(body)
    at = head.find(b"\r\ncontent-length: ")
    if at >= 0:
        n = int(head[at + 18 : head.find(b"\r\n", at + 2)])
        return len(body) >= n
    return (
        head.startswith(b"http/1.1 204")
        or head.startswith(b"http/1.1 304")
        or (not head.startswith(b"http/"))
    )


def length_done(n: int) -> Done:
    """True once the head and n body bytes arrived."""

    def done(buf: bytes) -> bool:
        end = buf.find(b"\r\n\r\n")
        return end >= 0 and len(buf) >= end + 4 + n

    return done


@dataclass
class Backend:
    """A loopback server that records each connection's bytes and answers with a script.

    `responses[i]` is sent on the i-th connection once `done(received)` holds (or, with
    `responder`, what it returns for the bytes received); the connection then closes if
    `close_after` is set, else it stays open until the peer closes.
    """

    responses: list[bytes]
    responder: Callable[[bytes], bytes] | None = None
    done: Done = message_done
    close_after: bool = True
    received: list[bytearray] = field(default_factory=list)
    sock: socket.socket = field(default_factory=socket.socket)

    def __post_init__(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.cond:
                idx = len(self.received)
                self.received.append(bytearray())
            threading.Thread(target=self._handle, args=(c, idx), daemon=True).start()

    def _handle(self, c: socket.socket, idx: int) -> None:
        buf = self.received[idx]
        answered = False
        with c:
            c.settimeout(10)
            try:
                while True:
                    if not answered and self.done(bytes(buf)):
                        answered = True
                        if self.responder is not None:
                            c.sendall(self.responder(bytes(buf)))
                        elif idx < len(self.responses):
                            c.sendall(self.responses[idx])
                        if self.close_after:
                            return
                    data = c.recv(65536)
                    if not data:
                        return
                    with self.cond:
                        buf += data
                        self.cond.notify_all()
            except OSError:
                return
            finally:
                with self.cond:
                    self.cond.notify_all()

    def wait(self, idx: int, done: Done, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) <= idx or not done(bytes(self.received[idx])):
                left = deadline - time.monotonic()
                if left <= 0:
                    got = bytes(self.received[idx]) if len(self.received) > idx else None
                    raise TimeoutError(f"backend connection {idx} got {got!r}")
                self.cond.wait(left)
            return bytes(self.received[idx])

    def close(self) -> None:
        stop_listener(self.sock, self.thread)


def config(
    port: int,
    backend_port: int,
    *,
    frontend: str = "",
    backend: str = "",
    global_: str = "",
    defaults: str = "",
) -> str:
    return f"""global
 {global_}
defaults
 mode http
 timeout client 5s
 timeout server 5s
 timeout connect 5s
 {defaults}
frontend f
 bind 127.0.0.1:{port}
 {frontend}
 default_backend b
backend b
 {backend}
 server s 127.0.0.1:{backend_port}
"""


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def haproxy(cfg: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run `haproxy -db -f cfg` until the block ends; wait until it listens on `port`."""
    with tempfile.TemporaryDirectory(prefix="nsp-h1-") as tmp:
        path = os.path.join(tmp, "h.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 10
            while not _listening(port):
                if proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr else b""
                    raise RuntimeError(f"haproxy exited: {err!r}")
                if time.monotonic() > deadline:
                    raise TimeoutError("haproxy did not listen")
                time.sleep(0.02)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def exchange(
    port: int, data: bytes, done: Done | None = None, timeout: float = 10.0, shut: bool = False
) -> bytes:
    """Send `data`, read until `done(reply)` holds or the proxy closes; return the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = bytearray()
        deadline = time.monotonic() + timeout
        while done is None or not done(bytes(out)):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"client got {bytes(out)!r}") from None
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)


@contextmanager
def through(
    responses: list[bytes], *, done: Done = message_done, close_after: bool = True, **cfg: str
) -> Iterator[tuple[int, Backend]]:
    """An HAProxy in front of a scripted backend: yields (haproxy port, backend)."""
    be = Backend(responses, done=done, close_after=close_after)
    port = free_port()
    try:
        with haproxy(config(port, be.port, **cfg), port):
            yield port, be
    finally:
        be.close()
