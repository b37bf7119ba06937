"""The chunked bodies of the stats page and the Prometheus exporter: upper-case hex sizes,
chunks no larger than an applet's buffer, the last chunk; the H1 reader gets the body back and
chunk_framing counts exactly the bytes that are not the body (HTX counts the data alone)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from nsproxy.http.answers import APPLET_CHUNK, applet_body
from nsproxy.proto.h1.chunks import chunk_framing

HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunks(body: bytes) -> list[bytes]:
    out = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        assert re.fullmatch(rb"[0-9A-F]+", size_line), size_line
        size = int(size_line, 16)
        if size == 0:
            assert body == b"\r\n"
            return out
        assert body[size : size + 2] == b"\r\n"
        out.append(body[:size])
        body = body[size + 2 :]


@given(st.binary(max_size=3 * APPLET_CHUNK + 7))
def test_body_round_trips_in_bounded_chunks(data: bytes) -> None:
    body = applet_body(data)
    chunks = _chunks(body)
    assert b"".join(chunks) == data
    assert all(0 < len(c) <= APPLET_CHUNK for c in chunks)
    assert chunk_framing(HEAD + body) == len(body) - len(data)


def test_sizes_are_upper_case_hex() -> None:
    assert applet_body(b"x" * 0x2AF) == b"2AF\r\n" + b"x" * 0x2AF + b"\r\n0\r\n\r\n"
    assert applet_body(b"") == b"0\r\n\r\n"
