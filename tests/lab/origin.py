"""A test HTTP/1.1 origin: answers each request it reads, records what reached it."""

from __future__ import annotations

import contextlib
import re
import socket
import threading

from lab.netlab import accept_threads, socket_in, stop_listener

_CLOSE = re.compile(rb"(?im)^connection:\s*close")
_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")


class Origin:
    """Answers `answer` to every request (a Content-Length body is read first); a request
    with `Connection: close` ends its connection after the answer.

    It keeps each connection's bytes as they came (`received()`, in accept order), each
    request (`requests`: head, blank line, body), and counts connections (`accepted`,
    `closed`: those the peer or the answer ended). `addr` is the address as a `server` line
    writes it.
    """

    def __init__(self, sock: socket.socket, answer: bytes, addr: str) -> None:
        sock.listen(64)
        self.sock = sock
        self.answer = answer
        self.addr = addr
        self.requests: list[bytes] = []
        self.accepted = 0
        self.closed = 0
        self._raw: list[bytearray] = []
        self._lock = threading.Lock()
        self._acceptor = accept_threads(sock, self._serve)

    @classmethod
    def tcp(cls, port: int, answer: bytes, ns: str | None = None) -> Origin:
        """On 127.0.0.1:`port` (0: any free port) in namespace `ns`."""
        sock = socket_in(ns, socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return cls(sock, answer, f"127.0.0.1:{sock.getsockname()[1]}")

    @classmethod
    def unix(cls, path: str, answer: bytes) -> Origin:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        return cls(sock, answer, path)

    def _serve(self, conn: socket.socket) -> None:
        seen = bytearray()
        with self._lock:
            self._raw.append(seen)
            self.accepted += 1
        try:
            with conn, contextlib.suppress(OSError):
                conn.settimeout(30)
                self._exchanges(conn, seen)
        finally:
            with self._lock:
                self.closed += 1

    def _exchanges(self, conn: socket.socket, seen: bytearray) -> None:
        buf = b""

        def more() -> bool:
            nonlocal buf
            data = conn.recv(65536)
            with self._lock:
                seen.extend(data)
            buf += data
            return bool(data)

        while True:
            while b"\r\n\r\n" not in buf:
                if not more():
                    return
            head, _, buf = buf.partition(b"\r\n\r\n")
            m = _LENGTH.search(head)
            need = int(m.group(1)) if m else 0
            while len(buf) < need:
                if not more():
                    return
            body, buf = buf[:need], buf[need:]
            with self._lock:
                self.requests.append(head + b"\r\n\r\n" + body)
            conn.sendall(self.answer)
            if _CLOSE.search(head):
                return

    def received(self) -> list[bytes]:
        with self._lock:
            return [bytes(c) for c in self._raw]

    def close(self) -> None:
        stop_listener(self.sock, self._acceptor)
