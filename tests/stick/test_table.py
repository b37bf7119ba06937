"""Stick table behaviour: keys, eviction order, expiry, references and counter events."""

from __future__ import annotations

import http.client
import re

import pytest
from haproxy_live import Haproxy, free_port

from lab.netlab import wait_until
from nsproxy.stick.cli import entry_line, table_command
from nsproxy.stick.table import StickTable


def ip(t: StickTable, s: str) -> int:
    k = t.make_key(s)
    assert isinstance(k, int)
    return k


def _three(t: StickTable) -> list:  # type: ignore[type-arg]
    out = [t.get_entry(ip(t, f"10.0.0.{i}"), i) for i in (1, 2, 3)]
    assert all(out)
    return out


def test_full_table_evicts_least_recently_touched() -> None:
    t = StickTable("t", "ip", 3, store=[("gpc0", None)])
    a, b, c = _three(t)
    for e in (a, b, c):
        t.release(e)
    t.touch_local(a, 5)
    assert t.get_entry(ip(t, "10.0.0.4"), 6) is not None
    assert t.lookup(b.key) is None
    assert {e.key for e in t} == {a.key, c.key, ip(t, "10.0.0.4")}


def test_full_table_skips_entries_in_use() -> None:
    t = StickTable("t", "ip", 3, store=[("gpc0", None)])
    a, b, c = _three(t)
    t.release(b)
    t.release(c)
    assert t.get_entry(ip(t, "10.0.0.4"), 6) is not None
    assert t.lookup(a.key) is a and t.lookup(b.key) is None


def test_full_table_gives_up_after_twice_the_batch_visits() -> None:
    """HAProxy visits at most 2 * ((size >> 8) + 1) queue entries: one in use and one
    re-queued are enough to refuse a new entry in a 3-entry table."""
    t = StickTable("t", "ip", 3, store=[("gpc0", None)])
    _, b, c = _three(t)
    t.release(b)
    t.release(c)
    t.touch_local(b, 5)
    assert t.get_entry(ip(t, "10.0.0.4"), 6) is None
    assert t.get_entry(ip(t, "10.0.0.4"), 7) is not None  # b was re-queued: c goes now
    assert t.lookup(c.key) is None


def test_nopurge_refuses_and_all_in_use_refuses() -> None:
    t = StickTable("t", "integer", 2, nopurge=True)
    assert t.get_entry(1, 0) and t.get_entry(2, 0)
    assert t.get_entry(3, 0) is None
    u = StickTable("u", "integer", 2)
    assert u.get_entry(1, 0) and u.get_entry(2, 0)  # both kept referenced
    assert u.get_entry(3, 0) is None
    assert table_command("set", ["u", "key", "3"], [u], 0) == "Unable to allocate a new entry\n"


def test_expiry_frees_unused_and_keeps_used_and_touched() -> None:
    t = StickTable("t", "ip", 100, expire_ms=1000, store=[("gpc0", None)])
    a = t.get_entry(ip(t, "1.1.1.1"), 0)
    b = t.get_entry(ip(t, "1.1.1.2"), 0)
    c = t.get_entry(ip(t, "1.1.1.3"), 0)
    assert a and b and c
    t.release(b)
    t.release(c)
    t.touch_local(c, 800)
    assert t.expire_entries(999) == 1000
    assert t.expire_entries(1000) == 1800  # a in use, b gone, c re-queued at its new date
    assert [e.key for e in t] == [a.key, c.key]
    assert t.expire_entries(1800) is None
    assert [e.key for e in t] == [a.key]
    t.stop_counters(a, 1801)  # the tracker leaves after expiry: entry freed at once
    assert len(t) == 0
    u = StickTable("u", "ip", 100, expire_ms=1000, store=[("conn_cur", None)])
    e = u.get_entry(ip(u, "1.1.1.1"), 0)
    assert e is not None
    u.stop_counters(e, 1801)  # conn_cur changed: touched, so it lives one more period
    assert len(u) == 1 and e.expire == 2801


def test_tracking_events_and_show_line() -> None:
    t = StickTable(
        "t",
        "ip",
        10,
        expire_ms=30000,
        store=[
            ("conn_cnt", None),
            ("conn_cur", None),
            ("conn_rate", 10000),
            ("http_req_cnt", None),
            ("http_req_rate", 10000),
            ("bytes_in_cnt", None),
            ("bytes_out_rate", 1000),
            ("gpc0", None),
            ("gpc0_rate", 1000),
            ("gpt0", None),
            ("server_id", None),
            ("server_key", None),
        ],
    )
    ts = t.get_entry(ip(t, "192.0.2.7"), 1000)
    assert ts is not None
    t.start_counters(ts, 1000)
    t.inc_http_req(ts, 1000)
    t.inc_http_req(ts, 1200)
    t.add_bytes_in(ts, 5000, 1200)
    t.add_bytes_out(ts, 300, 1200)
    assert t.inc_gpc0(ts, 1300) == 1
    t.set_gpt0(ts, 7, 1300)
    t.set_server(ts, 2, "s2", 1300)
    line = entry_line(t, ts, 1500)
    assert re.sub(r"^0x[0-9a-f]+", "0xA", line) == (
        "0xA: key=192.0.2.7 use=1 exp=29800 server_id=2 gpt0=7 gpc0=1 gpc0_rate(1000)=1 "
        "conn_cnt=1 conn_rate(10000)=1 conn_cur=1 http_req_cnt=2 http_req_rate(10000)=2 "
        "bytes_in_cnt=5000 bytes_out_rate(1000)=300 server_key=s2\n"
    )
    t.stop_counters(ts, 2000)
    assert ts.ref_cnt == 0 and t.get(ts, "conn_cur", 2000) == 0


def test_string_and_binary_keys() -> None:
    s = StickTable("s", "string", 10, key_len=4)
    assert s.key_size == 5 and s.make_key("abcdefg") == b"abcd"
    d = StickTable("d", "string", 10)
    assert d.make_key("x" * 40) == b"x" * 31
    b = StickTable("b", "binary", 10, key_len=4)
    assert b.make_key(b"\1") == b"\1\0\0\0"


HTTP_CONFIG = """
global
    stats socket {SOCK} level admin
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:PORT
    stick-table type ip size 10k expire 30s store conn_cnt,conn_cur,http_req_cnt,http_req_rate(10s)
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 5 }
    http-request return status 200
"""


@pytest.mark.parametrize("burst", [8])
def test_track_and_deny_burst_like_haproxy(burst: int) -> None:
    """Same deny decisions and the same counters as HAProxy for a burst of requests."""
    port = free_port()
    h = Haproxy(HTTP_CONFIG.replace("PORT", str(port)))
    try:
        theirs = []
        for _ in range(burst):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/", headers={"Connection": "close"})
            theirs.append(conn.getresponse().status)
            conn.close()

        # HAProxy may still be closing the last connection when its client has the answer
        def closed() -> str | None:
            out = h.cli("show table fe")
            return out if "conn_cur=0" in out else None

        shown = wait_until(closed, 10, "HAProxy's last connection closed")
    finally:
        h.close()
    t = StickTable(
        "fe",
        "ip",
        10240,
        expire_ms=30000,
        store=[
            ("conn_cnt", None),
            ("conn_cur", None),
            ("http_req_cnt", None),
            ("http_req_rate", 10000),
        ],
    )
    ours = []
    for i in range(burst):
        now = 1000 + i * 3
        ts = t.get_entry(ip(t, "127.0.0.1"), now)
        assert ts is not None
        t.start_counters(ts, now)
        t.inc_http_req(ts, now)
        rate = t.get(ts, "http_req_rate", now)
        assert isinstance(rate, int)
        ours.append(429 if rate > 5 else 200)
        t.stop_counters(ts, now)
    assert ours == theirs == [200] * 5 + [429] * (burst - 5)
    mine = table_command("show", ["fe"], [t], 1000 + burst * 3)
    norm = [re.sub(r"0x[0-9a-f]+|exp=\d+", "X", x) for x in (shown[:-1], mine)]
    assert norm[0] == norm[1]


def test_cleared_entries_do_not_accumulate_in_the_queue() -> None:
    t = StickTable("t", "integer", 1000)
    for i in range(5000):
        e = t.get_entry(i % 7, i)
        assert e is not None
        t.release(e)
        assert t.kill(e)
    assert len(t) == 0
    assert t.queue_length() < 200


def test_peer_update_into_full_table_evicts_first_like_haproxy() -> None:
    from nsproxy.stick import peers_proto as pp
    from nsproxy.stick.peers_sync import apply_update, table_def

    t = StickTable("t", "integer", 2, nopurge=True, store=[("gpc0", None)])
    for k in (1, 2):
        e = t.get_entry(k, 0)
        assert e is not None
        t.release(e)
    td = table_def(t, 1)
    assert apply_update(t, td, pp.Update(1, None, 1, (9,)), 10) is None  # even key 1 exists
    u = StickTable("u", "integer", 2, store=[("gpc0", None)])
    for k in (1, 2):
        e = u.get_entry(k, k)
        assert e is not None
        u.release(e)
    got = apply_update(u, td, pp.Update(1, None, 2, (9,)), 10)
    assert got is not None and u.get(got, "gpc0", 10) == 9
    assert u.lookup(1) is None and len(u) == 1
