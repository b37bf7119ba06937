"""Writers: body bytes and message ends framed as HAProxy 2.6 re-emits them."""

from __future__ import annotations

from nsproxy.proto.h1.head import CHUNKED, Header


def encode_data(framing: int, data: bytes) -> bytes:
    """One piece of body: a chunk (upper-case hex size, no extension) or the bytes as they are."""
    if framing == CHUNKED:
        return b"%X\r\n%s\r\n" % (len(data), data) if data else b""
    return data


def encode_end(framing: int, trailers: list[Header] | None = None) -> bytes:
    """The end of a body: the last chunk and the trailers (lower-case names) when chunked."""
    if framing != CHUNKED:
        return b""
    if not trailers:
        return b"0\r\n\r\n"
    return b"0\r\n%s\r\n" % b"".join([n + b": " + v + b"\r\n" for n, v in trailers])
