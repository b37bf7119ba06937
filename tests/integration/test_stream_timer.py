"""A stream's one timer: the connect deadline passing after the connect is not a connect timeout."""

from __future__ import annotations

import time

from lab.netlab import Lab, connect, free_port, log_fields, recv_all, timeout_proxy


def test_connected_stream_outlives_its_connect_deadline_then_idles_out(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", free_port(), echo=True)
    proxy, lport = timeout_proxy(
        lab,
        "  timeout connect 150ms\n  timeout client 900ms\n  timeout server 30s",
        f"127.0.0.1:{sink.port}",
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(b"hello")
        time.sleep(0.4)  # past the connect deadline, inside the client timeout
        c.sendall(b" again")
        assert recv_all(c, timeout=10) == b"hello again"
    fields = log_fields(proxy)
    assert fields[6] == "cD"  # idle client, not a connect timeout (sC)
    assert fields[5] == "11"  # bytes to the client


def test_activity_after_the_connect_deadline_pushes_the_idle_deadline(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", free_port(), echo=True)
    proxy, lport = timeout_proxy(
        lab,
        "  timeout connect 100ms\n  timeout client 600ms\n  timeout server 600ms",
        f"127.0.0.1:{sink.port}",
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        for _ in range(4):  # 4 x 300 ms of traffic: longer than one idle period in all
            c.sendall(b"x")
            time.sleep(0.3)
        assert recv_all(c, timeout=10) == b"xxxx"
    assert log_fields(proxy)[6] in ("cD", "sD")
