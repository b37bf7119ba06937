"""TlsTransport driven the way a relay half drives a socket, on the project's epoll Poller in
an asyncio loop: TLS terminated on one side, clear TCP on the other, bytes echoed both ways.

`Pump` is the reference for wiring a transport into relay.Half: read until BlockingIOError
(a TLS transport may hold plaintext epoll does not see: `pending()`), send with back-pressure,
wait for writability while `want_write`, pass EOF on as `shutdown()`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import ssl
import threading
import time

from drive import handshake, send_all, tcp_pair

from conftest import Pki
from nsproxy.config.model_tls import BindTls
from nsproxy.runtime import poller as poller_mod
from nsproxy.runtime.xprt_tls import RawTransport, TlsTransport, Want
from nsproxy.tls.store import CertStore, SniStore

Transport = TlsTransport | RawTransport


class Pump:
    """One direction: src -> dst, through a small buffer (forces many partial operations)."""

    def __init__(self, p: poller_mod.Poller, src: Transport, dst: Transport, done: asyncio.Event):
        self.p, self.src, self.dst, self.done = p, src, dst, done
        self.buf = bytearray(4096)
        self.pending = b""
        self.moved = 0

    def start(self) -> None:
        self.p.set_reader(self.src.fileno(), self.on_readable)

    def on_readable(self, _ev: int = 0) -> None:
        while not self.pending:
            try:
                n = self.src.recv_into(self.buf)
            except BlockingIOError:
                return
            if n == 0:
                self.p.clear_reader(self.src.fileno(), sync=True)
                self.dst.shutdown()
                self.done.set()
                return
            self.moved += n
            self.write(bytes(self.buf[:n]))
        # back-pressure: stop reading; plaintext inside OpenSSL waits for us, not for epoll
        self.p.clear_reader(self.src.fileno())

    def write(self, data: bytes) -> None:
        try:
            sent = self.dst.send(data)
        except BlockingIOError:
            sent = 0
        self.pending = data[sent:]
        if self.pending or self.dst.want_write:
            self.p.set_writer(self.dst.fileno(), self.on_writable)

    def on_writable(self, _ev: int = 0) -> None:
        if self.dst.want_write and not self.dst.flush():
            return
        if self.pending:
            data, self.pending = self.pending, b""
            self.write(data)
            if self.pending or self.dst.want_write:
                return
        self.p.clear_writer(self.dst.fileno(), sync=True)
        self.p.set_reader(self.src.fileno(), self.on_readable)
        if self.src.pending():
            self.p.loop.call_soon(self.on_readable)


async def terminate(tx: TlsTransport, p: poller_mod.Poller) -> None:
    """Handshake on the poller."""
    fut: asyncio.Future[None] = p.loop.create_future()

    def step(_ev: int = 0) -> None:
        want = tx.handshake()
        p.clear_reader(tx.fd)
        p.clear_writer(tx.fd)
        if want is Want.DONE:
            fut.set_result(None)
        elif want is Want.READ:
            p.set_reader(tx.fd, step)
        else:
            p.set_writer(tx.fd, step)

    step()
    await fut


def test_terminated_echo_through_the_poller(pki: Pki) -> None:
    blob = os.urandom(2 << 20)
    store = SniStore.build(CertStore(), BindTls(enabled=True, crts=(pki.www,)))
    client, front = tcp_pair()
    back, server = tcp_pair()
    server.setblocking(True)
    server.settimeout(20)

    def echo() -> None:
        while data := server.recv(65536):
            server.sendall(data)
        server.shutdown(socket.SHUT_WR)

    got = bytearray()

    def tls_client() -> None:
        """Sends and reads at once (select), then close_notify, then reads to EOF."""
        client.setblocking(False)
        ctx = ssl.create_default_context(cafile=pki.ca_file)
        cli = TlsTransport(client, ctx, False, "www.example.com")
        handshake(cli, timeout=10)
        view = memoryview(blob)
        buf = bytearray(65536)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not view and not cli.want_write and not cli.tx_done:
                cli.shutdown()
            w = [cli.fd] if view or cli.want_write else []
            select.select([cli.fd], w, [], 0.5)
            if cli.want_write:
                cli.flush()
            elif view:
                with contextlib.suppress(BlockingIOError):
                    view = view[cli.send(view) :]
            try:
                while n := cli.recv_into(buf):
                    got.extend(buf[:n])
                return
            except BlockingIOError:
                pass

    threads = [threading.Thread(target=echo), threading.Thread(target=tls_client)]
    for t in threads:
        t.start()

    async def main() -> tuple[int, int]:
        p = poller_mod.get(asyncio.get_running_loop())
        tx = TlsTransport(front, store.context(), server_side=True)
        await asyncio.wait_for(terminate(tx, p), 10)
        up_done, down_done = asyncio.Event(), asyncio.Event()
        up = Pump(p, tx, RawTransport(back), up_done)
        down = Pump(p, RawTransport(back), tx, down_done)
        up.start()
        down.start()
        await asyncio.wait_for(asyncio.gather(up_done.wait(), down_done.wait()), 30)
        return up.moved, down.moved

    loop = asyncio.new_event_loop()
    try:
        moved = loop.run_until_complete(main())
    finally:
        loop.close()
    for t in threads:
        t.join(20)
    assert moved == (len(blob), len(blob))
    assert bytes(got) == blob


def test_plaintext_held_by_openssl_is_relayed_after_back_pressure(pki: Pki) -> None:
    """The client sends 48 KiB and goes quiet; the first read moves all the ciphertext into
    OpenSSL, the destination stalls, and once it drains nothing on the socket will ever wake
    the reader again: only `pending()` says there is more."""
    store = SniStore.build(CertStore(), BindTls(enabled=True, crts=(pki.www,)))
    client, front = tcp_pair()
    out, peer = socket.socketpair()
    out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    out.setblocking(False)
    peer.setblocking(False)
    size = 48 * 1024

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        p = poller_mod.get(loop)
        ctx = ssl.create_default_context(cafile=pki.ca_file)
        cli = TlsTransport(client, ctx, False, "www.example.com")
        tx = TlsTransport(front, store.context(), server_side=True)
        await asyncio.wait_for(asyncio.gather(terminate(tx, p), terminate(cli, p)), 10)
        await asyncio.to_thread(send_all, cli, b"z" * size)
        await asyncio.to_thread(select.select, [front], [], [], 5)
        pump = Pump(p, tx, RawTransport(out), asyncio.Event())
        pump.start()
        deadline = loop.time() + 10
        while not pump.pending:  # the destination is full: the pump waits for it
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        assert tx.pending() > 0 and select.select([front], [], [], 0)[0] == []
        got = bytearray()
        while len(got) < size:
            got += await asyncio.wait_for(loop.sock_recv(peer, 65536), 5)
        return bytes(got)

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == b"z" * size
    finally:
        loop.close()
