"""Runtime API answers byte for byte against HAProxy 2.6 on the same configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.netlab import Lab, cli, free_port, tcp_defaults


def _config(sock: str, port: int) -> str:
    return (
        f"global\n  stats socket {sock} level admin\n"
        + tcp_defaults(tcplog=False)
        + f"\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n"
        "backend be\n  server s1 127.0.0.1:7000 weight 10\n  server s2 127.0.0.1:7001\n"
    )


@pytest.fixture
def both(lab: Lab, tmp_path: Path) -> tuple[str, str]:
    """The stats sockets of HAProxy and of nsproxy, same configuration, fresh state."""
    hsock, nsock = str(tmp_path / "h.sock"), str(tmp_path / "n.sock")
    lab.haproxy(_config(hsock, free_port()), hsock)
    lab.proxy(_config(nsock, free_port()))
    return hsock, nsock


def _same(both: tuple[str, str], commands: list[str]) -> None:
    hsock, nsock = both
    for line in commands:
        assert cli(nsock, line) == cli(hsock, line), line


def test_weights_parse_ascii_digits_only(both: tuple[str, str]) -> None:
    """HAProxy's strtol: a Unicode digit is garbage (nsproxy did not answer '²' and took '٣')."""
    weights = ["²", "٣", "1x", "5%x", "0x10", "+5", "300", "-1", "-5%", "50%", "30000%", ""]
    commands = []
    for w in weights:
        commands += [f"set weight be/s1 {w}", "get weight be/s1"]
        commands += [f"set server be/s2 weight {w}", "get weight be/s2"]
    _same(both, commands)
