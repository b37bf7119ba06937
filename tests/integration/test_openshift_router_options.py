"""The OpenShift router with its options on (data/openshift-router-options.cfg), nsproxy and
HAProxy 2.6 side by side: the PROXY protocol on the public binds, forwarded headers kept when
the client sent them, a path rewrite, a unique request id, mutual TLS with the X-SSL headers
and the subject filter, gzip compression, an IP allow-list from a file on a passthrough route
and disabled template servers. What the client and the pods observe must be the same."""

from __future__ import annotations

import re
import socket
import ssl
import zlib

import pytest
import trustme

from lab.netlab import Lab, socket_in
from lab.openshift_router import HOSTS, OPTIONS_CONFIG
from lab.router_site import HAPROXY, Site, make_site, read_response, start_router

PROXY_V1 = b"PROXY TCP4 10.1.2.3 127.0.0.1 40000 %d\r\n"


def _client(site: Site, port: int) -> socket.socket:
    s = socket_in(site.ns, socket.AF_INET)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(PROXY_V1 % port)
    return s


def _tls(site: Site, host: str, cert: trustme.LeafCert | None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(site.router.ca_file))
    ctx.set_alpn_protocols(["http/1.1"])
    if cert is not None:
        cert.configure_cert(ctx)
    return ctx.wrap_socket(_client(site, 443), server_hostname=host)


def _mask(head: bytes) -> bytes:
    """A request head without what differs by process and time (the unique id)."""
    return re.sub(rb"(?m)^x-request-id: [^\r\n]*", b"x-request-id: MASKED", head)


def _decoded(resp: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if b"transfer-encoding: chunked" in lines:
        plain = b""
        while True:
            size_line, _, body = body.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            plain, body = plain + body[:size], body[size + 2 :]
        body = plain
    if b"content-encoding: gzip" in lines:
        body = zlib.decompress(body, zlib.MAX_WBITS + 16)
    return lines, body


def _read_chunked(c: socket.socket) -> bytes:
    out = b""
    while not out.endswith(b"0\r\n\r\n"):
        data = c.recv(65536)
        if not data:
            break
        out += data
    return out


def _observe(site: Site, client: trustme.LeafCert, stranger: trustme.LeafCert) -> dict[str, object]:
    seen: dict[str, object] = {}
    # plain route: the client's own X-Forwarded-Host is kept, the /api prefix goes
    with _client(site, 80) as c:
        c.sendall(
            b"GET /api/users?x=1 HTTP/1.1\r\nHost: web-plain.apps.example.com\r\n"
            b"X-Forwarded-Host: original.example.com\r\n\r\n"
        )
        status = read_response(c).split(b"\r\n", 1)[0]
    pod = next(p for p in ("plain-a", "plain-b") if site.origins[p].heads)
    seen["plain"] = (status, _mask(site.origins[pod].last_head()))
    # edge route with a client certificate: the X-SSL headers, a gzip-compressed answer
    with _tls(site, HOSTS["edge"], client) as c:
        c.sendall(
            b"GET /e HTTP/1.1\r\nHost: web-edge.apps.example.com\r\nAccept-Encoding: gzip\r\n\r\n"
        )
        seen["edge-response"] = _decoded(_read_chunked(c))
    seen["edge-pod"] = _mask(site.origins["edge"].last_head())
    # a certificate whose subject the filter refuses, then none at all
    for name, cert in (("refused", stranger), ("no-cert", None)):
        with _tls(site, HOSTS["edge"], cert) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: web-edge.apps.example.com\r\n\r\n")
            seen[name] = read_response(c).split(b"\r\n", 1)[0]
    # passthrough: 10.1.2.3 (from the PROXY line) is in the allow-list file
    with _tls(site, HOSTS["pass"], None) as c:
        c.sendall(b"GET /p HTTP/1.1\r\nHost: web-pass.apps.example.com\r\n\r\n")
        seen["pass"] = read_response(c).rsplit(b"\r\n", 1)[-1]
    # re-encrypt: the disabled template server never takes the request
    with _tls(site, HOSTS["reenc"], client) as c:
        c.sendall(b"GET /r HTTP/1.1\r\nHost: web-reenc.apps.example.com\r\n\r\n")
        seen["reenc"] = read_response(c).rsplit(b"\r\n", 1)[-1]
    return seen


CA = trustme.CA(organization_name="Router Test CA")
# the same client certificates for both programs: the X-SSL headers must be equal
CLIENTS = (
    CA.issue_cert("client@example.com", common_name="client"),
    CA.issue_cert("stranger@example.com", common_name="stranger"),
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return CA


def _run(lab: Lab, ca: trustme.CA, program: str) -> dict[str, object]:
    site = make_site(lab, program[:3], ca, OPTIONS_CONFIG)
    start_router(lab, site, program)
    return _observe(site, CLIENTS[0], CLIENTS[1])


def test_router_options_paths(lab: Lab, ca: trustme.CA) -> None:
    got = _run(lab, ca, "nsproxy")
    status, head = got["plain"]  # type: ignore[misc]
    assert status == b"HTTP/1.1 200 OK"
    assert head.startswith(b"GET /users?x=1 HTTP/1.1\r\n")
    assert b"\r\nx-forwarded-host: original.example.com\r\n" in head
    assert b"\r\nx-forwarded-for: 10.1.2.3" in head
    assert b"\r\nforwarded: for=10.1.2.3;host=web-plain.apps.example.com;proto=http" in head
    lines, body = got["edge-response"]  # type: ignore[misc]
    assert body == b"edge" and b"content-encoding: gzip" in lines
    pod = got["edge-pod"]
    assert isinstance(pod, bytes)
    assert b"\r\nx-ssl-client-cn: client\r\n" in pod and b"\r\nx-ssl-client-verify: 0" in pod
    assert got["refused"] == got["no-cert"] == b"HTTP/1.1 403 Forbidden"
    assert got["pass"] == b"pass" and got["reenc"] == b"reenc"
    if HAPROXY is not None:
        ref = _run(lab, ca, "haproxy")
        for key in got:
            assert got[key] == ref[key], key
