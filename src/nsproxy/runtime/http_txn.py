"""One HTTP request and its response on a client connection: state, timings, log facts."""

from __future__ import annotations

from nsproxy.proto.h1.connection import HttpMode
from nsproxy.proto.h1.head import RequestHead, ResponseHead
from nsproxy.proto.h1.reader import Event

# Shared empty lists, never written to (replaced by a list of its own before any append):
# an idle keep-alive connection holds no list of its own.
NO_CAPTURES: list[str | None] = []
NO_EVENTS: list[Event] = []


class HttpTxn:
    """What one HTTP transaction carries from its first byte to its log line.

    Times are the stream clock's (seconds); -1 in a log field means "did not happen".
    """

    __slots__ = (
        "answered",
        "applet",
        "bytes_in",
        "bytes_out",
        "captures_req",
        "captures_res",
        "ck_cli",
        "ck_srv",
        "comp",
        "keep_client",
        "log_level",
        "mode_client",
        "mode_server",
        "req",
        "req_done",
        "req_line",
        "resp",
        "resp_done",
        "reuse_server",
        "rule_action",
        "start",
        "start_ts",
        "status",
        "t_first",
        "t_head",
        "t_resp",
        "t_sent",
    )

    def __init__(self, start: float, start_ts: float) -> None:
        self.start = start  # waiting for this request began (accept or end of the previous)
        self.start_ts = start_ts  # the same, wall clock (for %tr)
        self.t_first = -1.0  # first byte of the request
        self.t_head = -1.0  # request head complete
        self.t_sent = -1.0  # request head written to the server
        self.t_resp = -1.0  # response head received
        self.req: RequestHead | None = None
        self.applet: str | None = None  # the service that answered (`use-service`), for %s
        self.resp: ResponseHead | None = None
        self.req_line = ""
        self.status = -1
        self.bytes_in = 0
        self.bytes_out = 0
        self.req_done = False
        self.resp_done = False
        self.answered = False  # the proxy answered itself (deny, return, redirect, errors)
        self.keep_client = True
        self.reuse_server = False
        self.mode_client = HttpMode.KEEP_ALIVE
        self.mode_server = HttpMode.KEEP_ALIVE
        self.captures_req: list[str | None] = NO_CAPTURES
        self.captures_res: list[str | None] = NO_CAPTURES
        self.log_level: str | None = None
        self.rule_action = ""  # the http-request/response action that answered, if any
        self.ck_cli = "-"  # persistence cookie in the request: N none, V valid, I invalid, D down
        self.ck_srv = "-"  # in the response: N none, I inserted, R rewritten, P prefixed
        self.comp: tuple[str, tuple[str, ...]] | None = None  # compression: algorithm, types

    def ms(self, a: float, b: float) -> int:
        """Milliseconds from `a` to `b`, -1 when either did not happen."""
        return -1 if a < 0 or b < 0 else int((b - a) * 1000)
