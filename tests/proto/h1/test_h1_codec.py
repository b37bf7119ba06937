"""The codec's events and verdicts, fed whole, byte by byte and with bytes after the message."""

from __future__ import annotations

import pytest

from nsproxy.proto.h1.connection import (
    HttpMode,
    client_keeps,
    prepare_request,
    prepare_response,
    restore_framing,
    server_reusable,
)
from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import (
    CHUNKED,
    LENGTH,
    NO_BODY,
    UNTIL_EOF,
    Limits,
    RequestHead,
    ResponseHead,
    parse_request_head,
    parse_response_head,
    serialize_request,
    serialize_response,
)
from nsproxy.proto.h1.reader import (
    Data,
    EndOfMessage,
    Event,
    RequestReader,
    ResponseReader,
    Tunnel,
)
from nsproxy.proto.h1.writer import encode_data, encode_end


def merged(events: list[Event]) -> list[Event]:
    """Adjacent Data (or Tunnel) events joined: how the bytes are cut carries no meaning."""
    out: list[Event] = []
    for e in events:
        if isinstance(e, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + e.data)
        elif isinstance(e, Tunnel) and out and isinstance(out[-1], Tunnel):
            out[-1] = Tunnel(out[-1].data + e.data)
        elif not (isinstance(e, Data) and not e.data):
            out.append(e)
    return out


def requests_in(raw: bytes, step: int | None = None) -> list[Event]:
    r = RequestReader()
    if step is None:
        return merged(r.feed(raw))
    events: list[Event] = []
    for i in range(0, len(raw), step):
        events += r.feed(raw[i : i + step])
    return merged(events)


def both_ways(raw: bytes) -> list[Event]:
    """Events for raw fed whole and byte by byte: they must be the same."""
    whole = requests_in(raw)
    assert requests_in(raw, 1) == whole
    return whole


def test_simple_get() -> None:
    events = both_ways(b"GET /a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
    head, end = events
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.version) == (b"GET", b"/a", b"HTTP/1.1")
    assert head.headers == [(b"host", b"x"), (b"accept", b"*/*")]
    assert head.framing == NO_BODY and head.keep_alive
    assert end == EndOfMessage([])


def test_content_length_body_and_what_follows_stays_buffered() -> None:
    raw = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    r = RequestReader()
    events = merged(r.feed(raw + b"GET /next HTTP/1.1\r\n\r\n"))
    assert [type(e) for e in events] == [RequestHead, Data, EndOfMessage]
    assert events[1] == Data(b"hello")
    assert r.done
    following = r.next_message()
    assert isinstance(following[0], RequestHead) and following[0].target == b"/next"


def test_chunked_body_with_extensions_and_trailers() -> None:
    raw = (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trail: V \r\n\r\n"
    )
    head, data, end = both_ways(raw)
    assert isinstance(head, RequestHead) and head.framing == CHUNKED
    assert data == Data(b"abc0123456789")
    assert end == EndOfMessage([(b"x-trail", b"V")])


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 422),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"GET /\xff HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA : b\r\n\r\n", 400),
    ],
)
def test_refusals_carry_haproxys_status(raw: bytes, status: int) -> None:
    for step in (None, 1):
        with pytest.raises(H1Error) as err:
            requests_in(raw, step)
        assert err.value.status == status


def test_cl_with_te_drops_cl_and_closes_after() -> None:
    raw = b"POST / HTTP/1.1\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    head = both_ways(raw)[0]
    assert isinstance(head, RequestHead)
    assert head.headers == [(b"transfer-encoding", b"chunked")] and head.must_close


def test_bare_lf_and_obs_fold() -> None:
    head = both_ways(b"GET / HTTP/1.1\nHost: x\nA: b\r\n c\n\n")[0]
    assert isinstance(head, RequestHead)
    assert head.headers == [(b"host", b"x"), (b"a", b"b   c")]
    assert serialize_request(head) == b"GET / HTTP/1.1\r\nhost: x\r\na: b   c\r\n\r\n"


def test_head_size_counts_fields_not_bytes_on_the_wire() -> None:
    limits = Limits(bufsize=1024, maxrewrite=512)
    # room 512 = 85 + 8 per header + fields: GET / HTTP/1.1 (12) + "x" + value
    fits = b"GET / HTTP/1.1\r\nx:" + b"a" * (512 - 85 - 8 - 12 - 1) + b"\r\n"
    assert parse_request_head(fits, limits).headers[0][0] == b"x"
    with pytest.raises(H1Error):
        parse_request_head(fits[:-2] + b"a\r\n", limits)
    # blanks around a value are not stored, so they do not count
    assert parse_request_head(fits.replace(b"x:", b"x:    "), limits)


def test_incomplete_head_larger_than_the_buffer_is_refused() -> None:
    r = RequestReader(Limits(bufsize=1024, maxrewrite=512))
    with pytest.raises(H1Error) as err:
        r.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 2000)
    assert err.value.status == 400


def test_eof_between_requests_is_clean_inside_one_is_not() -> None:
    r = RequestReader()
    assert r.feed_eof() == []
    r = RequestReader()
    r.feed(b"GET / HTT")
    with pytest.raises(H1Error):
        r.feed_eof()


def test_upgrade_request_pauses_and_hands_over_the_tunnel_bytes() -> None:
    r = RequestReader()
    events = r.feed(
        b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: k\r\n\r\nFRAME"
    )
    head = events[0]
    assert isinstance(head, RequestHead) and head.upgrade and head.websocket
    assert r.done
    assert r.take_tunnel() == b"FRAME"


def response_events(req_raw: bytes, resp_raw: bytes, eof: bool = False) -> list[Event]:
    req = RequestReader().feed(req_raw)[0]
    assert isinstance(req, RequestHead)
    whole = ResponseReader()
    events = whole.expect(req) + whole.feed(resp_raw) + (whole.feed_eof() if eof else [])
    split = ResponseReader()
    split_events = split.expect(req)
    for i in range(len(resp_raw)):
        split_events += split.feed(resp_raw[i : i + 1])
    if eof:
        split_events += split.feed_eof()
    assert merged(split_events) == merged(events)
    return merged(events)


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_response_without_length_ends_at_eof() -> None:
    head, data, end = response_events(GET, b"HTTP/1.1 200 OK\r\n\r\nabc", eof=True)
    assert isinstance(head, ResponseHead) and head.framing == UNTIL_EOF
    assert (data, end) == (Data(b"abc"), EndOfMessage([]))


@pytest.mark.parametrize(
    ("req", "resp"),
    [
        (b"HEAD / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
        (GET, b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"),
        (GET, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
    ],
)
def test_responses_without_body(req: bytes, resp: bytes) -> None:
    head, end = response_events(req, resp)
    assert isinstance(head, ResponseHead) and head.framing == NO_BODY
    assert end == EndOfMessage([])


def test_interim_responses_come_before_the_final_one() -> None:
    events = response_events(
        GET,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )
    assert [e.status for e in events if isinstance(e, ResponseHead)] == [100, 103, 200]
    assert events[-2:] == [Data(b"ok"), EndOfMessage([])]


def test_101_turns_the_response_side_into_a_tunnel() -> None:
    req = b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n"
    head, tunnel = response_events(req, b"HTTP/1.1 101 Switching\r\nUpgrade: foo\r\n\r\nDATA")
    assert isinstance(head, ResponseHead) and head.status == 101
    assert tunnel == Tunnel(b"DATA")


@pytest.mark.parametrize(
    "resp",
    [
        b"HTTP/1.1 101 Switching\r\n\r\n",  # nobody asked for an upgrade
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
        b"HTTP/1.x 200 OK\r\n\r\n",
    ],
)
def test_bad_responses_are_502(resp: bytes) -> None:
    with pytest.raises(H1Error) as err:
        response_events(GET, resp)
    assert err.value.status == 502


def test_truncated_response_is_502() -> None:
    with pytest.raises(H1Error) as err:
        response_events(GET, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", eof=True)
    assert err.value.status == 502


def test_pipelined_responses_to_queued_requests() -> None:
    req = RequestReader().feed(GET)[0]
    assert isinstance(req, RequestHead)
    r = ResponseReader()
    r.expect(req)
    r.expect(req)
    one = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
    events = r.feed(one + one)
    assert [type(e) for e in events] == [ResponseHead, Data, EndOfMessage] * 2


def test_writer_rechunks_in_upper_hex_without_extensions() -> None:
    assert encode_data(CHUNKED, b"x" * 26) == b"1A\r\n" + b"x" * 26 + b"\r\n"
    assert encode_data(CHUNKED, b"") == b""
    assert encode_data(LENGTH, b"abc") == b"abc"
    assert encode_end(CHUNKED, [(b"t", b"v")]) == b"0\r\nt: v\r\n\r\n"
    assert encode_end(LENGTH) == b""


def test_connection_rules() -> None:
    req10 = parse_request_head(b"GET / HTTP/1.0\r\n")
    assert prepare_request(req10, HttpMode.KEEP_ALIVE)
    assert req10.headers == [(b"connection", b"keep-alive")]
    req = parse_request_head(b"GET / HTTP/1.1\r\nConnection: close, x-a\r\n")
    assert req.headers == [(b"connection", b"x-a")] and not req.keep_alive
    assert not prepare_request(req, HttpMode.SERVER_CLOSE)
    assert req.headers[-1] == (b"connection", b"close")
    resp = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n")
    assert not client_keeps(req, resp, HttpMode.KEEP_ALIVE)
    assert not prepare_response(req, resp, HttpMode.KEEP_ALIVE)
    assert serialize_response(resp).endswith(b"connection: close\r\n\r\n")
    closing = parse_response_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n")
    assert not server_reusable(req, closing, HttpMode.KEEP_ALIVE)


def test_status_line_without_reason_keeps_its_space() -> None:
    resp = parse_response_head(b"HTTP/1.1 200\r\n")
    assert serialize_response(resp) == b"HTTP/1.1 200 \r\n\r\n"


def test_bare_lf_empty_line_before_a_body_starting_with_crlf() -> None:
    head, data, end = both_ways(b"POST / HTTP/1.0\nContent-Length: 2\n\n\r\n")
    assert isinstance(head, RequestHead)
    assert (data, end) == (Data(b"\r\n"), EndOfMessage([]))


# Measured on HAProxy 2.6: these unfinished heads are answered 400 at once, not after
# `timeout http-request` (its parser stops at the first byte no request can hold).
REFUSED_EARLY = [
    b"hello there\n",
    b"hello there\r\n",
    b"GET /\r\n",  # HTTP/0.9
    b"GET /\n",
    b"GET\r\n",
    b"GET / HTTP/1.1 extra\r\n",
    b"GET / HTTP/1.1 \r\n",
    b"GET / http/1.1\r\n",
    b"GET / HTTP/1.x\r\n",
    b"\r\n\r\nhello\n",
    b"G@T /",
    b"GET /a\x01",
    b"GET /\x80",
    b"GET / HTTP/1.1\rX",
    b"GET / HTTP/1.1\n ",  # a folded line right after the start line
    b"GET / HTTP/1.1\r\nBad Header : x\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX\r\n",
    b"GET / HTTP/1.1\r\nX@y",
    b"GET / HTTP/1.1\r\nA: b\r\n\rX",
]
# ... and these wait for the rest of the head (the checks they fail, if any, need all of it).
WAITING = [
    b"hello there",
    b"GET\tX",
    b"GET\r",
    b"GET /\r",
    b"GET / HTTP/1.1",
    b"GET / HTTP/1.1X",
    b"GET / HTTP/1.1\r\n",
    b"GET /  HTTP/1.1\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: abc\r\n",
    b"GET / HTTP/1.1\r\nX: a\x01b\r\n",
    b"GET / HTTP/1.1\r\nX: \x00",
    b"GET / HTTP/1.1\r\nA: b\r\n c\r\n",  # obs-fold after a header
    b"GET / HTTP/1.1\r\nA: b\r\n\r",
]


@pytest.mark.parametrize("raw", REFUSED_EARLY)
def test_unfinished_heads_haproxy_refuses_at_once(raw: bytes) -> None:
    for step in (None, 1):
        with pytest.raises(H1Error) as err:
            requests_in(raw, step)
        assert err.value.status == 400


@pytest.mark.parametrize("raw", WAITING)
def test_unfinished_heads_haproxy_waits_on(raw: bytes) -> None:
    assert requests_in(raw, None) == []
    assert requests_in(raw, 1) == []


def test_a_pipelined_request_is_checked_from_its_own_start() -> None:
    r = RequestReader()
    assert r.feed(b"GET /a HTTP/1.1\r\nA: b\r\n\r\nGET /b HTTP/1.1\r\nX")[1:] == [EndOfMessage()]
    assert r.next_message() == []
    with pytest.raises(H1Error):
        r.feed(b"@y")


@pytest.mark.parametrize(
    ("raw", "framing"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", LENGTH),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", CHUNKED),
        (b"HTTP/1.1 204 No Content\r\n", NO_BODY),
        (b"HTTP/1.0 200 OK\r\n", UNTIL_EOF),
    ],
)
def test_restore_framing_leaves_framed_and_bodiless_responses(raw: bytes, framing: int) -> None:
    resp = parse_response_head(raw)
    if framing in (NO_BODY, UNTIL_EOF):  # (the reader decides those from the status)
        resp.framing = framing
    before = list(resp.headers)
    restore_framing(resp)
    assert resp.framing == framing and resp.headers == before


@pytest.mark.parametrize("name", [b"content-length", b"transfer-encoding"])
def test_restore_framing_chunks_a_response_whose_framing_header_went(name: bytes) -> None:
    head = b"Content-Length: 5" if name == b"content-length" else b"Transfer-Encoding: chunked"
    resp = parse_response_head(b"HTTP/1.1 200 OK\r\n" + head + b"\r\nX-A: 1\r\n")
    resp.headers = [(n, v) for n, v in resp.headers if n != name]  # http-response del-header
    restore_framing(resp)
    assert resp.framing == CHUNKED
    assert resp.headers == [(b"x-a", b"1"), (b"transfer-encoding", b"chunked")]
    assert encode_data(resp.framing, b"hello") + encode_end(resp.framing, []) == (
        b"5\r\nhello\r\n0\r\n\r\n"
    )
