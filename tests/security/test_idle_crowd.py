"""10,000 idle connections in one process do not stop an active tenant's transfer."""

from __future__ import annotations

import os
import socket
import time

from lab.netlab import Lab, connect, echo_through

IDLE = 10_000


def test_active_transfer_while_ten_thousand_connections_idle(lab: Lab) -> None:
    idle_ns, busy_ns = lab.netns("idle"), lab.netns("busy")
    echo = lab.sink(busy_ns, "127.0.0.1", 7000, echo=True)
    proxy = lab.proxy(
        f"""
global
  maxconn 12000
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
listen idle
  bind 127.0.0.1:80 namespace {idle_ns} accept-proxy backlog 4096
  server s 127.0.0.1:9 namespace {idle_ns}
listen busy
  bind 127.0.0.1:80 namespace {busy_ns}
  server s 127.0.0.1:7000 namespace {busy_ns}
"""
    )
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE):  # connected, waiting for a PROXY header that never comes
            idle.append(connect(idle_ns, ("127.0.0.1", 80)))
        deadline = time.monotonic() + 30
        while len(os.listdir(f"/proc/{proxy.proc.pid}/fd")) < IDLE:
            assert time.monotonic() < deadline, "the proxy did not accept every idle client"
            time.sleep(0.1)
        payload = os.urandom(8 * 1024 * 1024)
        got = echo_through(80, payload, ns=busy_ns)
        assert got == payload
        assert echo.wait_conns(1)[0].peer[0] == "127.0.0.1"
    finally:
        for s in idle:
            s.close()
