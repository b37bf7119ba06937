"""TLS in real namespaces, side by side with HAProxy 2.6 on the same configuration: the
certificate each SNI gets, client-certificate outcomes, bad clients, what a TLS server
receives (SNI, ALPN, PROXY v2 SSL TLV, resumption), HTTP over TLS (Octavia's
TERMINATED_HTTPS shape), check-ssl health checks; every log line compared."""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from lab.netlab import (
    Lab,
    Proxy,
    accept_threads,
    cli,
    free_port,
    socket_in,
    stop_listener,
    wait_until,
)
from nsproxy import proxy_protocol as pp
from nsproxy.runtime.xprt_tls import TlsError, TlsTransport, Want


@dataclass
class Pki:
    dir: Path
    ca: trustme.CA
    ca_file: str
    other_ca_file: str
    www: str  # www.example.com, *.example.org
    api: str  # api.example.com
    member: str  # member-1.example.com (a TLS server behind the proxy)
    client: str  # CN=alice, by ca
    stranger: str  # CN=mallory, by the other CA
    proxy_client: str  # the certificate the proxy presents to servers


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("tlspki")
    ca = trustme.CA(organization_name="Test CA")
    other = trustme.CA(organization_name="Other CA")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    other.cert_pem.write_to_path(str(d / "other-ca.pem"))

    def issue(name: str, *names: str, by: trustme.CA = ca, cn: str | None = None) -> str:
        cert = by.issue_cert(*names, common_name=cn)
        path = d / name
        cert.private_key_and_cert_chain_pem.write_to_path(str(path))
        return str(path)

    return Pki(
        d,
        ca,
        str(d / "ca.pem"),
        str(d / "other-ca.pem"),
        issue("www.pem", "www.example.com", "*.example.org"),
        issue("api.pem", "api.example.com"),
        issue("member.pem", "member-1.example.com"),
        issue("client.pem", "alice@example.com", cn="alice"),
        issue("stranger.pem", "mallory@example.com", by=other, cn="mallory"),
        issue("lb.pem", "lb@example.com", cn="lb"),
    )


# ---- clients ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a TLS client saw: an error, or the server's names, the version and the data."""

    error: str | None = None
    names: tuple[str, ...] = ()
    version: str | None = None
    alpn: str | None = None
    data: bytes = b""


def _names(der: bytes | None) -> tuple[str, ...]:
    if der is None:
        return ()
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.value.get_values_for_type(x509.DNSName))


def client_ctx(pki: Pki, cert: str | None = None, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the tests look at what was served instead
    if cert is not None:
        ctx.load_cert_chain(cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def talk(
    ns: str,
    port: int,
    ctx: ssl.SSLContext,
    sni: str | None,
    payload: bytes = b"",
    timeout: float = 15.0,
    session: ssl.SSLSession | None = None,
    shut: bool = True,
    preamble: bytes = b"",
) -> Outcome:
    """One TLS connection from `ns` to 127.0.0.1:`port`: handshake, send `payload`, send
    close_notify (unless not `shut`: then the server closes), read until the end; bounded
    by `timeout`."""
    sock = socket_in(ns, socket.AF_INET)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    if preamble:  # a PROXY header, in clear before the handshake
        sock.sendall(preamble)
    sock.setblocking(False)
    tx = TlsTransport(sock, ctx, False, sni, session)
    deadline = time.monotonic() + timeout
    try:
        while (want := tx.handshake()) is not Want.DONE:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("handshake")
            fds = [tx.fd]
            rd, wr = (fds, []) if want is Want.READ else ([], fds)
            select.select(rd, wr, [], left)
    except TlsError as exc:
        tx.close()
        return Outcome(error=exc.reason)
    out = Outcome(
        names=_names(tx.obj.getpeercert(binary_form=True)),
        version=tx.obj.version(),
        alpn=tx.obj.selected_alpn_protocol(),
    )
    view = memoryview(payload)
    got = bytearray()
    buf = bytearray(65536)
    try:
        while time.monotonic() < deadline:
            if shut and not view and not tx.want_write and not tx.tx_done:
                tx.shutdown()
            w = [tx.fd] if view or tx.want_write else []
            select.select([tx.fd], w, [], 0.2)
            if tx.want_write:
                tx.flush()
            elif view:
                with contextlib.suppress(BlockingIOError):
                    view = view[tx.send(view) :]
            try:
                while n := tx.recv_into(buf):
                    got.extend(buf[:n])
                break
            except BlockingIOError:
                pass
        else:
            raise TimeoutError(f"got {len(got)} bytes, {len(view)} left to send")
    except ConnectionError as exc:
        out.error = f"after handshake: {exc}"
    finally:
        talk.last_session = tx.obj.session  # type: ignore[attr-defined]
        tx.close()
    out.data = bytes(got)
    return out


def raw_talk(ns: str, port: int, data: bytes, wait: float = 5.0, fin: bool = False) -> bytes:
    """Sends `data` in clear (FIN after it when `fin`), returns what came back before close."""
    with socket_in(ns, socket.AF_INET) as s:
        s.settimeout(wait)
        s.connect(("127.0.0.1", port))
        if data:
            s.sendall(data)
        if fin:
            s.shutdown(socket.SHUT_WR)
        out = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := s.recv(65536):
                out += chunk
        return out


# ---- servers behind the proxies --------------------------------------------------------------


@dataclass
class Seen:
    """What a TLS origin saw of one connection."""

    header: bytes = b""
    sni: str | None = None
    alpn: str | None = None
    resumed: bool = False
    peer_cn: str | None = None
    data: bytearray = field(default_factory=bytearray)


class Origin:
    """A server in `ns`: reads a PROXY v2 header when `proxy`, then TLS when `cert` (else
    clear), then echoes (or answers each HTTP request with 200 when `http`)."""

    def __init__(
        self,
        ns: str,
        cert: str | None,
        *,
        proxy: bool = False,
        http: bool = False,
        ca_file: str | None = None,
    ) -> None:
        self.sock = socket_in(ns, socket.AF_INET)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.proxy = proxy
        self.http = http
        self.ctx: ssl.SSLContext | None = None
        if cert is not None:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert)
            self.ctx.set_alpn_protocols(["h2", "http/1.1"])
            if ca_file is not None:
                self.ctx.load_verify_locations(ca_file)
                self.ctx.verify_mode = ssl.CERT_OPTIONAL
            self.ctx.sni_callback = self._sni
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._names = threading.local()
        self._acceptor = accept_threads(self.sock, self._handle)

    def _sni(self, obj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        self._names.sni = name

    def _handle(self, c: socket.socket) -> None:
        seen = Seen()
        c.settimeout(10)
        try:
            if self.proxy:
                head = _recv_exact(c, 16)
                head += _recv_exact(c, int.from_bytes(head[14:16], "big"))
                seen.header = head
            conn: socket.socket = c
            if self.ctx is not None:
                self._names.sni = None
                conn = self.ctx.wrap_socket(c, server_side=True)
                seen.sni = self._names.sni
                seen.alpn = conn.selected_alpn_protocol()
                seen.resumed = conn.session_reused
                peer = conn.getpeercert()
                if peer:
                    seen.peer_cn = dict(x[0] for x in peer["subject"]).get("commonName")
            with self._lock:
                self.seen.append(seen)
            if self.http:
                self._http(conn, seen)
            else:
                while data := conn.recv(65536):
                    seen.data += data
                    conn.sendall(data)
            with contextlib.suppress(OSError, ValueError):
                if isinstance(conn, ssl.SSLSocket):
                    conn.unwrap()
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    def _http(self, conn: socket.socket, seen: Seen) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            need = int(m.group(1)) if m else 0
            while len(buf) < need:
                buf += conn.recv(65536)
            seen.data += head + b"\r\n\r\n" + buf[:need]
            buf = buf[need:]
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            if re.search(rb"(?im)^connection:\s*close", head):
                return

    def wait(self, n: int) -> list[Seen]:
        def enough() -> list[Seen] | None:
            with self._lock:
                return list(self.seen) if len(self.seen) >= n else None

        return wait_until(enough, 10, f"{n} connection(s) at the origin")

    def close(self) -> None:
        stop_listener(self.sock, self._acceptor)


def _recv_exact(c: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = c.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


# ---- both proxies ----------------------------------------------------------------------------


class Logs:
    """A UDP syslog sink: the raw lines one proxy sends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.lines: list[str] = []

    def wait(self, n: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} log lines wanted, got {self.lines}")
            with contextlib.suppress(TimeoutError):
                data = self.sock.recv(65536)
                self.lines.append(data.decode("utf-8", "replace").rstrip("\n"))
        return self.lines

    def close(self) -> None:
        self.sock.close()


@dataclass
class Side:
    name: str
    port: int
    logs: Logs
    stats: str
    proxy: Proxy | None = None


class Both:
    """nsproxy and HAProxy 2.6 on one configuration template in namespace `ns`.

    The template takes {port} (the listener), {ns}, {log} (a UDP log port) and {stats}."""

    def __init__(self, lab: Lab, ns: str, template: str, **kw: str) -> None:
        self.sides: list[Side] = []
        d = tempfile.mkdtemp(prefix="nsp-tls-")
        for name in ("nsproxy", "haproxy"):
            logs = Logs()
            CLOSERS.append(logs.close)
            port = free_port(ns)
            stats = os.path.join(d, f"{name}.sock")
            text = template.format(
                port=port, ns=ns, log=logs.port, stats=f"  stats socket {stats} level admin", **kw
            )
            side = Side(name, port, logs, stats)
            if name == "nsproxy":
                side.proxy = lab.proxy(text)
            else:
                lab.haproxy(text, stats)
            wait_until(lambda p=port: _listening(ns, p), 10, f"{name} listening")
            self.sides.append(side)

    @property
    def ours(self) -> Side:
        return self.sides[0]

    @property
    def theirs(self) -> Side:
        return self.sides[1]


def _listening(ns: str, port: int) -> bool:
    with socket_in(ns, socket.AF_INET) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def strip(line: str) -> str:
    """A log line without the client's port, the dates and the timers that vary."""
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:P", line)
    line = re.sub(r"\[\d\d/\w+/\d{4}:[\d:.]+\]", "[DATE]", line)
    return line


CLOSERS: list[Callable[[], object]] = []  # servers and log sinks of the running test


@pytest.fixture
def tenant(lab: Lab) -> Iterator[tuple[Lab, str]]:
    try:
        yield lab, lab.netns("tls")
    finally:
        while CLOSERS:
            with contextlib.suppress(Exception):
                CLOSERS.pop()()


HEAD = """global
  log 127.0.0.1:{log} format raw local0
  nbthread 1
{stats}
defaults
  mode tcp
  log global
  timeout client 2s
  timeout server 5s
  timeout connect 2s
  retries 0
"""

# ---- client side -----------------------------------------------------------------------------

SNI_CFG = (
    HEAD
    + """
frontend f
  bind 127.0.0.1:{port} namespace {ns} ssl crt {www} crt {api}
  log-format "%ci %ft %b/%s %sslv %sslc [%[ssl_fc_sni]] %[ssl_fc] %[ssl_fc_protocol] {more}"
  default_backend be
backend be
  server echo 127.0.0.1:{echo} namespace {ns}
"""
)


def test_certificate_by_sni_relay_and_logs_like_haproxy(tenant: tuple[Lab, str], pki: Pki) -> None:
    lab, ns = tenant
    origin = Origin(ns, None)
    CLOSERS.append(origin.close)
    more = "%[ssl_c_used] %B %U"
    both = Both(lab, ns, SNI_CFG, www=pki.www, api=pki.api, echo=str(origin.port), more=more)
    blob = os.urandom(1 << 20)
    cases = ["www.example.com", "api.example.com", "a.example.org", None, "unknown.test"]
    results: dict[str, list[Outcome]] = {}
    for side in both.sides:
        results[side.name] = [
            talk(ns, side.port, client_ctx(pki), sni, blob if i == 0 else b"hello %d" % i)
            for i, sni in enumerate(cases)
        ]
    ours, theirs = results["nsproxy"], results["haproxy"]
    assert [o.names for o in ours] == [o.names for o in theirs]
    assert ours[1].names == ("api.example.com",)
    assert ours[2].names == ours[0].names == ("www.example.com", "*.example.org")
    assert ours[0].data == blob
    assert [o.data for o in ours] == [o.data for o in theirs]
    assert [o.version for o in ours] == [o.version for o in theirs]
    # (+1: the probe that waited for the listener, closed during the handshake)
    lines = [list(map(strip, s.logs.wait(len(cases) + 1))) for s in both.sides]
    assert sorted(lines[0]) == sorted(lines[1])
    assert any(" f~ be/echo TLSv1.3 " in ln and "[api.example.com]" in ln for ln in lines[0])


CLIENT_CERT_CFG = (
    HEAD
    + """
frontend f
  bind 127.0.0.1:{port} namespace {ns} ssl crt {www} verify optional ca-file {ca}
  log-format "%ft %[ssl_c_used] %[ssl_c_verify] %[ssl_c_s_dn] %[ssl_c_i_dn] {more}"
  default_backend be
backend be
  server echo 127.0.0.1:{echo} namespace {ns}
"""
)


def test_client_certificate_outcomes_like_haproxy(tenant: tuple[Lab, str], pki: Pki) -> None:
    lab, ns = tenant
    origin = Origin(ns, None)
    CLOSERS.append(origin.close)
    more = (
        "%[ssl_c_s_dn(CN)] %[ssl_c_serial,hex] %[ssl_c_sha1,hex] %[ssl_c_notafter] "
        "%[ssl_fc_has_crt] %B"
    )
    echo = str(origin.port)
    both = Both(lab, ns, CLIENT_CERT_CFG, www=pki.www, ca=pki.ca_file, echo=echo, more=more)
    clients = [None, pki.client, pki.stranger]
    seen: dict[str, list[Outcome]] = {}
    for side in both.sides:
        seen[side.name] = [
            talk(ns, side.port, client_ctx(pki, cert), "www.example.com", b"x", shut=cert is None)
            for cert in clients
        ]
        # the same stranger that closes at once: the server sees the close first
        talk(ns, side.port, client_ctx(pki, pki.stranger), "www.example.com", b"x")
    ours, theirs = seen["nsproxy"], seen["haproxy"]
    # TLS 1.3: a refused client certificate is known to the client after its handshake
    assert [o.data for o in ours] == [o.data for o in theirs] == [b"x", b"x", b""]
    lines = [sorted(map(strip, s.logs.wait(5))) for s in both.sides]
    assert lines[0] == lines[1]
    assert "f~ 0 0 - - - - - - 0 1" in lines[0]
    assert any(ln.startswith("f~ 1 0 /O=") and "/CN=alice /O=Test CA/" in ln for ln in lines[0])
    assert "127.0.0.1:P [DATE] f/1: SSL client certificate not trusted" in lines[0]
    assert "127.0.0.1:P [DATE] f/1: Connection closed during SSL handshake" in lines[0]


BAD_CFG = (
    HEAD
    + """
frontend f
  option tcplog
  bind 127.0.0.1:{port} namespace {ns} ssl crt {www} strict-sni
  default_backend be
backend be
  server echo 127.0.0.1:{echo} namespace {ns}
"""
)


def test_bad_clients_are_closed_and_logged_like_haproxy(tenant: tuple[Lab, str], pki: Pki) -> None:
    lab, ns = tenant
    origin = Origin(ns, None)
    CLOSERS.append(origin.close)
    both = Both(lab, ns, BAD_CFG, www=pki.www, echo=str(origin.port))
    hello_start = bytes.fromhex("160301")  # a record header and nothing more
    for side in both.sides:
        assert raw_talk(ns, side.port, b"GET / HTTP/1.0\r\n\r\n") == b""  # nothing sent
        raw_talk(ns, side.port, hello_start, fin=True)
        raw_talk(ns, side.port, hello_start, wait=5)  # waits for `timeout client`
        out = talk(ns, side.port, client_ctx(pki), "unknown.test")
        assert out.error is not None
        good = talk(ns, side.port, client_ctx(pki), "www.example.com", b"still fine")
        assert good.data == b"still fine"  # nothing else is affected
    reasons = []
    for side in both.sides:
        lines = side.logs.wait(6)
        reasons.append([ln.split(": ", 1)[1] for ln in lines if "f/1: " in ln])
    assert reasons[0] == reasons[1]
    assert reasons[0] == [
        "Connection closed during SSL handshake",  # the probe waiting for the listener
        "SSL handshake failure",
        "Connection closed during SSL handshake",
        "Timeout during SSL handshake",
        "SSL handshake failure",
    ]


def test_without_log_format_only_finished_handshakes_say_connect_from(
    tenant: tuple[Lab, str], pki: Pki
) -> None:
    lab, ns = tenant
    origin = Origin(ns, None)
    CLOSERS.append(origin.close)
    cfg = BAD_CFG.replace("  option tcplog\n", "")
    both = Both(lab, ns, cfg, www=pki.www, echo=str(origin.port))
    for side in both.sides:
        raw_talk(ns, side.port, b"GET / HTTP/1.0\r\n\r\n")
        assert talk(ns, side.port, client_ctx(pki), "www.example.com", b"ok").data == b"ok"
    # the failed handshake came first: a line for it would come before the good one's
    firsts = [strip(side.logs.wait(1)[0]) for side in both.sides]
    assert firsts[0] == firsts[1] == "Connect from 127.0.0.1:P to 127.0.0.1:P (f/TCP)"


# ---- server side -----------------------------------------------------------------------------

SERVER_CFG = (
    HEAD
    + """
frontend f
  bind 127.0.0.1:{port} namespace {ns} ssl crt {www} verify optional ca-file {ca}
  default_backend be
backend be
  server member-1 127.0.0.1:{origin} namespace {ns} {tls}
"""
)


def _tlvs(header: bytes) -> list[tuple[int, bytes]]:
    """The TLVs of a PROXY v2 header after the IPv4 addresses."""
    body = header[16 + 12 :]
    out = []
    while body:
        t, n = body[0], int.from_bytes(body[1:3], "big")
        out.append((t, body[3 : 3 + n]))
        body = body[3 + n :]
    return out


def test_ssl_to_the_server_sni_alpn_proxy_v2_tlv_and_reuse_like_haproxy(
    tenant: tuple[Lab, str], pki: Pki
) -> None:
    lab, ns = tenant
    origins = []
    sides = []
    for _ in range(2):
        o = Origin(ns, pki.member, proxy=True, ca_file=pki.ca_file)
        CLOSERS.append(o.close)
        origins.append(o)
    # one origin per proxy: each sees only its own connections
    for i, name in enumerate(("nsproxy", "haproxy")):
        cfg = SERVER_CFG.format(
            port="{port}",
            ns="{ns}",
            log="{log}",
            stats="{stats}",
            www=pki.www,
            ca=pki.ca_file,
            tls=f"ssl verify required ca-file {pki.ca_file} crt {pki.proxy_client} "
            "sni ssl_fc_sni alpn http/1.1 send-proxy-v2-ssl-cn",
            origin=origins[i].port,
        )
        sides.append((name, cfg))
    outcomes = []
    for (name, cfg), origin in zip(sides, origins, strict=True):
        both = Both.__new__(Both)
        both.sides = []
        port = free_port(ns)
        logs = Logs()
        CLOSERS.append(logs.close)
        d = tempfile.mkdtemp(prefix="nsp-tls-")
        stats = os.path.join(d, "stats.sock")
        text = cfg.format(port=port, ns=ns, log=logs.port, stats=f"  stats socket {stats}")
        if name == "nsproxy":
            lab.proxy(text)
        else:
            lab.haproxy(text, stats)
        wait_until(lambda p=port: _listening(ns, p), 10, f"{name} listening")
        a = talk(ns, port, client_ctx(pki, pki.client), "member-1.example.com", b"one")
        b = talk(ns, port, client_ctx(pki), "member-1.example.com", b"two")
        outcomes.append((a, b, origin.wait(2)))
    (a1, b1, seen1), (a2, b2, seen2) = outcomes
    assert (a1.data, b1.data) == (a2.data, b2.data) == (b"one", b"two")
    for s1, s2 in zip(seen1, seen2, strict=True):
        assert (s1.sni, s1.alpn, s1.peer_cn) == (s2.sni, s2.alpn, s2.peer_cn)
        assert _tlvs(s1.header) == _tlvs(s2.header)
    assert seen1[0].sni == "member-1.example.com" and seen1[0].alpn == "http/1.1"
    assert seen1[0].peer_cn == "lb"
    tlv = dict(_tlvs(seen1[0].header))[pp.TlvType.SSL]
    assert tlv[0] == 0x07 and b"alice" in tlv
    assert dict(_tlvs(seen1[1].header))[pp.TlvType.SSL][0] == 0x01
    # the second connection resumes the first one's session (one thread: HAProxy keeps the
    # session per thread)
    assert [s.resumed for s in seen1] == [s.resumed for s in seen2] == [False, True]


# ---- runtime API -----------------------------------------------------------------------------

API_CFG = (
    HEAD
    + """
frontend f
  option tcplog
  bind 127.0.0.1:{port} namespace {ns} ssl crt {www}
  default_backend be
backend be
  server echo 127.0.0.1:{echo} namespace {ns}
"""
)


def test_set_and_commit_ssl_cert_change_new_handshakes_like_haproxy(
    tenant: tuple[Lab, str], pki: Pki, tmp_path: Path
) -> None:
    lab, ns = tenant
    origin = Origin(ns, None)
    CLOSERS.append(origin.close)
    site = tmp_path / "site.pem"  # a file of its own: the commit changes the store, not it
    site.write_bytes(Path(pki.www).read_bytes())
    renewed = pki.ca.issue_cert("www.example.com", "renewed.example.com")
    pem = renewed.private_key_and_cert_chain_pem.bytes().decode()
    both = Both(lab, ns, API_CFG, www=str(site), echo=str(origin.port))
    answers = []
    for side in both.sides:
        before = talk(ns, side.port, client_ctx(pki), "www.example.com", b"a")
        steps = [
            cli(side.stats, "show ssl cert"),
            cli(side.stats, f"set ssl cert {site} <<\n{pem}"),
            cli(side.stats, "show ssl cert"),
            cli(side.stats, f"commit ssl cert {site}"),
            cli(side.stats, "show ssl cert"),
        ]
        after = talk(ns, side.port, client_ctx(pki), "www.example.com", b"b")
        answers.append((before.names, after.names, steps))
    assert answers[0] == answers[1]
    names_before, names_after, steps = answers[0]
    assert names_before == ("www.example.com", "*.example.org")
    assert names_after == ("www.example.com", "renewed.example.com")
    assert steps[1] == f"Transaction created for certificate {site}!\n\n".encode()
    assert steps[3] == f"Committing {site}.\nSuccess!\n\n".encode()


# ---- HTTP over TLS: Octavia's TERMINATED_HTTPS listener shape --------------------------------

OCTAVIA_CFG = (
    HEAD
    + """
frontend 7e1c5d9a-listener
  maxconn 50000
  redirect scheme https if !{{ ssl_fc }}
  http-response set-header Strict-Transport-Security "max-age=10000000; includeSubDomains; preload;"
  bind 127.0.0.1:{port} namespace {ns} ssl crt-list {crt_list} ca-file {ca} verify optional
  mode http
  http-request set-header X-Forwarded-For %[src]
  http-request set-header X-Forwarded-Port %[dst_port]
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-SSL-Client-Verify %[ssl_c_verify]
  http-request set-header X-SSL-Client-Has-Cert %[ssl_c_used]
  http-request set-header X-SSL-Client-DN %{{+Q}}[ssl_c_s_dn]
  http-request set-header X-SSL-Client-CN %{{+Q}}[ssl_c_s_dn(cn)]
  http-request set-header X-SSL-Issuer %{{+Q}}[ssl_c_i_dn]
  http-request set-header X-SSL-Client-SHA1 %{{+Q}}[ssl_c_sha1,hex]
  http-request set-header X-SSL-Client-Not-Before %{{+Q}}[ssl_c_notbefore]
  http-request set-header X-SSL-Client-Not-After %{{+Q}}[ssl_c_notafter]
  option httplog
  default_backend 2b8f6c3e-pool
  timeout client 50000
backend 2b8f6c3e-pool
  mode http
  balance roundrobin
  option allbackups
  timeout connect 5000
  timeout server 50000
  server 9d3a-member {member} weight 1 {member_tls}
"""
)


def test_octavia_terminated_https_like_haproxy(
    tenant: tuple[Lab, str], pki: Pki, tmp_path: Path
) -> None:
    """HTTP mode over TLS with client certificates, the client's facts in headers, and
    re-encryption to the member: what the client reads, what the member receives, the logs."""
    lab, ns = tenant
    crt_list = tmp_path / "listener.lst"
    crt_list.write_text(f"{pki.www}\n{pki.api} api.example.com\n")
    origins = [Origin(ns, pki.member, http=True) for _ in range(2)]
    CLOSERS.extend(o.close for o in origins)
    requests = (
        b"GET /a HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /c HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
    )
    got = []
    for name, origin in zip(("nsproxy", "haproxy"), origins, strict=True):
        logs = Logs()
        CLOSERS.append(logs.close)
        port = free_port(ns)
        stats = os.path.join(tempfile.mkdtemp(prefix="nsp-tls-"), "stats.sock")
        text = OCTAVIA_CFG.format(
            port=port,
            ns=ns,
            log=logs.port,
            stats=f"  stats socket {stats}",
            crt_list=crt_list,
            ca=pki.ca_file,
            member=f"127.0.0.1:{origin.port} namespace {ns}",
            member_tls=f"ssl verify required ca-file {pki.ca_file} sni str(member-1.example.com)",
        )
        if name == "nsproxy":
            lab.proxy(text)
        else:
            lab.haproxy(text, stats)
        wait_until(lambda p=port: _listening(ns, p), 10, f"{name} listening")
        with_cert = talk(
            ns, port, client_ctx(pki, pki.client), "www.example.com", requests, shut=False
        )
        without = talk(ns, port, client_ctx(pki), "api.example.com", requests, shut=False)
        seen = origin.wait(2)
        lines = [strip(ln) for ln in logs.wait(7)]  # 6 requests and the probe
        got.append((with_cert, without, seen, lines))
    (c1, n1, seen1, lines1), (c2, n2, seen2, lines2) = got
    assert (c1.data, n1.data) == (c2.data, n2.data)
    assert c1.data.count(b"HTTP/1.1 200 OK") == 3
    assert b"strict-transport-security: max-age=10000000" in c1.data.lower()
    assert n1.names == ("api.example.com",)
    port = re.compile(rb"(?im)^(x-forwarded-port: )\d+")  # each proxy has its own port
    # (HAProxy may send a later request over another client's idle server connection: the
    # requests are compared, not how they were spread over connections)
    split = re.compile(rb"(?=(?:GET|POST) /)")

    def reqs(seen: list[Seen]) -> list[bytes]:
        return sorted(r for s in seen for r in split.split(port.sub(rb"\1P", s.data)) if r)

    assert reqs(seen1) == reqs(seen2)
    assert len(reqs(seen1)) == 6
    assert [s.sni for s in seen1] == ["member-1.example.com"] * 2
    member = bytes(seen1[0].data)
    assert b"x-ssl-client-has-cert: 1" in member and b"/CN=alice" in member
    assert b"x-forwarded-proto: https" in member
    assert sorted(map(_http_fields, lines1)) == sorted(map(_http_fields, lines2))
    assert lines1[0].endswith("7e1c5d9a-listener/1: Connection closed during SSL handshake")


def _http_fields(line: str) -> str:
    """An httplog line without its timers and %B (HAProxy 2.6 counts HTX bytes there)."""
    fields = line.split()
    if len(fields) > 6 and fields[4].count("/") == 4:
        fields[4] = fields[6] = "-"
    return " ".join(fields)


# ---- kubespray's API-server balancer: TCP passthrough, check-ssl health checks ---------------

KUBE_CFG = (
    HEAD
    + """
  option log-health-checks
frontend kube_api_frontend
  bind 127.0.0.1:{port} namespace {ns}
  mode tcp
  option tcplog
  default_backend kube_api_backend
backend kube_api_backend
  mode tcp
  balance leastconn
  default-server inter 1s downinter 1s rise 2 fall 1 maxconn 1000 maxqueue 256 weight 100
  server node1 127.0.0.1:{good} namespace {ns} check check-ssl verify none
  server node2 127.0.0.1:{clear} namespace {ns} check check-ssl verify none
  server node3 127.0.0.1:{dead} namespace {ns} check check-ssl verify none
"""
)


def test_kubespray_api_balancer_passthrough_and_check_ssl_like_haproxy(
    tenant: tuple[Lab, str], pki: Pki
) -> None:
    """kubespray's shape with layer-6 checks only (its HTTP check, `option httpchk GET
    /healthz`, is in tests/integration/test_lb_configs.py):
    TLS to the API servers passes through untouched; `check-ssl` checks each node in TLS:
    a TLS node passes (L6OK), a clear one fails the handshake (L6RSP), a closed port L4CON."""
    lab, ns = tenant
    good = Origin(ns, pki.member)
    clear = Origin(ns, None)
    CLOSERS.extend((good.close, clear.close))
    dead = free_port(ns)
    both = Both(lab, ns, KUBE_CFG, good=str(good.port), clear=str(clear.port), dead=str(dead))
    lines = []
    for side in both.sides:

        def firsts(side: Side = side) -> list[str] | None:
            """Each node's first check line and the DOWN lines, once all are there."""
            with contextlib.suppress(TimeoutError):
                side.logs.wait(len(side.logs.lines) + 1, timeout=0.3)
            got = {}
            for ln in side.logs.lines:
                m = re.match(r"(Health check for server|Server) kube_api_backend/(node\d)", ln)
                if m and (m.group(1), m.group(2)) not in got:
                    got[m.group(1), m.group(2)] = ln
            return list(got.values()) if len(got) >= 5 else None

        found = wait_until(firsts, 15, "each node's first check and two servers DOWN")
        lines.append(sorted(re.sub(r"check duration: \d+ms", "D", ln) for ln in found))
    assert lines[0] == lines[1]
    assert any("node2 failed, reason: Layer6 invalid response" in ln for ln in lines[0])
    assert any("node3 failed, reason: Layer4 connection problem" in ln for ln in lines[0])
    for side in both.sides:  # the client's TLS reaches the API server untouched
        out = talk(ns, side.port, client_ctx(pki), "member-1.example.com", b"kubectl")
        assert out.names == ("member-1.example.com",) and out.data == b"kubectl"


# ---- rules over the decrypted stream -------------------------------------------------------

RULES_CFG = (
    HEAD
    + """
frontend f
  bind 127.0.0.1:{port} namespace {ns} ssl crt {www} crt {api} verify optional ca-file {ca}
  log-format "%ft %s %[var(sess.who)] %[ssl_fc_sni] %B"
  tcp-request inspect-delay 2s
  tcp-request content set-var(sess.who) ssl_c_s_dn(CN) if {{ ssl_c_used }}
  tcp-request content reject if {{ ssl_fc_sni -m end .example.org }}
  tcp-request content reject if !{{ req.len gt 0 }}
  use_backend api if {{ ssl_fc_sni api.example.com }}
  default_backend www
backend www
  server w 127.0.0.1:{echo} namespace {ns}
backend api
  server a 127.0.0.1:{echo} namespace {ns}
"""
)


def test_rules_see_the_handshake_and_the_decrypted_bytes_like_haproxy(
    tenant: tuple[Lab, str], pki: Pki
) -> None:
    lab, ns = tenant
    origin = Origin(ns, None)
    CLOSERS.append(origin.close)
    both = Both(lab, ns, RULES_CFG, www=pki.www, api=pki.api, ca=pki.ca_file, echo=str(origin.port))
    cases = [
        ("www.example.com", None, b"hello"),
        ("api.example.com", pki.client, b"api call"),
        ("a.example.org", None, b"refused by SNI"),
    ]
    seen = []
    for side in both.sides:
        seen.append(
            [
                talk(ns, side.port, client_ctx(pki, cert), sni, data).data
                for sni, cert, data in cases
            ]
        )
    assert seen[0] == seen[1] == [b"hello", b"api call", b""]
    lines = [sorted(map(strip, side.logs.wait(4))) for side in both.sides]
    assert lines[0] == lines[1]
    assert "f~ a alice api.example.com 8" in lines[0]
    assert "f~ w - www.example.com 5" in lines[0]
    assert "f~ <NOSRV> - a.example.org 0" in lines[0]


ANSWER_CFG = (
    HEAD
    + """
frontend f
  mode http
  option httplog
  bind 127.0.0.1:{port} namespace {ns} ssl crt {www}
  http-request deny if {{ path /forbidden }}
  http-request return status 200 content-type text/plain lf-string {whoami} if {{ path /whoami }}
  default_backend be
backend be
  mode http
  server s 127.0.0.1:{origin} namespace {ns}
"""
)


def test_the_proxys_own_answers_over_tls_like_haproxy(tenant: tuple[Lab, str], pki: Pki) -> None:
    """Answers nsproxy writes itself (deny, return) reach the client whole over TLS, then
    the close: the ciphertext still queued is sent before the socket closes."""
    lab, ns = tenant
    origin = Origin(ns, None, http=True)
    CLOSERS.append(origin.close)
    whoami = '"%[ssl_fc_protocol] %[ssl_fc_sni]"'
    both = Both(lab, ns, ANSWER_CFG, www=pki.www, origin=str(origin.port), whoami=whoami)
    asks = [
        b"GET /whoami HTTP/1.1\r\nHost: a\r\n\r\nGET /forbidden HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ]
    got = []
    for side in both.sides:
        got.append(
            [
                talk(ns, side.port, client_ctx(pki), "www.example.com", a, shut=False).data
                for a in asks
            ]
        )
    assert got[0] == got[1]
    assert b"TLSv1.3 www.example.com" in got[0][0] and b" 403 " in got[0][0]
    assert got[0][1].startswith(b"HTTP/1.1 200 OK") and got[0][1].endswith(b"ok\n")


PROXY_CFG = (
    HEAD
    + """
frontend f
  bind 127.0.0.1:{port} namespace {ns} accept-proxy ssl crt {www}
  log-format "%ci:%cp %ft %[ssl_fc_sni] %B"
  default_backend be
backend be
  server echo 127.0.0.1:{echo} namespace {ns}
"""
)


def test_accept_proxy_is_read_in_clear_before_the_handshake_like_haproxy(
    tenant: tuple[Lab, str], pki: Pki
) -> None:
    lab, ns = tenant
    origin = Origin(ns, None)
    CLOSERS.append(origin.close)
    both = Both(lab, ns, PROXY_CFG, www=pki.www, echo=str(origin.port))
    header = pp.encode_v2(("10.1.2.3", 4321), ("10.0.0.1", 443))
    for side in both.sides:
        out = talk(ns, side.port, client_ctx(pki), "www.example.com", b"x", preamble=header)
        assert out.data == b"x"
    lines = [side.logs.wait(2)[-1] for side in both.sides]
    assert lines[0] == lines[1] == "10.1.2.3:4321 f~ www.example.com 1"


TIMERS_CFG = (
    HEAD
    + """
frontend f
  mode http
  bind 127.0.0.1:{port} namespace {ns} ssl crt {www}
  log-format "%Th %Ti %TR %Tt %Ta"
  default_backend be
backend be
  mode http
  server s 127.0.0.1:{origin} namespace {ns}
"""
)


def test_http_timers_around_the_handshake_like_haproxy(tenant: tuple[Lab, str], pki: Pki) -> None:
    """%Th is the handshake, %Ti the idle time after it, %Tt counts from the accept."""
    lab, ns = tenant
    origin = Origin(ns, None, http=True)
    CLOSERS.append(origin.close)
    both = Both(lab, ns, TIMERS_CFG, www=pki.www, origin=str(origin.port))
    fields = []
    for side in both.sides:
        sock = socket_in(ns, socket.AF_INET)
        sock.connect(("127.0.0.1", side.port))
        time.sleep(0.3)  # the stimulus: the handshake starts late (%Th)
        sock.setblocking(False)
        tx = TlsTransport(sock, client_ctx(pki), False, "www.example.com")
        while (want := tx.handshake()) is not Want.DONE:
            rd, wr = ([tx.fd], []) if want is Want.READ else ([], [tx.fd])
            select.select(rd, wr, [], 5)
        time.sleep(0.3)  # the stimulus: idle before the request (%Ti)
        tx.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        answer = bytearray()
        buf = bytearray(65536)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the answer, to the close
            select.select([tx.fd], [tx.fd] if tx.want_write else [], [], 1)
            tx.flush()
            try:
                n = tx.recv_into(buf)
            except BlockingIOError:
                continue
            if not n:
                break
            answer += buf[:n]
        tx.close()
        assert answer.endswith(b"ok\n")
        fields.append([int(x) for x in side.logs.wait(2)[-1].split()])
    (th1, ti1, tr1, tt1, ta1), (th2, ti2, tr2, tt2, ta2) = fields
    assert min(th1, th2, ti1, ti2) >= 300 and min(tr1, tr2) >= 0
    # %Tt counts from the accept: the handshake, the idle time, then the request's %Ta
    assert tt1 >= th1 + ti1 + ta1 and tt2 >= th2 + ti2 + ta2 and max(tt1, tt2) < 1000


ALPN_CFG = (
    HEAD
    + """
frontend web
  mode http
  bind 127.0.0.1:{port} namespace {ns} ssl crt {www} alpn h2,http/1.1
  default_backend be_web
frontend raw
  mode tcp
  bind 127.0.0.1:{tcp_port} namespace {ns} ssl crt {www} alpn h2,http/1.1
  default_backend be_raw
backend be_web
  mode http
  server s 127.0.0.1:{origin} namespace {ns}
backend be_raw
  server s 127.0.0.1:{origin} namespace {ns}
"""
)


def test_alpn_follows_the_servers_order_and_http_mode_does_not_offer_h2(
    tenant: tuple[Lab, str], pki: Pki
) -> None:
    """In TCP mode ALPN is the bind's, in its order (h2 for a client preferring http/1.1,
    as HAProxy); in HTTP mode nsproxy, which speaks HTTP/1.1 only, leaves h2 out, with a
    warning at start (HAProxy would speak h2 there)."""
    lab, ns = tenant
    origin = Origin(ns, None, http=True)
    CLOSERS.append(origin.close)
    port, tcp_port = free_port(ns), free_port(ns)
    logs = Logs()
    CLOSERS.append(logs.close)
    proxy = lab.proxy(
        ALPN_CFG.format(
            port=port,
            tcp_port=tcp_port,
            ns=ns,
            log=logs.port,
            stats="",
            www=pki.www,
            origin=origin.port,
        )
    )
    prefers_h1 = client_ctx(pki, alpn=["http/1.1", "h2"])
    request = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    web = talk(ns, port, prefers_h1, "www.example.com", request, shut=False)
    assert web.alpn == "http/1.1" and web.data.startswith(b"HTTP/1.1 200 OK")
    assert talk(ns, tcp_port, prefers_h1, "www.example.com").alpn == "h2"
    assert talk(ns, tcp_port, client_ctx(pki, alpn=["x"]), "www.example.com").alpn is None
    assert "offers 'h2' in 'alpn': nsproxy speaks HTTP/1.1 only" in proxy.output()


VERIFY_CFG = (
    HEAD
    + """
frontend f
  option tcplog
  bind 127.0.0.1:{port} namespace {ns}
  default_backend be
backend be
  retries 1
  server member-1 127.0.0.1:{origin} namespace {ns} ssl verify required ca-file {ca}
"""
)


def test_a_server_certificate_not_trusted_fails_the_connection_like_haproxy(
    tenant: tuple[Lab, str], pki: Pki
) -> None:
    lab, ns = tenant
    origin = Origin(ns, pki.member)
    CLOSERS.append(origin.close)
    both = Both(lab, ns, VERIFY_CFG, origin=str(origin.port), ca=pki.other_ca_file)
    for side in both.sides:
        assert raw_talk(ns, side.port, b"hello") == b""
    lines = [side.logs.wait(2) for side in both.sides]
    fields = [ln[-1].split() for ln in lines]
    # client, date, frontend, backend/server, timers, bytes, termination, conns (retries last)
    assert [f[2:4] + f[5:7] + f[7].split("/")[-1:] for f in fields] == [
        ["f", "be/member-1", "0", "SC", "1"]
    ] * 2


REUSE_CFG = (
    HEAD
    + """
frontend f
  bind 127.0.0.1:{port} namespace {ns}
  default_backend be
backend be
  server member-1 127.0.0.1:{origin} namespace {ns} ssl verify none {reuse}
"""
)


@pytest.mark.parametrize("reuse", ["", "no-ssl-reuse"])
def test_session_reuse_to_the_server_like_haproxy(
    tenant: tuple[Lab, str], pki: Pki, reuse: str
) -> None:
    lab, ns = tenant
    origins = [Origin(ns, pki.member) for _ in range(2)]
    CLOSERS.extend(o.close for o in origins)
    resumed = []
    infos = []
    for name, origin in zip(("nsproxy", "haproxy"), origins, strict=True):
        port = free_port(ns)
        logs = Logs()
        CLOSERS.append(logs.close)
        stats = os.path.join(tempfile.mkdtemp(prefix="nsp-tls-"), "stats.sock")
        text = REUSE_CFG.format(
            port=port,
            ns=ns,
            log=logs.port,
            stats=f"  stats socket {stats}",
            origin=origin.port,
            reuse=reuse,
        )
        if name == "nsproxy":
            lab.proxy(text)
        else:
            lab.haproxy(text, stats)
        wait_until(lambda p=port: _listening(ns, p), 10, f"{name} listening")
        before = wait_until(lambda st=stats: _ssl_info(st), 10, f"{name}'s probe closed")
        for data in (b"one", b"two", b"three"):
            assert raw_talk(ns, port, data, fin=True) == data
        # the last two: before them, whether the listener probe's connection left a session
        # depends on when it was cut
        resumed.append([s.resumed for s in origin.wait(3)][-2:])
        after = wait_until(lambda st=stats: _ssl_info(st), 10, f"{name}'s TLS closed")
        infos.append((after["MaxSslConns"], int(after["CumSslConns"]) - int(before["CumSslConns"])))
    assert resumed[0] == resumed[1] == ([True] * 2 if not reuse else [False] * 2)
    # `show info`: three more TLS connections to the server, none left open (_ssl_info)
    assert infos[0] == infos[1] == ("0", 3)


def _ssl_info(stats: str) -> dict[str, str] | None:
    """The connection counts of `show info`, once no TLS connection is open."""
    fields = dict(
        ln.split(": ", 1) for ln in cli(stats, "show info").decode().splitlines() if ": " in ln
    )
    got = {k: fields[k] for k in ("MaxSslConns", "CurrSslConns", "CumSslConns")}
    return got if got["CurrSslConns"] == "0" else None
