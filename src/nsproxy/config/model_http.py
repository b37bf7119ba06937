"""The HTTP settings of a proxy as parsed: options, captures, error files and compiled rules.

A proxy's `ProxyCfg.http` holds an `HttpCfg` once it is in `mode http` or uses an HTTP
keyword; the runtime reads it only for `mode http` proxies (HAProxy ignores the rest in TCP
mode, with the warnings the configuration check prints).

Rules are compiled at load into plain callables: `HttpRule.run(txn)` applies the action when
its condition passes and returns None (go on with the next rule) or an `HttpResult` telling
the runtime what to do instead.

The order HAProxy 2.6 runs them in (measured): for a request, the frontend's
`http_request`, then its `redirect`, then (once the backend is chosen, if it is another
proxy) the backend's `http_request` and `redirect`; for a response, the backend's
`http_response` then the frontend's; then `http_after_response`, backend then frontend, on
every response sent, HAProxy's own answers included (parse the answer's head, run the
rules, serialize it again). ALLOW ends only the list it came from.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from nsproxy.config.where import Where
from nsproxy.http.compression import CompressionCfg
from nsproxy.proto.h1.connection import HttpMode
from nsproxy.sample.acl import Condition
from nsproxy.sample.context import Txn

Network = IPv4Network | IPv6Network


class Verb(enum.Enum):
    """What an `HttpResult` asks of the runtime."""

    ALLOW = "allow"  # stop evaluating this rule list; the message goes on
    ANSWER = "answer"  # send `data` to the client instead of forwarding (deny, return, redirect)
    TARPIT = "tarpit"  # hold the request for `timeout tarpit`, then send `data`
    REJECT = "reject"  # close the client connection without an answer
    SERVICE = "service"  # hand the request to the applet named `service`


@dataclass(frozen=True, slots=True)
class HttpResult:
    """The outcome of a rule that stops the rule list.

    `data` is the complete response as HAProxy sends it (status line, lower-case header
    names, body); the runtime adds nothing but the connection management its HTTP layer
    applies to every answer (proto.h1.connection). `close`: HAProxy closes the client
    connection after this answer whatever the request asked (400/408 answers, an errorfile
    without a length).
    """

    verb: Verb
    status: int = 0
    data: bytes = b""
    close: bool = False
    service: str | None = None
    error: str = ""  # what went wrong in the service that answered (logged as an alert)


ALLOW = HttpResult(Verb.ALLOW)
REJECT = HttpResult(Verb.REJECT)

Run = Callable[[Txn], HttpResult | None]


@dataclass(frozen=True, slots=True)
class HttpRule:
    """One `http-request`/`http-response`/`http-after-response`/`redirect` line.

    `run(txn)` checks the condition and applies the action in one call. `cond` and `action`
    are kept for the runtime's bookkeeping and for `show` commands; they are not needed to
    run the rule.
    """

    where: Where
    action: str
    run: Run
    cond: Condition | None = None


def evaluate(rules: tuple[HttpRule, ...], txn: Txn) -> HttpResult | None:
    """Runs a rule list as HAProxy does: in order, until a rule stops it (its result is
    returned; ALLOW ends only this list) or the list ends (None)."""
    for rule in rules:
        result = rule.run(txn)
        if result is not None:
            return result
    return None


@dataclass(frozen=True, slots=True)
class AddrHeader:
    """`option forwardfor` / `option originalto`: the header and when it is added.

    `header` keeps the configured spelling; `name` is the lower-case form the head stores.
    `except_net`: clients (forwardfor) or destinations (originalto) in this network get no
    header. `if_none`: no header when the request already has one.
    """

    header: str
    except_net: Network | None = None
    if_none: bool = False

    @property
    def name(self) -> bytes:
        return self.header.lower().encode("latin-1")

    def excluded(self, host: str) -> bool:
        """True when the address `host` falls in `except_net` (IPv4-mapped IPv6 included)."""
        if self.except_net is None:
            return False
        addr: IPv4Address | IPv6Address = ip_address(host.split("%", 1)[0])
        if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return addr.version == self.except_net.version and addr in self.except_net


FORWARDFOR_HEADER = "X-Forwarded-For"
ORIGINALTO_HEADER = "X-Original-To"


@dataclass(frozen=True, slots=True)
class Capture:
    """One capture slot: `capture request|response header NAME len N` (name lower-case) or
    `declare capture request|response len N` (name None, filled by `http-request capture`).
    Its index in `HttpCfg.req_captures`/`res_captures` is the `id` rules and
    `capture.req.hdr(N)` use."""

    name: str | None
    length: int


@dataclass(frozen=True, slots=True)
class ErrorFile:
    """`errorfile CODE FILE`: the answer HAProxy sends for CODE, prepared at load."""

    status: int
    path: str
    data: bytes
    close: bool


@dataclass(frozen=True, slots=True)
class HttpCfg:
    """A proxy's HTTP settings.

    `mode` is this proxy's own `option http-keep-alive|http-server-close|httpclose` (the last
    one given wins; `no option X` goes back to keep-alive if X was set). For a stream, the
    frontend's and the backend's combine through `stream_modes()`.
    """

    mode: HttpMode = HttpMode.KEEP_ALIVE
    httplog: bool = False
    clf: bool = False
    forwardfor: AddrHeader | None = None
    originalto: AddrHeader | None = None
    http_buffer_request: bool = False
    pretend_keepalive: bool = False  # the server sees the request as under http-keep-alive
    case_adjust_client: bool = False  # `option h1-case-adjust-bogus-client` (frontend)
    case_adjust_server: bool = False  # `option h1-case-adjust-bogus-server` (backend)
    ignore_probes: bool = False  # `option http-ignore-probes` (frontend)
    compression: CompressionCfg | None = None  # `compression algo|type|offload`
    monitor_uri: bytes | None = None
    http_reuse: str = "safe"
    unique_id_header: str | None = None
    req_captures: tuple[Capture, ...] = ()
    res_captures: tuple[Capture, ...] = ()
    capture_cookie: tuple[str, int] | None = None  # `capture cookie NAME len N` (%CC %CS)
    errorfiles: tuple[ErrorFile, ...] = ()
    http_request: tuple[HttpRule, ...] = ()
    http_response: tuple[HttpRule, ...] = ()
    http_after_response: tuple[HttpRule, ...] = ()
    redirect: tuple[HttpRule, ...] = ()

    def errorfile(self, status: int) -> ErrorFile | None:
        return next((e for e in self.errorfiles if e.status == status), None)


def stream_modes(frontend: HttpCfg | None, backend: HttpCfg | None) -> tuple[HttpMode, HttpMode]:
    """(client side, server side) connection modes of a stream, as HAProxy 2.6 does (measured).

    The client connection closes after the response only under the frontend's `httpclose`
    (a backend's `httpclose` does not reach it). The server connection closes when either
    the frontend or the backend says `httpclose` or `http-server-close`. Pass the client mode
    to proto.h1.connection.prepare_response/client_keeps and the server mode to
    prepare_request/server_reusable.
    """
    ka = HttpMode.KEEP_ALIVE
    fe = frontend.mode if frontend is not None else ka
    be = backend.mode if backend is not None else ka
    client = HttpMode.CLOSE if fe is HttpMode.CLOSE else ka
    if fe is HttpMode.CLOSE or be is HttpMode.CLOSE:
        server = HttpMode.CLOSE
    elif HttpMode.SERVER_CLOSE in (fe, be):
        server = HttpMode.SERVER_CLOSE
    else:
        server = ka
    return client, server


@dataclass(frozen=True, slots=True)
class CookieCfg:
    """`cookie NAME [insert|rewrite|prefix] [indirect] [nocache] [httponly] [secure] ...`."""

    name: str
    mode: str = "rewrite"
    indirect: bool = False
    nocache: bool = False
    httponly: bool = False
    secure: bool = False
    preserve: bool = False
    domains: tuple[str, ...] = ()
    attrs: tuple[str, ...] = ()

    def set_cookie(self, value: str) -> bytes:
        """The Set-Cookie value HAProxy inserts for a server whose cookie is `value`."""
        out = f"{self.name}={value}; path=/"
        for d in self.domains:
            out += f"; domain={d}"
        if self.httponly:
            out += "; HttpOnly"
        if self.secure:
            out += "; Secure"
        for a in self.attrs:
            out += f"; {a}"
        return out.encode("latin-1")
