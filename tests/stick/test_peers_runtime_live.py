"""Live peers sections: nsproxy and HAProxy 2.6 share entries both ways, and a reloaded
nsproxy (-sf) takes its predecessor's table over the local peer."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from haproxy_live import Haproxy, free_port, need_haproxy

from lab.netlab import Proxy, Sink, wait_until

PEERS = """
defaults
    mode tcp
    timeout client 5s
    timeout server 5s
    timeout connect 1s
peers mesh
    peer hap 127.0.0.1:{hap}
    peer nsp 127.0.0.1:{nsp}
    table pt type string len 16 size 100 expire 60s store gpc0
backend t
    stick-table type ip size 100 expire 60s peers mesh store server_id,gpc0,conn_rate(10s)
"""


def cli(path: str, text: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(text.encode() + b"\n")
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def gpc0(sock: str, table: str, key: str) -> int | None:
    m = re.search(r" gpc0=(\d+)", cli(sock, f"show table {table} key {key}"))
    return int(m.group(1)) if m else None


class Mesh:
    """HAProxy 2.6 (peer `hap`) and nsproxy (peer `nsp`, named by -L) in one peers section."""

    def __init__(self, tmp: Path) -> None:
        ports = {"hap": free_port(), "nsp": free_port()}
        self.sock = str(tmp / "nsp.sock")
        self.ours = Proxy(
            f"global\n    stats socket {self.sock} level admin\n" + PEERS.format(**ports),
            extra_args=("-L", "nsp"),
        )
        try:
            self.hap = Haproxy(
                "global\n    stats socket {SOCK} level admin\n    localpeer hap\n"
                + PEERS.format(**ports)
            )
        except BaseException:
            self.ours.stop()
            raise

    def close(self) -> None:
        self.ours.stop()
        self.hap.close()


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    m = Mesh(tmp_path)
    try:
        yield m
    finally:
        m.close()


@pytest.mark.parametrize(("table", "key"), [("t", "192.0.2.7"), ("mesh/pt", "alice")])
def test_entries_go_both_ways(mesh: Mesh, table: str, key: str) -> None:
    other = "10.9.9.9" if table == "t" else "bob"
    assert mesh.hap.cli(f"set table {table} key {key} data.gpc0 5") == "\n"
    wait_until(lambda: gpc0(mesh.sock, table, key) == 5, 10, "HAProxy's entry in nsproxy")
    assert cli(mesh.sock, f"set table {table} key {other} data.gpc0 9") == "\n"
    wait_until(lambda: gpc0(mesh.hap.sock, table, other) == 9, 10, "nsproxy's entry in HAProxy")
    # later changes follow on the live session, both ways
    mesh.hap.cli(f"set table {table} key {other} data.gpc0 11")
    wait_until(lambda: gpc0(mesh.sock, table, other) == 11, 10, "HAProxy's update in nsproxy")
    cli(mesh.sock, f"set table {table} key {key} data.gpc0 6")
    wait_until(lambda: gpc0(mesh.hap.sock, table, key) == 6, 10, "nsproxy's update in HAProxy")


def test_a_restarted_nsproxy_learns_from_haproxy(mesh: Mesh, tmp_path: Path) -> None:
    """A new process without predecessor asks a remote peer for a full resync."""
    mesh.hap.cli("set table t key 198.51.100.3 data.gpc0 3 data.server_id 2")
    mesh.ours.stop()
    ports = re.findall(r"127\.0\.0\.1:(\d+)", Path(mesh.hap.dir / "haproxy.cfg").read_text())
    sock = str(tmp_path / "again.sock")
    again = Proxy(
        f"global\n    stats socket {sock} level admin\n" + PEERS.format(hap=ports[0], nsp=ports[1]),
        extra_args=("-L", "nsp"),
    )
    try:
        wait_until(lambda: gpc0(sock, "t", "198.51.100.3") == 3, 15, "the resync from HAProxy")
        assert "server_id=2" in cli(sock, "show table t key 198.51.100.3")
    finally:
        again.stop()


def test_reload_keeps_the_table(tmp_path: Path) -> None:
    """`-sf OLDPID`: the old process teaches the new one over the local peer, then exits."""
    port = free_port()
    peers = PEERS.replace("    peer hap 127.0.0.1:{hap}\n", "").format(nsp=port)
    old_sock, new_sock = str(tmp_path / "old.sock"), str(tmp_path / "new.sock")
    old = Proxy(
        f"global\n    stats socket {old_sock} level admin\n" + peers, extra_args=("-L", "nsp")
    )
    new: Proxy | None = None
    try:
        for i in range(1, 51):
            cli(old_sock, f"set table t key 10.0.0.{i} data.gpc0 {i} data.server_id 1")
        cli(old_sock, "set table mesh/pt key carol data.gpc0 77")
        before = cli(old_sock, "show table t")
        new = Proxy(
            f"global\n    stats socket {new_sock} level admin\n" + peers,
            extra_args=("-L", "nsp", "-sf", str(old.proc.pid)),
        )
        # the new process is ready; the lesson follows the old one's soft stop
        wait_until(lambda: "used:50" in cli(new_sock, "show table t"), 10, "the old table")
        assert gpc0(new_sock, "mesh/pt", "carol") == 77
        ours = {
            ln.split(": ", 1)[1].split(" exp=")[0]
            for ln in cli(new_sock, "show table t").splitlines()[1:]
            if ln
        }
        theirs = {ln.split(": ", 1)[1].split(" exp=")[0] for ln in before.splitlines()[1:] if ln}
        assert ours == theirs
        # taught and confirmed, the old process leaves
        wait_until(lambda: old.proc.poll() is not None, 10, "the old process's exit")
        assert old.proc.returncode == 0
    finally:
        if new is not None:
            new.stop()
        old.stop()


def test_master_worker_reload_keeps_the_table(tmp_path: Path) -> None:
    """-W: on SIGUSR2 the old worker teaches the new one over the local peer."""
    port = free_port()
    peers = PEERS.replace("    peer hap 127.0.0.1:{hap}\n", "").format(nsp=port)
    master = str(tmp_path / "master.sock")
    p = Proxy(
        f"global\n    master-worker\n    stats socket {master} level admin\n" + peers,
        extra_args=("-L", "nsp"),
    )
    try:
        cli(master, "set table t key 10.1.0.1 data.gpc0 41")
        first = re.findall(r"^(\d+) +worker", cli(master, "show proc"), re.M)
        p.proc.send_signal(signal.SIGUSR2)

        def new_worker() -> bool:
            workers = re.findall(r"^(\d+) +worker", cli(master, "show proc"), re.M)
            return bool(workers) and workers != first

        wait_until(new_worker, 15, "the new worker")
        wait_until(lambda: gpc0(master, "t", "10.1.0.1") == 41, 10, "the table in the new worker")
        p.wait_output(f"Former worker ({first[0]}) exited with code 0")
    finally:
        p.stop()


def test_server_keys_from_haproxy_traffic(tmp_path: Path) -> None:
    """HAProxy's `stick on src` entries carry server_key through the session's dictionary
    (the value once, then its id): nsproxy learns every entry with its server name."""
    sink = Sink(None, "127.0.0.1", 0, reply=b"hi\n")
    ports = {"hap": free_port(), "nsp": free_port(), "fe": free_port()}
    common = """
defaults
    mode tcp
    timeout client 5s
    timeout server 5s
    timeout connect 1s
peers mesh
    peer hap 127.0.0.1:{hap}
    peer nsp 127.0.0.1:{nsp}
""".format(**ports)
    sock = str(tmp_path / "nsp.sock")
    ours = Proxy(
        f"global\n    stats socket {sock} level admin\n"
        + common
        + "backend l\n    stick-table type ip size 100 expire 60s peers mesh"
        " store server_id,server_key\n",
        extra_args=("-L", "nsp"),
    )
    hap: Haproxy | None = None
    try:
        hap = Haproxy(
            "global\n    stats socket {SOCK} level admin\n    localpeer hap\n"
            + common
            + f"listen l\n    bind 127.0.0.1:{ports['fe']}\n"
            "    stick-table type ip size 100 expire 60s peers mesh\n"
            "    stick on src\n"
            f"    server s1 127.0.0.1:{sink.port}\n"
        )
        sources = [f"127.0.0.{i}" for i in range(1, 6)]
        for src in sources:
            with socket.create_connection(("127.0.0.1", ports["fe"]), 5, (src, 0)) as c:
                assert c.recv(16) == b"hi\n"

        def learnt() -> bool:
            table = cli(sock, "show table l")
            return all(f"key={s} " in table for s in sources)

        wait_until(learnt, 15, "HAProxy's stick entries in nsproxy")
        for src in sources:
            assert "server_id=1 server_key=s1" in cli(sock, f"show table l key {src}")
    finally:
        if hap is not None:
            hap.close()
        ours.stop()
        sink.close()


def test_a_local_peer_address_in_use_stops_the_start_like_haproxy(tmp_path: Path) -> None:
    busy = socket.create_server(("127.0.0.1", 0))
    try:
        port = busy.getsockname()[1]
        cfg = tmp_path / "busy.cfg"
        cfg.write_text(
            "global\n    localpeer hap\n"
            + PEERS.replace("    peer nsp 127.0.0.1:{nsp}\n", "").format(hap=port)
        )
        runs = [
            subprocess.run(
                [*cmd, "-db", "-f", str(cfg)], capture_output=True, text=True, timeout=20
            )
            for cmd in ([need_haproxy()], [sys.executable, "-m", "nsproxy"])
        ]
    finally:
        busy.close()
    theirs, ours = (
        [ln.split(" : ", 1)[1] for ln in r.stderr.splitlines() if "[ALERT]" in ln] for r in runs
    )
    assert runs[0].returncode == runs[1].returncode == 1
    assert [re.sub(r"\[\S*haproxy\.main", "[nsproxy.main", a) for a in theirs] == ours
