"""`server ... send-proxy` in HTTP mode, beside HAProxy 2.6: the PROXY header goes once, at the
start of a server connection; a keep-alive client's later requests reuse that connection
without it, and another client never gets it (the connection is private, even with
`http-reuse always`)."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from lab.netlab import Lab, free_port, wait_until
from lab.origin import Origin
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
    wait_until(lambda: sum(c.count(b"\r\n\r\n") for c in origin.received()) >= 3, 10, "3 requests")
    first.close()
    second.close()
    return _shape(origin.received())


@needs_haproxy
def test_proxy_header_once_per_server_connection_like_haproxy(lab: Lab) -> None:
    pn, ph, on, oh = (free_port() for _ in range(4))
    origins = Origin.tcp(on, ANSWER), Origin.tcp(oh, ANSWER)
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
