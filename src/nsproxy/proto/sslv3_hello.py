"""Sans-I/O `option ssl-hello-chk`: the SSLv3 ClientHello HAProxy sends and how it judges the reply.

HAProxy 2.6 sends one SSLv3 handshake record (version 3.0, the 39 ciphers 0x0001-0x001B and
0x002F-0x003A, no session id, NULL compression) whose random field is the current Unix time
(4 bytes, network order) followed by the 28 bytes "HAPROXYSSLCHK\\nHAPROXYSSLCHK\\n". It then
waits for at least 5 bytes and passes when the first one is a TLS handshake (0x16) or alert
(0x15) record type: any TLS speaker answers one or the other, even when it refuses SSLv3.
"""

from __future__ import annotations

import struct
from enum import Enum

RANDOM_TAIL = b"HAPROXYSSLCHK\nHAPROXYSSLCHK\n"
CIPHERS = (*range(0x0001, 0x001C), *range(0x002F, 0x003B))
MIN_RECV = 5
RECORD_ALERT = 0x15
RECORD_HANDSHAKE = 0x16


def client_hello(now: int) -> bytes:
    """The record HAProxy sends at Unix time `now` (seconds)."""
    suites = b"".join(struct.pack("!H", c) for c in CIPHERS)
    body = (
        b"\x03\x00"
        + struct.pack("!I", now & 0xFFFFFFFF)
        + RANDOM_TAIL
        + b"\x00"
        + struct.pack("!H", len(suites))
        + suites
        + b"\x01\x00"
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x00" + struct.pack("!H", len(handshake)) + handshake


class Verdict(Enum):
    NEED_MORE = "need-more"
    PASSED = "passed"
    FAILED = "failed"
    EMPTY = "empty"


def judge(data: bytes, eof: bool) -> Verdict:
    """The verdict on the bytes received so far; `eof` when no more will come (closed, or the
    buffer is full)."""
    if not data:
        return Verdict.EMPTY if eof else Verdict.NEED_MORE
    if len(data) < MIN_RECV and not eof:
        return Verdict.NEED_MORE
    return Verdict.PASSED if data[0] in (RECORD_ALERT, RECORD_HANDSHAKE) else Verdict.FAILED
