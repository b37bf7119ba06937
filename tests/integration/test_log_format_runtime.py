"""Which log line an HTTP frontend writes, side by side with HAProxy 2.6: `option tcplog` after
`option httplog` gives the TCP format for each request; a connection closed before any
request is a 400 "<BADREQ>" logged against the frontend, its Ta the total time."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import threading

from integration.test_tls import Logs
from lab.netlab import Lab, free_port, socket_in, wait_until

CONFIG = """global
    log 127.0.0.1:{log} format raw local0
    stats socket {stats}
defaults
    mode http
    log global
    option httplog
    timeout client 5s
    timeout server 5s
    timeout connect 1s
frontend web
    bind 127.0.0.1:{port1} namespace {ns}
    default_backend app
frontend tcpweb
    bind 127.0.0.1:{port2} namespace {ns}
    option tcplog
    default_backend app
backend app
    server a1 127.0.0.1:{origin} namespace {ns}
"""


def _origin(ns: str) -> tuple[socket.socket, int]:
    sock = socket_in(ns, socket.AF_INET)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        while True:
            try:
                c, _ = sock.accept()
            except OSError:
                return
            with c, contextlib.suppress(OSError):
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    return sock, int(sock.getsockname()[1])


def _probe(ns: str, port: int, data: bytes = b"") -> None:
    with socket_in(ns, socket.AF_INET) as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        if data:
            s.sendall(data)
            while s.recv(65536):
                pass


def _stable(line: str) -> str:
    """The line without the client port, the date, the timers that are not -1, the bytes and
    the connection counts."""
    f = line.split()
    f[0] = re.sub(r":\d+$", ":P", f[0])
    f[1] = "[DATE]"
    f[4] = re.sub(r"(?<![-\d])\d+", "N", f[4])  # the timers
    f[6 if f[5].isdigit() and len(f[5]) == 3 else 5] = "B"  # %B after %ST (httplog) or not
    # the connection counts depend on when each proxy saw the previous probe close
    return re.sub(r" \d+/\d+/\d+/\d+/\+?\d+ ", " C ", " ".join(f))


def test_log_lines_of_http_frontends_like_haproxy(lab: Lab) -> None:
    ns = lab.netns("lfmt")
    origin, origin_port = _origin(ns)
    lines = {}
    try:
        for name in ("nsproxy", "haproxy"):
            logs = Logs()
            stats = os.path.join(tempfile.mkdtemp(prefix="lfmt-"), "s.sock")
            port1, port2 = free_port(ns), free_port(ns)
            text = CONFIG.format(
                log=logs.port, stats=stats, port1=port1, port2=port2, ns=ns, origin=origin_port
            )
            if name == "nsproxy":
                lab.proxy(text)
            else:
                lab.haproxy(text, stats)
            wait_until(lambda p=port1: _up(ns, p), 10, f"{name} listening")
            wait_until(lambda p=port2: _up(ns, p), 10, f"{name} listening")
            _probe(ns, port2, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            lines[name] = sorted(_stable(ln) for ln in logs.wait(3))
            logs.close()
    finally:
        origin.close()
    assert lines["nsproxy"] == lines["haproxy"]
    (probe,) = [ln for ln in lines["nsproxy"] if " web " in ln]
    (request,) = [ln for ln in lines["nsproxy"] if "app/a1" in ln]
    assert " web web/<NOSRV> -1/-1/-1/-1/N 400 " in probe and '"<BADREQ>"' in probe
    assert "tcpweb app/a1 " in request and '"GET' not in request  # the TCP format


def _up(ns: str, port: int) -> bool:
    with socket_in(ns, socket.AF_INET) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
