"""Namespaces that change under a running proxy: deleted ones keep working, missing ones fail."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from lab.netlab import Lab, _setns, free_port, recv_all, sh

DEFAULTS = """
global
  log stdout format raw local0
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
"""


def socket_in_fd(nsfd: int) -> socket.socket:
    """A TCP socket made inside the namespace held open by `nsfd` (it may have no name now)."""
    box: list[socket.socket | BaseException] = []

    def work() -> None:
        try:
            _setns(nsfd)
            box.append(socket.socket())
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def test_deleted_namespace_keeps_its_listener_and_servers_working(lab: Lab) -> None:
    ns = lab.netns("doomed")
    sink = lab.sink(ns, "127.0.0.1", 7700, echo=True)
    port = free_port(ns)
    proxy = lab.proxy(
        DEFAULTS
        + f"""
listen l
  bind 127.0.0.1:{port} namespace {ns}
  server s 127.0.0.1:7700 namespace {ns}
"""
    )
    nsfd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        sh("ip", "netns", "del", ns)
        assert not os.path.exists(f"/var/run/netns/{ns}")
        for i in range(3):  # new connections: the listener and new server sockets still work
            with socket_in_fd(nsfd) as c:
                c.settimeout(5)
                c.connect(("127.0.0.1", port))
                c.sendall(b"still here %d" % i)
                c.shutdown(socket.SHUT_WR)
                assert recv_all(c) == b"still here %d" % i
        assert len(sink.wait_conns(3)) == 3
        assert proxy.proc.poll() is None
    finally:
        os.close(nsfd)


def test_namespace_missing_at_startup_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "missing.cfg"
    cfg.write_text(
        DEFAULTS
        + """
listen l
  bind 127.0.0.1:1 namespace nsp-does-not-exist
  server s 127.0.0.1:2
"""
    )
    line = DEFAULTS.count("\n") + 3
    for flags in (["-c"], ["-db"]):
        res = subprocess.run(
            [sys.executable, "-m", "nsproxy", *flags, "-f", str(cfg)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert res.returncode != 0
        assert "Cannot open namespace 'nsp-does-not-exist'" in res.stderr
        assert f"[{cfg}:{line}]" in res.stderr


def test_namespace_deletion_is_logged_and_reported(lab: Lab, tmp_path: Path) -> None:
    sock = str(tmp_path / "admin.sock")
    ns = lab.netns("leaving")
    lab.sink(ns, "127.0.0.1", 7000, reply=b"still here\n")
    proxy = lab.proxy(
        f"""
global
  stats socket {sock} level admin
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
listen l
  bind 127.0.0.1:80 namespace {ns}
  server s 127.0.0.1:7000 namespace {ns}
"""
    )

    def show_netns() -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(sock)
            s.sendall(b"show netns\n")
            out = b""
            while chunk := s.recv(4096):
                out += chunk
        return out.decode()

    assert f"{ns} " in show_netns() and show_netns().split("\n")[1].endswith(" present")
    # keep a handle so the test can still reach the namespace after `ip netns del`
    holder = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        subprocess.run(["ip", "netns", "del", ns], check=True)
        out = proxy.wait_output("was removed from")
        assert f"Namespace '{ns}' was removed from /var/run/netns" in out
        row = next(ln for ln in show_netns().splitlines() if ln.startswith(ns + " "))
        assert row.endswith(" deleted")
    finally:
        os.close(holder)
