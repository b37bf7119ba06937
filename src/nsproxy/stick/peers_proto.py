"""HAProxy's peers protocol 2.1 as HAProxy 2.6 speaks it: handshake, framing and messages, sans I/O.

Hello (3 lines) and a status line open a session; then messages flow both ways, each
`class, type` (two bytes), and for stick-table messages (type >= 128) a varint length and a
payload. Varints are HAProxy's own: below 240 one byte; above, the first byte carries 4 bits
(0xF0 set) and each next byte 7 bits, a set top bit meaning "more", every byte past the first
offset by the value its bits could already express.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

PROTO_NAME = "HAProxyS"
VERSION = (2, 1)

# status codes of the handshake
SUCCESS, TRY_AGAIN, ERR_PROTO, ERR_VERSION, ERR_HOST, ERR_PEER = 200, 300, 501, 502, 503, 504

# message classes and types
CLASS_CONTROL, CLASS_ERROR, CLASS_STICKTABLE, CLASS_RESERVED = 0, 1, 10, 255
RESYNC_REQUEST, RESYNC_FINISHED, RESYNC_PARTIAL, RESYNC_CONFIRM, HEARTBEAT = 0, 1, 2, 3, 4
ERROR_PROTOCOL, ERROR_SIZE_LIMIT = 0, 1
UPDATE, INC_UPDATE, DEFINE, SWITCH, ACK, UPDATE_TIMED, INC_UPDATE_TIMED = (
    0x80,
    0x81,
    0x82,
    0x83,
    0x84,
    0x85,
    0x86,
)

# key types on the wire
NET_KEY_TYPES = {"integer": 2, "ip": 4, "ipv6": 5, "string": 6, "binary": 7}
KEY_TYPE_NAMES = {v: k for k, v in NET_KEY_TYPES.items()}

# data types by number: storage kind, as in nsproxy.stick.types (kept here for a codec with
# no table dependency)
FRQP_TYPES = frozenset({3, 5, 8, 10, 12, 14, 16, 18, 21})
DICT_TYPES = frozenset({19})
SINT_TYPES = frozenset({0})
ULL_TYPES = frozenset({13, 15})
MAX_DATA_TYPES = 22

U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF


class ProtocolError(ValueError):
    """Malformed input: HAProxy answers such a message with an error message and closes."""


# -- varints ---------------------------------------------------------------------------------
def encode_varint(i: int) -> bytes:
    """intencode(): the encoding of an unsigned 64-bit value."""
    if i < 0 or i > U64:
        raise ValueError("varint out of range")
    if i < 0xF0:
        return bytes((i,))
    out = bytearray(((i & 0xFF) | 0xF0,))
    i = (i - 0xF0) >> 4
    while i >= 0x80:
        out.append((i & 0xFF) | 0x80)
        i = (i - 0x80) >> 7
    out.append(i)
    return bytes(out)


def decode_varint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int] | None:
    """intdecode(): (value, next position), or None if `buf` ends inside the number."""
    if pos >= len(buf):
        return None
    i = buf[pos]
    pos += 1
    if i >= 0xF0:
        shift = 4
        while True:
            if pos >= len(buf):
                return None
            b = buf[pos]
            pos += 1
            i += b << shift
            shift += 7
            if b < 0x80:
                break
    return i & U64, pos


def _need_varint(buf: bytes, pos: int) -> tuple[int, int]:
    r = decode_varint(buf, pos)
    if r is None:
        raise ProtocolError("truncated varint")
    return r


# -- handshake -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Hello:
    """The three hello lines: version, the name the sender expects us to have, its own name,
    its process id and relative pid."""

    remote_id: str
    local_id: str
    pid: int
    relative_pid: int = 1
    version: tuple[int, int] = VERSION

    def encode(self) -> bytes:
        return (
            f"{PROTO_NAME} {self.version[0]}.{self.version[1]}\n{self.remote_id}\n"
            f"{self.local_id} {self.pid} {self.relative_pid}\n"
        ).encode()


def status_line(code: int) -> bytes:
    return f"{code}\n".encode()


def split_lines(buf: bytes, count: int) -> tuple[list[str], int] | None:
    """The first `count` lines (LF, optional CR before) and the bytes they took, or None."""
    lines: list[str] = []
    pos = 0
    for _ in range(count):
        nl = buf.find(b"\n", pos)
        if nl < 0:
            return None
        line = buf[pos:nl]
        if line.endswith(b"\r"):
            line = line[:-1]
        lines.append(line.decode("latin-1"))
        pos = nl + 1
    return lines, pos


def check_hello(
    lines: Sequence[str], local_name: str, known_peers: Sequence[str]
) -> tuple[int, Hello | None]:
    """What an accepting HAProxy 2.6 answers to these three hello lines: (status, hello)."""
    first = lines[0]
    if not first.startswith(PROTO_NAME + " "):
        return ERR_PROTO, None
    ver = first[len(PROTO_NAME) + 1 :]
    maj, dot, minor = ver.partition(".")
    if (
        not dot
        or not maj.isdigit()
        or not minor.isdigit()
        or int(maj) != VERSION[0]
        or int(minor) > VERSION[1]
    ):
        return ERR_VERSION, None
    if lines[1] != local_name:
        return ERR_HOST, None
    name, sp, rest = lines[2].partition(" ")
    if not sp:
        return ERR_PROTO, None
    if name not in known_peers:
        return ERR_PEER, None
    words = rest.split()
    pid = int(words[0]) if words and words[0].isdigit() else 0
    rel = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
    return SUCCESS, Hello(lines[1], name, pid, rel, (int(maj), int(minor)))


# -- framing ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Frame:
    """One message: class, type and (stick-table messages only) payload."""

    cls: int
    type: int
    payload: bytes = b""

    def encode(self) -> bytes:
        if self.type & 0x80:
            return bytes((self.cls, self.type)) + encode_varint(len(self.payload)) + self.payload
        return bytes((self.cls, self.type))


def read_frames(buf: bytearray, max_len: int = 16384) -> Iterator[Frame]:
    """Takes complete messages off the front of `buf` (bytes left stay for the next call)."""
    while len(buf) >= 2:
        cls, typ = buf[0], buf[1]
        if not typ & 0x80:
            del buf[:2]
            yield Frame(cls, typ)
            continue
        r = decode_varint(buf, 2)
        if r is None:
            if len(buf) >= 2 + 10:
                raise ProtocolError("message length too long")
            return
        length, pos = r
        if length > max_len:
            raise ProtocolError("message too large")
        if len(buf) < pos + length:
            return
        payload = bytes(buf[pos : pos + length])
        del buf[: pos + length]
        yield Frame(cls, typ, payload)


def control(kind: int) -> bytes:
    return bytes((CLASS_CONTROL, kind))


def error(kind: int) -> bytes:
    return bytes((CLASS_ERROR, kind))


# -- table definition, switch, ack -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TableDef:
    """A table as announced: the sender's id for it, its name, key type and size, stored data
    types (numbers) with the period of each freq counter, and its expire in ms."""

    table_id: int
    name: str
    key_type: str
    key_size: int
    data_types: tuple[int, ...]
    periods: tuple[tuple[int, int], ...] = ()
    expire: int = 0

    def encode(self) -> bytes:
        name = self.name.encode()
        bits = 0
        for n in self.data_types:
            bits |= 1 << n
        p = bytearray()
        p += encode_varint(self.table_id)
        p += encode_varint(len(name)) + name
        p += encode_varint(NET_KEY_TYPES[self.key_type])
        p += encode_varint(self.key_size)
        p += encode_varint(bits)
        p += encode_varint(self.expire)
        per = dict(self.periods)
        for n in sorted(self.data_types):
            if n in FRQP_TYPES:
                p += encode_varint(n) + encode_varint(per.get(n, 0))
        return Frame(CLASS_STICKTABLE, DEFINE, bytes(p)).encode()

    @staticmethod
    def decode(payload: bytes) -> TableDef:
        tid, pos = _need_varint(payload, 0)
        nlen, pos = _need_varint(payload, pos)
        if not nlen or pos + nlen >= len(payload):
            raise ProtocolError("bad table name length")
        name = payload[pos : pos + nlen].decode("latin-1")
        pos += nlen
        ktype, pos = _need_varint(payload, pos)
        ksize, pos = _need_varint(payload, pos)
        bits, pos = _need_varint(payload, pos)
        types = tuple(n for n in range(64) if bits >> n & 1)
        expire = 0
        periods: list[tuple[int, int]] = []
        r = decode_varint(payload, pos)
        if r is not None:
            expire, pos = r
            for n in types:
                if n in FRQP_TYPES:
                    num, pos = _need_varint(payload, pos)
                    if num != n:
                        raise ProtocolError("data type parameters out of order")
                    per, pos = _need_varint(payload, pos)
                    periods.append((n, per))
        if ktype not in KEY_TYPE_NAMES:
            raise ProtocolError(f"unknown key type {ktype}")
        return TableDef(tid, name, KEY_TYPE_NAMES[ktype], ksize, types, tuple(periods), expire)


def switch(table_id: int) -> bytes:
    return Frame(CLASS_STICKTABLE, SWITCH, encode_varint(table_id)).encode()


def decode_switch(payload: bytes) -> int:
    return _need_varint(payload, 0)[0]


def ack(table_id: int, update_id: int) -> bytes:
    return Frame(
        CLASS_STICKTABLE, ACK, encode_varint(table_id) + (update_id & U32).to_bytes(4, "big")
    ).encode()


def decode_ack(payload: bytes) -> tuple[int, int]:
    tid, pos = _need_varint(payload, 0)
    if pos + 4 > len(payload):
        raise ProtocolError("truncated ack")
    return tid, int.from_bytes(payload[pos : pos + 4], "big")


# -- entry updates ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FreqValue:
    """A freq counter on the wire: ms since its period started, this period's and the last
    period's counts. The receiver sets curr_tick = (now - elapsed) & ~1."""

    elapsed: int
    curr: int
    prev: int


Value = int | FreqValue | str | None


@dataclass(frozen=True, slots=True)
class Update:
    """An entry update: its update id (None: previous + 1, sent as an incremental update),
    its remaining life in ms (None: untimed), key, and values in the table's data-type order
    (ints, FreqValue for rates, str or None for server_key)."""

    update_id: int | None
    expire: int | None
    key: int | bytes
    values: tuple[Value, ...]


class DictCache:
    """The per-session server_key dictionary cache: ids 1..128 on the wire."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self.tx: dict[str, int] = {}
        self.rx: dict[int, str] = {}
        self._next = 0

    def tx_id(self, value: str) -> int:
        i = self.tx.get(value)
        if i is None:
            i = self._next % self.size + 1
            self._next += 1
            self.tx = {k: v for k, v in self.tx.items() if v != i}
            self.tx[value] = i
        return i


def encode_update(td: TableDef, u: Update, cache: DictCache | None = None) -> bytes:
    """The update message for `u` in table `td` (types chosen from u.update_id / u.expire)."""
    p = bytearray()
    if u.update_id is not None:
        p += (u.update_id & U32).to_bytes(4, "big")
    if u.expire is not None:
        p += (u.expire & U32).to_bytes(4, "big")
    key = u.key
    if td.key_type == "string":
        assert isinstance(key, bytes)
        p += encode_varint(len(key)) + key
    elif td.key_type in ("integer", "ip"):
        assert isinstance(key, int)
        p += (key & U32).to_bytes(4, "big")
    else:
        assert isinstance(key, bytes)
        p += key[: td.key_size].ljust(td.key_size, b"\0")
    types = sorted(td.data_types)
    if len(types) != len(u.values):
        raise ValueError("one value per data type")
    for n, v in zip(types, u.values, strict=True):
        if n in FRQP_TYPES:
            assert isinstance(v, FreqValue)
            p += encode_varint(v.elapsed & U32) + encode_varint(v.curr & U32)
            p += encode_varint(v.prev & U32)
        elif n in DICT_TYPES:
            if v is None:
                p += encode_varint(0)
            else:
                assert isinstance(v, str)
                c = cache if cache is not None else DictCache()
                raw = v.encode()
                body = encode_varint(c.tx_id(v)) + encode_varint(len(raw)) + raw
                p += encode_varint(len(body)) + body
        else:
            assert isinstance(v, int)
            p += encode_varint(v & U64)
    if u.update_id is None:
        typ = INC_UPDATE_TIMED if u.expire is not None else INC_UPDATE
    else:
        typ = UPDATE_TIMED if u.expire is not None else UPDATE
    return Frame(CLASS_STICKTABLE, typ, bytes(p)).encode()


def decode_update(td: TableDef, frame: Frame, cache: DictCache | None = None) -> Update:
    """Decodes an update frame of table `td` (its last definition from this peer)."""
    b = frame.payload
    pos = 0
    uid: int | None = None
    exp: int | None = None
    if frame.type in (UPDATE, UPDATE_TIMED):
        if len(b) < 4:
            raise ProtocolError("truncated update id")
        uid = int.from_bytes(b[:4], "big")
        pos = 4
    if frame.type in (UPDATE_TIMED, INC_UPDATE_TIMED):
        if pos + 4 > len(b):
            raise ProtocolError("truncated expire")
        exp = int.from_bytes(b[pos : pos + 4], "big")
        pos += 4
    key: int | bytes
    if td.key_type == "string":
        n, pos = _need_varint(b, pos)
        keep = min(n, td.key_size - 1)
        if pos + keep > len(b):
            raise ProtocolError("truncated key")
        key = b[pos : pos + keep]
        pos += n
    elif td.key_type in ("integer", "ip"):
        if pos + 4 > len(b):
            raise ProtocolError("truncated key")
        key = int.from_bytes(b[pos : pos + 4], "big")
        pos += 4
    else:
        if pos + td.key_size > len(b):
            raise ProtocolError("truncated key")
        key = b[pos : pos + td.key_size]
        pos += td.key_size
    values: list[Value] = []
    for n in sorted(td.data_types):
        v, pos = _need_varint(b, pos)
        if n in FRQP_TYPES:
            curr, pos = _need_varint(b, pos)
            prev, pos = _need_varint(b, pos)
            values.append(FreqValue(v & U32, curr & U32, prev & U32))
        elif n in DICT_TYPES:
            if not v:
                values.append(None)
                continue
            end = pos + v
            if end > len(b):
                raise ProtocolError("truncated dictionary entry")
            did, pos = _need_varint(b[:end], pos)
            if not did:
                raise ProtocolError("dictionary id 0")
            c = cache if cache is not None else DictCache()
            if pos == end:
                if did not in c.rx:
                    raise ProtocolError("unknown dictionary id")
                values.append(c.rx[did])
            else:
                vlen, pos = _need_varint(b[:end], pos)
                if pos + vlen > end:
                    raise ProtocolError("truncated dictionary value")
                s = b[pos : pos + vlen].decode("latin-1")
                c.rx[did] = s
                values.append(s)
                pos = end
        elif n in SINT_TYPES:
            v &= U32
            values.append(v - (1 << 32) if v & 0x80000000 else v)
        elif n in ULL_TYPES:
            values.append(v)
        else:
            values.append(v & U32)
    return Update(uid, exp, key, tuple(values))
