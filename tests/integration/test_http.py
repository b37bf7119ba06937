"""HTTP mode in real namespaces, side by side with HAProxy 2.6 on the same configuration.

A recording server (TCP or UNIX socket) keeps the exact bytes each request reached it with;
the client keeps the exact bytes of each answer. Both must be what HAProxy produces.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator

import pytest

from lab.netlab import Lab, Proxy, cli, free_port, socket_in, wait_until
from lab.origin import Origin

BODY = b"instance-id\nlocal-ipv4\n"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


def exchange(ns: str, addr: tuple[str, int], raw: bytes, answers: int = 1) -> bytes:
    """Sends `raw` from inside `ns`; reads until `answers` responses came, or the close."""
    with socket_in(ns, socket.AF_INET) as c:
        c.settimeout(10)
        c.connect(addr)
        c.sendall(raw)
        out = b""
        while out.count(b"HTTP/1.1 ") < answers or not _complete(out):
            data = c.recv(65536)
            if not data:
                break
            out += data
        return out


def _complete(out: bytes) -> bool:
    """The last response in `out` has all of its Content-Length body."""
    start = out.rfind(b"HTTP/1.1 ")
    head_end = out.find(b"\r\n\r\n", start)
    if head_end < 0:
        return False
    m = re.search(rb"(?i)content-length:\s*(\d+)", out[start:head_end])
    need = int(m.group(1)) if m else 0
    return len(out) - head_end - 4 >= need


@pytest.fixture
def pair(lab: Lab) -> Iterator[tuple[Lab, str]]:
    """A tenant namespace with the metadata address on its loopback."""
    ns = lab.netns("meta")
    lab.ip(ns, "addr", "add", "169.254.169.254/32", "dev", "lo")
    yield lab, ns


NEUTRON = """global
    log stdout format raw local0
{stats}
defaults
    log global
    mode http
    option httplog
    option dontlognull
    option http-server-close
    option forwardfor
    retries                 3
    timeout http-request    30s
    timeout connect         30s
    timeout client          32s
    timeout server          32s
    timeout http-keep-alive 30s

listen listener
    bind 169.254.169.254:{port} namespace {ns}
    server metadata {server}
    http-request del-header X-Neutron-Router-ID
    http-request set-header X-Neutron-Network-ID 8d4d9dcb-0b6e-4a45-bd2f-3a3c0e0d2b71
"""


HAPROXY_LOGS: dict[int, socket.socket] = {}
STATS: dict[int, str] = {}  # listening port -> that proxy's stats socket


def current_sessions(port: int, proxy: str) -> int:
    """`scur` of frontend `proxy` on the proxy listening on `port` (its `show stat`)."""
    out = cli(STATS[port], "show stat").decode()
    for line in out.splitlines():
        cols = line.split(",")
        if len(cols) > 4 and cols[0] == proxy and cols[1] == "FRONTEND":
            return int(cols[4])
    raise AssertionError(f"no FRONTEND line for {proxy}: {out!r}")


def _run_both(
    lab: Lab, ns: str, template: str, **kw: str
) -> tuple[Proxy, int, int, Origin, Origin]:
    """nsproxy and HAProxy 2.6 on `template`, each with its own recording agent.

    HAProxy's log lines go to a UDP socket (`haproxy_line(ph, needle)` reads them).
    """
    d = tempfile.mkdtemp()
    rec_n = Origin.unix(os.path.join(d, "agent-n.sock"), ANSWER)
    rec_h = Origin.unix(os.path.join(d, "agent-h.sock"), ANSWER)
    pn, ph = free_port(ns), free_port(ns)
    STATS[pn] = os.path.join(d, "nstats")
    proxy = lab.proxy(
        template.format(
            stats=f"    stats socket {STATS[pn]}", port=pn, ns=ns, server=rec_n.addr, **kw
        )
    )
    stats = STATS[ph] = os.path.join(d, "stats")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    HAPROXY_LOGS[ph] = udp
    text = template.format(
        stats=f"    stats socket {stats}", port=ph, ns=ns, server=rec_h.addr, **kw
    )
    text = text.replace(
        "log stdout format raw local0", f"log 127.0.0.1:{udp.getsockname()[1]} format raw local0"
    )
    lab.haproxy(text, stats)
    return proxy, pn, ph, rec_n, rec_h


def haproxy_line(port: int, needle: str) -> str:
    """HAProxy's first log line containing `needle` (raises on timeout)."""
    udp = HAPROXY_LOGS[port]
    while True:
        line = udp.recv(65536).decode().rstrip("\n")
        if needle in line:
            return line


def comparable(line: str) -> str:
    """A httplog line, byte for byte, without what differs between runs: the client port,
    the date and the timers."""
    line = re.sub(r"^(\S+):\d+ \[[^]]+\]", r"\1:PORT [DATE]", line)
    return re.sub(r"(\] \S+ \S+ )[-\d]+/[-\d]+/[-\d]+/[-\d]+/[-\d]+ ", r"\1T/T/T/T/T ", line)


def test_neutron_metadata_headers_forged_ids_and_answers_match_haproxy(
    pair: tuple[Lab, str],
) -> None:
    lab, ns = pair
    proxy, pn, ph, rec_n, rec_h = _run_both(lab, ns, NEUTRON)
    raw = (
        b"GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n"
        b"User-Agent: cloud-init\r\nX-Neutron-Network-ID: forged-network\r\n"
        b"X-Neutron-Router-ID: forged-router\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
    )
    got_n = exchange(ns, ("169.254.169.254", pn), raw)
    got_h = exchange(ns, ("169.254.169.254", ph), raw)
    assert got_n == got_h
    assert got_n.endswith(BODY)
    wait_until(lambda: rec_n.requests and rec_h.requests, what="both agents served")
    assert rec_n.requests[0] == rec_h.requests[0]
    seen = rec_n.requests[0].lower()
    assert b"forged" not in seen  # the tenant cannot pick another network's metadata
    assert b"x-neutron-network-id: 8d4d9dcb-0b6e-4a45-bd2f-3a3c0e0d2b71" in seen
    # the client's X-Forwarded-For is kept; the proxy's is appended after the rules' headers
    assert seen.index(b"x-forwarded-for: 6.6.6.6") < seen.index(b"x-forwarded-for: 169.254.169.254")
    line = proxy.wait_output('"GET /latest/meta-data/ HTTP/1.1"')
    fields = next(ln for ln in line.splitlines() if "GET /latest" in ln).split()
    assert fields[2] == "listener" and fields[3] == "listener/metadata"
    assert fields[5] == "200"
    assert fields[9] == "----"


def test_keep_alive_pipelining_and_server_close_like_haproxy(pair: tuple[Lab, str]) -> None:
    lab, ns = pair
    proxy, pn, ph, rec_n, rec_h = _run_both(lab, ns, NEUTRON)
    raw = (
        b"".join(b"GET /item/%d HTTP/1.1\r\nHost: meta\r\n\r\n" % i for i in range(3))
        + b"POST /submit HTTP/1.1\r\nHost: meta\r\nContent-Length: 5\r\n\r\nhello"
    )
    got_n = exchange(ns, ("169.254.169.254", pn), raw, answers=4)
    got_h = exchange(ns, ("169.254.169.254", ph), raw, answers=4)
    assert got_n == got_h
    assert got_n.count(BODY) == 4
    wait_until(lambda: len(rec_n.requests) == 4 and len(rec_h.requests) == 4, what="4 requests")
    assert rec_n.requests == rec_h.requests
    assert rec_n.accepted == rec_h.accepted == 4  # http-server-close: one server connection each
    assert rec_n.requests[3].endswith(b"\r\n\r\nhello")
    proxy.wait_count('"GET /item/', 3)


def test_bad_request_deny_and_dead_server_answers_like_haproxy(pair: tuple[Lab, str]) -> None:
    lab, ns = pair
    template = NEUTRON.replace(
        "    http-request del-header X-Neutron-Router-ID\n",
        "    http-request deny if {{ path_beg /admin }}\n"
        "    http-request del-header X-Neutron-Router-ID\n",
    )
    proxy, pn, ph, rec_n, rec_h = _run_both(lab, ns, template)
    cases = [
        b"GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n",  # 403, the connection stays open
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",  # 400
        b"GET / HTTP/1.1\r\nBad Header : x\r\n\r\n",  # 400: space before the colon
    ]
    for raw in cases:
        got_n = exchange(ns, ("169.254.169.254", pn), raw)
        got_h = exchange(ns, ("169.254.169.254", ph), raw)
        assert got_n == got_h, raw
    rec_n.close()
    rec_h.close()
    raw = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    got_n = exchange(ns, ("169.254.169.254", pn), raw)
    got_h = exchange(ns, ("169.254.169.254", ph), raw)
    assert got_n.startswith(b"HTTP/1.1 503 ")
    assert got_n == got_h
    out = proxy.wait_output(" 503 ")
    assert "SC--" in out


def _log_line(text: str, needle: str) -> str:
    return next(ln for ln in text.splitlines() if needle in ln)


def test_httplog_lines_and_captures_like_haproxy(pair: tuple[Lab, str]) -> None:
    lab, ns = pair
    template = NEUTRON.replace(
        "    http-request del-header X-Neutron-Router-ID\n",
        "    capture request header User-Agent len 8\n"
        "    capture request header Host len 32\n"
        "    capture response header Content-Type len 20\n"
        "    http-request del-header X-Neutron-Router-ID\n",
    )
    proxy, pn, ph, _, _ = _run_both(lab, ns, template)
    raw = b"GET /openstack/latest HTTP/1.1\r\nHost: meta\r\nUser-Agent: cloud-init/23.1\r\n\r\n"
    exchange(ns, ("169.254.169.254", pn), raw)
    exchange(ns, ("169.254.169.254", ph), raw)
    ours = _log_line(proxy.wait_output("/openstack/latest"), "/openstack/latest")
    theirs = haproxy_line(ph, "/openstack/latest")
    assert " {cloud-in|meta} {text/plain} " in ours
    assert comparable(ours) == comparable(theirs)


COOKIES = """global
    log stdout format raw local0
{stats}
defaults
    log global
    mode http
    option httplog
    option http-server-close
    timeout connect 5s
    timeout client 5s
    timeout server 5s

listen web
    bind 169.254.169.254:{port} namespace {ns}
    cookie SRVID insert indirect nocache httponly
    server s1 {server} cookie a1
    server s2 {server2} cookie b2
"""


def test_cookie_insert_persistence_like_haproxy(pair: tuple[Lab, str]) -> None:
    lab, ns = pair
    d = tempfile.mkdtemp()
    recs = [Origin.unix(os.path.join(d, f"o{i}.sock"), ANSWER) for i in range(4)]
    pn, ph = free_port(ns), free_port(ns)
    proxy = lab.proxy(
        COOKIES.format(stats="", port=pn, ns=ns, server=recs[0].addr, server2=recs[1].addr)
    )
    stats = os.path.join(d, "stats")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    HAPROXY_LOGS[ph] = udp
    text = COOKIES.format(
        stats=f"    stats socket {stats}", port=ph, ns=ns, server=recs[2].addr, server2=recs[3].addr
    ).replace(
        "log stdout format raw local0", f"log 127.0.0.1:{udp.getsockname()[1]} format raw local0"
    )
    lab.haproxy(text, stats)
    requests = [
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /b HTTP/1.1\r\nHost: x\r\nCookie: foo=1; SRVID=b2; bar=2\r\n\r\n",
        b"GET /c HTTP/1.1\r\nHost: x\r\nCookie: SRVID=zz\r\n\r\n",
        b"GET /d HTTP/1.1\r\nHost: x\r\nCookie: SRVID=a1\r\n\r\n",
    ]
    for raw in requests:
        assert exchange(ns, ("169.254.169.254", pn), raw) == exchange(
            ns, ("169.254.169.254", ph), raw
        ), raw
    wait_until(lambda: sum(len(r.requests) for r in recs) == 8, what="8 requests served")
    assert recs[0].requests == recs[2].requests and recs[1].requests == recs[3].requests
    assert b"cookie: foo=1; bar=2\r\n" in b"".join(recs[1].requests)  # indirect: ours removed
    for path in ("/a", "/b", "/c", "/d"):
        ours = _log_line(proxy.wait_output(f"GET {path} "), f"GET {path} ")
        assert comparable(ours) == comparable(haproxy_line(ph, f"GET {path} "))


def test_http_buffer_request_lets_rules_read_the_whole_body(pair: tuple[Lab, str]) -> None:
    lab, ns = pair
    template = NEUTRON.replace(
        "    http-request del-header X-Neutron-Router-ID\n",
        "    option http-buffer-request\n"
        "    http-request deny if {{ req.body -m sub secret }}\n"
        "    http-request del-header X-Neutron-Router-ID\n",
    )
    _, pn, ph, rec_n, rec_h = _run_both(lab, ns, template)
    head = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 16\r\n\r\n"
    for port in (pn, ph):
        with socket_in(ns, socket.AF_INET) as c:
            c.settimeout(10)
            c.connect(("169.254.169.254", port))
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.sendall(head + b"0123456789")  # the rule must wait for the rest of the body
            c.sendall(b"secret")
            assert c.recv(65536).startswith(b"HTTP/1.1 403 Forbidden")
    assert rec_n.requests == [] and rec_h.requests == []


REUSE = """global
    log stdout format raw local0
{stats}
defaults
    log global
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
    timeout http-keep-alive 5s

listen web
    bind 169.254.169.254:{port} namespace {ns}
    http-reuse {reuse}
    server s1 {server}
"""


@pytest.mark.parametrize("reuse", ["never", "safe", "always"])
def test_http_reuse_shares_idle_server_connections_like_haproxy(
    pair: tuple[Lab, str], reuse: str
) -> None:
    """Two clients one after the other, two requests each: how many server connections."""
    lab, ns = pair
    _, pn, ph, rec_n, rec_h = _run_both(lab, ns, REUSE, reuse=reuse)
    two = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
    for port, rec in ((pn, rec_n), (ph, rec_h)):
        for n in (2, 4):
            assert exchange(ns, ("169.254.169.254", port), two, answers=2).count(BODY) == 2
            wait_until(lambda rec=rec, n=n: len(rec.requests) == n, what=f"{n} requests")
            # the client has gone: its server connection is idle before the next one comes
            wait_until(lambda port=port: current_sessions(port, "web") == 0, what="no session")
    assert rec_n.accepted == rec_h.accepted, (reuse, rec_n.accepted, rec_h.accepted)
    assert rec_n.accepted == {"never": 2, "safe": 2, "always": 1}[reuse]  # HAProxy 2.6 measured


def test_a_server_put_in_maintenance_keeps_no_idle_connection(pair: tuple[Lab, str]) -> None:
    """`disable server` closes the idle server connections `http-reuse` kept, as HAProxy 2.6
    does, so that `del server` then succeeds."""
    lab, ns = pair
    admin = REUSE.replace("{stats}\n", "{stats} level admin\n")
    _, pn, ph, rec_n, rec_h = _run_both(lab, ns, admin, reuse="always")
    one = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
    for port, rec in ((pn, rec_n), (ph, rec_h)):
        assert exchange(ns, ("169.254.169.254", port), one).count(BODY) == 1
        wait_until(lambda rec=rec: len(rec.requests) == 1, what="the request served")
        wait_until(lambda port=port: current_sessions(port, "web") == 0, what="no session")
        assert (rec.accepted, rec.closed) == (1, 0)  # kept idle for the next client
        assert cli(STATS[port], "disable server web/s1") == b"\n"
        wait_until(lambda rec=rec: rec.closed == 1, what="the idle connection closed")
        assert cli(STATS[port], "del server web/s1") == b"Server deleted.\n"


class Scripted:
    """An origin on a UNIX socket that reads one request head and writes `reply` as given,
    then (for upgrades) echoes everything back until the client closes."""

    def __init__(self, path: str, reply: bytes, echo: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.addr = path
        self.reply = reply
        self.echo = echo
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                self.handle(c)

    def handle(self, c: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        self.requests.append(data)
        c.sendall(self.reply)
        while self.echo:
            chunk = c.recv(65536)
            if not chunk:
                break
            c.sendall(chunk)


PLAIN = """global
    log stdout format raw local0
{stats}
defaults
    log global
    mode http
    option httplog
    timeout connect 5s
    timeout client 5s
    timeout server 5s
    timeout tunnel 5s

listen web
    bind 169.254.169.254:{port} namespace {ns}
    server s1 {server}
"""


def _both_scripted(
    lab: Lab, ns: str, reply: bytes, echo: bool = False
) -> tuple[int, int, Scripted, Scripted]:
    d = tempfile.mkdtemp()
    on, oh = (
        Scripted(os.path.join(d, "n.sock"), reply, echo),
        Scripted(os.path.join(d, "h.sock"), reply, echo),
    )
    pn, ph = free_port(ns), free_port(ns)
    lab.proxy(PLAIN.format(stats="", port=pn, ns=ns, server=on.addr))
    stats = os.path.join(d, "stats")
    lab.haproxy(
        PLAIN.format(stats=f"    stats socket {stats}", port=ph, ns=ns, server=oh.addr), stats
    )
    return pn, ph, on, oh


def _read_until_close(c: socket.socket) -> bytes:
    out = b""
    while True:
        data = c.recv(65536)
        if not data:
            return out
        out += data


def test_large_chunked_response_streams_like_haproxy(pair: tuple[Lab, str]) -> None:
    lab, ns = pair
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in [os.urandom(40000)] * 50)
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    pn, ph, _, _ = _both_scripted(lab, ns, reply)
    outs = []
    for port in (pn, ph):
        with socket_in(ns, socket.AF_INET) as c:
            c.settimeout(10)
            c.connect(("169.254.169.254", port))
            c.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            outs.append(_read_until_close(c))
    head_n, _, body_n = outs[0].partition(b"\r\n\r\n")
    head_h, _, body_h = outs[1].partition(b"\r\n\r\n")
    assert head_n == head_h

    def dechunk(b: bytes) -> bytes:
        out = b""
        while True:
            size, _, rest = b.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                return out
            out += rest[:n]
            b = rest[n + 2 :]

    assert dechunk(body_n) == dechunk(body_h) == dechunk(chunks + b"0\r\n\r\n")


def test_websocket_upgrade_becomes_a_tunnel_like_haproxy(pair: tuple[Lab, str]) -> None:
    lab, ns = pair
    reply = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    pn, ph, on, oh = _both_scripted(lab, ns, reply, echo=True)
    req = (
        b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    outs = []
    for port in (pn, ph):
        with socket_in(ns, socket.AF_INET) as c:
            c.settimeout(10)
            c.connect(("169.254.169.254", port))
            c.sendall(req)
            head = b""
            while b"\r\n\r\n" not in head:
                head += c.recv(65536)
            c.sendall(b"frame-1" * 1000)
            c.shutdown(socket.SHUT_WR)
            outs.append(head + _read_until_close(c))
    assert outs[0] == outs[1]
    assert outs[0].endswith(b"frame-1" * 1000)
    assert on.requests == oh.requests


class Continuing(Scripted):
    """Answers `Expect: 100-continue` with a 100, reads the body, then answers 200."""

    def handle(self, c: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += c.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        if b"100-continue" in head.lower():
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        while len(body) < 5:
            body += c.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")


def test_expect_100_continue_is_relayed_like_haproxy(pair: tuple[Lab, str]) -> None:
    lab, ns = pair
    d = tempfile.mkdtemp()
    on, oh = Continuing(os.path.join(d, "n.sock"), b""), Continuing(os.path.join(d, "h.sock"), b"")
    pn, ph = free_port(ns), free_port(ns)
    lab.proxy(PLAIN.format(stats="", port=pn, ns=ns, server=on.addr))
    stats = os.path.join(d, "stats")
    lab.haproxy(
        PLAIN.format(stats=f"    stats socket {stats}", port=ph, ns=ns, server=oh.addr), stats
    )
    outs = []
    for port in (pn, ph):
        with socket_in(ns, socket.AF_INET) as c:
            c.settimeout(10)
            c.connect(("169.254.169.254", port))
            c.sendall(
                b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
            )
            interim = b""
            while b"\r\n\r\n" not in interim:
                interim += c.recv(65536)
            assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
            c.sendall(b"hello")
            rest = b""
            while not rest.endswith(b"done"):
                rest += c.recv(65536)
            outs.append(interim + rest)
    assert outs[0] == outs[1]
    assert on.requests == oh.requests


def test_soft_stop_closes_idle_keep_alive_connections(pair: tuple[Lab, str]) -> None:
    """SIGUSR1: a client between two requests is let go at once, not after keep-alive."""
    lab, ns = pair
    d = tempfile.mkdtemp()
    rec = Origin.unix(os.path.join(d, "agent.sock"), ANSWER)
    port = free_port(ns)
    template = NEUTRON.replace("timeout http-keep-alive 30s", "timeout http-keep-alive 60s")
    proxy = lab.proxy(template.format(stats="", port=port, ns=ns, server=rec.addr))
    with socket_in(ns, socket.AF_INET) as c:
        c.settimeout(20)
        c.connect(("169.254.169.254", port))
        c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        got = b""
        while not got.endswith(BODY):
            got += c.recv(65536)
        proxy.proc.send_signal(signal.SIGUSR1)
        assert c.recv(65536) == b""  # closed by the proxy, long before 60 s
    wait_until(lambda: proxy.proc.poll() is not None, what="the process to end")


def test_http_request_timeout_answers_408_like_haproxy(pair: tuple[Lab, str]) -> None:
    """A head that never ends: HAProxy's raw 408 and a close, after `timeout http-request`."""
    lab, ns = pair
    template = NEUTRON.replace("timeout http-request    30s", "timeout http-request    500ms")
    proxy, pn, ph, _, _ = _run_both(lab, ns, template)
    outs = []
    for port in (pn, ph):
        with socket_in(ns, socket.AF_INET) as c:
            c.settimeout(10)
            c.connect(("169.254.169.254", port))
            c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # no empty line: the head never ends
            outs.append(_read_until_close(c))
    assert outs[0] == outs[1]
    assert outs[0].startswith(b"HTTP/1.1 408 Request Time-out\r\n")
    ours = _log_line(proxy.wait_output(" 408 "), " 408 ")
    assert comparable(ours) == comparable(haproxy_line(ph, " 408 "))


def test_rule_answers_and_their_log_lines_like_haproxy(pair: tuple[Lab, str]) -> None:
    """deny (PR), return and redirect (LR): the same answers and the same httplog lines."""
    lab, ns = pair
    template = NEUTRON.replace(
        "    http-request del-header X-Neutron-Router-ID\n",
        "    http-request deny if {{ path /deny }}\n"
        "    http-request return status 200 content-type text/plain string hi if {{ path /ret }}\n"
        "    http-request redirect location /x if {{ path /redir }}\n"
        "    http-request del-header X-Neutron-Router-ID\n",
    )
    proxy, pn, ph, _, _ = _run_both(lab, ns, template)
    for path in ("/deny", "/ret", "/redir"):
        raw = b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode()
        assert exchange(ns, ("169.254.169.254", pn), raw) == exchange(
            ns, ("169.254.169.254", ph), raw
        )
        ours = _log_line(proxy.wait_output(f"GET {path} "), f"GET {path} ")
        assert comparable(ours) == comparable(haproxy_line(ph, f"GET {path} "))
