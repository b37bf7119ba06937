"""Interoperability with HAProxy 2.6: PROXY v2 with the NETNS TLV across mixed proxy chains."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from lab.netlab import Lab, connect, free_port, recv_all, tcp_defaults

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
BASE = tcp_defaults()


def _listening(ns: str | None, port: int) -> bool:
    cmd = ["ss", "-Hltn", f"sport = :{port}"]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    return f":{port}" in subprocess.run(cmd, capture_output=True, text=True).stdout


@pytest.fixture
def haproxy() -> Iterator[object]:
    if not os.path.exists(HAPROXY):
        if os.environ.get("CI"):
            pytest.fail("HAProxy (Debian package haproxy) is needed for interoperability tests")
        pytest.skip("haproxy not installed")
    procs: list[subprocess.Popen[bytes]] = []
    tmp = tempfile.TemporaryDirectory(prefix="nsp-hap-")

    def start(config: str, ns: str | None, port: int) -> subprocess.Popen[bytes]:
        path = os.path.join(tmp.name, f"h{len(procs)}.cfg")
        with open(path, "w") as f:
            f.write(config)
        proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not _listening(ns, port):
            assert proc.poll() is None, "haproxy exited"
            assert time.monotonic() < deadline, "haproxy did not listen"
            time.sleep(0.05)
        return proc

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    tmp.cleanup()


def test_haproxy_sends_netns_tlv_to_nsproxy(lab: Lab, haproxy) -> None:  # type: ignore[no-untyped-def]
    ns = lab.netns("tenant")
    target = lab.sink(ns, "127.0.0.1", 7000, reply=b"tenant\n")
    decoy = lab.sink(None, "127.0.0.1", 7000, reply=b"root\n")
    nsp = free_port()
    lab.proxy(
        BASE
        + f"""
namespace_list
 namespace {ns}
listen back
 bind 127.0.0.1:{nsp} accept-proxy
 server s 127.0.0.1:7000 namespace *
"""
    )
    haproxy(
        BASE
        + f"""
listen front
 bind 127.0.0.1:80 namespace {ns}
 server n 127.0.0.1:{nsp} send-proxy-v2
""",
        ns,
        80,
    )
    with connect(ns, ("127.0.0.1", 80)) as c:
        c.sendall(b"hi")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"tenant\n"
    assert len(target.wait_conns(1)) == 1
    assert decoy.conns == []


def test_nsproxy_sends_netns_tlv_to_haproxy(lab: Lab, haproxy) -> None:  # type: ignore[no-untyped-def]
    ns = lab.netns("tenant")
    target = lab.sink(ns, "127.0.0.1", 7000, reply=b"tenant\n")
    decoy = lab.sink(None, "127.0.0.1", 7000, reply=b"root\n")
    hap = free_port()
    haproxy(
        BASE
        + f"""
namespace_list
 namespace {ns}
listen back
 bind 127.0.0.1:{hap} accept-proxy
 server s 127.0.0.1:7000 namespace *
""",
        None,
        hap,
    )
    lab.proxy(
        BASE
        + f"""
listen front
 bind 127.0.0.1:80 namespace {ns}
 server h 127.0.0.1:{hap} send-proxy-v2
"""
    )
    with connect(ns, ("127.0.0.1", 80)) as c:
        c.sendall(b"hi")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"tenant\n"
    conn = target.wait_conns(1)[0]
    conn.closed.wait(5)
    assert bytes(conn.data) == b"hi"
    assert decoy.conns == []


def test_chain_nsproxy_haproxy_nsproxy_keeps_namespace(lab: Lab, haproxy) -> None:  # type: ignore[no-untyped-def]
    ns_a, ns_b = lab.netns("a"), lab.netns("b")
    in_a = lab.sink(ns_a, "127.0.0.1", 7000, reply=b"A\n")
    in_b = lab.sink(ns_b, "127.0.0.1", 7000, reply=b"B\n")
    hap, last = free_port(), free_port()
    lab.proxy(
        BASE
        + f"""
namespace_list
 namespace {ns_a}
 namespace {ns_b}
listen last
 bind 127.0.0.1:{last} accept-proxy
 server s 127.0.0.1:7000 namespace *
"""
    )
    haproxy(
        BASE
        + f"""
namespace_list
 namespace {ns_a}
 namespace {ns_b}
listen middle
 bind 127.0.0.1:{hap} accept-proxy
 server n 127.0.0.1:{last} send-proxy-v2
""",
        None,
        hap,
    )
    lab.proxy(
        BASE
        + f"""
listen first_a
 bind 127.0.0.1:80 namespace {ns_a}
 server h 127.0.0.1:{hap} send-proxy-v2
listen first_b
 bind 127.0.0.1:80 namespace {ns_b}
 server h 127.0.0.1:{hap} send-proxy-v2
"""
    )
    for ns, want in ((ns_a, b"A\n"), (ns_b, b"B\n"), (ns_a, b"A\n")):
        with connect(ns, ("127.0.0.1", 80)) as c:
            # HAProxy aborts (CC) a client that closes with nothing sent before its server
            # connection is up; send a byte so the chain's result does not depend on timing.
            c.sendall(b"x")
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == want
    assert len(in_a.wait_conns(2)) == 2
    assert len(in_b.wait_conns(1)) == 1
