"""Which log format a frontend uses, beside HAProxy 2.6: `log-format`, `option httplog` and
`option tcplog` each set the one format, the last one given wins, a defaults section's
format included."""

from __future__ import annotations

import re
import socket
import tempfile
from pathlib import Path

from lab.netlab import Lab, free_port
from sample.haproxy_ref import needs_haproxy

CONFIG = """global
    {log}
    {stats}
defaults
    mode http
    log global
    log-format "DEFAULTS %ci %ST"
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend inherits
    bind 127.0.0.1:{p0}
    http-request return status 200
frontend httplog_after_defaults
    bind 127.0.0.1:{p1}
    option httplog
    http-request return status 201
frontend format_after_httplog
    bind 127.0.0.1:{p2}
    option httplog
    log-format "OWN %ci %ST"
    http-request return status 202
frontend httplog_after_format
    bind 127.0.0.1:{p3}
    log-format "OWN %ci %ST"
    option httplog
    http-request return status 203
"""


def _get(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while c.recv(65536):
            pass


def _comparable(line: str) -> str:
    line = re.sub(r"^(\S+):\d+ \[[^]]+\]", r"\1:PORT [DATE]", line)
    return re.sub(r"(\] \S+ \S+ )[-\d]+/[-\d]+/[-\d]+/[-\d]+/[-\d]+ ", r"\1T/T/T/T/T ", line)


@needs_haproxy
def test_the_last_log_format_given_wins_like_haproxy(lab: Lab) -> None:
    pn = [free_port() for _ in range(4)]
    ph = [free_port() for _ in range(4)]
    proxy = lab.proxy(
        CONFIG.format(
            log="log stdout format raw local0", stats="", **{f"p{i}": p for i, p in enumerate(pn)}
        )
    )
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    stats = Path(tempfile.mkdtemp(prefix="nsp-logfmt-")) / "stats"
    lab.haproxy(
        CONFIG.format(
            log=f"log 127.0.0.1:{udp.getsockname()[1]} format raw local0",
            stats=f"stats socket {stats}",
            **{f"p{i}": p for i, p in enumerate(ph)},
        ),
        str(stats),
    )
    with udp:
        want = []
        for port in ph:
            _get(port)
            want.append(udp.recv(65536).decode().strip())
    for port in pn:
        _get(port)
    out = proxy.wait_count("127.0.0.1", 4)
    got = [ln for ln in out.splitlines() if "127.0.0.1" in ln and not ln.startswith("[")]
    assert [_comparable(x) for x in got] == [_comparable(x) for x in want]
    assert got[0] == "DEFAULTS 127.0.0.1 200" and got[2] == "OWN 127.0.0.1 202"
    assert '"GET / HTTP/1.1"' in got[1] and '"GET / HTTP/1.1"' in got[3]
