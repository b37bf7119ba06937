"""Request analysers: what runs on a client connection before it is handed to a mux.

An analyser looks at the stream and the client bytes it has buffered (`Stream.req`) and
answers NEXT (done, go on), WAIT (more bytes or the end of its delay needed) or STOP (it ended
the stream). A listener's analysers are built once when the configuration is loaded, from its
bind and its frontend's rules; a listener with none hands its connections straight to the
connect step.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

from nsproxy import proxy_protocol as pp
from nsproxy.config.model import BindCfg, ProxyCfg
from nsproxy.config.model_rules import (
    ProxyRules,
    TcpRule,
    choose_backend,
    choose_server,
    run_tcp_rules,
)
from nsproxy.runtime import stickiness
from nsproxy.sample.types import Sample, SmpType

if TYPE_CHECKING:
    from nsproxy.runtime.stream import Stream


class Verdict(enum.IntEnum):
    NEXT = 0
    WAIT = 1
    STOP = 2


class Analyser(Protocol):
    """One step of request analysis."""

    def deadline(self, s: Stream) -> float | None:
        """Until when (stream clock) it may wait for bytes; None: no limit."""

    def run(self, s: Stream, expired: bool) -> Verdict:
        """Looks at the stream; `expired`: its delay ran out or the buffer is full: decide
        with what is there (never WAIT then)."""


def _apply_effects(s: Stream, effects: tuple[tuple[str, Sample | None], ...]) -> None:
    """set-src / set-dst / set-src-port / set-dst-port / expect-proxy, in rule order."""
    cli = s.cli
    for action, smp in effects:
        if action == "expect-proxy":
            s.want_proxy = True
            continue
        if smp is None:
            continue
        src = cli.src if isinstance(cli.src, tuple) else None
        dst = cli.local_addr()
        dst = dst if isinstance(dst, tuple) else None
        if action in ("set-src", "set-dst"):
            if smp.type not in (SmpType.IPV4, SmpType.IPV6):
                continue
            host = str(smp.value)
            if action == "set-src":
                cli.src = (host, 0)  # as HAProxy: the port is reset
            else:
                cli.dst = (host, dst[1] if dst else 0)
            continue
        if not isinstance(smp.value, int):
            continue
        if action == "set-src-port" and src is not None:
            cli.src = (src[0], smp.value)
        elif action == "set-dst-port" and dst is not None:
            cli.dst = (dst[0], smp.value)


def _deny(s: Stream, action: str, counter: str, termination: str | None) -> Verdict:
    """reject / close / silent-drop: the connection ends (silent-drop: with a reset)."""
    setattr(s.fe.stats, counter, getattr(s.fe.stats, counter) + 1)
    if action == "silent-drop":
        s.rst_client()
    if termination is None:
        s.finish_early()
    else:
        s.close(termination)
    return Verdict.STOP


class ConnectionRules:
    """`tcp-request connection` rules, run once at accept (layer-4 facts only, never wait)."""

    __slots__ = ("rules",)

    def __init__(self, rules: tuple[TcpRule, ...]) -> None:
        self.rules = rules

    def deadline(self, s: Stream) -> float | None:
        return None

    def run(self, s: Stream, expired: bool) -> Verdict:
        s.req_final = True
        out = run_tcp_rules(self.rules, s)
        _apply_effects(s, out.effects)
        if out.action in ("reject", "close", "silent-drop"):
            return _deny(s, out.action, "denied_conn", None)
        stickiness.session_started(s)
        return Verdict.NEXT


class ProxyHeader:
    """Reads the PROXY v1/v2 header (`accept-proxy`, or a matching `expect-proxy` rule).

    A header split over several segments is reassembled until `timeout client`. Its addresses
    replace the connection's; a NETNS TLV naming a known namespace moves the connection there.
    """

    __slots__ = ("always",)

    def __init__(self, always: bool) -> None:
        self.always = always

    def deadline(self, s: Stream) -> float | None:
        t = s.fe.cfg.timeouts.client
        return None if t is None else s.t0 + t

    def run(self, s: Stream, expired: bool) -> Verdict:
        if not (self.always or s.want_proxy):
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


class ContentRules:
    """`tcp-request content` rules of the frontend (or, after switching, of the backend).

    A rule whose condition may still change (MISS) waits for more bytes until
    `tcp-request inspect-delay` runs out, the client stops sending or the buffer is full; the
    whole list then runs again with the data taken as final, as in HAProxy.
    """

    __slots__ = ("delay_s", "rules")

    def __init__(self, rules: tuple[TcpRule, ...], delay: float | None) -> None:
        self.rules = rules
        self.delay_s = delay

    def deadline(self, s: Stream) -> float | None:
        return None if self.delay_s is None else s.t0 + self.delay_s

    def run(self, s: Stream, expired: bool) -> Verdict:
        # a keep-alive connection's later requests sit in the HTTP reader, not in `req`:
        # they never wait for the inspect-delay
        s.req_final = expired or self.delay_s is None or s.req_eof or s.req_error or s.txn_count > 0
        out = run_tcp_rules(self.rules, s)
        if out.action == "wait":
            return Verdict.WAIT
        _apply_effects(s, out.effects)
        if out.action in ("reject", "close", "silent-drop"):
            s.backend = None  # before switching: HAProxy logs the frontend as the backend
            return _deny(s, out.action, "denied_req", "PR")
        return Verdict.NEXT


class SwitchingRules:
    """`use_backend` rules: the first that applies names the backend (else `default_backend`)."""

    __slots__ = ("rules",)

    def __init__(self, rules: ProxyRules) -> None:
        self.rules = rules

    def deadline(self, s: Stream) -> float | None:
        return None

    def run(self, s: Stream, expired: bool) -> Verdict:
        backends = s.rt.backends
        default = s.fe.backend
        name = choose_backend(
            self.rules, s, default.name if default is not None else None, backends.__contains__
        )
        s.backend = backends.get(name) if name is not None else None
        return Verdict.NEXT


class BackendRules:
    """After switching: the chosen backend's own `tcp-request content` rules, then `use-server`."""

    __slots__ = ()

    def deadline(self, s: Stream) -> float | None:
        be = s.backend
        delay = be.cfg.rules.inspect_delay if be is not None else None
        return None if delay is None else s.t0 + delay

    def run(self, s: Stream, expired: bool) -> Verdict:
        be = s.backend
        if be is None:
            return Verdict.NEXT
        rules = be.cfg.rules
        if rules.tcp_request_content and be.cfg is not s.fe.cfg:
            verdict = ContentRules(rules.tcp_request_content, rules.inspect_delay).run(s, expired)
            if verdict is not Verdict.NEXT:
                return verdict
        if rules.use_server:

            def usable(name: str) -> bool:
                srv = be.server(name)
                return srv is not None and srv.usable()

            name = choose_server(rules, s, usable)
            if name is not None:
                s.forced_server = be.server(name)
        return Verdict.NEXT


_BACKEND_STEP = BackendRules()


def build(
    px: ProxyCfg,
    bind: BindCfg,
    backend_rules: bool,
    http_before: tuple[Analyser, ...] = (),
    http_after: tuple[Analyser, ...] = (),
    upgrade: tuple[Analyser, Analyser] | None = None,
) -> tuple[Analyser, ...]:
    """The analysers of one listener of frontend `px`, in the order they run.

    `backend_rules`: some backend has `tcp-request content` or `use-server` rules, so the
    step that runs them after switching is needed. In `mode http`, `http_before` (the request
    head and the frontend's rules) run before switching and `http_after` after it; switching
    then runs for every request. `upgrade` (a TCP frontend that may choose an HTTP backend):
    the step reading a later request's head, first, and the step making the stream HTTP, right
    after switching (runtime/http_upgrade.py).
    """
    rules = px.rules
    steps: list[Analyser] = []
    if rules.tcp_request_connection:
        steps.append(ConnectionRules(rules.tcp_request_connection))
    expects = any(r.action == "expect-proxy" for r in rules.tcp_request_connection)
    if bind.accept_proxy or expects:
        steps.append(ProxyHeader(bind.accept_proxy))
    if upgrade is not None:
        steps.append(upgrade[0])
    if rules.tcp_request_content:
        steps.append(ContentRules(rules.tcp_request_content, rules.inspect_delay))
    steps.extend(http_before)
    if rules.use_backend or http_before or upgrade is not None:
        steps.append(SwitchingRules(rules))
    if upgrade is not None:
        steps.append(upgrade[1])
    if backend_rules:
        steps.append(_BACKEND_STEP)
    steps.extend(http_after)
    return tuple(steps)
