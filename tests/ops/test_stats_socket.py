"""The runtime API through real UNIX and TCP sockets of a real nsproxy process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from lab.netlab import Lab, connect, free_port, recv_all, tcp_defaults, unix_listening, wait_until

DEFAULTS = tcp_defaults(tcplog=False)


def cli(addr: str | tuple[str, int], text: str, timeout: float = 5.0) -> str:
    """Sends one line to a stats socket and reads the answer until the server closes."""
    family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(text.encode() + b"\n")
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def _exchange(c: socket.socket, payload: bytes = b"ping") -> bytes:
    c.sendall(payload)
    c.shutdown(socket.SHUT_WR)
    return recv_all(c)


def _csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    lines = [ln for ln in text.splitlines() if ln]
    header = lines[0][2:].rstrip(",").split(",")
    rows = [dict(zip(header, ln.rstrip(",").split(","), strict=False)) for ln in lines[1:]]
    return header, rows


def _haproxy_stat_header(tmp: Path) -> str:
    sock = str(tmp / "haproxy.sock")
    cfg = tmp / "haproxy.cfg"
    port = free_port()
    cfg.write_text(
        f"global\n  stats socket {sock} level admin\n"
        + DEFAULTS
        + f"listen l\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:9\n"
    )
    proc = subprocess.Popen(["/usr/sbin/haproxy", "-db", "-f", str(cfg)], stderr=subprocess.PIPE)
    try:
        wait_until(lambda: unix_listening(str(sock), proc.pid), 4, "HAProxy's stats socket")
        return cli(sock, "show stat").splitlines()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_show_stat_has_haproxys_columns_and_live_rows(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("tenant")
    s1 = lab.sink(ns, "127.0.0.1", reply=b"one\n")
    s2 = lab.sink(None, "127.0.0.1", reply=b"two\n")
    sock = str(tmp_path / "admin.sock")
    port = free_port()
    lab.proxy(
        f"global\n  stats socket {sock} mode 600 level admin\n"
        + DEFAULTS
        + f"""
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  balance roundrobin
  server s1 127.0.0.1:{s1.port} namespace {ns}
  server s2 127.0.0.1:{s2.port} weight 3
"""
    )
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
    for _ in range(4):
        with connect(None, ("127.0.0.1", port)) as c:
            assert _exchange(c, b"hello") in (b"one\n", b"two\n")
    text = cli(sock, "show stat")
    assert text.endswith("\n\n")
    header, rows = _csv(text)
    if os.path.exists("/usr/sbin/haproxy"):
        assert text.splitlines()[0] == _haproxy_stat_header(tmp_path)
    assert header[:4] == ["pxname", "svname", "qcur", "qmax"] and header[8:10] == ["bin", "bout"]
    assert [(r["pxname"], r["svname"]) for r in rows] == [
        ("fe", "FRONTEND"),
        ("be", "s1"),
        ("be", "s2"),
        ("be", "BACKEND"),
    ]
    fe, r1, r2, be = rows
    assert fe["status"] == "OPEN" and fe["stot"] == "4" and fe["scur"] == "0"
    assert fe["bin"] == "20" and fe["bout"] == "16"
    assert int(r1["stot"]) + int(r2["stot"]) == 4 and r1["stot"] == "1"
    assert r2["weight"] == "3" and r1["status"] == "no check"
    assert r1["addr"] == f"127.0.0.1:{s1.port}"
    assert be["stot"] == "4" and be["status"] == "UP" and be["act"] == "2"
    assert be["weight"] == "4" and be["algo"] == "roundrobin"
    assert be["bin"] == "20" and be["bout"] == "16"
    pid = cli(sock, "show info").split("Pid: ")[1].split()[0]
    assert {r["pid"] for r in rows} == {pid}


def test_show_netns_counts_per_namespace(lab: Lab, tmp_path: Path) -> None:
    a, b = lab.netns("a"), lab.netns("b")
    sink = lab.sink(None, "127.0.0.1", reply=b"r")
    sock = str(tmp_path / "s.sock")
    pa, pb = free_port(a), free_port(b)
    lab.proxy(
        f"global\n  stats socket {sock} level user\n"
        + DEFAULTS
        + f"""
frontend fa
  bind 127.0.0.1:{pa} namespace {a}
  default_backend be
frontend fb
  bind 127.0.0.1:{pb} namespace {b}
  default_backend be
backend be
  server s 127.0.0.1:{sink.port}
"""
    )
    for _ in range(3):
        with connect(a, ("127.0.0.1", pa)) as c:
            assert _exchange(c, b"12345") == b"r"
    held = connect(b, ("127.0.0.1", pb))
    held.sendall(b"xy")
    try:

        def settled() -> tuple[list[str], dict[str, list[str]]] | None:
            lines = cli(sock, "show netns").splitlines()
            table = {ln.split()[0]: ln.split() for ln in lines[1:] if ln}
            if table.get(b, ["", "", "0"])[2] == "1" and table[b][4] == "2":
                return lines, table
            return None

        lines, table = wait_until(settled, 4, f"the held connection counted in {b}")
        assert lines[0].split()[:6] == [
            "#",
            "name",
            "inode",
            "cur_conns",
            "total_conns",
            "bytes_in",
        ]
        assert table[a][1] == str(os.stat(f"/var/run/netns/{a}").st_ino)
        assert table[a][2:6] == ["0", "3", "15", "3"]
        assert table[b][2:5] == ["1", "1", "2"]
        assert table[a][6] == "1"
    finally:
        held.close()


def test_levels_and_drain_a_server(lab: Lab, tmp_path: Path) -> None:
    s1 = lab.sink(None, "127.0.0.1", reply=b"one\n")
    s2 = lab.sink(None, "127.0.0.1", reply=b"two\n")
    admin, oper, user = (str(tmp_path / f"{n}.sock") for n in ("admin", "oper", "user"))
    tcp_port = free_port()
    port = free_port()
    lab.proxy(
        f"""
global
  stats socket {admin} level admin
  stats socket {oper}
  stats socket {user} level user
  stats socket ipv4@127.0.0.1:{tcp_port} level user
"""
        + DEFAULTS
        + f"""
listen app
  bind 127.0.0.1:{port}
  server s1 127.0.0.1:{s1.port}
  server s2 127.0.0.1:{s2.port}
"""
    )

    def served(n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            with connect(None, ("127.0.0.1", port)) as c:
                out.append(_exchange(c))
        return out

    assert cli(oper, "show cli level") == "operator\n\n"
    assert cli(("127.0.0.1", tcp_port), "show cli level") == "user\n\n"
    assert cli(user, "set server app/s1 state drain") == "Permission denied\n\n"
    assert cli(oper, "disable server app/s1") == "Permission denied\n\n"
    assert cli(user, "show sess") == "Permission denied\n\n"
    assert set(served(4)) == {b"one\n", b"two\n"}

    assert cli(admin, "set server app/s1 state drain") == "\n"
    state = cli(oper, "show servers state app").splitlines()
    assert state[0] == "1" and state[1].startswith("# be_id be_name srv_id srv_name")
    s1_state = state[2].split()
    assert s1_state[3] == "s1" and s1_state[6] == "8"
    assert served(4) == [b"two\n"] * 4
    assert "DRAIN" in cli(user, "show stat")

    assert cli(admin, "set server app/s1 state ready;set server app/s2 state maint") == "\n\n"
    assert served(3) == [b"one\n"] * 3
    assert cli(admin, "enable server app/s2; disable server app/s1") == "\n\n"
    assert served(3) == [b"two\n"] * 3
    assert cli(admin, "enable server app/s1") == "\n"
    assert cli(admin, "set server app/s2 weight 0") == "\n"
    assert served(3) == [b"one\n"] * 3
    assert cli(admin, "get weight app/s2") == "0 (initial 1)\n\n"
    assert cli(admin, "set server app/s2 weight 300") == (
        "Absolute weight can only be between 0 and 256 inclusive.\n\n"
    )
    assert cli(admin, "set server app/s2 state up") == (
        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
    )
    assert cli(admin, "set server app/nope state ready") == "No such server.\n\n"
    assert cli(admin, "set server nope/s1 state ready") == "No such backend.\n\n"
    assert cli(admin, "disable server s1") == "Require 'backend/server'.\n\n"


def test_show_sess_prompt_help_and_unknown(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("t")
    sink = lab.sink(ns, "127.0.0.1")
    sock = str(tmp_path / "admin.sock")
    port = free_port()
    lab.proxy(
        f"global\n  stats socket {sock} level admin\n"
        + DEFAULTS
        + f"listen app\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:{sink.port} namespace {ns}\n"
    )
    held = connect(None, ("127.0.0.1", port))
    try:
        held.sendall(b"x")
        sink.wait_conns(1)
        sess = cli(sock, "show sess")
        assert sess.count("proto=tcpv4") == 1
        assert " fe=app be=app srv=s " in sess and "netns=-" in sess
    finally:
        held.close()

    helptext = cli(sock, "help")
    assert helptext.startswith("The following commands are valid at this level:\n")
    for usage in ("show stat", "show netns", "set server <bk>/<srv>", "quit"):
        assert f"\n  {usage}" in helptext
    assert cli(sock, "bogus").startswith(
        "Unknown command. Please enter one of the following commands only:\n"
    )
    assert cli(sock, "show bogus").startswith("Unknown command, but maybe one of the following")

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(b"prompt\nshow cli level\nget weight app/s\nquit\n")
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
    assert out.decode() == "\n> admin\n\n> 1 (initial 1)\n\n> "
