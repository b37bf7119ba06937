"""A stream's one timer: the connect deadline passing after the connect is not a connect timeout."""

from __future__ import annotations

import time

from lab.netlab import Lab, connect, free_port, recv_all


def _proxy(lab: Lab, timeouts: str, server_port: int) -> tuple[object, int]:
    lport = free_port()
    proxy = lab.proxy(
        f"""
global
  log stdout format raw local0
defaults
  mode tcp
  log global
  option tcplog
  retries 0
{timeouts}
listen t
  bind 127.0.0.1:{lport}
  server s 127.0.0.1:{server_port}
"""
    )
    return proxy, lport


def _log_fields(proxy: object) -> list[str]:
    out = proxy.wait_output(" t t/s ")  # type: ignore[attr-defined]
    return next(ln for ln in out.splitlines() if " t t/s " in ln).split()


def test_connected_stream_outlives_its_connect_deadline_then_idles_out(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", free_port(), echo=True)
    proxy, lport = _proxy(
        lab, "  timeout connect 150ms\n  timeout client 900ms\n  timeout server 30s", sink.port
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(b"hello")
        time.sleep(0.4)  # past the connect deadline, inside the client timeout
        c.sendall(b" again")
        assert recv_all(c, timeout=10) == b"hello again"
    fields = _log_fields(proxy)
    assert fields[6] == "cD"  # idle client, not a connect timeout (sC)
    assert fields[5] == "11"  # bytes to the client


def test_activity_after_the_connect_deadline_pushes_the_idle_deadline(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", free_port(), echo=True)
    proxy, lport = _proxy(
        lab, "  timeout connect 100ms\n  timeout client 600ms\n  timeout server 600ms", sink.port
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        for _ in range(4):  # 4 x 300 ms of traffic: longer than one idle period in all
            c.sendall(b"x")
            time.sleep(0.3)
        assert recv_all(c, timeout=10) == b"xxxx"
    assert _log_fields(proxy)[6] in ("cD", "sD")
