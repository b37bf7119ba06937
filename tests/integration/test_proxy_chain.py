"""PROXY protocol in the running proxy: NETNS TLV, accept-proxy, send-proxy, server '*'."""

from __future__ import annotations

import contextlib
import socket
import struct
import time

from lab.netlab import Lab, connect, free_port, recv_all, tcp_defaults

SIG = bytes.fromhex("0d0a0d0a000d0a515549540a")
DEFAULTS = tcp_defaults(client="3s")


def v2(src: tuple[str, int], dst: tuple[str, int], netns: bytes | None = None) -> bytes:
    """A PROXY v2 header for IPv4, written out by hand from the specification."""
    body = socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) + struct.pack("!HH", src[1], dst[1])
    if netns is not None:
        body += b"\x30" + struct.pack("!H", len(netns)) + netns
    return SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def test_seed_example_3_destination_and_namespace_from_proxy_header(lab: Lab) -> None:
    ns1, ns2 = lab.netns("netns1"), lab.netns("netns2")
    lab.iface(ns2, "eth1", "10.20.0.5/24")
    in_ns2 = lab.sink(ns2, "10.20.0.5", 8080, reply=b"ns2\n")
    lport = free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
namespace_list
 namespace {ns1}
 namespace {ns2}
frontend f_example
 bind 127.0.0.1:{lport} accept-proxy
 default_backend b_example
backend b_example
 mode tcp
 server snodes * namespace *
"""
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(v2(("10.9.9.9", 1234), ("10.20.0.5", 8080), ns2.encode()) + b"payload")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"ns2\n"
    conn = in_ns2.wait_conns(1)[0]
    conn.closed.wait(5)
    assert bytes(conn.data) == b"payload"
    out = proxy.wait_output("b_example/snodes")
    assert "10.9.9.9:1234 [" in out


def test_send_proxy_v2_carries_client_namespace_byte_exact(lab: Lab) -> None:
    ns_a, ns_b = lab.netns("a"), lab.netns("b")
    sink = lab.sink(ns_b, "127.0.0.1", 20901)
    lab.proxy(
        DEFAULTS
        + f"""
listen l
 bind 127.0.0.1:20001 namespace {ns_a}
 server s 127.0.0.1:20901 namespace {ns_b} send-proxy-v2
"""
    )
    with connect(ns_a, ("127.0.0.1", 20001), source=("127.0.0.1", 40001)) as c:
        c.sendall(b"data")
        c.shutdown(socket.SHUT_WR)
        recv_all(c)
    conn = sink.wait_conns(1)[0]
    conn.closed.wait(5)
    # the TLV names the client's namespace (a), never the server's (b)
    want = v2(("127.0.0.1", 40001), ("127.0.0.1", 20001), ns_a.encode()) + b"data"
    assert bytes(conn.data) == want


def test_send_proxy_v1_line(lab: Lab) -> None:
    ns = lab.netns("a")
    sink = lab.sink(None, "127.0.0.1", free_port())
    lab.proxy(
        DEFAULTS
        + f"""
listen l
 bind 127.0.0.1:20003 namespace {ns}
 server s 127.0.0.1:{sink.port} send-proxy
"""
    )
    with connect(ns, ("127.0.0.1", 20003), source=("127.0.0.1", 40003)) as c:
        c.shutdown(socket.SHUT_WR)
        recv_all(c)
    conn = sink.wait_conns(1)[0]
    conn.closed.wait(5)
    assert bytes(conn.data) == b"PROXY TCP4 127.0.0.1 127.0.0.1 40003 20003\r\n"


def test_header_split_over_segments_is_reassembled(lab: Lab) -> None:
    ns = lab.netns("t")
    sink = lab.sink(ns, "127.0.0.1", 7000, reply=b"ok\n")
    lport = free_port()
    lab.proxy(
        DEFAULTS
        + f"""
listen l
 bind 127.0.0.1:{lport} accept-proxy
 server s 127.0.0.1:7000 namespace {ns}
"""
    )
    header = v2(("192.0.2.1", 1111), ("127.0.0.1", 7000)) + b"after"
    with connect(None, ("127.0.0.1", lport)) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(header), 7):
            c.sendall(header[i : i + 7])
            time.sleep(0.05)
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"ok\n"
    conn = sink.wait_conns(1)[0]
    conn.closed.wait(5)
    assert bytes(conn.data) == b"after"


def test_invalid_header_rejected_logged_nothing_forwarded(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", free_port())
    lport = free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
listen t7
 bind 127.0.0.1:{lport} accept-proxy
 server s 127.0.0.1:{sink.port}
"""
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n")  # LF only: invalid
        try:
            got = recv_all(c)
        except ConnectionResetError:
            got = b""
        assert got == b""
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):
            recv_all(c)
    out = proxy.wait_output("does not look like")
    lines = [ln for ln in out.splitlines() if " t7/1: " in ln]
    assert lines[0].endswith("t7/1: Received an invalid PROXY protocol header")
    assert lines[1].endswith(
        "t7/1: Received something which does not look like a PROXY protocol header"
    )
    assert lines[0].startswith("127.0.0.1:")
    time.sleep(0.2)
    assert sink.conns == []


def test_unknown_netns_ignored_or_rejected(lab: Lab) -> None:
    ns = lab.netns("known")
    other = lab.netns("unlisted")
    lab.sink(other, "127.0.0.1", 7300, reply=b"WRONG\n")
    lab.sink(None, "127.0.0.1", 7300, reply=b"default\n")
    lab.sink(ns, "127.0.0.1", 7300, reply=b"known\n")
    lax, strict = free_port(), free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
namespace_list
 namespace {ns}
listen lax
 bind 127.0.0.1:{lax} accept-proxy
 server s * namespace *
listen strict
 bind 127.0.0.1:{strict} accept-proxy
 option reject-unknown-netns
 server s * namespace *
"""
    )
    hdr = v2(("10.1.2.3", 1234), ("127.0.0.1", 7300), other.encode())
    with connect(None, ("127.0.0.1", lax)) as c:
        c.sendall(hdr)
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"default\n"  # HAProxy's behaviour: fall back, never the unlisted
    with connect(None, ("127.0.0.1", strict)) as c:
        c.sendall(hdr)
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b""
    out = proxy.wait_output("Rejected unknown namespace")
    assert f"Ignored unknown namespace '{other}'" in out
    known = v2(("10.1.2.3", 1234), ("127.0.0.1", 7300), ns.encode())
    with connect(None, ("127.0.0.1", strict)) as c:
        c.sendall(known)
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"known\n"


def test_server_star_port_rules(lab: Lab) -> None:
    ns = lab.netns("p")
    fixed = lab.sink(ns, "127.0.0.1", 7400, reply=b"fixed\n")
    same = lab.sink(ns, "127.0.0.1", 7401, reply=b"same\n")
    plus = lab.sink(ns, "127.0.0.1", 7406, reply=b"plus\n")
    ports = [free_port() for _ in range(3)]
    lab.proxy(
        DEFAULTS
        + f"""
namespace_list
 namespace {ns}
listen a
 bind 127.0.0.1:{ports[0]} accept-proxy
 server s *:7400 namespace *
listen b
 bind 127.0.0.1:{ports[1]} accept-proxy
 server s * namespace *
listen c
 bind 127.0.0.1:{ports[2]} accept-proxy
 server s *:+5 namespace *
"""
    )
    for port, want in zip(ports, (b"fixed\n", b"same\n", b"plus\n"), strict=True):
        with connect(None, ("127.0.0.1", port)) as c:
            c.sendall(v2(("10.0.0.1", 5), ("127.0.0.1", 7401), ns.encode()))
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == want
    assert len(fixed.conns) == len(same.conns) == len(plus.conns) == 1


def test_server_star_without_header_does_not_loop(lab: Lab) -> None:
    lport = free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
listen loop
 bind 127.0.0.1:{lport}
 server s *
"""
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(b"x")
        assert recv_all(c) == b""
    out = proxy.wait_output("connection refused to avoid a loop")
    assert "connection refused to avoid a loop" in out
    assert out.count("loop/s") <= 2


def test_expect_proxy_only_for_matching_sources(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", free_port())
    lport = free_port()
    lab.proxy(
        DEFAULTS
        + f"""
frontend f
 bind 127.0.0.1:{lport}
 tcp-request connection expect-proxy layer4 if {{ src 127.0.0.2/32 }}
 default_backend b
backend b
 server s 127.0.0.1:{sink.port}
"""
    )
    line = b"PROXY TCP4 10.1.2.3 10.1.2.4 1 2\r\nrest"
    with connect(None, ("127.0.0.1", lport), source=("127.0.0.1", 0)) as c:
        c.sendall(line)
        c.shutdown(socket.SHUT_WR)
        recv_all(c)
    with connect(None, ("127.0.0.1", lport), source=("127.0.0.2", 0)) as c:
        c.sendall(line)
        c.shutdown(socket.SHUT_WR)
        recv_all(c)
    conns = sink.wait_conns(2)
    for conn in conns:
        conn.closed.wait(5)
    assert sorted(bytes(c.data) for c in conns) == sorted([line, b"rest"])
