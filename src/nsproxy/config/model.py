"""The parsed configuration: frozen dataclasses with every address resolved, times in seconds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nsproxy.addresses import ServerAddr, SockAddr
from nsproxy.config.model_check import HttpCheckCfg
from nsproxy.config.model_rules import ProxyRules
from nsproxy.config.model_stats import StatsPageCfg
from nsproxy.config.model_stick import PeersCfg, StickRuleCfg, StickTableCfg
from nsproxy.config.model_tls import BindTls, GlobalTls, ServerTls

if TYPE_CHECKING:
    from nsproxy.config.model_http import CookieCfg, HttpCfg
    from nsproxy.sample.patref import PatRefs
from nsproxy.config.where import Where as Where
from nsproxy.sample.context import Txn

LogFormat = Callable[[Txn], str]  # a log-format string compiled by the rules engine


@dataclass(frozen=True, slots=True)
class LogTarget:
    """One `log` line: where lines go (stdout/stderr, a UDP address, a UNIX datagram path)."""

    target: str
    facility: str = "local0"
    level: str = "debug"
    min_level: str = "emerg"
    format: str = "rfc3164"
    udp: SockAddr | None = None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Timeouts in seconds; None means not set (infinite)."""

    connect: float | None = None
    client: float | None = None
    server: float | None = None
    client_fin: float | None = None
    server_fin: float | None = None
    tunnel: float | None = None
    queue: float | None = None
    check: float | None = None
    http_request: float | None = None
    http_keep_alive: float | None = None
    tarpit: float | None = None


@dataclass(frozen=True, slots=True)
class SourceCfg:
    """`source ADDR[:PORT] [usesrc clientip|client|ADDR] [interface IF]`."""

    addr: SockAddr
    port_range: tuple[int, int] | None = None
    usesrc: str | None = None
    usesrc_addr: SockAddr | None = None
    interface: str | None = None


@dataclass(frozen=True, slots=True)
class BindCfg:
    """One `bind` line (all of its addresses share these settings)."""

    where: Where
    addrs: tuple[SockAddr, ...]
    name: str | None = None
    id: int = 0
    namespace: str | None = None
    interface: str | None = None
    backlog: int | None = None
    v4v6: bool = False
    v6only: bool = False
    accept_proxy: bool = False
    transparent: bool = False
    defer_accept: bool = False  # TCP_DEFER_ACCEPT: accepted once data came (up to 1 s)
    tfo: bool = False  # TCP_FASTOPEN, its queue the listen backlog
    mode: int | None = None
    maxconn: int = 0
    tls: BindTls | None = None


@dataclass(frozen=True, slots=True)
class CheckCfg:
    """Health-check settings of one server."""

    enabled: bool = False
    inter: float = 2.0
    fastinter: float | None = None
    downinter: float | None = None
    rise: int = 2
    fall: int = 3
    port: int | None = None
    addr: str | None = None
    send_proxy: bool = False


@dataclass(frozen=True, slots=True)
class ServerCfg:
    """One `server` line, with `default-server` settings applied."""

    where: Where
    name: str
    addr: ServerAddr
    puid: int = 0
    namespace: str | None = None
    use_client_netns: bool = False
    disabled: bool = False
    weight: int = 1
    backup: bool = False
    maxconn: int = 0
    send_proxy: int = 0
    pp2_options: frozenset[str] = frozenset()
    check: CheckCfg = CheckCfg()
    source: SourceCfg | None = None
    tls: ServerTls | None = None
    cookie: str | None = None


@dataclass(frozen=True, slots=True)
class TcpCheckRule:
    """One `tcp-check` rule: connect, send DATA or expect [!]string|rstring PATTERN."""

    action: str
    arg: str = ""
    negate: bool = False


@dataclass(frozen=True, slots=True)
class ProxyCfg:
    """A frontend, backend or listen section (capabilities say which halves it has)."""

    where: Where
    name: str
    is_frontend: bool
    is_backend: bool
    id: int = 0
    mode: str = "tcp"
    disabled: bool = False
    binds: tuple[BindCfg, ...] = ()
    default_backend: str | None = None
    timeouts: Timeouts = Timeouts()
    maxconn: int = 0
    backlog: int = 0
    servers: tuple[ServerCfg, ...] = ()
    balance: str = "roundrobin"
    random_draws: int = 2  # `balance random(<draws>)`
    hash_type: str = "map-based"
    hash_avalanche: bool | None = None
    retries: int = 3
    redispatch: bool = False
    persist: bool = False  # `option persist`: stick to a server even when it is down
    allbackups: bool = False
    source: SourceCfg | None = None
    logs: tuple[LogTarget, ...] = ()
    tcplog: bool = False
    dontlognull: bool = False
    log_format: LogFormat | None = None
    log_separate_errors: bool = False
    unique_id_format: LogFormat | None = None
    splice_request: bool = False
    splice_response: bool = False
    splice_auto: bool = False
    tcp_check: tuple[TcpCheckRule, ...] = ()
    reject_unknown_netns: bool = False
    log_health_checks: bool = False
    stats_page: StatsPageCfg | None = None
    rules: ProxyRules = field(default_factory=ProxyRules)
    stick_table: StickTableCfg | None = None
    stick_rules: tuple[StickRuleCfg, ...] = ()
    http: HttpCfg | None = None
    http_check: HttpCheckCfg | None = None
    cookie: CookieCfg | None = None
    fullconn: int = 0
    load_server_state: str | None = None  # `load-server-state-from-file global|local|none`
    server_state_file_name: str | None = None


@dataclass(frozen=True, slots=True)
class StatsSocketCfg:
    """One `stats socket` line: address, file mode, level, `expose-fd listeners`, maxconn."""

    addr: SockAddr
    mode: int | None = None
    level: str = "operator"
    expose_fd: bool = False
    maxconn: int = 0  # 0: global `stats maxconn`


@dataclass(frozen=True, slots=True)
class GlobalCfg:
    """The `global` section."""

    maxconn: int = 4096
    logs: tuple[LogTarget, ...] = ()
    daemon: bool = False
    pidfile: str | None = None
    nbthread: int = 1
    user: str | None = None
    group: str | None = None
    uid: int | None = None
    gid: int | None = None
    chroot: str | None = None
    pp2_never_send_local: bool = False
    stats_sockets: tuple[StatsSocketCfg, ...] = ()
    stats_timeout: float = 10.0
    stats_maxconn: int = 10  # connections per stats socket, as HAProxy
    prometheus_exporter: SockAddr | None = None
    bufsize: int = 16384
    maxrewrite: int = 1024
    maxhdr: int = 101
    maxpipes: int = 0
    hard_stop_after: float | None = None
    master_worker: bool = False
    log_tag: str = "haproxy"
    log_send_hostname: str | None = None  # the syslog header's hostname (None: not sent)
    h1_case_adjust: tuple[tuple[str, str], ...] = ()  # `h1-case-adjust <from> <to>` lines
    node: str | None = None
    localpeer: str | None = None
    peers: tuple[PeersCfg, ...] = ()
    table_names: tuple[str, ...] = ()  # every stick table's name, in declaration order
    tls: GlobalTls = field(default_factory=GlobalTls)
    # the map and ACL files the rules refer to: live objects the runtime API changes
    pattern_refs: PatRefs | None = None
    server_state_file: str | None = None
    server_state_base: str | None = None


@dataclass(frozen=True, slots=True)
class NamespacePattern:
    """`namespace-pattern GLOB template PROXY [maxconn N]`: PROXY's binds in each match.

    `maxconn` (nsproxy only) caps the client connections of each matching namespace.
    """

    where: Where
    glob: str
    template: str
    maxconn: int = 0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    global_: GlobalCfg = GlobalCfg()
    proxies: tuple[ProxyCfg, ...] = ()
    namespaces: tuple[str, ...] = field(default=())
    namespace_patterns: tuple[NamespacePattern, ...] = ()

    def proxy(self, name: str) -> ProxyCfg | None:
        return next((p for p in self.proxies if p.name == name), None)

    @property
    def frontends(self) -> tuple[ProxyCfg, ...]:
        return tuple(p for p in self.proxies if p.is_frontend)

    @property
    def backends(self) -> tuple[ProxyCfg, ...]:
        return tuple(p for p in self.proxies if p.is_backend)
