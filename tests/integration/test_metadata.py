"""examples/ovn-metadata.cfg in real namespaces: one nsproxy for every ovnmeta-* network.

A fake metadata agent on a UNIX socket answers each request with the X-OVN-Network-ID it got;
each client asks for its own network's ID (and forges another one), so a request that reached
the agent with any ID but its own shows up as a wrong answer.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.netlab import Lab, accept_threads, cli, free_port, sh, socket_in, stop_listener, wait_until
from nsproxy.config.parser import parse_files

EXAMPLE = Path(__file__).parents[2] / "examples" / "ovn-metadata.cfg"
TIMEOUT = 5.0


class Agent:
    """The agent's side of the UNIX socket: checks the network ID header of every request.

    The client names the network it expects in the path (`/?expect=ID`); the agent answers
    200 with the ID it was given when the request carries exactly one X-OVN-Network-ID equal
    to it, 403 otherwise (and counts it as wrong).
    """

    def __init__(self, path: str, header: bytes = b"x-ovn-network-id") -> None:
        self.header = header
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(512)
        self.path = path
        self.ok = 0
        self.wrong: list[bytes] = []
        self.lock = threading.Lock()
        self.acceptor = accept_threads(self.sock, self._handle)

    def _handle(self, c: socket.socket) -> None:
        with c:
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = c.recv(65536)
                if not data:
                    return
                buf += data
            head = buf.partition(b"\r\n\r\n")[0]
            expect = re.search(rb"[?&]expect=([^ &]+)", head)
            ids = re.findall(rb"(?im)^" + self.header + rb":[ \t]*(\S*)", head)
            good = expect is not None and ids == [expect.group(1)]
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.wrong.append(head)
            body = ids[0] if good else b"wrong"
            status = b"200 OK" if good else b"403 Forbidden"
            c.sendall(
                b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (status, len(body), body)
            )

    def close(self) -> None:
        stop_listener(self.sock, self.acceptor)


def config(lab: Lab, agent: Agent, extra_global: str = "") -> str:
    """The example, with the lab's namespace prefix and the test agent's socket."""
    text = EXAMPLE.read_text()
    text = text.replace("ovnmeta-*", f"{lab.prefix}ovnmeta-*")
    text = text.replace("regsub(^ovnmeta-,)", f"regsub(^{lab.prefix}ovnmeta-,)")
    text = text.replace("/var/lib/neutron/metadata_proxy", agent.path)
    return text.replace("    maxconn 65536\n", f"    maxconn 65536\n{extra_global}")


class Network:
    """An ovnmeta-<uuid> namespace as the OVN agent makes it: namespace, then tap, then address."""

    def __init__(self, lab: Lab, net_id: str | None = None) -> None:
        self.id = net_id or str(uuid.uuid4())
        self.ns = lab.netns(f"ovnmeta-{self.id}")
        self.tap = "tap" + self.id[:8]
        sh("ip", "-n", self.ns, "link", "add", self.tap, "type", "veth", "peer", "name", "peer0")
        sh("ip", "-n", self.ns, "link", "set", self.tap, "up")
        sh("ip", "-n", self.ns, "link", "set", "peer0", "up")

    def add_address(self, v6: bool = False) -> None:
        sh("ip", "-n", self.ns, "addr", "add", "169.254.169.254/32", "dev", self.tap)
        if v6:
            sh("ip", "-n", self.ns, "addr", "add", "fe80::a9fe:a9fe/64", "dev", self.tap, "nodad")

    def ifindex(self) -> int:
        out = sh("ip", "-n", self.ns, "-o", "link", "show", "dev", self.tap).stdout
        return int(out.split(":", 1)[0])

    def ask(self, forged: str = "someone-else", v6: bool = False) -> bytes:
        """One request from inside the network; the answer's status line and body."""
        family = socket.AF_INET6 if v6 else socket.AF_INET
        addr: tuple[str, int] | tuple[str, int, int, int] = ("169.254.169.254", 80)
        if v6:
            addr = ("fe80::a9fe:a9fe", 80, 0, self.ifindex())
        with socket_in(self.ns, family) as c:
            c.settimeout(TIMEOUT)
            c.connect(addr)
            c.sendall(
                f"GET /openstack/latest/meta_data.json?expect={self.id} HTTP/1.1\r\n"
                f"Host: 169.254.169.254\r\nX-OVN-Network-ID: {forged}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            out = b""
            while data := c.recv(65536):
                out += data
        status = out.split(b"\r\n", 1)[0]
        return status + b" " + out.partition(b"\r\n\r\n")[2]

    def served(self) -> bool:
        try:
            return self.ask() == b"HTTP/1.1 200 OK " + self.id.encode()
        except OSError:
            return False

    def delete(self) -> None:
        sh("ip", "netns", "del", self.ns)


@pytest.fixture
def agent() -> Iterator[Agent]:
    with tempfile.TemporaryDirectory(prefix="nsp-agent-") as d:
        a = Agent(os.path.join(d, "metadata_proxy"))
        try:
            yield a
        finally:
            a.close()


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _fd_list(pid: int) -> list[str]:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return sorted(out)


def test_each_network_gets_its_own_id_once_its_address_appears(lab: Lab, agent: Agent) -> None:
    proxy = lab.proxy(config(lab, agent))
    nets = [Network(lab) for _ in range(3)]
    proxy.wait_count("listening for ovn_metadata", 3)
    for net in nets:
        assert not net.served()  # no address yet: nothing listens, nothing is served
    for net in nets:
        net.add_address(v6=net is nets[0])
        t0 = time.monotonic()
        wait_until(net.served, 1.0, f"{net.ns} served")
        assert time.monotonic() - t0 < 1.0
    # the VM's forged ID never reaches the agent; each network gets its own
    for net in nets:
        assert net.ask(forged=nets[1].id) == b"HTTP/1.1 200 OK " + net.id.encode()
    assert nets[0].ask(v6=True) == b"HTTP/1.1 200 OK " + nets[0].id.encode()
    assert agent.wrong == []
    out = proxy.wait_output(f"netns={nets[2].ns}")
    line = next(ln for ln in out.splitlines() if f"netns={nets[2].ns}" in ln)
    assert " ovn_metadata ovn_metadata/metadata " in line
    assert ' "GET /openstack/latest/meta_data.json?expect=' in line


def test_churn_serves_live_networks_releases_gone_ones_and_keeps_counters(
    lab: Lab, agent: Agent
) -> None:
    stats = os.path.join(tempfile.mkdtemp(prefix="nsp-stats-"), "stats")
    proxy = lab.proxy(config(lab, agent, f"    stats socket {stats} level admin\n"))
    pid = proxy.proc.pid
    steady = [Network(lab) for _ in range(4)]
    for net in steady:
        net.add_address()
        wait_until(net.served, 2.0, f"{net.ns} served")
    baseline = _fds(pid)
    failed: list[str] = []
    sent = [0]
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            for net in steady:
                try:
                    answer = net.ask()
                except OSError as exc:
                    answer = repr(exc).encode()
                sent[0] += 1
                if answer != b"HTTP/1.1 200 OK " + net.id.encode():
                    failed.append(f"{net.ns}: {answer!r}")

    runner = threading.Thread(target=traffic)
    runner.start()
    delays: list[float] = []
    first_id = ""
    try:
        deadline = time.monotonic() + 20
        for i in range(16):
            assert time.monotonic() < deadline, "churn took too long"
            net = Network(lab, first_id if i == 8 else None)  # i == 8: a name seen before
            first_id = first_id or net.id
            net.add_address()
            t0 = time.monotonic()
            wait_until(net.served, 1.0, f"{net.ns} served")
            delays.append(time.monotonic() - t0)
            assert net.ask(forged=steady[0].id).endswith(net.id.encode())
            net.delete()
            proxy.wait_output(f"Namespace '{net.ns}' removed.")
            if i == 0:
                gone = net.ns
    finally:
        stop.set()
        runner.join(30)
    assert failed == []
    assert sent[0] > 0
    assert agent.wrong == []
    assert max(delays) < 1.0
    # a deleted network's counters stay listed until `del netns` clears them
    table = cli(stats, "show netns").decode()
    row = next(ln.split() for ln in table.splitlines() if ln.startswith(gone + " "))
    assert row[3] == "4" and row[6] == "0" and row[-1] == "deleted"  # 2 + 2 (same name again)
    assert cli(stats, f"del netns {gone}") == b"Namespace deleted.\n\n"
    assert gone not in cli(stats, "show netns").decode()
    # every namespace fd and listener the churn opened is released
    wait_until(lambda: _fds(pid) <= baseline, 5.0, f"fds back to {baseline}: {_fd_list(pid)}")
    for net in steady:
        net.delete()
    for net in steady:
        proxy.wait_output(f"Namespace '{net.ns}' removed.")
    # and the steady networks' ones: a namespace fd and a listener each
    left = baseline - 2 * len(steady)
    wait_until(lambda: _fds(pid) <= left, 5.0, f"fds back to {left}: {_fd_list(pid)}")


def test_per_namespace_maxconn_keeps_other_networks_served(lab: Lab, agent: Agent) -> None:
    stats = os.path.join(tempfile.mkdtemp(prefix="nsp-stats-"), "stats")
    mport = free_port()
    text = config(
        lab,
        agent,
        f"    stats socket {stats} level admin\n    prometheus-exporter 127.0.0.1:{mport}\n",
    )
    lab.proxy(text.replace("template ovn_metadata maxconn 1024", "template ovn_metadata maxconn 2"))
    noisy, quiet = Network(lab), Network(lab)
    noisy.add_address()
    quiet.add_address()
    wait_until(noisy.served, 2.0, "noisy served")
    wait_until(quiet.served, 2.0, "quiet served")
    hogs = []
    for _ in range(2):
        c = socket_in(noisy.ns)
        c.connect(("169.254.169.254", 80))
        c.sendall(b"GET / HTTP/1.1\r\n")  # an unfinished request holds its connection
        hogs.append(c)

    def cur_conns() -> int:
        table = cli(stats, "show netns").decode()
        return int(next(ln.split()[2] for ln in table.splitlines() if ln.startswith(noisy.ns)))

    wait_until(lambda: cur_conns() == 2, 5.0, "the two hogs accepted")
    # the third connection of the noisy network waits in the kernel's backlog...
    waiting = socket_in(noisy.ns)
    waiting.settimeout(TIMEOUT)
    waiting.connect(("169.254.169.254", 80))
    waiting.sendall(f"GET /?expect={noisy.id} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
    # ...while another network is served at once
    assert quiet.ask() == b"HTTP/1.1 200 OK " + quiet.id.encode()
    waiting.settimeout(0.3)
    with pytest.raises(TimeoutError):
        waiting.recv(100)
    assert cur_conns() == 2
    got = _metrics(mport)
    assert got[("nsproxy_netns_max_connections", noisy.ns)] == 2
    assert got[("nsproxy_netns_current_connections", noisy.ns)] == 2
    assert got[("nsproxy_netns_current_connections", quiet.ns)] == 0
    hogs.pop().close()
    waiting.settimeout(TIMEOUT)
    assert waiting.recv(65536).startswith(b"HTTP/1.1 200 OK")
    waiting.close()
    for c in hogs:
        c.close()


class Named:
    """An HTTP server on a UNIX socket that answers every request with its own name."""

    def __init__(self, path: str, name: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.name = name.encode()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                buf = b""
                while b"\r\n\r\n" not in buf and (data := c.recv(65536)):
                    buf += data
                c.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                    % (len(self.name), self.name)
                )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _doc_blocks() -> list[str]:
    """The code blocks of docs/many-tenants.md's "Routing by namespace" section."""
    text = (EXAMPLE.parents[1] / "docs" / "many-tenants.md").read_text()
    section = text.split("### Routing by namespace", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```\n(.*?)```", section, re.S)


def _answer(ns: str) -> bytes:
    with socket_in(ns) as c:
        c.settimeout(TIMEOUT)
        c.connect(("127.0.0.1", 80))
        c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        out = b""
        while data := c.recv(65536):
            out += data
    return out.partition(b"\r\n\r\n")[2]


def test_tenant_routing_examples_of_many_tenants_md(lab: Lab) -> None:
    direct, by_map, map_file = _doc_blocks()[:3]
    d = tempfile.mkdtemp(prefix="nsp-route-")
    servers = [
        Named(os.path.join(d, f"{lab.prefix}tenant-a.sock"), "tenant-a"),
        Named(os.path.join(d, "shared.sock"), "shared"),
        Named(os.path.join(d, "gold.sock"), "gold"),
    ]
    mapping = os.path.join(d, "tenant-backends.map")

    def adapt(text: str) -> str:
        text = text.replace("/etc/nsproxy/tenant-backends.map", "MAP")
        text = text.replace("tenant-", f"{lab.prefix}tenant-").replace("10.0.0.1", "127.0.0.1")
        return text.replace("unix@/run/", f"unix@{d}/").replace("MAP", mapping)

    head = "defaults\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n"
    Path(mapping).write_text(adapt(map_file))
    gold = "\nbackend be_gold\n    mode http\n    server gold unix@/run/gold.sock\n"
    try:
        a, b, c = (lab.netns(n) for n in ("tenant-a", "tenant-b", "tenant-c"))
        proxy = lab.proxy(head + adapt(direct + gold))
        wait_until(lambda: _ready(a) and _ready(b), 5.0, "tenants served")
        assert _answer(a) == b"tenant-a"  # its own backend, be_<namespace>
        assert _answer(b) == b"shared"  # no be_tenant-b: default_backend
        proxy.stop()
        backends = "\nbackend " + direct.split("\nbackend ", 1)[1]
        mapped = direct.split("frontend tenants", 1)[0] + by_map + backends
        lab.proxy(head + adapt(mapped + gold))
        wait_until(lambda: _ready(a) and _ready(c), 5.0, "tenants served")
        assert _answer(a) == b"gold"  # from the map
        assert _answer(c) == b"gold"
        assert _answer(b) == b"shared"  # not in the map: its default
    finally:
        for s in servers:
            s.close()


def _ready(ns: str) -> bool:
    try:
        _answer(ns)
    except OSError:
        return False
    return True


def test_neutron_example_sets_router_and_network_ids_from_the_name(lab: Lab) -> None:
    d = tempfile.mkdtemp(prefix="nsp-neutron-")
    agent = Agent(os.path.join(d, "metadata_proxy"), b"x-neutron-router-id")
    dhcp_agent = Agent(os.path.join(d, "metadata_dhcp"), b"x-neutron-network-id")
    text = (EXAMPLE.parent / "neutron-metadata.cfg").read_text()
    for kind in ("qrouter-", "qdhcp-"):
        text = text.replace(f"{kind}*", f"{lab.prefix}{kind}*")
        text = text.replace(f"regsub(^{kind},)", f"regsub(^{lab.prefix}{kind},)")
    head, _, dhcp = text.partition("listen network_metadata")
    text = head.replace("/var/lib/neutron/metadata_proxy", agent.path) + (
        "listen network_metadata" + dhcp.replace("/var/lib/neutron/metadata_proxy", dhcp_agent.path)
    )
    try:
        lab.proxy(text)
        router_id, net_id = str(uuid.uuid4()), str(uuid.uuid4())
        router = lab.netns(f"qrouter-{router_id}")
        dhcp_ns = lab.netns(f"qdhcp-{net_id}")
        sh("ip", "-n", dhcp_ns, "addr", "add", "169.254.169.254/32", "dev", "lo")
        for ns, addr, want in (
            (router, ("127.0.0.1", 9697), router_id),
            (dhcp_ns, ("169.254.169.254", 80), net_id),
        ):

            def ask(ns: str = ns, addr: tuple[str, int] = addr, want: str = want) -> bytes:
                with socket_in(ns) as c:
                    c.settimeout(TIMEOUT)
                    c.connect(addr)
                    c.sendall(
                        f"GET /?expect={want} HTTP/1.1\r\nX-Neutron-Router-ID: forged\r\n"
                        "X-Neutron-Network-ID: forged\r\nConnection: close\r\n\r\n".encode()
                    )
                    out = b""
                    while data := c.recv(65536):
                        out += data
                return out

            out = wait_until(lambda ask=ask: _or_none(ask), 5.0, f"{ns} served")
            assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(want.encode())
        assert agent.wrong == [] and dhcp_agent.wrong == []
        assert agent.ok == 1 and dhcp_agent.ok == 1
    finally:
        agent.close()
        dhcp_agent.close()


def _or_none(fn: Callable[[], bytes]) -> bytes | None:
    try:
        return fn()
    except OSError:
        return None


def test_namespace_pattern_maxconn_is_checked(tmp_path: Path) -> None:
    base = "defaults\n  timeout client 1s\nlisten t\n  bind 127.0.0.1:80\nnamespace_list\n"
    cases = {
        "namespace-pattern x-* template t maxconn 5": None,
        "namespace-pattern x-* template t maxconn 0": "between 1 and",
        "namespace-pattern x-* template t maxconn many": "expects an integer",
        "namespace-pattern x-* template t limit 5": "[maxconn <number>]",
    }
    for line, error in cases.items():
        cfg = tmp_path / "c.cfg"
        cfg.write_text(base + f"  {line}\n")
        config, state = parse_files([str(cfg)])
        if error is None:
            assert config is not None, state.errors
            assert config.namespace_patterns[0].maxconn == 5
        else:
            assert config is None and any(error in e for e in state.errors), state.errors


def _metrics(port: int) -> dict[tuple[str, str], float]:
    """The `netns`-labelled samples of nsproxy's Prometheus exporter."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    out = {}
    for m in re.finditer(r'^(nsproxy_netns_\w+)\{netns="([^"]*)"\} (\S+)$', text, re.M):
        out[(m.group(1), m.group(2))] = float(m.group(3))
    return out
