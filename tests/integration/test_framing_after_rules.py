"""A response whose `http-response del-header` took its framing header away goes out chunked,
as HAProxy 2.6 sends it, to HTTP/1.1 and HTTP/1.0 clients (a HEAD answer keeps no body)."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from lab.netlab import Lab, free_port
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
    http-response del-header {header}
    default_backend b
backend b
    server s 127.0.0.1:{origin}
"""
ANSWERS = {
    "transfer-encoding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-After: 1\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-After: 1\r\n\r\nhello",
}
REQUESTS = (
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
)


def _get(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(request)
        got = b""
        while data := c.recv(65536):
            got += data
        return got


@needs_haproxy
@pytest.mark.parametrize("header", sorted(ANSWERS))
def test_deleted_framing_header_goes_out_chunked_like_haproxy(lab: Lab, header: str) -> None:
    pn, ph, on, oh = (free_port() for _ in range(4))
    origins = Origin.tcp(on, ANSWERS[header]), Origin.tcp(oh, ANSWERS[header])
    lab.defer(origins[0].close)
    lab.defer(origins[1].close)
    lab.proxy(CONFIG.format(stats="", port=pn, origin=on, header=header))
    stats = Path(tempfile.mkdtemp(prefix="nsp-framing-")) / "stats"
    text = CONFIG.format(stats=f"stats socket {stats}", port=ph, origin=oh, header=header)
    lab.haproxy(text, str(stats))
    got = [_get(pn, r) for r in REQUESTS]
    assert got == [_get(ph, r) for r in REQUESTS]
    assert got[0] == (
        b"HTTP/1.1 200 OK\r\nx-after: 1\r\nconnection: close\r\ntransfer-encoding: chunked\r\n"
        b"\r\n5\r\nhello\r\n0\r\n\r\n"
    )
