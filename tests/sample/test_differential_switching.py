"""tcp-request content rules and use_backend decisions against HAProxy 2.6 on the same bytes.

HAProxy logs the backend it chose (%b) and the termination state; the engine's rules,
parsed from the same lines, decide through run_tcp_rules() and choose_backend().
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsproxy.config.model_rules import ProxyRules, choose_backend, run_tcp_rules

from .haproxy_ref import needs_haproxy, refused_port, running
from .test_rules_keywords import parse
from .txn import StubTxn

pytestmark = needs_haproxy

RULES = """  tcp-request inspect-delay 3s
  acl long req.len ge 5
  tcp-request content set-var(sess.a) req.payload(0,3)
  tcp-request content reject if { req.payload(0,3) -m str bad }
  tcp-request content accept if long
  tcp-request content reject if { req.len lt 2 }
  use_backend b_%[var(sess.a)] if { var(sess.a) -m found } { var(sess.a) -m reg ^[a-z]+$ }
  use_backend b_short unless long
  default_backend b_def
"""
BACKENDS = ["b_abc", "b_xyz", "b_short", "b_def"]
PAYLOADS = [b"abc", b"abcdef", b"xyzzy", b"bad", b"badness", b"x", b"12345", b"ABCDE", b"zz"]


@pytest.fixture(scope="module")
def reference() -> Iterator[tuple[int, socket.socket]]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    body = (
        f'  log 127.0.0.1:{udp.getsockname()[1]} format raw local0\n  log-format "%b %ts"\n{RULES}'
    )
    defaults = (
        "\ndefaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n"
        "  timeout connect 2s\n  retries 0\n"
    )
    with refused_port() as dead:
        extra = "".join(f"backend {b}\n  server s 127.0.0.1:{dead}\n" for b in BACKENDS)
        with udp, running(body, extra, defaults) as port:
            # The readiness probe's connection logs one line: drain it.
            udp.recv(65536)
            yield port, udp


def haproxy_choice(port: int, udp: socket.socket, payload: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)  # the data is final: no waiting for the inspect-delay
        while c.recv(4096):
            pass
    return udp.recv(65536).decode().strip()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> ProxyRules:
    tmp = tmp_path_factory.mktemp("sw")
    backends = "".join(f"backend {b}\n" for b in BACKENDS)
    state = parse(Path(tmp), f"frontend fe\n  bind 127.0.0.1:1\n{RULES}{backends}")
    assert state.errors == []
    sec = next(s for s in state.proxies if s.name == "fe")
    rules: ProxyRules = sec.fields["rules"]
    return rules


def engine_choice(rules: ProxyRules, payload: bytes) -> str:
    t = StubTxn(req_data=payload, req_final=True, frontend_name="fe")
    out = run_tcp_rules(rules.tcp_request_content, t)
    if out.action in ("reject", "silent-drop"):
        return "fe PR"  # denied during the request: no backend, termination PR
    chosen = choose_backend(rules, t, "b_def", lambda n: n in BACKENDS)
    return f"{chosen} SC"  # the (refused) server connection fails


@pytest.mark.parametrize("payload", PAYLOADS)
def test_decisions_match_haproxy(
    reference: tuple[int, socket.socket], engine: ProxyRules, payload: bytes
) -> None:
    port, udp = reference
    assert engine_choice(engine, payload) == haproxy_choice(port, udp, payload)
