"""The codec against the local HAProxy 2.6: same raw bytes, same verdicts, same forwarded bytes."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import h1_model as model
import pytest
from h1_haproxy_lab import HAPROXY, Backend, exchange, free_port, haproxy, head_done, message_done
from h1_haproxy_lab import config as hap_config

from nsproxy.http.answers import answer, auth_required, raw_answer, redirect
from nsproxy.proto.h1.connection import HttpMode
from nsproxy.proto.h1.head import Limits

pytestmark = pytest.mark.skipif(not os.path.exists(HAPROXY), reason="haproxy not installed")

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
H = b"Host: x\r\n"
CL0 = b"Content-Length: 0\r\n\r\n"
ABC_CHUNKED = b"3\r\nabc\r\n0\r\n\r\n"
WS = b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
WS_KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"


def post(headers: bytes, body: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


def chunked(body: bytes, extra: bytes = b"") -> bytes:
    return post(extra + b"Transfer-Encoding: chunked\r\n", body)


REQUESTS: dict[str, bytes] = {
    "simple": b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Mixed-Case: Va lue \r\nAccept: */*\r\n\r\n",
    "http10": b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
    "http10-keepalive": b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    "http09-version": b"GET / HTTP/0.9\r\n" + H + b"\r\n",
    "conn-close": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "conn-tokens": b"GET / HTTP/1.1\r\n" + H + b"Connection: keep-alive, X-Foo\r\nX-Foo: 1\r\n\r\n",
    "conn-multi": b"GET / HTTP/1.1\r\n"
    + H
    + b"Connection: Keep-Alive\r\nConnection: X-A,  x-b\r\n\r\n",
    "conn-empty": b"GET / HTTP/1.1\r\n" + H + b"Connection:\r\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\n\r\n",
    "host-differs": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "host-same": b"GET / HTTP/1.1\r\nHost: a\r\nhost: A\r\n\r\n",
    "bare-lf": b"GET / HTTP/1.1\nHost: x\nA: b\n\n",
    "lf-mixed": b"GET / HTTP/1.1\r\nHost: x\nA: b\r\n\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n  c\r\n\r\n",
    "obs-fold-lf": b"GET / HTTP/1.1\nHost: x\nA: b\n\tc\n\n",
    "fold-first-line": b"GET / HTTP/1.1\r\n\tHost: x\r\n\r\n",
    "leading-space": b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
    "absolute-uri": b"GET http://Example.com:80/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "absolute-no-host": b"GET http://a.b:8080/p HTTP/1.1\r\n\r\n",
    "absolute-host-differs": b"GET http://a.b?x HTTP/1.1\r\nHost: zz\r\n\r\n",
    "abs-host-case": b"GET http://a.b/x HTTP/1.1\r\nHost: A.B\r\n\r\n",
    "abs-no-port-host-80": b"GET http://a.b/x HTTP/1.1\r\nHost: a.b:80\r\n\r\n",
    "abs-80-host-80": b"GET http://A.B:80/x HTTP/1.1\r\nHost: a.b:80\r\n\r\n",
    "abs-81-host-80": b"GET http://a.b:81/x HTTP/1.1\r\nHost: a.b:80\r\n\r\n",
    "abs-http-host-443": b"GET http://a.b/x HTTP/1.1\r\nHost: a.b:443\r\n\r\n",
    "abs-80-no-host": b"GET http://a.b:80/x HTTP/1.1\r\n\r\n",
    "abs-userinfo": b"GET http://u@a.b/x HTTP/1.1\r\nHost: a.b\r\n\r\n",
    "abs-two-hosts": b"GET http://a.b:80/x HTTP/1.1\r\nHost: a.b\r\nHost: a.b\r\n\r\n",
    "abs-https-443": b"GET https://a.b:443/x HTTP/1.1\r\nHost: a.b:443\r\n\r\n",
    "abs-https-host-443": b"GET https://a.b/x HTTP/1.1\r\nHost: a.b:443\r\n\r\n",
    "abs-ftp": b"GET ftp://a.b:21/x HTTP/1.1\r\nHost: a.b:21\r\n\r\n",
    "abs-port-080": b"GET http://a.b:080/x HTTP/1.1\r\nHost: a.b\r\n\r\n",
    "abs-empty-port": b"GET http://a.b:/x HTTP/1.1\r\nHost: a.b\r\n\r\n",
    "abs-no-path": b"GET http://a.b HTTP/1.1\r\nHost: a.b\r\n\r\n",
    "abs-upper-scheme": b"GET HTTP://a.b:80/ HTTP/1.1\r\nHost: a.b\r\n\r\n",
    "abs-ipv6": b"GET http://[::1]:80/x HTTP/1.1\r\nHost: [::1]\r\n\r\n",
    "abs-empty-authority": b"GET http:// HTTP/1.1\r\nHost: a\r\n\r\n",
    "abs-other-scheme": b"GET x://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    "abs-other-scheme-differs": b"GET x://a/ HTTP/1.1\r\nHost: b\r\n\r\n",
    "abs-bad-scheme": b"GET 1http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    "abs-no-slashes": b"GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-word": b"GET abc HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-colon": b"GET a:b HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-relative": b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-fragment": b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
    "abs-fragment": b"GET http://a#b HTTP/1.1\r\nHost: a\r\n\r\n",
    "connect-443": b"CONNECT a.b:443 HTTP/1.1\r\nHost: A.B:443\r\n\r\n",
    "connect-80": b"CONNECT a.b:80 HTTP/1.1\r\nHost: a.b:80\r\n\r\n",
    "connect-8080": b"CONNECT a.b:8080 HTTP/1.1\r\nHost: a.b:8080\r\n\r\n",
    "connect-no-host": b"CONNECT a.b:443 HTTP/1.1\r\n\r\n",
    "connect-host-no-port": b"CONNECT a.b:443 HTTP/1.1\r\nHost: a.b\r\n\r\n",
    "connect-host-differs": b"CONNECT a.b:443 HTTP/1.1\r\nHost: c.d\r\n\r\n",
    "connect-no-port": b"CONNECT a.b HTTP/1.1\r\nHost: a.b\r\n\r\n",
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "version-lower": b"GET / http/1.1\r\nHost: x\r\n\r\n",
    "version-1.2": b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    "version-2.0": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    "version-short": b"GET / HTTP/1\r\n" + H + b"\r\n",
    "http09": b"GET /\r\n\r\n",
    "space-in-uri": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    "two-spaces": b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
    "tab-separator": b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n",
    "two-spaces-before-version": b"GET /  HTTP/1.1\r\n" + H + b"\r\n",
    "tabs-separators": b"GET\t\t/\tHTTP/1.1\r\n" + H + b"\r\n",
    "leading-space-request-line": b" GET / HTTP/1.1\r\n" + H + b"\r\n",
    "trailing-tab": b"GET / HTTP/1.1\t\r\n" + H + b"\r\n",
    "version-11.1": b"GET / HTTP/11.1\r\n" + H + b"\r\n",
    "version-1.10": b"GET / HTTP/1.10\r\n" + H + b"\r\n",
    "version-suffix": b"GET / HTTP/1.1x\r\n" + H + b"\r\n",
    "blank-only-value": b"GET / HTTP/1.1\r\n" + H + b"A:   \t \r\n\r\n",
    "cr-only-line": b"GET / HTTP/1.1\r\n" + H + b"\r\r\n\r\n",
    "expect-http10": b"POST / HTTP/1.0\r\n" + H + b"Expect: 100-continue\r\n" + CL0,
    "trailing-space": b"GET / HTTP/1.1 \r\n" + H + b"\r\n",
    "empty-uri": b"GET  HTTP/1.1\r\n" + H + b"\r\n",
    "utf8-uri": b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    "ctl-uri": b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    "odd-uri-chars": b'GET /"<>{}|\\^` HTTP/1.1\r\nHost: x\r\n\r\n',
    "bad-method": b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "lower-method": b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-name": b"GET / HTTP/1.1\r\nHost: x\r\nA(b: c\r\n\r\n",
    "empty-name": b"GET / HTTP/1.1\r\nHost: x\r\n: c\r\n\r\n",
    "no-colon": b"GET / HTTP/1.1\r\nHost: x\r\nAbc\r\n\r\n",
    "ctl-name": b"GET / HTTP/1.1\r\nHost: x\r\nA\x01: b\r\n\r\n",
    "ctl-value": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x01c\r\n\r\n",
    "nul-value": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n",
    "del-value": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x7fc\r\n\r\n",
    "high-value": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\xffc\r\n\r\n",
    "tab-value": b"GET / HTTP/1.1\r\nHost: x\r\nA:\tb\tc\t\r\n\r\n",
    "cr-value": b"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n",
    "empty-value": b"GET / HTTP/1.1\r\nHost: x\r\nA:\r\n\r\n",
    "colons-in-value": b"GET / HTTP/1.1\r\n" + H + b"A: b:c: d\r\n\r\n",
    "expect": b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
    "te-trailers": b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers, gzip\r\n\r\n",
    "te-gzip": b"GET / HTTP/1.1\r\n" + H + b"TE: gzip\r\n\r\n",
    "te-trailers-q": b"GET / HTTP/1.1\r\n" + H + b"TE: Trailers;q=1\r\n\r\n",
    "proxy-connection": b"GET / HTTP/1.1\r\nHost: x\r\nProxy-Connection: keep-alive\r\n"
    b"Keep-Alive: 300\r\n\r\n",
    "leading-crlf": b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "websocket": b"GET / HTTP/1.1\r\n" + H + WS + WS_KEY + b"\r\n",
    "websocket-firefox": b"GET / HTTP/1.1\r\n" + H + b"Connection: keep-alive, Upgrade\r\n"
    b"Upgrade: websocket\r\n" + WS_KEY + b"\r\n",
    "websocket-http10": b"GET / HTTP/1.0\r\n" + H + WS + WS_KEY + b"\r\n",
    "websocket-no-key": b"GET / HTTP/1.1\r\n" + H + WS + b"\r\n",
    "upgrade-no-conn": b"GET / HTTP/1.1\r\n" + H + b"Upgrade: websocket\r\n\r\n",
    "h2c": b"GET / HTTP/1.1\r\n" + H + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    "max-headers": b"GET / HTTP/1.1\r\n" + b"a: b\r\n" * 100 + b"\r\n",
    "too-many-headers": b"GET / HTTP/1.1\r\n" + b"a: b\r\n" * 101 + b"\r\n",
    # bodies
    "cl": post(b"Content-Length: 3\r\n", b"abc"),
    "cl-zero": post(b"Content-Length: 0\r\n"),
    "cl-and-te": post(
        b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"
    ),
    "te-and-cl": post(
        b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", b"3\r\nabc\r\n0\r\n\r\n"
    ),
    "cl-dup-same": post(b"Content-Length: 3\r\nA: b\r\nContent-Length: 3\r\n", b"abc"),
    "cl-list-same": post(b"Content-Length: 3, 3\r\n", b"abc"),
    "cl-list-spaces": post(b"Content-Length: 3 ,3\r\n", b"abc"),
    "cl-dup-zeros": post(b"Content-Length: 03\r\nContent-Length: 3\r\n", b"abc"),
    "cl-differs": post(b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"),
    "cl-plus": post(b"Content-Length: +3\r\n", b"abc"),
    "cl-minus": post(b"Content-Length: -3\r\n", b"abc"),
    "cl-alpha": post(b"Content-Length: 3a\r\n", b"abc"),
    "cl-empty": post(b"Content-Length:\r\n"),
    "cl-leading-zeros": post(b"Content-Length: 003\r\n", b"abc"),
    "cl-inner-space": post(b"Content-Length: 3 3\r\n", b"abc"),
    "cl-overflow": post(b"Content-Length: 9223372036854775808\r\n", b"abc"),
    "cl-trailing-comma": post(b"Content-Length: 3,\r\n", b"abc"),
    "chunked": chunked(b"3\r\nabc\r\n0A\r\n0123456789\r\n0\r\n\r\n"),
    "chunk-ext": chunked(b"3;foo=bar\r\nabc\r\n0;x\r\n\r\n"),
    "chunk-ext-ctl": chunked(b"3;\x01\r\nabc\r\n0\r\n\r\n"),
    "chunk-trailers": chunked(b"3\r\nabc\r\n0\r\nX-Trail: V\r\nOther: w \r\n\r\n"),
    "chunk-bare-lf": chunked(b"3\nabc\n0\n\n"),
    "chunk-te-case": post(b"Transfer-Encoding: Chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"),
    "chunk-size-space": chunked(b"3 \r\nabc\r\n0\r\n\r\n"),
    "chunk-size-zeros": chunked(b"00000000000000003\r\nabc\r\n0\r\n\r\n"),
    "chunk-size-overflow": chunked(b"10000000000000003\r\nabc\r\n0\r\n\r\n"),
    "chunk-size-bad": chunked(b"zz\r\nabc\r\n0\r\n\r\n"),
    "chunk-no-crlf": chunked(b"3\r\nabcX\r\n0\r\n\r\n"),
    "te-gzip-chunked": post(b"Transfer-Encoding: gzip, chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"),
    "te-chunked-gzip": post(b"Transfer-Encoding: chunked, gzip\r\n", b"3\r\nabc\r\n0\r\n\r\n"),
    "te-gzip-only": post(b"Transfer-Encoding: gzip\r\n", b"abc"),
    "te-twice": chunked(b"3\r\nabc\r\n0\r\n\r\n", b"Transfer-Encoding: chunked\r\n"),
    "te-split": chunked(b"3\r\nabc\r\n0\r\n\r\n", b"Transfer-Encoding: gzip\r\n"),
    "te-identity": post(b"Transfer-Encoding: identity\r\nContent-Length: 3\r\n", b"abc"),
    "te-http10": b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + ABC_CHUNKED,
    "get-with-body": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    "post-no-length": post(b""),
}


@pytest.fixture(scope="module")
def requests_proxy() -> Iterator[tuple[int, Backend]]:
    be = Backend([OK] * len(REQUESTS))
    port = free_port()
    try:
        with haproxy(hap_config(port, be.port), port):
            yield port, be
    finally:
        be.close()


@pytest.mark.parametrize("name", list(REQUESTS))
def test_request_verdict_and_forwarded_bytes(
    name: str, requests_proxy: tuple[int, Backend]
) -> None:
    port, be = requests_proxy
    raw = REQUESTS[name]
    before = len(be.received)
    client = exchange(port, raw, done=message_done)
    expected = model.request(raw)
    if isinstance(expected, int):
        assert client == raw_answer(expected)
        assert len(be.received) == before, "HAProxy forwarded a request the codec refuses"
    else:
        assert client.startswith(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"), client
        assert be.wait(before, message_done) == expected[1]


@pytest.mark.parametrize("extra", [0, 1])
@pytest.mark.parametrize(
    "tune",
    [(16384, 1024), (32768, 100), (16384, 10000)],
    ids=["defaults", "bufsize-32k-maxrewrite-100", "maxrewrite-capped"],
)
def test_head_size_limit_boundary(extra: int, tune: tuple[int, int]) -> None:
    """The largest head HAProxy takes, found by the codec's formula, passes; one byte more fails."""
    limits = Limits.from_tune(*tune)
    pad = 1
    while not isinstance(model.request(_padded(pad + 1024), limits=limits), int):
        pad += 1024
    while not isinstance(model.request(_padded(pad + 1), limits=limits), int):
        pad += 1
    raw = _padded(pad + extra)
    be = Backend([OK])
    port = free_port()
    glob = f"tune.bufsize {tune[0]}\n tune.maxrewrite {tune[1]}"
    try:
        with haproxy(hap_config(port, be.port, global_=glob), port):
            client = exchange(port, raw, done=message_done)
    finally:
        be.close()
    if extra:
        assert isinstance(model.request(raw, limits=limits), int)
        assert client == raw_answer(400)
    else:
        assert client.startswith(b"HTTP/1.1 200 OK")


@pytest.mark.parametrize("count", [8, 9, 10])
def test_header_count_limit_is_maxhdr_minus_one(count: int) -> None:
    limits = Limits.from_tune(maxhdr=10)
    req = b"GET / HTTP/1.1\r\n" + b"a: b\r\n" * count + b"\r\n"
    resp = b"HTTP/1.1 200 OK\r\n" + b"a: b\r\n" * (count - 1) + b"Content-Length: 2\r\n\r\nok"
    be = Backend([resp, resp])
    port = free_port()
    try:
        with haproxy(hap_config(port, be.port, global_="tune.http.maxhdr 10"), port):
            client = exchange(port, req, done=message_done)
            if count < 10:
                client_resp = exchange(port, GET, done=message_done)
    finally:
        be.close()
    expected = model.request(req, limits=limits)
    if count < 10:
        assert not isinstance(expected, int)
        assert client.startswith(b"HTTP/1.1 200")
        assert client_resp == model.response(GET, resp, limits=limits)[0]
    else:
        assert expected == 400
        assert client == raw_answer(400)


def test_response_head_size_limit_boundary() -> None:
    """Same formula for responses: the largest passes, one byte more is a 502."""
    pad = 1
    while not _response_refused(_padded_response(pad + 1024)):
        pad += 1024
    while not _response_refused(_padded_response(pad + 1)):
        pad += 1
    for extra in (0, 1):
        raw = _padded_response(pad + extra)
        be = Backend([raw])
        port = free_port()
        try:
            with haproxy(hap_config(port, be.port), port):
                client = exchange(port, GET, done=message_done)
        finally:
            be.close()
        assert client == model.response(GET, raw)[0]
        assert client.startswith(b"HTTP/1.1 502" if extra else b"HTTP/1.1 200")


def _padded_response(n: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * n + b"\r\nContent-Length: 2\r\n\r\nok"


def _response_refused(raw: bytes) -> bool:
    return model.response(GET, raw)[0].startswith(b"HTTP/1.1 502")


def _padded(n: int) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * n + b"\r\nAccept: */*\r\n\r\n"


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"
HEAD = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"

RESPONSES: dict[str, tuple[bytes, bytes]] = {
    "mixed-case": (GET, b"HTTP/1.1 200 OK\r\nX-Mixed: A b \r\nContent-Length: 2\r\n\r\nok"),
    "empty-reason": (GET, b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"),
    "no-reason": (GET, b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"),
    "odd-reason": (GET, b"HTTP/1.1 299 Weird  Reason\t!\r\nContent-Length: 2\r\n\r\nok"),
    "http10": (GET, b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "http10-no-length": (GET, b"HTTP/1.0 200 OK\r\n\r\nokok"),
    "http11-no-length": (GET, b"HTTP/1.1 200 OK\r\n\r\nokok"),
    "no-length-to-http10": (GET10, b"HTTP/1.1 200 OK\r\n\r\nokok"),
    "chunked": (
        GET,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nT: v\r\n\r\n",
    ),
    "chunked-merged": (
        GET,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;e=x\r\nok\r\n"
        b"3\r\nabc\r\n0\r\nA: b \r\nC:d\r\n\r\n",
    ),
    "chunked-lf": (GET, b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n"),
    "chunked-to-http10": (
        GET10,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ),
    "cl-and-te": (
        GET,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n",
    ),
    "cl-differs": (GET, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"),
    "te-gzip": (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nokok"),
    "te-gzip-chunked": (
        GET,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ),
    "head": (HEAD, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
    "head-chunked": (HEAD, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "204-with-length": (GET, b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
    "304": (GET, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
    "100-then-200": (GET, b"HTTP/1.1 100 Continue\r\n\r\n" + OK),
    "103-then-200": (GET, b"HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n" + OK),
    "space-before-colon": (GET, b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok"),
    "bare-lf": (GET, b"HTTP/1.1 200 OK\nX-A: b\nContent-Length: 2\n\nok"),
    "server-close": (GET, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
    "server-tokens": (
        GET,
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Y\r\nContent-Length: 2\r\n\r\nok",
    ),
    "bad-version": (GET, b"HTTP/1.x 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "version-1.2": (GET, b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "nul-in-value": (GET, b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 2\r\n\r\nok"),
    "101-unasked": (
        GET,
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    ),
}


def _scripted_response(request: bytes) -> bytes:
    """The backend's answer: RESPONSES[name] for a request to /name."""
    name = request.split(b" ", 2)[1][1:].decode()
    return RESPONSES[name][1]


@pytest.fixture(scope="module")
def responses_proxy() -> Iterator[tuple[int, Backend]]:
    be = Backend([], responder=_scripted_response)
    port = free_port()
    try:
        with haproxy(hap_config(port, be.port, backend="http-reuse never"), port):
            yield port, be
    finally:
        be.close()


@pytest.mark.parametrize("name", list(RESPONSES))
def test_response_verdict_and_forwarded_bytes(
    name: str, responses_proxy: tuple[int, Backend]
) -> None:
    port, _ = responses_proxy
    req, resp = RESPONSES[name]
    req = req.replace(b" / ", b" /" + name.encode() + b" ", 1)
    done = head_done if req.startswith(b"HEAD") else message_done
    client = exchange(port, req, done=done)
    expected, _keep = model.response(req, resp)
    assert client == expected


REQ_VARIANTS = {
    "11": GET,
    "10": GET10,
    "10-keep-alive": b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    "11-close": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "11-tokens": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: X-Foo, keep-alive\r\n\r\n",
}
RESP_VARIANTS = {
    "11": OK,
    "11-close": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    "10": b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "10-keep-alive": b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("mode", list(HttpMode))
def test_connection_headers_per_mode(mode: HttpMode) -> None:
    """Every request/response version and Connection mix, in each mode: both sides' bytes."""
    cases = [(r, s) for r in REQ_VARIANTS for s in RESP_VARIANTS]
    be = Backend([RESP_VARIANTS[s] for _, s in cases])
    port = free_port()
    try:
        with haproxy(
            hap_config(port, be.port, defaults=f"option {mode.value}", backend="http-reuse never"),
            port,
        ):
            for n, (r, s) in enumerate(cases):
                with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                    c.sendall(REQ_VARIANTS[r])
                    got = _read_until(c, message_done)
                    kept = _still_open(c)
                server = be.wait(n, message_done)
                fwd = model.request(REQ_VARIANTS[r], mode)
                assert not isinstance(fwd, int)
                assert server == fwd[1], (r, s)
                expected, keep = model.response(REQ_VARIANTS[r], RESP_VARIANTS[s], mode)
                assert (got, kept) == (expected, keep), (r, s)
    finally:
        be.close()


def _read_until(c: socket.socket, done: object) -> bytes:
    out = b""
    while not done(out):  # type: ignore[operator]
        data = c.recv(65536)
        if not data:
            break
        out += data
    return out


def _still_open(c: socket.socket) -> bool:
    """After a complete response: HAProxy either closes at once or waits for the next request."""
    c.settimeout(0.5)
    try:
        return c.recv(1) != b""
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False


def test_upgrade_becomes_a_tunnel_with_the_bytes_after_the_head() -> None:
    req = b"GET /ws HTTP/1.1\r\nHost: x\r\n" + WS + WS_KEY + b"\r\n"
    r101 = (
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    be = Backend([r101 + b"SERVERDATA"], close_after=False)
    port = free_port()
    try:
        with (
            haproxy(hap_config(port, be.port, defaults="option http-server-close"), port),
            socket.create_connection(("127.0.0.1", port), timeout=10) as c,
        ):
            c.sendall(req)
            got = _read_until(c, lambda b: b.endswith(b"SERVERDATA"))
            c.sendall(b"CLIENTDATA")
            server = be.wait(0, lambda b: b.endswith(b"CLIENTDATA"))
    finally:
        be.close()
    fwd = model.request(req, HttpMode.SERVER_CLOSE)
    assert not isinstance(fwd, int)
    assert server == fwd[1] + b"CLIENTDATA"
    expected, keep = model.response(req, r101 + b"SERVERDATA", HttpMode.SERVER_CLOSE)
    assert got == expected
    assert not keep


def test_expect_100_is_forwarded_not_answered() -> None:
    req = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    be = Backend([], done=lambda b: False, close_after=False)
    port = free_port()
    try:
        with (
            haproxy(hap_config(port, be.port), port),
            socket.create_connection(("127.0.0.1", port), timeout=10) as c,
        ):
            c.sendall(req)
            server = be.wait(0, head_done)
            c.settimeout(0.5)
            with pytest.raises(TimeoutError):
                c.recv(100)
    finally:
        be.close()
    fwd = model.request(req)
    assert not isinstance(fwd, int)
    assert fwd[0].expect_continue
    assert server == fwd[1]


DENY = [
    200,
    400,
    401,
    403,
    404,
    405,
    407,
    408,
    410,
    413,
    421,
    422,
    425,
    429,
    500,
    501,
    502,
    503,
    504,
]


def test_haproxy_answers_are_the_recorded_bytes() -> None:
    fe = "\n ".join(f"http-request deny deny_status {c} if {{ path /d{c} }}" for c in DENY)
    fe += "\n monitor-uri /mon\n http-request auth realm Secret if { path /auth }"
    fe += "\n http-request redirect location /x if { path /redir }"
    dead = free_port()
    port = free_port()
    with haproxy(hap_config(port, dead, frontend=fe, defaults="timeout http-request 300ms"), port):
        for c in DENY:
            got = exchange(port, b"GET /d%d HTTP/1.1\r\nHost: x\r\n\r\n" % c, done=message_done)
            assert got == answer(c), c
        assert exchange(port, b"GET /mon HTTP/1.1\r\n\r\n", done=message_done) == answer(200)
        assert exchange(port, b"GET /auth HTTP/1.1\r\n\r\n", done=message_done) == auth_required(
            b"Secret"
        )
        assert exchange(port, b"GET /redir HTTP/1.1\r\n\r\n", done=message_done) == redirect(
            302, b"/x"
        )
        assert exchange(port, b"GET / HTTP/1.1\r\n\r\n", done=message_done) == answer(503)
        assert exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n") == raw_answer(408)
        assert exchange(port, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n") == raw_answer(400)


def test_502_for_a_server_that_closes_and_504_for_a_slow_one() -> None:
    be = Backend([b""])
    port = free_port()
    try:
        with haproxy(hap_config(port, be.port), port):
            assert exchange(port, GET, done=message_done) == answer(502)
    finally:
        be.close()
    be = Backend([], done=lambda b: False, close_after=False)
    port = free_port()
    try:
        with haproxy(hap_config(port, be.port, defaults="timeout server 200ms"), port):
            assert exchange(port, GET, done=message_done) == answer(504)
    finally:
        be.close()


def test_connect_2xx_becomes_a_tunnel() -> None:
    req = b"CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n"
    ok = b"HTTP/1.1 200 Connection established\r\n\r\n"
    be = Backend([ok + b"SERVERDATA"], close_after=False)
    port = free_port()
    try:
        with (
            haproxy(hap_config(port, be.port), port),
            socket.create_connection(("127.0.0.1", port), timeout=10) as c,
        ):
            c.sendall(req)
            got = _read_until(c, lambda b: b.endswith(b"SERVERDATA"))
            c.sendall(b"CLIENTDATA")
            server = be.wait(0, lambda b: b.endswith(b"CLIENTDATA"))
    finally:
        be.close()
    fwd = model.request(req)
    assert not isinstance(fwd, int)
    assert server == fwd[1] + b"CLIENTDATA"
    assert got == model.response(req, ok + b"SERVERDATA")[0]
