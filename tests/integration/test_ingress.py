"""The Kubernetes ingress controllers' configurations in a namespace, nsproxy beside HAProxy 2.6.

Each rendering (tests/config/data/*-ingress.cfg) runs with its binds and servers moved into a
namespace that holds the pods (recording origins) and the client. The same requests go to
both proxies: the answers, the pod each request reached and the bytes it arrived with must be
the same, and the routing must be the one the controller's maps describe.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingress.files import CONFIGS, IngressFiles, lay_out
from ingress.lab import Placed, Pods, copy_files, http, place, pod_addresses, request
from lab.netlab import Lab, cli, socket_in

HAPROXY = "haproxy"
VIP = "10.96.0.10"
API = ("10.244.1.11", "10.244.1.12")
WEB = ("10.244.2.11", "10.244.2.12")
SECURE = ("10.244.3.11", "10.244.3.12")
DEFAULT = ("10.244.9.11", "10.244.9.12")

needs_haproxy = pytest.mark.skipif(
    subprocess.run(["sh", "-c", f"command -v {HAPROXY}"], capture_output=True).returncode != 0,
    reason="haproxy is not installed",
)


@dataclass
class Side:
    """One proxy on one placed configuration."""

    placed: Placed
    files: IngressFiles
    logs: socket.socket  # where its `log 127.0.0.1 ...` lines arrive (raw format)

    def addr(self, port: int) -> tuple[str, int]:
        return (VIP, self.placed.ports[port])

    def log_line(self, needle: str) -> str:
        """The next log line containing `needle` (raises on timeout)."""
        while True:
            line = self.logs.recv(65536).decode().strip()
            if needle in line:
                return line


@dataclass
class Ingress:
    """nsproxy and HAProxy on the same configuration, the pods, the client's namespace."""

    ns: str
    pods: Pods
    nsproxy: Side
    haproxy: Side

    def both(
        self, port: int, raw: bytes, tls: ssl.SSLContext | None = None, sni: str | None = None
    ) -> tuple[tuple[bytes, object, list[tuple[str, bytes]]], ...]:
        """`raw` through HAProxy then nsproxy: (answer, certificate, what the pods saw)."""
        out = []
        for side in (self.haproxy, self.nsproxy):
            self.pods.take()
            answer, cert = http(self.ns, side.addr(port), raw, tls, sni)
            seen = self.pods.take() if b" 200 OK" in answer[:20] else []
            out.append((answer, cert, seen))
        return tuple(out)


def _start(lab: Lab, name: str) -> Iterator[Ingress]:
    text = CONFIGS[name].read_text()
    ns = lab.netns("ingress")
    lab.ip(ns, "addr", "add", f"{VIP}/32", "dev", "lo")
    addrs = pod_addresses(text)
    for addr in addrs:
        lab.ip(ns, "addr", "add", f"{addr}/32", "dev", "lo")
    pods = Pods(ns, addrs)
    pods.start()
    top = Path(tempfile.mkdtemp(prefix="nsp-ingress-"))
    files_n = lay_out(top / "n")
    files_h = IngressFiles(copy_files(files_n.root, top / "h"), files_n.ca)
    placed_n, placed_h = _logged(place(text, ns, VIP)), _logged(place(text, ns, VIP))
    lab.proxy(placed_n[0].text, env=files_n.env)
    os.environ.update(files_h.env)
    try:
        stats = next(
            str(files_h.root / p) for p in ("admin.sock", "haproxy-runtime-api.sock") if p in text
        )
        lab.haproxy(placed_h[0].text, stats)
    finally:
        del os.environ["INGRESS_DIR"]
    try:
        yield Ingress(
            ns,
            pods,
            Side(placed_n[0], files_n, placed_n[1]),
            Side(placed_h[0], files_h, placed_h[1]),
        )
    finally:
        pods.close()
        placed_n[1].close()
        placed_h[1].close()


def _logged(placed: Placed) -> tuple[Placed, socket.socket]:
    """The configuration's syslog target on loopback replaced by a socket of the test (and
    all levels: the controller's `notice` would keep the traffic lines out)."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    target = f"log 127.0.0.1:{udp.getsockname()[1]} format raw local0"
    return Placed(placed.text.replace("log 127.0.0.1 local0 notice", target), placed.ports), udp


@pytest.fixture
def kubernetes_ingress(lab: Lab) -> Iterator[Ingress]:
    yield from _start(lab, "kubernetes-ingress")


def _client_tls(files: IngressFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    files.ca.configure_trust(ctx)
    ctx.check_hostname = False
    return ctx


def _san(cert: object) -> list[str]:
    assert isinstance(cert, dict)
    return [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]


def _same(results: tuple[tuple[bytes, object, list[tuple[str, bytes]]], ...]) -> None:
    """HAProxy's and nsproxy's answers and pod-side requests are the same (the pod chosen
    within a backend may differ: each balances on its own)."""
    (ans_h, cert_h, seen_h), (ans_n, cert_n, seen_n) = results
    body = re.compile(rb"\r\n\r\n(10\.244\.\d+)\.\d+$")
    assert body.sub(rb"\r\n\r\n\1.x", ans_n) == body.sub(rb"\r\n\r\n\1.x", ans_h)
    assert _san(cert_n) == _san(cert_h) if cert_h is not None else cert_n is None
    assert [r for _, r in seen_n] == [r for _, r in seen_h]
    assert [a.rsplit(".", 1)[0] for a, _ in seen_n] == [a.rsplit(".", 1)[0] for a, _ in seen_h]


def _pod(results: tuple[tuple[bytes, object, list[tuple[str, bytes]]], ...]) -> str:
    seen = results[1][2]
    assert len(seen) == 1, results
    return seen[0][0]


@needs_haproxy
def test_kubernetes_ingress_routes_hosts_and_paths_like_haproxy(
    kubernetes_ingress: Ingress,
) -> None:
    ing = kubernetes_ingress
    for host, path, group in (
        ("app.example.com", "/api", API),  # path-prefix-exact.map
        ("app.example.com", "/api/v1/users?id=3", API),  # path-prefix.map, longest prefix
        ("APP.example.com:80", "/", WEB),  # Host lowered, port dropped
        ("app.example.com", "/apix", WEB),  # not under /api/
        ("app.example.com", "/healthz", WEB),  # path-exact.map
        ("unknown.example.com", "/api", DEFAULT),  # default_backend
    ):
        res = ing.both(80, request(host, path))
        _same(res)
        assert _pod(res) in group, (host, path, res)
        seen = res[1][2][0][1]
        assert seen.startswith(f"GET {path} HTTP/1.1\r\n".encode())
        assert b"\r\nx-forwarded-for: 10.96.0.10\r\n" in seen.lower()


@needs_haproxy
@pytest.mark.parametrize("name", ["kubernetes-ingress", "haproxy-ingress"])
def test_each_request_of_a_keep_alive_connection_is_routed_like_haproxy(
    lab: Lab, name: str
) -> None:
    """Three pipelined requests on one connection, three hosts: each goes to its backend."""
    for ing in _start(lab, name):
        raw = (
            request("app.example.com", "/api/a").replace(b"Connection: close\r\n", b"")
            + request("unknown.example.com", "/").replace(b"Connection: close\r\n", b"")
            + request("app.example.com", "/")
        )
        res = ing.both(80, raw)
        _same(res)
        groups = [a.rsplit(".", 1)[0] for a, _ in res[1][2]]
        assert groups == ["10.244.1", "10.244.9", "10.244.2"]
        assert res[1][0].count(b"HTTP/1.1 200 OK\r\n") == 3


@needs_haproxy
def test_kubernetes_ingress_redirects_the_tls_host_to_https_like_haproxy(
    kubernetes_ingress: Ingress,
) -> None:
    res = kubernetes_ingress.both(80, request("secure.example.com", "/login?next=%2F"))
    _same(res)
    answer = res[1][0]
    assert answer.startswith(b"HTTP/1.1 302 Found\r\n")
    assert b"\r\nlocation: https://secure.example.com:443/login?next=%2F\r\n" in answer
    assert res[1][2] == []


@needs_haproxy
def test_kubernetes_ingress_terminates_tls_with_the_hosts_certificate_like_haproxy(
    kubernetes_ingress: Ingress,
) -> None:
    ing = kubernetes_ingress
    tls = _client_tls(ing.nsproxy.files)
    res = ing.both(443, request("secure.example.com", "/account"), tls, "secure.example.com")
    _same(res)
    assert _san(res[1][1]) == ["secure.example.com"]
    assert _pod(res) in SECURE
    seen = res[1][2][0][1].lower()
    assert b"\r\nx-forwarded-proto: https\r\n" in seen
    # no SNI: the directory's first certificate, and the Host header still routes
    res = ing.both(443, request("app.example.com", "/api/x"), tls, None)
    _same(res)
    assert _san(res[1][1]) == ["ingress.default"]
    assert _pod(res) in API


@needs_haproxy
def test_kubernetes_ingress_health_and_default_answers_like_haproxy(
    kubernetes_ingress: Ingress,
) -> None:
    ing = kubernetes_ingress
    res = ing.both(1042, request("x", "/healthz"))
    _same(res)
    assert res[1][0].startswith(b"HTTP/1.1 200 OK\r\n")


@needs_haproxy
def test_kubernetes_ingress_offers_http1_where_haproxy_picks_h2(
    kubernetes_ingress: Ingress,
) -> None:
    """`alpn h2,http/1.1`: HAProxy picks h2; nsproxy has no HTTP/2 and picks http/1.1, then
    serves the request."""
    ing = kubernetes_ingress
    tls = _client_tls(ing.nsproxy.files)
    tls.set_alpn_protocols(["h2", "http/1.1"])
    chosen = []
    for side in (ing.haproxy, ing.nsproxy):
        with socket_in(ing.ns, socket.AF_INET) as s:
            s.settimeout(10)
            s.connect(side.addr(443))
            with tls.wrap_socket(s, server_hostname="secure.example.com") as c:
                chosen.append(c.selected_alpn_protocol())
    assert chosen == ["h2", "http/1.1"]
    answer, _ = http(ing.ns, ing.nsproxy.addr(443), request("app.example.com", "/"), tls, None)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.fixture
def haproxy_ingress(lab: Lab) -> Iterator[Ingress]:
    yield from _start(lab, "haproxy-ingress")


@needs_haproxy
def test_haproxy_ingress_routes_hosts_and_paths_like_haproxy(haproxy_ingress: Ingress) -> None:
    ing = haproxy_ingress
    for host, path, group in (
        ("app.example.com", "/api", API),  # map_beg on host#path, longest first
        ("app.example.com", "/api/v1/users?id=3", API),
        ("App.Example.com:80", "/", WEB),  # host lowered, port dropped
        ("app.example.com", "/apix", API),  # a prefix match: /api begins /apix
        ("unknown.example.com", "/api", DEFAULT),  # default_backend
    ):
        res = ing.both(80, request(host, path))
        _same(res)
        assert _pod(res) in group, (host, path, res)
        seen = res[1][2][0][1].lower()
        assert b"\r\nx-forwarded-proto: http\r\n" in seen


@needs_haproxy
def test_haproxy_ingress_strips_client_certificate_headers_like_haproxy(
    haproxy_ingress: Ingress,
) -> None:
    forged = "X-SSL-Client-CN: admin\r\nX-SSL-Client-Cert: Zm9v\r\nX-Forwarded-Proto: https\r\n"
    res = haproxy_ingress.both(80, request("app.example.com", "/", forged))
    _same(res)
    seen = res[1][2][0][1].lower()
    assert b"x-ssl-client" not in seen
    assert seen.count(b"x-forwarded-proto") == 1


@needs_haproxy
def test_haproxy_ingress_redirects_the_tls_host_to_https_like_haproxy(
    haproxy_ingress: Ingress,
) -> None:
    res = haproxy_ingress.both(80, request("secure.example.com", "/login?next=%2F"))
    _same(res)
    answer = res[1][0]
    assert answer.startswith(b"HTTP/1.1 302 Found\r\n")
    assert b"\r\nlocation: https://secure.example.com/login?next=%2F\r\n" in answer
    assert res[1][2] == []


@needs_haproxy
def test_haproxy_ingress_terminates_tls_with_the_crt_list_certificates_like_haproxy(
    haproxy_ingress: Ingress,
) -> None:
    ing = haproxy_ingress
    tls = _client_tls(ing.nsproxy.files)
    res = ing.both(443, request("secure.example.com", "/account"), tls, "secure.example.com")
    _same(res)
    assert _san(res[1][1]) == ["secure.example.com"]
    assert _pod(res) in SECURE  # ssl_fc: no redirect over TLS
    assert b"\r\nx-forwarded-proto: https\r\n" in res[1][2][0][1].lower()
    # another name: the crt-list's default certificate ('!*'), routing by Host
    res = ing.both(443, request("app.example.com", "/api/x"), tls, "app.example.com")
    _same(res)
    assert _san(res[1][1]) == ["ingress.default"]
    assert _pod(res) in API


@needs_haproxy
def test_haproxy_ingress_lua_404_and_healthz_like_haproxy(haproxy_ingress: Ingress) -> None:
    ing = haproxy_ingress
    res = ing.both(10253, request("x", "/healthz"))
    _same(res)
    assert res[1][0].startswith(b"HTTP/1.1 200 OK\r\n")
    (ans_h, _, _), (ans_n, _, _) = ing.both(10253, request("x", "/other"))
    # the Lua applet's headers come in the order of a Lua table walk (random in HAProxy)
    head_h, _, body_h = ans_h.partition(b"\r\n\r\n")
    head_n, _, body_n = ans_n.partition(b"\r\n\r\n")
    assert head_n.split(b"\r\n")[0] == head_h.split(b"\r\n")[0] == b"HTTP/1.1 404 Not Found"
    assert sorted(head_n.split(b"\r\n")[1:]) == sorted(head_h.split(b"\r\n")[1:])
    assert body_n == body_h
    assert b"<h1>404 Not Found</h1>" in body_n


EDGE = [
    (b"GET http://app.example.com/api/x HTTP/1.1\r\nHost: app.example.com\r\n", API),
    (b"GET /api/x HTTP/1.0\r\nHost: app.example.com\r\n", API),
    (b"GET /api/x HTTP/1.0\r\n", DEFAULT),  # no Host
    (b"GET /%61pi/x HTTP/1.1\r\nHost: app.example.com\r\n", WEB),  # maps see the raw path
    (b"GET /API HTTP/1.1\r\nHost: app.example.com\r\n", WEB),  # paths keep their case
    (b"GET /api HTTP/1.1\r\nHost: app.example.com.\r\n", DEFAULT),  # a trailing dot
    (b"POST /api/x HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 5\r\n", API),
]


@needs_haproxy
@pytest.mark.parametrize("name", ["kubernetes-ingress", "haproxy-ingress"])
def test_unusual_requests_are_routed_like_haproxy(lab: Lab, name: str) -> None:
    for ing in _start(lab, name):
        for head, group in EDGE:
            body = b"hello" if head.startswith(b"POST") else b""
            res = ing.both(80, head + b"Connection: close\r\n\r\n" + body)
            _same(res)
            assert _pod(res) in group, (head, res)


def _comparable(line: str) -> str:
    """A log line without the client port, the date and the timers' values."""
    line = re.sub(r"^(\S+):\d+ \[[^]]+\]", r"\1:PORT [DATE]", line)
    return re.sub(r"(\] \S+ \S+ )[-\d]+/[-\d]+/[-\d]+/[-\d]+/[-\d]+ ", r"\1T/T/T/T/T ", line)


@needs_haproxy
def test_kubernetes_ingress_log_format_lines_like_haproxy(kubernetes_ingress: Ingress) -> None:
    """The controller's log-format (from its named defaults section) in both frontends."""
    ing = kubernetes_ingress
    tls = _client_tls(ing.nsproxy.files)
    for port, host, path, t in (
        (80, "app.example.com", "/api/v1?x=1", None),
        (80, "secure.example.com", "/login", None),
        (80, "nowhere.example.com", "/", None),
        (443, "secure.example.com", "/account", tls),
    ):
        ing.both(port, request(host, path), t, host if t else None)
        base = host + path.split("?")[0]  # %[var(txn.base)]: `base`, no query string
        line_h = ing.haproxy.log_line(base)
        line_n = ing.nsproxy.log_line(base)
        assert _comparable(line_n) == _comparable(line_h)
        assert f'"GET {base} HTTP/1.1"' in line_n


@needs_haproxy
def test_kubernetes_ingress_runtime_updates_like_haproxy(kubernetes_ingress: Ingress) -> None:
    """What the controller does without a reload: a new route in the maps, an endpoint moved
    (`set server ... addr ... port`), another one put in maintenance."""
    ing = kubernetes_ingress
    web = WEB[0]
    for side in (ing.haproxy, ing.nsproxy):
        api = str(side.files.root / "haproxy-runtime-api.sock")
        d = side.files.root
        answers = [
            cli(api, f"add map {d}/host.map new.example.com new.example.com"),
            cli(api, f"add map {d}/path-prefix.map new.example.com/ default_svc_secure_http"),
            cli(api, f"set server default_svc_api_http/SRV_1 addr {web} port 8080"),
            cli(api, "set server default_svc_api_http/SRV_2 state maint"),
        ]
        assert (
            answers[2]
            == (
                f"IP changed from '{API[0]}' to '{web}', no need to change the port by "
                "'stats socket command'\n\n"
            ).encode()
        )
        assert [a for i, a in enumerate(answers) if i != 2] == [b"\n"] * 3
    res = ing.both(80, request("new.example.com", "/x"))
    _same(res)
    assert _pod(res) in SECURE
    for _ in range(2):
        res = ing.both(80, request("app.example.com", "/api/x"))
        _same(res)
        assert _pod(res) == web


@needs_haproxy
def test_kubernetes_ingress_certificate_update_like_haproxy(kubernetes_ingress: Ingress) -> None:
    """A renewed certificate through the runtime API (`set ssl cert <<` then `commit`), on
    the master-worker process the controller runs."""
    ing = kubernetes_ingress
    tls = _client_tls(ing.nsproxy.files)
    renewed = ing.nsproxy.files.ca.issue_cert("secure.example.com", "www.secure.example.com")
    pem = renewed.private_key_and_cert_chain_pem.bytes().decode()
    steps = []
    for side in (ing.haproxy, ing.nsproxy):
        api = str(side.files.root / "haproxy-runtime-api.sock")
        path = f"{side.files.root}/certs/1-secure.pem"
        steps.append(
            [
                cli(api, f"set ssl cert {path} <<\n{pem}").replace(
                    str(side.files.root).encode(), b"D"
                ),
                cli(api, f"commit ssl cert {path}").replace(str(side.files.root).encode(), b"D"),
            ]
        )
    assert steps[0] == steps[1]
    assert steps[1][1].endswith(b"Success!\n\n")
    res = ing.both(443, request("secure.example.com", "/a"), tls, "secure.example.com")
    _same(res)
    assert _san(res[1][1]) == ["secure.example.com", "www.secure.example.com"]
