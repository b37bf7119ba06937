"""One log format per proxy, the last of `option httplog`, `option tcplog` and `log-format`:
the model, and HAProxy's warnings (a `defaults` overriding itself, a format without a log
address, `option httplog` falling back in TCP mode) compared with the local HAProxy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.configtext import model
from sample.haproxy_ref import HAPROXY

CONFIG = """global
    log 127.0.0.1 local0
defaults a
    log global
    option httplog
    option tcplog
    log-format "%ci"
    option httplog clf
    option httplog
    timeout client 1s
    timeout server 1s
    timeout connect 1s
frontend fa
    bind 127.0.0.1:7001
    default_backend bb
frontend tcp_after_httplog
    bind 127.0.0.1:7002
    option tcplog
    default_backend bb
frontend lf_after_httplog
    bind 127.0.0.1:7003
    log-format "%ci %b"
    default_backend bb
defaults b
    log-format "%ci"
    log-format "%b"
    option tcplog
    option tcplog
    timeout client 1s
    timeout server 1s
    timeout connect 1s
frontend nolog
    bind 127.0.0.1:7004
    no log
    option httplog
    log-format "%ci"
    default_backend bb
frontend tcplog_then_lf
    bind 127.0.0.1:7005
    log-format "%ci"
    option tcplog
    default_backend bb
backend bb
    server s 127.0.0.1:1
"""


def test_the_last_format_wins() -> None:
    config = model(CONFIG)
    fa, tcp, lf, _, tl = (
        config.proxy(n)
        for n in ("fa", "tcp_after_httplog", "lf_after_httplog", "nolog", "tcplog_then_lf")
    )
    assert fa is not None and fa.http is not None and fa.http.httplog
    assert tcp is not None and tcp.tcplog and not (tcp.http and tcp.http.httplog)
    assert lf is not None and lf.log_format is not None and not (lf.http and lf.http.httplog)
    assert tl is not None and tl.tcplog and tl.log_format is None


def _messages(text: str) -> list[str]:
    return re.findall(r"^\[(?:ALERT|WARNING)\] +\(\d+\) : (.*)$", text, re.M)


def test_warnings_as_haproxy(tmp_path: Path) -> None:
    cfg = tmp_path / "l.cfg"
    cfg.write_text(CONFIG)
    ours = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)], capture_output=True, text=True
    )
    assert ours.returncode == 0
    assert len(_messages(ours.stderr)) == 10
    if HAPROXY is None:
        pytest.skip("haproxy is not installed")
    ref = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert (ours.returncode, ours.stdout, _messages(ours.stderr)) == (
        ref.returncode,
        ref.stdout,
        _messages(ref.stderr),
    )
