"""Real HTTP configurations load as HAProxy 2.6 loads them, and their rules act as HAProxy's.

The files in data/ are renderings of OpenStack Neutron's metadata proxy templates (DHCP and
router agents: neutron/agent/metadata/driver.py with neutron/common/metadata.py; OVN agent:
neutron/agent/ovn/metadata/driver.py) and of Octavia's HTTP listener template
(octavia/common/jinja/haproxy/combined_listeners/templates), with made-up IDs and addresses.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nsproxy.config.model import ProxyCfg
from nsproxy.config.model_http import HttpResult, stream_modes
from nsproxy.config.parser import parse_files
from nsproxy.proto.h1.connection import prepare_request
from nsproxy.proto.h1.head import serialize_request
from nsproxy.proto.h1.rewrite import add_forwarded_for
from sample.haproxy_ref import HAPROXY, needs_haproxy
from sample.http_ref import http_haproxy
from sample.http_txn import HttpTxn, request

DATA = Path(__file__).parent / "data"
NEUTRON = ["neutron-dhcp-metadata.cfg", "neutron-router-metadata.cfg", "neutron-ovn-metadata.cfg"]
NET = "8d4d9dcb-0b6e-4a45-bd2f-3a3c0e0d2b71"
ROUTER = "5f0a5c3e-2a84-4d7c-9a6a-1c2b3d4e5f60"


def messages(stderr: str) -> list[str]:
    """ALERT/WARNING texts without the process id and the summary lines."""
    out = []
    for line in stderr.splitlines():
        m = re.match(r"\[(ALERT|WARNING)\] +\(\d+\) : (.*)", line)
        if m and "Fatal errors" not in m.group(2) and "Error(s) found" not in m.group(2):
            out.append(f"{m.group(1)} {m.group(2)}")
    return out


@pytest.mark.parametrize("name", NEUTRON)
def test_neutron_metadata_configs_load_with_nsproxy_c(name: str) -> None:
    path = DATA / name
    res = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert messages(res.stderr) == []
    if HAPROXY is not None:
        ref = subprocess.run(
            [HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=60
        )
        assert ref.returncode == 0
        assert messages(ref.stdout + ref.stderr) == messages(res.stderr)


def _listener(name: str) -> ProxyCfg:
    config, state = parse_files([str(DATA / name)])
    assert state.errors == [] and config is not None
    px = config.proxy("listener")
    assert px is not None and px.http is not None
    return px


def _apply(px: ProxyCfg, txn: HttpTxn) -> HttpResult | None:
    assert px.http is not None
    for rule in px.http.http_request:
        r = rule.run(txn)
        if r is not None:
            return r
    return None


FORGED = (
    b"GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n"
    b"X-Neutron-Network-ID: forged-net\r\nX-Neutron-Router-ID: forged-router\r\n"
    b"X-OVN-Network-ID: forged-ovn\r\n\r\n"
)


def test_forged_ids_never_reach_the_dhcp_metadata_agent() -> None:
    px = _listener("neutron-dhcp-metadata.cfg")
    txn = request(FORGED)
    assert _apply(px, txn) is None
    assert txn.http_req is not None
    ids = [(n, v) for n, v in txn.http_req.headers if n.startswith(b"x-neutron")]
    assert ids == [(b"x-neutron-network-id", NET.encode())]


def test_forged_ids_never_reach_the_router_metadata_agent() -> None:
    px = _listener("neutron-router-metadata.cfg")
    txn = request(FORGED)
    assert _apply(px, txn) is None
    assert txn.http_req is not None
    ids = [(n, v) for n, v in txn.http_req.headers if n.startswith(b"x-neutron")]
    assert ids == [(b"x-neutron-router-id", ROUTER.encode())]


def test_ovn_template_keeps_a_forged_id_first() -> None:
    px = _listener("neutron-ovn-metadata.cfg")
    txn = request(FORGED)
    assert _apply(px, txn) is None
    assert txn.http_req is not None
    ids = [v for n, v in txn.http_req.headers if n == b"x-ovn-network-id"]
    assert ids == [b"forged-ovn", NET.encode()]


@needs_haproxy
@pytest.mark.parametrize("name", NEUTRON)
def test_neutron_request_as_the_agent_sees_it(name: str) -> None:
    """The template's defaults and rules in a live HAProxy in front of a recording backend:
    the compiled rules, then `option forwardfor` and the connection mode from HttpCfg, give
    the bytes the agent receives."""
    px = _listener(name)
    assert px.http is not None
    text = (DATA / name).read_text()
    rules = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("http-request")]
    defaults = "  option forwardfor\n  option http-server-close\n"
    with http_haproxy("\n".join(f"  {r}" for r in rules), defaults=defaults) as ref:
        client, server = ref.exchange(FORGED)
    assert server is not None, client
    txn = request(FORGED, src=("127.0.0.1", 40000))
    assert _apply(px, txn) is None
    req = txn.http_req
    assert req is not None
    ff = px.http.forwardfor
    assert ff is not None and not ff.excluded("127.0.0.1")
    add_forwarded_for(req.headers, b"127.0.0.1", ff.name, ff.if_none)
    _, server_mode = stream_modes(px.http, px.http)
    prepare_request(req, server_mode)
    assert serialize_request(req) == server


def test_octavia_http_listener_loads_with_haproxys_warnings() -> None:
    path = DATA / "octavia-http-listener.cfg"
    config, state = parse_files([str(path)])
    assert state.errors == []
    assert config is not None
    assert state.warnings == [
        f"parsing [{path}:39] : a 'redirect' rule placed after a 'use_backend' rule will "
        "still be processed before."
    ]
    if HAPROXY is not None:
        ref = subprocess.run(
            [HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=60
        )
        assert messages(ref.stdout + ref.stderr) == [
            f"WARNING config : {w}" for w in state.warnings
        ]
    fe = config.proxy("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
    assert fe is not None and fe.http is not None
    deny = _apply(fe, request(b"GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n"))
    assert deny is not None and deny.status == 403
    old = HttpTxn(
        http_req=request(b"GET /a HTTP/1.1\r\nHost: www.OLD.example.com\r\n\r\n").http_req
    )
    assert _apply(fe, old) is None
    moved = fe.http.redirect[0].run(old)
    assert moved is not None and b"location: http://www.example.com/\r\n" in moved.data
    beta = request(b"GET /p?q=1 HTTP/1.1\r\nHost: a\r\nCookie: session=beta-7\r\n\r\n")
    first = next(r for r in (rule.run(beta) for rule in fe.http.redirect) if r is not None)
    assert first.status == 302
    assert b"location: https://beta.example.com/p?q=1\r\n" in first.data
    be = config.proxy("1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f:0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
    assert be is not None and be.http is not None and be.http.http_reuse == "safe"
    assert be.http.forwardfor is not None
