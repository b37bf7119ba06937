"""HTTP analysers and the end of an HTTP transaction: request head, rules, answers, keep-alive.

In `mode http` the listener's analysers end with these steps: wait for a complete request
head (`timeout http-request`, `timeout http-keep-alive`), run the frontend's `http-request`
rules (deny, return, redirect ... answer at once), switch backend, run the backend's rules,
add X-Forwarded-For / X-Original-To / the unique-id header and the Connection header. The
stream then connects (or reuses the server connection it kept) and hands both to the H1 mux.
When the exchange is over, `end_txn` logs it and either closes or waits for the next request.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

from nsproxy.config.model_http import (
    AddrHeader,
    Capture,
    HttpCfg,
    HttpResult,
    HttpRule,
    Verb,
    evaluate,
    stream_modes,
)
from nsproxy.http import answers, compression
from nsproxy.ops import log
from nsproxy.ops.log import LOG_ERR
from nsproxy.proto.h1 import connection as h1conn
from nsproxy.proto.h1 import rewrite
from nsproxy.proto.h1.chunks import chunk_framing
from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import (
    Header,
    RequestHead,
    htx_end_size,
    parse_response_head,
    request_htx_size,
    response_htx_size,
    serialize_response,
)
from nsproxy.proto.h1.reader import Data, EndOfMessage, Event
from nsproxy.runtime import stickiness
from nsproxy.runtime.analysers import Verdict
from nsproxy.runtime.http_txn import NO_EVENTS

if TYPE_CHECKING:
    from nsproxy.runtime.stream import Stream

_RETRY = (BlockingIOError, InterruptedError)


def request_line(req: RequestHead) -> str:
    """%r: the request line as the log shows it."""
    return f"{req.method.decode('latin-1')} {req.target.decode('latin-1')} " + req.version.decode(
        "latin-1"
    )


# -- answers the proxy makes itself ---------------------------------------------------------
def _with_connection(
    s: Stream, data: bytes, close: bool, h1_chunked: bool = False
) -> tuple[bytes, bool, int]:
    """An answer as the H1 layer sends it: the Connection header for this request added.

    `h1_chunked`: an applet that sends `transfer-encoding` itself to HTTP/1.1 clients only
    (the stats page); to the others HAProxy's H1 layer adds it, after the Connection header.
    Returns the bytes, whether the client connection stays open afterwards, and the size
    HAProxy's byte counters give it (HTX).
    """
    txn = s.http
    assert txn is not None
    req = txn.req
    end = data.find(b"\r\n\r\n")
    if req is None or end < 0:
        return data, False, len(data)
    try:
        resp = parse_response_head(data[: end + 2])
    except H1Error:
        return data, False, len(data)
    body = data[end + 4 :]
    size = response_htx_size(resp) + len(body)
    if close or not txn.req_done:
        req.keep_alive = False
    keep = h1conn.prepare_response(req, resp, txn.mode_client)
    if h1_chunked and not req.is_11:
        headers = resp.headers
        te = [h for h in headers if h[0] == b"transfer-encoding"]
        if te:
            headers[:] = [h for h in headers if h[0] != b"transfer-encoding"] + te
            size -= sum(len(n) + len(v) for n, v in te)  # (not in the applet's HTX message)
    return serialize_response(resp) + body, keep, size


def after_response(s: Stream, data: bytes) -> bytes:
    """`http-after-response` rules (backend, then frontend) on a response head as bytes."""
    fe, be = s.fe_http, s.be_http
    if not (
        (fe is not None and fe.http_after_response) or (be is not None and be.http_after_response)
    ):
        return data  # the common case: no allocation, no parse
    lists = [c.http_after_response for c in (be, fe) if c is not None]
    if be is fe:
        lists = lists[:1]
    end = data.find(b"\r\n\r\n")
    txn = s.http
    if end < 0 or txn is None:
        return data
    try:
        resp = parse_response_head(data[: end + 2])
    except H1Error:
        return data
    saved = txn.resp
    txn.resp = resp
    for rules in lists:
        res = evaluate(rules, s)
        if res is not None and res.verb is not Verb.ALLOW:
            break
    txn.resp = saved if saved is not None else resp
    return serialize_response(resp) + data[end + 4 :]


def answer(
    s: Stream,
    data: bytes,
    status: int,
    termination: str,
    close: bool = False,
    h1_chunked: bool = False,
) -> None:
    """Sends the proxy's own answer for this request, logs it, then goes on or closes."""
    txn = s.http
    assert txn is not None
    out, keep, size = _with_connection(s, after_response(s, data), close, h1_chunked)
    txn.status = status
    txn.answered = True
    txn.keep_client = keep
    txn.bytes_out += size
    s.termination = termination
    s.send_answer(out)


def error(s: Stream, status: int, termination: str) -> None:
    """An error answer (502, 503, 504 ...), from an `errorfile` when the proxy has one."""
    cfg = s.be_http or s.fe_http
    ef = cfg.errorfile(status) if cfg is not None else None
    if ef is not None:
        answer(s, ef.data, status, termination, ef.close)
    else:
        answer(s, answers.answer(status), status, termination, answers.closes(status))


def raw_error(s: Stream, status: int, termination: str) -> None:
    """The H1 layer's own answer to a request it could not read (400, 408, 422): then close."""
    txn = s.http
    assert txn is not None
    data = answers.raw_answer(status)
    txn.status = status
    txn.answered = True
    txn.keep_client = False  # sent by the H1 layer itself: HAProxy's byte counters skip it
    s.termination = termination
    s.send_answer(data)


# -- analysers -------------------------------------------------------------------------------
class WaitRequest:
    """Reads the request head through the connection's H1 reader (pipelined bytes first).

    With `option http-buffer-request` it also waits for the whole body (or a full buffer), so
    rules can read it (`req.body`) and the server gets the request in one piece.
    """

    __slots__ = ()

    def deadline(self, s: Stream) -> float | None:
        txn = s.http
        assert txn is not None
        t = s.fe.cfg.timeouts
        if txn.t_first < 0 and s.txn_count:
            limit = t.http_keep_alive if t.http_keep_alive is not None else t.http_request
            if limit is None:
                limit = t.client
            return None if limit is None else txn.start + limit
        limit = t.http_request if t.http_request is not None else t.client
        if limit is None:
            return None
        return (txn.start if not s.txn_count else txn.t_first) + limit

    def run(self, s: Stream, expired: bool) -> Verdict:
        txn = s.http
        assert txn is not None
        events = s.http_events
        s.http_events = NO_EVENTS
        if not _read_request(s, events):
            return Verdict.STOP
        if txn.req is not None:
            if txn.t_first < 0:
                txn.t_first = txn.t_head
            if _buffering(s, s.fe_http) and not (expired or s.req_eof or s.req_error):
                return Verdict.WAIT
            return Verdict.NEXT
        if s.req_eof or s.req_error:  # the client left in the middle of a head, or before
            if txn.t_first < 0 and (s.txn_count or _probe(s)):
                s.finish_early()  # an idle keep-alive connection closed: nothing to log
            else:
                _null_unlogged(s)
                _head_failed(s, 400)
                s.close("CR")
            return Verdict.STOP
        if expired:
            if txn.t_first < 0 and (s.txn_count or _probe(s)):
                s.finish_early()
            else:
                _null_unlogged(s)
                _head_failed(s, 408)
                raw_error(s, 408, "cR")
            return Verdict.STOP
        return Verdict.WAIT


def _buffering(s: Stream, cfg: HttpCfg | None) -> bool:
    """`option http-buffer-request` of `cfg`: the body is not all read, and fits so far."""
    txn = s.http
    if txn is None or txn.req_done or cfg is None or not cfg.http_buffer_request:
        return False
    held = sum(len(ev.data) for ev in s.http_body if isinstance(ev, Data))
    return held < s.rt.config.global_.bufsize - s.rt.h1_limits.maxrewrite


def _read_request(s: Stream, events: list[Event]) -> bool:
    """The client's bytes through the H1 reader, then the events (pipelined ones first) into
    the transaction; False when the reader refused them (answered, the stream stopped)."""
    txn = s.http
    h1 = s.h1
    assert txn is not None and h1 is not None
    try:
        if s.req:
            if txn.t_first < 0:
                txn.t_first = s.clock.time()
            fed = h1.feed(bytes(s.req))
            events = events + fed if events else fed  # (never into the shared list)
            s.req.clear()
    except H1Error as exc:
        _head_failed(s, exc.status)
        raw_error(s, exc.status, "PR")
        return False
    # %U counts the request as received, before any rule rewrites it (HAProxy's req.total)
    for ev in events:
        if isinstance(ev, RequestHead):
            txn.req = ev
            txn.t_head = s.clock.time()
            txn.req_line = request_line(ev)
            txn.bytes_in += request_htx_size(ev)
            s.fe.stats.http_requests += 1
        elif isinstance(ev, Data):
            if not s.http_body:  # (the stream's empty list may be a shared one)
                s.http_body = []
            s.http_body.append(ev)
            txn.bytes_in += len(ev.data)
        elif isinstance(ev, EndOfMessage):
            if not s.http_body:
                s.http_body = []
            s.http_body.append(ev)
            txn.req_done = True
            if txn.req is not None:
                txn.bytes_in += htx_end_size(txn.req.framing, ev.trailers)
    return True


def _probe(s: Stream) -> bool:
    """A first request that never began, under `option http-ignore-probes`: closed silently."""
    fe = s.fe_http
    return fe is not None and fe.ignore_probes


def _null_unlogged(s: Stream) -> None:
    """`option dontlognull`: a first request that never began is answered but not logged
    (nor counted in `show info`'s CumReq, which counts HAProxy's streams and logged sessions)."""
    txn = s.http
    if s.fe.cfg.dontlognull and txn is not None and txn.t_first < 0:
        txn.log_level = "silent"  # counted as any request, only its log line goes
        s.rt.unlogged_requests += 1


def _head_failed(s: Stream, status: int) -> None:
    """A request head that never completed (the client left, timed out, or sent a malformed
    one), as HAProxy 2.6's H1 mux reports it before any stream exists: a request and a request
    error of the frontend alone (the frontend stands for the backend in the log), `status`
    (400 when the client left, 408 on timeout); a first request's Ta counts from the accept."""
    txn = s.http
    assert txn is not None
    fs = s.fe.stats
    fs.failed_req += 1
    if txn.req is not None:
        return  # a malformed body: the request was counted with its head
    fs.http_requests += 1
    s.backend = None
    txn.status = status
    if txn.t_first < 0 and not s.txn_count:
        txn.t_first = txn.start


# HAProxy's termination for an answer a rule made: `return` and `redirect` are local replies
_LOCAL = frozenset(("return", "redirect"))


def _run_rules(s: Stream, rules: tuple[HttpRule, ...]) -> HttpResult | None:
    """The first rule that stops the list; `s.http.rule_action` keeps which action it was."""
    for rule in rules:
        res = rule.run(s)
        if res is not None:
            txn = s.http
            if txn is not None:
                txn.rule_action = rule.action
            return res
    return None


def _capture_headers(
    values: list[str | None], slots: tuple[Capture, ...], headers: list[Header]
) -> None:
    """`capture request|response header NAME len N`: the first value, cut to N characters."""
    for i, slot in enumerate(slots):
        if slot.name is None or i >= len(values):
            continue
        name = slot.name.encode("latin-1")
        for n, v in headers:
            if n == name:
                values[i] = v[: slot.length].decode("latin-1")
                break


def capture_request(s: Stream) -> None:
    """Sizes the capture slots from the frontend and fills the request header captures."""
    txn = s.http
    fe = s.fe_http
    if txn is None or fe is None or txn.req is None:
        return
    if fe.req_captures:
        txn.captures_req = [None] * len(fe.req_captures)
    if fe.res_captures:
        txn.captures_res = [None] * len(fe.res_captures)
    if fe.req_captures:
        _capture_headers(txn.captures_req, fe.req_captures, txn.req.headers)


def capture_response(s: Stream) -> None:
    txn = s.http
    fe = s.fe_http
    if txn is None or fe is None or txn.resp is None or not fe.res_captures:
        return
    _capture_headers(txn.captures_res, fe.res_captures, txn.resp.headers)


def _act(s: Stream, res: HttpResult, response: bool) -> Verdict:
    """Carries out what a rule list decided; NEXT when the message goes on."""
    if res.verb is Verb.ALLOW:
        return Verdict.NEXT
    if res.verb is Verb.REJECT:
        s.fe.stats.denied_req += 1
        s.rst_client()
        s.close("PR")
        return Verdict.STOP
    if res.verb is Verb.SERVICE and res.data:  # an applet's own answer (a Lua service)
        if res.error:
            (s.backend or s.fe).logger.emit(LOG_ERR, res.error)
            log.alert(res.error)
        s.fe.stats.intercepted += 1
        assert s.http is not None
        s.http.applet = res.service
        s.tc = 0  # the stream "connects" to the applet at once
        s.http.bytes_out -= chunk_framing(res.data)  # HTX counts the data, not its chunking
        answer(s, res.data, res.status, "LR", res.close)
        return Verdict.STOP
    if res.verb is Verb.SERVICE:
        service = s.rt.services.get(res.service or "")
        if service is not None:
            s.fe.stats.intercepted += 1
            data = (
                b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\n"
                b"content-type: text/plain; version=0.0.4\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            assert s.http is not None and s.http.req is not None
            if s.http.req.method != b"HEAD":  # (HAProxy keeps the chunked head for a HEAD)
                data += answers.applet_body(service(s.rt))
            s.http.bytes_out -= chunk_framing(data)  # HTX counts the data, not its chunking
            answer(s, data, 200, "--")
        else:
            error(s, 503, "PR")
        return Verdict.STOP
    txn = s.http
    local = txn is not None and txn.rule_action in _LOCAL
    if not response and not local:
        s.fe.stats.denied_req += 1
    if res.verb is Verb.TARPIT:
        s.tarpit(res.data, res.status)
        return Verdict.STOP
    answer(s, res.data, res.status, "LR" if local else "PR", res.close)
    return Verdict.STOP


class FrontendRules:
    """`monitor-uri`, then the frontend's `http-request` rules and `redirect` rules."""

    __slots__ = ("cfg",)

    def __init__(self, cfg: HttpCfg) -> None:
        self.cfg = cfg

    def deadline(self, s: Stream) -> float | None:
        return None

    def run(self, s: Stream, expired: bool) -> Verdict:
        txn = s.http
        assert txn is not None and txn.req is not None
        stickiness.http_request(s)  # a new request for the entries tracked so far
        cfg = self.cfg
        capture_request(s)
        if cfg.monitor_uri is not None and txn.req.target == cfg.monitor_uri:
            s.backend = None
            answer(s, answers.MONITOR_OK, 200, "PR")
            return Verdict.STOP
        res = _run_rules(s, cfg.http_request)
        page = s.rt.pages.get("stats") if res is None else None  # as HAProxy: before redirects
        if page is not None and (served := page(s)) is not None:
            s.fe.stats.intercepted += 1
            assert s.http is not None
            s.http.bytes_out -= chunk_framing(served[1])
            answer(s, served[1], served[0], "LR", h1_chunked=True)
            return Verdict.STOP
        if res is None:
            res = _run_rules(s, cfg.redirect)
        if res is None or res.verb is Verb.ALLOW:
            return Verdict.NEXT
        s.backend = None  # answered before switching: logged with the frontend as backend
        return _act(s, res, False)


class BackendRequest:
    """After switching: the backend's own rules, then the headers HAProxy adds to requests."""

    __slots__ = ()

    def deadline(self, s: Stream) -> float | None:
        return WAIT_REQUEST.deadline(s) if _buffering(s, s.be_http) else None

    def run(self, s: Stream, expired: bool) -> Verdict:
        txn = s.http
        assert txn is not None and txn.req is not None
        req = txn.req
        fe, be = s.fe_http, s.be_http
        # the backend's `option http-buffer-request`: the body first, then the backend's rules
        if be is not None and be.http_buffer_request and _buffering(s, be):
            if not _read_request(s, NO_EVENTS):
                return Verdict.STOP
            if _buffering(s, be) and not (expired or s.req_eof or s.req_error):
                return Verdict.WAIT
        if be is not None and s.backend is not None and s.backend.cfg is not s.fe.cfg:
            res = _run_rules(s, be.http_request)
            if res is None:
                res = _run_rules(s, be.redirect)
            if res is not None and _act(s, res, False) is Verdict.STOP:
                return Verdict.STOP
        cookie_request(s)
        txn.mode_client, txn.mode_server = stream_modes(fe, be)
        # as HAProxy: the unique id header first, then X-Forwarded-For, then X-Original-To
        if fe is not None and fe.unique_id_header is not None:
            uid = s.unique_id
            if uid is not None:
                req.headers.append((fe.unique_id_header.lower().encode(), uid.encode()))
        ff = (be.forwardfor if be is not None else None) or (fe.forwardfor if fe else None)
        if ff is not None:
            value = _forwarded_for(s, ff)
            if value is not None:
                rewrite.add_forwarded_for(req.headers, value, ff.name, ff.if_none)
        ot = (be.originalto if be is not None else None) or (fe.originalto if fe else None)
        if ot is not None:
            dst = s.cli.local_addr()
            if isinstance(dst, tuple) and not ot.excluded(str(dst[0])):
                addr = ipaddress.ip_address(str(dst[0]).split("%", 1)[0])
                family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
                value = rewrite.forwarded_for_value(family, addr.packed)
                rewrite.add_forwarded_for(req.headers, value, ot.name, ot.if_none)
        comp = compression.effective(
            fe.compression if fe is not None else None, be.compression if be else None
        )
        if comp is not None:
            algo = compression.choose_algorithm(comp, req)
            txn.comp = None if algo is None else (algo, comp.types)
        pretend = be is not None and be.pretend_keepalive
        h1conn.prepare_request(req, h1conn.HttpMode.KEEP_ALIVE if pretend else txn.mode_server)
        return Verdict.NEXT


def _cookie_pairs(value: bytes) -> list[bytes]:
    return [p.strip() for p in value.split(b";")]


def cookie_request(s: Stream) -> None:
    """`cookie NAME ...` on the backend: the request's cookie picks the server it names."""
    be = s.backend
    txn = s.http
    ck = be.cfg.cookie if be is not None else None
    if be is None or txn is None or txn.req is None or ck is None:
        return
    name = ck.name.encode("latin-1") + b"="
    headers = txn.req.headers
    txn.ck_cli = "N"
    for i, (hname, hvalue) in enumerate(headers):
        if hname != b"cookie":
            continue
        pairs = _cookie_pairs(hvalue)
        found = next((p for p in pairs if p.startswith(name)), None)
        if found is None:
            continue
        value = found[len(name) :]
        if ck.mode == "prefix":
            value, sep, rest = value.partition(b"~")
            kept = [(name + rest) if p is found else p for p in pairs] if sep else pairs
        else:
            kept = [p for p in pairs if p is not found] if ck.indirect else pairs
        srv = next((x for x in be.servers if x.cfg.cookie == value.decode("latin-1")), None)
        if srv is None:
            txn.ck_cli = "I"
        elif srv.usable():
            txn.ck_cli = "V"
            s.forced_server = srv
        else:
            txn.ck_cli = "D"
        if kept:
            headers[i] = (hname, b"; ".join(kept))
        else:
            del headers[i]
        return


def cookie_response(s: Stream) -> None:
    """Inserts (or rewrites, prefixes) the persistence cookie in the response head."""
    be = s.backend
    txn = s.http
    srv = s.server
    ck = be.cfg.cookie if be is not None else None
    if ck is None or txn is None or txn.resp is None:
        return
    txn.ck_srv = "N"
    value = srv.cfg.cookie if srv is not None else None
    if value is None:
        return
    headers = txn.resp.headers
    if ck.mode == "insert":
        if txn.ck_cli != "V":
            headers.append((b"set-cookie", ck.set_cookie(value)))
            txn.ck_srv = "I"
        return
    prefix = ck.name.encode("latin-1") + b"="
    for i, (hname, hvalue) in enumerate(headers):
        if hname == b"set-cookie" and hvalue.startswith(prefix):
            old, sep, attrs = hvalue[len(prefix) :].partition(b";")
            if ck.mode == "rewrite":
                headers[i] = (hname, prefix + value.encode("latin-1") + sep + attrs)
                txn.ck_srv = "R"
            else:
                headers[i] = (hname, prefix + value.encode("latin-1") + b"~" + old + sep + attrs)
                txn.ck_srv = "P"
            return


def _forwarded_for(s: Stream, ff: AddrHeader) -> bytes | None:
    """The X-Forwarded-For value of this client (None: excluded), computed once per client
    address rather than per request."""
    src = s.cli.src
    cached = s.ff_cache
    if cached is not None and cached[0] is src and cached[1] is ff:
        return cached[2]
    value = None
    if isinstance(src, tuple) and not ff.excluded(str(src[0])):
        host = str(src[0]).split("%", 1)[0]
        if s.cli.proxied:  # a PROXY header's text: written back as inet_ntop(3) would
            addr = ipaddress.ip_address(host)
            family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
            value = rewrite.forwarded_for_value(family, addr.packed)
        else:  # the socket's own address: already inet_ntop(3)'s text
            value = host.encode()
    s.ff_cache = (src, ff, value)
    return value


def response_rules(s: Stream) -> bytes | None:
    """The backend's then the frontend's `http-response` rules on the response head.

    Returns the answer to send instead of the response (a deny: 502), or None.
    """
    stickiness.store_response(s)
    fe, be = s.fe_http, s.be_http
    lists = []
    if be is not None and s.backend is not None and s.backend.cfg is not s.fe.cfg:
        lists.append(be.http_response)
    if fe is not None:
        lists.append(fe.http_response)
    for rules in lists:
        res = _run_rules(s, rules)
        if res is None:
            continue
        if res.verb is Verb.ALLOW:
            continue
        if res.verb is Verb.ANSWER or res.verb is Verb.TARPIT:
            txn = s.http
            local = txn is not None and txn.rule_action in _LOCAL
            s.termination = "LH" if local else "PH"
            # the client stays (as after any answer); the server connection does not
            out, keep, size = _with_connection(s, res.data, False)
            if txn is not None:
                txn.bytes_out += size
                txn.keep_client = keep
            return out
        s.close("PH")
        return b""
    return None


def analysers(px_http: HttpCfg) -> tuple[WaitRequest, FrontendRules]:
    """The HTTP steps that run before switching, for a frontend with these settings."""
    return WAIT_REQUEST, FrontendRules(px_http)


WAIT_REQUEST = WaitRequest()
BACKEND_REQUEST = BackendRequest()

__all__ = [
    "BACKEND_REQUEST",
    "WAIT_REQUEST",
    "Event",
    "analysers",
    "answer",
    "error",
    "raw_error",
    "request_line",
    "response_rules",
]
