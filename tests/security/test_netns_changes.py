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
