"""Sans-I/O PROXY protocol v1/v2 codec whose receiver follows HAProxy 2.6."""

import enum
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import google_crc32c

__all__ = [
    "MAX_V1_LEN",
    "MAX_V2_LEN",
    "NEED_MORE",
    "V2_SIGNATURE",
    "Address",
    "ErrorKind",
    "NeedMore",
    "ProxyHeader",
    "ProxyProtocolError",
    "SslClient",
    "SslSubtype",
    "Tlv",
    "TlvType",
    "decode",
    "encode_v1",
    "encode_v2",
    "parse_ssl_tlv",
    "ssl_tlv",
]

Address: TypeAlias = tuple[str, int] | bytes

V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEADER_LEN: Final = 16
MAX_V1_LEN: Final = 107
MAX_V2_LEN: Final = V2_HEADER_LEN + 0xFFFF
AUTHORITY_MAX: Final = 255
UNIQUE_ID_MAX: Final = 128

_V1_PREFIX: Final = b"PROXY "
_V1_WORDS: Final = (b"TCP4 ", b"TCP6 ", b"UNKNOWN\r\n")
_CMD_LOCAL: Final = 0x0
_CMD_PROXY: Final = 0x1
_FAM_TCP4: Final = 0x11
_FAM_TCP6: Final = 0x21
_FAM_UNIX_STREAM: Final = 0x31
_V4_MAPPED_PREFIX: Final = bytes(10) + b"\xff\xff"


class ErrorKind(enum.Enum):
    code: int
    message: str

    EMPTY = (11, "Connection closed while waiting for PROXY protocol header")
    ABORT = (12, "Connection error while waiting for PROXY protocol header")
    TIMEOUT = (13, "Timeout while waiting for PROXY protocol header")
    TRUNCATED = (14, "Truncated PROXY protocol header received")
    NOT_HDR = (15, "Received something which does not look like a PROXY protocol header")
    BAD_HDR = (16, "Received an invalid PROXY protocol header")
    BAD_PROTO = (17, "Received an unhandled protocol in the PROXY protocol header")

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message


class ProxyProtocolError(Exception):
    def __init__(
        self, kind: ErrorKind, src: Address | None = None, dst: Address | None = None
    ) -> None:
        super().__init__(kind.message)
        self.kind = kind
        self.src = src
        self.dst = dst


class NeedMore(enum.Enum):
    NEED_MORE = "NEED_MORE"

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE: Final = NeedMore.NEED_MORE


class TlvType(enum.IntEnum):
    ALPN = 0x01
    AUTHORITY = 0x02
    CRC32C = 0x03
    NOOP = 0x04
    UNIQUE_ID = 0x05
    SSL = 0x20
    NETNS = 0x30


class SslSubtype(enum.IntEnum):
    VERSION = 0x21
    CN = 0x22
    CIPHER = 0x23
    SIG_ALG = 0x24
    KEY_ALG = 0x25


class SslClient(enum.IntFlag):
    SSL = 0x01
    CERT_CONN = 0x02
    CERT_SESS = 0x04


@dataclass(frozen=True, slots=True)
class Tlv:
    type: int
    value: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 0xFF:
            raise ValueError(f"TLV type out of range: {self.type}")
        if len(self.value) > 0xFFFF:
            raise ValueError(f"TLV value too long: {len(self.value)} bytes")

    def pack(self) -> bytes:
        return bytes((self.type,)) + len(self.value).to_bytes(2, "big") + self.value


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    version: int
    local: bool
    family: int
    src: Address | None
    dst: Address | None
    tlvs: tuple[Tlv, ...] = ()

    def _values(self, tlv_type: int) -> tuple[bytes, ...]:
        return tuple(tlv.value for tlv in self.tlvs if tlv.type == tlv_type)

    def _last(self, tlv_type: int) -> bytes | None:
        values = self._values(tlv_type)
        return values[-1] if values else None

    @property
    def netns_names(self) -> tuple[bytes, ...]:
        """Every NETNS value in order: HAProxy keeps the last one that names a known netns."""
        return self._values(TlvType.NETNS)

    @property
    def netns(self) -> bytes | None:
        return self._last(TlvType.NETNS)

    @property
    def authority(self) -> bytes | None:
        return self._last(TlvType.AUTHORITY)

    @property
    def unique_id(self) -> bytes | None:
        return self._last(TlvType.UNIQUE_ID)


class _Incomplete(Exception):
    pass


def _bad_hdr(src: Address | None = None, dst: Address | None = None) -> ProxyProtocolError:
    return ProxyProtocolError(ErrorKind.BAD_HDR, src, dst)


def decode(
    buf: bytes | bytearray | memoryview, *, allow_unix: bool = False
) -> tuple[ProxyHeader, int] | NeedMore:
    """Decode the header at the start of ``buf``; return it with the number of bytes it used.

    Returns NEED_MORE while ``buf`` is a valid but incomplete prefix. ``allow_unix`` accepts
    v2 PROXY headers carrying UNIX addresses (family 0x31), which HAProxy 2.6 rejects.
    """
    view = memoryview(buf).cast("B")
    size = len(view)
    if size == 0:
        return NEED_MORE
    if view[0] != _V1_PREFIX[0]:
        return _decode_v2(view, allow_unix)
    data = bytes(view[:MAX_V1_LEN])
    if size < len(_V1_PREFIX) and _V1_PREFIX.startswith(data):
        return NEED_MORE
    if not data.startswith(_V1_PREFIX):
        raise ProxyProtocolError(ErrorKind.NOT_HDR)
    try:
        return _decode_v1(data)
    except _Incomplete:
        if size >= MAX_V1_LEN:
            raise _bad_hdr() from None
        return NEED_MORE


def _decode_v1(data: bytes) -> tuple[ProxyHeader, int]:
    start = len(_V1_PREFIX)
    rest = data[start:]
    if rest.startswith(b"TCP4 "):
        return _decode_v1_tcp4(data, start + 5)
    if rest.startswith(b"TCP6 "):
        return _decode_v1_tcp6(data, start + 5)
    if rest.startswith(b"UNKNOWN\r\n"):
        return ProxyHeader(1, True, socket.AF_UNSPEC, None, None), start + 9
    if any(word.startswith(rest) for word in _V1_WORDS):
        raise _Incomplete
    raise ProxyProtocolError(ErrorKind.BAD_PROTO)


def _is_digit(byte: int) -> bool:
    return 0x30 <= byte <= 0x39


def _lenient_ipv4(data: bytes, pos: int) -> tuple[str, int]:
    # HAProxy's inetaddr_host_lim_ret: up to four dot-separated decimal groups, each reduced to
    # its last three digits and added at its byte position (so "256" carries into the next
    # byte); missing groups are 0.
    end = len(data)
    value = 0
    shift = 24
    while True:
        text = pos
        while pos < end and _is_digit(data[pos]):
            pos += 1
        if pos > text:
            value += int(data[max(text, pos - 3) : pos]) << shift
        if shift == 0 or pos == end or data[pos] != 0x2E:
            break
        shift -= 8
        pos += 1
    return socket.inet_ntop(socket.AF_INET, (value & 0xFFFFFFFF).to_bytes(4, "big")), pos


def _lenient_port(data: bytes, pos: int, end: int) -> tuple[int, int]:
    # HAProxy's read_uint: digits accumulate in 32 bits, the port keeps the low 16 bits.
    text = pos
    while pos < end and _is_digit(data[pos]):
        pos += 1
    return (int(data[text:pos]) if pos > text else 0) & 0xFFFF, pos


def _v1_space(data: bytes, pos: int) -> int:
    if pos == len(data):
        raise _Incomplete
    if data[pos] != 0x20:
        raise _bad_hdr()
    return pos + 1


def _decode_v1_tcp4(data: bytes, pos: int) -> tuple[ProxyHeader, int]:
    end = len(data)
    src_ip, pos = _lenient_ipv4(data, pos)
    pos = _v1_space(data, pos)
    dst_ip, pos = _lenient_ipv4(data, pos)
    pos = _v1_space(data, pos)
    sport, pos = _lenient_port(data, pos, end)
    pos = _v1_space(data, pos)
    dport, pos = _lenient_port(data, pos, end)
    if pos + 1 >= end:
        if pos == end or data[pos] == 0x0D:
            raise _Incomplete
        raise _bad_hdr()
    if data[pos : pos + 2] != b"\r\n":
        raise _bad_hdr()
    header = ProxyHeader(1, False, socket.AF_INET, (src_ip, sport), (dst_ip, dport))
    return header, pos + 2


def _c_string(fields: bytes, start: int) -> bytes:
    return fields[start : fields.index(0, start)]


def _c_port(fields: bytes, start: int, end: int) -> int:
    port, pos = _lenient_port(fields, start, end)
    if fields[pos] != 0:
        raise _bad_hdr()
    return port


def _strict_ipv6(text: bytes) -> str:
    try:
        packed = socket.inet_pton(socket.AF_INET6, text.decode("ascii"))
    except (UnicodeDecodeError, OSError, ValueError):
        raise _bad_hdr() from None
    return socket.inet_ntop(socket.AF_INET6, packed)


def _decode_v1_tcp6(data: bytes, pos: int) -> tuple[ProxyHeader, int]:
    cr = data.find(b"\r", pos)
    if cr < 0 or cr + 1 == len(data):
        raise _Incomplete
    if data[cr + 1] != 0x0A:
        raise _bad_hdr()
    # HAProxy turns every space and the CR into NULs, then reads the fields as C strings
    # starting after the first three spaces; later spaces only end the last field early.
    line = data[pos:cr]
    spaces = [i for i, byte in enumerate(line) if byte == 0x20][:3]
    if len(spaces) < 3:
        raise _bad_hdr()
    fields = line.replace(b" ", b"\0") + b"\0"
    dst_at, sport_at, dport_at = (i + 1 for i in spaces)
    sport = _c_port(fields, sport_at, dport_at - 1)
    dport = _c_port(fields, dport_at, len(fields) - 1)
    src_ip = _strict_ipv6(_c_string(fields, 0))
    dst_ip = _strict_ipv6(_c_string(fields, dst_at))
    header = ProxyHeader(1, False, socket.AF_INET6, (src_ip, sport), (dst_ip, dport))
    return header, cr + 2


def _decode_v2(view: memoryview, allow_unix: bool) -> tuple[ProxyHeader, int] | NeedMore:
    size = len(view)
    head = bytes(view[:V2_HEADER_LEN])
    known = min(size, len(V2_SIGNATURE))
    if head[:known] != V2_SIGNATURE[:known]:
        raise ProxyProtocolError(ErrorKind.NOT_HDR)
    if size <= len(V2_SIGNATURE):
        return NEED_MORE
    if head[12] & 0xF0 != 0x20:
        raise ProxyProtocolError(ErrorKind.NOT_HDR)
    command = head[12] & 0x0F
    if command not in (_CMD_LOCAL, _CMD_PROXY):
        raise _bad_hdr()
    if size < V2_HEADER_LEN:
        return NEED_MORE
    fam = head[13]
    length = int.from_bytes(head[14:16], "big")
    total = V2_HEADER_LEN + length
    if command == _CMD_PROXY:
        address_len = {_FAM_TCP4: 12, _FAM_TCP6: 36}
        if allow_unix:
            address_len[_FAM_UNIX_STREAM] = 216
        if length < address_len.get(fam, 0):
            raise _bad_hdr()
    if size < total:
        return NEED_MORE
    if command == _CMD_LOCAL:
        return ProxyHeader(2, True, socket.AF_UNSPEC, None, None), total

    header = bytearray(view[:total])
    src: Address | None
    dst: Address | None
    if fam == _FAM_TCP4:
        family = socket.AF_INET
        src = (socket.inet_ntop(family, header[16:20]), int.from_bytes(header[24:26], "big"))
        dst = (socket.inet_ntop(family, header[20:24]), int.from_bytes(header[26:28], "big"))
        tlv_offset = 28
    elif fam == _FAM_TCP6:
        family = socket.AF_INET6
        src = (socket.inet_ntop(family, header[16:32]), int.from_bytes(header[48:50], "big"))
        dst = (socket.inet_ntop(family, header[32:48]), int.from_bytes(header[50:52], "big"))
        tlv_offset = 52
    elif fam == _FAM_UNIX_STREAM and allow_unix:
        family = socket.AF_UNIX
        src = bytes(header[16:124]).rstrip(b"\0")
        dst = bytes(header[124:232]).rstrip(b"\0")
        tlv_offset = 232
    else:
        # HAProxy 2.6 leaves the TLV offset at 0 for other families and walks TLVs from the
        # signature itself; this almost always overruns, but when it does not the real
        # addresses are kept.
        family = socket.AF_UNSPEC
        src = dst = None
        tlv_offset = 0
    tlvs = _walk_tlvs(header, tlv_offset, src, dst)
    return ProxyHeader(2, src is None, family, src, dst, tlvs), total


def _walk_tlvs(
    header: bytearray, offset: int, src: Address | None, dst: Address | None
) -> tuple[Tlv, ...]:
    total = len(header)
    tlvs: list[Tlv] = []
    while offset < total:
        if offset + 3 > total:
            raise _bad_hdr(src, dst)
        tlv_type = header[offset]
        start = offset + 3
        offset = start + int.from_bytes(header[offset + 1 : start], "big")
        if offset > total:
            raise _bad_hdr(src, dst)
        value = bytes(header[start:offset])
        if tlv_type == TlvType.CRC32C:
            if len(value) != 4:
                raise _bad_hdr(src, dst)
            # The field stays zeroed, as in HAProxy, for any later CRC32C TLV.
            header[start:offset] = bytes(4)
            if google_crc32c.value(bytes(header)) != int.from_bytes(value, "big"):
                raise _bad_hdr(src, dst)
        elif (tlv_type == TlvType.AUTHORITY and len(value) > AUTHORITY_MAX) or (
            tlv_type == TlvType.UNIQUE_ID and len(value) > UNIQUE_ID_MAX
        ):
            raise _bad_hdr(src, dst)
        tlvs.append(Tlv(tlv_type, value))
    return tuple(tlvs)


def _inet(addr: Address | None) -> tuple[bytes, int] | None:
    """Packed IP (4 or 16 bytes) and port of an INET/INET6 address, None for anything else."""
    if not isinstance(addr, tuple):
        return None
    host, port = addr[0], addr[1]
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port out of range: {port}")
    host = host.split("%", 1)[0]
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, host), port
        except OSError:
            continue
    raise ValueError(f"not an IP address: {host!r}")


def _as_ipv6(packed: bytes) -> bytes:
    return packed if len(packed) == 16 else _V4_MAPPED_PREFIX + packed


def encode_v1(src: Address | None, dst: Address | None) -> bytes:
    """A v1 line: TCP4, TCP6 (IPv4 side v4-mapped when mixed) or ``PROXY UNKNOWN``."""
    s, d = _inet(src), _inet(dst)
    if s is None or d is None:
        return b"PROXY UNKNOWN\r\n"
    if len(s[0]) == len(d[0]) == 4:
        proto, family, s_ip, d_ip = "TCP4", socket.AF_INET, s[0], d[0]
    else:
        proto, family, s_ip, d_ip = "TCP6", socket.AF_INET6, _as_ipv6(s[0]), _as_ipv6(d[0])
    src_text = socket.inet_ntop(family, s_ip)
    dst_text = socket.inet_ntop(family, d_ip)
    return f"PROXY {proto} {src_text} {dst_text} {s[1]} {d[1]}\r\n".encode("ascii")


def encode_v2(
    src: Address | None,
    dst: Address | None,
    *,
    local: bool = False,
    tlvs: Sequence[Tlv] = (),
    crc32c: bool = False,
) -> bytes:
    """A v2 header; LOCAL when asked or when either address is not INET/INET6.

    TLVs follow HAProxy's order: CRC32C first (when ``crc32c``), then ``tlvs`` as given.
    """
    s, d = _inet(src), _inet(dst)
    out = bytearray(V2_SIGNATURE)
    if local or s is None or d is None:
        out += b"\x20\x00\x00\x00"
    elif len(s[0]) == len(d[0]) == 4:
        out += b"\x21\x11\x00\x00" + s[0] + d[0]
        out += s[1].to_bytes(2, "big") + d[1].to_bytes(2, "big")
    else:
        out += b"\x21\x21\x00\x00" + _as_ipv6(s[0]) + _as_ipv6(d[0])
        out += s[1].to_bytes(2, "big") + d[1].to_bytes(2, "big")
    crc_at = None
    if crc32c:
        crc_at = len(out) + 3
        out += Tlv(TlvType.CRC32C, bytes(4)).pack()
    for tlv in tlvs:
        out += tlv.pack()
    length = len(out) - V2_HEADER_LEN
    if length > 0xFFFF:
        raise ValueError(f"PROXY v2 header too long: {len(out)} bytes")
    out[14:16] = length.to_bytes(2, "big")
    if crc_at is not None:
        out[crc_at : crc_at + 4] = google_crc32c.value(bytes(out)).to_bytes(4, "big")
    return bytes(out)


def ssl_tlv(
    client: int = 0,
    verify: int = 0,
    *,
    version: bytes | None = None,
    cn: bytes | None = None,
    key_alg: bytes | None = None,
    sig_alg: bytes | None = None,
    cipher: bytes | None = None,
) -> Tlv:
    """An SSL TLV (client flags, verify result, sub-TLVs in HAProxy 2.6's emission order)."""
    value = bytearray((client,)) + verify.to_bytes(4, "big")
    subs = (
        (SslSubtype.VERSION, version),
        (SslSubtype.CN, cn),
        (SslSubtype.KEY_ALG, key_alg),
        (SslSubtype.SIG_ALG, sig_alg),
        (SslSubtype.CIPHER, cipher),
    )
    for sub_type, sub_value in subs:
        if sub_value is not None:
            value += Tlv(sub_type, sub_value).pack()
    return Tlv(TlvType.SSL, bytes(value))


def parse_ssl_tlv(value: bytes) -> tuple[int, int, tuple[Tlv, ...]]:
    """Split an SSL TLV value into client flags, verify result and sub-TLVs."""
    if len(value) < 5:
        raise ValueError("SSL TLV shorter than 5 bytes")
    subs: list[Tlv] = []
    offset = 5
    while offset < len(value):
        start = offset + 3
        if start > len(value):
            raise ValueError("truncated SSL sub-TLV header")
        offset = start + int.from_bytes(value[offset + 1 : start], "big")
        if offset > len(value):
            raise ValueError("SSL sub-TLV runs past the SSL TLV")
        subs.append(Tlv(value[start - 3], value[start:offset]))
    return value[0], int.from_bytes(value[1:5], "big"), tuple(subs)
