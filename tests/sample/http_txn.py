"""A test double for the Txn protocol in HTTP mode: parsed heads, body, capture slots."""

from __future__ import annotations

from nsproxy.proto.h1.head import parse_request_head, parse_response_head

from .txn import StubTxn


class HttpTxn(StubTxn):
    """The stub with an HTTP request head (StubTxn carries the HTTP members)."""


def request(raw: bytes, **kw: object) -> HttpTxn:
    """A Txn holding the parsed head of `raw` (a whole request head)."""
    head = raw[: raw.index(b"\r\n\r\n") + 2]
    return HttpTxn(http_req=parse_request_head(head), **kw)  # type: ignore[arg-type]


def response(txn: HttpTxn, raw: bytes) -> HttpTxn:
    head = raw[: raw.index(b"\r\n\r\n") + 2]
    txn.http_resp = parse_response_head(head)
    return txn
