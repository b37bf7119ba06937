"""`server ... send-proxy` in HTTP mode, beside HAProxy 2.6: the PROXY header goes once, at the
start of a server connection; a keep-alive client's later requests reuse that connection
without it, and another client never gets it (the connection is private, even with
`http-reuse always`)."""

from __future__ import annotations

import socket
import tempfile
import threading
from contextlib import suppress
from pathlib import Path

from lab.netlab import Lab, free_port, stop_listener, wait_until
from sample.haproxy_ref import needs_haproxy

CONFIG = """global
    {stats}
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    bind 127.0.0.1:{port}
    default_backend b
backend b
    http-reuse always
    server s 127.0.0.1:{origin} send-proxy
"""
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Origin:
    """Answers each request head with ANSWER; keeps every connection's bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.conns: list[bytearray] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            got = bytearray()
            with self.lock:
                self.conns.append(got)
            threading.Thread(target=self._serve, args=(conn, got), daemon=True).start()

    def _serve(self, conn: socket.socket, got: bytearray) -> None:
        answered = 0
        with conn, suppress(OSError):
            conn.settimeout(10)
            while data := conn.recv(65536):
                with self.lock:
                    got += data
                    heads = got.count(b"\r\n\r\n")
                for _ in range(heads - answered):
                    conn.sendall(ANSWER)
                answered = heads

    def seen(self) -> list[bytes]:
        with self.lock:
            return [bytes(c) for c in self.conns]

    def close(self) -> None:
        stop_listener(self.sock, self.thread)


def _exchange(port: int, paths: tuple[str, ...]) -> socket.socket:
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    for path in paths:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        while not got.endswith(b"ok"):
            data = c.recv(4096)
            assert data, got
            got += data
    return c


def _shape(conns: list[bytes]) -> list[list[str]]:
    """Per server connection: its lines, the PROXY header's ports left out."""
    out = []
    for raw in conns:
        lines = [ln for ln in raw.decode().split("\r\n") if ln]
        out.append([" ".join(ln.split()[:4]) if ln.startswith("PROXY ") else ln for ln in lines])
    return out


def _run(port: int, origin: Origin) -> list[list[str]]:
    first = _exchange(port, ("/a", "/b"))
    second = _exchange(port, ("/c",))  # while the first client's connection is idle
    wait_until(lambda: sum(c.count(b"\r\n\r\n") for c in origin.seen()) >= 3, 10, "3 requests")
    first.close()
    second.close()
    return _shape(origin.seen())


@needs_haproxy
def test_proxy_header_once_per_server_connection_like_haproxy(lab: Lab) -> None:
    pn, ph, on, oh = (free_port() for _ in range(4))
    origins = Origin(on), Origin(oh)
    try:
        lab.proxy(CONFIG.format(stats="", port=pn, origin=on))
        stats = Path(tempfile.mkdtemp(prefix="nsp-pp-")) / "stats"
        lab.haproxy(CONFIG.format(stats=f"stats socket {stats}", port=ph, origin=oh), str(stats))
        got, want = _run(pn, origins[0]), _run(ph, origins[1])
    finally:
        for o in origins:
            o.close()
    assert got == want
    assert got == [
        ["PROXY TCP4 127.0.0.1 127.0.0.1", "GET /a HTTP/1.1", "host: x", "GET /b HTTP/1.1",
         "host: x"],
        ["PROXY TCP4 127.0.0.1 127.0.0.1", "GET /c HTTP/1.1", "host: x"],
    ]  # fmt: skip
