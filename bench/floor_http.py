"""The floor of a Python HTTP proxy: uvloop + httptools doing only what the bench asks of
nsproxy (keep-alive relay, X-Forwarded-For, one set-header, an httplog line to stdout).

Not a product: one frontend, one server, no error handling beyond closing. bench/http.py runs
it as `--proxies floor` to show what any Python design can reach against HAProxy.
Usage: floor_http.py CONFIG (the bench's configuration: fe_http's bind, be_http's server).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import socket
import sys
import time

import httptools  # type: ignore[import-untyped]
import uvloop

_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(ns: str) -> socket.socket:
    """A TCP socket made inside network namespace `ns` (then back to ours)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, 0) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        _libc.setns(own, 0)
        os.close(fd)
        os.close(own)
    return s


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_stamp_sec = -1
_stamp = ""


def accept_date(t: float) -> str:
    global _stamp_sec, _stamp
    sec = int(t)
    if sec != _stamp_sec:
        tm = time.localtime(sec)
        day = f"{tm.tm_mday:02d}/{_MONTHS[tm.tm_mon - 1]}/{tm.tm_year}"
        _stamp = f"{day}:{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
        _stamp_sec = sec
    return f"{_stamp}.{int((t - sec) * 1000):03d}"


TASKS: set[asyncio.Task[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]] = set()


class Counters:
    conns = 0


OUT = sys.stdout.buffer.raw if hasattr(sys.stdout.buffer, "raw") else sys.stdout.buffer
STDOUT = 1
NOLOG = bool(os.environ.get("FLOOR_NOLOG"))  # what the log line costs


class Client(asyncio.Protocol):
    def __init__(self, srv_ns: str, srv_addr: tuple[str, int]) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.srv_ns = srv_ns
        self.srv_addr = srv_addr
        self.server: Server | None = None
        self.headers: list[bytes] = []
        self.url = b""
        self.tr = 0.0
        self.t0 = 0.0
        self.ip = ""
        self.port = 0
        self.line = ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.ip, self.port = transport.get_extra_info("peername")[:2]
        Counters.conns += 1

    def connection_lost(self, exc: Exception | None) -> None:
        Counters.conns -= 1
        if self.server is not None:
            self.server.transport.close()

    def data_received(self, data: bytes) -> None:
        if not self.headers:
            self.tr = time.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.headers = []
        self.t0 = time.time()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        n = name.lower()
        if n != b"x-bench":
            self.headers.append(n + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        method = self.parser.get_method()
        self.line = f"{method.decode()} {self.url.decode()} HTTP/1.1"
        head = b"".join(
            (
                method, b" ", self.url, b" HTTP/1.1\r\n",
                *self.headers,
                b"x-bench: nsp\r\nx-forwarded-for: ", self.ip.encode(), b"\r\n\r\n",
            )
        )  # fmt: skip
        srv = self.server
        if srv is None:
            srv = self.server = Server(self)
            sock = socket_in(self.srv_ns)
            sock.setblocking(False)
            srv.pending = head
            loop = asyncio.get_running_loop()
            sock.connect_ex(self.srv_addr)
            TASKS.add(loop.create_task(loop.create_connection(lambda: srv, sock=sock)))
        else:
            srv.transport.write(head)

    def on_message_complete(self) -> None:
        self.headers = []

    def answered(self, head: bytes, body: bytes, status: int, size: int) -> None:
        self.transport.write(head + body if len(body) < 4096 else head)
        if len(body) >= 4096:
            self.transport.write(body)
        if NOLOG:
            return
        now = time.time()
        tr = int((self.t0 - self.tr) * 1000)
        ta = int((now - self.tr) * 1000)
        c = Counters.conns
        os.write(
            STDOUT,
            (
                f"{self.ip}:{self.port} [{accept_date(self.tr)}] fe_http be_http/s1 "
                f"{tr}/0/0/{ta - tr}/{ta} {status} {size} - - ---- {c}/{c}/{c}/{c}/0 0/0 "
                f'"{self.line}"\n'
            ).encode(),
        )


class Server(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client
        self.parser = httptools.HttpResponseParser(self)
        self.pending = b""
        self.head: list[bytes] = []
        self.body: list[bytes] = []
        self.status = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.write(self.pending)
        self.pending = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.head = []
        self.body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head.append(name.lower() + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        head = b"".join((b"HTTP/1.1 %d OK\r\n" % self.status, *self.head, b"\r\n"))
        self.client.answered(head, body, self.status, len(head) + len(body))


def main() -> int:
    with open(sys.argv[1]) as f:
        text = f.read()
    fe = re.search(r"frontend fe_http\n(?:.*\n)*?\s+bind ([\d.]+):(\d+) namespace (\S+)", text)
    be = re.search(r"backend be_http\n(?:.*\n)*?\s+server \S+ ([\d.]+):(\d+) namespace (\S+)", text)
    assert fe and be
    uvloop.install()
    loop = asyncio.new_event_loop()
    lsock = socket_in(fe.group(3))
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((fe.group(1), int(fe.group(2))))
    lsock.listen(4096)
    lsock.setblocking(False)
    srv_ns, srv_addr = be.group(3), (be.group(1), int(be.group(2)))
    server = loop.run_until_complete(
        loop.create_server(lambda: Client(srv_ns, srv_addr), sock=lsock)
    )
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
