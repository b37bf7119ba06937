"""Connections that never send a request (load balancer probes, browsers' pre-connects):
`option http-ignore-probes` closes them silently, `option dontlognull` answers them but keeps
them out of the logs; as HAProxy 2.6 does."""

from __future__ import annotations

import socket

import pytest

from lab.netlab import Lab, connect
from sample.haproxy_ref import HAPROXY
from sample.http_pair import running

OPTIONS = ["", "  option http-ignore-probes", "  option dontlognull"]


def _observe(lab: Lab, program: str, option: str, timeout: bool) -> tuple[bytes, str]:
    """What the probing client reads, and the first log line after it (a real request's
    when the probe was not logged)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(10)

        def config(port: int, sport: int) -> str:
            return (
                f"global\n  log 127.0.0.1:{udp.getsockname()[1]} format raw local1 info\n"
                "defaults\n  log global\n  mode http\n  option httplog\n"
                f"{option}\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n"
                "  timeout http-request 300ms\n"
                f"frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n"
                f"backend b\n  server s 127.0.0.1:{sport}\n"
            )

        with running(lab, program, config) as ref:
            probe = connect(None, ("127.0.0.1", ref.port))
            got = b""
            if timeout:
                probe.settimeout(10)
                while data := probe.recv(65536):
                    got += data
            probe.close()
            ref.exchange(b"GET /real HTTP/1.1\r\nHost: a\r\n\r\n")
            line = udp.recv(65536).decode()
    return got.split(b"\r\n", 1)[0], line


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("timeout", [False, True], ids=["close", "timeout"])
def test_probe(lab: Lab, option: str, timeout: bool) -> None:
    got, line = _observe(lab, "nsproxy", option, timeout)
    probe_logged = "GET /real" not in line
    assert probe_logged == (option == "")
    answered = b"HTTP/1.1 408 Request Time-out" if timeout and "ignore" not in option else b""
    assert got == answered
    if HAPROXY is not None:
        ref_got, ref_line = _observe(lab, "haproxy", option, timeout)
        assert (ref_got, "GET /real" not in ref_line) == (got, probe_logged)
