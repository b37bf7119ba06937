"""Master-worker mode and `nbthread`: workers on the master's sockets, reloads, aggregate API."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
from pathlib import Path

from lab.netlab import Lab, Proxy, connect, free_port, recv_all

CONNECTIONS = 300
RELOADS = 3


def _config(cli_path: str, ns: str, port: int, srv: int, extra: str = "") -> str:
    return f"""
global
  stats socket {cli_path} mode 600 level admin
{extra}
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend tenant
  bind 127.0.0.1:{port} namespace {ns}
  default_backend echo
backend echo
  server e 127.0.0.1:{srv} namespace {ns}
"""


def _cli(path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        return recv_all(s).decode()


def _workers(path: str) -> tuple[list[int], list[int]]:
    """(current, old) worker PIDs from the master's `show proc`."""
    current: list[int] = []
    old: list[int] = []
    target = current
    for line in _cli(path, "show proc").splitlines():
        if line.startswith("# old workers"):
            target = old
        words = line.split()
        if len(words) > 1 and words[1] == "worker":
            target.append(int(words[0]))
    return current, old


def _info(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _echo(ns: str, port: int, payload: bytes) -> bytes:
    with connect(ns, ("127.0.0.1", port), timeout=5) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c, timeout=5)


class Client(threading.Thread):
    """Opens CONNECTIONS connections one after the other and records every failure."""

    def __init__(self, ns: str, port: int) -> None:
        super().__init__(daemon=True)
        self.ns, self.port = ns, port
        self.done = 0
        self.progress = threading.Condition()
        self.failures: list[str] = []

    def run(self) -> None:
        for i in range(CONNECTIONS):
            payload = f"hello {i}".encode()
            try:
                got = _echo(self.ns, self.port, payload)
                if got != payload:
                    self.failures.append(f"{i}: got {got!r}")
            except OSError as exc:
                self.failures.append(f"{i}: {exc!r}")
            with self.progress:
                self.done += 1
                self.progress.notify_all()

    def wait_done(self, n: int) -> None:
        with self.progress:
            self.progress.wait_for(lambda: self.done >= n or not self.is_alive(), timeout=60)


def test_master_worker_reloads_without_failed_connection(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("mw")
    sink = lab.sink(ns, "127.0.0.1", echo=True)
    port = free_port(ns)
    cli = str(tmp_path / "admin.sock")
    p = lab.proxy(_config(cli, ns, port, sink.port), extra_args=("-W",))
    master = p.proc.pid
    out = p.wait_output("Loading success.")
    assert "New worker (" in out
    first, _ = _workers(cli)
    assert len(first) == 1 and first[0] != master and _parent(first[0]) == master
    assert _echo(ns, port, b"ping") == b"ping"

    held = connect(ns, ("127.0.0.1", port))  # stays open, in the first worker, across reloads
    held.sendall(b"a")
    assert held.recv(1) == b"a"

    client = Client(ns, port)
    client.start()
    for n in range(1, RELOADS + 1):
        client.wait_done(n * CONNECTIONS // (RELOADS + 1))
        os.kill(master, signal.SIGUSR2)
        out = p.wait_count("Loading success.", n + 1)
        assert out.count("Loading success.") == n + 1, out
    client.join(60)
    assert not client.is_alive()
    assert client.done == CONNECTIONS
    assert client.failures == []

    current, old = _workers(cli)
    assert len(current) == 1 and first[0] not in current
    assert first[0] in old and _alive(first[0])  # still finishing the held connection
    held.sendall(b"b")
    assert held.recv(1) == b"b"
    held.shutdown(socket.SHUT_WR)
    assert recv_all(held) == b""
    held.close()
    out = p.wait_output(f"Former worker ({first[0]}) exited with code 0 (Exit)")
    assert f"Former worker ({first[0]}) exited with code 0 (Exit)" in out
    assert p.output().count("Reloading HAProxy") == RELOADS
    assert "Current worker" not in out

    assert p.stop() == 0
    assert not any(_alive(pid) for pid in (master, *first, *current))


def test_nbthread_spreads_connections_and_aggregates(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("nb")
    sink = lab.sink(ns, "127.0.0.1", echo=True)
    port = free_port(ns)
    cli = str(tmp_path / "admin.sock")
    p: Proxy = lab.proxy(_config(cli, ns, port, sink.port, "  nbthread 2"))
    master = p.proc.pid
    workers, _ = _workers(cli)
    assert len(workers) == 2 and all(_parent(w) == master for w in workers)

    per_worker = {w: 0 for w in workers}
    made = 0
    while made < 600 and not all(per_worker.values()):
        for _ in range(20):
            assert _echo(ns, port, b"x") == b"x"
            made += 1
        per_worker = {w: int(_info(_cli(cli, f"@!{w} show info"))["CumConns"]) for w in workers}
    assert all(per_worker.values()), per_worker
    assert sum(per_worker.values()) == made

    info = _info(_cli(cli, "show info"))
    assert info["CumConns"] == str(made)
    assert info["Nbthread"] == "2"
    assert info["Pid"] == str(master)
    stat = _cli(cli, "show stat").splitlines()
    columns = stat[0].lstrip("# ").split(",")
    frontend = next(
        dict(zip(columns, r.split(","), strict=True)) for r in stat if r.startswith("tenant,FRONT")
    )
    assert frontend["stot"] == str(made)
    netns = {r.split()[0]: r.split() for r in _cli(cli, "show netns").splitlines()[1:] if r}
    assert netns[ns][3] == str(made)  # total_conns over both workers

    # A server state change reaches every worker.
    assert _cli(cli, "set server echo/e state maint") == "\n"
    for w in workers:
        assert "MAINT" in _cli(cli, f"@!{w} show stat")

    assert p.stop() == 0
    assert not any(_alive(pid) for pid in (master, *workers))


def test_show_proc_has_haproxys_layout(lab: Lab, tmp_path: Path) -> None:
    """HAProxy 2.6's master `show proc`: padded header, `# workers`, `# old workers` only
    when there are some, `# programs`."""
    cli = str(tmp_path / "admin.sock")
    ns = lab.netns("t")
    sink = lab.sink(None, "127.0.0.1", reply=b"x")
    p = lab.proxy(_config(cli, ns, free_port(), sink.port), extra_args=("-W",))
    lines = _cli(cli, "show proc").splitlines()
    assert (
        lines[0]
        == "#<PID>          <type>          <reloads>       <uptime>        <version>      "
    )
    assert re.fullmatch(r"\d+ +master +0 \[failed: 0\] +\dd\d\dh\d\dm\d\ds +2\.6\.\S+", lines[1])
    assert lines[2] == "# workers"
    assert re.fullmatch(r"\d+ +worker +0 +\dd\d\dh\d\dm\d\ds +2\.6\.\S+", lines[3])
    assert lines[4:] == ["# programs", ""]
    assert p.proc.poll() is None
