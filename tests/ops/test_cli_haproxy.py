"""Runtime API answers byte for byte against HAProxy 2.6 on the same configuration."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.netlab import Lab, cli, free_port, tcp_defaults

LEVELS = ("admin", "operator", "user")


@dataclass
class Side:
    """One of the two processes: its stats sockets by level and its frontend's port."""

    socks: dict[str, str]
    port: int

    def __call__(self, line: str, level: str = "admin") -> bytes:
        return cli(self.socks[level], line)


def _start(lab: Lab, tmp_path: Path, name: str) -> Side:
    socks = {lvl: str(tmp_path / f"{name}-{lvl}.sock") for lvl in LEVELS}
    port = free_port()
    config = (
        "global\n"
        + "".join(f"  stats socket {socks[lvl]} level {lvl}\n" for lvl in LEVELS)
        + tcp_defaults(tcplog=False)
        + f"\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n"
        "backend be\n  server s1 127.0.0.1:7000 weight 10\n  server s2 127.0.0.1:7001\n"
    )
    if name == "haproxy":
        lab.haproxy(config, socks["user"])
    else:
        lab.proxy(config)
    return Side(socks, port)


@pytest.fixture
def both(lab: Lab, tmp_path: Path) -> tuple[Side, Side]:
    """HAProxy and nsproxy on the same configuration, fresh state."""
    return _start(lab, tmp_path, "haproxy"), _start(lab, tmp_path, "nsproxy")


def _same(both: tuple[Side, Side], commands: list[str], level: str = "admin") -> None:
    theirs, ours = both
    for line in commands:
        assert ours(line, level) == theirs(line, level), (level, line)


def _fe_status(side: Side) -> str:
    lines = side("show stat").decode().splitlines()
    header = lines[0][2:].split(",")
    row = next(dict(zip(header, ln.split(","), strict=False)) for ln in lines if ln[:3] == "fe,")
    return row["status"]


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_weights_parse_ascii_digits_only(both: tuple[Side, Side]) -> None:
    """HAProxy's strtol: a Unicode digit is garbage (nsproxy did not answer '²' and took '٣')."""
    weights = ["²", "٣", "1x", "5%x", "0x10", "+5", "300", "-1", "-5%", "50%", "30000%", ""]
    commands = []
    for w in weights:
        commands += [f"set weight be/s1 {w}", "get weight be/s1"]
        commands += [f"set server be/s2 weight {w}", "get weight be/s2"]
    _same(both, commands)


def test_process_commands(both: tuple[Side, Side]) -> None:
    _same(
        both,
        [
            "show backend",
            "show backend x",
            "set timeout",
            "set timeout foo 5",
            "set timeout cli",
            "set timeout cli x",
            "set timeout cli ²",
            "set timeout cli 0",
            "set timeout cli 5m",
            "clear counters",
            "clear counters all",
            "clear counters foo",
            "set maxconn global",
            "set maxconn global 100000000",
            "set maxconn global 50",
            "set maxconn global 0",
            "show env HOME",
            "show env NSPROXY_NO_SUCH_VARIABLE",
        ],
    )
    date = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}"
    for side in both:
        answer = side("show errors").decode()
        assert re.fullmatch(rf"Total events captured on \[{date}\] : 0\n\n", answer)
        assert re.fullmatch(r"2\.6\.\S+\n\n", side("show version").decode())


def test_levels_of_the_new_commands(both: tuple[Side, Side]) -> None:
    commands = [
        "clear counters",
        "clear counters all",
        "set maxconn global 50",
        "set maxconn frontend fe 5",
        "disable frontend fe",
        "enable frontend fe",
        "shutdown frontend fe",
        "set timeout cli 5",
        "show env HOME",
        "show errors fe",
        "show backend",
    ]
    _same(both, [c for c in commands if c != "show errors fe"], "user")
    _same(both, [c for c in commands if c != "show errors fe"], "operator")


def test_frontend_commands(both: tuple[Side, Side]) -> None:
    theirs, ours = both
    _same(
        both,
        [
            "disable frontend",
            "disable frontend nope",
            "disable frontend be",
            "set maxconn frontend",
            "set maxconn frontend fe",
            "set maxconn frontend nope 5",
            "set maxconn frontend fe 50",
            "set maxconn frontend fe x",
            "set maxconn frontend fe 100",
            "disable frontend fe",
            "disable frontend fe",
        ],
    )
    assert _fe_status(ours) == _fe_status(theirs) == "PAUSED"
    _same(both, ["enable frontend fe", "enable frontend fe"])
    assert _fe_status(ours) == _fe_status(theirs) == "OPEN"
    assert not _refused(ours.port)
    _same(
        both,
        [
            "shutdown frontend",
            "shutdown frontend nope",
            "shutdown frontend fe",
            "shutdown frontend fe",
            "disable frontend fe",
            "enable frontend fe",
        ],
    )
    assert _fe_status(ours) == _fe_status(theirs) == "STOP"
    assert _refused(ours.port) and _refused(theirs.port)
