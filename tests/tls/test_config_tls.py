"""TLS keywords: `nsproxy -c` and HAProxy 2.6's `haproxy -c` report the same errors and
warnings for the same bad configurations; good ones load into the model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Pki
from nsproxy.config.parser import parse_files

HEAD = """global
{glob}
defaults
  mode tcp
  timeout client 1s
  timeout server 1s
  timeout connect 1s
frontend f
  bind 127.0.0.1:18443 {bind}
  default_backend b
backend b
  server s1 127.0.0.1:1 {server}
"""


def messages(cmd: list[str]) -> list[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    out = []
    for line in res.stderr.splitlines():
        if ("[ALERT]" in line or "[WARNING]" in line) and " : config : " in line:
            text = line.split(" : config : ", 1)[1]
            if not text.startswith(("Error(s) found", "Fatal errors")):
                out.append(("W " if "[WARNING]" in line else "A ") + text)
    return out


def write(tmp: Path, pki: Pki, bind: str, server: str = "", glob: str = "") -> str:
    subst = {"WWW": pki.www, "API": pki.api, "CA": pki.ca_file, "DIR": str(pki.dir)}
    text = HEAD.format(glob=glob, bind=bind, server=server)
    for k, v in subst.items():
        text = text.replace("{" + k + "}", v)
    cfg = tmp / "t.cfg"
    cfg.write_text(text)
    return str(cfg)


CASES = [
    # bind side
    ("ssl", "", ""),
    ("ssl crt {DIR}/nope.pem", "", ""),
    ("ssl crt {DIR}/ca.pem", "", ""),
    ("ssl crt {WWW} verify required", "", ""),
    ("ssl crt {WWW} verify maybe", "", ""),
    ("ssl crt {WWW} verify", "", ""),
    ("ssl crt {WWW} ssl-min-ver TLSv9", "", ""),
    ("ssl crt {WWW} ssl-max-ver", "", ""),
    ("ssl crt {WWW} alpn", "", ""),
    ("ssl crt", "", ""),
    ("ssl crt {WWW} ca-file", "", ""),
    ("ssl crt {WWW} ca-file {DIR}/nope.pem", "", ""),
    ("ssl crt {WWW} crt-list {DIR}/nope.lst", "", ""),
    ("ssl crt {WWW} ciphers FOO", "", ""),
    ("ssl crt {WWW} ciphersuites FOO", "", ""),
    ("ssl crt {WWW} ciphers", "", ""),
    ("ssl crt {WWW} strict-sni no-tls-tickets no-tlsv10 no-tlsv11 force-tlsv12", "", ""),
    ("ssl crt {WWW} crt {API} alpn h2,http/1.1 verify optional ca-file {CA}", "", ""),
    ("ssl crt www.pem", "", "crt-base {DIR}"),
    ("ssl crt {WWW} ca-file {CA} verify optional ca-ignore-err foo", "", ""),
    ("ssl crt {WWW} ca-file {CA} verify optional crt-ignore-err 10,99", "", ""),
    ("ssl crt {WWW} ca-file {CA} verify optional crt-ignore-err", "", ""),
    ("ssl crt {WWW} ca-file {CA} verify optional ca-ignore-err all crt-ignore-err 10,20", "", ""),
    ("ssl crt {WWW}", "", "ssl-default-bind-ciphers FOO"),
    ("ssl crt {WWW}", "", "ssl-default-bind-options foo"),
    ("ssl crt {WWW}", "", "ssl-default-bind-options ssl-min-ver"),
    ("ssl crt {WWW}", "", "ssl-default-server-options ssl-max-ver TLSv1.5"),
    ("ssl crt {WWW}", "", "ssl-default-bind-ciphers"),
    ("ssl crt {WWW}", "", "ssl-default-bind-ciphers A B"),
    ("ssl crt {WWW}", "", "crt-base /a\n  crt-base /b"),
    ("ssl crt {WWW}", "", "ssl-server-verify foo"),
    ("ssl crt {WWW}", "", "tune.ssl.default-dh-param 4096\n  tune.ssl.cachesize 1000"),
    # server side
    ("", "ssl", ""),
    ("", "ssl verify required ca-file {CA}", ""),
    ("", "ssl crt {DIR}/nope.pem verify none", ""),
    ("", "ssl verify maybe", ""),
    ("", "ssl verify none sni", ""),
    ("", "ssl verify none sni str(x) alpn h2 check-ssl no-ssl-reuse ssl-min-ver TLSv1.2", ""),
    ("", "ssl verify none ciphers FOO", ""),
    ("", "ssl verify none ciphersuites FOO", ""),
    ("", "ssl verify none ssl-min-ver TLSv9", ""),
    ("", "ssl verify none alpn", ""),
    ("", "ssl verify none crt", ""),
    ("", "ssl verify none verify", ""),
    ("", "ssl", "ssl-server-verify none"),
    ("", "ssl crt {WWW} ca-file ca.pem", "ca-base {DIR}"),
]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy 2.6")
@pytest.mark.parametrize(("bind", "server", "glob"), CASES)
def test_same_messages_as_haproxy(
    tmp_path: Path, pki: Pki, bind: str, server: str, glob: str
) -> None:
    cfg = write(tmp_path, pki, bind, server, glob)
    want = messages(["haproxy", "-c", "-f", cfg])
    got = messages([sys.executable, "-m", "nsproxy", "-c", "-f", cfg])
    assert got == want


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy 2.6")
def test_server_ca_file_missing(tmp_path: Path, pki: Pki) -> None:
    """HAProxy adds a second line (`'ca-file' : unable to load F.`) that nsproxy omits."""
    cfg = write(tmp_path, pki, "", "ssl ca-file {DIR}/nope.pem verify none")
    want = messages(["haproxy", "-c", "-f", cfg])
    assert messages([sys.executable, "-m", "nsproxy", "-c", "-f", cfg]) == want[:1]


def test_crt_list_errors_like_haproxy(tmp_path: Path, pki: Pki) -> None:
    lst = tmp_path / "l.lst"
    for text in (
        f"{pki.dir}/nope.pem\n",
        f"{pki.www} [foo bar]\n",
        f"{pki.www} [verify required]\n",
        f"{pki.www} [strict-sni]\n",
        f"# comment\n\n{pki.www} [alpn h2 ssl-min-ver TLSv1.2] www.example.com !x.example.com\n",
    ):
        lst.write_text(text)
        cfg = write(tmp_path, pki, f"ssl crt-list {lst}")
        if shutil.which("haproxy"):
            want = messages(["haproxy", "-c", "-f", cfg])
            assert messages([sys.executable, "-m", "nsproxy", "-c", "-f", cfg]) == want


def test_model(tmp_path: Path, pki: Pki) -> None:
    cfg = write(
        tmp_path,
        pki,
        "ssl crt www.pem crt {API} alpn h2,http/1.1 verify optional ca-file ca.pem strict-sni",
        "ssl verify required ca-file ca.pem sni str(x) alpn http/1.1 no-ssl-reuse check-ssl",
        "crt-base {DIR}\n  ca-base {DIR}\n  ssl-default-bind-options ssl-min-ver TLSv1.2 "
        "no-tls-tickets\n  ssl-default-server-ciphers HIGH",
    )
    config, state = parse_files([cfg])
    assert config is not None, state.errors
    bind = config.proxies[0].binds[0]
    assert bind.tls is not None
    assert bind.tls.crts == (pki.www, pki.api)
    assert bind.tls.options.alpn == ("h2", "http/1.1")
    assert bind.tls.options.ca_file == pki.ca_file
    assert bind.tls.strict_sni
    g = config.global_.tls
    assert g.bind_defaults.min_ver == "TLSv1.2" and g.bind_defaults.no_tickets
    srv = config.proxies[1].servers[0]
    assert srv.tls is not None
    assert srv.tls.ciphers == "HIGH"
    assert srv.tls.sni == "str(x)" and not srv.tls.reuse and srv.tls.check_ssl
    assert srv.tls.alpn == ("http/1.1",)


CONFIGS = Path(__file__).parent / "configs"
REAL = ["mozilla-intermediate", "octavia-terminated-https"]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy 2.6")
@pytest.mark.parametrize("name", REAL)
def test_real_configurations_load_like_haproxy(tmp_path: Path, pki: Pki, name: str) -> None:
    """Configurations shaped like Mozilla's intermediate profile and Octavia's
    TERMINATED_HTTPS listener (in TCP mode), paths filled in."""
    text = (CONFIGS / f"{name}.cfg").read_text()
    from conftest import make_crl

    tenants = tmp_path / "tenants"
    tenants.mkdir()
    pki.issue(str(tenants / "t1.pem"), "t1.example.com")
    pki.issue(str(tenants / "t2.pem"), "*.t2.example.com")
    lst = tmp_path / "listener.lst"
    lst.write_text(f"{pki.www}\n{pki.api} api.example.com\n")
    crl = make_crl(pki.ca, [], str(tmp_path / "crl.pem"))
    subst = {
        "{DIR}": str(pki.dir),
        "{TENANTS}": str(tenants),
        "{LIST}": str(lst),
        "{CA}": pki.ca_file,
        "{CRL}": crl,
        "{CLIENT}": pki.client,
    }
    for k, v in subst.items():
        text = text.replace(k, v)
    cfg = tmp_path / "real.cfg"
    cfg.write_text(text)
    want = messages(["haproxy", "-c", "-f", str(cfg)])
    got = messages([sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)])
    assert [m for m in want if m.startswith("A ")] == []
    assert got == want
    config, state = parse_files([str(cfg)])
    assert config is not None, state.errors
    from nsproxy.tls.store import CertStore, SniStore

    store = CertStore()
    for px in config.frontends:
        for bind in px.binds:
            assert bind.tls is not None
            sni = SniStore.build(store, bind.tls, config.global_.tls.bind_defaults)
            assert sni.instances
