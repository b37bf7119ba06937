"""The stats socket bounded like the data path: no client can grow nsproxy's memory without
limit, stall the event loop, hold the socket with trickled bytes or take every slot."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from pathlib import Path

import pytest

from lab.netlab import Lab, Proxy, cli, free_port, tcp_defaults, wait_until

MODES = ("single", "master")  # one process, or the master's own stats sockets (-W)


def _proxy(lab: Lab, sock: str, extra: str = "", mode: str = "single") -> Proxy:
    port = free_port()
    return lab.proxy(
        f"global\n  stats socket {sock} level admin\n{extra}"
        + tcp_defaults(tcplog=False)
        + f"\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n"
        "backend be\n" + "".join(f"  server s{i} 127.0.0.1:{7000 + i}\n" for i in range(20)),
        extra_args=("-W",) if mode == "master" else (),
    )


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        line = next(ln for ln in f if ln.startswith(key + ":"))
    return int(line.split()[1])  # kB


def _prompt(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(b"prompt\n")
    assert s.recv(16) == b"\n> "
    return s


@pytest.mark.parametrize("mode", MODES)
def test_a_client_that_never_reads_cannot_grow_memory(lab: Lab, tmp_path: Path, mode: str) -> None:
    sock = str(tmp_path / "s.sock")
    p = _proxy(lab, sock, mode=mode)
    before = _status(p.proc.pid, "VmHWM")
    flood = _prompt(sock)
    flood.setblocking(False)
    lines = b"show stat\n" * 100_000  # ~1 MB of commands, ~3 GB of answers, never read
    sent = 0
    deadline = time.monotonic() + 4  # bounded
    while sent < len(lines) and time.monotonic() < deadline:
        _, writable, _ = select.select([], [flood], [], 0.05)
        if writable:
            with contextlib.suppress(BlockingIOError):
                sent += flood.send(lines[sent : sent + 65536])
    assert sent < len(lines)  # nsproxy stopped reading: the kernel buffers are full
    assert cli(sock, "show cli level") == b"admin\n\n"  # the others are served meanwhile
    grown_mb = (_status(p.proc.pid, "VmHWM") - before) / 1024
    assert grown_mb < 30, grown_mb
    flood.setblocking(True)
    assert flood.recv(65536).startswith(b"# pxname,svname,")  # and it gets its answers
    flood.close()


@pytest.mark.parametrize("mode", MODES)
def test_one_long_line_does_not_stall_the_event_loop(lab: Lab, tmp_path: Path, mode: str) -> None:
    sock = str(tmp_path / "s.sock")
    _proxy(lab, sock, mode=mode)
    heavy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    heavy.connect(sock)
    heavy.sendall(b"show stat;" * 6500 + b"\n")  # one 64 KiB line, its answers unread
    t0 = time.monotonic()
    assert cli(sock, "show cli level") == b"admin\n\n"
    assert time.monotonic() - t0 < 0.5
    heavy.close()


@pytest.mark.parametrize("mode", MODES)
def test_trickled_bytes_do_not_extend_stats_timeout(lab: Lab, tmp_path: Path, mode: str) -> None:
    sock = str(tmp_path / "s.sock")
    _proxy(lab, sock, "  stats timeout 1s\n", mode)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    closed = threading.Event()

    def trickle() -> None:
        deadline = time.monotonic() + 6  # bounded: a byte every 100 ms, never a full line
        while time.monotonic() < deadline and not closed.is_set():
            try:
                s.send(b"s")
            except OSError:
                closed.set()
            time.sleep(0.1)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        wait_until(closed.is_set, 4, "the stats timeout to close the trickling client")
    finally:
        closed.set()
        t.join()
        s.close()


def test_stats_socket_maxconn_defaults_to_haproxys_10(lab: Lab, tmp_path: Path) -> None:
    for server in ("haproxy", "nsproxy", "master"):
        sock = str(tmp_path / f"{server}.sock")
        if server == "haproxy":
            lab.haproxy(f"global\n  stats socket {sock} level admin\n", sock)
        else:
            _proxy(lab, sock, mode="master" if server == "master" else "single")
        held = [_prompt(sock) for _ in range(10)]
        extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        extra.connect(sock)  # the kernel's backlog takes it; the proxy does not
        extra.sendall(b"show cli level\n")
        ready, _, _ = select.select([extra], [], [], 0.5)
        assert ready == [], server
        held.pop().close()
        extra.settimeout(5)
        assert extra.recv(64) == b"admin\n\n", server
        for s in [*held, extra]:
            s.close()


@pytest.mark.parametrize("mode", MODES)
def test_stats_maxconn_and_per_socket_maxconn(lab: Lab, tmp_path: Path, mode: str) -> None:
    sock = str(tmp_path / "s.sock")
    two = str(tmp_path / "two.sock")
    _proxy(lab, sock, f"  stats maxconn 1\n  stats socket {two} level admin maxconn 2\n", mode)
    first = _prompt(sock)
    second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    second.connect(sock)
    second.sendall(b"show cli level\n")
    assert select.select([second], [], [], 0.5)[0] == []
    held = [_prompt(two), _prompt(two)]
    first.close()
    second.settimeout(5)
    assert second.recv(64) == b"admin\n\n"
    for s in [second, *held]:
        s.close()


@pytest.mark.parametrize("mode", MODES)
def test_set_timeout_cli_applies_to_the_session(lab: Lab, tmp_path: Path, mode: str) -> None:
    sock = str(tmp_path / "s.sock")
    _proxy(lab, sock, mode=mode)  # stats timeout: 10 s
    s = _prompt(sock)
    s.sendall(b"set timeout cli 1\n")
    assert s.recv(16) == b"\n> "
    t0 = time.monotonic()
    assert s.recv(16) == b""  # closed by the server after 1 s idle
    assert time.monotonic() - t0 < 5
    s.close()
