"""Reloads with -sf and -x: listening sockets handed over, no connection attempt refused."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
from pathlib import Path

from lab.netlab import Lab, Proxy, connect, free_port, recv_all

RELOADS = 20
MAX_ATTEMPTS = 20000


def _config(sock: str, ns: str, port: int, pp_port: int, ns_port: int, srv_port: int) -> str:
    return f"""
global
  stats socket {sock} mode 600 level admin expose-fd listeners
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s  # the PROXY-header wait of `waiting` outlives 20 reloads
  timeout server 10s
frontend root
  bind 127.0.0.1:{port}
  bind 127.0.0.1:{pp_port} accept-proxy
  default_backend tenant
frontend inside
  bind 127.0.0.1:{ns_port} namespace {ns}
  default_backend tenant
backend tenant
  server echo 127.0.0.1:{srv_port} namespace {ns}
"""


def _listen_inode(port: int, ns: str | None = None) -> str:
    cmd = ["ss", "-Hltne", f"sport = :{port}"]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    found = re.findall(r"ino:(\d+)", out)
    assert len(found) == 1, out
    return found[0]


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


class Client(threading.Thread):
    """Opens connections through the proxy until told to stop (bounded) and counts failures."""

    def __init__(self, targets: list[tuple[str | None, tuple[str, int]]]) -> None:
        super().__init__(daemon=True)
        self.targets = targets
        self.stop = threading.Event()
        self.attempts = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set() and self.attempts < MAX_ATTEMPTS:
            ns, addr = self.targets[self.attempts % len(self.targets)]
            self.attempts += 1
            payload = f"hello {self.attempts}".encode()
            try:
                with connect(ns, addr, timeout=5) as c:
                    c.sendall(payload)
                    c.shutdown(socket.SHUT_WR)
                    got = recv_all(c, timeout=5)
                if got != payload:
                    self.failures.append(f"#{self.attempts}: got {got!r}")
            except OSError as exc:
                self.failures.append(f"#{self.attempts}: {exc!r}")


def test_twenty_reloads_under_load_lose_no_connection(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("tenant")
    sink = lab.sink(ns, "127.0.0.1", echo=True)
    sock = str(tmp_path / "admin.sock")
    port, pp_port, ns_port = free_port(), free_port(), free_port(ns)
    cfg = _config(sock, ns, port, pp_port, ns_port, sink.port)
    proxy = lab.proxy(cfg)
    inodes = {port: _listen_inode(port), ns_port: _listen_inode(ns_port, ns)}

    # Accepted by the first process, not yet connected: the PROXY header is still to come.
    waiting = connect(None, ("127.0.0.1", pp_port))
    client = Client([(None, ("127.0.0.1", port)), (ns, ("127.0.0.1", ns_port))])
    client.start()
    first = proxy
    try:
        for _ in range(RELOADS):
            old = proxy
            proxy = lab.proxy(cfg, extra_args=("-sf", str(old.proc.pid), "-x", sock))
            if old is not first:
                assert old.proc.wait(10) == 0
            assert inodes[port] in _socket_inodes(proxy.proc.pid)
            assert inodes[ns_port] in _socket_inodes(proxy.proc.pid)
    finally:
        client.stop.set()
        client.join(30)
    assert client.failures == []
    assert client.attempts > RELOADS
    assert _listen_inode(port) == inodes[port]

    assert first.proc.poll() is None  # soft-stopped, still serving its last connection
    waiting.sendall(b"PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\nlate")
    waiting.shutdown(socket.SHUT_WR)
    assert recv_all(waiting) == b"late"
    waiting.close()
    assert first.proc.wait(10) == 0
    assert "Proxies stopped" in first.output()


def test_reload_without_x_finds_the_expose_fd_socket(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("tenant")
    sink = lab.sink(ns, "127.0.0.1", echo=True)
    sock = str(tmp_path / "admin.sock")
    port, pp_port, ns_port = free_port(), free_port(), free_port(ns)
    cfg = _config(sock, ns, port, pp_port, ns_port, sink.port)
    old = lab.proxy(cfg)
    inode = _listen_inode(ns_port, ns)
    new = lab.proxy(cfg, extra_args=("-sf", str(old.proc.pid)))
    assert old.proc.wait(10) == 0
    assert inode in _socket_inodes(new.proc.pid)
    assert os.path.exists(sock)
    with connect(ns, ("127.0.0.1", ns_port)) as c:
        c.sendall(b"still")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"still"


def test_old_process_with_unix_listener_keeps_the_path(lab: Lab, tmp_path: Path) -> None:
    sink = lab.sink(None, "127.0.0.1", echo=True)
    sock, path = str(tmp_path / "admin.sock"), str(tmp_path / "front.sock")
    cfg = f"""
global
  stats socket {sock} level admin expose-fd listeners
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
listen app
  bind unix@{path}
  server s 127.0.0.1:{sink.port}
"""
    old = lab.proxy(cfg)
    ino = os.stat(path).st_ino
    new: Proxy = lab.proxy(cfg, extra_args=("-sf", str(old.proc.pid), "-x", sock))
    assert old.proc.wait(10) == 0
    assert os.stat(path).st_ino == ino
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(5)
        c.connect(path)
        c.sendall(b"unix")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"unix"
    assert new.proc.poll() is None
