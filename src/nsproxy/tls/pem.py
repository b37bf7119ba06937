"""HAProxy's certificate files: PEM bundles of certificate, chain and key (or key in FILE.key)."""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.S)


class PemError(Exception):
    """A certificate file that cannot be used; the message is HAProxy's."""


@dataclass(frozen=True, slots=True)
class CertBundle:
    """One certificate with its chain and private key, as loaded from `path`."""

    path: str
    cert_pem: bytes
    chain_pems: tuple[bytes, ...]
    key_pem: bytes
    cert: x509.Certificate

    @property
    def names(self) -> tuple[str, ...]:
        """The names this certificate serves (SAN DNS names, else the subject CN), lowercase."""
        return cert_names(self.cert)

    def pem(self) -> bytes:
        """Certificate, chain and key in one PEM, the layout `set ssl cert` accepts."""
        return self.cert_pem + b"".join(self.chain_pems) + self.key_pem


def cert_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        names = [str(a.value).lower() for a in cns]
    return tuple(names)


def _blocks(data: bytes) -> list[tuple[str, bytes]]:
    return [
        (m.group(1).decode(), m.group(0).rstrip(b"\r\n") + b"\n") for m in _BLOCK.finditer(data)
    ]


def split_pem(data: bytes) -> tuple[list[bytes], bytes | None]:
    """The certificate blocks (leaf first) and the first private key block of a PEM payload."""
    certs: list[bytes] = []
    key: bytes | None = None
    for kind, block in _blocks(data):
        if kind in ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"):
            certs.append(block)
        elif kind.endswith("PRIVATE KEY") and key is None:
            key = block
    return certs, key


def key_matches(cert: x509.Certificate, key_pem: bytes) -> bool:
    try:
        key = serialization.load_pem_private_key(key_pem, None)
    except (ValueError, TypeError):
        return False
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return key.public_key().public_bytes(enc, raw) == cert.public_key().public_bytes(enc, raw)


def parse_bundle(path: str, data: bytes, key_data: bytes | None = None) -> CertBundle:
    """A bundle from PEM bytes; `key_data` stands for a separate `PATH.key` file."""
    certs, key = split_pem(data)
    if not certs:
        raise PemError(f"unable to load certificate from file '{path}'.")
    try:
        cert = x509.load_pem_x509_certificate(certs[0])
    except ValueError:
        raise PemError(f"unable to load certificate from file '{path}'.") from None
    if key is None and key_data is not None:
        key = split_pem(key_data)[1]
    if key is None:
        raise PemError(f"No Private Key found in '{path}.key'.")
    if not key_matches(cert, key):
        raise PemError(f"inconsistencies between private key and certificate loaded '{path}'.")
    return CertBundle(path, certs[0], tuple(certs[1:]), key, cert)


def load_bundle(path: str) -> CertBundle:
    """Reads a certificate file (and `PATH.key` when the file holds no key)."""
    try:
        os.stat(path)
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise PemError(
            f"unable to stat SSL certificate from file '{path}' : {exc.strerror}."
        ) from None
    key_data = None
    if split_pem(data)[1] is None:
        try:
            with open(path + ".key", "rb") as f:
                key_data = f.read()
        except OSError:
            key_data = None
    return parse_bundle(path, data, key_data)


_SKIPPED_SUFFIXES = (".key", ".ocsp", ".issuer", ".sctl", ".dh")


def crt_dir_files(path: str) -> list[str]:
    """The files a `crt DIR` loads: every regular file in name order, HAProxy's side files
    (.key, .ocsp, .issuer, .sctl) and dotfiles excepted."""
    out = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES) or not os.path.isfile(full):
            continue
        out.append(full)
    return out


def load_verify_file(path: str) -> bytes:
    """A ca-file or crl-file's bytes; raises PemError with HAProxy's message."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise PemError(f"Couldn't open the ca-file '{path}' ({exc.strerror}).") from None
    return data


def load_chain_into(ctx: ssl.SSLContext, bundle: CertBundle) -> None:
    """Installs a bundle's certificate, chain and key in `ctx` through a memfd: OpenSSL
    reads files only, and the key never touches a disk."""
    fd = os.memfd_create("nsproxy-crt", os.MFD_CLOEXEC)
    try:
        os.write(fd, bundle.pem())
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def key_algorithm(cert: x509.Certificate) -> str:
    """HAProxy's `Algorithm:` of `show ssl cert`: RSA2048, EC256, ED25519, ..."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC{key.curve.key_size}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA{key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ED25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "ED448"
    return "Unknown"
