"""A stream's timers driven by a manual clock: connect, retry, queue, idle and fin timeouts."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Callable, Iterator

import pytest

from lab.clock import ManualClock
from nsproxy.config.parser import parse_files
from nsproxy.runtime.process import Runtime


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


class Harness:
    """One in-process Runtime on a real loop and real loopback sockets, timed by a ManualClock."""

    def __init__(self, proxy_lines: str, server_port: int | None = None) -> None:
        self.logs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.logs.bind(("127.0.0.1", 0))
        self.logs.setblocking(False)
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.setblocking(False)
        sport = server_port if server_port is not None else self.server.getsockname()[1]
        text = (
            "defaults\n  mode tcp\n  option tcplog\n"
            f"  log 127.0.0.1:{self.logs.getsockname()[1]} format raw local0\n"
            f"listen px\n  bind 127.0.0.1:{_closed_port()}\n{proxy_lines}\n"
            f"  server s1 127.0.0.1:{sport}\n"
        )
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.cfg")
            with open(path, "w") as f:
                f.write(text)
            config, state = parse_files([path])
        assert config is not None, state.errors
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.rt = Runtime(config, self.loop, clock=self.clock)
        self.rt.build()
        assert self.rt.open_listeners()
        self.rt.start()
        sock = self.rt.listeners[0].sock
        assert sock is not None
        self.addr = sock.getsockname()
        self.accepted: list[socket.socket] = []
        self.clients: list[socket.socket] = []

    def run_until(self, pred: Callable[[], bool], what: str) -> None:
        """Turns the loop (real I/O, the manual clock standing still) until `pred` holds."""
        for _ in range(2000):
            if pred():
                return
            self.loop.run_until_complete(asyncio.sleep(0.002))
        raise AssertionError(f"timed out waiting for {what}")

    def client(self) -> socket.socket:
        c = socket.create_connection(self.addr, timeout=5)
        c.setblocking(False)
        self.clients.append(c)
        return c

    def accept(self) -> socket.socket:
        def got() -> bool:
            try:
                conn, _ = self.server.accept()
            except BlockingIOError:
                return False
            conn.setblocking(False)
            self.accepted.append(conn)
            return True

        n = len(self.accepted)
        self.run_until(lambda: len(self.accepted) > n or got(), "the server to accept")
        return self.accepted[-1]

    def recv_on(self, sock: socket.socket, want: bytes) -> None:
        """Waits for exactly `want` on `sock`; b"" waits for the peer's FIN."""
        got = bytearray()
        eof = False

        def more() -> bool:
            nonlocal eof
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return bytes(got) == want and want != b""
            eof = eof or not data
            got.extend(data)
            return bytes(got) == want and (eof or want != b"")

        self.run_until(more, f"{want!r}")

    def log_line(self) -> list[str]:
        lines: list[bytes] = []

        def got() -> bool:
            try:
                lines.append(self.logs.recv(65536))
            except BlockingIOError:
                return False
            return True

        self.run_until(got, "a log line")
        return lines[0].decode().split()

    def streams(self) -> int:
        return len(self.rt.streams)

    def close(self) -> None:
        for s in self.clients + self.accepted:
            s.close()
        self.rt.close()
        self.loop.close()
        self.server.close()
        self.logs.close()


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(lines: str, server_port: int | None = None) -> Harness:
        h = Harness(lines, server_port)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def test_connected_stream_outlives_its_connect_deadline_then_idles_out(
    harness: Callable[..., Harness],
) -> None:
    h = harness("  timeout connect 125ms\n  timeout client 1s\n  timeout server 30s")
    c = h.client()
    c.sendall(b"hello")
    srv = h.accept()
    h.recv_on(srv, b"hello")
    h.clock.advance(0.5)  # past the connect deadline, inside the client timeout
    assert h.streams() == 1
    c.sendall(b" again")
    h.recv_on(srv, b" again")
    h.clock.advance(0.875)
    assert h.streams() == 1
    h.clock.advance(0.125)
    assert h.streams() == 0
    fields = h.log_line()
    assert fields[6] == "cD"  # idle client, not a connect timeout (sC)
    assert fields[5] == "0"


def test_activity_pushes_the_idle_deadline(harness: Callable[..., Harness]) -> None:
    h = harness("  timeout connect 125ms\n  timeout client 500ms\n  timeout server 500ms")
    c = h.client()
    srv = h.accept()
    for _ in range(4):  # 4 x 250 ms of traffic each way: longer than one idle period in all
        c.sendall(b"x")
        h.recv_on(srv, b"x")
        srv.sendall(b"y")
        h.recv_on(c, b"y")
        h.clock.advance(0.25)
    assert h.streams() == 1
    h.clock.advance(0.25)
    assert h.streams() == 0
    fields = h.log_line()
    assert fields[6] == "cD"
    assert fields[5] == "4"


def test_retries_wait_one_second_between_refused_connects(
    harness: Callable[..., Harness],
) -> None:
    h = harness("  retries 2\n  timeout connect 5s", server_port=_closed_port())
    h.client()
    h.run_until(lambda: h.clock.pending() == [h.clock.now + 1.0], "the first turn-around")
    h.clock.advance(1.0)
    h.run_until(lambda: h.clock.pending() == [h.clock.now + 1.0], "the second turn-around")
    assert h.streams() == 1
    h.clock.advance(1.0)
    h.run_until(lambda: h.streams() == 0, "the stream to end")
    fields = h.log_line()
    assert fields[6] == "SC"
    assert fields[7].endswith("/2")  # two retries


def test_queue_timeout_ends_a_waiting_connection(harness: Callable[..., Harness]) -> None:
    h = harness("  timeout queue 2s\n  timeout connect 5s")
    h.rt.backends["px"].servers[0].maxconn = 1
    first = h.client()
    h.accept()
    first.sendall(b"a")
    h.client()
    h.run_until(lambda: len(h.rt.backends["px"].queue) == 1, "the second connection to queue")
    h.clock.advance(1.999)
    assert h.streams() == 2
    h.clock.advance(0.001)
    assert h.streams() == 1
    fields = h.log_line()
    assert fields[6] == "sQ"
    assert fields[4].startswith("2000/")  # Tw


def test_client_fin_timeout_after_the_client_half_closes(
    harness: Callable[..., Harness],
) -> None:
    h = harness("  timeout client 30s\n  timeout server 30s\n  timeout client-fin 1s")
    c = h.client()
    srv = h.accept()
    c.shutdown(socket.SHUT_WR)
    h.recv_on(srv, b"")
    h.run_until(lambda: h.clock.pending() == [h.clock.now + 1.0], "the client-fin timer")
    h.clock.advance(1.0)
    assert h.streams() == 0
    assert h.log_line()[6] == "cD"
