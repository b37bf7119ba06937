"""`h1-case-adjust` with `option h1-case-adjust-bogus-client|server`: the header names each
peer gets, the same bytes from nsproxy as from HAProxy 2.6."""

from __future__ import annotations

import pytest

from lab.netlab import Lab
from sample.haproxy_ref import HAPROXY
from sample.http_pair import running

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Custom-Header: 1\r\nX-Other: 2\r\n"
    b"Content-Length: 2\r\n\r\nok"
)
REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\nx-custom-header: q\r\nX-OTHER: r\r\n\r\n"
OPTIONS = [
    ("  option h1-case-adjust-bogus-client", ""),
    ("", "  option h1-case-adjust-bogus-server"),
    ("  option h1-case-adjust-bogus-client", "  option h1-case-adjust-bogus-server"),
    ("", ""),
]


def _exchange(lab: Lab, program: str, fe: str, be: str) -> tuple[bytes, bytes | None]:
    def config(port: int, sport: int) -> str:
        return (
            "global\n  h1-case-adjust content-type Content-Type\n"
            "  h1-case-adjust x-custom-header X-Custom-Header\n  h1-case-adjust host HOST\n"
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
            f"  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:{port}\n{fe}\n"
            f"  default_backend be\nbackend be\n{be}\n  server s1 127.0.0.1:{sport}\n"
        )

    with running(lab, program, config, RESPONSE) as ref:
        return ref.exchange(REQUEST)


@pytest.mark.parametrize(("fe", "be"), OPTIONS)
def test_names_as_haproxy_writes_them(lab: Lab, fe: str, be: str) -> None:
    client, server = _exchange(lab, "nsproxy", fe, be)
    assert server is not None
    if fe:
        assert b"\r\nContent-Type: text/plain\r\nX-Custom-Header: 1\r\nx-other: 2\r\n" in client
    else:
        assert b"\r\ncontent-type: text/plain\r\nx-custom-header: 1\r\n" in client
    if be:
        assert server.startswith(b"GET / HTTP/1.1\r\nHOST: a\r\nX-Custom-Header: q\r\nx-other: r")
    else:
        assert server.startswith(b"GET / HTTP/1.1\r\nhost: a\r\nx-custom-header: q\r\n")
    if HAPROXY is not None:
        assert (client, server) == _exchange(lab, "haproxy", fe, be)
