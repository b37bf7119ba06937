"""The files an Octavia amphora configuration names under /var/lib/octavia, made for a test.

`materialize(text, root)` moves every /var/lib/octavia path of the configuration under `root`
and writes what the configuration expects there: each crt-list (one certificate file a line,
the first the listener's default certificate), the client CA, the CRLs, the pools' client
certificate and CA. The certificates come from one trustme CA; `OctaviaPki` holds them.
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

OCTAVIA = "/var/lib/octavia"


@dataclass
class OctaviaPki:
    """The CA behind every certificate, the clients it issued, and the revoked one."""

    ca: trustme.CA
    dir: Path
    client: str = ""  # CN=alice, OU=ops
    dev: str = ""  # CN=bob, OU=dev
    revoked: str = ""  # CN=eve, listed in the listener's CRL
    stranger: str = ""  # CN=mallory, by another CA
    sni_names: dict[str, str] = field(default_factory=dict)  # cert file -> its first name


def _client(ca: trustme.CA, d: Path, name: str, cn: str, ou: str) -> str:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    cert = ca.issue_cert(
        f"{cn}@example.com",
        common_name=cn,
        organization_unit_name=ou,
        not_before=now - datetime.timedelta(days=1),
        not_after=now + datetime.timedelta(days=365),
    )
    path = d / name
    cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    return str(path)


def _crl(ca: trustme.CA, revoked_pem: str | None) -> bytes:
    """A CRL signed by `ca`, listing the certificate in `revoked_pem` (if any)."""
    key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    issuer = x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(now - datetime.timedelta(days=1))
        .next_update(now + datetime.timedelta(days=30))
    )
    if revoked_pem is not None:
        serial = x509.load_pem_x509_certificates(Path(revoked_pem).read_bytes())[0].serial_number
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - datetime.timedelta(hours=1))
            .build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def materialize(text: str, root: Path) -> tuple[str, OctaviaPki]:
    """The configuration with its files under `root`, and the PKI that made them."""
    text = text.replace(OCTAVIA, str(root))
    ca = trustme.CA(organization_name="Octavia Test CA")
    other = trustme.CA(organization_name="Other CA")
    pki_dir = root / "pki"
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki = OctaviaPki(ca, pki_dir)
    pki.client = _client(ca, pki_dir, "alice.pem", "alice", "ops")
    pki.dev = _client(ca, pki_dir, "bob.pem", "bob", "dev")
    pki.revoked = _client(ca, pki_dir, "eve.pem", "eve", "ops")
    pki.stranger = _client(other, pki_dir, "mallory.pem", "mallory", "ops")
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["server-state-file"]:
            Path(words[1]).parent.mkdir(parents=True, exist_ok=True)
        if words[:1] not in (["bind"], ["server"]):
            continue
        for opt, path in itertools.pairwise(words):
            p = Path(path)
            if not path.startswith(str(root)) or p.exists():
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            if opt == "crt-list":
                lines = []
                for i, name in enumerate(("www.example.com", "api.example.com")):
                    cert = p.parent / f"{p.stem}-{i}.pem"
                    leaf = ca.issue_cert(name, f"*.{name}")
                    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
                    pki.sni_names[str(cert)] = name
                    lines.append(str(cert))
                p.write_text("\n".join(lines) + "\n")
            elif opt == "crt":
                lb = ca.issue_cert("lb.example.com", common_name="lb")
                lb.private_key_and_cert_chain_pem.write_to_path(str(p))
            elif opt == "ca-file":
                ca.cert_pem.write_to_path(str(p))
            elif opt == "crl-file":
                p.write_bytes(_crl(ca, pki.revoked if words[0] == "bind" else None))
    return text, pki
