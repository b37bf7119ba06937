"""`compression algo|type|offload`: which responses get compressed and how their heads change,
the same under nsproxy as under HAProxy 2.6; the client decodes the same body.

HAProxy is built with libslz, nsproxy uses zlib: the compressed bytes and the chunk sizes
differ, the decoded bodies may not.
"""

from __future__ import annotations

import socket
import zlib

import pytest

from lab.netlab import Lab
from sample.haproxy_ref import HAPROXY
from sample.http_pair import running

BODY = b"hello hello hello hello hello " * 40


def _response(extra: bytes = b"", status: bytes = b"200 OK", body: bytes = BODY) -> bytes:
    return b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n%s" % (status, extra, len(body), body)


CHUNKED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)

CASES = {
    "gzip-by-type": (
        "algo gzip\n  compression type text/plain",
        _response(b'Content-Type: text/plain; charset=utf-8\r\nETag: "abc"\r\n'),
        b"Accept-Encoding: gzip, deflate\r\n",
    ),
    "q-values": (
        "algo gzip deflate",
        _response(),
        b"Accept-Encoding: deflate;q=0.5, gzip;q=0.8\r\n",
    ),
    "q-zero": ("algo gzip", _response(), b"Accept-Encoding: gzip;q=0\r\n"),
    "star": ("algo deflate", _response(b'ETag: W/"x"\r\n'), b"Accept-Encoding: *\r\n"),
    "identity": ("algo identity gzip", _response(), b"Accept-Encoding: br\r\n"),
    "no-transform": (
        "algo gzip",
        _response(b"Cache-Control: private, no-transform\r\n"),
        b"Accept-Encoding: gzip\r\n",
    ),
    "404": ("algo gzip", _response(status=b"404 Not Found"), b"Accept-Encoding: gzip\r\n"),
    "multipart": (
        "algo gzip",
        _response(b"Content-Type: multipart/mixed\r\n"),
        b"Accept-Encoding: gzip\r\n",
    ),
    "other-type": (
        "algo gzip\n  compression type text/html",
        _response(b"Content-Type: text/plain\r\n"),
        b"Accept-Encoding: gzip\r\n",
    ),
    "no-type": (
        "algo gzip\n  compression type text/html",
        _response(),
        b"Accept-Encoding: gzip\r\n",
    ),
    "empty": ("algo gzip", _response(body=b""), b"Accept-Encoding: gzip\r\n"),
    "encoded": ("algo gzip", _response(b"Content-Encoding: br\r\n"), b"Accept-Encoding: gzip\r\n"),
    "bad-etag": ("algo gzip", _response(b"ETag: bad\r\n"), b"Accept-Encoding: gzip\r\n"),
    "old-mozilla": (
        "algo gzip",
        _response(b"Vary: Cookie\r\n"),
        b"Accept-Encoding: gzip\r\nUser-Agent: Mozilla/4.0 (compatible)\r\n",
    ),
    "vary-kept": (
        "algo raw-deflate",
        _response(b"Vary: Cookie\r\n"),
        b"Accept-Encoding: deflate\r\n",
    ),
    "chunked": ("algo gzip", CHUNKED_RESPONSE, b"Accept-Encoding: gzip\r\n"),
}


def _read(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, decoded payload) of one response: de-chunked, not yet decompressed."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        assert data, buf
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    low = head.lower()
    if b"transfer-encoding: chunked" not in low:
        length = int(low.split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += sock.recv(65536)
        return head, rest
    body = b""
    while True:
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        if size == 0:
            return head, body
        body, rest = body + rest[:size], rest[size + 2 :]


def _decode(head: bytes, payload: bytes) -> bytes:
    low = head.lower()
    if b"content-encoding: gzip" in low:
        return zlib.decompress(payload, zlib.MAX_WBITS + 16)
    if b"content-encoding: deflate" in low:
        try:
            return zlib.decompress(payload)
        except zlib.error:
            return zlib.decompress(payload, -zlib.MAX_WBITS)
    return payload


def _observe(lab: Lab, program: str, case: str) -> tuple[list[bytes], bytes, bytes | None]:
    """The response head's lines, the decoded body, and the request the server got."""
    comp, response, extra = CASES[case]

    def config(port: int, sport: int) -> str:
        return (
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
            f"  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n"
            f"backend be\n  compression {comp}\n  compression offload\n"
            f"  server s1 127.0.0.1:{sport}\n"
        )

    with running(lab, program, config, response) as ref:
        with socket.create_connection(("127.0.0.1", ref.port), timeout=5) as c:
            c.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n" + extra + b"\r\n")
            head, payload = _read(c)
        with ref.recorder.cond:
            seen = ref.recorder.seen[0] if ref.recorder.seen else None
    return head.split(b"\r\n"), _decode(head, payload), seen


@pytest.mark.parametrize("case", sorted(CASES))
def test_compression_as_haproxy(lab: Lab, case: str) -> None:
    lines, body, seen = _observe(lab, "nsproxy", case)
    compressed = b"vary: Accept-Encoding" in lines and case != "identity"
    assert compressed == (case in ("gzip-by-type", "q-values", "star", "vary-kept", "chunked"))
    assert body == (b"hello world" if case == "chunked" else BODY if case != "empty" else b"")
    assert seen is not None
    # `compression offload` (in the backend): the server never sees what the client accepts
    # once the request chose an algorithm (whatever the response turns out to be)
    assert (b"accept-encoding:" in seen) == (case in ("q-zero", "identity", "old-mozilla"))
    if HAPROXY is not None:
        assert (lines, body, seen) == _observe(lab, "haproxy", case)
