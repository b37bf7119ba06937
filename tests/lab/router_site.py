"""An OpenShift router in a namespace of its own: the pods its configuration names, on the
namespace's loopback, and nsproxy or HAProxy 2.6 running the rendered configuration."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from lab.netlab import Lab, accept_threads, socket_in, stop_listener, unix_listening, wait_until
from lab.openshift_router import CONFIG, HOSTS, Router, install

HAPROXY = shutil.which("haproxy")
PODS = {
    "plain-a": ("10.128.2.15", 8080),
    "plain-b": ("10.128.2.16", 8080),
    "edge": ("10.128.2.17", 8080),
    "reenc": ("10.128.2.18", 8443),
    "pass": ("10.128.2.19", 8443),
}


@dataclass
class Origin:
    """A pod: answers every request with 200 and its name, records each request head."""

    name: str
    sock: socket.socket
    tls: ssl.SSLContext | None = None
    heads: list[bytes] = field(default_factory=list)
    alpns: list[str | None] = field(default_factory=list)  # what each TLS handshake chose
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.acceptor = accept_threads(self.sock, self._handle)

    def close(self) -> None:
        stop_listener(self.sock, self.acceptor)

    def _handle(self, raw: socket.socket) -> None:
        c: socket.socket = raw
        try:
            c.settimeout(10)
            if self.tls is not None:
                tls_conn = self.tls.wrap_socket(raw, server_side=True)
                with self.lock:
                    self.alpns.append(tls_conn.selected_alpn_protocol())
                c = tls_conn
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                with self.lock:
                    self.heads.append(head)
                body = self.name.encode()
                c.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
        except (OSError, ssl.SSLError):
            return
        finally:
            c.close()

    def last_head(self) -> bytes:
        return wait_until(lambda: self.heads[-1] if self.heads else None, 10, self.name)


@dataclass
class Site:
    """One router namespace: the installed router tree, its origins and the client's CA."""

    ns: str
    router: Router
    origins: dict[str, Origin]
    program: str = ""
    output: Callable[[], str] | None = None
    process: subprocess.Popen[bytes] | None = None

    def client_ctx(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.router.ca_file))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def make_site(lab: Lab, name: str, ca: trustme.CA, config: Path = CONFIG) -> Site:
    ns = lab.netns(name)
    for ip, _ in PODS.values():
        lab.ip(ns, "addr", "add", f"{ip}/32", "dev", "lo")
    root = Path(tempfile.mkdtemp(prefix=f"nsp-router-{name}-"))
    lab.defer(lambda: shutil.rmtree(root, ignore_errors=True))
    # the process limit of the test machine, not the router's 50000
    router = install(root, {"maxconn 50000": "maxconn 4000"}, ca=ca, config=config)
    origins = {}
    for pod, (ip, port) in PODS.items():
        s = socket_in(ns, socket.AF_INET)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(64)
        tls = None
        if pod in ("reenc", "pass"):
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            host = "web-reenc.demo.svc" if pod == "reenc" else HOSTS["pass"]
            ca.issue_cert(host).configure_cert(tls)
            tls.set_alpn_protocols(["http/1.1"])
        origins[pod] = Origin(pod, s, tls)
        origins[pod].start()
        lab.defer(origins[pod].close)
    return Site(ns, router, origins)


def start_router(lab: Lab, site: Site, program: str) -> None:
    sock = site.router.root / "run" / "haproxy.sock"
    site.program = program
    if program == "nsproxy":
        proxy = lab.proxy(
            site.router.config.read_text(),
            command=("ip", "netns", "exec", site.ns, sys.executable, "-m", "nsproxy"),
            ready_timeout=30.0,
        )
        site.output = proxy.output
        site.process = proxy.proc
        return
    assert HAPROXY is not None
    proc = subprocess.Popen(
        ["ip", "netns", "exec", site.ns, HAPROXY, "-db", "-f", str(site.router.config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    lab.defer(stop)
    wait_until(
        lambda: unix_listening(str(sock), proc.pid) or proc.poll() is not None,
        15,
        "HAProxy's start",
    )
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""


def read_response(c: socket.socket) -> bytes:
    out = b""
    while b"\r\n\r\n" not in out:
        data = c.recv(65536)
        if not data:
            return out
        out += data
    head = out.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if m is None:
        while data := c.recv(65536):
            out += data
        return out
    while len(out) < len(head) + 4 + int(m.group(1)):
        data = c.recv(65536)
        if not data:
            break
        out += data
    return out
