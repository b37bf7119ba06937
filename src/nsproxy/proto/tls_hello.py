"""Sans-I/O TLS ClientHello parser: SNI, ALPN and versions from the first bytes a client sends.

`parse_client_hello(data)` looks at the buffered bytes and answers NEED_MORE, INVALID or OK
with the parsed hello. The handshake message may be split over several TLS records (each
record header is checked and skipped); a record may itself be cut anywhere. Bad input is
reported as INVALID, never as an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

RECORD_HANDSHAKE = 0x16
HANDSHAKE_CLIENT_HELLO = 0x01
EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_ALPN = 16
EXT_SESSION_TICKET = 35
MAX_RECORD = (1 << 14) + 2048  # ciphertext limit; a plaintext record is at most 2^14
MAX_HELLO = 1 << 16  # a ClientHello larger than this is refused (bounded buffering)


class Status(Enum):
    NEED_MORE = "need-more"
    INVALID = "invalid"
    OK = "ok"


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The parts of a ClientHello routing rules read."""

    record_version: int  # of the first record, e.g. 0x0301
    version: int  # client_version in the hello, e.g. 0x0303
    sni: bytes | None  # the first host_name of server_name, raw
    alpn: tuple[bytes, ...]  # protocol names in the client's order
    extensions: tuple[tuple[int, bytes], ...]  # (type, data) in order
    size: int  # bytes of input (records included) the hello occupies


@dataclass(frozen=True, slots=True)
class HelloResult:
    status: Status
    hello: ClientHello | None = None


NEED_MORE = HelloResult(Status.NEED_MORE)
INVALID = HelloResult(Status.INVALID)


def _u16(b: bytes | bytearray, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def handshake_bytes(data: bytes) -> tuple[Status, bytes, int, int]:
    """Reassembles the first handshake message from records.

    Returns (status, message bytes incl. its 4-byte header, input bytes consumed, first record
    version). status is OK when the whole message is present.
    """
    hs = bytearray()
    i = 0
    first_version = 0
    need: int | None = None
    while True:
        if len(data) - i < 5:
            # A lone record header fragment: check what we can.
            if i < len(data) and data[i] != RECORD_HANDSHAKE:
                return Status.INVALID, b"", i, first_version
            if i + 1 < len(data) and data[i + 1] != 3:
                return Status.INVALID, b"", i, first_version
            return Status.NEED_MORE, bytes(hs), i, first_version
        if data[i] != RECORD_HANDSHAKE or data[i + 1] != 3:
            return Status.INVALID, b"", i, first_version
        version = _u16(data, i + 1)
        if not first_version:
            first_version = version
        rlen = _u16(data, i + 3)
        if rlen == 0 or rlen > MAX_RECORD:
            return Status.INVALID, b"", i, first_version
        chunk = data[i + 5 : i + 5 + rlen]
        hs += chunk
        if need is None and len(hs) >= 4:
            if hs[0] != HANDSHAKE_CLIENT_HELLO:
                return Status.INVALID, b"", i, first_version
            need = 4 + ((hs[1] << 16) | (hs[2] << 8) | hs[3])
            if need > MAX_HELLO:
                return Status.INVALID, b"", i, first_version
        if need is not None and len(hs) >= need:
            # Bytes of input up to the end of the hello (within the last record).
            used_in_record = len(chunk) - (len(hs) - need)
            return Status.OK, bytes(hs[:need]), i + 5 + used_in_record, first_version
        if len(chunk) < rlen:
            return Status.NEED_MORE, bytes(hs), len(data), first_version
        i += 5 + rlen


def parse_hello_body(
    body: bytes,
) -> tuple[int, bytes | None, tuple[bytes, ...], tuple[tuple[int, bytes], ...]] | None:
    """(client_version, sni, alpn, extensions) of a ClientHello body, or None when malformed."""
    n = len(body)
    if n < 2 + 32 + 1:
        return None
    version = _u16(body, 0)
    i = 34
    sid = body[i]
    i += 1
    if sid > 32 or i + sid + 2 > n:
        return None
    i += sid
    clen = _u16(body, i)
    i += 2
    if clen < 2 or clen % 2 or i + clen + 1 > n:
        return None
    i += clen
    comp = body[i]
    i += 1
    if comp < 1 or i + comp > n:
        return None
    i += comp
    extensions: list[tuple[int, bytes]] = []
    if i < n:
        if i + 2 > n:
            return None
        elen = _u16(body, i)
        i += 2
        if i + elen != n:
            return None
        while i < n:
            if i + 4 > n:
                return None
            etype, dlen = _u16(body, i), _u16(body, i + 2)
            i += 4
            if i + dlen > n:
                return None
            extensions.append((etype, body[i : i + dlen]))
            i += dlen
    sni: bytes | None = None
    alpn: tuple[bytes, ...] = ()
    for etype, data in extensions:
        if etype == EXT_SERVER_NAME and sni is None:
            sni = _first_host_name(data)
            if sni is None:
                return None
        elif etype == EXT_ALPN and not alpn:
            names = _alpn_names(data)
            if names is None:
                return None
            alpn = names
    return version, sni, alpn, tuple(extensions)


def _first_host_name(data: bytes) -> bytes | None:
    if len(data) < 2 or _u16(data, 0) != len(data) - 2:
        return None
    i = 2
    first: bytes | None = None
    while i < len(data):
        if i + 3 > len(data):
            return None
        ntype, nlen = data[i], _u16(data, i + 1)
        i += 3
        if i + nlen > len(data):
            return None
        if ntype == 0 and first is None:
            first = data[i : i + nlen]
        i += nlen
    return first if first is not None else b""


def _alpn_names(data: bytes) -> tuple[bytes, ...] | None:
    if len(data) < 2 or _u16(data, 0) != len(data) - 2:
        return None
    i = 2
    names = []
    while i < len(data):
        nlen = data[i]
        i += 1
        if nlen == 0 or i + nlen > len(data):
            return None
        names.append(data[i : i + nlen])
        i += nlen
    return tuple(names)


def parse_client_hello(data: bytes) -> HelloResult:
    """Parses the ClientHello at the start of `data` (possibly spread over several records)."""
    status, msg, used, rversion = handshake_bytes(data)
    if status is not Status.OK:
        return NEED_MORE if status is Status.NEED_MORE else INVALID
    parsed = parse_hello_body(msg[4:])
    if parsed is None:
        return INVALID
    version, sni, alpn, exts = parsed
    if version < 0x0300:
        return INVALID
    return HelloResult(Status.OK, ClientHello(rversion, version, sni, alpn, exts, used))


def ssl_hello_type(data: bytes) -> tuple[Status, int]:
    """HAProxy's req.ssl_hello_type: the handshake type of the first message, once complete."""
    if not data:
        return Status.NEED_MORE, 0
    if not (0x14 <= data[0] <= 0x17 or data[0] == 0xFF):
        return Status.INVALID, 0
    if data[0] == RECORD_HANDSHAKE:
        if len(data) >= 3 and data[1] < 3:
            return Status.INVALID, 0
        if len(data) >= 5 and _u16(data, 3) < 4:
            return Status.INVALID, 0
        status, msg, _, _ = (
            handshake_bytes(data) if len(data) >= 6 and data[5] == 1 else (_other_handshake(data))
        )
        if status is Status.OK:
            return Status.OK, msg[0]
        return status, 0
    if len(data) < 9:
        return Status.NEED_MORE, 0
    if ((data[1] << 16) + data[2]) < 0x00030000 or _u16(data, 3) < 4:
        return Status.INVALID, 0
    hs_len = (data[6] << 16) | (data[7] << 8) | data[8]
    if len(data) < 9 + hs_len:
        return Status.NEED_MORE, 0
    return Status.OK, data[5]


def _other_handshake(data: bytes) -> tuple[Status, bytes, int, int]:
    """A handshake record whose first message is not a ClientHello: HAProxy's single-record view."""
    if len(data) < 9:
        return Status.NEED_MORE, b"", 0, 0
    hs_len = (data[6] << 16) | (data[7] << 8) | data[8]
    if len(data) < 9 + hs_len:
        return Status.NEED_MORE, b"", 0, 0
    return Status.OK, data[5 : 9 + hs_len], 9 + hs_len, _u16(data, 1)


def ssl_version(data: bytes, limit: int = 15360) -> tuple[Status, int]:
    """HAProxy's req.ssl_ver: the hello's client version (SSLv3+ records or an SSLv2 hello)."""
    if not data:
        return Status.NEED_MORE, 0
    bleft = len(data)
    if 0x14 <= data[0] <= 0x17 or data[0] == 0xFF:
        if bleft < 11:
            return Status.NEED_MORE, 0
        version = (data[1] << 16) + data[2]
        msg_len = _u16(data, 3)
        if version < 0x00030000 or msg_len < 6 or msg_len > MAX_RECORD:
            return Status.INVALID, 0
        bleft -= 5
        version = (data[9] << 16) + data[10]
    else:
        if data[0] & 0x80:
            if bleft < 3:
                return Status.NEED_MORE, 0
            rlen = ((data[0] & 0x7F) << 8) | data[1]
            plen, pos = 0, 2
        else:
            if bleft < 4:
                return Status.NEED_MORE, 0
            rlen = ((data[0] & 0x3F) << 8) | data[1]
            plen, pos = data[2], 3
        bleft -= pos
        if data[pos] != 0x01:
            return Status.INVALID, 0
        pos += 1
        bleft -= 1
        if bleft < 8:
            return Status.NEED_MORE, 0
        version = (data[pos] << 16) + data[pos + 1]
        cilen, silen, chlen = _u16(data, pos + 2), _u16(data, pos + 4), _u16(data, pos + 6)
        bleft -= 8
        if cilen % 3 or (silen and silen != 16) or not 16 <= chlen <= 32:
            return Status.INVALID, 0
        if rlen != 9 + cilen + silen + chlen:
            return Status.INVALID, 0
        msg_len = cilen + silen + chlen + plen
    msg_len = min(msg_len, limit)
    if bleft < msg_len:
        return Status.NEED_MORE, 0
    # HAProxy encodes major.minor as major << 16 | minor.
    return Status.OK, version
