"""Runtime objects built from the configuration: frontends and the counters everyone keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nsproxy.config.model import ProxyCfg
from nsproxy.ops.log import Logger

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Backend
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
    denied_conn: int = 0
    denied_req: int = 0
    failed_req: int = 0
    http_requests: int = 0
    failed_headers: int = 0


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
