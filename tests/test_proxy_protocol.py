"""Tests for the PROXY protocol codec against HAProxy 2.6's observed behaviour."""

import ipaddress
import socket
import string

import google_crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsproxy.proxy_protocol import (
    MAX_V1_LEN,
    MAX_V2_LEN,
    NEED_MORE,
    V2_SIGNATURE,
    Address,
    ErrorKind,
    NeedMore,
    ProxyHeader,
    ProxyProtocolError,
    SslClient,
    SslSubtype,
    Tlv,
    TlvType,
    decode,
    encode_v1,
    encode_v2,
    parse_ssl_tlv,
    ssl_tlv,
)

SIG_HEX = "0d0a0d0a000d0a515549540a"
NS_A = b"hpspec_a"
NS_B = b"hpspec_b"


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def v2(ver_cmd: int, fam: int, body: bytes, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return V2_SIGNATURE + bytes((ver_cmd, fam)) + size.to_bytes(2, "big") + body


def tcp4_block(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (
        socket.inet_aton(src) + socket.inet_aton(dst) + sport.to_bytes(2, "big")
        + dport.to_bytes(2, "big")
    )  # fmt: skip


def with_crc(header: bytes) -> bytes:
    """Fill the 4-byte CRC32C TLV value that sits right after a TCP4 address block."""
    at = 16 + 12 + 3
    assert header[at - 3] == TlvType.CRC32C
    zeroed = header[:at] + bytes(4) + header[at + 4 :]
    crc = int(google_crc32c.value(zeroed))
    return header[:at] + crc.to_bytes(4, "big") + header[at + 4 :]


def ok(buf: bytes, **kwargs: bool) -> tuple[ProxyHeader, int]:
    result = decode(buf, **kwargs)
    assert not isinstance(result, NeedMore), f"NEED_MORE for {buf!r}"
    return result


def err(buf: bytes, **kwargs: bool) -> ProxyProtocolError:
    with pytest.raises(ProxyProtocolError) as info:
        decode(buf, **kwargs)
    return info.value


TCP4_BLOCK = tcp4_block("192.0.2.1", "198.51.100.2", 1111, 2222)
SRC4: Address = ("192.0.2.1", 1111)
DST4: Address = ("198.51.100.2", 2222)
V4MAPPED = h("00000000000000000000ffff c0000201")


# --- error classes ----------------------------------------------------------------------------


def test_error_kinds_carry_haproxy_codes_and_log_messages() -> None:
    assert {kind.name: (kind.code, kind.message) for kind in ErrorKind} == {
        "EMPTY": (11, "Connection closed while waiting for PROXY protocol header"),
        "ABORT": (12, "Connection error while waiting for PROXY protocol header"),
        "TIMEOUT": (13, "Timeout while waiting for PROXY protocol header"),
        "TRUNCATED": (14, "Truncated PROXY protocol header received"),
        "NOT_HDR": (15, "Received something which does not look like a PROXY protocol header"),
        "BAD_HDR": (16, "Received an invalid PROXY protocol header"),
        "BAD_PROTO": (17, "Received an unhandled protocol in the PROXY protocol header"),
    }
    exc = ProxyProtocolError(ErrorKind.BAD_HDR, SRC4, DST4)
    assert str(exc) == ErrorKind.BAD_HDR.message
    assert (exc.src, exc.dst) == (SRC4, DST4)


def test_empty_buffer_needs_more() -> None:
    assert decode(b"") is NEED_MORE
    assert repr(NEED_MORE) == "NEED_MORE"


# --- byte-exact vectors (reference 3.6) -------------------------------------------------------

V1 = h(f"{SIG_HEX} 21 11 0017 7f000001 7f000001 9c41 4e21 30 0008 6870737065635f61")
V2 = h(
    f"{SIG_HEX} 21 21 002f 00000000000000000000000000000001 00000000000000000000000000000001"
    " 9c42 4e22 30 0008 6870737065635f61"
)
V3 = h("50524f58592054435034203132372e302e302e31203132372e302e302e312034303030332032303030330d0a")
V4 = h(f"{SIG_HEX} 21 11 0017 0a010203 7f000001 04d2 51a8 30 0008 6870737065635f62")
V4_NOSUCHNS = h(f"{SIG_HEX} 21 11 000c 0a010203 7f000001 04d3 51a8")
V5 = h(
    f"{SIG_HEX} 21 11 0029 7f000001 7f000001 9c72 4e25 03 0004 7fc254c8"
    " 05 0008 49442d3230303035 30 0008 6870737065635f61"
)
V6 = h(f"{SIG_HEX} 20 00 0000")
V6_CRC = h(f"{SIG_HEX} 20 00 0007 03 0004 a9b87e8f")
V7 = h(f"{SIG_HEX} 20 00 000b 30 0008 6870737065635f61")
V8 = h(
    f"{SIG_HEX} 21 11 001e c0000201 c6336402 0457 08ae 03 0004 e8305364 30 0008 6870737065635f61"
)


def test_vector_v1_ipv4_netns() -> None:
    src, dst = ("127.0.0.1", 40001), ("127.0.0.1", 20001)
    assert len(V1) == 39
    assert encode_v2(src, dst, tlvs=[Tlv(TlvType.NETNS, NS_A)]) == V1
    assert ok(V1) == (ProxyHeader(2, False, socket.AF_INET, src, dst, (Tlv(0x30, NS_A),)), 39)
    assert ok(V1)[0].netns == NS_A


def test_vector_v2_ipv6_netns() -> None:
    src, dst = ("::1", 40002), ("::1", 20002)
    assert len(V2) == 63
    assert encode_v2(src, dst, tlvs=[Tlv(TlvType.NETNS, NS_A)]) == V2
    assert ok(V2) == (ProxyHeader(2, False, socket.AF_INET6, src, dst, (Tlv(0x30, NS_A),)), 63)


def test_vector_v3_v1_tcp4() -> None:
    src, dst = ("127.0.0.1", 40003), ("127.0.0.1", 20003)
    assert V3 == b"PROXY TCP4 127.0.0.1 127.0.0.1 40003 20003\r\n"
    assert encode_v1(src, dst) == V3
    assert ok(V3) == (ProxyHeader(1, False, socket.AF_INET, src, dst), len(V3))


def test_vector_v4_received_netns_reemitted() -> None:
    header, used = ok(V4)
    assert used == 39
    assert (header.src, header.dst, header.netns) == (
        ("10.1.2.3", 1234),
        ("127.0.0.1", 20904),
        NS_B,
    )
    assert encode_v2(header.src, header.dst, tlvs=[Tlv(TlvType.NETNS, NS_B)]) == V4
    assert encode_v2(("10.1.2.3", 1235), ("127.0.0.1", 20904)) == V4_NOSUCHNS


def test_vector_v5_crc_unique_id_netns() -> None:
    src, dst = ("127.0.0.1", 40050), ("127.0.0.1", 20005)
    tlvs = [Tlv(TlvType.UNIQUE_ID, b"ID-20005"), Tlv(TlvType.NETNS, NS_A)]
    assert encode_v2(src, dst, tlvs=tlvs, crc32c=True) == V5
    header, used = ok(V5)
    assert used == len(V5)
    assert header.tlvs == (Tlv(TlvType.CRC32C, h("7fc254c8")), *tlvs)
    assert (header.unique_id, header.netns) == (b"ID-20005", NS_A)


def test_vector_v6_health_check_local() -> None:
    assert encode_v2(("127.0.0.1", 1), ("127.0.0.1", 2), local=True) == V6
    assert encode_v2(None, None) == V6
    assert encode_v2(None, None, crc32c=True) == V6_CRC
    assert ok(V6) == (ProxyHeader(2, True, socket.AF_UNSPEC, None, None), 16)
    assert ok(V6_CRC) == (ProxyHeader(2, True, socket.AF_UNSPEC, None, None), len(V6_CRC))


def test_vector_v7_unix_client() -> None:
    unix_client = b"/run/client.sock"
    assert encode_v2(unix_client, ("127.0.0.1", 80), tlvs=[Tlv(TlvType.NETNS, NS_A)]) == V7
    assert encode_v1(unix_client, ("127.0.0.1", 80)) == b"PROXY UNKNOWN\r\n"
    assert encode_v1(None, None) == b"PROXY UNKNOWN\r\n"
    # 2.6 skips the TLVs of a LOCAL header: the NETNS name is not honoured on receipt.
    assert ok(V7) == (ProxyHeader(2, True, socket.AF_UNSPEC, None, None, ()), len(V7))


def test_vector_v8_good_crc_accepted() -> None:
    header, used = ok(V8)
    assert used == len(V8) == 46
    assert (header.src, header.dst, header.netns) == (SRC4, DST4, NS_A)
    assert encode_v2(SRC4, DST4, tlvs=[Tlv(TlvType.NETNS, NS_A)], crc32c=True) == V8


# --- receiver matrix (reference 3.7) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 1111 2222\r\n", (socket.AF_INET, SRC4, DST4)),
        (
            b"PROXY TCP6 2001:db8::1 2001:DB8:0:0::2 1111 2222\r\n",
            (socket.AF_INET6, ("2001:db8::1", 1111), ("2001:db8::2", 2222)),
        ),
        (
            b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1111 2222\r\n",
            (socket.AF_INET6, ("::ffff:192.0.2.1", 1111), ("::1", 2222)),
        ),
        (
            b"PROXY TCP4 010.001.002.003 192.0.2 70000 01111\r\n",
            (socket.AF_INET, ("10.1.2.3", 4464), ("192.0.2.0", 1111)),
        ),
        (b"PROXY UNKNOWN\r\n", (socket.AF_UNSPEC, None, None)),
    ],
)
def test_matrix_v1_accepted(
    line: bytes, expected: tuple[int, Address | None, Address | None]
) -> None:
    header, used = ok(line + b"payload")
    assert used == len(line)
    assert (header.family, header.src, header.dst) == expected
    assert header.version == 1
    assert header.local is (header.src is None)
    assert header.tlvs == ()


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", ErrorKind.BAD_PROTO),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 1111 2222\n", ErrorKind.BAD_HDR),
        (b"PROXY  TCP4 192.0.2.1 198.51.100.2 1111 2222\r\n", ErrorKind.BAD_PROTO),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 1111 2222 \r\n", ErrorKind.BAD_HDR),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 1111 2222 3333\r\n", ErrorKind.BAD_HDR),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 1111\r\n", ErrorKind.BAD_HDR),
        (b"PROXY TCP4 192.0.2.1  198.51.100.2 1111 2222\r\n", ErrorKind.BAD_HDR),
        (b"PROXY TCP4 2001:db8::1 2001:db8::2 1111 2222\r\n", ErrorKind.BAD_HDR),
        (b"PROXY TCP4 ::1 ::1 1111 2222\r\n", ErrorKind.BAD_HDR),
        (b"PROXY TCP6 192.0.2.1 198.51.100.2 1111 2222\r\n", ErrorKind.BAD_HDR),
        (b"PROXY TCP6 ::1 ::1 1111\r\n", ErrorKind.BAD_HDR),
        (b"PROXY TCP6 ::1 ::1 1111 2222\r\r\n", ErrorKind.BAD_HDR),
        (b"PROXY TCP6 ::1 ::1 11x1 2222\r\n", ErrorKind.BAD_HDR),
        (b"PROXY UDP4 192.0.2.1 198.51.100.2 1111 2222\r\n", ErrorKind.BAD_PROTO),
        (b"PROXY tcp4 192.0.2.1 198.51.100.2 1111 2222\r\n", ErrorKind.BAD_PROTO),
        (b"proxy TCP4 192.0.2.1 198.51.100.2 1111 2222\r\n", ErrorKind.NOT_HDR),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrorKind.NOT_HDR),
        (b"PROXYTCP4 192.0.2.1 198.51.100.2 1111 2222\r\n", ErrorKind.NOT_HDR),
    ],
)
def test_matrix_v1_rejected(line: bytes, kind: ErrorKind) -> None:
    exc = err(line)
    assert exc.kind is kind
    assert (exc.src, exc.dst) == (None, None)


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1111 2222\r\n",
        b"PROXY TCP6 2001:db8::1 2001:db8::2 1111 2222\r\n",
        b"PROXY UNKNOWN\r\n",
        V1,
        V2,
        V5,
        V6,
        V7,
    ],
)
def test_matrix_split_header_is_reassembled(line: bytes) -> None:
    # 2.6 answers TRUNCATED to a header split over two writes; we wait for the rest instead.
    payload = b"\x00data after the header"
    whole = ok(line + payload)
    assert whole[1] == len(line)
    for cut in range(1, len(line)):
        received = bytearray(line[:cut])
        assert decode(received) is NEED_MORE, cut
        received += line[cut:] + payload
        assert decode(received) == whole
    for step in (1, 3):
        received = bytearray()
        for at in range(0, len(line), step):
            assert decode(received) is NEED_MORE
            received += line[at : at + step]
        assert decode(received) == (whole[0], len(line))


def test_matrix_v2_accepted_proxy_families() -> None:
    header, used = ok(v2(0x21, 0x11, TCP4_BLOCK) + b"rest")
    assert (header, used) == (ProxyHeader(2, False, socket.AF_INET, SRC4, DST4), 28)
    mapped = V4MAPPED + h("20010db8000000000000000000000002 0457 08ae")
    header, used = ok(v2(0x21, 0x21, mapped))
    assert header.src == ("::ffff:192.0.2.1", 1111)
    assert header.dst == ("2001:db8::2", 2222)
    assert used == 52


@pytest.mark.parametrize(
    "buf",
    [
        v2(0x20, 0x00, b""),
        v2(0x20, 0x11, TCP4_BLOCK),
        v2(0x20, 0x11, TCP4_BLOCK + h("03 0004 deadbeef")),
        v2(0x20, 0x00, b"\xff\xff\xff garbage that is not a TLV"),
        v2(0x20, 0x11, b"short"),
        v2(0x20, 0x77, b""),
    ],
)
def test_matrix_v2_local_keeps_real_addresses_and_ignores_tlvs(buf: bytes) -> None:
    assert ok(buf + b"after") == (ProxyHeader(2, True, socket.AF_UNSPEC, None, None), len(buf))


@pytest.mark.parametrize("fam", [0x00, 0x12, 0x13, 0x22, 0x31, 0x32, 0x41, 0xFF])
def test_matrix_v2_proxy_with_other_family_rejected(fam: int) -> None:
    assert err(v2(0x21, fam, b"")).kind is ErrorKind.BAD_HDR
    assert err(v2(0x21, fam, bytes(216) + h("04 0000"))).kind is ErrorKind.BAD_HDR


def test_matrix_v2_version_and_command() -> None:
    assert err(v2(0x11, 0x11, TCP4_BLOCK)).kind is ErrorKind.NOT_HDR
    assert err(v2(0x01, 0x11, TCP4_BLOCK)).kind is ErrorKind.NOT_HDR
    assert err(v2(0x22, 0x11, TCP4_BLOCK)).kind is ErrorKind.BAD_HDR
    assert err(v2(0x2F, 0x11, TCP4_BLOCK)).kind is ErrorKind.BAD_HDR
    short = err(v2(0x21, 0x11, TCP4_BLOCK[:8]))
    assert (short.kind, short.src, short.dst) == (ErrorKind.BAD_HDR, None, None)
    assert err(v2(0x21, 0x21, bytes(35))).kind is ErrorKind.BAD_HDR


@pytest.mark.parametrize(
    "tlvs",
    [
        h("04 0000"),
        h("04 0005 0000000000"),
        h("e0 0003 616263"),
        h("f7 0001 00") + h("ff 0000"),
        ssl_tlv(SslClient.SSL, 0, version=b"TLSv1.3", cipher=b"TLS_AES_128_GCM_SHA256").pack(),
        h("01 0002 6832"),
        h("02 00ff") + b"a" * 255,
        h("05 0080") + b"u" * 128,
        h("05 0000"),
        h("30 0000"),
        h("30 0008 6e6f737563686e73"),
        h("30 0000 30 0008") + NS_A,
    ],
)
def test_matrix_v2_tlvs_accepted(tlvs: bytes) -> None:
    buf = v2(0x21, 0x11, TCP4_BLOCK + tlvs)
    header, used = ok(buf + b"\r\n")
    assert used == len(buf)
    assert (header.src, header.dst) == (SRC4, DST4)
    assert b"".join(tlv.pack() for tlv in header.tlvs) == tlvs


@pytest.mark.parametrize(
    "body",
    [
        TCP4_BLOCK + h("04 0005 00000000"),
        TCP4_BLOCK + h("04 0000 3000"),
        TCP4_BLOCK + h("30"),
        TCP4_BLOCK + h("03 0003 000000"),
        TCP4_BLOCK + h("03 0005 0000000000"),
        TCP4_BLOCK + h("03 0004 00000000"),
        TCP4_BLOCK + h("02 0100") + b"a" * 256,
        TCP4_BLOCK + h("05 0081") + b"u" * 129,
    ],
)
def test_matrix_v2_tlvs_rejected_with_claimed_addresses(body: bytes) -> None:
    exc = err(v2(0x21, 0x11, body) + b"more data")
    assert (exc.kind, exc.src, exc.dst) == (ErrorKind.BAD_HDR, SRC4, DST4)


def test_matrix_v2_bad_crc_rejected_good_crc_accepted() -> None:
    good = with_crc(v2(0x21, 0x11, TCP4_BLOCK + h("03 0004 00000000 04 0002 0000")))
    assert ok(good)[1] == len(good)
    assert ok(good)[0].tlvs[0] == Tlv(TlvType.CRC32C, good[31:35])
    for flip in (0, 13, 20, 31, len(good) - 1):
        broken = bytearray(good)
        broken[flip] ^= 0x01
        assert err(bytes(broken)).kind in {ErrorKind.BAD_HDR, ErrorKind.NOT_HDR}


def test_v2_ipv6_tlv_error_carries_ipv6_addresses() -> None:
    body = bytes(15) + b"\x01" + bytes(15) + b"\x02" + h("0001 0002") + h("03 0001 00")
    exc = err(v2(0x21, 0x21, body))
    assert (exc.kind, exc.src, exc.dst) == (ErrorKind.BAD_HDR, ("::1", 1), ("::2", 2))


# --- NEED_MORE rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        b"P",
        b"PRO",
        b"PROXY",
        b"PROXY ",
        b"PROXY T",
        b"PROXY TCP",
        b"PROXY TCP4",
        b"PROXY TCP4 ",
        b"PROXY TCP4 1",
        b"PROXY TCP4 1.",
        b"PROXY TCP4 1.2.3.4",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 9",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 9 10",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 9 10\r",
        b"PROXY TCP6 ::1 ::1 1 2",
        b"PROXY TCP6 ::1 ::1 1 2\r",
        b"PROXY TCP6 ::1 ::1 1 2\n",
        b"PROXY U",
        b"PROXY UNKNOWN",
        b"PROXY UNKNOWN\r",
        V2_SIGNATURE[:1],
        V2_SIGNATURE,
        V2_SIGNATURE + b"\x21",
        V2_SIGNATURE + b"\x21\x11\x00",
        V2_SIGNATURE + b"\x21\x11\x00\x0c",
        v2(0x21, 0x11, TCP4_BLOCK[:11], length=12),
        v2(0x20, 0x00, b"", length=0xFFFF),
        v2(0x21, 0x00, b"", length=100),
    ],
)
def test_valid_prefixes_need_more(prefix: bytes) -> None:
    assert decode(prefix) is NEED_MORE
    assert decode(bytearray(prefix)) is NEED_MORE
    assert decode(memoryview(prefix)) is NEED_MORE


@pytest.mark.parametrize(
    ("buf", "kind"),
    [
        (b"PRX", ErrorKind.NOT_HDR),
        (b"G", ErrorKind.NOT_HDR),
        (b"\r\n\r\n\x01", ErrorKind.NOT_HDR),
        (b"PROXYX", ErrorKind.NOT_HDR),
        (b"PROXY X", ErrorKind.BAD_PROTO),
        (b"PROXY TCP5", ErrorKind.BAD_PROTO),
        (b"PROXY UNKNOWN ", ErrorKind.BAD_PROTO),
        (b"PROXY UNKNOWN\rx", ErrorKind.BAD_PROTO),
        (b"PROXY TCP4 1.2.3.4x", ErrorKind.BAD_HDR),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 9 10x", ErrorKind.BAD_HDR),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 9 10\rx", ErrorKind.BAD_HDR),
        (b"PROXY TCP6 ::1 ::1 1 2\rx", ErrorKind.BAD_HDR),
        (V2_SIGNATURE + b"\x10", ErrorKind.NOT_HDR),
        (V2_SIGNATURE + b"\x23", ErrorKind.BAD_HDR),
        (V2_SIGNATURE + b"\x21\x11\x00\x08", ErrorKind.BAD_HDR),
        (V2_SIGNATURE + b"\x21\x21\x00\x23", ErrorKind.BAD_HDR),
    ],
)
def test_hopeless_prefixes_fail_early(buf: bytes, kind: ErrorKind) -> None:
    assert err(buf).kind is kind


def test_v1_line_must_end_within_107_bytes() -> None:
    base = b"PROXY TCP4 192.0.2.1 198.51.100.2 1111 2222\r\n"
    padded = base.replace(b" 1111", b" " + b"0" * (MAX_V1_LEN - len(base)) + b"1111")
    assert len(padded) == MAX_V1_LEN
    assert ok(padded + b"x") == (ProxyHeader(1, False, socket.AF_INET, SRC4, DST4), MAX_V1_LEN)
    for cut in range(MAX_V1_LEN):
        assert decode(padded[:cut]) is NEED_MORE
    too_long = padded.replace(b" 0", b" 00", 1)
    assert decode(too_long[: MAX_V1_LEN - 1]) is NEED_MORE
    assert err(too_long[:MAX_V1_LEN]).kind is ErrorKind.BAD_HDR
    assert err(too_long).kind is ErrorKind.BAD_HDR
    assert err(b"PROXY TCP6 " + b"x" * 200).kind is ErrorKind.BAD_HDR
    assert decode(b"PROXY TCP6 " + b"x" * (MAX_V1_LEN - 12)) is NEED_MORE
    longest_tcp6 = encode_v1(("ffff:" * 7 + "ffff", 65535), ("ffff:" * 7 + "fffe", 65535))
    assert len(longest_tcp6) == 104
    assert ok(longest_tcp6)[1] == 104


def test_v2_size_limits_and_exact_consumption() -> None:
    biggest = encode_v2(SRC4, DST4, tlvs=[Tlv(TlvType.NOOP, bytes(0xFFFF - 12 - 3))])
    assert len(biggest) == MAX_V2_LEN
    assert decode(biggest[:-1]) is NEED_MORE
    assert ok(biggest + b"next") == (
        ProxyHeader(2, False, socket.AF_INET, SRC4, DST4, ok(biggest)[0].tlvs),
        MAX_V2_LEN,
    )
    with pytest.raises(ValueError):
        encode_v2(SRC4, DST4, tlvs=[Tlv(TlvType.NOOP, bytes(0xFFFF - 12 - 2))])
    with pytest.raises(ValueError):
        Tlv(TlvType.NOOP, bytes(0x10000))
    with pytest.raises(ValueError):
        Tlv(0x100, b"")


def test_trailing_bytes_are_never_consumed() -> None:
    for header in (V1, V2, V3, V5, V6, V7, V8, b"PROXY UNKNOWN\r\n"):
        for tail in (b"", b"x", V1, b"PROXY UNKNOWN\r\n", bytes(MAX_V2_LEN)):
            assert ok(header + tail)[1] == len(header)


# --- 2.6 parser quirks ------------------------------------------------------------------------


def test_tcp4_lenient_addresses() -> None:
    def addrs(src: str, dst: str) -> tuple[Address | None, Address | None]:
        header, _ = ok(f"PROXY TCP4 {src} {dst} 1 2\r\n".encode())
        return header.src, header.dst

    assert addrs("1.2.3.", "1") == (("1.2.3.0", 1), ("1.0.0.0", 2))
    assert addrs("1..3.4", "0001.0002.0003.0004") == (("1.0.3.4", 1), ("1.2.3.4", 2))
    # Each group keeps its last three digits; 256 carries into the group on its left.
    assert addrs("1.2.3.256", "1.2.1999.4") == (("1.2.4.0", 1), ("1.5.231.4", 2))
    assert addrs("999.0.0.0", "255.255.255.255") == (("231.0.0.0", 1), ("255.255.255.255", 2))
    header, _ = ok(b"PROXY TCP4  1.2.3.4 1 2\r\n")
    assert (header.src, header.dst) == (("0.0.0.0", 1), ("1.2.3.4", 2))
    assert err(b"PROXY TCP4 1.2.3.4.5 1.2.3.4 1 2\r\n").kind is ErrorKind.BAD_HDR


def test_tcp4_lenient_ports() -> None:
    header, _ = ok(b"PROXY TCP4 1.2.3.4 5.6.7.8 4294967297 65536\r\n")
    assert (header.src, header.dst) == (("1.2.3.4", 1), ("5.6.7.8", 0))
    header, _ = ok(b"PROXY TCP4 1.2.3.4 5.6.7.8  \r\n")
    assert (header.src, header.dst) == (("1.2.3.4", 0), ("5.6.7.8", 0))


def test_tcp6_fields_read_as_c_strings() -> None:
    # Derived from the 2.6 parser: spaces become NULs and only the first three split fields.
    for line in (
        b"PROXY TCP6 ::1 ::2 1 2 3\r\n",
        b"PROXY TCP6 ::1 ::2 1 2 \r\n",
        b"PROXY TCP6 ::1\x00junk ::2 1\x00x 2\r\n",
    ):
        header, used = ok(line)
        assert (header.src, header.dst, used) == (("::1", 1), ("::2", 2), len(line))
    header, _ = ok(b"PROXY TCP6 ::1 ::2 0070000 \r\n")
    assert (header.src, header.dst) == (("::1", 4464), ("::2", 0))
    assert err(b"PROXY TCP6 ::1 ::2 1 2\nGET / HTTP/1.1\r\n").kind is ErrorKind.BAD_HDR


def test_v2_proxy_unspec_family_walks_tlvs_from_offset_zero() -> None:
    # 2.6 parses TLVs from the signature for an unsupported family; the first pseudo-TLV
    # (type 0x0d, length 0x0a0d) ends at offset 2576, so len 2560 happens to be accepted.
    buf = v2(0x21, 0x00, bytes(2560))
    header, used = ok(buf)
    assert (header.local, header.src, header.dst, used) == (True, None, None, 2576)
    assert header.tlvs == (Tlv(0x0D, buf[3:]),)
    netns = v2(0x21, 0x00, bytes(2560) + Tlv(TlvType.NETNS, NS_B).pack())
    assert ok(netns)[0].netns == NS_B
    assert err(v2(0x21, 0x00, bytes(2559))).kind is ErrorKind.BAD_HDR


def test_v2_unix_family_only_when_allowed() -> None:
    src, dst = b"/run/a.sock".ljust(108, b"\0"), b"\0abstract".ljust(108, b"\0")
    buf = v2(0x21, 0x31, src + dst + Tlv(TlvType.NETNS, NS_A).pack())
    assert err(buf).kind is ErrorKind.BAD_HDR
    header, used = ok(buf, allow_unix=True)
    assert (header.family, header.src, header.dst) == (
        socket.AF_UNIX,
        b"/run/a.sock",
        b"\0abstract",
    )
    assert (header.local, header.netns, used) == (False, NS_A, len(buf))
    exc = err(v2(0x21, 0x31, bytes(215)), allow_unix=True)
    assert exc.kind is ErrorKind.BAD_HDR
    assert decode(buf[:100], allow_unix=True) is NEED_MORE


def test_header_properties_pick_the_last_value() -> None:
    tlvs = (Tlv(0x30, b"a"), Tlv(0x02, b"h1"), Tlv(0x30, b"b"), Tlv(0x05, b"id"), Tlv(0x02, b"h2"))
    header = ProxyHeader(2, False, socket.AF_INET, SRC4, DST4, tlvs)
    assert (header.netns, header.netns_names) == (b"b", (b"a", b"b"))
    assert (header.authority, header.unique_id) == (b"h2", b"id")
    bare = ProxyHeader(1, True, socket.AF_UNSPEC, None, None)
    assert (bare.netns, bare.authority, bare.unique_id, bare.netns_names) == (None, None, None, ())


# --- encoder ----------------------------------------------------------------------------------


def test_encode_v1_families() -> None:
    assert encode_v1(("192.0.2.1", 1), ("2001:DB8::1", 2)) == (
        b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::1 1 2\r\n"
    )
    assert encode_v1(("fe80::1%eth0", 1), ("::1", 2)) == b"PROXY TCP6 fe80::1 ::1 1 2\r\n"
    assert encode_v1(("::ffff:192.0.2.1", 1), ("::ffff:192.0.2.2", 2)) == (
        b"PROXY TCP6 ::ffff:192.0.2.1 ::ffff:192.0.2.2 1 2\r\n"
    )
    assert encode_v1(("192.0.2.1", 1), None) == b"PROXY UNKNOWN\r\n"
    with pytest.raises(ValueError):
        encode_v1(("192.0.2", 1), ("192.0.2.1", 2))
    with pytest.raises(ValueError):
        encode_v1(("192.0.2.1", 65536), ("192.0.2.1", 2))


def test_encode_v2_mixed_families_use_v4_mapped() -> None:
    buf = encode_v2(("192.0.2.1", 1111), ("2001:db8::2", 2222))
    assert buf == v2(0x21, 0x21, V4MAPPED + h("20010db8000000000000000000000002 0457 08ae"))


def test_encode_v2_tlv_order_is_crc_then_caller_order() -> None:
    tlvs = [
        Tlv(TlvType.ALPN, b"h2"),
        Tlv(TlvType.AUTHORITY, b"example.com"),
        Tlv(TlvType.UNIQUE_ID, b""),
        ssl_tlv(),
        Tlv(TlvType.NETNS, NS_A),
    ]
    buf = encode_v2(SRC4, DST4, tlvs=tlvs, crc32c=True)
    header, used = ok(buf)
    assert used == len(buf)
    assert [tlv.type for tlv in header.tlvs] == [0x03, 0x01, 0x02, 0x05, 0x20, 0x30]
    assert header.tlvs[1:] == tuple(tlvs)
    assert ssl_tlv().value == bytes(5)


def test_ssl_tlv_helper() -> None:
    tlv = ssl_tlv(
        SslClient.SSL | SslClient.CERT_CONN | SslClient.CERT_SESS,
        20,
        version=b"TLSv1.3",
        cn=b"client",
        key_alg=b"RSA2048",
        sig_alg=b"SHA256",
        cipher=b"TLS_AES_256_GCM_SHA384",
    )
    assert tlv.type == TlvType.SSL
    assert tlv.value[:5] == h("07 00000014")
    client, verify, subs = parse_ssl_tlv(tlv.value)
    assert (client, verify) == (7, 20)
    assert [sub.type for sub in subs] == [0x21, 0x22, 0x25, 0x24, 0x23]
    assert subs[0] == Tlv(SslSubtype.VERSION, b"TLSv1.3")
    assert subs[4] == Tlv(SslSubtype.CIPHER, b"TLS_AES_256_GCM_SHA384")
    for broken in (b"\x01\x00\x00", h("01 00000000 21 00"), h("01 00000000 21 0005 4142")):
        with pytest.raises(ValueError):
            parse_ssl_tlv(broken)


# --- property tests ---------------------------------------------------------------------------

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 0xFFFF)
inet = st.tuples(st.one_of(ipv4, ipv6), ports)
netns_names = st.text(string.ascii_letters + string.digits + "_-.", max_size=40)

tlv_strategy = st.one_of(
    st.builds(Tlv, st.just(TlvType.NETNS), netns_names.map(str.encode)),
    st.builds(Tlv, st.just(TlvType.AUTHORITY), st.binary(max_size=255)),
    st.builds(Tlv, st.just(TlvType.UNIQUE_ID), st.binary(max_size=128)),
    st.builds(
        Tlv,
        st.integers(0, 0xFF).filter(lambda t: t not in (0x02, 0x03, 0x05)),
        st.binary(max_size=40),
    ),
    st.builds(
        ssl_tlv,
        st.integers(0, 7),
        st.integers(0, 0xFFFFFFFF),
        version=st.none() | st.binary(max_size=10),
        cn=st.none() | st.binary(max_size=10),
    ),
)
tlv_lists = st.lists(tlv_strategy, max_size=5)
tails = st.binary(max_size=20)


def expected_ip(text: str, mapped: bool) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(text)
    if mapped and isinstance(ip, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
    return ip


def check_addresses(header: ProxyHeader, src: tuple[str, int], dst: tuple[str, int]) -> None:
    mixed = ":" in src[0] or ":" in dst[0]
    assert header.family == (socket.AF_INET6 if mixed else socket.AF_INET)
    assert isinstance(header.src, tuple)
    assert isinstance(header.dst, tuple)
    assert ipaddress.ip_address(header.src[0]) == expected_ip(src[0], mixed)
    assert ipaddress.ip_address(header.dst[0]) == expected_ip(dst[0], mixed)
    assert (header.src[1], header.dst[1]) == (src[1], dst[1])


@given(inet, inet, tails)
def test_roundtrip_v1(src: tuple[str, int], dst: tuple[str, int], tail: bytes) -> None:
    line = encode_v1(src, dst)
    assert len(line) <= MAX_V1_LEN
    header, used = ok(line + tail)
    assert used == len(line)
    assert (header.version, header.local, header.tlvs) == (1, False, ())
    check_addresses(header, src, dst)
    assert encode_v1(header.src, header.dst) == line


@given(inet, inet, tlv_lists, st.booleans(), tails)
def test_roundtrip_v2(
    src: tuple[str, int], dst: tuple[str, int], tlvs: list[Tlv], crc: bool, tail: bytes
) -> None:
    buf = encode_v2(src, dst, tlvs=tlvs, crc32c=crc)
    header, used = ok(buf + tail)
    assert used == len(buf) == 16 + int.from_bytes(buf[14:16], "big")
    assert (header.version, header.local) == (2, False)
    check_addresses(header, src, dst)
    received = header.tlvs
    if crc:
        assert received[0].type == TlvType.CRC32C
        received = received[1:]
    assert received == tuple(tlvs)
    netns = [tlv.value for tlv in tlvs if tlv.type == TlvType.NETNS]
    assert header.netns == (netns[-1] if netns else None)
    assert encode_v2(header.src, header.dst, tlvs=received, crc32c=crc) == buf


@given(st.one_of(st.none(), inet), st.one_of(st.none(), inet), tlv_lists, st.booleans())
def test_roundtrip_v2_local(
    src: tuple[str, int] | None, dst: tuple[str, int] | None, tlvs: list[Tlv], crc: bool
) -> None:
    buf = encode_v2(src, dst, local=True, tlvs=tlvs, crc32c=crc)
    assert buf[12:14] == b"\x20\x00"
    assert ok(buf + b"tail") == (ProxyHeader(2, True, socket.AF_UNSPEC, None, None), len(buf))


def valid_headers() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(encode_v1, inet, inet),
        st.just(b"PROXY UNKNOWN\r\n"),
        st.builds(
            lambda s, d, t, c, local: encode_v2(s, d, tlvs=t, crc32c=c, local=local),
            inet,
            inet,
            tlv_lists,
            st.booleans(),
            st.booleans(),
        ),
    )


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(valid_headers())
def test_every_prefix_of_a_valid_header_needs_more(header: bytes) -> None:
    for cut in range(len(header)):
        assert decode(header[:cut]) is NEED_MORE, cut
    assert ok(header)[1] == len(header)


def outcome(buf: bytes) -> tuple[object, ...]:
    try:
        result = decode(buf)
    except ProxyProtocolError as exc:
        assert isinstance(exc.kind, ErrorKind)
        return ("error", exc.kind, exc.src, exc.dst)
    if isinstance(result, NeedMore):
        assert result is NEED_MORE
        return ("more",)
    header, used = result
    assert 0 < used <= len(buf)
    if header.version == 1:
        assert used <= MAX_V1_LEN
        assert buf[used - 2 : used] == b"\r\n"
    else:
        assert used == 16 + int.from_bytes(buf[14:16], "big") <= MAX_V2_LEN
    return ("ok", header, used)


@st.composite
def mutated_headers(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_headers()))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data) + draw(tails)


fuzz_inputs = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from([b"PROXY ", V2_SIGNATURE + b"\x21"]),
        st.binary(max_size=120),
    ),
    st.builds(
        lambda word, rest: b"PROXY " + word + rest,
        st.sampled_from([b"TCP4 ", b"TCP6 ", b"UNKNOWN"]),
        st.text("0123456789.:abcdef \r\n", max_size=110).map(str.encode),
    ),
    mutated_headers(),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz_inputs)
def test_any_input_decodes_needs_more_or_raises_protocol_error(buf: bytes) -> None:
    outcome(buf)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz_inputs)
def test_result_does_not_depend_on_how_the_bytes_were_split(buf: bytes) -> None:
    # A prefix either asks for more or already gives the answer the whole buffer gives.
    final = outcome(buf)
    for cut in range(len(buf)):
        partial = outcome(buf[:cut])
        assert partial == ("more",) or partial == final, (cut, partial, final)
