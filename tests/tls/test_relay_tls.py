"""Relay conformance over TLS: TlsHalf between a terminated TLS client link and a clear (or
TLS) server link, on real sockets, with the observable rules of tests/runtime/test_relay.py:
byte-exact bulk both ways, half-close carried (close_notify + FIN), back-pressure that keeps
bytes, a reset reported on its side, and plaintext held inside OpenSSL relayed anyway."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator

import pytest
from drive import handshake

from conftest import Pki
from nsproxy.config.model_tls import BindTls
from nsproxy.runtime import poller, relay
from nsproxy.runtime.relay import AnyHalf, Half, TlsHalf
from nsproxy.runtime.xprt_tls import RawTransport, TlsTransport
from nsproxy.tls.store import CertStore, SniStore


def _tcp_pair(bufsize: int | None) -> tuple[socket.socket, socket.socket]:
    ls = socket.socket()
    a = socket.socket()
    if bufsize is not None:
        for s in (ls, a):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    a.connect(ls.getsockname())
    b, _ = ls.accept()
    ls.close()
    for s in (a, b):
        s.setblocking(False)
    return a, b


class End:
    """A test endpoint: a clear socket or a TLS transport, with the same small surface."""

    def __init__(self, sock: socket.socket, tls: TlsTransport | None) -> None:
        self.sock = sock
        self.tls = tls
        self.shut_sent = False

    def send(self, data: memoryview) -> int:
        if self.tls is None:
            return self.sock.send(data)
        if self.tls.want_write and not self.tls.flush():
            raise BlockingIOError
        return self.tls.send(data)

    def flush(self) -> None:
        if self.tls is not None and self.tls.want_write:
            self.tls.flush()

    def recv(self, n: int) -> bytes:
        if self.tls is None:
            return self.sock.recv(n)
        buf = bytearray(n)
        got = self.tls.recv_into(buf)
        return bytes(buf[:got])

    def shutdown(self) -> None:
        if self.tls is None:
            self.sock.shutdown(socket.SHUT_WR)
        else:
            self.tls.shutdown()

    def close(self) -> None:
        (self.tls or self.sock).close()


class TlsPair:
    """client(TLS) <-> [proxy_c TLS | TlsHalf x2 | proxy_s clear or TLS] <-> server."""

    def __init__(
        self,
        pki: Pki,
        server_tls: bool,
        bufsize: int | None = None,
        server_bufsize: int | None = None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.poller = poller.get(self.loop)
        csock, pcsock = _tcp_pair(bufsize)
        pssock, ssock = _tcp_pair(server_bufsize or bufsize)
        store = SniStore.build(CertStore(), BindTls(enabled=True, crts=(pki.www,)))
        cctx = ssl.create_default_context(cafile=pki.ca_file)
        ctls = TlsTransport(csock, cctx, False, "www.example.com")
        ptls = TlsTransport(pcsock, store.context(), True)
        pairs = [ctls, ptls]
        ps: TlsTransport | RawTransport = RawTransport(pssock)
        stls = None
        if server_tls:
            ps = TlsTransport(pssock, cctx, False, "www.example.com")
            stls = TlsTransport(ssock, store.context(), True)
            pairs += [ps, stls]
        handshake(*pairs, timeout=10)
        self.client = End(csock, ctls)
        self.server = End(ssock, stls)
        self.proxy = (ptls, ps)
        self.events: list[tuple[str, str]] = []
        self.c2s = TlsHalf(self, ptls, ps, b"")
        self.s2c = TlsHalf(self, ps, ptls, b"")
        Half.link(self.c2s, self.s2c)
        self.c2s.start()
        self.s2c.start()

    def _name(self, half: AnyHalf) -> str:
        return "c2s" if half is self.c2s else "s2c"

    def activity(self, half: AnyHalf) -> None:
        pass

    def half_done(self, half: AnyHalf) -> None:
        self.events.append(("done", self._name(half)))

    def half_error(self, half: AnyHalf, on_read: bool) -> None:
        self.events.append(("error-read" if on_read else "error-write", self._name(half)))

    def run_until(self, pred: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what} (events: {self.events})")
            self.loop.run_until_complete(asyncio.sleep(0.001))

    def pump(self, src: End, data: bytes, dst: End, shut: bool = False) -> bytes:
        got = bytearray()
        view = memoryview(data)
        eof = False

        def step() -> bool:
            nonlocal view, eof
            src.flush()
            if view:
                with contextlib.suppress(BlockingIOError):
                    view = view[src.send(view) :]
                if not view and shut and not src.shut_sent:
                    src.shut_sent = True
                    src.shutdown()
            while not eof:
                try:
                    chunk = dst.recv(1 << 16)
                except BlockingIOError:
                    break
                if not chunk:
                    eof = True
                    break
                got.extend(chunk)
            return not view and len(got) >= len(data) and (eof or not shut)

        self.run_until(step, f"{len(data)} bytes relayed")
        return bytes(got)

    def close(self) -> None:
        for h in (self.c2s, self.s2c):
            h.stop()
        for t in self.proxy:
            self.poller.forget(t.fileno())
            t.close()
        self.client.close()
        self.server.close()
        self.poller.close()
        self.loop.close()


@pytest.fixture(params=[False, True], ids=["tls-clear", "tls-tls"])
def server_tls(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def pair(pki: Pki, server_tls: bool) -> Iterator[TlsPair]:
    p = TlsPair(pki, server_tls)
    yield p
    p.close()


def test_large_transfer_both_ways_is_byte_exact(pair: TlsPair) -> None:
    up, down = os.urandom(3 << 20), os.urandom(5 << 20)
    assert pair.pump(pair.client, up, pair.server) == up
    assert pair.pump(pair.server, down, pair.client) == down
    assert pair.c2s.nbytes == len(up)
    assert pair.s2c.nbytes == len(down)


def test_half_close_passes_the_end_and_keeps_the_other_way(pair: TlsPair) -> None:
    assert pair.pump(pair.client, b"request", pair.server, shut=True) == b"request"
    assert pair.events == [("done", "c2s")]
    reply = os.urandom(1 << 20)
    assert pair.pump(pair.server, reply, pair.client, shut=True) == reply
    assert pair.events == [("done", "c2s"), ("done", "s2c")]


def test_back_pressure_holds_bytes_until_the_reader_reads(pki: Pki) -> None:
    pair = TlsPair(pki, False, bufsize=16384)
    try:
        data = os.urandom(8 << 20)
        view = memoryview(data)
        sent = 0

        def stuck() -> bool:
            nonlocal sent
            if sent == len(data):
                raise AssertionError("every byte was taken: no back-pressure")
            try:
                sent += pair.client.send(view[sent : sent + (1 << 16)])
                return False
            except BlockingIOError:
                return not pair.c2s.reading

        pair.run_until(stuck, "the relay to stop reading the client")
        assert sent < len(data)
        assert pair.c2s.pending  # bytes held, not dropped
        rest = pair.pump(pair.client, bytes(view[sent:]), pair.server)
        got = bytearray(rest)

        def drained() -> bool:
            pair.client.flush()  # ciphertext the client's transport still holds
            with contextlib.suppress(BlockingIOError):
                got.extend(pair.server.recv(1 << 16))
            return len(got) >= len(data)

        pair.run_until(drained, "every byte to arrive")
        assert bytes(got) == data
    finally:
        pair.close()


def test_reset_by_the_server_is_a_write_or_read_error_on_its_side(pair: TlsPair) -> None:
    assert pair.pump(pair.client, b"x", pair.server) == b"x"
    pair.server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    pair.server.sock.close()
    pair.server = End(socket.socket(), None)  # closed again by the fixture: harmless
    pair.run_until(lambda: bool(pair.events), "the error to be reported")
    assert pair.events[0] in (("error-read", "s2c"), ("error-write", "c2s"))


def test_plaintext_inside_openssl_is_relayed_after_the_destination_drains(pki: Pki) -> None:
    """The client sends 192 KiB at once and goes quiet; the relay's first read moves all the
    ciphertext into OpenSSL, the server link stalls; once the server reads, nothing on the
    client socket will ever wake the relay again: only `pending()` says there is more."""
    relay.set_buffer_size(16384)
    pair = TlsPair(pki, False, bufsize=1 << 20, server_bufsize=4096)
    try:
        data = os.urandom(192 << 10)
        view = memoryview(data)

        def all_sent() -> bool:
            nonlocal view
            pair.client.flush()
            if view:
                with contextlib.suppress(BlockingIOError):
                    view = view[pair.client.send(view) :]
            return not view and not (pair.client.tls and pair.client.tls.want_write)

        pair.run_until(all_sent, "the client to send everything")
        ptls = pair.proxy[0]

        def held() -> bool:
            return bool(pair.c2s.pending) and ptls.pending() > 0

        pair.run_until(held, "the relay to hold plaintext with the server link full")
        assert select.select([ptls.fd], [], [], 0)[0] == []  # nothing left for epoll to see
        got = bytearray()

        def drained() -> bool:
            with contextlib.suppress(BlockingIOError):
                got.extend(pair.server.recv(1 << 16))
            return len(got) >= len(data)

        pair.run_until(drained, "every byte to arrive", timeout=10)
        assert bytes(got) == data
    finally:
        pair.close()
        relay.set_buffer_size(65536)
