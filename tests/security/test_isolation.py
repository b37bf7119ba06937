"""Tenant isolation in real namespaces: no client reaches a namespace it was not given."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from pathlib import Path

from lab.netlab import Lab, connect, free_port, recv_all, tcp_defaults

SIG = bytes.fromhex("0d0a0d0a000d0a515549540a")
DEFAULTS = tcp_defaults(client="3s")


def v2(src: tuple[str, int], dst: tuple[str, int], *netns: bytes) -> bytes:
    """A PROXY v2 TCP4 header with one NETNS TLV per name, written out from the specification."""
    body = socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) + struct.pack("!HH", src[1], dst[1])
    for name in netns:
        body += b"\x30" + struct.pack("!H", len(name)) + name
    return SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def exchange(port: int, data: bytes) -> bytes:
    with connect(None, ("127.0.0.1", port)) as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        try:
            return recv_all(c)
        except ConnectionResetError:
            return b""


def test_netns_tlv_never_reaches_a_namespace_missing_from_the_config(lab: Lab) -> None:
    listed = lab.netns("listed")
    hidden = lab.netns("hidden")  # exists on the host, named nowhere in the configuration
    port = 7400
    forbidden = lab.sink(hidden, "127.0.0.1", port, reply=b"HIDDEN\n")
    lab.sink(listed, "127.0.0.1", port, reply=b"listed\n")
    lab.sink(None, "127.0.0.1", port, reply=b"default\n")
    lax, strict = free_port(), free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
namespace_list
  namespace {listed}
listen lax
  bind 127.0.0.1:{lax} accept-proxy
  server s * namespace *
listen strict
  bind 127.0.0.1:{strict} accept-proxy
  option reject-unknown-netns
  server s * namespace *
"""
    )
    h = hidden.encode()
    spellings = [
        h,
        h + b"\x00",
        b"./" + h,
        b"../netns/" + h,
        b"/var/run/netns/" + h,
        listed.encode() + b"/../" + h,
        h.upper(),
        h + b" ",
    ]
    addrs = (("10.1.2.3", 1234), ("127.0.0.1", port))
    for name in spellings:
        assert exchange(lax, v2(*addrs, name) + b"data") == b"default\n"
        assert exchange(strict, v2(*addrs, name) + b"data") == b""
        # a listed name followed by an unlisted one: the unlisted one is not used either
        assert exchange(lax, v2(*addrs, listed.encode(), name)) == b"listed\n"
    assert exchange(lax, v2(*addrs, listed.encode())) == b"listed\n"
    assert forbidden.conns == []
    out = proxy.wait_output("Rejected unknown namespace")
    assert f"Ignored unknown namespace '{hidden}'" in out


def test_proxy_header_without_accept_proxy_is_forwarded_as_data(lab: Lab) -> None:
    ns = lab.netns("plain")
    other = lab.netns("other")
    sink = lab.sink(ns, "127.0.0.1", 7500)
    trap = lab.sink(other, "127.0.0.1", 7500, reply=b"TRAP\n")
    port = free_port()
    lab.proxy(
        DEFAULTS
        + f"""
namespace_list
  namespace {other}
listen l
  bind 127.0.0.1:{port}
  server s 127.0.0.1:7500 namespace {ns}
"""
    )
    header = v2(("10.9.9.9", 1), ("127.0.0.1", 7500), other.encode())
    v1 = b"PROXY TCP4 10.9.9.9 127.0.0.1 1 7500\r\n"
    assert exchange(port, header + b"after") == b""
    assert exchange(port, v1 + b"after") == b""
    conns = sink.wait_conns(2)
    for c in conns:
        c.closed.wait(5)
    assert sorted(bytes(c.data) for c in conns) == sorted([header + b"after", v1 + b"after"])
    assert all(c.peer[0] == "127.0.0.1" for c in conns)  # the header's 10.9.9.9 is not used
    assert trap.conns == []


def test_namespace_star_without_any_namespace_uses_the_default_one(lab: Lab) -> None:
    tenant = lab.netns("tenant")
    lab.sink(tenant, "127.0.0.1", 7600, reply=b"TENANT\n")
    lab.sink(None, "127.0.0.1", 7600, reply=b"default\n")
    pp, plain = free_port(), free_port()
    lab.proxy(
        DEFAULTS
        + f"""
namespace_list
  namespace {tenant}
listen pp
  bind 127.0.0.1:{pp} accept-proxy
  server s * namespace *
listen plain
  bind 127.0.0.1:{plain}
  server s 127.0.0.1:7600 namespace *
"""
    )
    addrs = (("10.1.1.1", 999), ("127.0.0.1", 7600))
    assert exchange(pp, v2(*addrs)) == b"default\n"  # a header with no NETNS TLV
    assert exchange(pp, b"PROXY TCP4 10.1.1.1 127.0.0.1 999 7600\r\n") == b"default\n"
    assert exchange(plain, b"") == b"default\n"  # no header at all


def test_bad_namespace_names_refused_by_check_with_file_and_line(tmp_path: Path) -> None:
    long = "n" * 256
    bad = ["a/b", "..", ".", long, "../etc", "x\\x00y"]
    lines = ["namespace_list"]
    where: dict[str, int] = {}
    for name in bad:
        lines.append(f"  namespace {name}")
        where[f"namespace_list {name}"] = len(lines)
    lines += ["frontend f", "  bind 127.0.0.1:1", "  default_backend b"]
    for name in ("..", "a/b", long):
        lines.append(f"  bind 127.0.0.1:2 namespace {name}")
        where[f"bind {name}"] = len(lines)
    lines += ["backend b"]
    for i, name in enumerate(("..", "a/b", long)):
        lines.append(f"  server s{i} 127.0.0.1:3 namespace {name}")
        where[f"server {name}"] = len(lines)
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    res = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode != 0
    assert "Configuration file is valid" not in res.stdout
    for what, line in where.items():
        assert f"{cfg}:{line}]" in res.stderr, (what, res.stderr)
