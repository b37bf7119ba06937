"""The runtime API's certificate commands as pure functions over a CertStore, answering with
HAProxy 2.6's texts: show/set/commit/abort/new/del ssl cert, add/show ssl crt-list."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from nsproxy.config.model_tls import CrtListEntry
from nsproxy.tls.crtlist import format_entry, parse_entry
from nsproxy.tls.fetches import format_dn
from nsproxy.tls.options import OptionError
from nsproxy.tls.pem import CertBundle, key_algorithm, key_matches, split_pem
from nsproxy.tls.store import CertStore


@dataclass(slots=True)
class Transaction:
    """The one certificate update in progress (HAProxy allows one at a time)."""

    path: str
    cert_pems: list[bytes]
    key_pem: bytes | None


@dataclass(slots=True)
class CertApi:
    """The certificate store and the transaction in progress, shared by every CLI session."""

    store: CertStore
    txn: Transaction | None = None


def _time(t: x509.Certificate, which: str) -> str:
    when = t.not_valid_before_utc if which == "before" else t.not_valid_after_utc
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S} {when.year} GMT"


def _san(cert: x509.Certificate) -> str | None:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    parts = [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
    parts += [f"IP Address:{ip}" for ip in ext.get_values_for_type(x509.IPAddress)]
    parts += [f"email:{m}" for m in ext.get_values_for_type(x509.RFC822Name)]
    return ", ".join(parts)


def _describe(name: str, status: str, cert_pems: list[bytes] | None) -> str:
    lines = [f"Filename: {name}", f"Status: {status}"]
    if cert_pems:
        cert = x509.load_pem_x509_certificate(cert_pems[0])
        der = cert.public_bytes(Encoding.DER)
        lines.append(f"Serial: {_serial_hex(cert.serial_number)}")
        lines.append(f"notBefore: {_time(cert, 'before')}")
        lines.append(f"notAfter: {_time(cert, 'after')}")
        san = _san(cert)
        if san is not None:
            lines.append(f"Subject Alternative Name: {san}")
        lines.append(f"Algorithm: {key_algorithm(cert)}")
        lines.append(f"SHA1 FingerPrint: {hashlib.sha1(der).hexdigest().upper()}")
        lines.append(f"Subject: {format_dn(cert.subject)}")
        lines.append(f"Issuer: {format_dn(cert.issuer)}")
        for pem in cert_pems[1:]:
            chain = x509.load_pem_x509_certificate(pem)
            lines.append(f"Chain Subject: {format_dn(chain.subject)}")
            lines.append(f"Chain Issuer: {format_dn(chain.issuer)}")
    lines.append("OCSP Response Key: ")
    return "\n".join(lines) + "\n"


def _serial_hex(n: int) -> str:
    text = f"{n:X}"
    return text if len(text) % 2 == 0 else "0" + text


def show_ssl_cert(api: CertApi, name: str | None = None) -> str:
    """`show ssl cert [NAME]` (`*NAME` shows the transaction's version)."""
    store = api.store
    if name is None:
        out = ""
        if api.txn is not None:
            out += f"# transaction\n*{api.txn.path}\n"
        out += "# filename\n" + "".join(f"{p}\n" for p in sorted(store.bundles))
        return out
    if name.startswith("*"):
        txn = api.txn
        if txn is None or txn.path != name[1:]:
            return (
                "The ongoing transaction is not about this certificate!\n"
                if txn
                else ("No ongoing transaction!\n")
            )
        return _describe(name, "Unused", txn.cert_pems)
    if name not in store.bundles:
        return "Can't display the certificate: Not found or the certificate is a bundle!\n"
    bundle = store.bundles[name]
    if bundle is None:
        return _describe(name, "Empty", None)
    status = "Used" if store.users(name) else "Unused"
    return _describe(name, status, [bundle.cert_pem, *bundle.chain_pems])


def set_ssl_cert(api: CertApi, name: str | None, payload: str | None) -> str:
    """`set ssl cert NAME <<` PEM: starts or updates the transaction. `NAME.key` sets the key."""
    if not name or payload is None:
        return "'set ssl cert expects a filename and a certificate as a payload\n"
    path, is_key = (name[:-4], True) if name.endswith(".key") else (name, False)
    txn = api.txn
    if txn is not None and txn.path != path:
        return (
            f"The ongoing transaction is about '{txn.path}' but you are trying to set "
            f"'{name}'\nCan't update {name}!\n"
        )
    if path not in api.store.bundles:
        return (
            "Can't replace a certificate which is not referenced by the configuration!\n"
            f"Can't update {name}!\n"
        )
    certs, key = split_pem(payload.encode())
    if (is_key and key is None) or (not is_key and not certs):
        what = "private key" if is_key else "certificate"
        return (
            f"unable to load {what} from file '{path}'.\nCan't load the payload\n"
            f"Can't update {name}!\n"
        )
    if txn is None:
        old = api.store.bundles[path]
        txn = Transaction(
            path, [old.cert_pem, *old.chain_pems] if old else [], old.key_pem if old else None
        )
        api.txn = txn
        verb = "created"
    else:
        verb = "updated"
    if is_key:
        txn.key_pem = key
    else:
        txn.cert_pems = certs
        txn.key_pem = key
    return f"Transaction {verb} for certificate {path}!\n"


def commit_ssl_cert(api: CertApi, name: str | None) -> str:
    """`commit ssl cert NAME`: new handshakes use the certificate from now on."""
    if not name:
        return "'commit ssl cert expects a filename\n"
    txn = api.txn
    if txn is None:
        return f"No ongoing transaction! !\nCan't commit {name}!\n"
    if txn.path != name:
        return (
            f"The ongoing transaction is about '{txn.path}' but you are trying to set "
            f"'{name}'\nCan't commit {name}!\n"
        )
    if not txn.cert_pems or txn.key_pem is None:
        return (
            "The transaction must contain at least a certificate and a private key!\n"
            f"Can't commit {name}!\n"
        )
    cert = x509.load_pem_x509_certificate(txn.cert_pems[0])
    if not key_matches(cert, txn.key_pem):
        return (
            f"inconsistencies between private key and certificate loaded '{name}'.\n"
            f"Can't commit {name}!\n"
        )
    bundle = CertBundle(name, txn.cert_pems[0], tuple(txn.cert_pems[1:]), txn.key_pem, cert)
    try:
        n = api.store.replace(name, bundle)
    except Exception as exc:  # an OpenSSL refusal leaves the old certificate in place
        return f"{exc}\nCan't commit {name}!\n"
    api.txn = None
    return f"Committing {name}" + "." * n + "\nSuccess!\n"


def abort_ssl_cert(api: CertApi, name: str | None) -> str:
    if not name:
        return "'abort ssl cert' expects a filename\n"
    if api.txn is None or api.txn.path != name:
        return "No ongoing transaction!\n"
    api.txn = None
    return f"Transaction aborted for certificate '{name}'!\n"


def new_ssl_cert(api: CertApi, name: str | None) -> str:
    if not name:
        return "'new ssl cert' expects a filename\n"
    if name in api.store.bundles:
        return f"Certificate '{name}' already exists!\n"
    api.store.bundles[name] = None
    return f"New empty certificate store '{name}'!\n"


def del_ssl_cert(api: CertApi, name: str | None) -> str:
    if not name:
        return "'del ssl cert' expects a certificate name\n"
    if api.txn is not None and api.txn.path == name:
        return "Can't delete a certificate which is currently being updated!\n"
    if name not in api.store.bundles:
        return f"Can't remove the certificate: certificate '{name}' doesn't exist!\n\n"
    if api.store.users(name):
        return f"Can't remove the certificate: certificate '{name}' in use, can't be deleted!\n\n"
    del api.store.bundles[name]
    return f"Certificate '{name}' deleted!\n"


def add_ssl_crt_list(api: CertApi, list_name: str | None, line: str | None) -> str:
    """`add ssl crt-list LIST CERT` or `add ssl crt-list LIST <<` one crt-list line."""
    if not list_name or not line:
        return "'add ssl crtlist' expects a filename and a certificate name\n"
    store = api.store
    err = "Can't edit the crt-list: "
    if list_name not in store.crt_lists:
        return f"{err}crt-list '{list_name}' does not exist!\n"
    try:
        entry = parse_entry(list_name, 0, line.strip())
    except OptionError as exc:
        return f"{err}{exc}\n"
    if entry is None:
        return f"{err}no certificate in the line!\n"
    if os.path.isdir(list_name):
        if os.path.dirname(entry.crt.rstrip("/")) != list_name.rstrip("/"):
            return (
                f"{err}'{list_name}' is a directory, certificate path '{entry.crt}' must "
                "contain the directory path\n"
            )
        if any(e.crt == entry.crt for e in store.crt_lists[list_name]):
            return f"{err}file already exists in this directory!\n"
    if api.txn is not None and api.txn.path == entry.crt:
        return f"{err}certificate '{entry.crt}' is already being updated!\n"
    if entry.crt not in store.bundles:
        return f"{err}certificate '{entry.crt}' does not exist!\n"
    if store.bundles[entry.crt] is None:
        return f"{err}certificate '{entry.crt}' is empty!\n"
    line_no = max((e.line for e in store.crt_lists[list_name]), default=0) + 1
    entry = CrtListEntry(entry.crt, entry.options, entry.sni_filters, line_no)
    try:
        n = store.add_entry(list_name, entry)
    except Exception as exc:
        return f"{err}{exc}\n"
    return (
        f"Inserting certificate '{entry.crt}' in crt-list '{list_name}'"
        + "." * n
        + ("\nSuccess!\n")
    )


def show_ssl_crt_list(api: CertApi, name: str | None = None, with_lines: bool = False) -> str:
    """`show ssl crt-list [-n] [LIST]`."""
    lists = api.store.crt_lists
    if name is None:
        return "".join(f"{n}\n" for n in sorted(lists))
    if name not in lists:
        return "didn't find the specified filename\n"
    return f"# {name}\n" + "".join(format_entry(e, with_lines) + "\n" for e in lists[name])


def dispatch(api: CertApi, words: list[str], payload: str | None = None) -> str | None:
    """Runs one certificate command (words after the CLI split); None if not one of them."""
    if len(words) < 3 or words[0] not in ("show", "set", "commit", "abort", "new", "del", "add"):
        return None
    head = tuple(words[:3])
    arg = words[3] if len(words) > 3 else None
    if head == ("show", "ssl", "cert"):
        return show_ssl_cert(api, arg)
    if head == ("set", "ssl", "cert"):
        return set_ssl_cert(api, arg, payload)
    if head == ("commit", "ssl", "cert"):
        return commit_ssl_cert(api, arg)
    if head == ("abort", "ssl", "cert"):
        return abort_ssl_cert(api, arg)
    if head == ("new", "ssl", "cert"):
        return new_ssl_cert(api, arg)
    if head == ("del", "ssl", "cert"):
        return del_ssl_cert(api, arg)
    if head == ("add", "ssl", "crt-list"):
        line = payload if payload is not None else " ".join(words[4:]) or None
        return add_ssl_crt_list(api, arg, line)
    if head == ("show", "ssl", "crt-list"):
        rest = words[3:]
        lines = bool(rest) and rest[0] == "-n"
        rest = rest[1:] if lines else rest
        return show_ssl_crt_list(api, rest[0] if rest else None, lines)
    return None
