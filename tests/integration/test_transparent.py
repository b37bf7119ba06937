"""Transparent source (`source ... usesrc`) across namespaces: seed example 3, next to HAProxy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from lab.netlab import Lab, connect, free_port, recv_all, socket_in
from nsproxy import proxy_protocol as pp

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CLIENT4 = "198.18.5.7"
CLIENT6 = "2001:db8:5::7"
SERVER4 = ("10.77.0.1", 8080)
SERVER6 = ("fd77::1", 8080)


def config(ns: str, port: int, source: str, server: str, defaults: str = "") -> str:
    """Seed example 3 as written, with lab addresses; `source`/`server` lines may vary."""
    return f"""
global
  log stdout format raw local0
defaults
  log global
  option tcplog
  timeout connect 1s
  timeout client 5s
  timeout server 5s
{defaults}
namespace_list
 namespace {ns}

frontend f_example
 bind 127.0.0.1:{port} accept-proxy
 default_backend b_example

backend b_example
 mode tcp
 {source}
 {server}
"""


SEED3_SOURCE = "source 0.0.0.0 usesrc clientip"
SEED3_SERVER = "server snodes * namespace *"


@dataclass
class World:
    """A server namespace: a sink on SERVER4 and SERVER6, replies to the clients' nets routed."""

    lab: Lab
    ns: str
    sink4: object
    sink6: object


def make_world(lab: Lab, return_route: bool = True) -> World:
    ns = lab.netns("srv")
    lab.ip(ns, "addr", "add", "10.77.0.1/32", "dev", "lo")
    lab.ip(ns, "addr", "add", "fd77::1/128", "dev", "lo", "nodad")
    if return_route:
        lab.transparent_return(ns, "198.18.5.0/24")
        lab.transparent_return(ns, "2001:db8:5::/64")
    return World(
        lab,
        ns,
        lab.sink(ns, SERVER4[0], SERVER4[1], reply=b"hello\n"),
        lab.sink(ns, SERVER6[0], SERVER6[1], reply=b"hello\n"),
    )


def send_proxied(
    port: int, src: tuple[str, int], dst: tuple[str, int], ns: str, payload: bytes = b"ping"
) -> bytes:
    """Sends a PROXY v2 header (addresses + NETNS TLV) and `payload`; returns the reply."""
    with connect(None, ("127.0.0.1", port)) as c:
        c.sendall(pp.encode_v2(src, dst, tlvs=[pp.Tlv(0x30, ns.encode())]) + payload)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c)


@dataclass
class HAProxy:
    """`haproxy -db -f CFG`, stdout and stderr kept in a file."""

    proc: subprocess.Popen[bytes]
    out: str

    def output(self) -> str:
        with open(self.out, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_output(self, needle: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.output() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.output()


def _listening(port: int) -> bool:
    ss = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True)
    return f":{port}" in ss.stdout


@pytest.fixture
def haproxy() -> Iterator[Callable[[str, int], HAProxy]]:
    if not os.path.exists(HAPROXY):
        if os.environ.get("CI"):
            pytest.fail("HAProxy (Debian package haproxy) is needed for the comparison")
        pytest.skip("haproxy not installed")
    tmp = tempfile.TemporaryDirectory(prefix="nsp-hap-")
    started: list[HAProxy] = []

    def start(cfg: str, port: int) -> HAProxy:
        n = len(started)
        path, out = os.path.join(tmp.name, f"h{n}.cfg"), os.path.join(tmp.name, f"h{n}.out")
        with open(path, "w") as f:
            f.write(cfg)
        with open(out, "wb") as log:
            proc = subprocess.Popen([HAPROXY, "-db", "-f", path], stdout=log, stderr=log)
        h = HAProxy(proc, out)
        started.append(h)
        deadline = time.monotonic() + 10
        while not _listening(port):
            assert proc.poll() is None, f"haproxy exited:\n{h.output()}"
            assert time.monotonic() < deadline, "haproxy did not listen"
            time.sleep(0.05)
        return h

    yield start
    for h in started:
        h.proc.terminate()
        try:
            h.proc.wait(5)
        except subprocess.TimeoutExpired:
            h.proc.kill()
            h.proc.wait()
    tmp.cleanup()


def test_seed_example_3_server_sees_the_client_address(lab: Lab) -> None:
    w = make_world(lab)
    port = free_port()
    proxy = lab.proxy(config(w.ns, port, SEED3_SOURCE, SEED3_SERVER))
    assert send_proxied(port, (CLIENT4, 1555), SERVER4, w.ns) == b"hello\n"
    conn = w.sink4.wait_conns(1)[0]  # type: ignore[attr-defined]
    conn.closed.wait(5)
    assert conn.peer[0] == CLIENT4
    assert conn.peer[1] != 1555  # clientip: the kernel picks the port
    assert bytes(conn.data) == b"ping"
    out = proxy.wait_output("b_example/snodes")
    line = next(ln for ln in out.splitlines() if "b_example/snodes" in ln)
    assert line.startswith(f"{CLIENT4}:1555 [")
    assert " -- " in line


# name -> (source line, server line, client address, destination, what the server must see)
Expect = Callable[[tuple[str, int], int], bool]
CASES: dict[str, tuple[str, str, str, tuple[str, int], Expect]] = {
    "clientip": (
        SEED3_SOURCE,
        SEED3_SERVER,
        CLIENT4,
        SERVER4,
        lambda peer, cport: peer[0] == CLIENT4 and peer[1] != cport,
    ),
    "client": (
        "source 0.0.0.0 usesrc client",
        SEED3_SERVER,
        CLIENT4,
        SERVER4,
        lambda peer, cport: peer == (CLIENT4, cport),
    ),
    "fixed-address": (
        "source 0.0.0.0 usesrc 198.18.5.77",
        SEED3_SERVER,
        CLIENT4,
        SERVER4,
        lambda peer, cport: peer[0] == "198.18.5.77" and peer[1] != cport,
    ),
    "ipv6-clientip": (
        SEED3_SOURCE,
        SEED3_SERVER,
        CLIENT6,
        SERVER6,
        lambda peer, cport: peer[0] == CLIENT6 and peer[1] != cport,
    ),
    "server-source-overrides-backend": (
        SEED3_SOURCE,
        "server snodes * namespace * source 10.77.0.1",
        CLIENT4,
        SERVER4,
        lambda peer, cport: peer[0] == "10.77.0.1",
    ),
    "server-port-range": (
        SEED3_SOURCE,
        "server snodes * namespace * source 10.77.0.1:31000-31009",
        CLIENT4,
        SERVER4,
        lambda peer, cport: peer[0] == "10.77.0.1" and 31000 <= peer[1] <= 31009,
    ),
    # A foreign bind ignores the range: the kernel's port (from 32768-60999 in a new netns).
    "port-range-ignored-by-usesrc": (
        SEED3_SOURCE,
        "server snodes * namespace * source 0.0.0.0:31000-31009 usesrc clientip",
        CLIENT4,
        SERVER4,
        lambda peer, cport: peer[0] == CLIENT4 and not 31000 <= peer[1] <= 31009,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_peer_seen_by_the_server_matches_haproxy(lab: Lab, haproxy, case: str) -> None:  # type: ignore[no-untyped-def]
    source, server, client, dst, expect = CASES[case]
    w = make_world(lab)
    sink = w.sink6 if ":" in client else w.sink4
    seen: list[tuple[str, int]] = []
    # Distinct client ports: `usesrc client` leaves the first run's 4-tuple in TIME_WAIT.
    for cport, start in ((1555, "nsproxy"), (1556, "haproxy")):
        port = free_port()
        cfg = config(w.ns, port, source, server)
        if start == "nsproxy":
            lab.proxy(cfg)
        else:
            haproxy(cfg, port)
        assert send_proxied(port, (client, cport), dst, w.ns) == b"hello\n", start
        conn = sink.wait_conns(len(seen) + 1)[len(seen)]  # type: ignore[attr-defined]
        assert expect(conn.peer, cport), f"{start}: the server saw {conn.peer}"
        seen.append(conn.peer)
    assert seen[0][0] == seen[1][0]  # the same address; a port may be the kernel's choice


def test_no_return_route_fails_with_sC_after_retries(lab: Lab) -> None:
    w = make_world(lab, return_route=False)
    port = free_port()
    proxy = lab.proxy(
        config(w.ns, port, SEED3_SOURCE, SEED3_SERVER, " retries 2\n timeout connect 300ms")
    )
    assert send_proxied(port, (CLIENT4, 1555), SERVER4, w.ns) == b""
    out = proxy.wait_output("b_example/snodes")
    line = next(ln for ln in out.splitlines() if "b_example/snodes" in ln)
    assert line.startswith(f"{CLIENT4}:1555 [")
    assert " sC " in line
    assert line.split()[-2].endswith("/2")  # actconn/feconn/beconn/srv_conn/retries
    assert w.sink4.conns == []  # type: ignore[attr-defined]


def test_bind_refused_by_the_kernel_is_logged_like_haproxy(lab: Lab, haproxy) -> None:  # type: ignore[no-untyped-def]
    w = make_world(lab)
    with socket_in(w.ns) as taken:
        taken.bind((CLIENT4, 1555))  # `usesrc client` wants 198.18.5.7:1555: EADDRINUSE
        taken.listen(1)
        _bind_refused(lab, w, haproxy)


def _bind_refused(lab: Lab, w: World, haproxy: Callable[[str, int], HAProxy]) -> None:
    msg = "Cannot bind to tproxy source address before connect() for backend b_example."
    outputs = []
    for start in ("nsproxy", "haproxy"):
        port = free_port()
        cfg = config(w.ns, port, "source 0.0.0.0 usesrc client", SEED3_SERVER)
        proc = lab.proxy(cfg) if start == "nsproxy" else haproxy(cfg, port)
        assert send_proxied(port, (CLIENT4, 1555), SERVER4, w.ns) == b"", start
        out = proc.wait_output("b_example/snodes")
        logs = [ln for ln in out.splitlines() if not ln.startswith("[")]
        assert logs[:4] == [msg] * 4, f"{start}:\n{out}"  # first try + 3 retries
        assert " SC " in logs[4] and logs[4].split()[-2].endswith("/3"), f"{start}:\n{out}"
        alerts = [ln for ln in out.splitlines() if ln.startswith("[ALERT]")]
        assert len(alerts) == 4 and all(msg[:-1] in a for a in alerts), f"{start}:\n{out}"
        outputs.append(alerts[0])
    assert "Address already in use" in outputs[0]  # nsproxy adds the kernel's reason
    assert w.sink4.conns == []  # type: ignore[attr-defined]


def test_tproxy_policy_routing_delivers_the_replies(lab: Lab) -> None:
    """The TPROXY recipe: the server routes replies via the proxy's namespace, which marks
    packets of transparent sockets and delivers them locally (nft socket match + ip rule)."""
    if shutil.which("nft") is None:
        if os.environ.get("CI"):
            pytest.fail("nft (Debian package nftables) is needed for the TPROXY test")
        pytest.skip("nft not installed")
    edge, srv = lab.netns("edge"), lab.netns("server")
    lab.veth(edge, "10.78.0.1/24", srv, "10.78.0.2/24")
    lab.ip(srv, "route", "add", "198.18.5.0/24", "via", "10.78.0.1")
    sink = lab.sink(srv, "10.78.0.2", 8080, reply=b"hello\n")
    port = free_port()
    proxy = lab.proxy(
        config(edge, port, SEED3_SOURCE, SEED3_SERVER, " retries 0\n timeout connect 300ms")
    )
    # Without the divert rules the SYN-ACK to 198.18.5.7 is not for this host: no connection.
    assert send_proxied(port, (CLIENT4, 1555), ("10.78.0.2", 8080), edge) == b""
    assert " sC " in proxy.wait_output(" sC ")
    lab.transparent_return(edge, "198.18.5.0/24", tproxy=True)
    assert send_proxied(port, (CLIENT4, 1556), ("10.78.0.2", 8080), edge) == b"hello\n"
    peers = [c.peer[0] for c in sink.wait_conns(1)]
    assert CLIENT4 in peers


def test_check_warns_when_usesrc_meets_user(lab: Lab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = config(lab.netns("netns1"), 9990, SEED3_SOURCE, SEED3_SERVER)
    cfg = tmp_path / "t.cfg"
    results = []
    for head in ("global\n  user nobody\n", ""):
        cfg.write_text(head + base)
        results.append(
            subprocess.run(
                [sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)],
                capture_output=True,
                text=True,
                timeout=30,
            )
        )
    with_user, without = results
    assert with_user.returncode == 0, with_user.stderr
    assert "[WARNING]" in with_user.stderr
    assert "backend 'b_example' : 'usesrc' needs full privileges" in with_user.stderr
    assert "global.uid cannot be changed" in with_user.stderr
    assert "usesrc" not in without.stderr
