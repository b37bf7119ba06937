"""Drives TlsTransports on real non-blocking sockets with select(), bounded in time."""

from __future__ import annotations

import select
import socket
import time

from nsproxy.runtime.xprt_tls import TlsTransport, Want


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected loopback TCP pair (client, server), both non-blocking."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    a = socket.create_connection(ls.getsockname())
    b, _ = ls.accept()
    ls.close()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def wait_io(fd: int, want: Want, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no progress before the deadline")
    r, w = ([fd], []) if want is Want.READ else ([], [fd])
    select.select(r, w, [], left)


def handshake(*txs: TlsTransport, timeout: float = 5.0) -> None:
    """Steps every transport's handshake until all are done; raises TlsError or TimeoutError."""
    deadline = time.monotonic() + timeout
    wants = {tx: tx.handshake() for tx in txs}
    while True:
        waiting = {tx: w for tx, w in wants.items() if w is not Want.DONE}
        if not waiting:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("handshake did not finish")
        r = [tx.fd for tx, w in waiting.items() if w is Want.READ]
        w = [tx.fd for tx, w in waiting.items() if w is Want.WRITE]
        select.select(r, w, [], min(left, 0.5))
        for tx in waiting:
            wants[tx] = tx.handshake()


def recv_all(tx: TlsTransport, size: int, timeout: float = 5.0) -> bytes:
    """Reads until `size` bytes or EOF."""
    deadline = time.monotonic() + timeout
    out = bytearray()
    buf = bytearray(65536)
    while len(out) < size:
        try:
            n = tx.recv_into(buf)
        except BlockingIOError:
            wait_io(tx.fd, Want.READ, deadline)
            continue
        if n == 0:
            break
        out += buf[:n]
    return bytes(out)


def send_all(tx: TlsTransport, data: bytes, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    view = memoryview(data)
    while view or tx.want_write:
        if tx.want_write and not tx.flush():
            wait_io(tx.fd, Want.WRITE, deadline)
            continue
        if not view:
            break
        try:
            n = tx.send(view)
        except BlockingIOError:
            wait_io(tx.fd, Want.WRITE, deadline)
            continue
        view = view[n:]
