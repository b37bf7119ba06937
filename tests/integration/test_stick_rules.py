"""Stick tables in traffic, differential against HAProxy 2.6: `stick on src` persistence,
`track-sc*` rate limits, the counters `show table` prints, and the real Neutron and Octavia
configurations that use them.

Every scenario runs the same configuration through nsproxy and HAProxy, inside one test
namespace whose loopback carries the listeners' address and one address per client, and
compares what the clients observe and what `show table` says.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Iterator

import pytest

from lab.netlab import Lab, cli, connect, free_port, recv_all, wait_until

VIP = "10.88.0.1"
CLIENTS = [f"10.88.1.{i}" for i in range(1, 7)]
TIMEOUTS = "  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n"


@pytest.fixture
def ns(lab: Lab) -> Iterator[str]:
    """A namespace with the listeners' address and the clients' addresses on its loopback."""
    name = lab.netns("stk")
    for addr in [VIP, *CLIENTS]:
        lab.ip(name, "addr", "add", f"{addr}/32", "dev", "lo")
    yield name


class Pair:
    """nsproxy and HAProxy on one configuration template, each with its stats socket."""

    def __init__(self, lab: Lab, ns: str, template: str, **kw: object) -> None:
        d = tempfile.mkdtemp(prefix="stk-")
        self.ns = ns
        self.socks: dict[str, str] = {}
        self.ports: dict[str, int] = {}
        for who in ("nsproxy", "haproxy"):
            port = free_port(ns, VIP)
            sock = os.path.join(d, f"{who}.sock")
            text = template.format(port=port, ns=ns, stats=sock, **kw)
            if who == "nsproxy":
                lab.proxy(text)
            else:
                lab.haproxy(text, sock)
            self.ports[who] = port
            self.socks[who] = sock

    def cli(self, who: str, command: str) -> str:
        return cli(self.socks[who], command).decode()

    def both(self, command: str) -> None:
        for who in self.socks:
            self.cli(who, command)

    def table(self, who: str, name: str) -> str:
        """`show table NAME` once no entry is in use, with addresses and dates normalised."""

        def settled() -> str | None:
            out = self.cli(who, f"show table {name}")
            return None if re.search(r"use=[1-9]|conn_cur=[1-9]", out) else out

        out = wait_until(settled, 10, f"{who}'s table {name} at rest")
        out = re.sub(r"0x[0-9a-f]+:", "0xADDR:", out)
        return re.sub(r"exp=\d+", "exp=EXP", out)


def tcp_exchange(ns: str, port: int, src: str, data: bytes = b"x") -> bytes:
    """One connection from `src`: sends `data`, half-closes, returns what came back."""
    try:
        with connect(ns, (VIP, port), source=(src, 0)) as c:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            return recv_all(c)
    except OSError:  # refused at accept: reset, or not connected any more at shutdown
        return b""


def http_get(ns: str, port: int, src: str, path: str = "/") -> int:
    """One `Connection: close` request from `src`; the status it got."""
    with connect(ns, (VIP, port), source=(src, 0)) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: meta\r\nConnection: close\r\n\r\n".encode())
        out = recv_all(c)
    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
    assert m, out
    return int(m.group(1))


# -- persistence ---------------------------------------------------------------------------------
PERSIST = (
    "global\n  stats socket {stats} level admin\ndefaults\n  mode tcp\n  retries 0\n"
    + TIMEOUTS
    + """listen lb
  bind {vip}:{port} namespace {ns}
  balance roundrobin
  stick-table type ip size 10k expire 30m
  stick on src
  server s1 {vip}:{p1} namespace {ns}
  server s2 {vip}:{p2} namespace {ns}
  server s3 {vip}:{p3} namespace {ns}
"""
)


def test_stick_on_src_chooses_the_same_servers_as_haproxy(lab: Lab, ns: str) -> None:
    sinks = [lab.sink(ns, VIP, reply=f"s{i}".encode()) for i in (1, 2, 3)]
    pair = Pair(lab, ns, PERSIST, vip=VIP, p1=sinks[0].port, p2=sinks[1].port, p3=sinks[2].port)
    seen: dict[str, list[list[str]]] = {}
    for who, port in pair.ports.items():
        rounds: list[list[str]] = []
        for step in ("first", "again", "s1 disabled", "s1 enabled"):
            if step == "s1 disabled":
                pair.cli(who, "disable server lb/s1")
            elif step == "s1 enabled":
                pair.cli(who, "enable server lb/s1")
            rounds.append([tcp_exchange(ns, port, src).decode() for src in CLIENTS])
        seen[who] = rounds
    ours, theirs = seen["nsproxy"], seen["haproxy"]
    assert ours == theirs
    first, again, disabled, enabled = ours
    assert first == again  # every source stuck to its first server
    assert sorted(set(first)) == ["s1", "s2", "s3"]
    assert "s1" not in disabled  # clients of the disabled server moved ...
    assert [b for a, b in zip(first, disabled, strict=True) if a != "s1"] == [
        a for a in first if a != "s1"
    ]
    assert enabled == disabled  # ... and re-enabling it moves nobody back
    assert pair.table("nsproxy", "lb") == pair.table("haproxy", "lb")
    assert "server_id=" in pair.table("nsproxy", "lb")


def test_option_persist_keeps_a_client_on_its_disabled_server_until_redispatch(
    lab: Lab, ns: str
) -> None:
    """`option persist`: a stuck client still goes to its server when it is down (the
    connection then fails); with `option redispatch` the last retry goes elsewhere and the
    entry follows it."""
    template = (
        "global\n  stats socket {stats} level admin\ndefaults\n  mode tcp\n  retries 1\n"
        + TIMEOUTS
        + """listen lb
  bind {vip}:{port} namespace {ns}
  option persist
  {redispatch}
  stick-table type ip size 10k
  stick on src
  server s1 {vip}:{p1} namespace {ns}
  server s2 {vip}:{p2} namespace {ns}
"""
    )
    for redispatch in ("", "option redispatch"):
        sinks = [lab.sink(ns, VIP, reply=f"s{i}".encode()) for i in (1, 2)]
        pair = Pair(
            lab, ns, template, vip=VIP, p1=sinks[0].port, p2=sinks[1].port, redispatch=redispatch
        )
        for port in pair.ports.values():
            assert tcp_exchange(ns, port, CLIENTS[0]) == b"s1"
        sinks[0].close()  # s1 goes away: its address refuses connections, and it is disabled
        pair.both("disable server lb/s1")
        seen = {}
        for who, port in pair.ports.items():
            seen[who] = [tcp_exchange(ns, port, CLIENTS[0]).decode() for _ in range(2)]
        assert seen["nsproxy"] == seen["haproxy"], redispatch
        assert seen["nsproxy"] == (["s2", "s2"] if redispatch else ["", ""])
        assert pair.table("nsproxy", "lb") == pair.table("haproxy", "lb")


# -- rate limits -----------------------------------------------------------------------------------
RATE = (
    "global\n  stats socket {stats} level admin\ndefaults\n  mode http\n"
    + TIMEOUTS
    + """frontend fe
  bind {vip}:{port} namespace {ns}
  stick-table type ip size 100k expire 30s store {store}
  http-request track-sc0 src
  http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt 5 }}
  http-request return status 404 if {{ path /missing }}
  http-request return status 200 content-type text/plain string ok
"""
)
RATE_STORE = (
    "http_req_rate(10s),http_req_cnt,http_err_cnt,http_err_rate(10s),conn_cnt,conn_cur,"
    "conn_rate(10s),sess_cnt,bytes_in_cnt,bytes_out_cnt,gpc0,gpt0"
)


def test_sc_http_req_rate_denies_the_sixth_request_like_haproxy(lab: Lab, ns: str) -> None:
    pair = Pair(lab, ns, RATE, vip=VIP, store=RATE_STORE)
    seen = {}
    for who, port in pair.ports.items():
        a = [http_get(ns, port, CLIENTS[0]) for _ in range(7)]
        b = [http_get(ns, port, CLIENTS[1], "/missing") for _ in range(3)]
        seen[who] = (a, b)
    assert seen["nsproxy"] == seen["haproxy"]
    assert seen["nsproxy"] == ([200] * 5 + [429, 429], [404] * 3)
    ours, theirs = pair.table("nsproxy", "fe"), pair.table("haproxy", "fe")
    assert ours == theirs
    assert "http_req_cnt=7 http_req_rate(10000)=7 http_err_cnt=2" in ours


CONN = (
    "global\n  stats socket {stats} level admin\ndefaults\n  mode tcp\n"
    + TIMEOUTS
    + """frontend fe
  bind {vip}:{port} namespace {ns}
  stick-table type ip size 1k expire 30s store {store}
  tcp-request connection track-sc1 src
  tcp-request connection reject if {{ sc1_conn_rate gt 3 }}
  tcp-request content sc-inc-gpc0(1) if {{ src_conn_cnt ge 2 }}
  default_backend be
backend be
  server s {vip}:{p} namespace {ns}
"""
)


def test_connection_tracking_rejects_and_counts_like_haproxy(lab: Lab, ns: str) -> None:
    sink = lab.sink(ns, VIP, reply=b"hello")
    store = "conn_cnt,conn_cur,conn_rate(10s),sess_cnt,sess_rate(10s),gpc0,gpc0_rate(10s)"
    pair = Pair(lab, ns, CONN, vip=VIP, p=sink.port, store=store + ",bytes_in_cnt,bytes_out_cnt")
    seen = {}
    for who, port in pair.ports.items():
        seen[who] = [tcp_exchange(ns, port, CLIENTS[2], b"12345") for _ in range(5)]
    assert seen["nsproxy"] == seen["haproxy"]
    assert seen["nsproxy"] == [b"hello"] * 3 + [b""] * 2
    ours, theirs = pair.table("nsproxy", "fe"), pair.table("haproxy", "fe")
    assert ours == theirs
    assert "conn_cnt=5" in ours


# -- the real configurations ---------------------------------------------------------------
# Neutron's rate-limited metadata proxy (neutron/common/metadata.py), IPv4, with the listener
# in the test namespace and a plain HTTP server for the metadata agent's socket.
NEUTRON = """global
    maxconn     1024
    stats socket {stats} level admin

defaults
    mode http
    option http-server-close
    option forwardfor
    retries                 3
    timeout http-request    30s
    timeout connect         30s
    timeout client          32s
    timeout server          32s
    timeout http-keep-alive 30s

backend base_rate_limiter
    stick-table type ip size 10k expire 10s store http_req_rate(10s)

backend burst_rate_limiter
    stick-table type ip size 10k expire 10s store http_req_rate(1s)

listen listener
    bind {vip}:{port} namespace {ns}

    http-request track-sc0 src table base_rate_limiter
    http-request track-sc1 src table burst_rate_limiter
    http-request deny deny_status 429 if {{ src_http_req_rate(base_rate_limiter) gt 6 }}
    http-request deny deny_status 429 if {{ src_http_req_rate(burst_rate_limiter) gt 3 }}

    server metadata {vip}:{p} namespace {ns}
    http-request del-header X-Neutron-Router-ID
    http-request set-header X-Neutron-Network-ID 8d4d9dcb-0b6e-4a45-bd2f-3a3c0e0d2b71
"""

OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def test_neutron_rate_limited_metadata_proxy_behaves_like_haproxy(lab: Lab, ns: str) -> None:
    server = lab.sink(ns, VIP, reply=OK_RESPONSE)
    pair = Pair(lab, ns, NEUTRON, vip=VIP, p=server.port)
    seen = {}
    for who, port in pair.ports.items():
        burst = [http_get(ns, port, CLIENTS[3]) for _ in range(5)]
        other = [http_get(ns, port, CLIENTS[4]) for _ in range(2)]
        seen[who] = (burst, other)
    assert seen["nsproxy"] == seen["haproxy"]
    assert seen["nsproxy"] == ([200, 200, 200, 429, 429], [200, 200])
    for table in ("base_rate_limiter", "burst_rate_limiter"):
        assert pair.table("nsproxy", table) == pair.table("haproxy", table)


# Octavia's TCP listener with SOURCE_IP session persistence (combined_listeners templates),
# health checks off.
OCTAVIA = """global
    maxconn 1000
    stats socket {stats} level admin

defaults
    log global
    retries 3
    option redispatch
    option splice-request
    option splice-response
    option http-keep-alive

frontend 9d1ac0a7-5e80-4f3b-9c6f-2e7a3a0b1c11
    maxconn 50000
    bind {vip}:{port} namespace {ns}
    mode tcp
    default_backend 3f2c4b1e-8a9d-4c2b-a6f0-1e2d3c4b5a69:9d1ac0a7-5e80-4f3b-9c6f-2e7a3a0b1c11
    timeout client 50000

backend 3f2c4b1e-8a9d-4c2b-a6f0-1e2d3c4b5a69:9d1ac0a7-5e80-4f3b-9c6f-2e7a3a0b1c11
    mode tcp
    balance roundrobin
    stick-table type ip size 10k
    stick on src
    option allbackups
    timeout connect 5000
    timeout server 50000
    server 0b7e2e8a-1111-4c1d-9e0f-aaaaaaaaaaaa {vip}:{p1} namespace {ns} weight 1
    server 0b7e2e8a-2222-4c1d-9e0f-bbbbbbbbbbbb {vip}:{p2} namespace {ns} weight 1
"""


def test_octavia_tcp_source_ip_persistence_behaves_like_haproxy(lab: Lab, ns: str) -> None:
    sinks = [lab.sink(ns, VIP, reply=name) for name in (b"m1", b"m2")]
    pair = Pair(lab, ns, OCTAVIA, vip=VIP, p1=sinks[0].port, p2=sinks[1].port)
    seen = {}
    for who, port in pair.ports.items():
        seen[who] = [
            [tcp_exchange(ns, port, src).decode() for src in CLIENTS[:4]] for _ in range(3)
        ]
    assert seen["nsproxy"] == seen["haproxy"]
    rounds = seen["nsproxy"]
    assert rounds[0] == rounds[1] == rounds[2]
    assert sorted(set(rounds[0])) == ["m1", "m2"]
    name = "3f2c4b1e-8a9d-4c2b-a6f0-1e2d3c4b5a69:9d1ac0a7-5e80-4f3b-9c6f-2e7a3a0b1c11"
    assert pair.table("nsproxy", name) == pair.table("haproxy", name)


# Octavia's HTTP pool with APP_COOKIE persistence: the server's cookie is stored on the
# response, and requests carrying it go back to that server.
APP_COOKIE = (
    "global\n  stats socket {stats} level admin\ndefaults\n  mode http\n"
    + TIMEOUTS
    + """frontend fe
    bind {vip}:{port} namespace {ns}
    default_backend pool
backend pool
    balance roundrobin
    stick-table type string len 64 size 10k
    stick store-response res.cook(JSESSIONID)
    stick match req.cook(JSESSIONID)
    server m1 {vip}:{p1} namespace {ns}
    server m2 {vip}:{p2} namespace {ns}
"""
)


def _cookie_reply(name: str) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=sess-{name}\r\nContent-Length: 2\r\n"
        f"Connection: close\r\n\r\n{name}"
    ).encode()


def http_body(ns: str, port: int, src: str, cookie: str | None) -> str:
    """One request (with the session cookie, if any); the body of the answer."""
    extra = f"Cookie: JSESSIONID={cookie}\r\n" if cookie else ""
    with connect(ns, (VIP, port), source=(src, 0)) as c:
        c.sendall(f"GET / HTTP/1.1\r\nHost: lb\r\n{extra}Connection: close\r\n\r\n".encode())
        out = recv_all(c)
    return out.split(b"\r\n\r\n", 1)[1].decode()


def test_app_cookie_persistence_stores_on_response_like_haproxy(lab: Lab, ns: str) -> None:
    sinks = [lab.sink(ns, VIP, reply=_cookie_reply(n)) for n in ("m1", "m2")]
    pair = Pair(lab, ns, APP_COOKIE, vip=VIP, p1=sinks[0].port, p2=sinks[1].port)
    seen = {}
    for who, port in pair.ports.items():
        first = [http_body(ns, port, CLIENTS[0], None) for _ in range(2)]  # m1, then m2
        stuck = [http_body(ns, port, CLIENTS[0], "sess-m2") for _ in range(3)]
        unknown = http_body(ns, port, CLIENTS[0], "sess-none")
        seen[who] = (first, stuck, unknown)
    assert seen["nsproxy"] == seen["haproxy"]
    first, stuck, _ = seen["nsproxy"]
    assert sorted(first) == ["m1", "m2"]
    assert stuck == ["m2"] * 3
    assert pair.table("nsproxy", "pool") == pair.table("haproxy", "pool")
