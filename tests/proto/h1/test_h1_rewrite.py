"""Header and request-line rewrites: the helpers' output against what HAProxy 2.6 forwards."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterator

import pytest
from h1_haproxy_lab import HAPROXY, Backend, exchange, free_port, haproxy, message_done
from h1_haproxy_lab import config as hap_config

from nsproxy.proto.h1 import rewrite
from nsproxy.proto.h1.connection import HttpMode, prepare_request
from nsproxy.proto.h1.head import RequestHead, parse_request_head, serialize_request

Edit = Callable[[RequestHead], None]


def _del_then_set(r: RequestHead, name: bytes, value: bytes) -> None:
    rewrite.del_header(r.headers, name)
    rewrite.set_header(r.headers, name, value)


# (haproxy rule lines, the same edits through the helpers)
CASES: dict[str, tuple[list[str], Edit]] = {
    "set-header": (
        ["http-request set-header X-Net net-1"],
        lambda r: rewrite.set_header(r.headers, b"X-Net", b"net-1"),
    ),
    "add-header": (
        ["http-request add-header X-Net net-1"],
        lambda r: rewrite.add_header(r.headers, b"X-Net", b"net-1"),
    ),
    "del-then-set": (
        ["http-request del-header X-Net", "http-request set-header X-Net real"],
        lambda r: _del_then_set(r, b"X-Net", b"real"),
    ),
    "replace-header": (
        [r"http-request replace-header X-Net ^n(.*)-(\d)$ \2-\1-x"],
        lambda r: rewrite.replace_header(
            r.headers, b"X-Net", re.compile(rb"^n(.*)-(\d)$"), rb"\2-\1-x"
        ),
    ),
    "replace-header-partial": (
        [r"http-request replace-header X-Net et x"],
        lambda r: rewrite.replace_header(r.headers, b"X-Net", re.compile(rb"et"), b"x"),
    ),
    "replace-value": (
        [r"http-request replace-value X-List ^a(.*)$ z\1"],
        lambda r: rewrite.replace_value(r.headers, b"X-List", re.compile(rb"^a(.*)$"), rb"z\1"),
    ),
    "set-path": (
        ["http-request set-path /new/path"],
        lambda r: rewrite.set_path(r, b"/new/path"),
    ),
    "set-query": (
        ["http-request set-query a=1&b=2"],
        lambda r: rewrite.set_query(r, b"a=1&b=2"),
    ),
    "set-query-empty": (
        ["http-request set-query %[req.hdr(x-absent)]"],
        lambda r: rewrite.set_query(r, b""),
    ),
    "set-path-keeps-query": (
        ["http-request set-path /a%[req.hdr(x-absent)]"],
        lambda r: rewrite.set_path(r, b"/a"),
    ),
    "set-uri": (
        ["http-request set-uri /u?v"],
        lambda r: rewrite.set_uri(r, b"/u?v"),
    ),
    "set-method": (
        ["http-request set-method PUT"],
        lambda r: rewrite.set_method(r, b"PUT"),
    ),
    "forwardfor": (
        ["option forwardfor"],
        lambda r: rewrite.add_forwarded_for(r.headers, b"127.0.0.1"),
    ),
    "forwardfor-header-if-none": (
        ["option forwardfor header X-Client if-none"],
        lambda r: rewrite.add_forwarded_for(
            r.headers, b"127.0.0.1", name=b"X-Client", if_none=True
        ),
    ),
}

REQUESTS = [
    b"GET /p/q?x=1 HTTP/1.1\r\nHost: h\r\nX-Net: net-7\r\nX-List: ab, b,ac\r\n"
    b"X-Forwarded-For: 10.9.9.9\r\nX-Net: other\r\n\r\n",
    b"GET /p HTTP/1.1\r\nHost: h\r\nX-Client: 1.2.3.4\r\n\r\n",
    b"GET http://h/p?x HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /p? HTTP/1.0\r\nX-List: a\r\n\r\n",
]

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture(scope="module")
def proxies() -> Iterator[dict[str, tuple[int, Backend]]]:
    if not os.path.exists(HAPROXY):
        pytest.skip("haproxy not installed")
    out: dict[str, tuple[int, Backend]] = {}
    stack = []
    try:
        for name, (rules, _) in CASES.items():
            be = Backend([OK] * len(REQUESTS))
            port = free_port()
            cm = haproxy(hap_config(port, be.port, frontend="\n ".join(rules)), port)
            cm.__enter__()
            stack.append((cm, be))
            out[name] = (port, be)
        yield out
    finally:
        for cm, be in stack:
            cm.__exit__(None, None, None)
            be.close()


@pytest.mark.parametrize("raw", REQUESTS, ids=range(len(REQUESTS)))
@pytest.mark.parametrize("name", list(CASES))
def test_rewrite_matches_haproxy(
    name: str, raw: bytes, proxies: dict[str, tuple[int, Backend]]
) -> None:
    port, be = proxies[name]
    n = len(be.received)
    assert exchange(port, raw, done=message_done).startswith(b"HTTP/1.1 200")
    got = be.wait(n, message_done)
    # HAProxy applies the rules to the parsed head; its H1 layer adds `connection:` when sending
    head = parse_request_head(raw[: raw.index(b"\r\n\r\n") + 2])
    CASES[name][1](head)
    prepare_request(head, HttpMode.KEEP_ALIVE)
    assert got == serialize_request(head)


def test_forwardfor_on_an_ipv6_bind_is_ipv4_mapped() -> None:
    if not os.path.exists(HAPROXY):
        pytest.skip("haproxy not installed")
    be = Backend([OK])
    port = free_port()
    cfg = hap_config(port, be.port, frontend="option forwardfor").replace(
        f"bind 127.0.0.1:{port}", f"bind :::{port}"
    )
    try:
        with haproxy(cfg, port):
            assert exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", done=message_done)
            got = be.wait(0, message_done)
    finally:
        be.close()
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1")
    value = rewrite.forwarded_for_value(socket.AF_INET6, mapped)
    assert value == b"::ffff:127.0.0.1"
    assert got == b"GET / HTTP/1.1\r\nhost: h\r\nx-forwarded-for: " + value + b"\r\n\r\n"
