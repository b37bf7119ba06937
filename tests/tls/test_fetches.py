"""Fetch values from a real handshake equal HAProxy 2.6's for the same client and certificate
(its log-format line is the reference), and the PROXY v2 SSL TLV has 2.6's layout."""

from __future__ import annotations

import datetime
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import trustme
from drive import handshake, tcp_pair

from conftest import Pki
from nsproxy import proxy_protocol as pp
from nsproxy.config.model_tls import BindTls, SslOptions
from nsproxy.runtime.xprt_tls import TlsTransport
from nsproxy.tls import fetches as f
from nsproxy.tls.store import CertStore, SniStore

FORMAT = (
    "%[ssl_fc] %[ssl_fc_protocol] %[ssl_fc_cipher] %[ssl_fc_sni] %[ssl_fc_alpn] %[ssl_c_used] "
    "%[ssl_c_verify] |%[ssl_c_s_dn]| |%[ssl_c_i_dn]| %[ssl_c_serial,hex] %[ssl_c_notafter] "
    "%[ssl_c_sha1,hex] %[ssl_fc_use_keysize] %sslv %sslc %[ssl_fc_is_resumed]"
)


def render(facts: f.HandshakeFacts) -> str:
    def s(v: object) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "1" if v else "0"
        if isinstance(v, bytes):
            return v.hex().upper()
        return str(v)

    return " ".join(
        (
            s(f.ssl_fc(facts)),
            s(f.ssl_fc_protocol(facts)),
            s(f.ssl_fc_cipher(facts)),
            s(f.ssl_fc_sni(facts)),
            s(f.ssl_fc_alpn(facts)),
            s(f.ssl_c_used(facts)),
            s(f.ssl_c_verify(facts)),
            f"|{s(f.ssl_c_s_dn(facts))}|",
            f"|{s(f.ssl_c_i_dn(facts))}|",
            s(f.ssl_c_serial(facts)),
            s(f.ssl_c_notafter(facts)),
            s(f.ssl_c_sha1(facts)),
            s(f.ssl_fc_use_keysize(facts)),
            f.log_sslv(facts),
            f.log_sslc(facts),
            s(f.ssl_fc_is_resumed(facts)),
        )
    )


@pytest.fixture(scope="module")
def clients(pki: Pki) -> list[str | None]:
    alice = pki.ca.issue_cert(
        "alice@example.com",
        common_name="alice",
        organization_name="Example, Inc.",
        not_after=datetime.datetime(2040, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
    )
    path = str(pki.dir / "alice-2040.pem")
    alice.private_key_and_cert_chain_pem.write_to_path(path)
    return [path, pki.client, None]  # pki.client expires in 3000: no notafter value


def client_ctx(pki: Pki, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["http/1.1", "h2"])
    if cert:
        ctx.load_cert_chain(cert)
    return ctx


def ours(pki: Pki, cert: str | None) -> str:
    opts = SslOptions(verify="optional", ca_file=pki.ca_file, alpn=("h2", "http/1.1"))
    store = SniStore.build(CertStore(), BindTls(enabled=True, crts=(pki.www,), options=opts))
    c, s = tcp_pair()
    srv = TlsTransport(s, store.context(), server_side=True)
    cli = TlsTransport(c, client_ctx(pki, cert), False, "www.example.com")
    handshake(srv, cli)
    return render(f.facts_of(srv.obj, srv.sni))


def haproxy_lines(tmp: Path, pki: Pki, certs: list[str | None]) -> list[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = tmp / "f.cfg"
    cfg.write_text(
        "global\n  log stdout format raw local0\n"
        "defaults\n  mode tcp\n  log global\n  timeout client 5s\n  timeout server 5s\n"
        "  timeout connect 1s\n"
        f"frontend f\n  bind 127.0.0.1:{port} ssl crt {pki.www} verify optional "
        f"ca-file {pki.ca_file} alpn h2,http/1.1\n"
        f'  log-format "{FORMAT}"\n  default_backend b\n'
        "backend b\n"
    )
    proc = subprocess.Popen(
        ["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        for cert in certs:
            while True:
                try:
                    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
                    break
                except ConnectionRefusedError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.02)
            with client_ctx(pki, cert).wrap_socket(raw, server_hostname="www.example.com") as s:
                s.sendall(b"x")
                s.recv(10)  # haproxy closes at once: the backend has no server
        lines = []
        assert proc.stdout is not None
        while len(lines) < len(certs):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.decode().rstrip("\n"))
        return lines
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy 2.6")
def test_fetches_match_haproxy(tmp_path: Path, pki: Pki, clients: list[str | None]) -> None:
    want = haproxy_lines(tmp_path, pki, clients)
    got = [ours(pki, c) for c in clients]
    assert got == want


def test_notafter_format() -> None:
    assert f.asn1_time(2040, "400506070809Z") == "400506070809Z"
    assert f.asn1_time(3000, "000101000000Z") is None


def test_dn_uses_openssl_short_names(pki: Pki) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "IDF"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Paris"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.c"),
            x509.NameAttribute(NameOID.COMMON_NAME, "x"),
        ]
    )
    assert f.format_dn(name) == "/C=FR/ST=IDF/L=Paris/emailAddress=a@b.c/CN=x"


def test_pp2_ssl_tlv(pki: Pki) -> None:
    clear = f.pp2_ssl_tlv(None)
    assert pp.parse_ssl_tlv(clear.value) == (0, 0, ())
    no_cert = f.HandshakeFacts(protocol="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384")
    client, verify, subs = pp.parse_ssl_tlv(f.pp2_ssl_tlv(no_cert, cert_cn=True).value)
    assert (client, verify) == (0x01, 0)
    assert [(t.type, t.value) for t in subs] == [(pp.SslSubtype.VERSION, b"TLSv1.3")]
    der = trustme.CA().issue_cert("x@y.z", common_name="carol").cert_chain_pems[0].bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert_der = x509.load_pem_x509_certificate(der).public_bytes(Encoding.DER)
    with_cert = f.HandshakeFacts(protocol="TLSv1.3", peer_cert_der=cert_der)
    client, verify, subs = pp.parse_ssl_tlv(f.pp2_ssl_tlv(with_cert, cert_cn=True).value)
    assert client == 0x07
    assert [(t.type, t.value) for t in subs] == [
        (pp.SslSubtype.VERSION, b"TLSv1.3"),
        (pp.SslSubtype.CN, b"carol"),
    ]
    resumed = f.HandshakeFacts(protocol="TLSv1.3", peer_cert_der=cert_der, resumed=True)
    assert pp.parse_ssl_tlv(f.pp2_ssl_tlv(resumed).value)[0] == 0x05
