"""`set server <b>/<s> addr <ip> [port <p>]` on the runtime API: HAProxy 2.6's answers, and a
template server filled in at runtime (as the OpenShift router does) then takes traffic."""

from __future__ import annotations

import os
import tempfile

from lab.netlab import Lab, cli, connect, free_port, wait_until
from sample.haproxy_ref import HAPROXY

COMMANDS = [
    "set server b/p1 addr 10.0.0.1 port 8080",
    "set server b/p1 addr 10.0.0.2",
    "set server b/p1 addr 10.0.0.2 port 9090",
    "set server b/p1 addr 10.0.0.2 port 9090",
    "set server b/p1 addr",
    "set server b/p1 addr foo",
    "set server b/p1 addr 10.0.0.3 port x",
    "set server b/p1 addr 10.0.0.3 port",
    "set server b/p1 addr ::1 port 9090",
    "set server b/p1 addr 10.0.0.1 port 99999",
    "set server b/p1 addr 10.0.0.1 foo 1",
    "set server b/u addr 10.0.0.1",
    "set server b/s addr 10.0.0.9 port 81",
]


def _config(sock: str, port: int) -> str:
    return (
        f"global\n  stats socket {sock} level admin\n"
        "defaults\n  mode tcp\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n"
        f"listen b\n  bind 127.0.0.1:{port}\n  server-template p 1-2 172.4.0.4:8765 disabled\n"
        "  server s 127.0.0.1:80 disabled\n  server u unix@/nonexistent.sock disabled\n"
    )


def _answers(lab: Lab, program: str) -> list[str]:
    d = tempfile.mkdtemp(prefix="nsp-addr-")
    sock = os.path.join(d, "s.sock")
    text = _config(sock, free_port())
    if program == "nsproxy":
        lab.proxy(text)
    else:
        lab.haproxy(text, sock)
    return [cli(sock, c).decode() for c in COMMANDS]


def test_answers_as_haproxy(lab: Lab) -> None:
    got = _answers(lab, "nsproxy")
    assert got[0] == (
        "IP changed from '172.4.0.4' to '10.0.0.1', port changed from '8765' to '8080' by "
        "'stats socket command'\n\n"
    )
    if HAPROXY is not None:
        assert got == _answers(lab, "haproxy")


def test_a_template_server_filled_at_runtime_takes_traffic(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1")
    d = tempfile.mkdtemp(prefix="nsp-addr-")
    sock = os.path.join(d, "s.sock")
    port = free_port()
    lab.proxy(_config(sock, port))
    answer = cli(sock, f"set server b/p2 addr 127.0.0.1 port {sink.port}").decode()
    assert answer.startswith("IP changed from '172.4.0.4' to '127.0.0.1'")
    assert cli(sock, "set server b/p2 state ready") == b"\n"
    with connect(None, ("127.0.0.1", port)) as c:
        c.sendall(b"ping")
        conns = sink.wait_conns(1)
    wait_until(lambda: conns[0].data == b"ping", 10, "the bytes at the filled-in server")
