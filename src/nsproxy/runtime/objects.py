"""Runtime objects built from the configuration: frontends and the counters everyone keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nsproxy.config.model import ProxyCfg
from nsproxy.config.model_http import HttpCfg
from nsproxy.ops.log import Logger
from nsproxy.stick.freq import FreqCtr

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
    # the compression filter: bytes in/out of the compressor, bypassed (identity), responses
    comp_in: int = 0
    comp_out: int = 0
    comp_byp: int = 0
    comp_rsp: int = 0
    # what `show stat` and the exporters read (bumped by nsproxy.ops.stat_counters)
    sess_rate: FreqCtr = field(default_factory=FreqCtr)
    sess_rate_max: int = 0
    conn_rate: FreqCtr = field(default_factory=FreqCtr)
    conn_rate_max: int = 0
    req_rate: FreqCtr = field(default_factory=FreqCtr)
    req_rate_max: int = 0
    req_tot: int = 0
    hrsp: list[int] = field(default_factory=lambda: [0] * 6)  # 1xx..5xx, other
    intercepted: int = 0  # requests answered by a service or the stats page
    cli_abrt: int = 0
    srv_abrt: int = 0
    connect: int = 0
    reuse: int = 0
    last_sess: float = 0.0  # monotonic seconds of the last session; 0: never
    time_samples: int = 0
    q_time: int = 0  # swrate sums of queue, connect, response and total times (ms)
    c_time: int = 0
    d_time: int = 0
    t_time: int = 0
    qtime_max: int = 0
    ctime_max: int = 0
    rtime_max: int = 0
    ttime_max: int = 0
    chk_fail: int = 0
    chk_down: int = 0
    down_time: float = 0.0  # seconds spent down before `down_since`
    down_since: float = -1.0  # the runtime clock when it went down; -1: running


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
    # its HTTP settings as a stream uses them: none in TCP mode, where HAProxy ignores them
    # (a TCP frontend's stream upgraded to HTTP reads only its backend's)
    http: HttpCfg | None = None

    @property
    def name(self) -> str:
        return self.cfg.name

    def __post_init__(self) -> None:
        self.maxconn = self.cfg.maxconn or 1 << 62  # 0 in the config: no frontend limit
        self.http = self.cfg.http if self.cfg.mode == "http" else None
