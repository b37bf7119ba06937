"""Tenants added and removed through a real stats socket, without reload (runtime API)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from pathlib import Path

from lab.netlab import Lab, connect, recv_all
from lab.netlab import cli as raw_cli


def cli(path: str, text: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(text.encode() + b"\n")
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
    # HAProxy's CLI ends each answer with an empty line
    text = out.decode()
    assert text.endswith("\n"), text
    return text[:-1]


def test_add_and_remove_a_tenant_through_the_stats_socket(lab: Lab, tmp_path: Path) -> None:
    sock = str(tmp_path / "admin.sock")
    ns = lab.netns("late")
    lab.sink(ns, "127.0.0.1", 7000, reply=b"late tenant\n")
    lab.proxy(
        f"""
global
  stats socket {sock} mode 600 level admin
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend fe
  default_backend be
backend be
"""
    )
    assert cli(sock, f"add netns {ns}") == "New namespace registered.\n"
    assert cli(sock, f"add bind fe 127.0.0.1:80 namespace {ns}") == "New bind registered.\n"
    assert cli(sock, f"add server be/s1 127.0.0.1:7000 namespace {ns} enabled").startswith(
        "New server registered."
    )
    with connect(ns, ("127.0.0.1", 80)) as c:
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"late tenant\n"
    rows = [ln.split() for ln in cli(sock, "show netns").splitlines()[1:]]
    row = next(r for r in rows if r[0] == ns)
    assert row[1] == str(os.stat(f"/var/run/netns/{ns}").st_ino)
    assert row[3] == "1"  # total connections seen in this namespace

    assert cli(sock, f"del bind fe 127.0.0.1:80 namespace {ns}") == "Bind deleted.\n"
    # HAProxy 2.6 answers `del server` without its usual blank line
    assert cli(sock, "del server be/s1") == "Only servers in maintenance mode can be deleted."
    assert cli(sock, "del server be") == "Require 'backend/server'."
    assert cli(sock, "del server nope/s1") == "No such backend."
    cli(sock, "set server be/s1 state maint")
    assert cli(sock, "del server be/s1") == "Server deleted."
    assert cli(sock, f"del netns {ns}") == "Namespace deleted.\n"
    assert ns not in cli(sock, "show netns")
    try:
        connect(ns, ("127.0.0.1", 80), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused
    assert cli(sock, "show netns").startswith("# name")


def test_runtime_changes_need_admin_level(lab: Lab, tmp_path: Path) -> None:
    sock = str(tmp_path / "op.sock")
    lab.proxy(
        f"""
global
  stats socket {sock} level operator
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
backend be
"""
    )
    assert cli(sock, "add netns whatever") == "Permission denied\n"
    assert Path(sock).exists()


def test_show_netns_counts_errors_per_namespace(lab: Lab, tmp_path: Path) -> None:
    sock = str(tmp_path / "admin.sock")
    ns_a, ns_b = lab.netns("a"), lab.netns("b")
    lab.sink(ns_b, "127.0.0.1", 7000, reply=b"b\n")
    lab.proxy(
        f"""
global
  stats socket {sock} level admin
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
listen a
  bind 127.0.0.1:80 namespace {ns_a} accept-proxy
  server s 127.0.0.1:7000 namespace *
listen b
  bind 127.0.0.1:80 namespace {ns_b}
  server s 127.0.0.1:7000 namespace *
"""
    )
    with connect(ns_a, ("127.0.0.1", 80)) as c:  # a bad header in tenant a
        c.sendall(b"PROXY BOGUS\r\n")
        with contextlib.suppress(ConnectionResetError):
            recv_all(c)
    with connect(ns_b, ("127.0.0.1", 80)) as c:  # a good connection in tenant b
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"b\n"
    from nsproxy.proxy_protocol import Tlv, encode_v2

    with connect(ns_a, ("127.0.0.1", 80)) as c:  # arrives in a, a NETNS TLV moves it to b
        hdr = encode_v2(("10.0.0.1", 1), ("127.0.0.1", 7000), tlvs=[Tlv(0x30, ns_b.encode())])
        c.sendall(hdr)
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"b\n"
    text = cli(sock, "show netns")
    header = text.splitlines()[0][2:].split()
    rows = {r[0]: dict(zip(header, r, strict=True)) for r in map(str.split, text.splitlines()[1:])}
    assert rows[ns_a]["errors"] == "1" and rows[ns_a]["total_conns"] == "1"
    assert rows[ns_b]["errors"] == "0" and rows[ns_b]["total_conns"] == "2"
    assert rows[ns_a]["cur_conns"] == rows[ns_b]["cur_conns"] == "0"


ADD_SERVER_CASES = (
    "add server be/s1 127.0.0.1:7001",
    "add server nope/x 127.0.0.1:7001",
    "add server be 127.0.0.1:7001",
    "add server be/n0",
    "add server be/n1 127.0.0.1:7001 non-stick",
    "add server be/n2 127.0.0.1:7001 no-check",
    "add server be/n3 127.0.0.1:7001 id 1",
    "add server be/n4 127.0.0.1:7001 bogus",
    "add server be/n6 127.0.0.1:7001 weight 7 maxconn 3 send-proxy-v2 enabled",
    "get weight be/n6",
    "add server be/n7 127.0.0.1:7001 backup disabled",
    "add server be/n7 127.0.0.1:7001",
)


def test_add_server_options_and_errors_match_haproxy(lab: Lab, tmp_path: Path) -> None:
    """`add server` parses its options with the configuration's server keyword table and
    answers HAProxy 2.6's texts, byte for byte (the file name in `id` errors aside)."""

    def config(sock: str) -> str:
        return (
            f"global\n  stats socket {sock} level admin\n"
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5s\n"
            "  timeout server 5s\nbackend be\n  server s1 127.0.0.1:7000\n"
        )

    hsock, nsock = str(tmp_path / "h.sock"), str(tmp_path / "n.sock")
    lab.haproxy(config(hsock), hsock)
    proxy = lab.proxy(config(nsock))
    for line in ADD_SERVER_CASES:
        theirs = raw_cli(hsock, line).decode()
        ours = raw_cli(nsock, line).decode().replace(proxy.cfg, "CFG")
        assert ours == re.sub(r"at \S+\.cfg:", "at CFG:", theirs), line
    for sock in (hsock, nsock):  # n6: weight 7, ready; n7: in maintenance (`disabled`)
        state = raw_cli(sock, "show servers state be").decode().splitlines()
        row = {ln.split()[3]: ln.split() for ln in state[2:] if ln}
        assert row["n6"][6:9] == ["0", "7", "7"], sock
        assert row["n7"][6] != "0" and row["n7"][7:9] == ["1", "1"], sock


def _netns_fd_inodes(pid: int) -> set[int]:
    """The inodes of the namespaces a process holds open fds to."""
    nsfs = os.stat("/proc/self/ns/net").st_dev
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            st = os.stat(f"/proc/{pid}/fd/{fd}")
            if st.st_dev == nsfs:
                out.add(st.st_ino)
    return out


def test_a_namespace_name_that_is_not_utf8_is_handled_as_bytes(lab: Lab, tmp_path: Path) -> None:
    """`ip netns add` takes any bytes: such a name is added, shown, used by a NETNS TLV and
    deleted (its fd closed, no TLV selects it afterwards) like any other."""
    from nsproxy.proxy_protocol import Tlv, encode_v2

    sock = str(tmp_path / "admin.sock")
    ns = lab.netns("bad\udcff\udcfe")  # the bytes 0xff 0xfe in the name
    raw = os.fsencode(ns)
    echo = lab.sink(ns, "127.0.0.1", 7000, reply=b"inside\n")
    entry = lab.netns("entry")
    p = lab.proxy(
        f"""
global
  stats socket {sock} level admin
  log stdout format raw local0
defaults
  mode tcp
  log global
  option tcplog
  timeout connect 2s
  timeout client 5s
  timeout server 5s
listen l
  bind 127.0.0.1:80 namespace {entry} accept-proxy
  server s 127.0.0.1:{echo.port} namespace *
"""
    )
    assert raw_cli(sock, f"add netns {ns}") == b"New namespace registered.\n\n"
    rows = raw_cli(sock, "show netns").splitlines()[1:]
    row = next(r.split() for r in rows if r.startswith(raw + b" "))
    inode = os.stat(f"/var/run/netns/{ns}").st_ino
    assert row[1] == str(inode).encode()
    assert inode in _netns_fd_inodes(p.proc.pid)

    def via_tlv() -> bytes:
        hdr = encode_v2(("10.0.0.1", 1), ("127.0.0.1", 7000), tlvs=[Tlv(0x30, raw)])
        with connect(entry, ("127.0.0.1", 80)) as c:
            c.sendall(hdr)
            c.shutdown(socket.SHUT_WR)
            return recv_all(c)

    assert via_tlv() == b"inside\n"  # the TLV's bytes select the namespace
    assert raw_cli(sock, f"del netns {ns}") == b"Namespace deleted.\n\n"
    assert inode not in _netns_fd_inodes(p.proc.pid)
    assert raw not in raw_cli(sock, "show netns")
    via_tlv()
    p.wait_output("Ignored unknown namespace")
