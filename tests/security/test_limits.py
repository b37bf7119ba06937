"""Resource limits: maxconn, fd exhaustion, slowloris headers, and no fd leak over 1,000 ends."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from lab.netlab import (
    Lab,
    Proxy,
    connect,
    free_port,
    recv_all,
    socket_in,
    tcp_defaults,
    wait_until,
)

DEFAULTS = tcp_defaults()
SIG = bytes.fromhex("0d0a0d0a000d0a515549540a")
_RST = struct.pack("ii", 1, 0)


def fd_count(proxy: Proxy) -> int:
    return len(os.listdir(f"/proc/{proxy.proc.pid}/fd"))


def wait_fds(proxy: Proxy, want: int, timeout: float = 20.0) -> int:
    """The proxy's fd count once it equals `want` (or whatever it is when `timeout` ends)."""
    deadline = time.monotonic() + timeout
    n = fd_count(proxy)
    while n != want and time.monotonic() < deadline:
        time.sleep(0.05)
        n = fd_count(proxy)
    return n


class RstServer:
    """A server in a namespace that accepts each connection and resets it at once."""

    def __init__(self, ns: str) -> None:
        self.sock = socket_in(ns)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
            c.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _quietly(fn: Callable[[], object]) -> None:
    with contextlib.suppress(OSError):
        fn()


def test_no_fd_leak_after_1000_connections_ending_every_way(lab: Lab) -> None:
    ns = lab.netns("fdleak")
    echo = lab.sink(ns, "127.0.0.1", echo=True)
    rst = RstServer(ns)
    closed_port = free_port(ns)
    plain, refused, reset, pp = (free_port() for _ in range(4))
    proxy = lab.proxy(
        DEFAULTS
        + f"""
  retries 0
listen plain
  bind 127.0.0.1:{plain}
  server s 127.0.0.1:{echo.port} namespace {ns}
listen refused
  bind 127.0.0.1:{refused}
  server s 127.0.0.1:{closed_port} namespace {ns}
listen reset
  bind 127.0.0.1:{reset}
  server s 127.0.0.1:{rst.port} namespace {ns}
listen pp
  bind 127.0.0.1:{pp} accept-proxy
  timeout client 1s
  server s 127.0.0.1:{echo.port} namespace {ns}
"""
    )
    try:
        payload = b"0123456789" * 100

        def normal_close() -> None:
            with connect(None, ("127.0.0.1", plain)) as c:
                c.sendall(payload)
                got = b""
                while len(got) < len(payload):
                    data = c.recv(65536)
                    assert data
                    got += data
                assert got == payload

        def half_close() -> None:
            with connect(None, ("127.0.0.1", plain)) as c:
                c.sendall(payload)
                c.shutdown(socket.SHUT_WR)
                assert recv_all(c) == payload

        def client_rst() -> None:
            c = connect(None, ("127.0.0.1", plain))
            c.sendall(payload)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
            c.close()

        def server_refused() -> None:
            with connect(None, ("127.0.0.1", refused)) as c:
                c.sendall(b"x")
                _quietly(lambda: recv_all(c))

        def server_rst() -> None:
            with (
                contextlib.suppress(ConnectionResetError),
                connect(None, ("127.0.0.1", reset)) as c,
            ):  # the reset may arrive before connect() returns
                _quietly(lambda: c.sendall(b"x"))
                _quietly(lambda: recv_all(c))

        def header_timeout() -> None:
            with connect(None, ("127.0.0.1", pp)) as c:
                c.sendall(SIG[:5])
                _quietly(lambda: recv_all(c))

        def bad_header() -> None:
            with connect(None, ("127.0.0.1", pp)) as c:
                _quietly(lambda: c.sendall(b"GET / HTTP/1.0\r\n\r\n"))
                _quietly(lambda: recv_all(c))

        kinds = [
            normal_close,
            half_close,
            client_rst,
            server_refused,
            server_rst,
            header_timeout,
            bad_header,
        ]
        for kind in kinds:  # warm-up: anything opened lazily is opened now
            kind()
        before = wait_fds(proxy, -1, timeout=1.0)
        jobs = [kinds[i % len(kinds)] for i in range(1000)]
        with ThreadPoolExecutor(max_workers=64) as pool:
            for fut in [pool.submit(job) for job in jobs]:
                fut.result()
        after = wait_fds(proxy, before)
        assert after == before, proxy.output()[-2000:]
        normal_close()
        assert proxy.proc.poll() is None
    finally:
        rst.close()


def test_global_maxconn_holds_the_next_connection_in_the_backlog(lab: Lab) -> None:
    ns = lab.netns("maxconn")
    echo = lab.sink(ns, "127.0.0.1", echo=True)
    port = free_port()
    lab.proxy(
        DEFAULTS.replace("global\n", "global\n  maxconn 2\n")
        + f"""
listen l
  bind 127.0.0.1:{port}
  server s 127.0.0.1:{echo.port} namespace {ns}
"""
    )
    held = [connect(None, ("127.0.0.1", port)) for _ in range(2)]
    for i, c in enumerate(held):
        c.sendall(b"held%d" % i)
        assert c.recv(100) == b"held%d" % i
    waiting = connect(None, ("127.0.0.1", port))  # the kernel completes the handshake
    waiting.sendall(b"third")
    waiting.settimeout(0.5)
    try:
        early = waiting.recv(100)
    except TimeoutError:
        early = None
    assert early is None  # not served while two connections are open
    assert len(echo.conns) == 2
    held[0].close()
    waiting.settimeout(5)
    assert waiting.recv(100) == b"third"  # served, not dropped
    waiting.close()
    held[1].close()


def test_frontend_maxconn_limits_only_its_frontend(lab: Lab) -> None:
    ns = lab.netns("femax")
    echo = lab.sink(ns, "127.0.0.1", echo=True)
    small, other = free_port(), free_port()
    lab.proxy(
        DEFAULTS
        + f"""
listen small
  bind 127.0.0.1:{small}
  maxconn 1
  server s 127.0.0.1:{echo.port} namespace {ns}
listen other
  bind 127.0.0.1:{other}
  server s 127.0.0.1:{echo.port} namespace {ns}
"""
    )
    first = connect(None, ("127.0.0.1", small))
    first.sendall(b"one")
    assert first.recv(10) == b"one"
    second = connect(None, ("127.0.0.1", small))
    second.sendall(b"two")
    second.settimeout(0.5)
    try:
        early = second.recv(10)
    except TimeoutError:
        early = None
    assert early is None
    with connect(None, ("127.0.0.1", other)) as c:  # the other frontend is not limited
        c.sendall(b"free")
        assert c.recv(10) == b"free"
    first.close()
    second.settimeout(5)
    assert second.recv(10) == b"two"
    second.close()


def test_fd_exhaustion_closes_or_delays_with_a_log_line_then_recovers(lab: Lab) -> None:
    ns = lab.netns("emfile")
    echo = lab.sink(ns, "127.0.0.1", echo=True)
    port = free_port()
    import sys

    proxy = lab.proxy(
        DEFAULTS
        + f"""
  retries 0
listen l
  bind 127.0.0.1:{port}
  server s 127.0.0.1:{echo.port} namespace {ns}
""",
        command=("prlimit", "--nofile=48:48", sys.executable, "-m", "nsproxy"),
    )
    with connect(None, ("127.0.0.1", port)) as c:  # opens what the process opens lazily
        c.sendall(b"warm")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"warm"
    base = wait_fds(proxy, -1, timeout=0.5)
    assert base < 40
    n = 48  # more connections than the process has fds: each needs two
    clients: list[socket.socket] = []
    for _ in range(n):
        c = connect(None, ("127.0.0.1", port))
        c.sendall(b"ping")
        clients.append(c)

    def limit_logged() -> str | None:
        out = proxy.output()
        logged = "reached process FD limit" in out or "file descriptor or memory limit" in out
        return out if logged else None

    wait_until(limit_logged, 10, "a log line for the fd limit")
    served = 0
    for c in clients:
        c.settimeout(0.3)
        try:
            data = c.recv(10)
        except (TimeoutError, ConnectionResetError):
            data = None
        served += data == b"ping"
    assert served > 0  # the rest were closed, or waited in the backlog until fds came back
    for c in clients:
        c.close()
    assert wait_fds(proxy, base) == base  # everything given back
    for i in range(5):  # and the proxy serves again
        with connect(None, ("127.0.0.1", port)) as c:
            c.sendall(b"again%d" % i)
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"again%d" % i
    assert proxy.proc.poll() is None


def test_slowloris_proxy_header_is_cut_by_timeout_client(lab: Lab) -> None:
    ns = lab.netns("slow")
    sink = lab.sink(ns, "127.0.0.1")
    port = free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
listen l
  bind 127.0.0.1:{port} accept-proxy
  timeout client 2s
  server s 127.0.0.1:{sink.port} namespace {ns}
"""
    )
    body = socket.inet_aton("10.0.0.1") + socket.inet_aton("10.0.0.2") + struct.pack("!HH", 1, 2)
    header = SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body
    sent = 0
    with connect(None, ("127.0.0.1", port)) as c:
        c.settimeout(1.0)
        for byte in header:  # one byte a second
            try:
                c.sendall(bytes([byte]))
                sent += 1
                if c.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
    assert sent < len(header)
    out = proxy.wait_output("Timeout while waiting for PROXY protocol header")
    assert "Timeout while waiting for PROXY protocol header" in out
    assert sink.conns == []
