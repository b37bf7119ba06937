"""Load-balancer configurations beyond plain HTTP load with `nsproxy -c` as with `haproxy -c`.

The files in data/ are renderings of Octavia's amphora templates (TERMINATED_HTTPS with SNI
and client certificates, TCP with PROXY protocol; octavia/common/jinja/haproxy/
combined_listeners/templates), of kubespray's API-server balancer (roles/kubernetes/node/
templates/loadbalancer/haproxy.cfg.j2) and of the haproxy.cfg in kubeadm's HA guide
(kubernetes/kubeadm docs/ha-considerations.md), with made-up IDs and addresses. The Octavia
ones name files under /var/lib/octavia: the test writes them (certificates, CRLs, crt-lists)
under a temporary directory first.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.octavia_files import materialize
from nsproxy.config.keywords.sslhellochk import SSL_HELLO_RULES
from nsproxy.config.keywords.stick import LOCALPEER, LOCALPEER_CMDLINE
from nsproxy.config.model import Config
from nsproxy.config.parser import parse_files
from sample.haproxy_ref import HAPROXY

DATA = Path(__file__).parent / "data"
LOCAL_PEER = "pTrVt79S6LjLe755S0a6vSfhhrA"  # the amphora's peer name (-L), as Octavia runs it
CONFIGS = [
    "octavia-https-listener.cfg",
    "octavia-tcp-proxy.cfg",
    "kubespray-apiserver.cfg",
    "kubeadm-apiserver.cfg",
]


@pytest.fixture
def tmp() -> Iterator[Path]:
    """A short directory: the stats socket path under it must stay within 97 bytes."""
    with tempfile.TemporaryDirectory(prefix="lb", dir="/tmp") as d:
        yield Path(d)


def messages(stderr: str) -> list[str]:
    """ALERT/WARNING texts without the process id."""
    return [
        f"{m.group(1)} {m.group(2)}"
        for m in re.finditer(r"^\[(ALERT|WARNING)\] +\(\d+\) : (.*)$", stderr, re.M)
    ]


def _file(name: str, tmp: Path) -> Path:
    text, _ = materialize((DATA / name).read_text(), tmp)
    path = tmp / name
    path.write_text(text)
    return path


def _check(cmd: list[str], path: Path) -> tuple[int, str, list[str]]:
    res = subprocess.run(
        [*cmd, "-c", "-L", LOCAL_PEER, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return res.returncode, res.stdout, messages(res.stderr)


@pytest.mark.parametrize("name", CONFIGS)
def test_loads_as_haproxy_loads_it(name: str, tmp: Path) -> None:
    path = _file(name, tmp)
    rc, out, msgs = _check([sys.executable, "-m", "nsproxy"], path)
    assert rc == 0, msgs
    assert "Configuration file is valid" in out
    if HAPROXY is None:
        pytest.skip("haproxy is not installed: loaded, not compared")
    assert (rc, out, msgs) == _check([HAPROXY], path)


def _model(name: str, tmp: Path) -> Config:
    presets = {LOCALPEER_CMDLINE: LOCAL_PEER, LOCALPEER: LOCAL_PEER}
    config, state = parse_files([str(_file(name, tmp))], presets=presets)
    assert state.errors == [] and config is not None
    return config


def test_kubeadm_ssl_hello_chk_replaces_the_httpchk_before_it(tmp: Path) -> None:
    be = _model("kubeadm-apiserver.cfg", tmp).proxy("apiserverbackend")
    assert be is not None
    assert be.http_check is None and be.tcp_check == SSL_HELLO_RULES
    assert all(s.check.enabled for s in be.servers)


def test_kubespray_checks_healthz_over_tls_without_verifying(tmp: Path) -> None:
    be = _model("kubespray-apiserver.cfg", tmp).proxy("kube_api_backend")
    assert be is not None and be.http_check is not None and be.http_check.expect is not None
    assert (be.http_check.method, be.http_check.uri) == ("GET", "/healthz")
    assert (be.http_check.expect.kind, be.http_check.expect.pattern) == ("status", "200")
    for srv in be.servers:
        assert srv.tls is not None and srv.tls.check_ssl and not srv.tls.enabled
        assert (srv.check.inter, srv.check.downinter, srv.check.rise, srv.check.fall) == (
            15.0,
            15.0,
            2,
            2,
        )


def test_octavia_https_listener_model(tmp: Path) -> None:
    config = _model("octavia-https-listener.cfg", tmp)
    assert config.global_.server_state_file is not None
    fe = config.frontends[0]
    (bind,) = fe.binds
    assert bind.tls is not None and bind.tls.enabled
    http_pool, tls_pool = config.backends
    assert http_pool.load_server_state == "global" and http_pool.fullconn == 50000
    assert http_pool.cookie is not None
    assert [s.backup for s in http_pool.servers] == [False, False, True]
    assert tls_pool.stick_table is not None and len(tls_pool.stick_rules) == 2
    assert all(s.tls is not None and s.tls.enabled for s in tls_pool.servers)
