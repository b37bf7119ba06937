"""`show/clear/set table`: nsproxy's answers against HAProxy 2.6's for the same commands."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from haproxy_live import Haproxy

from nsproxy.stick.cli import table_command
from nsproxy.stick.table import StickTable

FE_STORE = (
    "store conn_cur,conn_rate(10s),http_req_rate(10s),server_id,gpc0,gpt0 "
    "store bytes_in_cnt,http_req_cnt,server_key"
)
CONFIG = """
global
    stats socket {SOCK} level admin
defaults
    mode http
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
""".replace("FE_STORE", FE_STORE)


def our_tables() -> list[StickTable]:
    return [
        StickTable(
            "fe",
            "ip",
            10240,
            expire_ms=30000,
            store=[
                ("conn_cur", None),
                ("conn_rate", 10000),
                ("http_req_rate", 10000),
                ("server_id", None),
                ("gpc0", None),
                ("gpt0", None),
                ("bytes_in_cnt", None),
                ("http_req_cnt", None),
                ("server_key", None),
            ],
        ),
        StickTable("b_int", "integer", 10, store=[("gpc0", None), ("gpc0_rate", 60000)]),
        StickTable(
            "b_str", "string", 1048576, key_len=8, store=[("gpc0", None), ("sess_cnt", None)]
        ),
        StickTable("b_bin", "binary", 1 << 30, key_len=4, store=[("gpc0", None)]),
        StickTable(
            "b_v6", "ipv6", 100, nopurge=True, store=[("gpc0", None), ("http_err_rate", 5000)]
        ),
    ]


COMMANDS = [
    "show table",
    "set table fe key 10.0.0.2 data.conn_rate 5 data.server_id 3 data.bytes_in_cnt 99999999999",
    "set table fe key 10.0.0.1",
    "set table fe key 10.1",
    "set table fe key 300.1.1.1 data.gpt0 99999999999",
    "set table fe key 1.1.1.1 data.server_id -5 data.gpc0 -1",
    "set table fe key 1.1.1.2 data.gpc0 1 data.gpc0",
    "set table fe key 1.1.1.3 data.server_key 7",
    "show table fe",
    "show table fe data.conn_rate gt 1",
    "show table fe data.gpc0 ge 1 data.server_id lt 0",
    "show table fe key 10.0.0.2",
    "show table fe key 10.0.0.9",
    "show table fe data.foo gt 1",
    "show table fe data.gpc1 gt 1",
    "show table fe data.gpc0 xx 1",
    "show table fe data.gpc0 gt x",
    "show table fe data.gpc0 gt 1 extra",
    "show table fe data.gpc0 eq 0 data.gpc0 eq 0 data.gpc0 eq 0 data.gpc0 eq 0 data.gpc0 eq 0",
    "show table fe foo",
    "show table nope",
    "set table fe key 10.0.0.3 foo 1",
    "set table fe key 10.0.0.3 data.foo 1",
    "set table fe key 10.0.0.3 data.gpc1 1",
    "set table fe key 10.0.0.3 data.gpc0 x",
    "set table fe key",
    "set table fe foo",
    "set table fe data.gpc0 eq 1",
    "clear table",
    "clear table fe foo",
    "clear table fe data.gpc0 gt 5",
    "show table fe",
    "clear table fe key 10.0.0.2",
    "show table fe",
    "set table b_int key 1 data.gpc0_rate 42",
    "set table b_int key 256",
    "set table b_int key 12abc",
    "set table b_int key 4294967296",
    "set table b_int key -1",
    "set table b_int key x",
    "show table b_int",
    "show table b_int key 256",
    "clear table b_int data.gpc0 eq 0",
    "show table b_int",
    "set table b_str key abc=d",
    "set table b_str key abcdefghijkl",
    "set table b_str key ab data.sess_cnt 3",
    "show table b_str",
    "show table b_str key abcdefgh",
    "set table b_bin key 01",
    "show table b_bin key 01",
    "clear table b_bin key 01",
    "show table b_bin",
    "set table b_v6 key ::1 data.http_err_rate 9",
    "set table b_v6 key zz",
    "set table b_v6 key 2001:db8::1",
    "show table b_v6",
    "clear table fe",
    "show table fe",
    "show table",
]

ADDR = re.compile(r"^0x[0-9a-f]+:", re.M)
EXP = re.compile(r" exp=(\d+)")


def normalise(text: str) -> tuple[str, list[int]]:
    exps = [int(x) for x in EXP.findall(text)]
    return EXP.sub(" exp=E", ADDR.sub("0xADDR:", text)), exps


@pytest.fixture
def haproxy() -> Iterator[Haproxy]:
    h = Haproxy(CONFIG)
    try:
        yield h
    finally:
        h.close()


def test_same_answers_as_haproxy(haproxy: Haproxy) -> None:
    tables = our_tables()
    t0 = time.monotonic()
    for cmd in COMMANDS:
        theirs = haproxy.cli(cmd)
        assert theirs.endswith("\n")
        theirs = theirs[:-1]  # the CLI's end-of-answer empty line
        now = int((time.monotonic() - t0) * 1000) + 1000
        words = cmd.split()
        ours = table_command(words[0], words[2:], tables, now)
        t_norm, t_exps = normalise(theirs)
        o_norm, o_exps = normalise(ours)
        assert o_norm == t_norm, cmd
        assert len(o_exps) == len(t_exps)
        for a, b in zip(o_exps, t_exps, strict=True):
            assert abs(a - b) <= 500, cmd


def test_rate_set_then_faded_like_haproxy(haproxy: Haproxy) -> None:
    """A rate set to V reads V for one period then fades linearly to 0 over the next."""
    tables = our_tables()
    t_set0 = time.monotonic()
    haproxy.cli("set table b_v6 key ::1 data.http_err_rate 1000")
    t_set1 = time.monotonic()
    table_command("set", ["b_v6", "key", "::1", "data.http_err_rate", "1000"], tables, 1000)
    ours_at = {}
    # read HAProxy at a few points of the second period and check ours brackets it
    for delay in (5.6, 7.0):
        while time.monotonic() - t_set0 < delay:
            time.sleep(0.05)
        r0 = time.monotonic()
        line = haproxy.cli("show table b_v6 key ::1")
        r1 = time.monotonic()
        theirs = int(re.search(r"http_err_rate\(5000\)=(\d+)", line).group(1))  # type: ignore[union-attr]
        lo_ms = int((r1 - t_set0) * 1000) + 1000  # latest possible elapsed: smallest rate
        hi_ms = int((r0 - t_set1) * 1000) + 1000
        entry = tables[4].lookup(tables[4].make_key(b"\0" * 15 + b"\1"))
        assert entry is not None
        lo = tables[4].get(entry, "http_err_rate", lo_ms + 2)
        hi = tables[4].get(entry, "http_err_rate", hi_ms - 2)
        assert isinstance(lo, int) and isinstance(hi, int)
        ours_at[delay] = (lo, theirs, hi)
        assert lo <= theirs <= hi, ours_at
        assert 0 < theirs < 1000
