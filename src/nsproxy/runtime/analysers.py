"""Request analysers: what runs on a client connection before it is handed to a mux.

An analyser looks at the stream and the client bytes it has buffered (`Stream.req`) and
answers NEXT (done, go on), WAIT (more bytes or the end of its delay needed) or STOP (it ended
the stream). A frontend's analysers are built once per listener when the configuration is
loaded; a listener with none hands its connections straight to the connect step.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from nsproxy import proxy_protocol as pp
from nsproxy.config.model import BindCfg, ProxyCfg

if TYPE_CHECKING:
    from nsproxy.runtime.stream import Stream


class Verdict(enum.IntEnum):
    NEXT = 0
    WAIT = 1
    STOP = 2


class Analyser(Protocol):
    """One step of request analysis."""

    def delay(self, s: Stream) -> float | None:
        """How long it may wait for bytes, from the stream's start; None: no limit."""

    def run(self, s: Stream, expired: bool) -> Verdict:
        """Looks at the stream; `expired`: its delay ran out, decide with what is there."""


ConnRule = Callable[["Stream"], bool]


def expect_proxy_rule(px: ProxyCfg) -> ConnRule | None:
    """`tcp-request connection expect-proxy layer4 [if|unless { src NETS }]` as a callable.

    It answers whether the connection must start with a PROXY header; None when the frontend
    has no such rule.
    """
    if not px.expect_proxy:
        return None
    rules = [
        (acl.negate, tuple(ipaddress.ip_network(n) for n in acl.networks))
        for acl in px.expect_proxy
    ]

    def wants_header(s: Stream) -> bool:
        peer = s.cli.src
        try:
            ip = ipaddress.ip_address(peer[0]) if isinstance(peer, tuple) else None
        except ValueError:
            ip = None
        for negate, nets in rules:
            hit = ip is not None and any(ip in n for n in nets)
            if not nets or hit != negate:
                return True
        return False

    return wants_header


class ProxyHeader:
    """Reads the PROXY v1/v2 header (`accept-proxy`, or an `expect-proxy` rule that matched).

    A header split over several segments is reassembled until `timeout client`. Its addresses
    replace the connection's; a NETNS TLV naming a known namespace moves the connection there.
    """

    __slots__ = ("always", "rule")

    def __init__(self, always: bool, rule: ConnRule | None) -> None:
        self.always = always
        self.rule = rule

    def delay(self, s: Stream) -> float | None:
        return s.fe.cfg.timeouts.client

    def run(self, s: Stream, expired: bool) -> Verdict:
        if not self.always and (self.rule is None or not self.rule(s)):
            return Verdict.NEXT
        if s.req_error:
            return self._failed(s, pp.ErrorKind.ABORT)
        try:
            result = pp.decode(s.req)
        except pp.ProxyProtocolError as exc:
            if exc.src is not None:
                s.cli.src = exc.src
            return self._failed(s, exc.kind, rst=True)
        if result is pp.NEED_MORE:
            if expired:
                return self._failed(s, pp.ErrorKind.TIMEOUT)
            if s.req_eof:
                kind = pp.ErrorKind.TRUNCATED if s.req else pp.ErrorKind.EMPTY
                return self._failed(s, kind)
            return Verdict.WAIT
        assert isinstance(result, tuple)
        header, used = result
        del s.req[:used]
        cli = s.cli
        if not header.local and header.src is not None:
            cli.src, cli.dst = header.src, header.dst
            cli.proxied = True
        cli.authority = header.authority
        cli.unique_id = header.unique_id
        names = header.netns_names
        if names:
            found = [ns for ns in map(s.rt.registry.lookup, names) if ns is not None]
            if found:
                s.move_to(found[-1])
            else:
                s.rt.unknown_netns += 1
                name = names[-1].decode("ascii", "backslashreplace")
                if s.fe.cfg.reject_unknown_netns:
                    s.log_error(f"Rejected unknown namespace '{name}' in PROXY protocol header")
                    s.fe.stats.denied += 1
                    s.finish_early()
                    return Verdict.STOP
                s.log_error(f"Ignored unknown namespace '{name}' in PROXY protocol header")
        return Verdict.NEXT

    @staticmethod
    def _failed(s: Stream, kind: pp.ErrorKind, rst: bool = False) -> Verdict:
        s.fe.stats.failed_headers += 1
        if s.cli.netns is not None:
            s.cli.netns.errors += 1
        if not (s.fe.cfg.dontlognull and kind in (pp.ErrorKind.EMPTY, pp.ErrorKind.ABORT)):
            s.log_error(kind.message)
        if rst:
            s.rst_client()
        s.finish_early()
        return Verdict.STOP


def build(px: ProxyCfg, bind: BindCfg) -> tuple[Analyser, ...]:
    """The analysers of one listener of frontend `px`, in the order they run."""
    rule = expect_proxy_rule(px)
    if bind.accept_proxy or rule is not None:
        return (ProxyHeader(bind.accept_proxy, rule),)
    return ()
