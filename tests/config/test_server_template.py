"""`server-template` and `dynamic-cookie-key` (the router's dynamic configuration manager)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab.configtext import model
from sample.haproxy_ref import HAPROXY

HEAD = "defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"


def test_template_servers_are_numbered_and_keep_their_options() -> None:
    cfg = model(
        "backend b\n server s1 127.0.0.1:1\n dynamic-cookie-key k\n"
        " server-template _dynamic-pod- 2-4 172.4.0.4:8765 check disabled weight 7\n"
    )
    px = cfg.proxy("b")
    assert px is not None
    assert [s.name for s in px.servers] == [
        "s1",
        "_dynamic-pod-2",
        "_dynamic-pod-3",
        "_dynamic-pod-4",
    ]
    assert [s.puid for s in px.servers] == [1, 2, 3, 4]
    for s in px.servers[1:]:
        assert str(s.addr).startswith("172.4.0.4") and s.disabled and s.check.enabled
        assert s.weight == 7
    one = model("backend b\n server-template p 1 127.0.0.1:80\n").proxy("b")
    assert one is not None and [s.name for s in one.servers] == ["p1"]


def _alerts(cmd: list[str]) -> list[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return [
        ln.split(" : config : ", 1)[1]
        for ln in (res.stdout + res.stderr).splitlines()
        if "[ALERT]" in ln and "Fatal errors" not in ln and "Error(s) found" not in ln
    ]


@pytest.mark.parametrize(
    "line",
    [
        "server-template p",
        "server-template p 3",
        "server-template p 0 127.0.0.1:80",
        "server-template p 3-1 127.0.0.1:80",
        "server-template p x 127.0.0.1:80",
        "server-template p 1-x 127.0.0.1:80",
        "server-template s 1 127.0.0.1:80",
        "server-template p 0-1 127.0.0.1:80",
        "dynamic-cookie-key",
        "dynamic-cookie-key a b",
    ],
)
def test_messages_as_haproxy(line: str, tmp_path: Path) -> None:
    cfg = tmp_path / "t.cfg"
    cfg.write_text(f"{HEAD}backend b\n server s1 127.0.0.1:1\n {line}\n")
    got = _alerts([sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)])
    if HAPROXY is not None:
        assert got == _alerts([HAPROXY, "-c", "-f", str(cfg)])
    if line.startswith("server-template p 0 "):
        assert got == [f"[{cfg}:8] : Wrong server-template number or range arg '0'."]
