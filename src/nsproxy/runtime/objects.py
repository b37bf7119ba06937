"""Runtime objects built from the configuration: frontends, backends, servers and counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nsproxy.balance import make_balancer
from nsproxy.config.model import ProxyCfg, ServerCfg
from nsproxy.netns import Namespace
from nsproxy.ops.log import Logger

if TYPE_CHECKING:
    from nsproxy.balance import Balancer
    from nsproxy.runtime.listener import Listener


@dataclass(eq=False, slots=True)
class Counters:
    """Connection and byte counters shared by frontends, backends and servers."""

    cur_conns: int = 0
    total_conns: int = 0
    max_conns: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    conn_errors: int = 0
    retries: int = 0
    redispatches: int = 0
    denied: int = 0
    failed_headers: int = 0


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
    check_status: str = ""
    maxconn: int = 0
    cur_conns: int = 0
    stats: Counters = field(default_factory=Counters)
    last_change: float = 0.0

    def __post_init__(self) -> None:
        self.name = self.cfg.name
        self.puid = self.cfg.puid
        self.weight = self.cfg.weight
        self.backup = self.cfg.backup
        self.admin_maint = self.cfg.disabled
        self.maxconn = self.cfg.maxconn

    def usable(self) -> bool:
        return self.up and not self.admin_maint and not self.drain and self.weight > 0

    def has_free_slot(self) -> bool:
        return self.maxconn == 0 or self.cur_conns < self.maxconn

    @property
    def status(self) -> str:
        if self.admin_maint:
            return "MAINT"
        if not self.up:
            return "DOWN"
        return "DRAIN" if self.drain else "UP"


@dataclass(eq=False, slots=True)
class Backend:
    """A backend: servers, the balancer that picks among them, the connection queue."""

    cfg: ProxyCfg
    servers: list[Server] = field(default_factory=list)
    balancer: Balancer | None = None
    stats: Counters = field(default_factory=Counters)
    logger: Logger = field(default_factory=Logger)

    @property
    def name(self) -> str:
        return self.cfg.name

    def rebuild_balancer(self) -> None:
        """A balancer for the current server list (after startup or a runtime change)."""
        c = self.cfg
        self.balancer = make_balancer(
            c.balance,
            self.servers,
            hash_type=c.hash_type,
            allbackups=c.allbackups,
            avalanche=c.hash_avalanche,
        )

    def server(self, name: str) -> Server | None:
        return next((s for s in self.servers if s.name == name), None)

    def pick(self, key: bytes | None = None, exclude: Server | None = None) -> Server | None:
        if self.balancer is None:
            return None
        picked = self.balancer.pick(key, exclude)
        assert picked is None or isinstance(picked, Server)
        return picked


@dataclass(eq=False, slots=True)
class Frontend:
    """A frontend: listeners, its default backend, its limits and logs."""

    cfg: ProxyCfg
    backend: Backend | None
    logger: Logger
    listeners: list[Listener] = field(default_factory=list)
    stats: Counters = field(default_factory=Counters)
    maxconn: int = 0
    disabled: bool = False  # `disable frontend`: its listeners stay paused

    @property
    def name(self) -> str:
        return self.cfg.name

    def __post_init__(self) -> None:
        self.maxconn = self.cfg.maxconn or 1 << 62  # 0 in the config: no frontend limit
