"""proto.h1.sniff: a TCP stream's buffered bytes read as an HTTP/1 request head, and the
stream's parse of its buffer, done once per buffer length."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nsproxy.proto.h1.sniff import sniff_again, sniff_request

TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$", min_size=1)
PATH = st.text("abcdefghijklmnopqrstuvwxyz0123456789/-._~?=&%", max_size=20).map(lambda p: "/" + p)
VALUE = st.text("abcdefghijklmnopqrstuvwxyz0123456789 -_.,;=/", max_size=20).map(str.strip)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(TOKEN)
    lines = [f"{method} {draw(PATH)} HTTP/1.{draw(st.sampled_from('01'))}"]
    names = draw(st.lists(TOKEN, max_size=5, unique_by=str.lower))
    lines += [f"{n}: {draw(VALUE)}" for n in names if n.lower() not in SPECIAL]
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    return (eol.join(lines) + eol + eol).encode()


SPECIAL = {
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "upgrade",
    "expect",
    "te",
    "sec-websocket-key",
    "sec-websocket-accept",
}


@given(requests())
def test_a_whole_head_parses_and_every_part_of_it_waits(raw: bytes) -> None:
    head, wait = sniff_request(raw)
    assert head is not None and not wait
    assert raw.startswith(head.method + b" " + head.target + b" " + head.version)
    for n in range(len(raw)):
        assert sniff_request(raw[:n]) == (None, True), raw[:n]


@given(requests(), st.binary(max_size=40))
def test_bytes_after_the_head_do_not_change_it(raw: bytes, body: bytes) -> None:
    assert sniff_request(raw + body) == sniff_request(raw)


@given(st.binary(max_size=64))
def test_any_bytes_give_an_answer(data: bytes) -> None:
    head, wait = sniff_request(data)
    assert not (head is not None and wait)


@given(st.sampled_from(b"\x00\x16\x80\xff ("), st.binary(max_size=20))
def test_a_byte_that_cannot_start_a_method_fails_at_once(first: int, rest: bytes) -> None:
    assert sniff_request(bytes([first]) + rest) == (None, False)


def test_haproxy_tcp_mode_leniencies_and_refusals() -> None:
    """What HAProxy 2.6 took as HTTP in a TCP frontend (tests/integration/test_tcp_http_fetch)."""
    h09, _ = sniff_request(b"GET /\r\n\r\n")
    assert h09 is not None and h09.version == b"HTTP/1.0"
    odd, _ = sniff_request(b"GET / FOO/1.1\r\n\r\n")
    assert odd is not None and odd.version == b"FOO/1.1"
    lead, _ = sniff_request(b"\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n")
    assert lead is not None and lead.target == b"/a" and lead.headers == [(b"host", b"h")]
    assert sniff_request(b"POST /\r\n\r\n") == (None, False)  # only GET may omit the version
    assert sniff_request(b"hello world\r\n") == (None, False)
    assert sniff_request(b"GET / HTTP/1.1\r\nbad line\r\n") == (None, False)  # before the end
    assert sniff_request(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == (None, False)
    assert sniff_request(b"GET /#f HTTP/1.1\r\n\r\n") == (None, False)
    assert sniff_request(b"XXXXX") == (None, True)


def test_the_stream_parses_its_buffer_once_per_length() -> None:
    buf = bytearray(b"GET /a HTTP/1.1\r\nHo")
    first = sniff_again(None, buf)
    assert first == (len(buf), None, True)
    assert sniff_again(first, buf) is first
    buf += b"st: x\r\n\r\n"
    done = sniff_again(first, buf)
    assert done[0] == len(buf) and done[2] is False
    assert done[1] is not None and done[1].headers == [(b"host", b"x")]
    assert sniff_again(done, buf) is done  # the same length: no second parse
    buf += b"more"  # bytes after the head: parsed again, the same head
    assert sniff_again(done, buf)[1] == done[1]
