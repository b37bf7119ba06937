"""Which listeners get the steps that upgrade a TCP stream to HTTP: only those of a TCP
frontend that can choose an HTTP backend (every other listener keeps its analysers)."""

from __future__ import annotations

import asyncio
import os
import tempfile

from nsproxy.config.parser import parse_files
from nsproxy.runtime import http_ana, http_upgrade
from nsproxy.runtime.listener import Listener
from nsproxy.runtime.process import Runtime

HEAD = "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"
UPGRADE_STEPS = {
    http_upgrade.NEXT_REQUEST,
    http_upgrade.UPGRADE,
    http_upgrade.UPGRADED_BACKEND_REQUEST,
}


def _listener(text: str) -> Listener:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.cfg")
        with open(path, "w") as f:
            f.write(HEAD + text)
        config, state = parse_files([path])
    assert config is not None, state.errors
    loop = asyncio.new_event_loop()
    try:
        rt = Runtime(config, loop)
        rt.build()
        return rt.listeners[0]
    finally:
        loop.close()


def test_a_plain_tcp_listener_has_no_analyser() -> None:
    li = _listener("listen a\n  bind 127.0.0.1:1\n  server s 127.0.0.1:9\n")
    assert li.analysers == ()
    assert not li.http and li.an_http == -1


def test_dynamic_switching_among_tcp_backends_gets_no_upgrade_step() -> None:
    li = _listener(
        "frontend a\n  bind 127.0.0.1:1\n  use_backend %[str(b)]\n  default_backend b\n"
        "backend b\n  server s 127.0.0.1:9\n"
    )
    assert not UPGRADE_STEPS & set(li.analysers)
    assert li.an_http == -1


def test_a_tcp_frontend_on_an_http_backend_upgrades() -> None:
    li = _listener(
        "frontend a\n  bind 127.0.0.1:1\n  tcp-request inspect-delay 1s\n"
        "  tcp-request content accept if { req.len gt 0 }\n  default_backend b\n"
        "backend b\n  mode http\n  server s 127.0.0.1:9\n"
    )
    names = [type(a).__name__ for a in li.analysers]
    assert names == [
        "NextRequest",
        "ContentRules",
        "SwitchingRules",
        "Upgrade",
        "UpgradedBackendRequest",
    ]
    assert not li.http  # HTTP only once the backend is chosen
    assert li.an_http == 0  # each later request starts by reading its head


def test_dynamic_switching_with_an_http_backend_upgrades() -> None:
    li = _listener(
        "frontend a\n  bind 127.0.0.1:1\n  use_backend %[str(h)]\n  default_backend b\n"
        "backend b\n  server s 127.0.0.1:9\nbackend h\n  mode http\n  server s 127.0.0.1:9\n"
    )
    assert set(li.analysers) >= UPGRADE_STEPS


def test_an_http_frontend_is_http_from_the_accept() -> None:
    li = _listener(
        "frontend a\n  mode http\n  bind 127.0.0.1:1\n  default_backend b\n"
        "backend b\n  mode http\n  server s 127.0.0.1:9\n"
    )
    assert li.http
    assert li.analysers[li.an_http] is http_ana.WAIT_REQUEST
    assert not UPGRADE_STEPS & set(li.analysers)
