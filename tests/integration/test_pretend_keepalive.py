"""`option http-pretend-keepalive`: the server gets the request as under http-keep-alive,
whatever the connection mode; nsproxy and HAProxy 2.6 send it the same bytes."""

from __future__ import annotations

import pytest

from lab.netlab import Lab
from sample.haproxy_ref import HAPROXY
from sample.http_pair import running

MODES = [
    "  option http-server-close",
    "  option http-server-close\n  option http-pretend-keepalive",
    "  option httpclose\n  option http-pretend-keepalive",
    "  option http-pretend-keepalive",
]
REQUESTS = [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"GET / HTTP/1.0\r\nHost: a\r\n\r\n"]


def _server_sees(lab: Lab, program: str, backend: str, raw: bytes) -> bytes | None:
    def config(port: int, sport: int) -> str:
        return (
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
            f"  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n"
            f"backend be\n{backend}\n  server s1 127.0.0.1:{sport}\n"
        )

    with running(lab, program, config) as ref:
        _, seen = ref.exchange(raw)
    return seen


@pytest.mark.parametrize("backend", MODES)
@pytest.mark.parametrize("raw", REQUESTS)
def test_server_side_request_as_haproxy(lab: Lab, backend: str, raw: bytes) -> None:
    got = _server_sees(lab, "nsproxy", backend, raw)
    if "pretend" in backend:
        # no `close` for HTTP/1.1, an explicit keep-alive for HTTP/1.0
        want = raw[:-2] + (b"" if b"1.1" in raw else b"connection: keep-alive\r\n") + b"\r\n"
        assert got is not None and got.lower() == want.lower()
    if HAPROXY is not None:
        assert got == _server_sees(lab, "haproxy", backend, raw)
