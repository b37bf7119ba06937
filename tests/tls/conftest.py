"""Certificates for the TLS tests: two CAs (trusted, other), server and client certificates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme


@dataclass
class Pki:
    """Files of a small PKI in a temporary directory."""

    dir: Path
    ca: trustme.CA
    other_ca: trustme.CA
    ca_file: str
    other_ca_file: str
    www: str  # www.example.com + *.example.org (bundle: cert + key)
    api: str  # api.example.com
    client: str  # client cert by `ca` (CN=alice)
    stranger: str  # client cert by `other_ca`

    def issue(self, name: str, *names: str, ca: trustme.CA | None = None) -> str:
        cert = (ca or self.ca).issue_cert(*names)
        path = self.dir / name
        cert.private_key_and_cert_chain_pem.write_to_path(str(path))
        return str(path)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA(organization_name="Test CA")
    other = trustme.CA(organization_name="Other CA")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    other.cert_pem.write_to_path(str(d / "other-ca.pem"))
    p = Pki(d, ca, other, str(d / "ca.pem"), str(d / "other-ca.pem"), "", "", "", "")
    p.www = p.issue("www.pem", "www.example.com", "*.example.org")
    p.api = p.issue("api.pem", "api.example.com")
    client = ca.issue_cert("alice@example.com", common_name="alice")
    client.private_key_and_cert_chain_pem.write_to_path(str(d / "client.pem"))
    p.client = str(d / "client.pem")
    p.stranger = p.issue("stranger.pem", "mallory@example.com", ca=other)
    return p


def make_crl(ca: trustme.CA, revoked_pems: list[bytes], path: str) -> str:
    """A CRL signed by `ca` revoking the given certificates, written to `path`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(days=1))
        .next_update(now + datetime.timedelta(days=30))
    )
    for pem in revoked_pems:
        serial = x509.load_pem_x509_certificate(pem).serial_number
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    crl = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    with open(path, "wb") as f:
        f.write(crl.public_bytes(serialization.Encoding.PEM))
    return path
