"""The command line: -v, -c, -D with -p, and signals, on a real process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from lab.netlab import Lab, connect, free_port, recv_all, wait_until


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nsproxy", *args], capture_output=True, text=True, timeout=30
    )


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _refused(port: int) -> bool:
    try:
        connect(None, ("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_usage_without_a_configuration() -> None:
    assert _run().returncode != 0


def test_version_reads_like_haproxys_and_names_nsproxy() -> None:
    """-v: HAProxy's first line (`HAProxy version V DATE - ...`) with nsproxy in it."""
    haproxy = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, timeout=10)
    head = re.compile(r"HAProxy version (2\.6\.\S+) (\d{4}/\d\d/\d\d) - \S")
    assert head.match(haproxy.stdout), haproxy.stdout
    res = _run("-v")
    assert res.returncode == 0
    m = head.match(res.stdout)
    assert m is not None, res.stdout
    assert "nsproxy" in m.group(1) and "nsproxy" in res.stdout.splitlines()[0]
    running = [ln for ln in res.stdout.splitlines() if ln.startswith("Running on: ")]
    assert running == [ln for ln in haproxy.stdout.splitlines() if ln.startswith("Running on: ")]


def test_build_report_has_haproxys_feature_list() -> None:
    """-vv: scripts grep its `Feature list` for +NS and +PROMEX, as in HAProxy's."""

    def features(text: str) -> set[str]:
        line = next(ln for ln in text.splitlines() if ln.startswith("Feature list : "))
        words = line.split(" : ", 1)[1].split()
        assert all(re.fullmatch(r"[+-][A-Z0-9_]+", w) for w in words), line
        return set(words)

    haproxy = subprocess.run(["haproxy", "-vv"], capture_output=True, text=True, timeout=10)
    ours = _run("-vv")
    assert ours.returncode == 0 and ours.stdout.startswith(_run("-v").stdout)
    assert {"+NS", "+PROMEX"} <= features(haproxy.stdout) & features(ours.stdout)
    assert "-OPENSSL" in features(ours.stdout)  # no TLS yet: not claimed
    for section in ("Build options :", "Default settings :", "Available polling systems :"):
        assert section in ours.stdout and section in haproxy.stdout


def test_daemon_with_pidfile_serves_and_stops_on_sigterm(lab: Lab, tmp_path: Path) -> None:
    sink = lab.sink(None, "127.0.0.1", free_port(), reply=b"pong\n")
    lport = free_port()
    cfg = tmp_path / "d.cfg"
    pidfile = tmp_path / "nsproxy.pid"
    cfg.write_text(
        "defaults\n mode tcp\n timeout connect 2s\n timeout client 5s\n timeout server 5s\n"
        f"listen d\n bind 127.0.0.1:{lport}\n server s 127.0.0.1:{sink.port}\n"
    )
    res = _run("-D", "-p", str(pidfile), "-f", str(cfg))
    assert res.returncode == 0, res.stderr
    wait_until(pidfile.exists, 10, "the daemon's pidfile")
    pid = int(pidfile.read_text())
    try:
        with connect(None, ("127.0.0.1", lport)) as c:
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"pong\n"
    finally:
        os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not _exists(pid), 10, "the daemon to stop on SIGTERM")
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        raise


def test_sigusr1_soft_stop_lets_connections_finish(lab: Lab) -> None:
    echo = lab.sink(None, "127.0.0.1", free_port(), echo=True)
    lport = free_port()
    proxy = lab.proxy(
        "defaults\n mode tcp\n timeout connect 2s\n timeout client 5s\n timeout server 5s\n"
        f"listen s\n bind 127.0.0.1:{lport}\n server e 127.0.0.1:{echo.port}\n"
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(b"one")
        assert c.recv(10) == b"one"
        proxy.proc.send_signal(signal.SIGUSR1)
        # the listener goes, the established connection still flows
        wait_until(lambda: _refused(lport), 5, "the listener to close on SIGUSR1")
        c.sendall(b"two")
        assert c.recv(10) == b"two"
        assert proxy.proc.poll() is None
    proxy.proc.wait(10)
    assert proxy.proc.returncode == 0
