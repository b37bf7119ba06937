"""The rendered OpenShift router configuration installed in a directory, with its certificates."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import trustme

DATA = Path(__file__).parent.parent / "config" / "data"
CONFIG = DATA / "openshift-router.cfg"
OPTIONS_CONFIG = DATA / "openshift-router-options.cfg"
CONF_FILES = DATA / "openshift"
ROOT = "/var/lib/haproxy"
HOSTS = {
    "edge": "web-edge.apps.example.com",
    "reenc": "web-reenc.apps.example.com",
    "pass": "web-pass.apps.example.com",
    "plain": "web-plain.apps.example.com",
}


@dataclass(frozen=True)
class Router:
    """An installed router tree: `config` is the configuration file to load."""

    root: Path
    config: Path
    ca: trustme.CA
    ca_file: Path


def install(
    root: Path,
    replace: dict[str, str] | None = None,
    ca: trustme.CA | None = None,
    config: Path = CONFIG,
) -> Router:
    """Copies the maps and error pages under `root`/conf, issues the default, route and
    destination certificates under `root`/router, and writes the configuration with
    /var/lib/haproxy rewritten to `root` and each `replace` key rewritten to its value."""
    ca = ca or trustme.CA(organization_name="Router Test CA")
    conf = root / "conf"
    certs = root / "router" / "certs"
    cacerts = root / "router" / "cacerts"
    for d in (conf, certs, cacerts, root / "run", root / "router" / "clientca"):
        d.mkdir(parents=True, exist_ok=True)
    for f in CONF_FILES.iterdir():
        text = f.read_text().replace(ROOT, str(root))
        (conf / f.name).write_text(text)
    ca.issue_cert(
        "router-default.apps.example.com", "*.apps.example.com"
    ).private_key_and_cert_chain_pem.write_to_path(str(certs / "default.pem"))
    for name in ("edge", "reenc"):
        cert = ca.issue_cert(HOSTS[name])
        cert.private_key_and_cert_chain_pem.write_to_path(str(certs / f"demo:web-{name}.pem"))
    ca.cert_pem.write_to_path(str(cacerts / "demo:web-reenc.pem"))
    ca_file = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.cert_pem.write_to_path(str(root / "router" / "clientca" / "ca.pem"))
    whitelists = root / "router" / "whitelists"
    whitelists.mkdir(exist_ok=True)
    (whitelists / "demo:web-pass.txt").write_text("10.0.0.0/8\n127.0.0.1\n::1\n")
    text = config.read_text().replace(ROOT, str(root))
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    out = root / "haproxy.config"
    out.write_text(text)
    shutil.copymode(CONFIG, out)
    return Router(root, out, ca, ca_file)
