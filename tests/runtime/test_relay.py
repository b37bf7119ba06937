"""Relay conformance: both relay paths (copy and splice) on real sockets, same observable rules."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator

import pytest

from nsproxy.runtime import poller, relay
from nsproxy.runtime.relay import Half


def _tcp_pair(bufsize: int | None) -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair; `bufsize` fixes both ends' buffers before the handshake."""
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


class Pair:
    """client <-> [proxy_c | Half x2 | proxy_s] <-> server, each link a TCP loopback pair."""

    def __init__(self, splice: bool, bufsize: int | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.poller = poller.get(self.loop)
        relay.set_pipes(8, 1 << 16)
        self.client, self.proxy_c = _tcp_pair(bufsize)
        self.proxy_s, self.server = _tcp_pair(bufsize)
        self.events: list[tuple[str, str]] = []
        self.c2s = Half(self, self.proxy_c, self.proxy_s, b"", splice)
        self.s2c = Half(self, self.proxy_s, self.proxy_c, b"", splice)
        Half.link(self.c2s, self.s2c)
        self.c2s.start()
        self.s2c.start()

    def _name(self, half: Half) -> str:
        return "c2s" if half is self.c2s else "s2c"

    # relay.Owner
    def activity(self, half: Half) -> None:
        pass

    def half_done(self, half: Half) -> None:
        self.events.append(("done", self._name(half)))
        if self.c2s.shut and self.s2c.shut:  # as the stream: both ways done, close (FIN)
            for s in (self.proxy_c, self.proxy_s):
                s.shutdown(socket.SHUT_RDWR)

    def half_error(self, half: Half, on_read: bool) -> None:
        self.events.append(("error-read" if on_read else "error-write", self._name(half)))

    def run_until(self, pred: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what} (events: {self.events})")
            self.loop.run_until_complete(asyncio.sleep(0.001))

    def pump(
        self, src: socket.socket, data: bytes, dst: socket.socket, shut: bool = False
    ) -> bytes:
        """Writes `data` into `src` while reading `dst`, the relay running; returns what came."""
        got = bytearray()
        view = memoryview(data)
        eof = False

        def step() -> bool:
            nonlocal view, eof
            if view:
                with contextlib.suppress(BlockingIOError):
                    view = view[src.send(view) :]
                if not view and shut:
                    src.shutdown(socket.SHUT_WR)
            while True:
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
        for s in (self.proxy_c, self.proxy_s):
            self.poller.forget(s.fileno())
            s.close()
        self.client.close()
        self.server.close()
        self.poller.close()
        self.loop.close()


@pytest.fixture(params=[False, True], ids=["copy", "splice"])
def splice(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def pair(splice: bool) -> Iterator[Pair]:
    p = Pair(splice)
    yield p
    p.close()


@pytest.fixture
def small_pair(splice: bool) -> Iterator[Pair]:
    """Small socket buffers (set before the handshake): the chain fills after a few KiB."""
    p = Pair(splice, bufsize=16384)
    yield p
    p.close()


def _payload(n: int) -> bytes:
    return os.urandom(n)


def test_large_transfer_both_ways_is_byte_exact(pair: Pair) -> None:
    up, down = _payload(3 << 20), _payload(5 << 20)
    assert pair.pump(pair.client, up, pair.server) == up
    assert pair.pump(pair.server, down, pair.client) == down
    assert pair.c2s.nbytes == len(up)
    assert pair.s2c.nbytes == len(down)


def test_splice_path_takes_a_pipe_only_for_bulk(pair: Pair) -> None:
    assert pair.pump(pair.client, b"small", pair.server) == b"small"
    assert pair.c2s.pipe is None
    data = _payload(1 << 20)
    assert pair.pump(pair.client, data, pair.server) == data
    assert (pair.c2s.pipe is not None) == pair.c2s.splice


def test_half_close_passes_the_fin_and_keeps_the_other_way(pair: Pair) -> None:
    assert pair.pump(pair.client, b"request", pair.server, shut=True) == b"request"
    assert pair.events == [("done", "c2s")]
    reply = _payload(1 << 20)
    assert pair.pump(pair.server, reply, pair.client, shut=True) == reply
    assert pair.events == [("done", "c2s"), ("done", "s2c")]


def test_back_pressure_holds_bytes_until_the_reader_reads(small_pair: Pair) -> None:
    pair = small_pair
    data = _payload(8 << 20)
    view = memoryview(data)
    sent = 0

    def stuck() -> bool:  # write until the whole chain is full and the client can't write
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
    assert pair.c2s.pending or pair.c2s.inpipe  # bytes held, not dropped
    rest = pair.pump(pair.client, bytes(view[sent:]), pair.server)
    got = bytearray(rest)

    def drained() -> bool:
        with contextlib.suppress(BlockingIOError):
            got.extend(pair.server.recv(1 << 16))
        return len(got) >= len(data)

    pair.run_until(drained, "every byte to arrive")
    assert bytes(got) == data


def test_reset_by_the_server_is_a_write_or_read_error_on_its_side(pair: Pair) -> None:
    assert pair.pump(pair.client, b"x", pair.server) == b"x"
    pair.server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    pair.server.close()
    pair.server = socket.socket()  # closed again by the fixture: harmless
    pair.run_until(lambda: bool(pair.events), "the error to be reported")
    kind, half = pair.events[0]
    # the server side failed: reading from it (s2c) or writing to it (c2s)
    assert (kind, half) in (("error-read", "s2c"), ("error-write", "c2s"))
