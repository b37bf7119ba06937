"""HTTP fetches in a `mode tcp` frontend: the buffered bytes parsed as an HTTP/1 request.

Each scenario runs the same configuration through HAProxy 2.6 and nsproxy and compares what
the client gets back, what the servers receive (TCP mode forwards the bytes unchanged) and
how long an unfinished head is waited for.
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time

from lab.netlab import Lab, Proxy, connect, free_port, recv_all

HEAD = (
    "global\n  log stdout format raw local0\n"
    "defaults\n  mode tcp\n  log global\n  option tcplog\n  retries 0\n"
    "  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n"
)


def _both(lab: Lab, cfg: str) -> tuple[Proxy, list[int]]:
    """nsproxy and HAProxy on the same configuration text (the port is substituted)."""
    np, hp = free_port(), free_port()
    proxy = lab.proxy(cfg.replace("@PORT@", str(np)))
    stats = os.path.join(tempfile.mkdtemp(), "stats")
    text = cfg.replace("@PORT@", str(hp)).replace(
        "global\n", f"global\n  stats socket {stats}\n", 1
    )
    lab.haproxy(text, stats)
    return proxy, [np, hp]


def _send(port: int, *parts: bytes, shut: bool = True) -> tuple[bytes, float]:
    """Sends each part in its own write, half-closes if `shut`; (answer, seconds it took)."""
    t0 = time.monotonic()
    with connect(None, ("127.0.0.1", port)) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for p in parts:
            c.sendall(p)
        if shut:
            c.shutdown(socket.SHUT_WR)
        out = recv_all(c)
    return out, time.monotonic() - t0


GET = b"GET /index.html?a=1 HTTP/1.1\r\nHost: www.example.com\r\nCookie: s=1\r\n\r\n"
# What HAProxy 2.6 takes as HTTP in TCP mode, and what it refuses (measured).
HTTP_OK = [
    GET,
    b"GET / HTTP/1.0\r\n\r\nBODY after the head",
    b"get /x HTTP/1.1\r\n\r\n",
    b"GET /\r\n\r\n",  # HTTP/0.9 form
    b"GET / FOO/1.1\r\n\r\n",  # any version text
    b"\r\nGET / HTTP/1.1\r\n\r\n",  # an empty line first
    b"GET / HTTP/1.1\nHost: a\n\n",
    b"GET http://h/y HTTP/1.1\r\nhost: h\r\n\r\n",
]
NOT_HTTP = [
    b"hello world\r\n\r\n",
    b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"GET /a#b HTTP/1.1\r\n\r\n",
    b"GE",  # unfinished, then the client closes
]


def _accept_if_http(delay_s: int, server_port: int) -> str:
    """A listener passing HTTP clients (`accept if HTTP`) and rejecting the rest."""
    return (
        HEAD
        + f"""listen l
  bind 127.0.0.1:@PORT@
  tcp-request inspect-delay {delay_s}s
  tcp-request content accept if HTTP
  tcp-request content reject
  server s 127.0.0.1:{server_port}
"""
    )


def test_accept_if_http_passes_http_clients_and_rejects_the_rest(lab: Lab) -> None:
    """`tcp-request content accept if HTTP` + `reject`: decisions and forwarded bytes."""
    sink = lab.sink(None, "127.0.0.1", echo=True)
    proxy, ports = _both(lab, _accept_if_http(3, sink.port))
    for port in ports:
        for payload in HTTP_OK:
            assert _send(port, payload)[0] == payload, (port, payload)
        for payload in NOT_HTTP:
            assert _send(port, payload)[0] == b"", (port, payload)
        # a head in two segments: the rule waits for the second
        split = (b"GET / HTTP/1.1\r\nHo", b"st: a\r\n\r\n")
        assert _send(port, *split)[0] == b"".join(split)
        # bytes that cannot start a request are refused at once, not after the delay
        out, took = _send(port, b"\x16\x03\x01\x00\x05hello", shut=False)
        assert out == b"" and took < 2.0, (port, took)
    n = len(HTTP_OK) + 1
    got = sorted(bytes(c.data) for c in sink.wait_conns(2 * n))
    assert got == sorted([*HTTP_OK, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"] * 2)
    rejected = len(NOT_HTTP) + 1
    out = proxy.wait_count(" l l/<NOSRV> ", rejected)
    assert sum(" PR " in ln for ln in out.splitlines()) == rejected


def test_unfinished_head_waits_for_the_inspect_delay_then_fails(lab: Lab) -> None:
    """Without its end, a head keeps the HTTP ACL undecided until the inspect-delay ends."""
    sink = lab.sink(None, "127.0.0.1", echo=True)
    _, ports = _both(lab, _accept_if_http(1, sink.port))
    for port in ports:
        for partial in (b"GET / HTTP/1.1\r\nHost", b"XXXXX"):
            out, took = _send(port, partial, shut=False)
            assert out == b"" and 0.9 <= took < 3.0, (port, partial, took)


def test_use_backend_by_host_header_and_path_in_a_tcp_frontend(lab: Lab) -> None:
    """`use_backend be_%[req.hdr(host),lower]` and `if { path_beg /x }` route TCP streams;
    `capture.req.method` finds nothing there (only HTTP mode captures the request line)."""
    a = lab.sink(None, "127.0.0.1", reply=b"A")
    x = lab.sink(None, "127.0.0.1", reply=b"X")
    d = lab.sink(None, "127.0.0.1", reply=b"D")
    g = lab.sink(None, "127.0.0.1", reply=b"G")
    cfg = (
        HEAD
        + f"""frontend f
  bind 127.0.0.1:@PORT@
  tcp-request inspect-delay 3s
  tcp-request content accept if HTTP
  use_backend be_x if {{ path_beg /x }}
  use_backend be_%[capture.req.method,lower] if {{ capture.req.method -m found }}
  use_backend be_%[req.hdr(host),lower]
  default_backend be_d
backend be_get
  server g 127.0.0.1:{g.port}
backend be_x
  server x 127.0.0.1:{x.port}
backend be_a
  server a 127.0.0.1:{a.port}
backend be_d
  server d 127.0.0.1:{d.port}
"""
    )
    _, ports = _both(lab, cfg)
    cases = [
        (b"GET /x/1 HTTP/1.1\r\nHost: A\r\n\r\n", b"X"),
        (b"GET / HTTP/1.1\r\nHost: A\r\n\r\n", b"A"),
        (b"GET / HTTP/1.1\r\nHost: zz\r\n\r\n", b"D"),
        (b"GET / HTTP/1.1\r\n\r\n", b"D"),
        (b"hello\r\n\r\n", b"D"),
    ]
    for port in ports:
        for payload, want in cases:
            assert _send(port, payload)[0] == want, (port, payload)
        split = (b"GET / HTTP/1.1\r\nHo", b"st: a\r\n\r\n")
        assert _send(port, *split)[0] == b"A", port
    assert sorted(bytes(c.data) for c in a.wait_conns(4)) == sorted(
        [b"GET / HTTP/1.1\r\nHost: A\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"] * 2
    )
    assert [bytes(c.data) for c in x.wait_conns(2)] == [cases[0][0]] * 2


def _sent_while_stopped(pid: int, port: int, payload: bytes) -> bytes:
    """`payload` sent and half-closed while process `pid` is stopped: when it resumes, the
    connection and its bytes are both already there. Returns the answer."""
    os.kill(pid, signal.SIGSTOP)
    try:
        c = connect(None, ("127.0.0.1", port))
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
    finally:
        os.kill(pid, signal.SIGCONT)
    with c:
        return recv_all(c)


def test_rules_without_inspect_delay_see_the_bytes_already_sent(lab: Lab) -> None:
    """No inspect-delay: `use_backend` runs at once, on what the client had sent before its
    connection was taken up (HAProxy's stream reads before its first analysis)."""
    a = lab.sink(None, "127.0.0.1", reply=b"A")
    d = lab.sink(None, "127.0.0.1", reply=b"D")
    cfg = (
        HEAD
        + f"""frontend f
  bind 127.0.0.1:@PORT@
  use_backend be_%[req.hdr(host),lower]
  default_backend be_d
backend be_a
  server a 127.0.0.1:{a.port}
backend be_d
  server d 127.0.0.1:{d.port}
"""
    )
    np, hp = free_port(), free_port()
    proxy = lab.proxy(cfg.replace("@PORT@", str(np)))
    stats = os.path.join(tempfile.mkdtemp(), "stats")
    text = cfg.replace("@PORT@", str(hp)).replace(
        "global\n", f"global\n  stats socket {stats}\n", 1
    )
    haproxy = lab.haproxy(text, stats)
    for pid, port in ((proxy.proc.pid, np), (haproxy.pid, hp)):
        for host, want in ((b"A", b"A"), (b"other", b"D")):
            req = b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
            assert _sent_while_stopped(pid, port, req) == want, (port, host)
