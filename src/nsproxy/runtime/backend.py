"""A backend and its servers: server choice, the connection queue, maxconn accounting."""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass, field
from typing import Protocol

from nsproxy.balance import Balancer, make_balancer
from nsproxy.config.model import ProxyCfg, ServerCfg
from nsproxy.netns import Namespace
from nsproxy.ops import stat_counters
from nsproxy.ops.log import Logger
from nsproxy.runtime.objects import Counters


class Waiter(Protocol):
    """A connection waiting in a backend queue for a server slot."""

    @property
    def closed(self) -> bool: ...

    def dequeue(self) -> None: ...


@dataclass(eq=False, slots=True)
class Server:
    """A server of a backend: its configuration, namespace, state and counters."""

    cfg: ServerCfg
    backend: Backend
    netns: Namespace | None
    name: str = ""
    puid: int = 0
    weight: int = 1
    backup: bool = False
    admin_maint: bool = False
    drain: bool = False
    up: bool = True
    nolb: bool = False  # `http-check disable-on-404` saw a 404: no new traffic
    check_status: str = ""
    maxconn: int = 0
    stats: Counters = field(default_factory=Counters)
    last_change: float = 0.0
    deleted: bool = False  # `del server`: its idle connections are not kept

    def __post_init__(self) -> None:
        self.name = self.cfg.name
        self.puid = self.cfg.puid
        self.weight = self.cfg.weight
        self.backup = self.cfg.backup
        self.admin_maint = self.cfg.disabled
        self.maxconn = self.cfg.maxconn

    @property
    def cur_conns(self) -> int:
        return self.stats.cur_conns

    def usable(self) -> bool:
        return (
            self.up
            and not self.admin_maint
            and not self.drain
            and not self.nolb
            and self.weight > 0
        )

    def has_free_slot(self) -> bool:
        return self.maxconn == 0 or self.stats.cur_conns < self.maxconn

    @property
    def status(self) -> str:
        if self.admin_maint:
            return "MAINT"
        if not self.up:
            return "DOWN"
        if self.nolb:
            return "NOLB"
        return "DRAIN" if self.drain else "UP"


@dataclass(eq=False, slots=True)
class Backend:
    """A backend: its servers, the balancer that picks among them, the connection queue.

    Every change of a server's state, whatever its cause (health check, runtime API, a server
    added or removed), goes through `server_changed` or `set_servers`.
    """

    cfg: ProxyCfg
    servers: list[Server] = field(default_factory=list)
    balancer: Balancer | None = None
    stats: Counters = field(default_factory=Counters)
    logger: Logger = field(default_factory=Logger)
    queue: collections.deque[Waiter] = field(default_factory=collections.deque)

    @property
    def name(self) -> str:
        return self.cfg.name

    def server(self, name: str) -> Server | None:
        return next((s for s in self.servers if s.name == name), None)

    # -- server list and state ----------------------------------------------------------------
    def set_servers(self, servers: list[Server]) -> None:
        """Replaces the server list (startup, runtime add/del) and builds a balancer for it."""
        self.servers = servers
        c = self.cfg
        self.balancer = make_balancer(
            c.balance,
            self.servers,
            hash_type=c.hash_type,
            allbackups=c.allbackups,
            avalanche=c.hash_avalanche,
            draws=c.random_draws,
        )

    def server_changed(self, srv: Server, now: float) -> int:
        """`srv` changed state or weight: rebalance, then let queued connections try it.

        Returns how many queued connections were handed a chance to connect.
        """
        srv.last_change = now
        stat_counters.server_changed(self, srv, now)
        if self.balancer is not None:
            self.balancer.server_state_changed()
        return self.drain_queue(srv)

    def drain_queue(self, srv: Server) -> int:
        """Wakes queued connections while `srv` can take them (each one picks again)."""
        moved = 0
        queue = self.queue
        for _ in range(len(queue)):  # a woken connection that finds no slot queues again
            if not (queue and srv.usable() and srv.has_free_slot()):
                break
            waiting = queue.popleft()
            if not waiting.closed:
                moved += 1
                waiting.dequeue()
        return moved

    # -- connections ----------------------------------------------------------------------
    def pick(self, key: bytes | None = None, exclude: Server | None = None) -> Server | None:
        if self.balancer is None:
            return None
        picked = self.balancer.pick(key, exclude)
        assert picked is None or isinstance(picked, Server)
        return picked

    def take(self, srv: Server) -> None:
        """A connection is assigned to `srv`."""
        st = srv.stats
        st.cur_conns += 1
        st.total_conns += 1
        if st.cur_conns > st.max_conns:
            st.max_conns = st.cur_conns
        bs = self.stats
        bs.cur_conns += 1
        bs.total_conns += 1
        if bs.cur_conns > bs.max_conns:
            bs.max_conns = bs.cur_conns
        stat_counters.session(st, bs)
        if self.balancer is not None:
            self.balancer.on_connect(srv)

    def release(self, srv: Server) -> None:
        """A connection left `srv`: its slot goes to the first connection still queued."""
        srv.stats.cur_conns -= 1
        self.stats.cur_conns -= 1
        if self.balancer is not None:
            self.balancer.on_release(srv)
        queue = self.queue
        while queue:
            waiting = queue.popleft()
            if not waiting.closed:
                waiting.dequeue()
                break

    def can_queue(self) -> bool:
        """Whether a connection finding no free server should wait (some server is just full)."""
        return any(s.usable() and not s.has_free_slot() for s in self.servers)

    def enqueue(self, waiter: Waiter) -> None:
        self.queue.append(waiter)

    def unqueue(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):
            self.queue.remove(waiter)
