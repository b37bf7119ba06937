"""PROXY headers nsproxy sends, compared byte for byte with what HAProxy 2.6 sends."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from lab.netlab import Lab, Proxy, Sink, connect, recv_all

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

# server options under test, one listener port each (listener port = 20100 + index)
CASES = [
    "send-proxy",
    "send-proxy-v2",
    "send-proxy-v2 proxy-v2-options crc32c,unique-id",
    "send-proxy-v2-ssl",
    "proxy-v2-options crc32c",
    "send-proxy send-proxy-v2",
]


def _config(ns: str, sink_port: int) -> str:
    out = [
        "defaults\n mode tcp\n timeout connect 2s\n timeout client 5s\n timeout server 5s\n"
        " unique-id-format ID-%fp\n"
    ]
    for i, opts in enumerate(CASES):
        out.append(
            f"listen l{i}\n bind 127.0.0.1:{20100 + i} namespace {ns}\n"
            f" server s 127.0.0.1:{sink_port} {opts}\n"
        )
    out.append(
        f"listen relay\n bind 127.0.0.1:20199 namespace {ns} accept-proxy\n"
        f" server s 127.0.0.1:{sink_port} send-proxy-v2 proxy-v2-options crc32c\n"
    )
    return "".join(out)


def _collect(ns: str, sink: Sink, side: str) -> list[bytes]:
    got = []
    for i in range(len(CASES)):
        before = len(sink.conns)
        with connect(ns, ("127.0.0.1", 20100 + i), source=("127.0.0.1", 41000 + i)) as c:
            c.sendall(b"payload")
            c.shutdown(socket.SHUT_WR)
            recv_all(c)
        try:
            conn = sink.wait_conns(before + 1)[before]
        except TimeoutError as exc:
            raise AssertionError(f"{side}: '{CASES[i]}' never reached the server") from exc
        conn.closed.wait(5)
        got.append(bytes(conn.data))
    hdr = bytes.fromhex(
        "0d0a0d0a000d0a515549540a2111000c0a010203c633640204d20050"
    )  # 10.1.2.3:1234 -> 198.51.100.2:80, no TLV
    before = len(sink.conns)
    with connect(ns, ("127.0.0.1", 20199), source=("127.0.0.1", 41099)) as c:
        c.sendall(hdr + b"payload")
        c.shutdown(socket.SHUT_WR)
        recv_all(c)
    conn = sink.wait_conns(before + 1)[before]
    conn.closed.wait(5)
    got.append(bytes(conn.data))
    return got


def _wait_listening(ns: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}"],
            capture_output=True,
            text=True,
        ).stdout
        if f":{port}" in out:
            return
        time.sleep(0.05)
    raise AssertionError("haproxy did not listen")


def test_sent_headers_match_haproxy(lab: Lab) -> None:
    if not os.path.exists(HAPROXY):
        if os.environ.get("CI"):
            pytest.fail("HAProxy (Debian package haproxy) is needed for differential tests")
        pytest.skip("haproxy not installed")
    sink = lab.sink(None, "127.0.0.1", 0)
    # HAProxy first, in namespace "diff"; then the namespace is re-created under the same name
    # (so the NETNS TLVs and every address and port are the same) and nsproxy runs.
    ns = lab.netns("diff")
    with tempfile.TemporaryDirectory(prefix="nsp-diffsend-") as tmp:
        cfg = os.path.join(tmp, "h.cfg")
        with open(cfg, "w") as f:
            f.write(_config(ns, sink.port))
        hap = subprocess.Popen(
            [HAPROXY, "-db", "-f", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_listening(ns, 20199)
            theirs = _collect(ns, sink, "HAProxy")
        finally:
            hap.terminate()
            hap.wait(5)
    subprocess.run(["ip", "netns", "del", ns], check=True)
    lab.namespaces.remove(ns)
    ns = lab.netns("diff")
    proxy = Proxy(_config(ns, sink.port))
    try:
        ours = _collect(ns, sink, "nsproxy")
    finally:
        proxy.stop()
    assert ours[0].startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 41000 20100\r\n")
    assert ours[1].startswith(bytes.fromhex("0d0a0d0a000d0a515549540a21"))
    for case, mine, reference in zip([*CASES, "relay"], ours, theirs, strict=True):
        assert mine == reference, case
