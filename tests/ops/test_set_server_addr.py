"""`set server <b>/<s> addr <ip> [port <port>]` byte for byte against HAProxy 2.6, and the
traffic going to the new address."""

from __future__ import annotations

import socket
from pathlib import Path

from lab.netlab import Lab, cli, free_port, tcp_defaults
from sample.haproxy_ref import needs_haproxy

BACKEND = """backend b
  server s1 10.1.1.1:8080
  server s2 10.1.1.2:8080 disabled
  server s3 10.1.1.3
  server s4 10.1.1.4:+1
  server s5 [fd00::5]:80
"""

COMMANDS = [
    "set server b/s1 addr 10.1.1.9",
    "set server b/s1 addr 10.1.1.9",
    "set server b/s1 addr 10.1.1.9 port 9090",
    "set server b/s1 addr 10.1.1.10 port 9090",
    "set server b/s1 addr bogus",
    "set server b/s1 addr 10.1.1.11 port abc",
    "set server b/s1 addr 10.1.1.11 port 0",
    "set server b/s1 addr 10.1.1.11 port 70000",
    "set server b/s1 addr",
    "set server b/s1 addr ::1 port 80",
    "set server b/s2 addr 10.1.1.20 port 8081",
    "set server b/s3 addr 10.1.1.30 port 81",
    "set server b/s4 addr 10.1.1.40 port 81",
    "set server b/s5 addr fd00::6",
    "set server b/s1 addr 10.1.1.11 foo 8",
    "set server b/nope addr 10.1.1.1",
    "show servers state b",
]


def _start(lab: Lab, tmp_path: Path, name: str, backend: str = BACKEND) -> tuple[str, int]:
    sock = str(tmp_path / f"{name}.sock")
    port = free_port()
    config = (
        f"global\n  stats socket {sock} level admin\n"
        + tcp_defaults(tcplog=False)
        + f"\nfrontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n"
        + backend
    )
    if name == "haproxy":
        lab.haproxy(config, sock)
    else:
        lab.proxy(config)
    return sock, port


@needs_haproxy
def test_set_server_addr_answers_like_haproxy(lab: Lab, tmp_path: Path) -> None:
    theirs, _ = _start(lab, tmp_path, "haproxy")
    ours, _ = _start(lab, tmp_path, "nsproxy")
    for line in COMMANDS:
        assert _steady(cli(ours, line)) == _steady(cli(theirs, line)), line


def _steady(answer: bytes) -> bytes:
    """`show servers state` without srv_time_since_last_change (seconds: timing)."""
    lines = answer.split(b"\n")
    for i, ln in enumerate(lines):
        fields = ln.split(b" ")
        if len(fields) > 20 and not ln.startswith(b"#"):
            fields[9] = b"T"
            lines[i] = b" ".join(fields)
    return b"\n".join(lines)


def test_traffic_follows_the_new_address(lab: Lab, tmp_path: Path) -> None:
    old, new = socket.socket(), socket.socket()
    for s in (old, new):
        s.bind(("127.0.0.1", 0))
        s.listen(8)
    backend = f"backend b\n  server s1 127.0.0.1:{old.getsockname()[1]}\n"
    sock, port = _start(lab, tmp_path, "nsproxy", backend)
    answer = cli(sock, f"set server b/s1 addr 127.0.0.1 port {new.getsockname()[1]}")
    assert answer.startswith(b"no need to change the addr, port changed from ")
    new.settimeout(10)
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        conn, _ = new.accept()
        conn.close()
    old.close()
    new.close()
