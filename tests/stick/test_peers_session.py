"""PeerSession without sockets: two nsproxy processes, timers on an injected clock, errors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nsproxy.stick import peers_proto as pp
from nsproxy.stick.peers_session import CLOSED, ESTABLISHED, Events, PeerSession
from nsproxy.stick.table import StickTable


def table() -> StickTable:
    return StickTable(
        "t",
        "ip",
        100,
        expire_ms=60000,
        store=[("gpc0", None), ("http_req_rate", 10000), ("conn_cur", None)],
    )


def relay(a: PeerSession, b: PeerSession, now: int) -> tuple[Events, Events]:
    """Delivers bytes both ways until both are quiet; the events each side saw."""
    ea, eb = Events(), Events()
    for _ in range(20):
        x, y = a.outgoing(), b.outgoing()
        if not x and not y:
            break
        for data, dst, ev in ((x, b, eb), (y, a, ea)):
            if data:
                e = dst.receive(data, now)
                ev.learnt += e.learnt
                ev.resync_finished |= e.resync_finished
                ev.resync_requested |= e.resync_requested
                ev.established |= e.established
                ev.closed = ev.closed or e.closed
    return ea, eb


def test_reload_new_process_takes_the_old_ones_table() -> None:
    old_t, new_t = table(), table()
    for i in range(50):
        e = old_t.get_entry(0x0A000000 + i, 1000)
        assert e is not None
        old_t.set(e, "gpc0", i, 1000)
        old_t.inc_http_req(e, 1000)
        old_t.release(e)
    old = PeerSession.connect("lb1", "lb1", {"t": old_t}, 2000, pid=1)
    new = PeerSession.accept("lb1", ("lb1", "lb2"), {"t": new_t}, 2000)
    relay(old, new, 2000)
    assert old.state == new.state == ESTABLISHED
    assert old.teach_all(2000) == 50
    _, ev_new = relay(old, new, 2000)
    assert ev_new.resync_finished and len(ev_new.learnt) == 50
    assert not old.teaching  # confirmed
    assert len(new_t) == 50
    for e in new_t:
        assert new_t.get(e, "gpc0", 2500) == e.key - 0x0A000000
        assert new_t.get(e, "http_req_rate", 2500) == 1
        assert e.expire == 1000 + 60000  # a lesson keeps the teacher's dates


def test_a_lesson_keeps_expiry_dates_live_pushes_refresh_them() -> None:
    """Lessons carry each entry's remaining time (HAProxy 2.6's timed updates); a live push
    is untimed: the receiver gives the entry its table's full `expire`."""
    old_t, new_t = table(), table()
    e = old_t.get_entry(0x0A000001, 1000)  # expires at 61000
    assert e is not None
    old_t.touch_local(e, 1000, decref=True)
    old = PeerSession.connect("lb1", "lb1", {"t": old_t}, 2000, pid=1)
    new = PeerSession.accept("lb1", ("lb1",), {"t": new_t}, 2000)
    relay(old, new, 2000)
    old.teach_all(31000)
    relay(old, new, 31000)
    learnt = new_t.lookup(0x0A000001)
    assert learnt is not None and learnt.expire == 61000
    old_t.touch_local(e, 40000)  # (its own date: 100000)
    old.push(41000)
    relay(old, new, 41000)
    assert learnt.expire == 41000 + 60000


def test_live_updates_flow_and_are_acked() -> None:
    a_t, b_t = table(), table()
    a = PeerSession.connect("a", "b", {"t": a_t}, 0, pid=1)
    b = PeerSession.accept("b", ("a", "b"), {"t": b_t}, 0)
    relay(a, b, 0)
    for i in range(3):
        e = a_t.get_entry(i + 1, 10)
        assert e is not None
        a_t.inc_gpc0(e, 10)
        a_t.release(e)
    assert a.push(10) == 3
    assert a.push(10) == 0
    _, eb = relay(a, b, 10)
    assert len(eb.learnt) == 3
    assert a.shared[0].acked == a_t.update
    e = b_t.lookup(2)
    assert e is not None
    b_t.inc_gpc0(e, 20)  # and the other way round
    assert b.push(20) == 1
    ea, _ = relay(a, b, 20)
    assert [a_t.get(x, "gpc0", 20) for _, x in ea.learnt] == [2]


def test_heartbeat_and_silence_timeout() -> None:
    a = PeerSession.connect("a", "b", {}, 0, pid=1)
    b = PeerSession.accept("b", ("a",), {}, 0)
    relay(a, b, 0)
    assert a.next_deadline() == 3000
    a.tick(3000)
    assert a.outgoing() == pp.control(pp.HEARTBEAT)
    b.receive(pp.control(pp.HEARTBEAT), 3000)
    assert b.tick(7999).closed is None
    assert b.tick(8000).closed == "timeout"
    assert b.state == CLOSED


def test_refusals_and_protocol_errors() -> None:
    b = PeerSession.accept("b", ("a",), {}, 0)
    ev = b.receive(pp.Hello("b", "zz", 1).encode(), 0)
    assert ev.closed == "hello refused (504)" and b.outgoing() == b"504\n"
    b = PeerSession.accept("b", ("a",), {}, 0)
    assert b.receive(pp.Hello("x", "a", 1).encode(), 0).closed == "hello refused (503)"
    a = PeerSession.connect("a", "b", {}, 0, pid=1)
    assert a.receive(b"502\n", 0).closed == "status 502"
    a = PeerSession.connect("a", "b", {}, 0, pid=1)
    a.outgoing()
    ev = a.receive(b"200\n\x07\x00", 0)
    assert ev.closed is not None and ev.closed.startswith("protocol error")
    assert a.outgoing() == pp.error(pp.ERROR_PROTOCOL)


def test_updates_for_unknown_or_mismatched_tables_are_ignored() -> None:
    mine = table()
    b = PeerSession.accept("b", ("a",), {"t": mine}, 0)
    b.receive(pp.Hello("b", "a", 1).encode(), 0)
    other = pp.TableDef(1, "t", "string", 32, (2,))
    u = pp.encode_update(other, pp.Update(1, None, b"k", (5,)))
    ev = b.receive(other.encode() + u, 0)
    assert ev.learnt == [] and len(mine) == 0 and b.state == ESTABLISHED


FRAMES = st.builds(
    lambda t, p: pp.Frame(pp.CLASS_STICKTABLE, t, p).encode(),
    st.integers(0x80, 0x87),
    st.binary(max_size=40),
)


@given(st.lists(st.one_of(st.binary(max_size=64), FRAMES), max_size=8), st.booleans())
def test_any_bytes_after_the_handshake_only_close_the_session(
    chunks: list[bytes], accept: bool
) -> None:
    t = table()
    if accept:
        s = PeerSession.accept("b", ("a",), {"t": t}, 0)
        s.receive(pp.Hello("b", "a", 1).encode(), 0)
    else:
        s = PeerSession.connect("a", "b", {"t": t}, 0, pid=1)
        s.receive(b"200\n", 0)
    s.receive(pp.TableDef(1, "t", "ip", 4, (2, 10, 6), ((10, 1000),), 0).encode(), 0)
    for c in chunks:
        ev = s.receive(c or b"x", 1)
        s.outgoing()
        if ev.closed:
            assert s.state == CLOSED
            break
    assert len(t) <= t.size
