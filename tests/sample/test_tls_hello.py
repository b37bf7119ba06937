"""The sans-I/O ClientHello parser: fields, fragmentation, partial input, bad input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nsproxy.proto.tls_hello import Status, parse_client_hello, ssl_hello_type, ssl_version

from .hello import alpn_ext, client_hello, ext, hello_message, records, sni_ext


def test_sni_alpn_versions() -> None:
    data = client_hello(b"www.example.org", (b"h2", b"http/1.1"))
    r = parse_client_hello(data)
    assert r.status is Status.OK and r.hello is not None
    assert r.hello.sni == b"www.example.org"
    assert r.hello.alpn == (b"h2", b"http/1.1")
    assert r.hello.version == 0x0303
    assert r.hello.record_version == 0x0301
    assert r.hello.size == len(data)
    assert ssl_hello_type(data) == (Status.OK, 1)
    assert ssl_version(data) == (Status.OK, 0x030003)  # major << 16 | minor


def test_trailing_bytes_are_not_part_of_the_hello() -> None:
    data = client_hello() + b"\x17\x03\x03\x00\x01x"
    r = parse_client_hello(data)
    assert r.hello is not None and r.hello.size == len(data) - 6


def test_no_extensions_no_sni() -> None:
    r = parse_client_hello(records(hello_message(with_ext_block=False)))
    assert r.status is Status.OK and r.hello is not None
    assert r.hello.sni is None and r.hello.alpn == ()


def test_fragmented_over_records() -> None:
    msg = hello_message(sni_ext(b"frag.example") + alpn_ext(b"h2"))
    for sizes in ([1], [4], [5, 5, 5], [10, 1, 30], [len(msg) - 1]):
        r = parse_client_hello(records(msg, sizes))
        assert r.hello is not None, sizes
        assert r.hello.sni == b"frag.example"
        assert r.hello.alpn == (b"h2",)


def test_every_prefix_needs_more() -> None:
    data = records(hello_message(sni_ext(b"a.example")), [7, 20])
    for n in range(len(data)):
        assert parse_client_hello(data[:n]).status is Status.NEED_MORE, n
    assert parse_client_hello(data).status is Status.OK


def test_rejects_without_raising() -> None:
    assert parse_client_hello(b"GET / HTTP/1.1\r\n").status is Status.INVALID
    assert parse_client_hello(b"\x16\x02\x00").status is Status.INVALID
    assert parse_client_hello(b"\x16\x03\x01\x00\x00").status is Status.INVALID
    bad_sni = hello_message(ext(0, b"\x00\x09\x00\x00\x05ab"))
    assert parse_client_hello(records(bad_sni)).status is Status.INVALID
    server_hello = b"\x16\x03\x03\x00\x04\x02\x00\x00\x00"
    assert parse_client_hello(server_hello).status is Status.INVALID
    long_sid = hello_message(session_id=b"x" * 33)
    assert parse_client_hello(records(long_sid)).status is Status.INVALID


def test_sslv2_hello_version() -> None:
    # SSLv2-format hello: 2-byte header, type 1, version 3.1, 3 ciphers, no session, 16 challenge.
    body = b"\x01\x03\x01\x00\x09\x00\x00\x00\x10" + b"\x00" * 9 + b"c" * 16
    data = bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body
    assert ssl_version(data) == (Status.OK, 0x030001)
    assert ssl_version(data[:10])[0] is Status.NEED_MORE


names = st.binary(min_size=1, max_size=40).filter(lambda b: b"\x00" not in b)


@settings(max_examples=300, deadline=None)
@given(
    sni=names,
    alpn=st.lists(st.binary(min_size=1, max_size=12), max_size=4),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=8),
)
def test_split_invariance(sni: bytes, alpn: list[bytes], cuts: list[int]) -> None:
    exts = sni_ext(sni) + (alpn_ext(*alpn) if alpn else b"")
    msg = hello_message(exts)
    whole = parse_client_hello(records(msg)).hello
    split = parse_client_hello(records(msg, cuts)).hello
    assert whole is not None and split is not None
    assert (split.sni, split.alpn, split.version) == (whole.sni, whole.alpn, whole.version)
    assert split.sni == sni and split.alpn == tuple(alpn)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=300))
def test_never_raises_on_random_bytes(data: bytes) -> None:
    parse_client_hello(data)
    ssl_hello_type(data)
    ssl_version(data)
    parse_client_hello(b"\x16\x03\x01" + data)
    ssl_hello_type(b"\x16\x03\x01" + data)


@settings(max_examples=300, deadline=None)
@given(pos=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_corrupted_hello_never_raises(pos: int, flip: int) -> None:
    data = bytearray(client_hello(b"x.example", (b"h2",)))
    data[pos % len(data)] ^= flip
    parse_client_hello(bytes(data))
    ssl_hello_type(bytes(data))
    ssl_version(bytes(data))
