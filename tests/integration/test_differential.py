"""The same inputs through HAProxy 2.6 and nsproxy, side by side: same verdicts, same bytes."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from lab.netlab import Lab, Sink, connect, free_port

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SIG = "0d0a0d0a000d0a515549540a"

# (name, bytes sent): a sample of the reference's receiver matrix, one segment each
INPUTS = [
    ("v1 tcp4", b"PROXY TCP4 10.1.2.3 10.1.2.4 1111 2222\r\nDATA"),
    ("v1 tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 1111 2222\r\nDATA"),
    ("v1 unknown", b"PROXY UNKNOWN\r\nDATA"),
    ("v1 unknown long", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nDATA"),
    ("v1 leading zeros", b"PROXY TCP4 010.001.002.003 10.1.2.4 01111 2222\r\nDATA"),
    ("v1 lf only", b"PROXY TCP4 10.1.2.3 10.1.2.4 1111 2222\nDATA"),
    ("v1 trailing space", b"PROXY TCP4 10.1.2.3 10.1.2.4 1111 2222 \r\nDATA"),
    ("v1 udp4", b"PROXY UDP4 10.1.2.3 10.1.2.4 1111 2222\r\nDATA"),
    ("v1 lower case", b"proxy TCP4 10.1.2.3 10.1.2.4 1111 2222\r\nDATA"),
    ("v1 tcp4 with ipv6", b"PROXY TCP4 ::1 ::2 1111 2222\r\nDATA"),
    ("http", b"GET / HTTP/1.0\r\n\r\n"),
    ("v2 inet", bytes.fromhex(SIG + "2111000c0a0102037f00000104d251a8") + b"DATA"),
    ("v2 local", bytes.fromhex(SIG + "20000000") + b"DATA"),
    ("v2 version 1", bytes.fromhex(SIG + "1111000c0a0102037f00000104d251a8") + b"DATA"),
    ("v2 command 2", bytes.fromhex(SIG + "2211000c0a0102037f00000104d251a8") + b"DATA"),
    ("v2 fam unspec", bytes.fromhex(SIG + "21000000") + b"DATA"),
    ("v2 short len", bytes.fromhex(SIG + "211100080a0102037f000001") + b"DATA"),
    ("v2 tlv overrun", bytes.fromhex(SIG + "2111000f0a0102037f00000104d251a8e00005") + b"DATA"),
    ("v2 noop tlv", bytes.fromhex(SIG + "211100100a0102037f00000104d251a8040001ff") + b"DATA"),
    ("v2 bad crc", bytes.fromhex(SIG + "211100130a0102037f00000104d251a803000400000000") + b"DATA"),
]


def _listening(port: int) -> bool:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True)
    return f":{port}" in out.stdout


@pytest.fixture
def haproxy_out() -> Iterator[object]:
    if not os.path.exists(HAPROXY):
        if os.environ.get("CI"):
            pytest.fail("HAProxy (Debian package haproxy) is needed for differential tests")
        pytest.skip("haproxy not installed")
    tmp = tempfile.TemporaryDirectory(prefix="nsp-diff-")
    procs: list[subprocess.Popen[bytes]] = []

    def start(config: str, port: int) -> str:
        cfg = os.path.join(tmp.name, "h.cfg")
        out = os.path.join(tmp.name, "h.out")
        with open(cfg, "w") as f:
            f.write(config)
        with open(out, "wb") as log:
            proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=log, stderr=log)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not _listening(port):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        return out

    yield start
    for p in procs:
        p.terminate()
        p.wait(5)
    tmp.cleanup()


def _config(port: int, sink_port: int, name: str) -> str:
    return f"""
global
  log stdout format raw local0
defaults
  mode tcp
  log global
  option tcplog
  timeout connect 2s
  timeout client 2s
  timeout server 2s
listen {name}
  bind 127.0.0.1:{port} accept-proxy
  server s 127.0.0.1:{sink_port}
"""


def _send(port: int, data: bytes) -> bytes:
    with connect(None, ("127.0.0.1", port)) as c:
        with contextlib.suppress(OSError):
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
        out = bytearray()
        with contextlib.suppress(OSError):
            while chunk := c.recv(4096):
                out += chunk
        return bytes(out)


def _verdicts(port: int, sink: Sink, log: object, read_log: object) -> dict[str, tuple[str, ...]]:
    seen: dict[str, tuple[str, ...]] = {}
    for name, data in INPUTS:
        before = len(sink.conns)
        reply = _send(port, data)
        time.sleep(0.05)
        with contextlib.suppress(TimeoutError):  # HAProxy may refuse: no connection
            sink.wait_conns(before + 1, timeout=0.3)
        conns = list(sink.conns)[before:]
        for c in conns:
            c.closed.wait(2)
        forwarded = bytes(conns[0].data) if conns else None
        seen[name] = (repr(forwarded), repr(reply))
    return seen


def _messages(text: str, proxy: str) -> list[str]:
    """The error messages of `proxy`'s error log lines, in order, without dates and ports."""
    return re.findall(rf" {proxy}/1: (.*)$", text, re.M)


def test_receiver_verdicts_match_haproxy(lab: Lab, haproxy_out) -> None:  # type: ignore[no-untyped-def]
    sink = lab.sink(None, "127.0.0.1", free_port(), reply=b"")
    hport, nport = free_port(), free_port()
    hout = haproxy_out(_config(hport, sink.port, "px"), hport)
    nsp = lab.proxy(_config(nport, sink.port, "px"))
    theirs = _verdicts(hport, sink, None, None)
    ours = _verdicts(nport, sink, None, None)
    assert ours == theirs
    time.sleep(0.2)
    with open(hout) as f:
        hap_text = f.read()
    assert _messages(nsp.output(), "px") == _messages(hap_text, "px")
    assert len(_traffic(hap_text)) >= 5  # the accepted inputs were logged
    assert _traffic(nsp.output()) == _traffic(hap_text)


def _traffic(text: str) -> list[tuple[str, ...]]:
    """tcplog lines: client address (a real peer's port varies), proxy, server, bytes, state."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 7 and f[3] == "px/s":
            ip, _, port = f[0].rpartition(":")
            out.append((ip, port if ip != "127.0.0.1" else "*", f[2], f[3], f[5], f[6]))
    return out
