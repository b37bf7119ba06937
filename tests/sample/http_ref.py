"""HAProxy 2.6 in HTTP mode on loopback, in front of a recording backend: what the server got
and what the client got, for one request at a time."""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from lab.netlab import accept_threads, free_port, stop_listener

from .haproxy_ref import HAPROXY, wait_listening

_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*([0-9]+)\r?$")
DEFAULT_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Srv: a\r\n\r\nok"


def read_message(
    sock: socket.socket, buf: bytearray, timeout: float = 5.0, response: bool = False
) -> bytes | None:
    """One HTTP message (head, then a Content-Length body) from `sock`; None at EOF first.

    A `response` without Content-Length runs to the end of the connection. Bytes after a
    message stay in `buf` for the next call.
    """
    sock.settimeout(timeout)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buf[: end + 4])
            m = _LENGTH.search(head)
            size = len(head) + (int(m.group(1)) if m else 0)
            if len(buf) >= size and (m or not response):
                msg = bytes(buf[:size])
                del buf[:size]
                return msg
        chunk = sock.recv(65536)
        if not chunk:
            if buf:
                msg = bytes(buf)
                buf.clear()
                return msg
            return None
        buf += chunk


@dataclass
class Recorder:
    """A backend that records every request head it reads and answers `response`."""

    port: int
    response: bytes = DEFAULT_RESPONSE
    seen: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cond: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.cond = threading.Condition(self.lock)
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.thread = accept_threads(self.listener, self._conn)

    def _conn(self, conn: socket.socket) -> None:
        buf = bytearray()
        with conn:
            while True:
                try:
                    msg = read_message(conn, buf, timeout=30)
                except OSError:
                    return
                if msg is None:
                    return
                with self.cond:
                    self.seen.append(msg)
                    self.cond.notify_all()
                    response = self.response
                with suppress(OSError):
                    conn.sendall(response)

    def take(self, timeout: float = 5.0) -> bytes:
        """The oldest request not taken yet; raises if none arrives in time."""
        with self.cond:
            if not self.cond.wait_for(lambda: bool(self.seen), timeout):
                raise TimeoutError("the backend received no request")
            return self.seen.pop(0)

    def close(self) -> None:
        stop_listener(self.listener, self.thread)


class HttpRef:
    """One HAProxy process: frontend `fe` (rules given) to backend `be` (the recorder)."""

    def __init__(self, port: int, recorder: Recorder) -> None:
        self.port = port
        self.recorder = recorder

    def exchange(self, request: bytes) -> tuple[bytes, bytes | None]:
        """Sends `request` on a new connection: (response bytes, request the server got or
        None when HAProxy answered itself)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
            c.sendall(request)
            got = read_message(c, bytearray(), response=True)
        assert got is not None, "no response from haproxy"
        with self.recorder.cond:
            seen = self.recorder.seen.pop(0) if self.recorder.seen else None
        return got, seen


@contextmanager
def http_haproxy(
    frontend: str, backend: str = "", defaults: str = "", extra: str = ""
) -> Iterator[HttpRef]:
    """HAProxy 2.6 with `frontend` lines in frontend `fe`, `backend` lines in `be`, and
    `extra` sections (userlists...) first."""
    assert HAPROXY is not None
    port, sport = free_port(), free_port()
    rec = Recorder(sport)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "http.cfg"
        cfg.write_text(
            f"global\n  stats timeout 5s\n{extra}"
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
            f"  timeout connect 2s\n  timeout tarpit 50ms\n{defaults}\n"
            f"frontend fe\n  bind 127.0.0.1:{port}\n{frontend}\n  default_backend be\n"
            f"backend be\n{backend}\n  server s1 127.0.0.1:{sport}\n"
        )
        proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_listening(port, proc)
            yield HttpRef(port, rec)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            rec.close()
