"""Sizes of a complete chunked message: what its chunk framing adds to the data."""

from __future__ import annotations

import re

_CHUNKED = re.compile(rb"(?im)^transfer-encoding:[ \t]*chunked[ \t]*\r?$")


def chunk_framing(message: bytes) -> int:
    """Bytes of chunk sizes, chunk CRLFs and the last chunk in `message` (a complete HTTP/1
    message, head included, without trailers); 0 when its body is not chunked."""
    head_end = message.find(b"\r\n\r\n")
    if head_end < 0 or not _CHUNKED.search(message[:head_end]):
        return 0
    pos = head_end + 4
    framing = 0
    while pos < len(message):
        line_end = message.find(b"\r\n", pos)
        if line_end < 0:
            break
        size = int(message[pos:line_end].split(b";", 1)[0], 16)
        framing += line_end + 2 - pos
        pos = line_end + 2
        if size == 0:
            framing += len(message) - pos  # the final CRLF
            break
        pos += size + 2
        framing += 2
    return framing
