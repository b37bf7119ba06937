"""Hypothesis: split invariance, round trips, and only H1Error on any input."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import (
    CHUNKED,
    RequestHead,
    ResponseHead,
    parse_request_head,
    parse_response_head,
    serialize_request,
    serialize_response,
)
from nsproxy.proto.h1.reader import Data, EndOfMessage, Event, RequestReader, ResponseReader, Tunnel
from nsproxy.proto.h1.writer import encode_data, encode_end

TCHARS = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
token = st.binary(min_size=1, max_size=12).map(lambda b: bytes(TCHARS[x % len(TCHARS)] for x in b))
# values as HAProxy stores them: no CR/LF, no blank at either end
value = st.binary(max_size=30).map(lambda b: bytes(x for x in b if x not in (10, 13)).strip(b" \t"))
plain_names = token.filter(
    lambda n: (
        n.lower()
        not in (
            b"content-length",
            b"transfer-encoding",
            b"connection",
            b"host",
            b"upgrade",
            b"expect",
            b"te",
        )
    )
)
headers = st.lists(st.tuples(plain_names, value), max_size=8)
target = st.binary(max_size=20).map(
    lambda b: b"/" + bytes(0x21 + x % 94 for x in b).replace(b"#", b"%")
)
eol = st.sampled_from([b"\r\n", b"\n"])


def merged(events: list[Event]) -> list[Event]:
    out: list[Event] = []
    for e in events:
        if isinstance(e, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + e.data)
        elif isinstance(e, Tunnel) and out and isinstance(out[-1], Tunnel):
            out[-1] = Tunnel(out[-1].data + e.data)
        else:
            out.append(e)
    return out


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """Valid requests in many spellings: LF or CRLF, bodies by length or chunks, trailers."""
    nl = draw(eol)
    method = draw(token)
    version = draw(st.sampled_from([b"HTTP/1.0", b"HTTP/1.1"]))
    lines = [method + b" " + draw(target) + b" " + version]
    for n, v in draw(headers):
        lines.append(n + b":" + draw(st.sampled_from([b"", b" ", b"\t "])) + v)
    body = b""
    kind = draw(st.sampled_from(["none", "length", "chunked"]))
    if kind == "length":
        data = draw(st.binary(max_size=40))
        lines.append(b"Content-Length: %d" % len(data))
        body = data
    elif kind == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        for chunk in draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4)):
            ext = draw(st.sampled_from([b"", b";a=b", b" "]))
            body += b"%x%s%s%s%s" % (len(chunk), ext, nl, chunk, nl)
        body += b"0" + nl
        for n, v in draw(st.lists(st.tuples(plain_names, value), max_size=2)):
            body += n + b": " + v + nl
        body += nl
    return nl.join(lines) + nl + nl + body


def feed_split(raw: bytes, cuts: list[int]) -> list[Event]:
    r = RequestReader()
    events: list[Event] = []
    prev = 0
    for c in [*sorted({min(c, len(raw)) for c in cuts}), len(raw)]:
        events += r.feed(raw[prev:c])
        prev = c
    return merged(events)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_any_split_gives_the_same_events(raw: bytes, cuts: list[int]) -> None:
    whole = merged(RequestReader().feed(raw))
    assert isinstance(whole[0], RequestHead)
    assert isinstance(whole[-1], EndOfMessage)
    assert feed_split(raw, cuts) == whole


@settings(max_examples=300)
@given(requests())
def test_forwarded_request_parses_to_the_same(raw: bytes) -> None:
    events = RequestReader().feed(raw)
    head = events[0]
    assert isinstance(head, RequestHead)
    body = b"".join(e.data for e in events if isinstance(e, Data))
    trailers = next(e for e in events if isinstance(e, EndOfMessage)).trailers
    out = serialize_request(head) + encode_data(head.framing, body)
    out += encode_end(head.framing, trailers)
    again = merged(RequestReader().feed(out))
    head2 = again[0]
    assert isinstance(head2, RequestHead)
    assert (head2.method, head2.target, head2.version, head2.headers) == (
        head.method,
        head.target,
        head.version,
        head.headers,
    )
    assert b"".join(e.data for e in again if isinstance(e, Data)) == body
    assert again[-1] == EndOfMessage(trailers)


@settings(max_examples=300)
@given(st.sampled_from([b"HTTP/1.0", b"HTTP/1.1"]), st.integers(100, 599), value, headers)
def test_response_head_round_trip(version: bytes, status: int, reason: bytes, hs: list) -> None:  # type: ignore[type-arg]
    raw = b"%s %d %s\r\n" % (version, status, reason) + b"".join(
        n + b": " + v + b"\r\n" for n, v in hs
    )
    head = parse_response_head(raw)
    again = parse_response_head(serialize_response(head)[:-2])
    assert isinstance(again, ResponseHead)
    assert (again.version, again.status, again.reason, again.headers) == (
        head.version,
        head.status,
        head.reason,
        head.headers,
    )


PREFIXES = [b"", b"GET / HTTP/1.1\r\n", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"]


@settings(max_examples=500)
@given(st.sampled_from(PREFIXES), st.binary(max_size=200))
def test_random_requests_raise_only_h1error(prefix: bytes, junk: bytes) -> None:
    r = RequestReader()
    try:
        r.feed(prefix + junk)
        r.feed_eof()
        if r.done:
            r.next_message()
    except H1Error:
        pass


@settings(max_examples=500)
@given(
    st.sampled_from(
        [b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    ),
    st.binary(max_size=200),
)
def test_random_responses_raise_only_h1error(prefix: bytes, junk: bytes) -> None:
    req = parse_request_head(b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n")
    r = ResponseReader()
    try:
        r.expect(req)
        r.feed(prefix + junk)
        r.feed_eof()
    except H1Error:
        pass


@settings(max_examples=300)
@given(
    st.lists(st.binary(min_size=1, max_size=300), max_size=6),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_chunked_decoder_gets_back_what_the_writer_chunked(
    chunks: list[bytes], cuts: list[int]
) -> None:
    body = b"".join(encode_data(CHUNKED, c) for c in chunks) + encode_end(CHUNKED)
    raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    events = feed_split(raw, cuts)
    assert b"".join(e.data for e in events if isinstance(e, Data)) == b"".join(chunks)
    assert events[-1] == EndOfMessage([])


@settings(max_examples=300)
@given(
    st.lists(st.binary(min_size=1, max_size=40), max_size=4),
    st.integers(0, 400),
    st.integers(0, 255),
)
def test_mutated_chunked_bodies_raise_only_h1error(chunks: list[bytes], at: int, byte: int) -> None:
    body = b"".join(encode_data(CHUNKED, c) for c in chunks) + encode_end(CHUNKED)
    raw = bytearray(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    raw[min(at, len(raw) - 1)] = byte
    r = RequestReader()
    try:
        r.feed(bytes(raw))
        r.feed_eof()
    except H1Error:
        pass


def _whole_refused(raw: bytes) -> bool:
    try:
        RequestReader().feed(raw)
    except H1Error:
        return True
    return False


@settings(max_examples=500)
@given(
    st.sampled_from([b"", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nA: b\r\n"]),
    st.binary(max_size=60),
)
def test_an_unfinished_head_refused_early_is_refused_once_ended(prefix: bytes, junk: bytes) -> None:
    """The early verdict (check_partial_request) never refuses a head the parser would take."""
    raw = prefix + junk.replace(b"\n\n", b"\n").replace(b"\n\r\n", b"\n")
    r = RequestReader()
    try:
        r.feed(raw)
    except H1Error:
        assert _whole_refused(raw + b"\r\n\r\n") and _whole_refused(raw + b"\n\n")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_a_valid_request_fed_byte_by_byte_is_never_refused_early(raw: bytes) -> None:
    r = RequestReader()
    for i in range(len(raw)):
        r.feed(raw[i : i + 1])
