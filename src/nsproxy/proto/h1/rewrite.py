"""Header and request-line edits for http-request/http-response rules, on a parsed head.

Names are compared lower-cased, as the head stores them. Replacement formats arrive already
expanded by the rules engine, except for `\\N` group references, which apply here.
"""

from __future__ import annotations

import re
import socket

from nsproxy.proto.h1.head import Header, RequestHead

_GROUP_REF = re.compile(rb"\\([0-9])")


def set_header(headers: list[Header], name: bytes, value: bytes) -> None:
    """`set-header`: remove every `name`, then append one."""
    name = name.lower()
    headers[:] = [h for h in headers if h[0] != name]
    headers.append((name, value))


def add_header(headers: list[Header], name: bytes, value: bytes) -> None:
    """`add-header`: append, keeping the ones already there."""
    headers.append((name.lower(), value))


def del_header(headers: list[Header], name: bytes) -> None:
    """`del-header`: remove every `name`."""
    name = name.lower()
    headers[:] = [h for h in headers if h[0] != name]


def expand(match: re.Match[bytes], fmt: bytes) -> bytes:
    """`fmt` with `\\N` replaced by the regex group N (empty when it did not take part)."""
    return _GROUP_REF.sub(lambda g: match.group(int(g.group(1))) or b"", fmt)


def replace_header(
    headers: list[Header], name: bytes, regex: re.Pattern[bytes], fmt: bytes
) -> None:
    """`replace-header`: a whole value the regex matches anywhere becomes the expanded format."""
    name = name.lower()
    for i, (n, v) in enumerate(headers):
        if n == name:
            m = regex.search(v)
            if m is not None:
                headers[i] = (n, expand(m, fmt))


def replace_value(headers: list[Header], name: bytes, regex: re.Pattern[bytes], fmt: bytes) -> None:
    """`replace-value`: the same, on each comma-separated element of the values."""
    name = name.lower()
    for i, (n, v) in enumerate(headers):
        if n != name:
            continue
        parts = v.split(b",")
        for j, part in enumerate(parts):
            core = part.strip(b" \t")
            m = regex.search(core)
            if m is not None:
                lead = part[: len(part) - len(part.lstrip(b" \t"))]
                trail = part[len(part.rstrip(b" \t")) :]
                parts[j] = lead + expand(m, fmt) + trail
        headers[i] = (n, b",".join(parts))


def _split_target(target: bytes) -> tuple[bytes, bytes, bytes]:
    """(scheme://authority or b"", path, ?query or b"")."""
    prefix = b""
    low = target[:8].lower()
    if low.startswith(b"http://") or low.startswith(b"https://"):
        start = target.index(b"//") + 2
        end = start
        while end < len(target) and target[end] not in b"/?":
            end += 1
        prefix, target = target[:end], target[end:]
    path, q, query = target.partition(b"?")
    return prefix, path, q + query


def set_path(req: RequestHead, path: bytes) -> None:
    """`set-path`: the path changes, the scheme, authority and query stay."""
    prefix, _, query = _split_target(req.target)
    req.target = prefix + path + query


def set_query(req: RequestHead, query: bytes) -> None:
    """`set-query`: the query (without `?`) changes; an empty one adds no `?` (keeps one)."""
    prefix, path, old = _split_target(req.target)
    req.target = prefix + path + (b"?" + query if query or old else b"")


def set_uri(req: RequestHead, uri: bytes) -> None:
    """`set-uri`: the whole request target."""
    req.target = uri


def set_method(req: RequestHead, method: bytes) -> None:
    """`set-method`."""
    req.method = method


def forwarded_for_value(family: int, packed: bytes) -> bytes:
    """The client address as `option forwardfor` writes it (IPv4-mapped stays `::ffff:a.b.c.d`)."""
    return socket.inet_ntop(family, packed).encode()


def add_forwarded_for(
    headers: list[Header], value: bytes, name: bytes = b"x-forwarded-for", if_none: bool = False
) -> None:
    """`option forwardfor`: a new header after any the client sent (kept), unless `if-none`."""
    name = name.lower()
    if if_none and any(n == name for n, _ in headers):
        return
    headers.append((name, value))
