"""The runtime API's certificate commands answer like HAProxy 2.6's stats socket, command for
command, and a committed certificate is what the next handshake gets."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from drive import handshake, tcp_pair

from conftest import Pki
from nsproxy.config.model_tls import BindTls
from nsproxy.runtime.xprt_tls import TlsTransport
from nsproxy.tls import certapi
from nsproxy.tls.store import CertStore, SniStore


class Setup:
    def __init__(self, tmp: Path, pki: Pki) -> None:
        self.dir = tmp / "crtdir"
        self.dir.mkdir()
        pki.issue(str(self.dir / "a.example.com.pem"), "a.example.com")
        pki.issue(str(self.dir / "b.example.com.pem"), "b.example.com")
        self.file = str(tmp / "main.pem")
        inter = pki.ca.create_child_ca()
        inter.issue_cert("www.example.com").private_key_and_cert_chain_pem.write_to_path(self.file)
        self.c_pem = Path(pki.issue(str(tmp / "c.pem"), "c.example.com")).read_text()
        self.cert_only = self.c_pem[self.c_pem.index("-----BEGIN CERTIFICATE") :]
        self.key_only = self.c_pem[: self.c_pem.index("-----BEGIN CERTIFICATE")]
        self.tmp = tmp
        self.api = pki.api
        self.ca = pki.ca_file
        self.lst = str(tmp / "list.txt")
        Path(self.lst).write_text(
            f"{pki.api} [alpn h2,http/1.1 verify optional ca-file {pki.ca_file}] "
            "api.example.com !old.example.com\n"
            f"# comment\n\n{pki.www} [ssl-min-ver TLSv1.2 ciphers HIGH]\n{pki.www} *.x.test\n"
        )


def commands(s: Setup) -> list[tuple[str, str | None]]:
    d, f = str(s.dir), s.file
    new = str(s.tmp / "new.pem")
    n = f"{d}/n.pem"
    return [
        ("show ssl cert", None),
        (f"show ssl cert {f}", None),
        (f"show ssl cert {s.tmp}/nope.pem", None),
        (f"set ssl cert {f}", s.c_pem),
        ("show ssl cert", None),
        (f"show ssl cert *{f}", None),
        (f"set ssl cert {f}", s.c_pem),
        (f"commit ssl cert {d}/a.example.com.pem", None),
        (f"commit ssl cert {f}", None),
        (f"commit ssl cert {f}", None),
        (f"abort ssl cert {f}", None),
        (f"set ssl cert {s.tmp}/nope.pem", s.c_pem),
        (f"set ssl cert {f}", "garbage\n"),
        (f"set ssl cert {f}", s.cert_only),
        (f"commit ssl cert {f}", None),
        (f"abort ssl cert {f}", None),
        (f"show ssl cert {f}", None),
        (f"set ssl cert {f}", s.cert_only),
        (f"set ssl cert {f}.key", s.key_only),
        (f"show ssl cert *{f}", None),
        (f"commit ssl cert {f}", None),
        (f"set ssl cert {f}.key", s.cert_only),
        (f"abort ssl cert {f}", None),
        (f"new ssl cert {new}", None),
        (f"new ssl cert {new}", None),
        (f"new ssl cert {f}", None),
        (f"show ssl cert {new}", None),
        (f"set ssl cert {new}", s.c_pem),
        (f"commit ssl cert {new}", None),
        (f"add ssl crt-list {d} {new}", None),
        (f"add ssl crt-list {s.tmp}/nolist {new}", None),
        (f"new ssl cert {n}", None),
        (f"add ssl crt-list {d} {n}", None),
        (f"set ssl cert {n}", s.c_pem),
        (f"commit ssl cert {n}", None),
        (f"add ssl crt-list {d} {n}", None),
        (f"add ssl crt-list {d} {n}", None),
        ("show ssl crt-list", None),
        (f"show ssl crt-list {s.lst}", None),
        (f"show ssl crt-list -n {s.lst}", None),
        (f"add ssl crt-list {s.lst} {new}", None),
        (f"add ssl crt-list {s.lst}", f"{n} [alpn h2 verify none] n.example.com !z.test\n"),
        (f"show ssl crt-list -n {s.lst}", None),
        (f"show ssl crt-list {d}", None),
        (f"show ssl crt-list -n {d}", None),
        ("show ssl cert", None),
        (f"del ssl cert {new}", None),
        (f"del ssl cert {f}", None),
        (f"del ssl cert {new}", None),
        (f"abort ssl cert {f}", None),
        ("abort ssl cert", None),
        ("del ssl cert", None),
        ("add ssl crt-list", None),
        ("show ssl crt-list nolist", None),
        ("new ssl cert", None),
        ("set ssl cert", None),
        ("commit ssl cert", None),
    ]


def ask(path: str, cmd: str, payload: str | None) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        text = cmd + (" <<\n" + payload.rstrip("\n") + "\n\n" if payload is not None else "\n")
        s.sendall(text.encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def ready(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


@pytest.fixture
def haproxy(tmp_path: Path, pki: Pki) -> Iterator[tuple[Setup, str]]:
    if shutil.which("haproxy") is None:
        pytest.skip("needs haproxy 2.6")
    s = Setup(tmp_path, pki)
    sock = str(tmp_path / "api.sock")
    cfg = tmp_path / "h.cfg"
    with socket.socket() as p1, socket.socket() as p2:
        p1.bind(("127.0.0.1", 0))
        p2.bind(("127.0.0.1", 0))
        port, port2 = p1.getsockname()[1], p2.getsockname()[1]
    cfg.write_text(
        f"global\n  stats socket {sock} level admin\n"
        "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n"
        f"frontend f\n  bind 127.0.0.1:{port} ssl crt {s.dir} crt {s.file}\n"
        f"  bind 127.0.0.1:{port2} ssl crt-list {s.lst}\n  default_backend b\n"
        "backend b\n  server s1 127.0.0.1:1\n"
    )
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not ready(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"haproxy did not start: {proc.stderr.read() if proc.stderr else b''!r}"
                )
            time.sleep(0.02)
        yield s, sock
    finally:
        proc.terminate()
        proc.wait(5)


def test_answers_match_haproxy(haproxy: tuple[Setup, str]) -> None:
    s, sock = haproxy
    store = CertStore()
    sni = SniStore.build(store, BindTls(enabled=True, crts=(str(s.dir), s.file)))
    SniStore.build(store, BindTls(enabled=True, crt_lists=(s.lst,)))
    api = certapi.CertApi(store)
    for cmd, payload in commands(s):
        want = ask(sock, cmd, payload)
        got = certapi.dispatch(api, cmd.split(), payload)
        assert got is not None, cmd
        assert got + "\n" == want, cmd
    assert len(sni.instances) == 4


def served_names(sni: SniStore, name: str) -> tuple[str, ...]:
    c, s = tcp_pair()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    srv = TlsTransport(s, sni.context(), server_side=True)
    cli = TlsTransport(c, ctx, False, name)
    handshake(srv, cli)
    der = cli.obj.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return tuple(san.get_values_for_type(x509.DNSName))


def test_committed_certificate_serves_new_handshakes(tmp_path: Path, pki: Pki) -> None:
    s = Setup(tmp_path, pki)
    store = CertStore()
    sni = SniStore.build(store, BindTls(enabled=True, crts=(s.file, str(s.dir)), strict_sni=True))
    api = certapi.CertApi(store)
    assert served_names(sni, "www.example.com")[0] == "www.example.com"
    certapi.dispatch(api, ["set", "ssl", "cert", s.file], s.c_pem)
    assert served_names(sni, "www.example.com")[0] == "www.example.com"  # not committed yet
    assert certapi.dispatch(api, ["commit", "ssl", "cert", s.file]) == (
        f"Committing {s.file}.\nSuccess!\n"
    )
    assert served_names(sni, "c.example.com") == ("c.example.com",)
    assert sni.select("www.example.com") is None  # strict-sni: the old name is gone
    new = f"{s.dir}/z.pem"
    certapi.dispatch(api, ["new", "ssl", "cert", new])
    z = Path(pki.issue(str(tmp_path / "z.pem"), "z.example.com")).read_text()
    certapi.dispatch(api, ["set", "ssl", "cert", new], z)
    certapi.dispatch(api, ["commit", "ssl", "cert", new])
    assert sni.select("z.example.com") is None
    certapi.dispatch(api, ["add", "ssl", "crt-list", str(s.dir), new])
    assert served_names(sni, "z.example.com") == ("z.example.com",)
