"""The ingress configurations run in a namespace: pods that record what reaches them, the
configuration's binds and servers moved into the namespace, requests from a client there."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from lab.netlab import free_port, socket_in, stop_listener

POD_PORT = 8080
BIND_RE = re.compile(r"^(\s*bind\s+)(\S+)(.*)$", re.M)
SERVER_RE = re.compile(r"^(\s*server\s+\S+\s+(\d+\.\d+\.\d+\.\d+):\d+.*)$", re.M)


def pod_addresses(text: str) -> list[str]:
    """The server addresses a configuration names (the pods to start)."""
    return sorted({m.group(2) for m in SERVER_RE.finditer(text)})


@dataclass
class Pods:
    """One origin per address (all on POD_PORT, inside `ns`): answers 200 with its address as
    the body and keeps each request's bytes, in arrival order, with the address it reached."""

    ns: str
    addrs: list[str]
    seen: list[tuple[str, bytes]] = field(default_factory=list)
    socks: list[socket.socket] = field(default_factory=list)
    acceptors: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for addr in self.addrs:
            s = socket_in(self.ns, socket.AF_INET)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, POD_PORT))
            s.listen(64)
            self.socks.append(s)
            acceptor = threading.Thread(target=self._serve, args=(s, addr), daemon=True)
            acceptor.start()
            self.acceptors.append(acceptor)

    def _serve(self, s: socket.socket, addr: str) -> None:
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(c, addr), daemon=True).start()

    def _handle(self, c: socket.socket, addr: str) -> None:
        buf = b""
        c.settimeout(30)
        with c, contextlib.suppress(OSError):
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                need = int(m.group(1)) if m else 0
                while len(buf) < need:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:need], buf[need:]
                with self.lock:
                    self.seen.append((addr, head + b"\r\n\r\n" + body))
                answer = addr.encode()
                c.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
                )
                if re.search(rb"(?im)^connection:\s*close", head):
                    return

    def take(self) -> list[tuple[str, bytes]]:
        with self.lock:
            out, self.seen = self.seen, []
        return out

    def close(self) -> None:
        for s, acceptor in zip(self.socks, self.acceptors, strict=True):
            stop_listener(s, acceptor)


@dataclass(frozen=True)
class Placed:
    """A configuration placed in the namespace: its text and the new port of each bind port."""

    text: str
    ports: dict[int, int]


def place(text: str, ns: str, vip: str) -> Placed:
    """`text` with every bind on `vip` (a free port each, in `ns`), every server in `ns` and
    peers on free loopback ports."""
    ports: dict[int, int] = {}

    def bind(m: re.Match[str]) -> str:
        old = int(m.group(2).rsplit(":", 1)[1])
        ports[old] = ports.get(old) or free_port(ns, vip)
        return f"{m.group(1)}{vip}:{ports[old]}{m.group(3)} namespace {ns}"

    out = BIND_RE.sub(bind, text)
    out = SERVER_RE.sub(lambda m: f"{m.group(1)} namespace {ns}", out)
    out = re.sub(r"127\.0\.0\.1:10000", lambda _: f"127.0.0.1:{free_port()}", out)
    return Placed(out, ports)


def copy_files(src: Path, dst: Path) -> Path:
    """The laid-out files for a second process (same certificates, its own sockets)."""
    shutil.copytree(src, dst)
    crt_list = dst / "_front_https_bind_crt.list"
    if crt_list.exists():
        crt_list.write_text(crt_list.read_text().replace(str(src), str(dst)))
    return dst


def http(
    ns: str,
    addr: tuple[str, int],
    raw: bytes,
    tls: ssl.SSLContext | None = None,
    sni: str | None = None,
) -> tuple[bytes, dict[str, object] | None]:
    """One request (`Connection: close` expected in `raw`); the whole answer, and with TLS
    the certificate the proxy showed."""
    with socket_in(ns, socket.AF_INET) as raw_sock:
        raw_sock.settimeout(10)
        raw_sock.connect(addr)
        conn: socket.socket = raw_sock
        cert = None
        if tls is not None:
            conn = tls.wrap_socket(raw_sock, server_hostname=sni)
            cert = conn.getpeercert()
        conn.sendall(raw)
        out = b""
        while True:
            data = conn.recv(65536)
            if not data:
                break
            out += data
        return out, cert


def request(host: str, path: str, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ingress-test\r\n{extra}"
        "Connection: close\r\n\r\n"
    ).encode()
