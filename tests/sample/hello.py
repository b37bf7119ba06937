"""Builds TLS ClientHello bytes for tests: whole, or split over several records."""

from __future__ import annotations

import struct


def ext(etype: int, data: bytes) -> bytes:
    return struct.pack("!HH", etype, len(data)) + data


def sni_ext(*names: bytes) -> bytes:
    body = b"".join(b"\x00" + struct.pack("!H", len(n)) + n for n in names)
    return ext(0, struct.pack("!H", len(body)) + body)


def alpn_ext(*protos: bytes) -> bytes:
    body = b"".join(bytes([len(p)]) + p for p in protos)
    return ext(16, struct.pack("!H", len(body)) + body)


def hello_message(
    extensions: bytes = b"",
    version: int = 0x0303,
    session_id: bytes = b"",
    ciphers: bytes = b"\x13\x01\xc0\x2f",
    with_ext_block: bool = True,
) -> bytes:
    """A handshake message (type 1 + 3-byte length + body)."""
    body = struct.pack("!H", version) + bytes(range(32))
    body += bytes([len(session_id)]) + session_id
    body += struct.pack("!H", len(ciphers)) + ciphers + b"\x01\x00"
    if with_ext_block:
        body += struct.pack("!H", len(extensions)) + extensions
    return b"\x01" + len(body).to_bytes(3, "big") + body


def records(msg: bytes, sizes: list[int] | None = None, version: int = 0x0301) -> bytes:
    """`msg` in handshake records of the given sizes (the last takes the rest)."""
    out = b""
    rest = msg
    for size in sizes or []:
        if not rest:
            break
        out += b"\x16" + struct.pack("!HH", version, min(size, len(rest))) + rest[:size]
        rest = rest[size:]
    if rest:
        out += b"\x16" + struct.pack("!HH", version, len(rest)) + rest
    return out


def client_hello(sni: bytes | None = b"example.com", alpn: tuple[bytes, ...] = ()) -> bytes:
    exts = b""
    if sni is not None:
        exts += sni_ext(sni)
    if alpn:
        exts += alpn_ext(*alpn)
    exts += ext(10, b"\x00\x02\x00\x17")
    return records(hello_message(exts))
