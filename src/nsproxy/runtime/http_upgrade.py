"""A TCP frontend's stream becoming HTTP when it chooses an HTTP backend, as HAProxy 2.6 does.

Only the listeners of a TCP frontend that can reach an HTTP backend get these steps
(`reaches_http`); every other listener's analysers are unchanged. The stream runs the
frontend's `tcp-request content` rules and switching on the raw bytes; `UPGRADE` then makes it
an HTTP transaction whose first request starts with those bytes, and the backend's HTTP rules,
`option forwardfor` and the H1 mux follow. The client connection stays keep-alive: each later
request is read by `NEXT_REQUEST`, then runs the frontend's `tcp-request content` rules and
switching again (HAProxy makes a new stream per request). docs/tcp-to-http.md has the facts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nsproxy.config.model import Config, ProxyCfg
from nsproxy.proto.h1.reader import RequestReader
from nsproxy.runtime import stickiness
from nsproxy.runtime.analysers import Verdict
from nsproxy.runtime.http_ana import BACKEND_REQUEST, WAIT_REQUEST, raw_error
from nsproxy.runtime.http_txn import HttpTxn

if TYPE_CHECKING:
    from nsproxy.runtime.stream import Stream


def reaches_http(px: ProxyCfg, config: Config) -> bool:
    """Whether TCP frontend `px` may choose an HTTP backend (default, fixed or dynamic name)."""
    if px.mode != "tcp":
        return False
    names = [px.default_backend] + [r.name for r in px.rules.use_backend if r.dynamic is None]
    if any(r.dynamic is not None for r in px.rules.use_backend):
        names += [b.name for b in config.backends]
    for name in names:
        be = config.proxy(name) if name is not None else None
        if be is not None and be.is_backend and be.mode == "http":
            return True
    return False


def _http_backend(s: Stream) -> bool:
    be = s.backend
    return be is not None and be.cfg.mode == "http"


class NextRequest:
    """On an upgraded connection, the head of the next request (before the frontend's rules).

    Waiting for it is HTTP keep-alive (`timeout http-keep-alive`); a request cut short or late
    is answered as in `mode http`. HAProxy logs the "Connect from" of each of these requests
    (a stream each). A stream not upgraded (its first request) goes past at once.
    """

    __slots__ = ()

    def deadline(self, s: Stream) -> float | None:
        return None if s.http is None else WAIT_REQUEST.deadline(s)

    def run(self, s: Stream, expired: bool) -> Verdict:
        txn = s.http
        if txn is None or txn.req is not None:
            return Verdict.NEXT
        s.backend = None  # errors before the head: logged with the frontend as backend
        verdict = WAIT_REQUEST.run(s, expired)
        if verdict is Verdict.NEXT:
            s.backend = s.fe.backend
            s.rt.log_connect(s)
        return verdict


class Upgrade:
    """After switching: an HTTP backend makes the stream HTTP (once per connection).

    The first request's head is read from the bytes the TCP rules saw plus what follows.
    HAProxy's H1 layer answers a client that closes before the head is complete with 400, a
    head late with 408 when the frontend's `timeout http-request` (else `timeout client`)
    ends, and logs both as `PR` with the frontend as backend. A later request that chooses a TCP
    backend is logged with status 500 and `IR`, and the connection closes without an answer.
    """

    __slots__ = ()

    def deadline(self, s: Stream) -> float | None:
        txn = s.http
        return None if txn is None or txn.req is not None else WAIT_REQUEST.deadline(s)

    def run(self, s: Stream, expired: bool) -> Verdict:
        txn = s.http
        if txn is None:
            if not _http_backend(s):
                return Verdict.NEXT  # a TCP stream, as without these steps
            s.h1 = RequestReader(s.rt.h1_limits)
            txn = s.http = HttpTxn(s.t0, s.start_ts)
        elif txn.req is not None and not _http_backend(s):
            txn.status = 500
            be = s.backend
            if be is None:
                s.close("IR")
                return Verdict.STOP
            be.stats.cur_conns += 1  # HAProxy counts the stream on that backend (%bc) until
            s.close("IR")  # it is logged
            be.stats.cur_conns -= 1
            return Verdict.STOP
        if txn.req is None:
            verdict = self._first_head(s, expired)
            if verdict is not Verdict.NEXT:
                return verdict
        stickiness.http_request(s)
        return Verdict.NEXT

    @staticmethod
    def _first_head(s: Stream, expired: bool) -> Verdict:
        txn = s.http
        assert txn is not None
        if expired and not s.req:
            s.backend = None
            s.fe.stats.failed_req += 1
            raw_error(s, 408, "PR")
            return Verdict.STOP
        be = s.backend
        s.backend = None
        eof, err = s.req_eof, s.req_error
        s.req_eof = s.req_error = False  # (the head may be complete before the close)
        try:
            verdict = WAIT_REQUEST.run(s, False)
        finally:
            s.req_eof, s.req_error = eof, err
        if verdict is Verdict.WAIT and (eof or err):
            s.fe.stats.failed_req += 1
            raw_error(s, 400, "PR")
            return Verdict.STOP
        if verdict is not Verdict.STOP:
            s.backend = be
        return verdict


NEXT_REQUEST = NextRequest()
UPGRADE = Upgrade()


class UpgradedBackendRequest:
    """The backend's HTTP rules and added headers, for a stream that was upgraded."""

    __slots__ = ()

    def deadline(self, s: Stream) -> float | None:
        return None if s.http is None else BACKEND_REQUEST.deadline(s)

    def run(self, s: Stream, expired: bool) -> Verdict:
        if s.http is None:
            return Verdict.NEXT
        return BACKEND_REQUEST.run(s, expired)


UPGRADED_BACKEND_REQUEST = UpgradedBackendRequest()

__all__ = ["NEXT_REQUEST", "UPGRADE", "UPGRADED_BACKEND_REQUEST", "reaches_http"]
