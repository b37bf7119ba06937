"""The ssl_* fetches through the rules engine: ACLs (with HAProxy's ACL-only spellings),
sample expressions with converters, log-format %sslv/%sslc/%ft, on a Txn with or without
TLS facts (a stream offers them as `fc_tls` / `bc_tls`)."""

from __future__ import annotations

import ssl
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import cast

import pytest
from drive import handshake, tcp_pair

from conftest import Pki
from nsproxy.config.model_tls import BindTls, SslOptions
from nsproxy.runtime.xprt_tls import TlsTransport
from nsproxy.sample import (
    AclSet,
    Hook,
    Sample,
    Txn,
    Verdict,
    compile_condition,
    compile_expr,
    compile_logformat,
)
from nsproxy.tls.fetches import HandshakeFacts, facts_of
from nsproxy.tls.store import CertStore, SniStore


@dataclass
class TlsTxn:
    """Just what these fetches read."""

    fc_tls: HandshakeFacts | None = None
    bc_tls: HandshakeFacts | None = None
    frontend_name: str = "fe"
    vars: MutableMapping[str, MutableMapping[str, Sample]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def facts(pki: Pki) -> HandshakeFacts:
    """A real handshake's facts: SNI api.example.com, client certificate CN=alice."""
    opts = SslOptions(verify="optional", ca_file=pki.ca_file)
    store = SniStore.build(
        CertStore(), BindTls(enabled=True, crts=(pki.www, pki.api), options=opts)
    )
    a, b = tcp_pair()
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.load_cert_chain(pki.client)
    cli = TlsTransport(a, ctx, False, "api.example.com")
    srv = TlsTransport(b, store.context(), True)
    handshake(cli, srv)
    out = facts_of(srv.obj, srv.sni)
    cli.close()
    srv.close()
    return out


def _cond(text: str, txn: TlsTxn) -> bool:
    cond = compile_condition(["if", *text.split()], AclSet(), Hook.FE_REQ_CNT)
    return cond(cast(Txn, txn)) is Verdict.PASS


@pytest.mark.parametrize(
    ("acl", "with_tls", "without"),
    [
        ("{ ssl_fc }", True, False),
        ("{ ssl_fc_sni api.example.com }", True, False),
        ("{ ssl_fc_sni_end .example.com }", True, False),
        ("{ ssl_fc_sni_reg ^www }", False, False),
        ("{ ssl_fc_has_sni }", True, False),
        ("{ ssl_c_used }", True, False),
        ("{ ssl_c_verify 0 }", True, False),
        ("{ ssl_fc_protocol TLSv1.3 }", True, False),
        ("{ ssl_c_s_dn(cn) alice }", True, False),
        ("{ ssl_c_s_dn(commonName) alice }", True, False),
        ("{ ssl_fc_use_keysize ge 128 }", True, False),
        ("{ ssl_bc }", False, False),
    ],
)
def test_acls(facts: HandshakeFacts, acl: str, with_tls: bool, without: bool) -> None:
    assert _cond(acl, TlsTxn(fc_tls=facts)) is with_tls
    assert _cond(acl, TlsTxn()) is without


def test_expressions_and_converters(facts: HandshakeFacts) -> None:
    txn = cast(Txn, TlsTxn(fc_tls=facts))
    sha1 = compile_expr("ssl_c_sha1,hex", Hook.FE_REQ_CNT)(txn)
    assert sha1 is not None and len(str(sha1.value)) == 40
    dn = compile_expr("ssl_c_s_dn", Hook.FE_REQ_CNT)(txn)
    assert dn is not None and str(dn.value).endswith("/CN=alice")
    assert compile_expr("ssl_c_s_dn(CN,2)", Hook.FE_REQ_CNT)(txn) is None  # one CN only
    assert compile_expr("ssl_fc_sni", Hook.FE_REQ_CNT)(cast(Txn, TlsTxn())) is None


def test_log_format(facts: HandshakeFacts) -> None:
    fmt = compile_logformat("%ft %sslv %sslc [%[ssl_fc_sni]]")
    assert fmt(cast(Txn, TlsTxn(fc_tls=facts))) == (f"fe~ TLSv1.3 {facts.cipher} [api.example.com]")
    assert fmt(cast(Txn, TlsTxn())) == "fe - - [-]"
