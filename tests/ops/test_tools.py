"""HAProxy's operator tools run unchanged against nsproxy, side by side with HAProxy 2.6:
hatop (Debian package, driven headless on a pseudo-terminal) and haproxyadmin (PyPI)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from lab.netlab import Lab, cli, connect, free_port, recv_all, tcp_defaults, wait_until
from nsproxy.ops import identity


def _config(sock: str, port: int) -> str:
    return (
        f"global\n  stats socket {sock} level admin\n"
        + tcp_defaults(tcplog=False)
        + f"\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n"
        "backend be\n  server s1 127.0.0.1:7000\n  server s2 127.0.0.1:7001 weight 3\n"
    )


def _both(lab: Lab, tmp_path: Path) -> tuple[str, str]:
    """A stats socket of HAProxy and one of nsproxy, on the same configuration."""
    hsock, nsock = str(tmp_path / "h.sock"), str(tmp_path / "n.sock")
    lab.haproxy(_config(hsock, free_port()), hsock)
    lab.proxy(_config(nsock, free_port()))
    return hsock, nsock


def _hatop_screen(sock: str, seconds: float = 2.5) -> tuple[int, str]:
    """hatop's exit status and the text it drew on a 160x40 terminal before 'q'."""
    exe = shutil.which("hatop")
    if exe is None:
        pytest.fail("hatop (Debian package hatop) is needed")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        [exe, "-s", sock, "-i", "1"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "xterm"},
    )
    os.close(slave)
    screen = bytearray()
    deadline = time.monotonic() + seconds  # bounded: hatop redraws every second until 'q'
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    screen += os.read(master, 65536)
                except OSError:
                    break
        if proc.poll() is None:
            os.write(master, b"q")
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]", b" ", bytes(screen))
    return code, " ".join(text.decode("utf-8", "replace").split())


def test_hatop_shows_nsproxy_as_it_shows_haproxy(lab: Lab, tmp_path: Path) -> None:
    hsock, nsock = _both(lab, tmp_path)
    for sock, version, date in (
        (hsock, r"2\.6\.\S+", r"\d{4}/"),
        (nsock, re.escape(identity.VERSION), re.escape(identity.RELEASE_DATE[:5])),
    ):
        code, screen = _hatop_screen(sock)
        assert code == 0, screen
        # the field after the date overwrites its end on hatop's screen
        assert re.search(rf"HAProxy Version: {version} \(released: {date}", screen), screen
        assert re.search(r">>> fe .*FRONTEND \d+ OPEN", screen), screen
        assert re.search(r">>> be s1 1 .* s2 3 .* BACKEND \d+ UP", screen), screen


def test_haproxyadmin_drives_nsproxy_as_it_drives_haproxy(lab: Lab, tmp_path: Path) -> None:
    from haproxyadmin import haproxy
    from haproxyadmin.server import STATE_DRAIN, STATE_MAINT, STATE_READY

    seen = []
    for sock in _both(lab, tmp_path):
        hap = haproxy.HAProxy(socket_file=sock)  # refuses a socket whose Name is not HAProxy's
        s2 = hap.server("s2")[0]
        run = [
            hap.version.startswith("2.6."),
            bool(re.fullmatch(r"\d{4}/\d\d/\d\d", hap.releasedate)),
            [f.name for f in hap.frontends()],
            sorted((s.name, s.backendname, s.weight, s.address, s.port) for s in hap.servers()),
            hap.backend("be").status,
        ]
        s2.setweight(5)
        run.append(s2.weight)
        for state in (STATE_DRAIN, STATE_MAINT, STATE_READY):
            s2.setstate(state)
            run.append(s2.status)
        seen.append(run)
    theirs, ours = seen
    assert ours == theirs
    assert ours[:2] == [True, True]


def test_hatop_reads_nsproxy_http_counters_as_haproxy(lab: Lab, tmp_path: Path) -> None:
    """An HTTP frontend after compressed responses and a request that never completed: the
    compression and request-error counters parse as HAProxy's (hatop types every column)."""
    body = b"hello " * 200
    web = lab.sink(
        None,
        "127.0.0.1",
        reply=b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    for name in ("h", "n"):
        sock, port = str(tmp_path / f"{name}.sock"), free_port()
        text = (
            f"global\n  stats socket {sock} level admin\n"
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
            f"  timeout connect 2s\nfrontend web\n  bind 127.0.0.1:{port}\n  default_backend app\n"
            f"backend app\n  compression algo gzip\n  server a1 127.0.0.1:{web.port}\n"
        )
        if name == "h":
            lab.haproxy(text, sock)
        else:
            lab.proxy(text)
        with connect(None, ("127.0.0.1", port)) as c:
            c.sendall(
                b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
            )
            assert b"content-encoding: gzip" in recv_all(c)
        with connect(None, ("127.0.0.1", port)) as c:
            c.sendall(b"GET / HT")
        wait_until(lambda s=sock: _ereq(s) == "1", 10, "ereq")
        code, screen = _hatop_screen(sock)
        assert code == 0, screen
        assert re.search(r">>> web .*FRONTEND \d+ OPEN", screen), screen
        assert re.search(r">>> app a1 1 .* BACKEND \d+ UP", screen), screen


def _ereq(sock: str) -> str:
    lines = cli(sock, "show stat").decode().splitlines()
    names = lines[0].removeprefix("# ").split(",")
    row = next(dict(zip(names, ln.split(","), strict=True)) for ln in lines if ",FRONTEND," in ln)
    return row["ereq"]
