"""PeerSession against a live HAProxy 2.6: both directions, both roles, and a reload takeover."""

from __future__ import annotations

import re
import select
import socket
import subprocess
import time
from collections.abc import Callable

from haproxy_live import Haproxy, free_port, wait_for

from nsproxy.stick.cli import format_key
from nsproxy.stick.peers_session import ESTABLISHED, Events, PeerSession
from nsproxy.stick.table import StickTable

CONFIG = """
global
    stats socket {SOCK} level admin
    localpeer hap
defaults
    timeout client 5s
    timeout server 5s
    timeout connect 1s
peers mesh
    peer hap 127.0.0.1:HAP_PORT
    peer py 127.0.0.1:PY_PORT
backend t
    stick-table type ip size 100 expire 60s peers mesh store server_id,gpc0,conn_rate(10s)
"""


def ms() -> int:
    return int(time.monotonic() * 1000)


def ours() -> StickTable:
    return StickTable(
        "t",
        "ip",
        100,
        expire_ms=60000,
        store=[("server_id", None), ("gpc0", None), ("conn_rate", 10000)],
    )


def pump(
    sock: socket.socket, s: PeerSession, until: Callable[[Events], bool], timeout: float = 8.0
) -> Events:
    """Moves bytes between the socket and the session until `until(events)` holds."""
    total = Events()
    deadline = time.monotonic() + timeout
    while True:
        out = s.outgoing()
        if out:
            sock.sendall(out)
        if until(total):
            return total
        if time.monotonic() > deadline:
            raise TimeoutError("peer session condition")
        r, _, _ = select.select([sock], [], [], 0.05)
        ev = s.receive(sock.recv(65536), ms()) if r else s.tick(ms())
        total.learnt += ev.learnt
        for f in ("resync_requested", "resync_finished", "resync_partial", "established"):
            setattr(total, f, getattr(total, f) or getattr(ev, f))
        total.closed = total.closed or ev.closed
        if total.closed:
            raise ConnectionError(total.closed)


def gpc0_in_haproxy(h: Haproxy, key: str) -> Callable[[], int | None]:
    def get() -> int | None:
        m = re.search(r" gpc0=(\d+)", h.cli(f"show table t key {key}"))
        return int(m.group(1)) if m else None

    return get


def config(hap: int, py: int) -> str:
    return CONFIG.replace("HAP_PORT", str(hap)).replace("PY_PORT", str(py))


def test_haproxy_connects_we_teach_learn_and_push() -> None:
    hap_port, py_port = free_port(), free_port()
    lst = socket.create_server(("127.0.0.1", py_port))
    lst.settimeout(15)
    table = ours()
    pre = table.get_entry(table.make_key("198.51.100.1"), ms())
    assert pre is not None
    table.set(pre, "gpc0", 11, ms())
    table.touch_local(pre, ms(), decref=True)
    h = Haproxy(config(hap_port, py_port))
    try:
        conn, _ = lst.accept()
        with conn:
            s = PeerSession.accept("py", ("hap", "py"), {"t": table}, ms())
            # HAProxy asks for a full resync: the session teaches our entry
            ev = pump(conn, s, lambda e: e.resync_requested)
            assert s.state == ESTABLISHED and s.remote_name == "hap"
            assert wait_for(gpc0_in_haproxy(h, "198.51.100.1"), what="taught entry") == 11
            # HAProxy's own update reaches our table
            h.cli("set table t key 192.0.2.9 data.gpc0 4 data.server_id 2")
            ev = pump(conn, s, lambda e: bool(e.learnt))
            learnt = table.lookup(table.make_key("192.0.2.9"))
            assert learnt is not None and ev.learnt[0][1] is learnt
            assert table.get(learnt, "gpc0", ms()) == 4
            assert table.get(learnt, "server_id", ms()) == 2
            # a local update is pushed on the fly
            table.set(pre, "gpc0", 12, ms())
            table.touch_local(pre, ms())
            assert s.push(ms()) == 1
            pump(conn, s, lambda e: True)
            assert wait_for(
                lambda: gpc0_in_haproxy(h, "198.51.100.1")() == 12, what="pushed update"
            )
            # heartbeats keep the session up past HAProxy's 5 s silence limit
            end = time.monotonic() + 6
            pump(conn, s, lambda e: time.monotonic() > end, timeout=10)
            assert s.state == ESTABLISHED
    finally:
        h.close()
        lst.close()


def test_we_connect_and_request_a_resync() -> None:
    hap_port, py_port = free_port(), free_port()
    h = Haproxy(config(hap_port, py_port))
    try:
        h.cli("set table t key 203.0.113.5 data.gpc0 21")
        table = ours()
        sock = socket.create_connection(("127.0.0.1", hap_port), timeout=5)
        with sock:
            s = PeerSession.connect("py", "hap", {"t": table}, ms())
            pump(sock, s, lambda e: e.established)
            s.request_resync(ms())
            ev = pump(sock, s, lambda e: e.resync_finished)
            # (HAProxy may push it on the fly first, then again in the resync)
            assert {format_key(table, ts.key) for _, ts in ev.learnt} == {"203.0.113.5"}
            ts = table.lookup(table.make_key("203.0.113.5"))
            assert ts is not None and table.get(ts, "gpc0", ms()) == 21
    finally:
        h.close()


def test_hello_refused_for_an_unknown_peer() -> None:
    hap_port, py_port = free_port(), free_port()
    h = Haproxy(config(hap_port, py_port))
    try:
        sock = socket.create_connection(("127.0.0.1", hap_port), timeout=5)
        with sock:
            s = PeerSession.connect("stranger", "hap", {"t": ours()}, ms())
            try:
                pump(sock, s, lambda e: False, timeout=5)
            except ConnectionError as exc:
                assert str(exc) == "status 504"
            else:
                raise AssertionError("session not refused")
    finally:
        h.close()


def test_reload_old_process_teaches_a_new_haproxy() -> None:
    """The local-peer resync of a reload: the old process connects to the new one's local
    peer address under the same name and pushes its whole table; HAProxy 2.6, starting,
    learns it and confirms."""
    hap_port, py_port = free_port(), free_port()
    table = ours()
    for i in range(1, 4):
        e = table.get_entry(table.make_key(f"10.9.0.{i}"), ms())
        assert e is not None
        table.set(e, "gpc0", i * 10, ms())
        table.touch_local(e, ms(), decref=True)
    # `-sf PID` makes HAProxy a reloaded process that waits for its predecessor's lesson;
    # the predecessor here is a process of ours that the soft-stop signal simply ends
    old = subprocess.Popen(["sleep", "60"])
    h = Haproxy(config(hap_port, py_port), ("-sf", str(old.pid)))
    try:
        sock = socket.create_connection(("127.0.0.1", hap_port), timeout=5)
        with sock:
            s = PeerSession.connect("hap", "hap", {"t": table}, ms())
            pump(sock, s, lambda e: e.established)
            assert s.teach_all(ms()) == 3
            pump(sock, s, lambda e: not s.teaching)  # HAProxy confirmed the resync
        got = {f"10.9.0.{i}": gpc0_in_haproxy(h, f"10.9.0.{i}")() for i in range(1, 4)}
        assert got == {"10.9.0.1": 10, "10.9.0.2": 20, "10.9.0.3": 30}
        # and it counts the resync as done by a local peer (PEERS_F_RESYNC_LOCALFINISHED)
        flags = re.search(r"id=mesh disabled=0 flags=(0x[0-9a-f]+)", h.cli("show peers"))
        assert flags is not None and int(flags.group(1), 16) & 0x101 == 0x101
    finally:
        h.close()
        if old.poll() is None:
            old.kill()
        old.wait(5)
