"""`option log-health-checks`: nsproxy's check lines against HAProxy's for fail, down, up."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator

import pytest

from lab.netlab import Lab, free_port, wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _config(port: int, target: int) -> str:
    return f"""
global
  log stdout format raw local0
defaults
  mode tcp
  log global
  timeout connect 1s
  timeout client 5s
  timeout server 5s
listen l
  bind 127.0.0.1:{port}
  option log-health-checks
  server s1 127.0.0.1:{target} check inter 100ms rise 2 fall 3
"""


def _listen(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    return s


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


@pytest.fixture
def haproxy_log() -> Iterator[Callable[[str], str]]:
    """Starts HAProxy on a configuration; returns the path of its combined output."""
    if not os.path.exists(HAPROXY):
        if os.environ.get("CI"):
            pytest.fail("HAProxy (Debian package haproxy) is needed for comparison tests")
        pytest.skip("haproxy not installed")
    tmp = tempfile.mkdtemp(prefix="nsp-hlog-")
    procs: list[subprocess.Popen[bytes]] = []

    def start(cfg: str) -> str:
        path, out = os.path.join(tmp, "h.cfg"), os.path.join(tmp, "out.log")
        with open(path, "w") as f:
            f.write(cfg)
        with open(out, "wb") as log:
            procs.append(subprocess.Popen([HAPROXY, "-db", "-f", path], stdout=log, stderr=log))
        return out

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)


def _wait_both(ours: Callable[[], str], theirs: Callable[[], str], needle: str, n: int) -> None:
    try:
        wait_until(
            lambda: ours().count(needle) >= n and theirs().count(needle) >= n,
            15,
            f"{needle!r} x{n} in both outputs",
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}:\n{ours()}\n---\n{theirs()}") from None


def _warnings(text: str) -> list[str]:
    """The process's own messages (stderr form), without PID and durations."""
    lines = [ln for ln in text.splitlines() if ln.startswith("[")]
    return [re.sub(r"\(\d+\)|duration: \d+ms", "", ln) for ln in lines]


def test_fail_down_up_sequence_matches_haproxy(lab: Lab, haproxy_log: Callable[[str], str]) -> None:
    target = free_port()
    server = _listen(target)
    hport, nport = free_port(), free_port()
    hout = haproxy_log(_config(hport, target))
    proxy = lab.proxy(_config(nport, target))

    def theirs() -> str:
        return _read(hout)

    try:
        _wait_both(proxy.output, theirs, "status: 3/3 UP.", 1)
        server.close()
        _wait_both(proxy.output, theirs, "has no server available!", 1)
        server = _listen(target)
        _wait_both(proxy.output, theirs, " is UP.", 1)
    finally:
        server.close()

    ours = _warnings(proxy.output())
    assert ours == _warnings(theirs())
    assert [ln.split(" : ", 1)[1] for ln in ours] == [
        "Health check for server l/s1 succeeded, reason: Layer4 check passed, check ,"
        " status: 3/3 UP.",
        'Health check for server l/s1 failed, reason: Layer4 connection problem, info: "Connection'
        ' refused", check , status: 2/3 UP.',
        'Health check for server l/s1 failed, reason: Layer4 connection problem, info: "Connection'
        ' refused", check , status: 1/3 UP.',
        'Health check for server l/s1 failed, reason: Layer4 connection problem, info: "Connection'
        ' refused", check , status: 0/2 DOWN.',
        "Server l/s1 is DOWN. 0 active and 0 backup servers left. 0 sessions active, 0 requeued,"
        " 0 remaining in queue.",
        "proxy 'l' has no server available!",
        "Health check for server l/s1 succeeded, reason: Layer4 check passed, check ,"
        " status: 1/2 DOWN.",
        "Health check for server l/s1 succeeded, reason: Layer4 check passed, check ,"
        " status: 3/3 UP.",
        "Server l/s1 is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in"
        " queue.",
    ]
    logged = [ln for ln in proxy.output().splitlines() if ln.startswith("Health check for")]
    assert len(logged) == 6  # also sent to the proxy's log, at LOG_NOTICE
