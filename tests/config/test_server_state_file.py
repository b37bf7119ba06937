"""`server-state-file` / `load-server-state-from-file`: what a reload restores and the warnings
HAProxy prints while restoring (`-c` included), compared with the local HAProxy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.configtext import model
from nsproxy.config.server_states import Restored, parse, restore
from sample.haproxy_ref import HAPROXY

HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port"
)


def line(srv: str, sid: int, op: int, admin: int, uweight: int, iweight: int) -> str:
    return (
        f"3 b {sid} {srv} 127.0.0.1 {op} {admin} {uweight} {iweight} 30 6 3 4 6 0 0 0 - "
        f"170{sid:02d} - 0 0 - - 0"
    )


STATE = "\n".join(
    [
        "1",
        HEADER,
        line("s1", 1, 0, 0, 1, 1),  # was DOWN
        line("s2", 2, 2, 1, 1, 1),  # forced maintenance (disable server)
        line("s3", 3, 2, 8, 3, 7),  # forced drain, weight 3 set at runtime
        line("s4", 4, 2, 0, 9, 2),  # its weight changed in the configuration since
        line("s5", 5, 0, 4, 1, 1),  # was disabled in the configuration, is no more
        line("gone", 9, 0, 0, 1, 1),  # no longer in the configuration
    ]
)

CONFIG = """global
    server-state-file {state}
    stats socket {sock}
defaults
    timeout client 1s
    timeout server 1s
    timeout connect 1s
    load-server-state-from-file global
frontend f
    bind 127.0.0.1:17001
    default_backend b
backend b
    server s1 127.0.0.1:17011 check inter 60s
    server s2 127.0.0.1:17012 check inter 60s
    server s3 127.0.0.1:17013 weight 7
    server s4 127.0.0.1:17014 weight 5 check inter 60s
    server s5 127.0.0.1:17015 check inter 60s
    server s6 127.0.0.1:17016 backup check inter 60s
"""


def test_restore_follows_haproxys_rules() -> None:
    px = model(CONFIG.format(state="/nonexistent", sock="/tmp/x.sock")).proxy("b")
    lines = parse(STATE)
    assert px is not None and lines is not None
    states, warnings = restore(px, lines)
    assert states == [
        Restored("s1", False, False, False, 1, 17001),
        Restored("s2", True, True, False, 1, 17002),
        Restored("s3", True, False, True, 3, 17003),
        Restored("s4", True, False, False, 5, 17004),
        Restored("s5", False, False, False, 1, 17005),
        Restored("s6", True, False, False, 1),  # not in the file
    ]
    assert warnings == [
        "Server b/s1 is DOWN, changed from server-state after a reload. 4 active and 1 backup "
        "servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "Server b/s3 remains in forced drain mode.",
        "Server b/s5 is DOWN, changed from server-state after a reload. 1 active and 1 backup "
        "servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
    ]


def test_a_file_without_version_1_restores_nothing() -> None:
    assert parse("2\n" + line("s1", 1, 0, 0, 1, 1)) is None
    assert parse("") is None
    assert parse("1\n3 b 1 s1 short\n") == {}


def _messages(text: str) -> list[str]:
    return re.findall(r"^\[(?:ALERT|WARNING)\] +\(\d+\) : (.*)$", text, re.M)


@pytest.mark.parametrize("state", [STATE, "2\n", None])
def test_check_mode_warns_as_haproxy(tmp_path: Path, state: str | None) -> None:
    path = tmp_path / "state"
    if state is not None:
        path.write_text(state + "\n")
    cfg = tmp_path / "h.cfg"
    cfg.write_text(CONFIG.format(state=path, sock=tmp_path / "s.sock"))
    ours = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)], capture_output=True, text=True
    )
    assert ours.returncode == 0
    assert _messages(ours.stderr)  # each case warns
    if HAPROXY is None:
        pytest.skip("haproxy is not installed")
    ref = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert (ours.returncode, ours.stdout, _messages(ours.stderr)) == (
        ref.returncode,
        ref.stdout,
        _messages(ref.stderr),
    )
