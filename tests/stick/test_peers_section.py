"""PeersSection scheduling on a manual clock (real loopback sockets, real event loop for I/O):
HAProxy 2.6's 5 s reconnect delay, the resync phases and the stop held for a lesson."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator

import pytest

from lab.clock import ManualClock
from nsproxy.config.model_stick import PeerCfg, PeersCfg
from nsproxy.config.where import Where
from nsproxy.runtime.peers import PeersSection
from nsproxy.stick.table import StickTable

HERE = Where("test.cfg", 1)


class Holder:
    def __init__(self) -> None:
        self.holds = 0

    def hold_stop(self) -> None:
        self.holds += 1

    def release_stop(self) -> None:
        self.holds -= 1


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    try:
        yield lp
    finally:
        lp.close()


def settle(
    loop: asyncio.AbstractEventLoop, clock: ManualClock, cond: Callable[[], bool], what: str
) -> None:
    """Runs the loop's I/O and the timers already due (the manual clock stands still) until
    `cond` holds; raises if it does not."""
    for _ in range(200):
        clock.advance(0)
        if cond():
            return
        loop.run_until_complete(asyncio.sleep(0.01))
    raise TimeoutError(what)


def section(
    loop: asyncio.AbstractEventLoop,
    clock: ManualClock,
    remote_port: int | None,
    old_processes: int = 0,
) -> tuple[PeersSection, Holder]:
    peers: list[PeerCfg] = [PeerCfg(HERE, "me", None, None, local=True)]
    if remote_port is not None:
        peers.append(PeerCfg(HERE, "them", "127.0.0.1", remote_port))
    cfg = PeersCfg(HERE, "mesh", tuple(peers))
    table = StickTable("t", "ip", 100, store=[("gpc0", None)], peers="mesh")
    holder = Holder()
    return PeersSection(cfg, [table], loop, clock, holder, old_processes), holder


def test_a_peer_that_hangs_up_is_called_again_5s_after_the_last_try(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock = ManualClock()
    lst = socket.create_server(("127.0.0.1", 0))
    lst.setblocking(False)
    accepted: list[socket.socket] = []

    def hang_up() -> None:
        c, _ = lst.accept()
        accepted.append(c)
        c.close()

    loop.add_reader(lst.fileno(), hang_up)
    s, _ = section(loop, clock, lst.getsockname()[1])
    try:
        s.start()
        clock.advance(0)
        settle(loop, clock, lambda: len(accepted) == 1 and s.remotes[0].link is None, "first try")
        clock.advance(4.99)
        settle(loop, clock, lambda: s.remotes[0].link is None, "no second try yet")
        assert len(accepted) == 1
        clock.advance(0.02)
        settle(loop, clock, lambda: len(accepted) == 2, "the second try")
    finally:
        s.close()
        loop.remove_reader(lst.fileno())
        lst.close()


def test_a_refusing_peer_is_not_called_again(loop: asyncio.AbstractEventLoop) -> None:
    """A 50x status (here: unknown peer name) is never retried, as in HAProxy 2.6."""
    clock = ManualClock()
    lst = socket.create_server(("127.0.0.1", 0))
    lst.setblocking(False)
    accepted: list[socket.socket] = []

    def refuse() -> None:
        c, _ = lst.accept()
        accepted.append(c)
        c.sendall(b"504\n")
        c.close()

    loop.add_reader(lst.fileno(), refuse)
    s, _ = section(loop, clock, lst.getsockname()[1])
    try:
        s.start()
        clock.advance(0)
        settle(loop, clock, lambda: s.remotes[0].status == 504, "the refusal")
        clock.advance(30)
        settle(loop, clock, lambda: s.remotes[0].link is None, "idle")
        assert len(accepted) == 1
    finally:
        s.close()
        loop.remove_reader(lst.fileno())
        lst.close()


@pytest.mark.parametrize(("old", "done_after"), [(0, 5.0), (1, 10.0)])
def test_resync_phases_end_by_timeout(
    loop: asyncio.AbstractEventLoop, old: int, done_after: float
) -> None:
    """Alone, a process waits 5 s for a predecessor's lesson (only when it replaced one),
    then 5 s for a remote peer's, then considers itself up to date."""
    clock = ManualClock()
    s, _ = section(loop, clock, None, old_processes=old)
    s.start()
    try:
        clock.advance(done_after - 0.01)
        assert not s.up_to_date
        clock.advance(0.02)
        assert s.up_to_date
    finally:
        s.close()


def test_soft_stop_without_a_successor_lets_the_process_go(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Nobody listens on the local peer's address: the lesson is impossible, the hold ends."""
    clock = ManualClock()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = PeersCfg(HERE, "mesh", (PeerCfg(HERE, "me", "127.0.0.1", port, local=True),))
    table = StickTable("t", "ip", 100, store=[("gpc0", None)], peers="mesh")
    holder = Holder()
    s = PeersSection(cfg, [table], loop, clock, holder)
    s.start()
    try:
        s.soft_stop()
        assert holder.holds == 1
        clock.advance(0)
        settle(loop, clock, lambda: holder.holds == 0, "the hold released")
    finally:
        s.close()


def test_a_silent_peer_is_dropped_after_5s_and_called_again(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """A peer that accepts the connection but never answers the hello (here: a listener
    that never accepts) is given 5 s, then a new session starts."""
    clock = ManualClock()
    lst = socket.create_server(("127.0.0.1", 0), backlog=8)
    s, _ = section(loop, clock, lst.getsockname()[1])
    try:
        s.start()
        ps = s.remotes[0]
        settle(loop, clock, lambda: ps.link is not None and ps.link.connected, "connected")
        first = ps.link
        clock.advance(4.99)
        settle(loop, clock, lambda: ps.link is first, "still waiting")
        clock.advance(0.02)
        settle(loop, clock, lambda: ps.link not in (None, first), "a new session")
        assert first is not None and first.closed
    finally:
        s.close()
        lst.close()
