"""A test double for the Txn protocol in HTTP mode: parsed heads, body, capture slots."""

from __future__ import annotations

from dataclasses import dataclass, field

from nsproxy.proto.h1.head import (
    RequestHead,
    ResponseHead,
    parse_request_head,
    parse_response_head,
)

from .txn import StubTxn


@dataclass
class HttpTxn(StubTxn):
    http_req: RequestHead | None = None
    http_resp: ResponseHead | None = None
    req_body: bytes = b""
    req_captures: list[str | None] = field(default_factory=list)
    res_captures: list[str | None] = field(default_factory=list)
    log_level: str | None = None

    def set_log_level(self, level: str) -> None:
        self.log_level = level


def request(raw: bytes, **kw: object) -> HttpTxn:
    """A Txn holding the parsed head of `raw` (a whole request head)."""
    head = raw[: raw.index(b"\r\n\r\n") + 2]
    return HttpTxn(http_req=parse_request_head(head), **kw)  # type: ignore[arg-type]


def response(txn: HttpTxn, raw: bytes) -> HttpTxn:
    head = raw[: raw.index(b"\r\n\r\n") + 2]
    txn.http_resp = parse_response_head(head)
    return txn
