"""A test double for the engine's Txn protocol: a plain dataclass."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

from nsproxy.proto.h1.head import RequestHead, ResponseHead
from nsproxy.sample.context import Addr
from nsproxy.sample.types import Sample, SmpType
from nsproxy.stick.track import StreamSticks


@dataclass
class StubTxn:
    src: Addr = ("192.0.2.10", 40000)
    dst: Addr = ("198.51.100.1", 443)
    so_id: int = 1
    so_name: str | None = "sock-1"
    frontend_name: str = "fe_main"
    frontend_id: int = 2
    backend_name: str | None = None
    backend_id: int = 0
    server_name: str | None = None
    server_id: int = 0
    fc_netns: str | None = None
    bc_netns: str | None = None
    req_data: bytes = b""
    req_final: bool = False
    res_data: bytes = b""
    res_final: bool = False
    vars: MutableMapping[str, MutableMapping[str, Sample]] = field(default_factory=dict)
    servers: dict[str, int] = field(default_factory=dict)
    server_addr: Addr = None
    backend_local: Addr = None
    accept_ts: float = 1764412345.678
    termination: str = "--"
    bytes_out: int = 0
    bytes_in: int = 0
    t_queue: int = 0
    t_connect: int = 0
    t_total: int = 0
    conn_process: int = 1
    conn_frontend: int = 1
    conn_backend: int = 0
    conn_server: int = 0
    retries: int = 0
    redispatched: bool = False
    queue_server: int = 0
    queue_backend: int = 0
    unique_id: str | None = None
    request_counter: int = 0
    http_req: RequestHead | None = None
    http_req_pending: bool = False
    http_resp: ResponseHead | None = None
    req_body: bytes = b""
    req_captures: list[str | None] = field(default_factory=list)
    res_captures: list[str | None] = field(default_factory=list)
    request_ts: float = 1764412345.678
    t_request: int = -1
    t_idle: int = -1
    t_response: int = -1
    t_active: int = -1
    http_status: int = -1
    request_line: str = ""
    cookie_status: str = "--"
    log_level: str | None = None
    sticks: StreamSticks | None = None  # stick-table tracking slots (track-sc*)

    def set_log_level(self, level: str) -> None:
        self.log_level = level

    def nbsrv(self, backend: str) -> int | None:
        return self.servers.get(backend)


def with_input(text: str, **kw: object) -> StubTxn:
    """A Txn whose `txn.in` variable holds `text` (the differential tests' input)."""
    t = StubTxn(**kw)  # type: ignore[arg-type]
    t.vars["txn"] = {"in": Sample(SmpType.STR, text)}
    return t
