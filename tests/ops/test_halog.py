"""halog (HAProxy's log analyser, Debian's /usr/sbin/halog) reads nsproxy's httplog lines as
HAProxy 2.6's: for the same traffic on the same configuration, the same per-status (-st),
per-termination-code (-tc), per-server (-srv) and per-URL (-u) reports, timing columns aside
(they measure each program's own latencies). A compressed response logs its bytes before
compression in both."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from lab.netlab import Lab, connect, free_port, recv_all

HALOG = shutil.which("halog") or "/usr/sbin/halog"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
MISSING = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n"
REQUESTS = [
    "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "GET /b?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "GET /c HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    "GET /missing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "GET /denied HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "GET /a HTTP/1.1\r\nHost a\r\n\r\n",  # malformed: 400 from the H1 layer
    "GET /a HT",  # the client leaves in the middle of the head
]
# columns of each report that are times (ms): left out of the comparison
TIMES = {"-srv": {10, 11}, "-u": {2, 3, 4, 5}}


def _config(log_port: int, port: int, ok: int, missing: int) -> str:
    return (
        f"global\n  log 127.0.0.1:{log_port} format raw local1 info\n"
        "defaults\n  mode http\n  log global\n  option httplog\n  timeout client 5s\n"
        "  timeout server 5s\n  timeout connect 2s\n"
        f"frontend fe\n  bind 127.0.0.1:{port}\n"
        "  http-request deny if { path /denied }\n"
        "  use_backend be_missing if { path_beg /missing }\n  default_backend be_ok\n"
        "backend be_ok\n  compression algo gzip\n"
        f"  server s1 127.0.0.1:{ok}\n  server s2 127.0.0.1:{ok}\n"
        f"backend be_missing\n  server m1 127.0.0.1:{missing}\n"
    )


def _report(lines: list[str], option: str) -> list[list[str]]:
    # a syslog header for halog to skip (its default: five fields), as a syslog server writes
    text = "".join(f"Nov 29 12:00:00 host haproxy[1]: {line}\n" for line in lines)
    out = subprocess.run(
        [HALOG, "-q", option], input=text, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    rows = [ln.split() for ln in out.stdout.splitlines()]
    return [[f for i, f in enumerate(r) if i not in TIMES.get(option, set())] for r in rows]


def _logs(lab: Lab, tmp_path: Path, program: str) -> list[str]:
    ok = lab.sink(None, "127.0.0.1", reply=OK)
    missing = lab.sink(None, "127.0.0.1", reply=MISSING)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(10)
        port = free_port()
        text = _config(udp.getsockname()[1], port, ok.port, missing.port)
        if program == "haproxy":
            sock = str(tmp_path / "haproxy.sock")  # only to know when it started
            lab.haproxy(text.replace("global\n", f"global\n  stats socket {sock}\n", 1), sock)
        else:
            lab.proxy(text)
        lines = []
        for request in REQUESTS:  # one at a time: each logged before the next
            c = connect(None, ("127.0.0.1", port))
            c.sendall(request.encode())
            if request.endswith("\r\n\r\n"):
                recv_all(c)
            c.close()
            lines.append(udp.recv(65536).decode().strip())
    return lines


@pytest.mark.parametrize("option", ["-st", "-tc", "-srv", "-u"])
def test_halog_reports_as_over_haproxy_logs(lab: Lab, tmp_path: Path, option: str) -> None:
    ours = _report(_logs(lab, tmp_path, "nsproxy"), option)
    assert len(ours) > 1
    theirs = _report(_logs(lab, tmp_path, "haproxy"), option)
    assert ours == theirs
