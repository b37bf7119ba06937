"""`show/clear/set table` through a real nsproxy stats socket, against HAProxy 2.6's answers."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from haproxy_live import Haproxy
from test_cli_differential import COMMANDS, FE_STORE, normalise

from lab.netlab import Proxy, wait_until

TABLES = """
defaults
    mode tcp
    timeout client 5s
    timeout server 5s
    timeout connect 1s
backend fe
    stick-table type ip size 10k expire 30s FE_STORE
backend b_int
    stick-table type integer size 10 store gpc0,gpc0_rate(1m)
backend b_str
    stick-table type string len 8 size 1m store gpc0,sess_cnt
backend b_bin
    stick-table type binary len 4 size 1g store gpc0
backend b_v6
    stick-table type ipv6 size 100 nopurge store gpc0,http_err_rate(5s)
backend short
    stick-table type ip size 10 expire 1s store gpc0
""".replace("FE_STORE", FE_STORE)
SOCKETS = """
global
    stats socket {dir}/admin.sock level admin
    stats socket {dir}/operator.sock level operator
    stats socket {dir}/user.sock level user
"""


def cli(path: str, text: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(text.encode() + b"\n")
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


class Pair:
    """nsproxy and HAProxy 2.6 with the same tables and one stats socket per level each."""

    def __init__(self, tmp: Path) -> None:
        (tmp / "ns").mkdir()
        (tmp / "hap").mkdir()
        self.ns_dir, self.hap_dir = str(tmp / "ns"), str(tmp / "hap")
        self.ours = Proxy(SOCKETS.format(dir=self.ns_dir) + TABLES)
        try:
            cfg = SOCKETS.format(dir=self.hap_dir).replace(f"{self.hap_dir}/admin.sock", "{SOCK}")
            self.theirs = Haproxy(cfg + TABLES)
        except BaseException:
            self.ours.stop()
            raise

    def both(self, level: str, command: str) -> tuple[str, str]:
        hap_sock = self.theirs.sock if level == "admin" else f"{self.hap_dir}/{level}.sock"
        return cli(f"{self.ns_dir}/{level}.sock", command), cli(hap_sock, command)

    def close(self) -> None:
        self.ours.stop()
        self.theirs.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path)
    try:
        yield p
    finally:
        p.close()


def same(ours: str, theirs: str, command: str) -> None:
    o_norm, o_exps = normalise(ours)
    t_norm, t_exps = normalise(theirs)
    assert o_norm == t_norm, command
    assert len(o_exps) == len(t_exps)
    for a, b in zip(o_exps, t_exps, strict=True):
        assert abs(a - b) <= 1000, command


def test_admin_answers_are_haproxys(pair: Pair) -> None:
    for command in COMMANDS:
        same(*pair.both("admin", command), command)


@pytest.mark.parametrize("level", ["operator", "user"])
def test_lower_levels_answer_like_haproxy(pair: Pair, level: str) -> None:
    pair.both("admin", "set table fe key 10.0.0.1 data.gpc0 3")
    for command in (
        "show table",
        "show table fe",
        "show table fe key 10.0.0.1",
        "show table fe data.gpc0 gt 1",
        "set table fe key 10.0.0.2 data.gpc0 1",
        "clear table fe key 10.0.0.1",
        "clear table fe",
        "show table fe",
    ):
        same(*pair.both(level, command), f"{level}: {command}")
    ours = cli(f"{pair.ns_dir}/admin.sock", "show table fe")
    assert ("key=10.0.0.1" in ours) == (level == "user")


def test_help_lists_the_table_commands_as_haproxy(pair: Pair) -> None:
    ours, theirs = pair.both("admin", "help")
    for word in ("clear table", "set table", "show table"):
        line = next(ln for ln in theirs.splitlines() if ln.startswith(f"  {word} "))
        assert line in ours.splitlines()


def test_entries_expire_on_the_event_loop(pair: Pair) -> None:
    admin = f"{pair.ns_dir}/admin.sock"
    cli(admin, "set table short key 192.0.2.1 data.gpc0 1")
    assert "used:1" in cli(admin, "show table short")
    # nobody reads the table: the entry goes by the table's own expiry timer
    wait_until(
        lambda: "used:0" in cli(f"{pair.ns_dir}/user.sock", "show table short"),
        5,
        "the entry's expiry",
    )


def test_master_cli_forwards_table_commands(tmp_path: Path) -> None:
    master = tmp_path / "master.sock"
    p = Proxy(f"global\n    master-worker\n    stats socket {master} level admin\n" + TABLES)
    try:
        assert cli(str(master), "set table b_int key 7 data.gpc0 9") == "\n"
        out = cli(str(master), "show table b_int")
        assert re.search(r"key=7 use=0 exp=0 gpc0=9 gpc0_rate\(60000\)=0", out), out
        out = cli(str(master), "user; show table b_int")
        assert "# contents not dumped due to insufficient privileges" in out
    finally:
        p.stop()
