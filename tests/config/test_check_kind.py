"""Which check a backend runs, the last of `option tcp-check` / `option ssl-hello-chk` /
`option httpchk`; `tcp-check` rules of a section replace inherited ones and are unused (with
HAProxy's warning) without `option tcp-check`. Compared with the local HAProxy's -c."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.configtext import model
from nsproxy.config.keywords.sslhellochk import SSL_HELLO_RULES
from nsproxy.config.model import TcpCheckRule
from sample.haproxy_ref import HAPROXY

CONFIG = """defaults
    timeout client 1s
    timeout server 1s
    timeout connect 1s
backend unused
    tcp-check connect
    tcp-check send hello
    server s 127.0.0.1:1 check
backend hello_then_rules
    option ssl-hello-chk
    tcp-check send hello
    server s 127.0.0.1:1 check
backend rules_hello_then_tcp
    tcp-check send hello
    option ssl-hello-chk
    option tcp-check
    server s 127.0.0.1:1 check
backend httpchk_then_hello
    option httpchk GET /healthz
    http-check expect status 200
    option ssl-hello-chk
    server s 127.0.0.1:1 check
listen l
    bind 127.0.0.1:7011
    tcp-check send hello
    server s 127.0.0.1:1 check
defaults
    timeout client 1s
    timeout server 1s
    timeout connect 1s
    option tcp-check
    tcp-check send x
backend inherits
    server s 127.0.0.1:1 check
backend own_rules
    tcp-check send y
    server s 127.0.0.1:1 check
backend hello_over_inherited
    option ssl-hello-chk
    server s 127.0.0.1:1 check
"""


def test_the_check_each_backend_runs() -> None:
    c = model(CONFIG)

    def check(name: str) -> tuple[TcpCheckRule, ...]:
        px = c.proxy(name)
        assert px is not None
        return px.tcp_check

    hello = TcpCheckRule("send", "hello")
    assert check("unused") == () and check("l") == ()
    assert check("hello_then_rules") == SSL_HELLO_RULES
    assert check("rules_hello_then_tcp") == (hello,)
    assert check("httpchk_then_hello") == SSL_HELLO_RULES
    px = c.proxy("httpchk_then_hello")
    assert px is not None and px.http_check is None
    assert check("inherits") == (TcpCheckRule("send", "x"),)
    assert check("own_rules") == (TcpCheckRule("send", "y"),)
    assert check("hello_over_inherited") == SSL_HELLO_RULES


def _messages(text: str) -> list[str]:
    return re.findall(r"^\[(?:ALERT|WARNING)\] +\(\d+\) : (.*)$", text, re.M)


def test_warnings_as_haproxy(tmp_path: Path) -> None:
    cfg = tmp_path / "c.cfg"
    cfg.write_text(CONFIG)
    ours = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)], capture_output=True, text=True
    )
    assert ours.returncode == 0
    assert len(_messages(ours.stderr)) == 3
    if HAPROXY is None:
        pytest.skip("haproxy is not installed")
    ref = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert (ours.returncode, _messages(ours.stderr)) == (ref.returncode, _messages(ref.stderr))
