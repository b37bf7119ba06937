"""Rules in the running proxy: SNI routing, routing by the client's namespace, content rules.

Each scenario runs the same configuration through HAProxy 2.6 and nsproxy where HAProxy can
run it, and compares what the servers receive and the tcplog lines.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import tempfile

from lab.netlab import Lab, Proxy, cli, connect, free_port, recv_all

LOG = "global\n  log stdout format raw local0\n"
DEFAULTS = (
    "defaults\n  mode tcp\n  log global\n  option tcplog\n  retries 0\n"
    "  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n"
)


def client_hello(sni: str, alpn: list[str] | None = None) -> bytes:
    """The bytes of a real TLS ClientHello for `sni` (Python's ssl, no connection made)."""
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def _route(port: int, payload: bytes, ns: str | None = None) -> bytes:
    """Sends `payload`, half-closes, returns what the chosen server answered."""
    with connect(ns, ("127.0.0.1", port)) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c)


def _both(lab: Lab, cfg: str) -> tuple[Proxy, int, int]:
    """nsproxy and HAProxy on the same configuration text (the port is substituted)."""
    np, hp = free_port(), free_port()
    proxy = lab.proxy(cfg.replace("@PORT@", str(np)))
    stats = os.path.join(tempfile.mkdtemp(), "stats")
    text = cfg.replace("@PORT@", str(hp)).replace(
        "global\n", f"global\n  stats socket {stats}\n", 1
    )
    lab.haproxy(text, stats)
    return proxy, np, hp


def test_sni_routing_forwards_the_whole_hello_to_the_backend_of_the_map(lab: Lab) -> None:
    """The OpenShift passthrough frontend: inspect-delay, hello type, SNI through map_reg."""
    a = lab.sink(None, "127.0.0.1", reply=b"A")
    b = lab.sink(None, "127.0.0.1", reply=b"B")
    dflt = lab.sink(None, "127.0.0.1", reply=b"D")
    d = tempfile.mkdtemp()
    mapfile = os.path.join(d, "sni.map")
    with open(mapfile, "w") as f:
        f.write("# passthrough routes\n^alpha\\.example\\.com$ be_a\n^.*\\.beta\\.test$ be_b\n")
    cfg = (
        LOG
        + DEFAULTS
        + f"""frontend public_ssl
  bind 127.0.0.1:@PORT@
  tcp-request inspect-delay 5s
  tcp-request content accept if {{ req_ssl_hello_type 1 }}
  use_backend %[req.ssl_sni,lower,map_reg({mapfile},be_default)]
  default_backend be_default
backend be_a
  server a 127.0.0.1:{a.port}
backend be_b
  server b 127.0.0.1:{b.port}
backend be_default
  server d 127.0.0.1:{dflt.port}
"""
    )
    proxy, np, hp = _both(lab, cfg)
    cases = [("Alpha.Example.com", b"A"), ("x.beta.test", b"B"), ("other.example", b"D")]
    for sni, want in cases:
        hello = client_hello(sni, ["h2", "http/1.1"])
        for port in (np, hp):
            assert _route(port, hello) == want, (sni, port)
    for sink, n in ((a, 2), (b, 2), (dflt, 2)):
        conns = sink.wait_conns(n)
        hellos = {bytes(c.data) for c in conns}
        assert len(hellos) == 1  # byte-exact, the same through both proxies
    # a ClientHello split in two segments still routes: the rules wait for the rest
    hello = client_hello("alpha.example.com")
    with connect(None, ("127.0.0.1", np)) as c:
        c.sendall(hello[:20])
        c.sendall(hello[20:])
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"A"
    lines = [ln for ln in proxy.wait_count(" public_ssl ", 4).splitlines() if " public_ssl " in ln]
    assert [ln.split()[3].split("/")[0] for ln in lines[:3]] == ["be_a", "be_b", "be_default"]


def test_each_tenant_namespace_reaches_its_own_backend_through_fc_netns(lab: Lab) -> None:
    """One frontend bound in two tenant namespaces with the same address, `be_%[fc_netns]`."""
    t1, t2 = lab.netns("t1"), lab.netns("t2")
    s1 = lab.sink(t1, "127.0.0.1", reply=b"tenant-1")
    s2 = lab.sink(t2, "127.0.0.1", reply=b"tenant-2")
    port = free_port()
    proxy = lab.proxy(
        LOG
        + DEFAULTS
        + f"""frontend tenants
  bind 127.0.0.1:{port} namespace {t1}
  bind 127.0.0.1:{port} namespace {t2}
  use_backend be_%[fc_netns]
backend be_{t1}
  server s 127.0.0.1:{s1.port} namespace {t1}
backend be_{t2}
  server s 127.0.0.1:{s2.port} namespace {t2}
"""
    )
    assert _route(port, b"hi", t1) == b"tenant-1"
    assert _route(port, b"hi", t2) == b"tenant-2"
    assert _route(port, b"again", t1) == b"tenant-1"
    out = proxy.wait_count(" tenants ", 3)
    assert f" tenants be_{t2}/s " in out


def test_content_reject_and_inspect_delay_like_haproxy(lab: Lab) -> None:
    """A rule that waits for 4 bytes: decisions, forwarded bytes and PR logs match HAProxy."""
    sink = lab.sink(None, "127.0.0.1", echo=True)
    cfg = (
        LOG
        + DEFAULTS
        + f"""listen l
  bind 127.0.0.1:@PORT@
  tcp-request inspect-delay 3s
  acl bad req.payload(0,4) -m str EVIL
  tcp-request content reject if bad
  tcp-request content accept if {{ req.len ge 4 }}
  server s 127.0.0.1:{sink.port}
"""
    )
    proxy, np, hp = _both(lab, cfg)
    for port in (np, hp):
        assert _route(port, b"GOOD and more") == b"GOOD and more"
        assert _route(port, b"EVIL payload") == b""
        with connect(None, ("127.0.0.1", port)) as c:  # 2 bytes, then 2 more: waits, then goes
            c.sendall(b"EV")
            c.sendall(b"IL")
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b""
    out = proxy.wait_count(" l l/", 3)
    terms = [ln.split()[6] for ln in out.splitlines() if " l l/" in ln or " l l/<NOSRV>" in ln]
    assert terms.count("PR") == 2
    assert sum(1 for c in sink.wait_conns(2) if bytes(c.data) == b"GOOD and more") == 2


def test_runtime_map_change_routes_the_next_connection(lab: Lab) -> None:
    """`add map` / `del map` through a real stats socket change routing without a reload."""
    a = lab.sink(None, "127.0.0.1", reply=b"A")
    b = lab.sink(None, "127.0.0.1", reply=b"B")
    d = tempfile.mkdtemp()
    mapfile = os.path.join(d, "src.map")
    with open(mapfile, "w") as f:
        f.write("# empty at start\n")
    sock = os.path.join(d, "admin.sock")
    port = free_port()
    lab.proxy(
        f"global\n  stats socket {sock} level admin\n"
        + DEFAULTS
        + f"""frontend fe
  bind 127.0.0.1:{port}
  use_backend %[src,map_ip({mapfile},be_a)]
backend be_a
  server a 127.0.0.1:{a.port}
backend be_b
  server b 127.0.0.1:{b.port}
"""
    )
    assert _route(port, b"x") == b"A"
    assert cli(sock, f"add map {mapfile} 127.0.0.0/8 be_b") == b"\n"
    assert b"127.0.0.0/8 be_b" in cli(sock, f"show map {mapfile}")
    assert _route(port, b"x") == b"B"
    assert cli(sock, f"del map {mapfile} 127.0.0.0/8") == b"\n"
    assert _route(port, b"x") == b"A"
    assert (
        cli(sock, "add map nosuch.map k v")
        == b"Unknown map identifier. Please use #<id> or <file>.\n\n"
    )
