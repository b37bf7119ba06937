"""The rendered load-balancer configurations of tests/config/data, run side by side with
HAProxy 2.6 in a test namespace: kubeadm's `option ssl-hello-chk`, kubespray's `check-ssl`
HTTP checks of the API servers, Octavia's TERMINATED_HTTPS listener with client certificates.

Each configuration is adapted only where the test needs it: its addresses become the test
namespace's, its logs go to a UDP sink, the check intervals shrink; the peers section (remote
amphorae) and the process settings (user, daemon, threads) are dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from integration.test_tls import Logs, Outcome, talk
from lab.netlab import Lab, accept_threads, free_port, socket_in, stop_listener, wait_until
from lab.octavia_files import OctaviaPki, materialize
from nsproxy import proxy_protocol as pp

DATA = Path(__file__).parent.parent / "config" / "data"
CLOSERS: list[Callable[[], object]] = []


@pytest.fixture
def tenant(lab: Lab) -> Iterator[tuple[Lab, str]]:
    try:
        yield lab, lab.netns("lbcfg")
    finally:
        while CLOSERS:
            with contextlib.suppress(Exception):
                CLOSERS.pop()()


def adapt(text: str, log_port: int, stats: str) -> str:
    """The configuration with its global logs, stats socket and process settings replaced by
    the test's, and without peers (the other amphora is not there) nor server state file."""
    out: list[str] = []
    section = ""
    for line in text.splitlines():
        words = line.split()
        if words and not line[0].isspace():
            section = words[0]
            if section == "peers":
                continue
        if section == "peers":
            continue
        if section == "global":
            if words[:1] == ["global"]:
                out += [line, f"    log 127.0.0.1:{log_port} format raw local0"]
                out.append(f"    stats socket {stats} level admin")
                continue
            if words[:1] in (["log"], ["daemon"], ["user"], ["nbthread"], ["cpu-map"]):
                continue
            if words[:1] == ["maxconn"]:  # HAProxy needs 2 fds a connection: keep in ulimit
                line = "    maxconn 4000"
            if words[:2] == ["stats", "socket"] or words[:1] == ["server-state-file"]:
                continue
        if words[:1] == ["stick-table"] and "peers" in words:
            line = line[: line.index(" peers ")]
        out.append(line)
    return "\n".join(out) + "\n"


def run_side(lab: Lab, name: str, text: str, stats: str) -> None:
    """nsproxy or HAProxy on `text`, started and ready."""
    if name == "nsproxy":
        lab.proxy(text)
    else:
        lab.haproxy(text, stats)


def state_lines(logs: Logs) -> list[str]:
    """The servers' state changes, without what depends on their order and timing."""
    out = []
    for ln in logs.lines:
        if re.match(r"(Backup )?Server \S+ is (UP|DOWN)", ln):
            ln = re.sub(r"check duration: \d+ms", "check duration: Nms", ln)
            ln = re.sub(r"\d+ active and \d+ backup servers", "N active and N backup servers", ln)
            out.append(ln)
    return out


def wait_lines(logs: Logs, pred: Callable[[list[str]], bool], what: str) -> list[str]:
    def ready() -> list[str] | None:
        with contextlib.suppress(TimeoutError):
            logs.wait(len(logs.lines) + 1, timeout=0.2)
        lines = state_lines(logs)
        return lines if pred(lines) else None

    return wait_until(ready, 20, what)


# ---- servers ---------------------------------------------------------------------------------


class Listener:
    """A TCP server in `ns` whose connections go to `handle` (each on its own thread)."""

    def __init__(self, ns: str, handle: Callable[[socket.socket], None]) -> None:
        self.sock = socket_in(ns, socket.AF_INET)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.handle = handle
        CLOSERS.append(self.close)
        self.acceptor = accept_threads(self.sock, self._one)

    def _one(self, c: socket.socket) -> None:
        c.settimeout(5)
        with contextlib.suppress(OSError, ssl.SSLError), c:
            self.handle(c)

    def close(self) -> None:
        stop_listener(self.sock, self.acceptor)


def _read_head(c: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class TlsHealth:
    """An API server's health endpoint over TLS: each request gets `status`."""

    def __init__(self, ns: str, cert: str) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert)
        self.status = b"200 OK"
        self.requests: list[bytes] = []
        self.listener = Listener(ns, self._handle)
        self.port = self.listener.port

    def _handle(self, c: socket.socket) -> None:
        with self.ctx.wrap_socket(c, server_side=True) as t:
            self.requests.append(_read_head(t))
            body = b"ok"
            t.sendall(b"HTTP/1.1 %s\r\ncontent-length: 2\r\n\r\n%s" % (self.status, body))


# ---- kubeadm: option ssl-hello-chk ------------------------------------------------------------


def test_kubeadm_ssl_hello_chk_like_haproxy(tenant: tuple[Lab, str]) -> None:
    """The probe both proxies send is the same SSLv3 ClientHello (but its time); a TLS API
    server passes, a clear HTTP server, one that closes and a closed port fail as in HAProxy."""
    lab, ns = tenant
    ca = trustme.CA()
    cert = os.path.join(tempfile.mkdtemp(prefix="lbcfg-"), "apiserver.pem")
    ca.issue_cert("cp-1.example.com").private_key_and_cert_chain_pem.write_to_path(cert)
    src = (DATA / "kubeadm-apiserver.cfg").read_text()
    lines: dict[str, list[str]] = {}
    hellos: dict[str, list[bytes]] = {}
    for name in ("nsproxy", "haproxy"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert)

        def tls(c: socket.socket, ctx: ssl.SSLContext = ctx) -> None:
            with ctx.wrap_socket(c, server_side=True) as t:
                t.recv(1)

        got: list[bytes] = []

        def recorder(c: socket.socket, got: list[bytes] = got) -> None:
            data = b""
            while len(data) < 126 and (chunk := c.recv(126 - len(data))):
                data += chunk
            got.append(data)  # then closes: nothing comes back

        def http(c: socket.socket) -> None:
            c.recv(65536)
            c.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")

        servers = [Listener(ns, tls), Listener(ns, http), Listener(ns, recorder)]
        dead = free_port(ns)
        logs = Logs()
        CLOSERS.append(logs.close)
        stats = os.path.join(tempfile.mkdtemp(prefix="lbcfg-"), "stats.sock")
        text = adapt(src, logs.port, stats)
        text = text.replace("*:8443", f"127.0.0.1:{free_port(ns)} namespace {ns}")
        text = text.replace(
            "    balance     roundrobin\n",
            "    balance     roundrobin\n    default-server inter 300ms fall 1 rise 1\n",
        )
        for i, port in enumerate([*(s.port for s in servers), dead], start=1):
            if i == 4:
                text += "        server cp-4 192.0.2.14:6443 check\n"
            text = text.replace(f"192.0.2.1{i}:6443", f"127.0.0.1:{port} namespace {ns}")
        run_side(lab, name, text, stats)
        lines[name] = wait_lines(logs, lambda ls: len(ls) >= 3, f"{name}: three servers DOWN")
        wait_until(lambda got=got: len(got) >= 1, 10, f"{name}'s hello")
        hellos[name] = got
    assert sorted(lines["nsproxy"]) == sorted(lines["haproxy"])
    assert any("cp-2 is DOWN, reason: Layer6 invalid response," in ln for ln in lines["nsproxy"])
    assert not any("cp-1" in ln for ln in lines["nsproxy"])  # the TLS server stays UP
    ours, theirs = hellos["nsproxy"][0], hellos["haproxy"][0]
    assert len(ours) == len(theirs) == 126
    assert ours[:11] + ours[15:] == theirs[:11] + theirs[15:]  # all but the time
    assert abs(int.from_bytes(ours[11:15], "big") - time.time()) < 60


# ---- kubespray: check-ssl with option httpchk GET /healthz ------------------------------------


def test_kubespray_httpchk_over_tls_marks_a_member_down_and_up_like_haproxy(
    tenant: tuple[Lab, str],
) -> None:
    lab, ns = tenant
    ca = trustme.CA()
    cert = os.path.join(tempfile.mkdtemp(prefix="lbcfg-"), "apiserver.pem")
    ca.issue_cert("cp.example.com").private_key_and_cert_chain_pem.write_to_path(cert)
    src = (DATA / "kubespray-apiserver.cfg").read_text()
    results: dict[str, tuple[list[str], list[bytes]]] = {}
    for name in ("nsproxy", "haproxy"):
        members = [TlsHealth(ns, cert) for _ in range(3)]
        logs = Logs()
        CLOSERS.append(logs.close)
        stats = os.path.join(tempfile.mkdtemp(prefix="lbcfg-"), "stats.sock")
        text = adapt(src, logs.port, stats)
        healthz = free_port(ns)
        text = text.replace("0.0.0.0:8081", f"127.0.0.1:{healthz} namespace {ns}")
        text = text.replace("  bind :::8081\n", "").replace("  bind [::1]:6443\n", "")
        text = text.replace("127.0.0.1:6443", f"127.0.0.1:{free_port(ns)} namespace {ns}")
        text = text.replace("inter 15s downinter 15s", "inter 200ms downinter 200ms")
        for old, m in zip(
            ("192.0.2.11:6443", "192.0.2.12:6443", "[2001:db8::13]:6443"), members, strict=True
        ):
            text = text.replace(old, f"127.0.0.1:{m.port} namespace {ns}")
        run_side(lab, name, text, stats)
        wait_until(lambda ms=members: all(len(m.requests) >= 2 for m in ms), 10, "checks")
        members[1].status = b"503 Service Unavailable"
        wait_lines(logs, lambda ls: len(ls) >= 1, f"{name}: cp-2 DOWN")
        members[1].status = b"200 OK"
        down_up = wait_lines(logs, lambda ls: len(ls) >= 2, f"{name}: cp-2 UP again")
        with socket_in(ns, socket.AF_INET) as c:  # the node's own health endpoint
            c.settimeout(5)
            c.connect(("127.0.0.1", healthz))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := c.recv(65536):
                answer += chunk
        results[name] = (down_up, [members[0].requests[0], answer])
    assert results["nsproxy"] == results["haproxy"]
    (down, up), (request, answer) = results["nsproxy"]
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert down.startswith("Server kube_api_backend/cp-2 is DOWN, reason: Layer7 wrong status")
    assert "code: 503" in down and up.startswith("Server kube_api_backend/cp-2 is UP")
    assert request == b"GET /healthz HTTP/1.0\r\n\r\n"


# ---- Octavia: TERMINATED_HTTPS with client certificates ---------------------------------------


class Member:
    """An Octavia member: HTTP (in TLS with `cert`), records each request, answers 200 with
    its name; /healthz and /status (the health monitors) are answered but not recorded."""

    def __init__(self, ns: str, name: str, cert: str | None = None) -> None:
        self.name = name.encode()
        self.ctx: ssl.SSLContext | None = None
        if cert is not None:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert)
        self.requests: list[bytes] = []
        self.listener = Listener(ns, self._handle)
        self.port = self.listener.port

    def _handle(self, c: socket.socket) -> None:
        conn = self.ctx.wrap_socket(c, server_side=True) if self.ctx is not None else c
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            if not re.match(rb"\w+ /(healthz|status) ", head):
                self.requests.append(head)
            body = self.name
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            if re.search(rb"(?im)^connection:\s*close", head):
                return


def _client_ctx(cert: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(cert)
    return ctx


def _octavia_side(
    lab: Lab, ns: str, name: str, text: str, pki: OctaviaPki
) -> tuple[int, list[Member], Logs]:
    logs = Logs()
    CLOSERS.append(logs.close)
    stats = os.path.join(tempfile.mkdtemp(prefix="lbcfg-"), "stats.sock")
    text = adapt(text, logs.port, stats)
    port = free_port(ns)
    text = text.replace("203.0.113.10:443", f"127.0.0.1:{port} namespace {ns}")
    member_cert = str(pki.dir / "member.pem")
    members = [
        Member(ns, "m41"),
        Member(ns, "m42"),
        Member(ns, "m43"),
        Member(ns, "m51", member_cert),
        Member(ns, "m52", member_cert),
    ]
    monitor = Member(ns, "monitor")
    for m, last in zip(members, ("41", "42", "43", "51", "52"), strict=True):
        text = re.sub(
            rf"192\.0\.2\.{last}:\d+", f"127.0.0.1:{m.port} namespace {ns}", text, count=1
        )
    text = text.replace("addr 192.0.2.142 port 9000", f"addr 127.0.0.1 port {monitor.port}")
    run_side(lab, name, text, stats)
    return port, members, logs


def _normalize(req: bytes) -> bytes:
    return re.sub(rb"(?im)^(x-forwarded-port: )\d+", rb"\1P", req)


def test_octavia_https_listener_client_certificates_like_haproxy(
    tenant: tuple[Lab, str],
) -> None:
    """The rendered TERMINATED_HTTPS listener: for a verified client (two OUs), a client
    without a certificate, one from another CA and a revoked one, the client's answer and the
    X-SSL-* headers the members receive are HAProxy's."""
    lab, ns = tenant
    cases = ["client", "dev", None, "stranger", "revoked"]
    requests = [
        b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
        b"GET /admin HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
        b"GET /login.php HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n",
    ]
    got: dict[str, tuple[list[tuple[str | None, bytes]], list[list[bytes]]]] = {}
    root = Path(tempfile.mkdtemp(prefix="oct", dir="/tmp"))
    text, pki = materialize((DATA / "octavia-https-listener.cfg").read_text(), root)
    pki.ca.issue_cert("www.example.com").private_key_and_cert_chain_pem.write_to_path(
        str(pki.dir / "member.pem")
    )
    for name in ("nsproxy", "haproxy"):
        port, members, _logs = _octavia_side(lab, ns, name, text, pki)
        answers = []
        for case in cases:
            cert = getattr(pki, case) if case else None
            out: Outcome = talk(
                ns, port, _client_ctx(cert), "www.example.com", b"".join(requests), shut=False
            )
            answers.append((None if out.error is None else "error", out.data))
        got[name] = (answers, [[_normalize(r) for r in m.requests] for m in members])
    ours, theirs = got["nsproxy"], got["haproxy"]
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]
    alice = [r for reqs in ours[1] for r in reqs if b"CN=alice" in r]
    assert alice and b"x-ssl-client-verify: 0" in alice[0].lower()
    assert re.search(rb"x-ssl-client-not-after: \d{12}Z", alice[0])
    tls_pool = ours[1][3] + ours[1][4]  # only a client of OU ops reaches /admin there
    assert [r.split(b"\r\n")[0] for r in tls_pool] == [b"GET /admin HTTP/1.1"]
    assert b"x-ssl-client-has-cert: 1" in tls_pool[0]
    assert [a[0] for a in ours[0]] == [None, None, None, "error", "error"]


# ---- Octavia: TCP listeners with PROXY protocol to the members -------------------------------


class PpMember:
    """A member behind PROXY protocol: reads the header, then answers a TLS probe (first byte
    0x16) with an alert, echoes raw bytes, or answers HTTP requests (`http`) with 200."""

    def __init__(self, ns: str, name: str, http: bool = False) -> None:
        self.name = name.encode()
        self.http = http
        self.headers: list[pp.ProxyHeader] = []
        self.data: list[bytes] = []
        self.listener = Listener(ns, self._handle)
        self.port = self.listener.port

    def _handle(self, c: socket.socket) -> None:
        buf = b""
        while True:
            res = pp.decode(buf)
            if not isinstance(res, pp.NeedMore):
                break
            chunk = c.recv(4096)
            if not chunk:
                return
            buf += chunk
        head, used = res
        buf = buf[used:]
        self.headers.append(head)
        if not buf:
            buf = c.recv(65536)
        if buf[:1] == b"\x16":  # ssl-hello-chk's ClientHello: a handshake_failure alert
            c.sendall(b"\x15\x03\x01\x00\x02\x02\x28")
            return
        if not self.http:
            got = b""
            while buf:
                got += buf
                c.sendall(buf)
                buf = c.recv(65536)
            self.data.append(got)
            return
        while buf:
            while b"\r\n\r\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            req, _, buf = buf.partition(b"\r\n\r\n")
            if not req.startswith(b"HEAD /health "):
                self.data.append(req)
            c.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(self.name), self.name)
            )
            if not buf:
                buf = c.recv(65536)


def _pp_fields(h: pp.ProxyHeader) -> tuple[object, ...]:
    """A header without the client's port (each connection has its own)."""
    src = (h.src[0], "P") if h.src else None
    return (h.version, h.local, h.family, src, h.dst and h.dst[0], h.tlvs)


def test_octavia_tcp_listeners_with_proxy_protocol_like_haproxy(tenant: tuple[Lab, str]) -> None:
    """The rendered TCP/PROXY configuration: the PROXY v1 and v2 headers members receive
    (from clients and from checks), what clients get back, source persistence, the HTTP
    listener's L7 policy over PROXY, and the servers' state lines."""
    lab, ns = tenant
    src = (DATA / "octavia-tcp-proxy.cfg").read_text()
    got: dict[str, object] = {}
    for name in ("nsproxy", "haproxy"):
        logs = Logs()
        CLOSERS.append(logs.close)
        stats = os.path.join(tempfile.mkdtemp(prefix="lbcfg-"), "stats.sock")
        text = adapt(src, logs.port, stats)
        ports = {p: free_port(ns) for p in ("5432", "6443", "80")}
        for p, port in ports.items():
            text = text.replace(f"198.51.100.20:{p}\n", f"127.0.0.1:{port} namespace {ns}\n")
        text = text.replace("inter 5s", "inter 300ms").replace("inter 3s", "inter 300ms")
        members = {
            "61": PpMember(ns, "m61"),
            "62": PpMember(ns, "m62"),
            "63": PpMember(ns, "m63"),
            "71": PpMember(ns, "m71"),
            "72": PpMember(ns, "m72"),
            "73": PpMember(ns, "m73"),
            "81": PpMember(ns, "m81", http=True),
            "82": PpMember(ns, "m82", http=True),
        }
        monitor = Listener(ns, lambda c: None)
        for last, m in members.items():
            text = re.sub(rf"192\.0\.2\.{last}:\d+", f"127.0.0.1:{m.port} namespace {ns}", text)
        text = text.replace("addr 192.0.2.172 port 7443", f"addr 127.0.0.1 port {monitor.port}")
        run_side(lab, name, text, stats)
        # every checked member seen by its checks (the backups too), none DOWN
        wait_until(
            lambda ms=members: all(ms[k].headers for k in ("61", "62", "63", "71", "81", "82")),
            10,
            f"{name}: checks",
        )
        replies = []
        for _ in range(3):  # balance source + stick on src: one member for this client
            with socket_in(ns, socket.AF_INET) as s:
                s.settimeout(5)
                s.connect(("127.0.0.1", ports["5432"]))
                s.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # a PostgreSQL SSLRequest
                s.shutdown(socket.SHUT_WR)
                replies.append(s.recv(100))
        for _ in range(2):  # roundrobin 10:5 over PROXY v2
            with socket_in(ns, socket.AF_INET) as s:
                s.settimeout(5)
                s.connect(("127.0.0.1", ports["6443"]))
                s.sendall(b"kube")
                s.shutdown(socket.SHUT_WR)
                replies.append(s.recv(100))
        http = (
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: x\r\nUser-Agent: badbot/1\r\n\r\n"
        )
        with socket_in(ns, socket.AF_INET) as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", ports["80"]))
            s.sendall(http)
            out = b""
            while b"403" not in out and (chunk := s.recv(65536)):
                out += chunk
            replies.append(re.sub(rb"(?i)(set-cookie: SRV=)[^;\r]+", rb"\1X", out))
        heads = {
            k: sorted({_pp_fields(h) for h in m.headers}, key=repr) for k, m in members.items()
        }
        data = {k: [_normalize(d) for d in m.data] for k, m in members.items() if m.data}
        got[name] = (replies, heads, data, state_lines(logs))
    assert got["nsproxy"] == got["haproxy"]
    replies, heads, data, _ = got["nsproxy"]  # type: ignore[misc]
    assert len(set(replies[:3])) == 1  # source persistence
    assert [h[:2] for h in heads["71"]] == [(2, False), (2, True)]  # clients', checks' LOCAL
    assert all(h[0] == 1 for k in ("61", "62", "63", "81", "82") for h in heads[k])
    assert heads["72"] == []  # checked on its monitor address, without PROXY
    assert b"HTTP/1.1 403 Forbidden" in replies[-1]
