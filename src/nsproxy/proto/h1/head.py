"""HTTP/1.x heads: parsed with HAProxy 2.6's verdicts, serialized as HAProxy forwards them.

Names are stored lower-cased (HAProxy forwards them so) and values trimmed of surrounding
blanks; every normalisation HAProxy applies on the way in (Content-Length merges, Connection
tokens, obs-fold, Host against an absolute URI, the TE header) is done here, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nsproxy.proto.h1.errors import H1Error

Header = tuple[bytes, bytes]

# Measured on HAProxy 2.6: a head fits when the sum of its start-line fields, names and values,
# plus 8 bytes per header and 85 bytes of fixed overhead, fits in bufsize - maxrewrite.
HEAD_OVERHEAD = 85
HEAD_PER_HEADER = 8
# HAProxy refuses from 2**63 on (it wraps a few values just past 2**64 around; nsproxy does not).
MAX_CONTENT_LENGTH = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """`tune.bufsize`, `tune.maxrewrite` and `tune.http.maxhdr` as they bound a head."""

    bufsize: int = 16384
    maxrewrite: int = 1024
    max_headers: int = 100

    @property
    def head_room(self) -> int:
        return self.bufsize - self.maxrewrite

    @classmethod
    def from_tune(cls, bufsize: int = 16384, maxrewrite: int = 1024, maxhdr: int = 101) -> Limits:
        """From `tune.bufsize`, `tune.maxrewrite`, `tune.http.maxhdr` (2.6 defaults).

        HAProxy caps maxrewrite at half the buffer, and one of maxhdr's slots is not a header.
        """
        return cls(bufsize, min(maxrewrite, bufsize // 2), maxhdr - 1)


DEFAULT_LIMITS = Limits()

# Body framing of a message, as the reader and writer see it.
NO_BODY = 0
LENGTH = 1
CHUNKED = 2
UNTIL_EOF = 3


@dataclass(slots=True)
class RequestHead:
    """A request head as HAProxy would forward it; rules edit it in place before serialization."""

    method: bytes
    target: bytes
    version: bytes
    headers: list[Header]
    framing: int = NO_BODY
    content_length: int = 0
    keep_alive: bool = True
    upgrade: bool = False
    websocket: bool = False
    expect_continue: bool = False
    must_close: bool = False

    @property
    def is_11(self) -> bool:
        return self.version == b"HTTP/1.1"


@dataclass(slots=True)
class ResponseHead:
    """A response head (final or 1xx) as HAProxy would forward it."""

    version: bytes
    status: int
    reason: bytes
    headers: list[Header]
    framing: int = UNTIL_EOF
    content_length: int = 0
    keep_alive: bool = True

    @property
    def is_11(self) -> bool:
        return self.version == b"HTTP/1.1"


_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_REQUEST_LINE = re.compile(
    rb"(" + _TCHAR + rb"+)[ \t]+([\x21-\x7e]+)[ \t]+(HTTP/([0-9])\.([0-9]))\r?\n"
)
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9])[ \t]+([0-9]{3})(?:[ \t]([^\r\n]*))?\r?\n")
_HEADER = re.compile(rb"(?m)^(" + _TCHAR + rb"+):[ \t]*((?:[^\r\n]*[^\r\n \t])?)[ \t]*\r?\n")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_SPECIAL = frozenset(
    (
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"host",
        b"upgrade",
        b"expect",
        b"te",
        b"sec-websocket-key",
        b"sec-websocket-accept",
    )
)
_SCHEME = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?]*)")
_PORT = re.compile(rb":[0-9]+$")
_DEFAULT_PORTS: dict[bytes, tuple[bytes, ...]] = {
    b"http": (b":80", b":"),
    b"https": (b":443", b":"),
}
_CONNECT_PORTS: tuple[bytes, ...] = (b":80", b":443")
_BLANKS = b" \t"
_CONN_OWN = (b"close", b"keep-alive")


def _spaces(m: re.Match[bytes]) -> bytes:
    return b" " * len(m.group(0))


def parse_fields(head: bytes, pos: int, status: int) -> list[Header]:
    """The header (or trailer) lines of `head` from `pos` on, each with its line end."""
    pairs: list[tuple[bytes, bytes]] = _HEADER.findall(head, pos)
    # each match takes one whole line from its start: a line that does not match is missing
    if len(pairs) != head.count(b"\n", pos):
        if b"\n " not in head and b"\n\t" not in head:
            raise H1Error(status, "invalid header line")
        if head[pos : pos + 1] in (b" ", b"\t"):
            raise H1Error(status, "folded line after the start line")
        head = head[:pos] + _FOLD.sub(_spaces, head[pos:])
        pairs = _HEADER.findall(head, pos)
        if len(pairs) != head.count(b"\n", pos):
            raise H1Error(status, "invalid header line")
    return [(n.lower(), v) for n, v in pairs]


def _check_size(
    fields: int, headers: list[Header], block: int, limits: Limits, status: int
) -> None:
    if len(headers) > limits.max_headers:
        raise H1Error(status, "too many headers")
    size = fields + HEAD_OVERHEAD + HEAD_PER_HEADER * len(headers)
    if size + block <= limits.head_room:
        return
    for n, v in headers:
        size += len(n) + len(v)
    if size > limits.head_room:
        raise H1Error(status, "head too large")


def _tokens(value: bytes) -> list[bytes]:
    return [t.strip(_BLANKS) for t in value.split(b",")]


def _content_length(values: list[bytes], status: int) -> tuple[int, bytes]:
    if len(values) == 1 and values[0].isdigit() and len(values[0]) < 19:
        return int(values[0]), values[0]
    length = -1
    first = b""
    for v in values:
        for part in _tokens(v):
            if not part.isdigit():
                raise H1Error(status, "invalid Content-Length")
            n = int(part)
            if n > MAX_CONTENT_LENGTH:
                raise H1Error(status, "Content-Length too large")
            if length < 0:
                length, first = n, part
            elif n != length:
                raise H1Error(status, "differing Content-Length values")
    return length, first


def _special_index(headers: list[Header]) -> dict[bytes, list[int]]:
    """Positions of the headers that steer framing and connection handling, by name."""
    idx: dict[bytes, list[int]] = {}
    for i, (n, _) in enumerate(headers):
        if n in _SPECIAL:
            idx.setdefault(n, []).append(i)
    return idx


def _connection_tokens(headers: list[Header], idx: list[int]) -> tuple[set[bytes], set[int]]:
    """Lower-cased Connection tokens; strips close/keep-alive (and empty headers) in place.

    Returns the tokens and the header indexes to delete.
    """
    seen: set[bytes] = set()
    drop: set[int] = set()
    for i in idx:
        name, value = headers[i]
        low_value = value.lower()
        if low_value in _CONN_OWN:
            seen.add(low_value)
            drop.add(i)
            continue
        toks = [t for t in _tokens(value) if t]
        low = [t.lower() for t in toks]
        seen.update(low)
        if b"close" in low or b"keep-alive" in low or not toks:
            kept = [t for t, lt in zip(toks, low, strict=True) if lt not in _CONN_OWN]
            if kept:
                headers[i] = (name, b", ".join(kept))
            else:
                drop.add(i)
    return seen, drop


_METHOD_PREFIX = re.compile(_TCHAR + rb"*")
_TARGET_PREFIX = re.compile(rb"[\x21-\x7e]*")
_NAME_PREFIX = re.compile(_TCHAR + rb"*")


def check_partial_request(buf: bytes, checked: int) -> int:
    """Refuses (400) an unfinished request head as soon as HAProxy 2.6 does, before its end.

    HAProxy's parser stops at the first byte no request can hold: a byte outside a token in
    the method or a header name, a control byte in the target, a CR not followed by LF; and
    checks the request line (HTTP/0.9 included) as soon as its line end came. Header values,
    Content-Length and the other head-wide checks wait for the end of the head. `checked` is
    where the last call stopped (0 at first): the start of the first line not checked whole.
    Returns the new one.
    """
    end = len(buf)
    if not checked:
        nl = buf.find(b"\n")
        if nl < 0:
            _check_start_prefix(buf)
            return 0
        if _REQUEST_LINE.match(buf, 0, nl + 1) is None:
            raise H1Error(400, "invalid request line")
        checked = nl + 1
    pos = checked
    while pos < end:
        if buf[pos] in (32, 9):  # a folded line: part of the value before it
            if pos == buf.find(b"\n") + 1:
                raise H1Error(400, "folded line after the start line")
            nl = buf.find(b"\n", pos)
            if nl < 0:
                return pos
            pos = checked = nl + 1
            continue
        m = _NAME_PREFIX.match(buf, pos)
        assert m is not None
        at = m.end()
        if at == end or (at == end - 1 and buf[at] == 13):  # (CR: maybe the empty line)
            return pos
        if at == pos or buf[at] != 58:  # ":"
            raise H1Error(400, "invalid header name")
        nl = buf.find(b"\n", at)
        if nl < 0:
            return pos
        pos = checked = nl + 1
    return checked


def _check_start_prefix(line: bytes) -> None:
    """The part of a request line that came so far (no line end yet)."""
    m = _METHOD_PREFIX.match(line)
    assert m is not None
    at = m.end()
    if at == len(line):
        return
    if at == len(line) - 1 and line[at] == 13:
        return
    if at == 0 or line[at] not in (32, 9):
        raise H1Error(400, "invalid method")
    while at < len(line) and line[at] in (32, 9):
        at += 1
    t = _TARGET_PREFIX.match(line, at)
    assert t is not None
    at = t.end()
    last = len(line) - 1
    if at <= last and line[at] not in (32, 9) and not (at == last and line[at] == 13):
        raise H1Error(400, "invalid request target")
    cr = line.find(b"\r", at)
    if 0 <= cr < last:
        raise H1Error(400, "CR without LF in the request line")


def _strip_port(authority: bytes, ports: tuple[bytes, ...]) -> bytes:
    for port in ports:
        if authority.endswith(port):
            return authority[: -len(port)]
    return authority


def parse_request_head(head: bytes, limits: Limits = DEFAULT_LIMITS) -> RequestHead:
    """Parse a request head: its lines up to the empty line (CRLF or bare LF ends)."""
    if head[-1:] != b"\n":
        head += b"\r\n"
    m = _REQUEST_LINE.match(head)
    if m is None:
        raise H1Error(400, "invalid request line")
    method, target, version, major, minor = m.groups()
    if b"#" in target:
        raise H1Error(400, "fragment in the request target")
    pos = m.end()
    headers = parse_fields(head, pos, 400) if pos < len(head) else []
    _check_size(len(method) + len(target) + len(version), headers, len(head) - pos, limits, 400)
    is_11 = (major == b"1" and minor != b"0") or major > b"1"
    req = RequestHead(method, target, b"HTTP/1.1" if is_11 else version, headers)
    req.keep_alive = is_11
    idx = _special_index(headers)
    if idx:
        host = idx.get(b"host")
        if len(idx) > 1 or host is None or len(host) > 1 or target[:1] != b"/":
            _request_semantics(req, idx)
    elif target[:1] != b"/":
        _authority(req, -1)
    return req


def _request_semantics(req: RequestHead, idx: dict[bytes, list[int]]) -> None:
    headers = req.headers
    drop: set[int] = set()
    te = idx.get(b"transfer-encoding")
    cl = idx.get(b"content-length")
    if te is not None:
        codings = [t.lower() for i in te for t in _tokens(headers[i][1])]
        if codings.count(b"chunked") != 1 or codings[-1] != b"chunked":
            raise H1Error(400, "invalid Transfer-Encoding")
        if len(codings) > 1:
            raise H1Error(422, "unsupported transfer coding")
        req.framing = CHUNKED
        if not req.is_11:
            req.must_close = True
        if cl is not None:
            drop.update(cl)
            req.must_close = True
    elif cl is not None:
        req.content_length, first = _content_length([headers[i][1] for i in cl], 400)
        req.framing = LENGTH if req.content_length else NO_BODY
        if len(cl) > 1 or first != headers[cl[0]][1]:
            headers[cl[0]] = (b"content-length", first)
            drop.update(cl[1:])
    conn = idx.get(b"connection")
    if conn is not None:
        tokens, gone = _connection_tokens(headers, conn)
        drop |= gone
        if b"close" in tokens:
            req.keep_alive = False
        elif b"keep-alive" in tokens:
            req.keep_alive = True
        if b"upgrade" in tokens and b"upgrade" in idx:
            req.upgrade = True
            protos = [t.lower() for i in idx[b"upgrade"] for t in _tokens(headers[i][1])]
            if b"websocket" in protos:
                req.websocket = True
                if b"sec-websocket-key" not in idx:
                    raise H1Error(400, "websocket upgrade without Sec-WebSocket-Key")
    host = idx.get(b"host")
    if host is not None and len(host) > 1:
        first_host = headers[host[0]][1].lower()
        if any(headers[i][1].lower() != first_host for i in host[1:]):
            raise H1Error(400, "differing Host headers")
        drop.update(host[1:])
    if req.target[:1] != b"/":
        _authority(req, host[0] if host is not None else -1)
    te_hdr = idx.get(b"te")
    if te_hdr is not None:
        for i in te_hdr:
            if any(t.lower() == b"trailers" for t in _tokens(headers[i][1])):
                headers[i] = (b"te", b"trailers")
            else:
                drop.add(i)
    expect = idx.get(b"expect")
    if expect is not None and headers[expect[0]][1].lower() == b"100-continue":
        req.expect_continue = True
    for i in sorted(drop, reverse=True):
        del headers[i]


def _authority(req: RequestHead, host_index: int) -> None:
    """Absolute-form and authority-form targets, as HAProxy 2.6 checks and normalizes them.

    The Host header must name the target's authority (default ports aside); a default or
    empty port leaves an http/https URI and the Host header takes the URI's authority. A
    CONNECT needs a port and its Host loses :80/:443.
    """
    target = req.target
    if target == b"*":
        return
    m = _SCHEME.match(target)
    if m is not None:
        scheme = m.group(1).lower()
        start, end = m.span(2)
    else:
        scheme = b""
        start, end = 0, len(target)
        for sep in (b"/", b"?"):
            at = target.find(sep)
            if 0 <= at < end:
                end = at
    authority = target[start:end]
    hostpart = authority.rpartition(b"@")[2]
    connect = req.method == b"CONNECT"
    if connect:
        if m is not None or not _PORT.search(hostpart):
            raise H1Error(400, "CONNECT needs host:port")
        ports = _CONNECT_PORTS
    else:
        ports = _DEFAULT_PORTS.get(scheme, ())
    headers = req.headers
    if host_index >= 0 and authority:
        host = headers[host_index][1]
        if _strip_port(host, ports).lower() != _strip_port(hostpart, ports).lower():
            raise H1Error(400, "Host differs from the target's authority")
        if connect:
            headers[host_index] = (b"host", _strip_port(host, ports))
    if not connect and ports:
        norm = _strip_port(hostpart, ports)
        if norm != hostpart:
            userinfo = authority[: len(authority) - len(hostpart)]
            req.target = target[:start] + userinfo + norm + target[end:]
            if host_index >= 0:
                headers[host_index] = (b"host", norm)


def parse_response_head(head: bytes, limits: Limits = DEFAULT_LIMITS) -> ResponseHead:
    """Parse a response head (lines up to the empty line); errors carry status 502."""
    if head[-1:] != b"\n":
        head += b"\r\n"
    m = _STATUS_LINE.match(head)
    if m is None:
        raise H1Error(502, "invalid status line")
    major, minor, code, reason = m.groups()
    if reason is None:
        reason = b""
    pos = m.end()
    headers = parse_fields(head, pos, 502) if pos < len(head) else []
    _check_size(11 + len(reason), headers, len(head) - pos, limits, 502)
    is_11 = (major == b"1" and minor != b"0") or major > b"1"
    resp = ResponseHead(
        b"HTTP/1.1" if is_11 else b"HTTP/%s.%s" % (major, minor), int(code), reason, headers
    )
    resp.keep_alive = is_11
    idx = _special_index(headers)
    if idx:
        _response_semantics(resp, idx)
    return resp


def _response_semantics(resp: ResponseHead, idx: dict[bytes, list[int]]) -> None:
    headers = resp.headers
    drop: set[int] = set()
    te = idx.get(b"transfer-encoding")
    cl = idx.get(b"content-length")
    if te is not None:
        codings = [t.lower() for i in te for t in _tokens(headers[i][1])]
        if codings != [b"chunked"]:
            raise H1Error(502, "invalid Transfer-Encoding")
        resp.framing = CHUNKED
        if cl is not None:
            drop.update(cl)
    elif cl is not None:
        resp.content_length, first = _content_length([headers[i][1] for i in cl], 502)
        resp.framing = LENGTH
        if resp.status == 204:
            drop.update(cl)
        elif len(cl) > 1 or first != headers[cl[0]][1]:
            headers[cl[0]] = (b"content-length", first)
            drop.update(cl[1:])
    conn = idx.get(b"connection")
    if conn is not None:
        tokens, gone = _connection_tokens(headers, conn)
        drop |= gone
        if b"close" in tokens:
            resp.keep_alive = False
        elif b"keep-alive" in tokens:
            resp.keep_alive = True
    for i in sorted(drop, reverse=True):
        del headers[i]


def header_values(headers: list[Header], name: bytes) -> list[bytes]:
    """Every value of `name` (lower-case), in order."""
    return [v for n, v in headers if n == name]


def serialize_request(req: RequestHead) -> bytes:
    """The request head as HAProxy forwards it: lower-case names, CRLF line ends."""
    return b"%s %s %s\r\n%s\r\n" % (
        req.method,
        req.target,
        req.version,
        b"".join([n + b": " + v + b"\r\n" for n, v in req.headers]),
    )


def serialize_response(resp: ResponseHead) -> bytes:
    """The response head as HAProxy forwards it (an empty reason keeps its space)."""
    return b"%s %d %s\r\n%s\r\n" % (
        resp.version,
        resp.status,
        resp.reason,
        b"".join([n + b": " + v + b"\r\n" for n, v in resp.headers]),
    )


# HAProxy counts %B/%U (and the bin/bout counters) in its internal message format (HTX): the
# start line takes a 20-byte descriptor plus its three fields, a header its name and value, the
# end of the head one byte; chunk framing and the ": " / CRLF separators are not counted.
HTX_START_LINE = 20
HTX_EOH = 1


def htx_head_size(parts: tuple[bytes, bytes, bytes], headers: list[Header]) -> int:
    """The bytes HAProxy's counters give a head: start line fields and headers, as HTX."""
    return (
        HTX_START_LINE
        + len(parts[0])
        + len(parts[1])
        + len(parts[2])
        + sum(len(n) + len(v) for n, v in headers)
        + HTX_EOH
    )


def request_htx_size(req: RequestHead) -> int:
    return htx_head_size((req.method, req.target, req.version), req.headers)


# A chunked message ends with its trailers (name and value each) and a 1-byte end block.
HTX_EOT = 1


def htx_end_size(framing: int, trailers: list[Header]) -> int:
    """The bytes HAProxy's counters give the end of a body: chunked only (trailers, EOT)."""
    if framing != CHUNKED:
        return 0
    return HTX_EOT + sum(len(n) + len(v) for n, v in trailers)


def response_htx_size(resp: ResponseHead) -> int:
    return htx_head_size((resp.version, b"%d" % resp.status, resp.reason), resp.headers)
