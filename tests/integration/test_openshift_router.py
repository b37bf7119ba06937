"""The OpenShift router's rendered configuration in real namespaces, nsproxy beside HAProxy 2.6.

Each router runs in its own namespace, whose loopback carries the pod addresses the
configuration names; recording origins listen there. A client inside the namespace takes
the router's main paths: a plain HTTP route chosen by host through os_http_be.map, the
redirect of an edge route's insecure traffic, the default backend's error page, SNI
passthrough on 443 (req.ssl_sni through os_sni_passthrough.map and os_tcp_be.map), edge and
re-encrypt routes terminated in fe_sni (reached over a UNIX socket with the PROXY protocol),
TLS without SNI through fe_no_sni, and the stats listener's health URI. What the client and
the origins observe must be the same under both programs.
"""

from __future__ import annotations

import base64
import socket
import ssl
import sys
from collections.abc import Iterator

import pytest
import trustme

from lab.netlab import Lab, cli, socket_in, wait_until
from lab.openshift_router import HOSTS
from lab.router_site import HAPROXY, Site, make_site, read_response, start_router

PLAIN_COOKIE = "0c5b4ad1e05f6f6e8f2a7f3e9d5c6b1a"
PLAIN_B_ID = "2a9f3e4d5c6b7a8998a7b6c5d4e3f201"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="Router Test CA")


PROGRAMS = ["nsproxy", "haproxy"]


@pytest.fixture(params=PROGRAMS)
def site(request: pytest.FixtureRequest, lab: Lab, ca: trustme.CA) -> Iterator[Site]:
    program = str(request.param)
    if program == "haproxy" and HAPROXY is None:
        pytest.skip("haproxy is not installed")
    s = make_site(lab, program[:3], ca)
    start_router(lab, s, program)
    yield s


def http(site: Site, port: int, raw: bytes, sni: str | None = None, tls: bool = False) -> bytes:
    """One request from inside the router's namespace to 127.0.0.1:`port`; the response."""
    s = socket_in(site.ns, socket.AF_INET)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    c: socket.socket = s
    if tls:
        ctx = site.client_ctx()
        if sni is None:
            ctx.check_hostname = False
        c = ctx.wrap_socket(s, server_hostname=sni)
    with c:
        c.sendall(raw)
        return read_response(c)


def get(host: str, path: str = "/", extra: bytes = b"") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path.encode(), host.encode(), extra)


def status_headers_body(resp: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for ln in lines[1:]:
        n, _, v = ln.partition(b":")
        headers[n.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def forwarded(head: bytes) -> list[bytes]:
    """The request headers the router adds or rewrites, in the order the origin got them."""
    names = (b"host", b"x-forwarded-", b"forwarded", b"proxy", b"cookie")
    return [ln for ln in head.split(b"\r\n")[1:] if ln.lower().startswith(names)]


def test_plain_http_route_by_host_through_the_map(site: Site) -> None:
    resp = http(site, 80, get("Web-Plain.Apps.Example.COM", "/x", b"Proxy: evil\r\n"))
    status, headers, body = status_headers_body(resp)
    assert status == 200 and body in (b"plain-a", b"plain-b")
    pod = body.decode()
    ident = "1f8e2d3c4b5a69788796a5b4c3d2e1f0" if pod == "plain-a" else PLAIN_B_ID
    assert headers[b"set-cookie"] == f"{PLAIN_COOKIE}={ident}; path=/; HttpOnly".encode()
    assert b"cache-control" not in headers  # `nocache` marks only cacheable responses
    assert forwarded(site.origins[pod].last_head()) == [
        b"host: web-plain.apps.example.com",
        b"x-forwarded-host: web-plain.apps.example.com",
        b"x-forwarded-port: 80",
        b"x-forwarded-proto: http",
        b"forwarded: for=127.0.0.1;host=web-plain.apps.example.com;proto=http",
        b"x-forwarded-for: 127.0.0.1",
    ]
    # the cookie pins the pod it names
    pinned = get(
        HOSTS["plain"], "/", b"Cookie: %s=%s\r\n" % (PLAIN_COOKIE.encode(), PLAIN_B_ID.encode())
    )
    for _ in range(4):
        status, headers, body = status_headers_body(http(site, 80, pinned))
        assert (status, body) == (200, b"plain-b") and b"set-cookie" not in headers


def test_insecure_edge_traffic_is_redirected_and_unknown_hosts_get_the_error_page(
    site: Site,
) -> None:
    status, headers, _ = status_headers_body(http(site, 80, get(HOSTS["edge"], "/a?b=1")))
    assert status == 302
    assert headers[b"location"] == b"https://web-edge.apps.example.com/a?b=1"
    resp = http(site, 80, get("nowhere.apps.example.com"))
    assert resp.startswith(b"HTTP/1.0 503 Service Unavailable\r\n")
    assert b"Application is not available" in resp


def test_sni_passthrough_reaches_the_pod_with_its_own_certificate(site: Site) -> None:
    s = socket_in(site.ns, socket.AF_INET)
    s.settimeout(10)
    s.connect(("127.0.0.1", 443))
    with site.client_ctx().wrap_socket(s, server_hostname=HOSTS["pass"]) as c:
        cert = c.getpeercert()
        assert cert is not None
        assert ("DNS", HOSTS["pass"]) in cert["subjectAltName"]
        c.sendall(get(HOSTS["pass"]))
        status, _, body = status_headers_body(read_response(c))
    assert (status, body) == (200, b"pass")
    # the pod got the client's bytes untouched: no header added
    assert forwarded(site.origins["pass"].last_head()) == [b"Host: web-pass.apps.example.com"]


def test_edge_route_terminates_in_fe_sni(site: Site) -> None:
    resp = http(site, 443, get(HOSTS["edge"], "/e"), sni=HOSTS["edge"], tls=True)
    status, headers, body = status_headers_body(resp)
    assert (status, body) == (200, b"edge")
    assert headers[b"strict-transport-security"] == b"max-age=31536000;includeSubDomains;preload"
    assert headers[b"set-cookie"] == (
        b"5e1d7c2b9a8f4e3d6c5b4a3928171605=3b0a4f5e6d7c8b9aa9b8c7d6e5f40312; path=/; "
        b"HttpOnly; Secure; SameSite=None"
    )
    assert forwarded(site.origins["edge"].last_head()) == [
        b"host: web-edge.apps.example.com",
        b"x-forwarded-host: web-edge.apps.example.com",
        b"x-forwarded-port: 443",
        b"x-forwarded-proto: https",
        b"forwarded: for=127.0.0.1;host=web-edge.apps.example.com;proto=https",
        b"x-forwarded-for: 127.0.0.1",
    ]


def test_reencrypt_route_verifies_the_pod(site: Site) -> None:
    resp = http(site, 443, get(HOSTS["reenc"]), sni=HOSTS["reenc"], tls=True)
    status, _, body = status_headers_body(resp)
    assert (status, body) == (200, b"reenc")
    assert b"x-forwarded-proto: https" in site.origins["reenc"].last_head()


def test_tls_without_sni_uses_the_default_certificate(site: Site) -> None:
    resp = http(site, 443, get(HOSTS["edge"], "/n"), sni=None, tls=True)
    status, _, body = status_headers_body(resp)
    assert (status, body) == (200, b"edge")


def test_stats_listener_health_uri(site: Site) -> None:
    status, _, body = status_headers_body(http(site, 1936, get("router", "/healthz")))
    assert status == 200 and b"Service ready." in body
    auth = b"Authorization: Basic %s\r\n" % base64.b64encode(b"admin:routerpass")
    close = b"Connection: close\r\n"
    status, _, body = status_headers_body(http(site, 1936, get("router", "/;csv", auth + close)))
    assert status == 200 and b"be_http:demo:web-plain" in body
    status, _, _ = status_headers_body(http(site, 1936, get("router", "/;csv", close)))
    assert status == 401


def test_http2_is_offered_only_where_it_is_spoken(site: Site) -> None:
    """The router offers `h2` in its crt-list and to re-encrypted pods. HAProxy speaks HTTP/2
    and takes it; nsproxy speaks HTTP/1.1 only, leaves `h2` out of both handshakes (saying so
    when it starts) and the requests still succeed."""
    expect = "h2" if site.program == "haproxy" else "http/1.1"
    s = socket_in(site.ns, socket.AF_INET)
    s.settimeout(10)
    s.connect(("127.0.0.1", 443))
    ctx = ssl.create_default_context(cafile=str(site.router.ca_file))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with ctx.wrap_socket(s, server_hostname=HOSTS["edge"]) as c:
        assert c.selected_alpn_protocol() == expect
    reenc = site.origins["reenc"]
    assert reenc.tls is not None
    reenc.tls.set_alpn_protocols(["h2", "http/1.1"])  # the pod would take HTTP/2
    resp = http(site, 443, get(HOSTS["reenc"]), sni=HOSTS["reenc"], tls=True)
    assert wait_until(lambda: reenc.alpns, 10, "the pod's handshake") == [expect]
    if site.program == "nsproxy":
        assert resp.startswith(b"HTTP/1.1 200 OK\r\n")
        assert site.output is not None
        out = site.output()
        assert "offers 'h2' in 'alpn': nsproxy speaks HTTP/1.1 only" in out
        assert "server 'be_secure:demo:web-reenc/pod:web-reenc-" in out
        assert f"crt-list '{site.router.root}/conf/cert_config.map' offers 'h2'" in out


def test_route_added_and_removed_at_runtime_through_the_map(site: Site) -> None:
    """The router's dynamic configuration manager edits os_http_be.map on the runtime API."""
    sock = str(site.router.root / "run" / "haproxy.sock")
    mapfile = site.router.root / "conf" / "os_http_be.map"
    # the runtime API takes a backslash as an escape: the regex travels with doubled ones
    key = r"^web-new\\.apps\\.example\\.com\\.?(:[0-9]+)?(/.*)?$"
    request = get("web-new.apps.example.com")
    assert http(site, 80, request).startswith(b"HTTP/1.0 503 ")
    assert cli(sock, f"add map {mapfile} {key} be_http:demo:web-plain") == b"\n"
    shown = cli(sock, f"show map {mapfile}").decode()
    assert "web-new" in shown and r"^web-new\.apps" in shown
    status, _, body = status_headers_body(http(site, 80, request))
    assert status == 200 and body in (b"plain-a", b"plain-b")
    assert cli(sock, f"del map {mapfile} {key}") == b"\n"
    assert http(site, 80, request).startswith(b"HTTP/1.0 503 ")


def test_reload_as_the_router_does_keeps_every_path(lab: Lab, ca: trustme.CA) -> None:
    """The router's reload script starts a new process with `-x <stats socket> -sf <old pid>`:
    the public listeners and the fe_sni/fe_no_sni UNIX sockets pass to it, the old one ends."""
    s = make_site(lab, "rld", ca)
    start_router(lab, s, "nsproxy")
    assert s.process is not None
    sock = str(s.router.root / "run" / "haproxy.sock")
    new = lab.proxy(
        s.router.config.read_text(),
        command=("ip", "netns", "exec", s.ns, sys.executable, "-m", "nsproxy"),
        extra_args=("-x", sock, "-sf", str(s.process.pid)),
        ready_timeout=30.0,
    )
    assert s.process.wait(15) == 0
    assert new.proc.poll() is None
    status, _, body = status_headers_body(http(s, 80, get(HOSTS["plain"])))
    assert status == 200 and body in (b"plain-a", b"plain-b")
    resp = http(s, 443, get(HOSTS["edge"]), sni=HOSTS["edge"], tls=True)
    assert status_headers_body(resp)[2] == b"edge"
    resp = http(s, 443, get(HOSTS["edge"]), sni=None, tls=True)
    assert status_headers_body(resp)[2] == b"edge"
