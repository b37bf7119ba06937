"""The ssl_fc* / ssl_c_* / ssl_bc* fetches: the finished handshakes' facts (tls.fetches).

A stream offers them as `fc_tls` (client connection) and `bc_tls` (server connection),
`tls.fetches.HandshakeFacts` or None; a Txn without these members has no TLS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509

from nsproxy.sample.acl import AclKeyword, register_acl_keyword
from nsproxy.sample.args import ArgSpec, ArgType, ArgValue
from nsproxy.sample.context import Txn
from nsproxy.sample.fetch import FetchDef, FetchFn, register_fetch
from nsproxy.sample.match import Method
from nsproxy.sample.places import Use
from nsproxy.sample.types import FetchResult, Sample, SmpType
from nsproxy.tls import fetches as tf


def _fc(txn: Txn) -> tf.HandshakeFacts | None:
    facts = getattr(txn, "fc_tls", None)
    return facts if isinstance(facts, tf.HandshakeFacts) else None


def _bc(txn: Txn) -> tf.HandshakeFacts | None:
    facts = getattr(txn, "bc_tls", None)
    return facts if isinstance(facts, tf.HandshakeFacts) else None


def _smp(kind: SmpType, value: Any) -> Sample | None:
    if value is None:
        return None
    return Sample(kind, value)


def _of(
    side: Callable[[Txn], tf.HandshakeFacts | None],
    fn: Callable[[tf.HandshakeFacts], Any],
    kind: SmpType,
) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        facts = side(txn)
        return None if facts is None else _smp(kind, fn(facts))

    return fetch


def _present(side: Callable[[Txn], tf.HandshakeFacts | None]) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        return Sample(SmpType.BOOL, side(txn) is not None)

    return fetch


# long names OpenSSL also accepts for a DN entry
_LONG = {
    "COMMONNAME": "CN",
    "COUNTRYNAME": "C",
    "LOCALITYNAME": "L",
    "STATEORPROVINCENAME": "ST",
    "ORGANIZATIONNAME": "O",
    "ORGANIZATIONALUNITNAME": "OU",
    "EMAILADDRESS": "EMAILADDRESS",
}


def _dn(issuer: bool) -> FetchFn:
    """ssl_c_s_dn / ssl_c_i_dn `([entry[,occ]])`: the whole DN, or one entry's value (the
    first found, or the occ-th from the start, negative from the end); the entry is a short
    or long name in any case (`cn`, `CN`, `commonName`), as HAProxy 2.6 with OpenSSL 3."""

    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        facts = _fc(txn)
        if facts is None or facts.peer_cert_der is None:
            return None
        cert = x509.load_der_x509_certificate(facts.peer_cert_der)
        name = cert.issuer if issuer else cert.subject
        if not args or not str(args[0]):
            return Sample(SmpType.STR, tf.format_dn(name))
        wanted = str(args[0]).upper()
        wanted = _LONG.get(wanted, wanted)
        values = []
        for part in tf.format_dn(name).split("/")[1:]:
            key, _, value = part.partition("=")
            if key.upper() == wanted:
                values.append(value)
        occ = int(args[1]) if len(args) > 1 else 1
        try:
            value = values[occ - 1] if occ > 0 else values[occ]
        except IndexError:
            return None
        return Sample(SmpType.STR, value) if occ else None

    return fetch


_DN_ARGS = ArgSpec((ArgType.STR, ArgType.SINT, ArgType.STR), 0)
_C, _S = Use.L5CLI, Use.L5SRV
_STR, _BIN, _INT, _BOOL = SmpType.STR, SmpType.BIN, SmpType.SINT, SmpType.BOOL

register_fetch(
    FetchDef("ssl_fc", _present(_fc), _BOOL, _C),
    FetchDef("ssl_fc_protocol", _of(_fc, tf.ssl_fc_protocol, _STR), _STR, _C),
    FetchDef("ssl_fc_cipher", _of(_fc, tf.ssl_fc_cipher, _STR), _STR, _C),
    FetchDef("ssl_fc_use_keysize", _of(_fc, tf.ssl_fc_use_keysize, _INT), _INT, _C),
    FetchDef("ssl_fc_alg_keysize", _of(_fc, tf.ssl_fc_use_keysize, _INT), _INT, _C),
    FetchDef("ssl_fc_sni", _of(_fc, tf.ssl_fc_sni, _STR), _STR, _C),
    FetchDef("ssl_fc_has_sni", _of(_fc, lambda f: f.sni is not None, _BOOL), _BOOL, _C),
    FetchDef("ssl_fc_alpn", _of(_fc, tf.ssl_fc_alpn, _STR), _STR, _C),
    FetchDef("ssl_fc_is_resumed", _of(_fc, tf.ssl_fc_is_resumed, _BOOL), _BOOL, _C),
    FetchDef("ssl_fc_has_crt", _of(_fc, tf.ssl_c_used, _BOOL), _BOOL, _C),
    FetchDef("ssl_c_used", _of(_fc, tf.ssl_c_used, _BOOL), _BOOL, _C),
    FetchDef("ssl_c_verify", _of(_fc, tf.ssl_c_verify, _INT), _INT, _C),
    FetchDef("ssl_c_s_dn", _dn(False), _STR, _C, _DN_ARGS),
    FetchDef("ssl_c_i_dn", _dn(True), _STR, _C, _DN_ARGS),
    FetchDef("ssl_c_sha1", _of(_fc, tf.ssl_c_sha1, _BIN), _BIN, _C),
    FetchDef("ssl_c_der", _of(_fc, tf.ssl_c_der, _BIN), _BIN, _C),
    FetchDef("ssl_c_serial", _of(_fc, tf.ssl_c_serial, _BIN), _BIN, _C),
    FetchDef("ssl_c_version", _of(_fc, tf.ssl_c_version, _INT), _INT, _C),
    FetchDef("ssl_c_notafter", _of(_fc, tf.ssl_c_notafter, _STR), _STR, _C),
    FetchDef("ssl_c_notbefore", _of(_fc, tf.ssl_c_notbefore, _STR), _STR, _C),
    FetchDef("ssl_bc", _present(_bc), _BOOL, _S),
    FetchDef("ssl_bc_protocol", _of(_bc, tf.ssl_fc_protocol, _STR), _STR, _S),
    FetchDef("ssl_bc_cipher", _of(_bc, tf.ssl_fc_cipher, _STR), _STR, _S),
    FetchDef("ssl_bc_use_keysize", _of(_bc, tf.ssl_fc_use_keysize, _INT), _INT, _S),
    FetchDef("ssl_bc_alpn", _of(_bc, tf.ssl_fc_alpn, _STR), _STR, _S),
    FetchDef("ssl_bc_is_resumed", _of(_bc, tf.ssl_fc_is_resumed, _BOOL), _BOOL, _S),
)

register_acl_keyword(  # HAProxy's ACL-only spellings
    AclKeyword("ssl_fc_sni_end", "ssl_fc_sni", Method.END),
    AclKeyword("ssl_fc_sni_reg", "ssl_fc_sni", Method.REG),
)


def sslv_of(txn: Txn) -> str | None:
    """`%sslv`: the client connection's TLS version, None without TLS."""
    facts = _fc(txn)
    return None if facts is None else facts.protocol


def sslc_of(txn: Txn) -> str | None:
    """`%sslc`: the client connection's cipher, None without TLS."""
    facts = _fc(txn)
    return None if facts is None else facts.cipher


def frontend_transport(txn: Txn) -> str:
    """`%ft`: the frontend's name, followed by `~` when the client connection is TLS."""
    return txn.frontend_name + ("~" if _fc(txn) is not None else "")


def handshake_ms(txn: Txn) -> int:
    """`%Th`: the connection's handshakes (PROXY header, TLS) in ms from the accept."""
    return int(getattr(txn, "t_handshake", 0))
