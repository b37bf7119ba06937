"""nsproxy.http.compression: the algorithm a request gets and the head of a compressed response."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsproxy.http.compression import (
    CompressionCfg,
    Compressor,
    choose_algorithm,
    rewrite_response,
)
from nsproxy.proto.h1.head import CHUNKED, parse_request_head, parse_response_head


def _req(*headers: bytes) -> object:
    return parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(headers))


@pytest.mark.parametrize(
    ("algos", "accept", "want"),
    [
        (("gzip", "deflate"), b"deflate;q=0.5, gzip;q=0.8", "gzip"),
        (("gzip", "deflate"), b"gzip;q=0.5, deflate", "deflate"),
        (("gzip",), b"gzip;q=0", None),
        (("gzip",), b"GZIP", "gzip"),
        (("deflate", "gzip"), b"*", "deflate"),
        (("raw-deflate", "deflate"), b"deflate", "raw-deflate"),
        (("identity", "gzip"), b"br", "identity"),
        (("gzip",), b"gzip;level=1;q=0.001", "gzip"),
    ],
)
def test_choice(algos: tuple[str, ...], accept: bytes, want: str | None) -> None:
    req = _req(b"Accept-Encoding: " + accept + b"\r\n")
    assert choose_algorithm(CompressionCfg(algos), req) == want  # type: ignore[arg-type]


def test_old_mozilla_gets_nothing_but_msie6_sp2_does() -> None:
    cfg = CompressionCfg(("gzip",))
    old = _req(b"Accept-Encoding: gzip\r\nUser-Agent: Mozilla/4.0 (compatible)\r\n")
    assert choose_algorithm(cfg, old) is None  # type: ignore[arg-type]
    ua = b"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"
    sp2 = _req(b"Accept-Encoding: gzip\r\nUser-Agent: " + ua + b"\r\n")
    assert choose_algorithm(cfg, sp2) == "gzip"  # type: ignore[arg-type]


def test_offload_removes_accept_encoding_once_an_algorithm_is_chosen() -> None:
    req = _req(b"Accept-Encoding: gzip\r\nAccept-Encoding: br\r\n")
    assert choose_algorithm(CompressionCfg(("gzip",), offload=True), req) == "gzip"  # type: ignore[arg-type]
    assert not any(n == b"accept-encoding" for n, _ in req.headers)  # type: ignore[attr-defined]


def test_rewritten_head() -> None:
    resp = parse_response_head(
        b'HTTP/1.1 200 OK\r\nETag: "a"\r\nContent-Length: 5\r\nVary: Cookie\r\n'
    )
    rewrite_response(resp, "gzip")
    assert resp.framing == CHUNKED
    assert resp.headers == [
        (b"etag", b'W/"a"'),
        (b"vary", b"Cookie"),
        (b"transfer-encoding", b"chunked"),
        (b"vary", b"Accept-Encoding"),
        (b"content-encoding", b"gzip"),
    ]


@given(
    st.lists(st.binary(max_size=200), max_size=8),
    st.sampled_from(["gzip", "deflate", "raw-deflate"]),
)
def test_blocks_decode_to_the_body_and_each_block_is_flushed(
    blocks: list[bytes], algo: str
) -> None:
    comp = Compressor(algo)
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[algo]
    d = zlib.decompressobj(wbits)
    seen = sent = b""
    for block in blocks:
        sent += block
        seen += d.decompress(comp.feed(block))
        assert seen == sent  # nothing held back: a streamed response reaches the client
    assert d.decompress(comp.finish()) == b"" and d.eof
