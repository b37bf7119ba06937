"""The OpenShift router's rendered configuration (data/openshift-router.cfg and its maps and
crt-list under data/openshift/) loads under `nsproxy -c` as under `haproxy -c`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_http_real_configs import messages

from lab.openshift_router import OPTIONS_CONFIG, install
from nsproxy.config.parser import parse_files
from sample.haproxy_ref import HAPROXY


def _check(cmd: list[str]) -> tuple[int, list[str]]:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return res.returncode, messages(res.stdout + res.stderr)


def test_router_config_loads_like_haproxy(tmp_path: Path) -> None:
    router = install(tmp_path)
    got = _check([sys.executable, "-m", "nsproxy", "-c", "-f", str(router.config)])
    assert got == (0, [])
    if HAPROXY is not None:
        assert _check([HAPROXY, "-c", "-f", str(router.config)]) == got


def test_router_config_with_options_loads_like_haproxy(tmp_path: Path) -> None:
    router = install(tmp_path, config=OPTIONS_CONFIG)
    got = _check([sys.executable, "-m", "nsproxy", "-c", "-f", str(router.config)])
    assert got == (
        0,
        [
            "WARNING config : 'option http-ignore-probes' ignored for frontend 'public_ssl' as it "
            "requires HTTP mode."
        ],
    )
    if HAPROXY is not None:
        assert _check([HAPROXY, "-c", "-f", str(router.config)]) == got


def test_router_model(tmp_path: Path) -> None:
    router = install(tmp_path)
    config, state = parse_files([str(router.config)])
    assert state.errors == [] and state.warnings == [] and config is not None
    fe_sni = config.proxy("fe_sni")
    assert fe_sni is not None and fe_sni.mode == "http"
    (bind,) = fe_sni.binds
    assert bind.accept_proxy and bind.tls is not None and bind.tls.enabled
    assert bind.tls.crt_lists == (str(tmp_path / "conf" / "cert_config.map"),)
    plain = config.proxy("be_http:demo:web-plain")
    assert plain is not None and plain.balance == "random" and plain.random_draws == 2
    passthrough = config.proxy("be_tcp:demo:web-pass")
    assert passthrough is not None and passthrough.mode == "tcp"
    assert (passthrough.balance, passthrough.hash_type) == ("source", "consistent")
    default = config.proxy("openshift_default")
    assert default is not None and default.http is not None and default.http.pretend_keepalive
