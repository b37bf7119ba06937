"""The HTTP/1 request head a TCP stream's buffered bytes hold, as HAProxy's HTTP fetches see it.

In a `mode tcp` proxy HAProxy parses the buffered request bytes when an HTTP fetch asks for
them. It is more lenient than its HTTP mode on the request line (empty lines before it, any
version text, a `GET` without version taken as HTTP/1.0) and stops at the first byte that
cannot start a request, without waiting for the rest of the head.
"""

from __future__ import annotations

import re

from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import DEFAULT_LIMITS, Limits, RequestHead, parse_request_head
from nsproxy.proto.h1.reader import split_head

_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_VCHAR = rb"[^\x00-\x08\x0a-\x1f\x7f]"  # a version's text: anything but control characters
# The request line, complete: method, target, optional version.
_LINE = re.compile(
    rb"(" + _TCHAR + rb"+)[ \t]+([\x21-\x7e]+)(?:[ \t]+(" + _VCHAR + rb"*?))?[ \t]*\r?\n"
)
# A start of the request line that more bytes could complete.
_LINE_START = re.compile(
    rb"(?:" + _TCHAR + rb"+(?:[ \t]+(?:[\x21-\x7e]+(?:[ \t]+" + _VCHAR + rb"*)?)?)?)?\r?"
)
_FIELD_START = re.compile(rb"[ \t]|" + _TCHAR + rb"+:")
_HTTP_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")


def sniff_request(buf: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[RequestHead | None, bool]:
    """(head, wait): the request head `buf` starts with; else None, and `wait` tells whether
    the bytes so far may still become one (True) or cannot (False: not HTTP)."""
    start = 0
    n = len(buf)
    while start < n and buf[start] in b"\r\n":
        start += 1
    eol = buf.find(b"\n", start)
    if eol < 0:
        return None, _LINE_START.fullmatch(buf, start) is not None
    line = _LINE.fullmatch(buf, start, eol + 1)
    if line is None:
        return None, False
    version = line.group(3) or b""
    if not version and line.group(1) != b"GET":
        return None, False
    found = split_head(buf[eol:])  # from the line's own LF: it may end the head too
    if found is None:
        return None, _fields_so_far(buf, eol + 1)
    fields = buf[eol + 1 : eol + len(found[0])]
    std = version if _HTTP_VERSION.fullmatch(version) else b"HTTP/1.0"
    try:
        req = parse_request_head(
            line.group(1) + b" " + line.group(2) + b" " + std + b"\r\n" + fields, limits
        )
    except H1Error:
        return None, False
    if version:
        req.version = version  # as sent: HAProxy's TCP-mode parse keeps it
    return req, False


Sniffed = tuple[int, RequestHead | None, bool]


def sniff_again(prev: Sniffed | None, buf: bytearray, limits: Limits = DEFAULT_LIMITS) -> Sniffed:
    """(len(buf), head, wait) of `buf`: `prev` itself when it was taken at this length (the
    buffer of an analysed stream only grows), else a new parse."""
    if prev is not None and prev[0] == len(buf):
        return prev
    head, wait = sniff_request(bytes(buf), limits)
    return len(buf), head, wait


def _fields_so_far(buf: bytes, pos: int) -> bool:
    """True when every complete line from `pos` on can start a header field (or fold one)."""
    n = len(buf)
    while pos < n:
        eol = buf.find(b"\n", pos)
        if eol < 0:
            return True
        if _FIELD_START.match(buf, pos) is None:
            return False
        pos = eol + 1
    return True
