"""req.ssl_* fetches against HAProxy 2.6 in TCP mode: the values it logs for the same bytes."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from nsproxy.sample import (
    AclSet,
    Hook,
    Sample,
    SmpType,
    Verdict,
    compile_condition,
    compile_expr,
    compile_logformat,
)

from .haproxy_ref import needs_haproxy, refused_port, running
from .hello import alpn_ext, client_hello, ext, hello_message, records, sni_ext
from .txn import StubTxn

pytestmark = needs_haproxy

FORMAT = (
    "%[var(sess.sni)]|%[var(sess.alpn)]|%[var(sess.ver)]|%[var(sess.ht)]|%[var(sess.lsni)]|"
    "%[var(sess.h2)]"
)
TCP_DEFAULTS = """
defaults
  mode tcp
  timeout client 5s
  timeout server 5s
  timeout connect 2s
  retries 0
  option dontlognull
"""
RULES = """
  tcp-request inspect-delay 2s
  acl HELLO req.ssl_hello_type 1
  tcp-request content set-var(sess.sni) req.ssl_sni if { req.ssl_hello_type 1 }
  tcp-request content set-var(sess.alpn) req.ssl_alpn if { req.ssl_hello_type 1 }
  tcp-request content set-var(sess.ver) req.ssl_ver if { req.ssl_hello_type 1 }
  tcp-request content set-var(sess.ht) req.ssl_hello_type if { req.ssl_hello_type 1 }
  tcp-request content set-var(sess.lsni) req.ssl_sni,lower,regsub(\\.,_,g) if HELLO
  tcp-request content set-var(sess.h2) bool(1) if HELLO { req.ssl_alpn h2 }
"""

CASES = [
    client_hello(b"example.com"),
    client_hello(b"WWW.Example.ORG", (b"h2", b"http/1.1")),
    client_hello(b"two.example", (b"http/1.1", b"h2")),
    client_hello(None, (b"http/1.1",)),
    records(hello_message(with_ext_block=False)),
    records(hello_message(sni_ext(b"a.b") + ext(10, b"\x00\x02\x00\x17"), version=0x0301)),
    records(hello_message(alpn_ext(b"x") + sni_ext(b"late.example"))),
]


@pytest.fixture(scope="module")
def logged() -> Iterator[tuple[int, socket.socket]]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    log_port = udp.getsockname()[1]
    body = (
        f"  log 127.0.0.1:{log_port} format raw local0\n"
        f'  log-format "{FORMAT}"\n{RULES}  default_backend be\n'
    )
    with refused_port() as dead:
        extra = f"backend be\n  server s1 127.0.0.1:{dead}\n"
        with udp, running(body, extra, TCP_DEFAULTS) as port:
            yield port, udp


def haproxy_line(port: int, udp: socket.socket, data: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(data)
        c.settimeout(10)
        while c.recv(4096):  # HAProxy closes once the server connection is refused
            pass
    return udp.recv(65536).decode("latin-1").rstrip("\n")


def engine_line(data: bytes) -> str:
    t = StubTxn(req_data=data, req_final=False)
    acls = AclSet()
    cond = compile_condition(["if", "{", "req.ssl_hello_type", "1", "}"], acls, Hook.FE_REQ_CNT)
    # Each rule's condition sees the complete hello, so it passes; set-var stores the values.
    assert cond(t) is Verdict.PASS
    for var, expr in (
        ("sni", "req.ssl_sni"),
        ("alpn", "req.ssl_alpn"),
        ("ver", "req.ssl_ver"),
        ("ht", "req.ssl_hello_type"),
        ("lsni", "req.ssl_sni,lower,regsub(\\.,_,g)"),
    ):
        smp = compile_expr(expr, Hook.FE_REQ_CNT)(t)
        if smp is not None:
            t.vars.setdefault("sess", {})[var] = smp
    h2 = compile_condition(["if", "{", "req.ssl_alpn", "h2", "}"], acls, Hook.FE_REQ_CNT)
    if h2(t) is Verdict.PASS:
        t.vars.setdefault("sess", {})["h2"] = Sample(SmpType.BOOL, True)
    return compile_logformat(FORMAT)(t)


@pytest.mark.parametrize("index", range(len(CASES)))
def test_ssl_fetches_match_haproxy(logged: tuple[int, socket.socket], index: int) -> None:
    port, udp = logged
    data = CASES[index]
    assert engine_line(data) == haproxy_line(port, udp, data)


def test_hello_condition_waits_for_the_whole_hello() -> None:
    data = client_hello(b"example.com")
    cond = compile_condition(["if", "{", "req_ssl_hello_type", "1", "}"], AclSet(), Hook.FE_REQ_CNT)
    assert cond(StubTxn(req_data=data[:20])) is Verdict.MISS
    assert cond(StubTxn(req_data=data[:20], req_final=True)) is Verdict.FAIL
    assert cond(StubTxn(req_data=data)) is Verdict.PASS
    assert cond(StubTxn(req_data=b"GET / HTTP/1.0\r\n")) is Verdict.FAIL
    unless = compile_condition(
        ["unless", "{", "req_ssl_hello_type", "1", "}"], AclSet(), Hook.FE_REQ_CNT
    )
    assert unless(StubTxn(req_data=data[:20])) is Verdict.MISS
    assert unless(StubTxn(req_data=data)) is Verdict.FAIL
