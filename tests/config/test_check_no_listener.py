"""`-c` on a configuration with nothing to listen on: HAProxy's exit(2) and message; a stats
socket or a local peer counts as a listener, a disabled frontend does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sample.haproxy_ref import HAPROXY

HEAD = "defaults\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
BACKEND = "backend b\n server s 127.0.0.1:1\n"
CASES = {
    "backends only": (HEAD + BACKEND, 2),
    "a disabled frontend": (
        HEAD + "frontend f\n bind 127.0.0.1:17302\n disabled\n default_backend b\n" + BACKEND,
        2,
    ),
    "a stats socket": ("global\n stats socket {dir}/s.sock\n" + HEAD + BACKEND, 0),
    "a local peer": (HEAD + BACKEND + "peers p\n peer lb1 127.0.0.1:17301\n", 0),
}


@pytest.mark.parametrize("case", CASES)
def test_no_listener_exits_2_like_haproxy(case: str, tmp_path: Path) -> None:
    text, rc = CASES[case]
    cfg = tmp_path / "c.cfg"
    cfg.write_text(text.format(dir=tmp_path))
    cmd = ["-c", "-L", "lb1", "-f", str(cfg)]
    ours = subprocess.run([sys.executable, "-m", "nsproxy", *cmd], capture_output=True, text=True)
    assert ours.returncode == rc
    assert ("will not start (no listener) => exit(2)." in ours.stdout) == (rc == 2)
    if HAPROXY is None:
        pytest.skip("haproxy is not installed")
    ref = subprocess.run([HAPROXY, *cmd], capture_output=True, text=True)
    assert (ours.returncode, ours.stdout) == (ref.returncode, ref.stdout)
