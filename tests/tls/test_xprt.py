"""TLS transport conformance on real loopback sockets: handshakes, SNI, client certificates,
bad input, data with back-pressure, plaintext pending inside OpenSSL, close_notify."""

from __future__ import annotations

import os
import select
import socket
import ssl
import subprocess
import threading
import time

import pytest
from drive import handshake, recv_all, send_all, tcp_pair

from conftest import Pki
from nsproxy.config.model_tls import BindTls, CrtListEntry, ServerTls, SslOptions
from nsproxy.runtime.xprt_tls import (
    ERR_CA_FAIL,
    ERR_CRT_FAIL,
    ERR_EMPTY,
    ERR_HANDSHAKE,
    TlsError,
    TlsTransport,
    Want,
)
from nsproxy.tls import fetches
from nsproxy.tls.contexts import SessionCache, client_context
from nsproxy.tls.store import CertStore, SniStore


def sni_store(pki: Pki, **kw: object) -> SniStore:
    opts = kw.pop("options", SslOptions())
    cfg = BindTls(enabled=True, crts=(pki.www, pki.api), options=opts, **kw)  # type: ignore[arg-type]
    return SniStore.build(CertStore(), cfg)


def client_ctx(pki: Pki, cert: str | None = None, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def connect(
    store: SniStore, ctx: ssl.SSLContext, sni: str | None
) -> tuple[TlsTransport, TlsTransport]:
    """(server transport, client transport) over one loopback TCP connection."""
    c, s = tcp_pair()
    srv = TlsTransport(s, store.context(), server_side=True)
    cli = TlsTransport(c, ctx, server_side=False, server_hostname=sni)
    return srv, cli


def peer_subject_cn(tx: TlsTransport) -> tuple[str, ...]:
    der = tx.obj.getpeercert(binary_form=True)
    assert der is not None
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return tuple(san.get_values_for_type(x509.DNSName))


@pytest.mark.parametrize(
    ("sni", "names"),
    [
        ("www.example.com", ("www.example.com", "*.example.org")),
        ("api.example.com", ("api.example.com",)),
        ("API.Example.COM", ("api.example.com",)),
        ("foo.example.org", ("www.example.com", "*.example.org")),
        ("unknown.test", ("www.example.com", "*.example.org")),  # default: the first loaded
        (None, ("www.example.com", "*.example.org")),
    ],
)
def test_certificate_chosen_by_sni(pki: Pki, sni: str | None, names: tuple[str, ...]) -> None:
    srv, cli = connect(sni_store(pki), client_ctx(pki), sni)
    handshake(srv, cli)
    assert peer_subject_cn(cli) == names
    assert srv.sni == sni


def test_wildcard_matches_one_label_only(pki: Pki) -> None:
    store = sni_store(pki, strict_sni=True)
    assert store.select("a.example.org") is not None
    assert store.select("a.b.example.org") is None
    assert store.select("example.org") is None


@pytest.mark.parametrize("sni", ["unknown.test", None])
def test_strict_sni_refuses_unknown_names(pki: Pki, sni: str | None) -> None:
    srv, cli = connect(sni_store(pki, strict_sni=True), client_ctx(pki), sni)
    with pytest.raises(TlsError) as err:
        handshake(srv, cli)
    assert err.value.reason == ERR_HANDSHAKE


def test_crt_list_filters_and_exclusions(pki: Pki, tmp_path: os.PathLike[str]) -> None:
    lst = os.path.join(tmp_path, "certs.lst")
    with open(lst, "w") as f:
        f.write(f"{pki.api} [alpn h2] !api.example.com *.api.test\n{pki.www}\n")
    store = SniStore.build(CertStore(), BindTls(enabled=True, crt_lists=(lst,), strict_sni=True))
    chosen = store.select("x.api.test")
    assert chosen is not None and chosen.entry.crt == pki.api
    assert store.select("api.example.com") is None  # the filters replace the cert's names
    www = store.select("www.example.com")
    assert www is not None and www.entry.crt == pki.www
    srv, cli = connect(store, client_ctx(pki, alpn=["http/1.1", "h2"]), "x.api.test")
    handshake(srv, cli)
    assert srv.obj.selected_alpn_protocol() == "h2"


def test_alpn_server_order_and_no_overlap(pki: Pki) -> None:
    store = sni_store(pki, options=SslOptions(alpn=("h2", "http/1.1")))
    srv, cli = connect(store, client_ctx(pki, alpn=["http/1.1", "h2"]), "www.example.com")
    handshake(srv, cli)
    assert srv.obj.selected_alpn_protocol() == "h2"
    srv, cli = connect(store, client_ctx(pki, alpn=["spdy/3"]), "www.example.com")
    handshake(srv, cli)
    assert srv.obj.selected_alpn_protocol() is None


# ---- client certificates


def verify_store(pki: Pki, verify: str) -> SniStore:
    return sni_store(pki, options=SslOptions(verify=verify, ca_file=pki.ca_file))


@pytest.mark.parametrize(
    ("verify", "cert", "outcome"),
    [
        ("none", None, "ok"),
        ("none", "client", "ok-no-cert"),  # not requested: the client sends none
        ("optional", None, "ok"),
        ("optional", "client", "ok-cert"),
        ("optional", "stranger", ERR_CRT_FAIL),  # leaf only: refused at depth 0
        ("optional", "stranger-chain", ERR_CA_FAIL),  # its CA sent too: refused at depth 1
        ("required", None, ERR_HANDSHAKE),
        ("required", "client", "ok-cert"),
        ("required", "stranger", ERR_CRT_FAIL),
    ],
)
def test_client_certificate_verification(
    pki: Pki, verify: str, cert: str | None, outcome: str
) -> None:
    chain = os.path.join(pki.dir, "stranger-chain.pem")
    with open(chain, "wb") as f, open(pki.stranger, "rb") as leaf:
        f.write(leaf.read() + pki.other_ca.cert_pem.bytes())
    path = {"client": pki.client, "stranger": pki.stranger, "stranger-chain": chain, None: None}[
        cert
    ]
    srv, cli = connect(verify_store(pki, verify), client_ctx(pki, path), "www.example.com")
    if not outcome.startswith("ok"):
        with pytest.raises(TlsError) as err:
            handshake(srv, cli)
            # TLS 1.3: the client finishes first, the server's verdict comes with data
            send_all(cli, b"x")
            recv_all(srv, 1)
        assert err.value.reason == outcome
        return
    handshake(srv, cli)
    facts = fetches.facts_of(srv.obj, srv.sni)
    assert fetches.ssl_c_used(facts) == (outcome == "ok-cert")
    if outcome == "ok-cert":
        assert fetches.common_name(facts) == "alice"
        assert fetches.ssl_c_i_dn(facts) is not None
        assert "/O=Test CA" in (fetches.ssl_c_i_dn(facts) or "")


def test_crt_list_entry_verify_applies_after_sni_switch(
    pki: Pki, tmp_path: os.PathLike[str]
) -> None:
    lst = os.path.join(tmp_path, "v.lst")
    with open(lst, "w") as f:
        f.write(f"{pki.www}\n{pki.api} [verify required ca-file {pki.ca_file}]\n")
    store = SniStore.build(CertStore(), BindTls(enabled=True, crt_lists=(lst,)))
    srv, cli = connect(store, client_ctx(pki), "api.example.com")
    with pytest.raises(TlsError):
        handshake(srv, cli)
        send_all(cli, b"x")
        recv_all(srv, 1)
    srv, cli = connect(store, client_ctx(pki, pki.client), "api.example.com")
    handshake(srv, cli)
    assert fetches.ssl_c_used(fetches.facts_of(srv.obj))
    srv, cli = connect(store, client_ctx(pki), "www.example.com")
    handshake(srv, cli)
    assert not fetches.ssl_c_used(fetches.facts_of(srv.obj))


# ---- bad input


def raw_client(store: SniStore) -> tuple[socket.socket, TlsTransport]:
    c, s = tcp_pair()
    c.setblocking(True)
    c.settimeout(5)
    return c, TlsTransport(s, store.context(), server_side=True)


def step_until_failure(srv: TlsTransport, timeout: float = 5.0) -> TlsError:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            want = srv.handshake()
        except TlsError as exc:
            return exc
        select.select(
            [srv.fd] if want is Want.READ else [], [srv.fd] if want is Want.WRITE else [], [], 0.5
        )
    raise TimeoutError("the handshake did not fail")


def test_garbage_instead_of_client_hello_is_closed_with_nothing_sent(pki: Pki) -> None:
    c, srv = raw_client(sni_store(pki))
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    err = step_until_failure(srv)
    assert err.reason == ERR_HANDSHAKE
    srv.close()
    assert c.recv(100) == b""


def test_bad_record_length_gets_an_alert(pki: Pki) -> None:
    c, srv = raw_client(sni_store(pki))
    c.sendall(b"\x16\x03\x01\xff\xff" + b"\x01" * 64)
    step_until_failure(srv)
    srv.close()
    data = c.recv(100)
    assert data[:1] == b"\x15"  # an alert record
    assert c.recv(100) == b""


def test_partial_hello_waits(pki: Pki) -> None:
    cli_ctx = client_ctx(pki)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = cli_ctx.wrap_bio(inc, out, server_hostname="www.example.com")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    c, srv = raw_client(sni_store(pki))
    c.sendall(hello[:20])
    assert srv.handshake() is Want.READ
    select.select([srv.fd], [], [], 0.2)
    assert srv.handshake() is Want.READ  # still waiting: `timeout client` will end it


def test_peer_closing_during_handshake(pki: Pki) -> None:
    c, srv = raw_client(sni_store(pki))
    c.close()
    err = step_until_failure(srv)
    assert err.reason == ERR_EMPTY


# ---- data


def test_data_both_ways_with_back_pressure_and_close_notify(pki: Pki) -> None:
    srv, cli = connect(sni_store(pki), client_ctx(pki), "www.example.com")
    handshake(srv, cli)
    blob = os.urandom(3 << 20)
    t = threading.Thread(target=send_all, args=(cli, blob, 20.0))
    t.start()
    got = recv_all(srv, len(blob), 20.0)
    t.join()
    assert got == blob
    send_all(srv, b"pong")
    assert recv_all(cli, 4) == b"pong"
    cli.shutdown()
    buf = bytearray(10)
    deadline = time.monotonic() + 5
    while True:
        try:
            assert srv.recv_into(buf) == 0
            break
        except BlockingIOError:
            assert time.monotonic() < deadline
            select.select([srv.fd], [], [], 0.5)


def test_plaintext_pending_inside_openssl_is_readable_without_socket_events(pki: Pki) -> None:
    srv, cli = connect(sni_store(pki), client_ctx(pki), "www.example.com")
    handshake(srv, cli)
    send_all(cli, b"a" * 5000)
    select.select([srv.fd], [], [], 5)
    small = bytearray(100)
    assert srv.recv_into(small) == 100
    assert srv.pending() > 0
    assert select.select([srv.fd], [], [], 0)[0] == []  # epoll/select see nothing
    assert recv_all(srv, 4900) == b"a" * 4900
    assert srv.pending() == 0


def test_eof_without_close_notify_reads_as_end(pki: Pki) -> None:
    srv, cli = connect(sni_store(pki), client_ctx(pki), "www.example.com")
    handshake(srv, cli)
    send_all(cli, b"last")
    cli.sock.shutdown(socket.SHUT_WR)
    assert recv_all(srv, 100) == b"last"


# ---- client side (`server ... ssl`)


def test_client_side_session_reuse(pki: Pki) -> None:
    store = sni_store(pki)
    cfg = ServerTls(enabled=True, verify="required", ca_file=pki.ca_file, sni="www.example.com")
    ctx = client_context(cfg)
    cache = SessionCache()
    resumed = []
    for _ in range(3):
        c, s = tcp_pair()
        srv = TlsTransport(s, store.context(), server_side=True)
        cli = TlsTransport(c, ctx, False, "www.example.com", cache.offer())
        handshake(srv, cli)
        send_all(srv, b"hello")
        assert recv_all(cli, 5) == b"hello"  # reads the TLS 1.3 tickets too
        cache.keep(cli.obj)
        resumed.append(cli.obj.session_reused)
        cli.shutdown()
    assert resumed == [False, True, True]
    off = SessionCache(enabled=False)
    c, s = tcp_pair()
    cli = TlsTransport(c, ctx, False, "www.example.com", off.offer())
    handshake(TlsTransport(s, store.context(), server_side=True), cli)
    assert not cli.obj.session_reused


def test_client_side_verify_required_refuses_an_unknown_ca(pki: Pki) -> None:
    cfg = ServerTls(
        enabled=True, verify="required", ca_file=pki.other_ca_file, sni="www.example.com"
    )
    srv, cli = connect(sni_store(pki), client_context(cfg), "www.example.com")
    with pytest.raises(TlsError):
        handshake(srv, cli)


def test_client_side_presents_its_certificate(pki: Pki) -> None:
    from nsproxy.tls.pem import load_bundle

    cfg = ServerTls(enabled=True, verify="none", crt=pki.client)
    ctx = client_context(cfg, load_bundle(pki.client))
    srv, cli = connect(verify_store(pki, "required"), ctx, "www.example.com")
    handshake(srv, cli)
    assert fetches.common_name(fetches.facts_of(srv.obj)) == "alice"


# ---- openssl s_client


def test_openssl_s_client(pki: Pki) -> None:
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    proc = subprocess.Popen(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "api.example.com",
            "-alpn",
            "h2",
            "-CAfile",
            pki.ca_file,
            "-quiet",
            "-verify_return_error",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        ls.settimeout(5)
        s, _ = ls.accept()
        s.setblocking(False)
        store = sni_store(pki, options=SslOptions(alpn=("h2",)))
        srv = TlsTransport(s, store.context(), server_side=True)
        handshake(srv)
        assert srv.sni == "api.example.com"
        assert srv.obj.selected_alpn_protocol() == "h2"
        assert proc.stdin is not None
        proc.stdin.write(b"ping\n")
        proc.stdin.flush()
        assert recv_all(srv, 5) == b"ping\n"
        send_all(srv, b"pong\n")
        srv.shutdown()
        out, err = proc.communicate(timeout=5)
        assert out == b"pong\n"
        assert b"CN = api.example.com" in err or b"verify return:1" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ls.close()


def test_crt_entry_options_reach_the_context(pki: Pki) -> None:
    entry = CrtListEntry(pki.www, SslOptions(max_ver="TLSv1.2"))
    store = SniStore(CertStore(), SslOptions())
    store.add(entry, "")
    srv, cli = connect(store, client_ctx(pki), "www.example.com")
    handshake(srv, cli)
    assert srv.obj.version() == "TLSv1.2"


def test_server_tls_client_checks_the_sni_or_verifyhost(pki: Pki) -> None:
    from nsproxy.tls.contexts import ServerTlsClient

    cfg = ServerTls(enabled=True, verify="required", ca_file=pki.ca_file, sni="req.hdr(host)")
    client = ServerTlsClient(cfg)
    for sni, ok in (("www.example.com", True), ("wrong.example.net", False), (None, True)):
        ctx, name, session = client.connect_params(sni)
        assert name == sni and session is None
        srv, cli = connect(sni_store(pki), ctx, name)
        if ok:
            handshake(srv, cli)
        else:
            with pytest.raises(TlsError):
                handshake(srv, cli)
    pinned = ServerTlsClient(
        ServerTls(
            enabled=True, verify="required", ca_file=pki.ca_file, verifyhost="api.example.com"
        )
    )
    ctx, name, _ = pinned.connect_params(None)
    assert name == "api.example.com"
    srv, cli = connect(sni_store(pki), ctx, name)
    handshake(srv, cli)


def test_reset_during_handshake_is_a_tls_error(pki: Pki) -> None:
    import struct

    cli_ctx = client_ctx(pki)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = cli_ctx.wrap_bio(inc, out, server_hostname="www.example.com")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    c, srv = raw_client(sni_store(pki))
    c.sendall(out.read())
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # RST
    err = step_until_failure(srv)
    assert err.reason == ERR_HANDSHAKE  # what HAProxy 2.6 logs for a reset


def test_reset_while_reading_is_an_oserror(pki: Pki) -> None:
    import struct

    srv, cli = connect(sni_store(pki), client_ctx(pki), "www.example.com")
    handshake(srv, cli)
    cli.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    cli.sock.close()
    select.select([srv.fd], [], [], 5)
    with pytest.raises(OSError):
        srv.recv_into(bytearray(10))
        srv.send(b"x" * 100000)


@pytest.mark.parametrize(
    ("crt_ignore", "ok"),
    [(None, False), (frozenset({10}), False), (frozenset({20, 21}), True)],
)
def test_crt_ignore_err_admits_listed_errors(
    pki: Pki, crt_ignore: frozenset[int] | None, ok: bool
) -> None:
    opts = SslOptions(verify="optional", ca_file=pki.ca_file, crt_ignore_err=crt_ignore)
    srv, cli = connect(sni_store(pki, options=opts), client_ctx(pki, pki.stranger), "x")
    if not ok:
        with pytest.raises(TlsError):
            handshake(srv, cli)
            send_all(cli, b"x")
            recv_all(srv, 1)
        return
    handshake(srv, cli)
    facts = fetches.facts_of(srv.obj, srv.sni)
    assert fetches.ssl_c_used(facts) and fetches.common_name(facts) is None
    assert fetches.ssl_c_verify(facts) == 0


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
@pytest.mark.parametrize("sni", ["www.example.com", "api.example.com"])
def test_server_side_resumption_after_sni_switch(pki: Pki, version: str, sni: str) -> None:
    store = sni_store(pki)
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion[version.replace(".", "_")]
    cache = SessionCache()
    reused = []
    for _ in range(2):
        c, s = tcp_pair()
        srv = TlsTransport(s, store.context(), server_side=True)
        cli = TlsTransport(c, ctx, False, sni, cache.offer())
        handshake(srv, cli)
        send_all(srv, b"hi")
        assert recv_all(cli, 2) == b"hi"
        cache.keep(cli.obj)
        reused.append(srv.obj.session_reused)
        assert peer_subject_cn(cli)[0] == sni
    assert reused == [False, True]


def test_crl_file_refuses_a_revoked_client(pki: Pki, tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    from conftest import make_crl

    crl = make_crl(pki.ca, [Path(pki.client).read_bytes()], os.path.join(tmp_path, "crl.pem"))
    opts = SslOptions(verify="required", ca_file=pki.ca_file, crl_file=crl)
    store = sni_store(pki, options=opts)
    srv, cli = connect(store, client_ctx(pki, pki.client), "www.example.com")
    with pytest.raises(TlsError) as err:
        handshake(srv, cli)
        send_all(cli, b"x")
        recv_all(srv, 1)
    assert err.value.reason == ERR_CRT_FAIL
    other = pki.issue("bob.pem", "bob@example.com")
    srv, cli = connect(store, client_ctx(pki, other), "www.example.com")
    handshake(srv, cli)
    send_all(cli, b"x")
    assert recv_all(srv, 1) == b"x"


def record_lengths(data: bytes) -> list[tuple[int, int]]:
    """(content type, length) of each TLS record in `data`."""
    out, pos = [], 0
    while pos + 5 <= len(data):
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        out.append((data[pos], length))
        pos += 5 + length
    return out


@pytest.mark.parametrize(("max_record", "largest"), [(0, 16384 + 17), (1000, 1000 + 17)])
def test_max_record_bounds_the_records_sent(pki: Pki, max_record: int, largest: int) -> None:
    store = sni_store(pki)
    c, s = tcp_pair()
    srv = TlsTransport(s, store.context(), True, max_record=max_record)
    cli = TlsTransport(c, client_ctx(pki), False, "www.example.com")
    handshake(srv, cli)
    send_all(srv, b"q" * 50000)
    srv.shutdown()
    raw = bytearray()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        select.select([c], [], [], 0.5)
        try:
            chunk = c.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            break
        raw += chunk
    sizes = [n for kind, n in record_lengths(bytes(raw)) if kind == 23]  # TLS 1.3: all 23
    assert max(sizes) == largest


def test_session_cache_size_zero_disables_server_resumption(pki: Pki) -> None:
    from nsproxy.config.model_tls import GlobalTls

    cfg = BindTls(enabled=True, crts=(pki.www,), options=SslOptions(no_tickets=True))
    for size, expect in ((20000, True), (0, False)):
        store = SniStore.build(CertStore(), cfg, tune=GlobalTls(cachesize=size))
        ctx = client_ctx(pki)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        cache = SessionCache()
        reused = []
        for _ in range(2):
            c, s = tcp_pair()
            srv = TlsTransport(s, store.context(), server_side=True)
            cli = TlsTransport(c, ctx, False, "www.example.com", cache.offer())
            handshake(srv, cli)
            cache.keep(cli.obj)
            reused.append(srv.obj.session_reused)
            srv.close()
            cli.close()
        assert reused == [False, expect]


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_session_kept_when_the_client_leaves_without_close_notify(pki: Pki, version: str) -> None:
    """With no-tls-tickets, resumption needs OpenSSL's server cache; close() keeps the
    session of a connection the client ended with a bare FIN."""
    cfg = BindTls(enabled=True, crts=(pki.www,), options=SslOptions(no_tickets=True))
    store = SniStore.build(CertStore(), cfg)
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion[version]
    cache = SessionCache()
    reused = []
    for _ in range(2):
        c, s = tcp_pair()
        srv = TlsTransport(s, store.context(), server_side=True)
        cli = TlsTransport(c, ctx, False, "www.example.com", cache.offer())
        handshake(srv, cli)
        send_all(srv, b"x")
        assert recv_all(cli, 1) == b"x"
        cache.keep(cli.obj)
        reused.append(srv.obj.session_reused)
        c.close()  # no close_notify
        assert recv_all(srv, 1) == b""
        srv.close()
    assert reused == [False, True]


def test_data_sent_with_the_finished_is_readable_at_once(pki: Pki) -> None:
    """A client's first bytes can arrive with its Finished: after the server's handshake
    returns DONE they are inside OpenSSL and the socket has nothing more to signal."""
    c, srv = raw_client(sni_store(pki))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(pki).wrap_bio(inc, out, server_hostname="www.example.com")
    deadline = time.monotonic() + 5
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            if out.pending:
                c.sendall(out.read())
            while srv.handshake() is Want.WRITE:
                select.select([], [srv.fd], [], 1)
            select.select([c], [], [], 1)
            inc.write(c.recv(65536))
            assert time.monotonic() < deadline
    obj.write(b"early")
    c.sendall(out.read())  # Finished and the first data in one segment
    select.select([srv.fd], [], [], 5)
    assert srv.handshake() is Want.DONE
    assert select.select([srv.fd], [], [], 0)[0] == []
    buf = bytearray(10)
    assert srv.recv_into(buf) == 5 and bytes(buf[:5]) == b"early"
