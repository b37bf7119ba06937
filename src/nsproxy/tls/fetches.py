"""Values of the ssl_fc* / ssl_c_* / ssl_bc fetches, %sslv/%sslc and the PROXY v2 SSL TLV,
computed from a handshake's facts (pure functions; `facts_of` reads them from an SSLObject)."""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from nsproxy import proxy_protocol as pp
from nsproxy.tls import native

# OpenSSL's short names for the attributes cryptography names differently or not at all
_SHORT = {
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.TITLE: "title",
    NameOID.DN_QUALIFIER: "dnQualifier",
    NameOID.PSEUDONYM: "pseudonym",
    NameOID.USER_ID: "UID",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.INITIALS: "initials",
    NameOID.GENERATION_QUALIFIER: "generationQualifier",
    NameOID.BUSINESS_CATEGORY: "businessCategory",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.STREET_ADDRESS: "street",
    NameOID.JURISDICTION_COUNTRY_NAME: "jurisdictionC",
    NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME: "jurisdictionST",
    NameOID.JURISDICTION_LOCALITY_NAME: "jurisdictionL",
}

PP2_CLIENT_SSL = 0x01
PP2_CLIENT_CERT_CONN = 0x02
PP2_CLIENT_CERT_SESS = 0x04


@dataclass(frozen=True, slots=True)
class HandshakeFacts:
    """What one finished handshake established, for fetches, logs and PROXY TLVs."""

    protocol: str | None = None
    cipher: str | None = None
    cipher_bits: int = 0
    sni: str | None = None
    alpn: str | None = None
    resumed: bool = False
    peer_cert_der: bytes | None = None
    verify_result: int = 0


def facts_of(obj: ssl.SSLObject, sni: str | None = None) -> HandshakeFacts:
    """The facts of a finished handshake on `obj` (`sni` as seen by the SNI callback)."""
    cipher = obj.cipher()
    try:
        verify = native.verify_result(obj)
    except RuntimeError:
        verify = 0
    return HandshakeFacts(
        protocol=obj.version(),
        cipher=cipher[0] if cipher else None,
        cipher_bits=cipher[2] if cipher else 0,
        sni=sni if obj.server_side else obj.server_hostname,
        alpn=obj.selected_alpn_protocol(),
        resumed=obj.session_reused,
        peer_cert_der=obj.getpeercert(binary_form=True),
        verify_result=verify,
    )


def _cert(facts: HandshakeFacts) -> x509.Certificate | None:
    if facts.peer_cert_der is None:
        return None
    return x509.load_der_x509_certificate(facts.peer_cert_der)


def format_dn(name: x509.Name) -> str:
    """A DN in HAProxy's default form: `/C=FR/O=Example/CN=www.example.com`, cert order."""
    out = []
    for rdn in name.rdns:
        for attr in rdn:
            key = _SHORT.get(attr.oid) or attr.rfc4514_attribute_name
            value = attr.value if isinstance(attr.value, str) else attr.value.hex()
            out.append(f"/{key}={value}")
    return "".join(out)


def asn1_time(year: int, stamp: str) -> str | None:
    """HAProxy's `YYMMDDhhmmssZ` for a certificate time: UTCTime as is, GeneralizedTime
    without its century when it is 20xx; other years have no value."""
    if 1950 <= year <= 2099:
        return stamp
    return None


def ssl_fc(facts: HandshakeFacts | None) -> bool:
    return facts is not None


def ssl_fc_protocol(facts: HandshakeFacts) -> str | None:
    return facts.protocol


def ssl_fc_cipher(facts: HandshakeFacts) -> str | None:
    return facts.cipher


def ssl_fc_use_keysize(facts: HandshakeFacts) -> int:
    return facts.cipher_bits


def ssl_fc_sni(facts: HandshakeFacts) -> str | None:
    return facts.sni


def ssl_fc_alpn(facts: HandshakeFacts) -> str | None:
    return facts.alpn


def ssl_fc_is_resumed(facts: HandshakeFacts) -> bool:
    return facts.resumed


def ssl_c_used(facts: HandshakeFacts) -> bool:
    return facts.peer_cert_der is not None


def ssl_c_verify(facts: HandshakeFacts) -> int:
    return facts.verify_result


def ssl_c_s_dn(facts: HandshakeFacts) -> str | None:
    cert = _cert(facts)
    return None if cert is None else format_dn(cert.subject)


def ssl_c_i_dn(facts: HandshakeFacts) -> str | None:
    cert = _cert(facts)
    return None if cert is None else format_dn(cert.issuer)


def ssl_c_sha1(facts: HandshakeFacts) -> bytes | None:
    return None if facts.peer_cert_der is None else hashlib.sha1(facts.peer_cert_der).digest()


def ssl_c_der(facts: HandshakeFacts) -> bytes | None:
    return facts.peer_cert_der


def ssl_c_serial(facts: HandshakeFacts) -> bytes | None:
    """The serial's bytes, big-endian, as HAProxy returns them (`,hex` gives the usual form)."""
    cert = _cert(facts)
    if cert is None:
        return None
    n = cert.serial_number
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def ssl_c_version(facts: HandshakeFacts) -> int | None:
    """The client certificate's X.509 version number (3 for a v3 certificate)."""
    cert = _cert(facts)
    return None if cert is None else cert.version.value + 1


def ssl_c_notafter(facts: HandshakeFacts) -> str | None:
    cert = _cert(facts)
    if cert is None:
        return None
    t = cert.not_valid_after_utc
    return asn1_time(t.year, t.strftime("%y%m%d%H%M%SZ"))


def ssl_c_notbefore(facts: HandshakeFacts) -> str | None:
    cert = _cert(facts)
    if cert is None:
        return None
    t = cert.not_valid_before_utc
    return asn1_time(t.year, t.strftime("%y%m%d%H%M%SZ"))


def common_name(facts: HandshakeFacts) -> str | None:
    """The client certificate's subject CN (the PROXY v2 CN sub-TLV)."""
    cert = _cert(facts)
    if cert is None:
        return None
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else None


def log_sslv(facts: HandshakeFacts | None) -> str:
    """`%sslv`: the protocol, `-` without TLS."""
    return (facts.protocol or "-") if facts is not None else "-"


def log_sslc(facts: HandshakeFacts | None) -> str:
    """`%sslc`: the cipher, `-` without TLS."""
    return (facts.cipher or "-") if facts is not None else "-"


def pp2_ssl_tlv(
    facts: HandshakeFacts | None, cert_cn: bool = False, cipher: bool = False
) -> pp.Tlv:
    """The PROXY v2 SSL TLV HAProxy 2.6 sends for the client connection (`proxy-v2-options
    ssl[,cert-cn][,ssl-cipher]`): client 0 and no sub-TLV for a clear connection."""
    if facts is None:
        return pp.ssl_tlv()
    client = PP2_CLIENT_SSL
    verify = 0
    if facts.peer_cert_der is not None:
        client |= PP2_CLIENT_CERT_SESS
        verify = facts.verify_result
        if not facts.resumed:
            client |= PP2_CLIENT_CERT_CONN
    cn = common_name(facts) if cert_cn else None
    return pp.ssl_tlv(
        client,
        verify,
        version=facts.protocol.encode() if facts.protocol else None,
        cn=cn.encode() if cn else None,
        cipher=facts.cipher.encode() if cipher and facts.cipher else None,
    )
