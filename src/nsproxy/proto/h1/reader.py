"""Readers: bytes in, events out, for one side of an HTTP/1.x connection.

A reader finds the head, hands it to the head parser, then frames the body (Content-Length,
chunked with trailers, until EOF). After a message it pauses: bytes that follow stay buffered
until the mux asks for the next message (`next_message`) or takes them as a tunnel.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import (
    CHUNKED,
    DEFAULT_LIMITS,
    LENGTH,
    NO_BODY,
    Header,
    Limits,
    RequestHead,
    ResponseHead,
    check_partial_request,
    parse_fields,
    parse_request_head,
    parse_response_head,
)


@dataclass(frozen=True, slots=True)
class Data:
    """Body bytes, de-chunked."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The body is complete; `trailers` as HAProxy forwards them (chunked bodies only)."""

    trailers: list[Header] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Tunnel:
    """Bytes of a tunnel: after a 101 head, every byte fed comes back in these."""

    data: bytes


Event = RequestHead | ResponseHead | Data | EndOfMessage | Tunnel

# Reader states.
HEAD = 0
BODY_LENGTH = 1
CHUNK_SIZE = 2
CHUNK_DATA = 3
CHUNK_CRLF = 4
TRAILERS = 5
BODY_EOF = 6
DONE = 7
TUNNEL = 8
IDLE = 9

MAX_CHUNK_SIZE = (1 << 64) - 1
_HEX = frozenset(b"0123456789abcdefABCDEF")


def split_head(buf: bytes) -> tuple[bytes, int] | None:
    """Find the empty line ending a head: (head up to it, index of the first body byte)."""
    e1 = buf.find(b"\n\r\n")
    e2 = buf.find(b"\n\n", 0, e1 + 1 if e1 >= 0 else len(buf))
    if e2 < 0 or 0 <= e1 < e2:
        if e1 < 0:
            return None
        return buf[: e1 + 1], e1 + 3
    return buf[: e2 + 1], e2 + 2


class _Reader:
    """Body framing shared by both directions."""

    status = 400

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.buf = b""
        self.state = HEAD
        self.remaining = 0

    def feed(self, data: bytes) -> list[Event]:
        """Add bytes received; return the events they complete."""
        self.buf = self.buf + data if self.buf else data
        return self._run()

    def _head(self, events: list[Event]) -> bool:
        raise NotImplementedError

    def _run(self) -> list[Event]:
        events: list[Event] = []
        while True:
            st = self.state
            if st == HEAD:
                if not self._head(events):
                    return events
            elif st == BODY_LENGTH:
                buf = self.buf
                if not buf:
                    return events
                n = self.remaining
                if len(buf) < n:
                    events.append(Data(buf))
                    self.remaining = n - len(buf)
                    self.buf = b""
                    return events
                events.append(Data(buf[:n]) if len(buf) > n else Data(buf))
                self.buf = buf[n:]
                self._end(events, [])
            elif st == BODY_EOF:
                if self.buf:
                    events.append(Data(self.buf))
                    self.buf = b""
                return events
            elif st in (CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF):
                if not self._chunks(events):
                    return events
            elif st == TRAILERS:
                if not self._trailers(events):
                    return events
            elif st == TUNNEL:
                if self.buf:
                    events.append(Tunnel(self.buf))
                    self.buf = b""
                return events
            else:
                return events

    def _chunks(self, events: list[Event]) -> bool:
        """Chunk sizes, data and line ends, walking the buffer once; False: more bytes needed."""
        buf = self.buf
        end = len(buf)
        pos = 0
        st = self.state
        try:
            while True:
                if st == CHUNK_DATA:
                    if pos >= end:
                        return False
                    n = self.remaining
                    if end - pos <= n:
                        events.append(Data(buf[pos:] if pos else buf))
                        self.remaining = n - (end - pos)
                        pos = end
                        if self.remaining:
                            return False
                    else:
                        events.append(Data(buf[pos : pos + n]))
                        pos += n
                    st = CHUNK_CRLF
                elif st == CHUNK_CRLF:
                    eol = buf[pos : pos + 2]
                    if eol == b"\r\n":
                        pos += 2
                    elif eol[:1] == b"\n":
                        pos += 1
                    elif eol in (b"", b"\r"):
                        return False
                    else:
                        raise H1Error(self.status, "chunk data not followed by CRLF")
                    st = CHUNK_SIZE
                else:
                    nl = buf.find(b"\n", pos)
                    if nl < 0:
                        if end - pos > 4096:
                            raise H1Error(self.status, "chunk size line too long")
                        return False
                    line = buf[pos:nl]
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    size = line.partition(b";")[0].rstrip(b" \t")
                    if not size or not _HEX.issuperset(size):
                        raise H1Error(self.status, "invalid chunk size")
                    n = int(size, 16)
                    if n > MAX_CHUNK_SIZE:
                        raise H1Error(self.status, "chunk size too large")
                    pos = nl + 1
                    if not n:
                        st = TRAILERS
                        return True
                    self.remaining = n
                    st = CHUNK_DATA
        finally:
            self.state = st
            if pos:
                self.buf = buf[pos:]

    def _trailers(self, events: list[Event]) -> bool:
        buf = self.buf
        if buf[:2] == b"\r\n" or buf[:1] == b"\n":
            self.buf = buf[2:] if buf[:1] == b"\r" else buf[1:]
            self._end(events, [])
            return True
        found = split_head(buf)
        if found is None:
            if len(buf) > self.limits.bufsize:
                raise H1Error(self.status, "trailers too large")
            return False
        block, rest = found
        self.buf = buf[rest:]
        trailers = parse_fields(block, 0, self.status)
        self._end(events, trailers)
        return True

    def _end(self, events: list[Event], trailers: list[Header]) -> None:
        events.append(EndOfMessage(trailers))
        self.state = DONE

    def _start_body(self, framing: int, length: int, events: list[Event]) -> None:
        if framing == LENGTH:
            self.remaining = length
            self.state = BODY_LENGTH
        elif framing == CHUNKED:
            self.state = CHUNK_SIZE
        elif framing == NO_BODY:
            self._end(events, [])
        else:
            self.state = BODY_EOF

    def _truncated(self) -> list[Event]:
        st = self.state
        if st == BODY_EOF:
            self.state = DONE
            return [EndOfMessage([])]
        if st in (DONE, TUNNEL, IDLE) or (st == HEAD and not self.buf.strip(b"\r\n")):
            return []
        raise H1Error(self.status, "connection closed inside a message")

    def feed_eof(self) -> list[Event]:
        """The peer closed its side: end a body read until EOF, or fail a truncated message."""
        return self._truncated()

    def take_tunnel(self) -> bytes:
        """Switch to tunnel mode; return the bytes buffered so far (they belong to the tunnel)."""
        self.state = TUNNEL
        buf, self.buf = self.buf, b""
        return buf

    @property
    def done(self) -> bool:
        """The current message is complete (the reader waits for `next_message`)."""
        return self.state == DONE


class RequestReader(_Reader):
    """Parses requests from a client; errors carry 400 (or 422), HAProxy's answer."""

    status = 400

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self.checked = 0  # how far an unfinished head was found valid (check_partial_request)

    def _head(self, events: list[Event]) -> bool:
        buf = self.buf
        if not buf:
            return False
        if buf[:1] in (b"\r", b"\n"):
            buf = self.buf = buf.lstrip(b"\r\n")
        found = split_head(buf)
        if found is None:
            if len(buf) >= self.limits.bufsize:
                raise H1Error(400, "request head too large")
            self.checked = check_partial_request(buf, self.checked)
            return False
        head, rest = found
        self.checked = 0
        req = parse_request_head(head, self.limits)
        self.buf = buf[rest:]
        events.append(req)
        self._start_body(req.framing, req.content_length, events)
        return True

    def next_message(self) -> list[Event]:
        """After EndOfMessage: start on the next request with what is buffered (pipelining)."""
        if self.state != DONE:
            return []
        self.state = HEAD
        return self._run()


class ResponseReader(_Reader):
    """Parses responses from a server to the requests `expect`ed; errors carry 502."""

    status = 502

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self.state = IDLE
        self.requests: deque[RequestHead] = deque()

    def expect(self, req: RequestHead) -> list[Event]:
        """The request whose response comes next was sent; parse what is buffered."""
        self.requests.append(req)
        if self.state in (IDLE, DONE):
            self.state = HEAD
            return self._run()
        return []

    def _head(self, events: list[Event]) -> bool:
        buf = self.buf
        if not buf:
            return False
        found = split_head(buf)
        if found is None:
            if len(buf) >= self.limits.bufsize:
                raise H1Error(502, "response head too large")
            return False
        head, rest = found
        resp = parse_response_head(head, self.limits)
        req = self.requests[0]
        self.buf = buf[rest:]
        status = resp.status
        if status < 200:
            if status == 101:
                if not req.upgrade:
                    raise H1Error(502, "101 to a request that asked no upgrade")
                if req.websocket and not any(n == b"sec-websocket-accept" for n, _ in resp.headers):
                    raise H1Error(502, "websocket 101 without Sec-WebSocket-Accept")
                events.append(resp)
                self.requests.popleft()
                self.state = TUNNEL
                return True
            resp.framing = NO_BODY
            events.append(resp)
            return True
        events.append(resp)
        self.requests.popleft()
        if req.method == b"CONNECT" and status < 300:
            self.state = TUNNEL
            return True
        if req.method == b"HEAD" or status in (204, 304):
            resp.framing = NO_BODY
        self._start_body(resp.framing, resp.content_length, events)
        if self.state == DONE and self.requests:
            self.state = HEAD
        return True

    def _end(self, events: list[Event], trailers: list[Header]) -> None:
        events.append(EndOfMessage(trailers))
        self.state = HEAD if self.requests else DONE

    def feed_eof(self) -> list[Event]:
        if self.state == HEAD and not self.buf and self.requests:
            raise H1Error(502, "server closed before answering")
        return self._truncated()
