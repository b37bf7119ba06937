"""`option httpchk` / `http-check`: what the server receives and the state lines, like HAProxy.

Each check server answers a fixed status; nsproxy and HAProxy 2.6 check their own copy of it
with the same configuration, inside one test namespace.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading

from lab.netlab import Lab, free_port, socket_in, stop_listener, wait_until


class CheckServer:
    """Answers every connection with `status` and records the request bytes."""

    def __init__(self, ns: str, status: bytes) -> None:
        self.sock = socket_in(ns, socket.AF_INET)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.status = status
        self.requests: list[bytes] = []
        self._acceptor = threading.Thread(target=self._serve, daemon=True)
        self._acceptor.start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = c.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    self.requests.append(data)
                    c.sendall(b"HTTP/1.1 %s\r\ncontent-length: 2\r\n\r\nok" % self.status)
                except OSError:
                    pass

    def close(self) -> None:
        stop_listener(self.sock, self._acceptor)


BACKENDS = [
    ("b1", "  option httpchk\n", b"200 OK"),
    (
        "b2",
        "  option httpchk GET /health HTTP/1.1\n  http-check send hdr Host example\n",
        b"503 Service Unavailable",
    ),
    (
        "b3",
        "  option httpchk\n  http-check disable-on-404\n  http-check expect status 200\n",
        b"404 Not Found",
    ),
    ("b4", "  option httpchk HEAD /ping\n  http-check expect status 200-299\n", b"302 Found"),
]


def _config(ns: str, port: int, servers: dict[str, CheckServer], extra: str = "") -> str:
    out = [
        f"global\n  log stdout format raw local0\n{extra}defaults\n  mode http\n  log global\n"
        "  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"
        f"frontend f\n  bind 127.0.0.1:{port} namespace {ns}\n  default_backend b1\n"
    ]
    for name, lines, _ in BACKENDS:
        srv = servers[name]
        out.append(
            f"backend {name}\n{lines}  server s 127.0.0.1:{srv.port} namespace {ns} "
            "check inter 100ms fall 1 rise 1\n"
        )
    return "".join(out)


def _state_lines(text: str) -> list[str]:
    """`Server bN/s is ...` lines without the check duration (it varies)."""
    lines = {
        re.sub(r"check duration: \d+ms", "check duration: Nms", ln.strip())
        for ln in text.splitlines()
        if ln.startswith("Server b")
    }
    return sorted(lines)


def test_http_checks_send_and_judge_like_haproxy(lab: Lab) -> None:
    ns = lab.netns("hchk")
    ours = {name: CheckServer(ns, status) for name, _, status in BACKENDS}
    theirs = {name: CheckServer(ns, status) for name, _, status in BACKENDS}
    proxy = lab.proxy(_config(ns, free_port(ns), ours))
    d = tempfile.mkdtemp()
    stats = os.path.join(d, "stats")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    text = _config(ns, free_port(ns), theirs, f"  stats socket {stats}\n").replace(
        "log stdout format raw local0", f"log 127.0.0.1:{udp.getsockname()[1]} format raw local0"
    )
    lab.haproxy(text, stats)
    wait_until(
        lambda: all(len(s.requests) >= 2 for s in (*ours.values(), *theirs.values())),
        what="two checks of every server by both proxies",
    )
    for name, _, _ in BACKENDS:
        assert ours[name].requests[0] == theirs[name].requests[0], name
    assert ours["b2"].requests[0] == (
        b"GET /health HTTP/1.1\r\nhost: example\r\nconnection: close\r\n\r\n"
    )
    hap_lines: list[str] = []

    def hap_has_three() -> bool:
        try:
            hap_lines.append(udp.recv(65536).decode())
        except TimeoutError:
            return False
        return len(_state_lines("\n".join(hap_lines))) >= 3

    wait_until(hap_has_three, what="HAProxy's three state lines")
    wait_until(lambda: len(_state_lines(proxy.output())) >= 3, what="nsproxy's state lines")
    assert _state_lines(proxy.output()) == _state_lines("\n".join(hap_lines))
