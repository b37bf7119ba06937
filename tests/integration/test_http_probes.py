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


def _observe(lab: Lab, program: str, option: str, timeout: bool) -> tuple[bytes, str | None]:
    """What the probing client reads, and the probe's log line (None when not logged; the
    log lines run until the one of the real requests sent after the probe)."""
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
            mark = f"127.0.0.1:{probe.getsockname()[1]} "
            got = b""
            if timeout:
                probe.settimeout(10)
                while data := probe.recv(65536):
                    got += data
            probe.close()
            # two real requests after the probe: its close is seen before the second ends
            ref.exchange(b"GET /real HTTP/1.1\r\nHost: a\r\n\r\n")
            ref.exchange(b"GET /real2 HTTP/1.1\r\nHost: a\r\n\r\n")
            found = None
            while True:
                line = udp.recv(65536).decode()
                if line.startswith(mark):
                    found = line
                if "GET /real2" in line:
                    break
    return got.split(b"\r\n", 1)[0], found


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("timeout", [False, True], ids=["close", "timeout"])
def test_probe(lab: Lab, option: str, timeout: bool) -> None:
    got, line = _observe(lab, "nsproxy", option, timeout)
    assert (line is not None) == (option == "")
    answered = b"HTTP/1.1 408 Request Time-out" if timeout and "ignore" not in option else b""
    assert got == answered
    fields = line.split() if line is not None else []
    if line is not None:
        # frontend, frontend/<NOSRV>, TR/Tw/Tc/Tr/Ta, status, bytes, cookies, termination
        times = fields[4].split("/")
        assert fields[2:4] == ["f", "f/<NOSRV>"] and times[:4] == ["-1"] * 4
        assert fields[5] == ("408" if timeout else "400")
        assert fields[9] == ("cR--" if timeout else "CR--")
        assert (int(times[4]) >= 250) == timeout  # Ta: from the accept
    if HAPROXY is not None:
        ref_got, ref_line = _observe(lab, "haproxy", option, timeout)
        assert (ref_got, ref_line is None) == (got, line is None)
        if ref_line is not None:
            ref = ref_line.split()
            assert ref[2:4] + ref[5:10] == fields[2:4] + fields[5:10], (ref_line, line)
