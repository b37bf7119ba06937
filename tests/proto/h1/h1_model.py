"""What nsproxy's codec says HAProxy forwards: the same raw bytes through the codec alone."""

from __future__ import annotations

from nsproxy.http.answers import answer, raw_answer
from nsproxy.proto.h1.connection import HttpMode, prepare_request, prepare_response
from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import (
    DEFAULT_LIMITS,
    Limits,
    RequestHead,
    ResponseHead,
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


def _body(framing: int, events: list[Event]) -> bytes:
    """Body bytes re-framed as HAProxy does with a body it holds whole: one chunk."""
    data = b"".join(e.data for e in events if isinstance(e, Data))
    out = encode_data(framing, data)
    for e in events:
        if isinstance(e, EndOfMessage):
            out += encode_end(framing, e.trailers)
    return out


def request(
    raw: bytes, mode: HttpMode = HttpMode.KEEP_ALIVE, limits: Limits = DEFAULT_LIMITS
) -> tuple[RequestHead, bytes] | int:
    """(head, bytes the server gets) or the status HAProxy answers instead."""
    try:
        events = RequestReader(limits).feed(raw)
    except H1Error as e:
        return e.status
    head = events[0]
    assert isinstance(head, RequestHead)
    prepare_request(head, mode)
    return head, serialize_request(head) + _body(head.framing, events[1:])


def response(
    req_raw: bytes,
    resp_raw: bytes,
    mode: HttpMode = HttpMode.KEEP_ALIVE,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[bytes, bool]:
    """(bytes the client gets, whether the client connection stays open)."""
    got = request(req_raw, mode, limits)
    assert not isinstance(got, int)
    req = got[0]
    reader = ResponseReader(limits)
    try:
        events = reader.expect(req) + reader.feed(resp_raw) + reader.feed_eof()
    except H1Error as e:
        return answer(e.status), True
    out = b""
    keep = True
    final: ResponseHead | None = None
    rest: list[Event] = []
    for e in events:
        if isinstance(e, ResponseHead) and e.status < 200 and e.status != 101:
            out += serialize_response(e)
        elif isinstance(e, ResponseHead):
            final = e
            keep = prepare_response(req, e, mode)
            out += serialize_response(e)
        elif isinstance(e, Tunnel):
            out += e.data
        else:
            rest.append(e)
    assert final is not None
    return out + _body(final.framing, rest), keep


def refused(status: int) -> bytes:
    return raw_answer(status)
