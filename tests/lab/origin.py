"""A test HTTP/1.1 origin: answers each request head it reads, keeps each connection's bytes."""

from __future__ import annotations

import contextlib
import re
import socket
import threading

from lab.netlab import socket_in, stop_listener

_CLOSE = re.compile(rb"(?im)^connection:\s*close")


class Origin:
    """Answers `answer` to every request head (no bodies); a head with `Connection: close`
    ends its connection after the answer. `received()`: the bytes of each connection, in the
    order they were accepted."""

    def __init__(self, sock: socket.socket, answer: bytes) -> None:
        sock.listen(64)
        self.sock = sock
        self.addr: str | tuple[str, int] = sock.getsockname()  # a UNIX path, or (host, port)
        self.answer = answer
        self.conns: list[bytearray] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @classmethod
    def tcp(cls, port: int, answer: bytes, ns: str | None = None) -> Origin:
        sock = socket_in(ns, socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return cls(sock, answer)

    @classmethod
    def unix(cls, path: str, answer: bytes) -> Origin:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        return cls(sock, answer)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            seen = bytearray()
            with self._lock:
                self.conns.append(seen)
            threading.Thread(target=self._serve, args=(conn, seen), daemon=True).start()

    def _serve(self, conn: socket.socket, seen: bytearray) -> None:
        buf = b""
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                    with self._lock:
                        seen += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                conn.sendall(self.answer)
                if _CLOSE.search(head):
                    return

    def received(self) -> list[bytes]:
        with self._lock:
            return [bytes(c) for c in self.conns]

    def close(self) -> None:
        stop_listener(self.sock, self._acceptor)
