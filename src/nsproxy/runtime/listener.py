"""Listening sockets, each made inside its bind's namespace, and the accept loop."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from typing import TYPE_CHECKING

from nsproxy.addresses import SockAddr
from nsproxy.config.model import BindCfg
from nsproxy.netns import Namespace
from nsproxy.runtime import analysers, http_ana, http_upgrade, poller, tls_wire
from nsproxy.runtime.connect import IP_TRANSPARENT, IPV6_TRANSPARENT

if TYPE_CHECKING:
    from nsproxy.runtime.objects import Frontend
    from nsproxy.runtime.process import Runtime

_ACCEPT_BATCH = 64


def _with_handshake(
    steps: tuple[analysers.Analyser, ...], tls: tls_wire.TlsHandshake
) -> tuple[analysers.Analyser, ...]:
    """`steps` with the TLS handshake after the layer-4 steps (connection rules, the PROXY
    header, read in clear as HAProxy does) and before everything reading the payload."""
    at = 0
    for i, step in enumerate(steps):
        if isinstance(step, analysers.ConnectionRules | analysers.ProxyHeader):
            at = i + 1
    return (*steps[:at], tls, *steps[at:])


class Listener:
    """One address of one `bind` line, listening inside `netns`."""

    __slots__ = (
        "addr",
        "an_http",
        "analysers",
        "bind",
        "family",
        "frontend",
        "http",
        "id",
        "label",
        "netns",
        "paused",
        "rt",
        "sock",
    )

    def __init__(
        self,
        rt: Runtime,
        frontend: Frontend,
        bind: BindCfg,
        addr: SockAddr,
        lid: int,
        netns: Namespace | None,
    ) -> None:
        self.rt = rt
        self.frontend = frontend
        self.bind = bind
        self.addr = addr
        self.id = lid
        self.label = bind.name or str(lid)
        self.netns = netns
        self.sock: socket.socket | None = None
        self.family = int(addr.family)
        self.paused = True
        px = frontend.cfg
        # `http`: streams are HTTP from the accept; `an_http`: where each later request of a
        # keep-alive connection starts (-1: streams never become HTTP)
        self.http = px.mode == "http" and px.http is not None
        if self.http and px.http is not None:
            before = http_ana.analysers(px.http)
            self.analysers = analysers.build(
                px, bind, rt.backend_rules, before, (http_ana.BACKEND_REQUEST,)
            )
            # each request starts again at the frontend's tcp-request content rules (HAProxy
            # runs them per stream, and a stream is one request), else at the request head
            content = [
                i for i, a in enumerate(self.analysers) if isinstance(a, analysers.ContentRules)
            ]
            self.an_http = content[0] if content else self.analysers.index(http_ana.WAIT_REQUEST)
        elif http_upgrade.reaches_http(px, rt.config):
            self.analysers = analysers.build(
                px,
                bind,
                rt.backend_rules,
                http_after=(http_upgrade.UPGRADED_BACKEND_REQUEST,),
                upgrade=(http_upgrade.NEXT_REQUEST, http_upgrade.UPGRADE),
            )
            self.an_http = self.analysers.index(http_upgrade.NEXT_REQUEST)
        else:
            self.analysers = analysers.build(px, bind, rt.backend_rules)
            self.an_http = -1
        tls = tls_wire.handshake_step(rt, bind, px.mode == "http")
        if tls is not None:
            self.analysers = _with_handshake(self.analysers, tls)
            if self.an_http >= 0:
                self.an_http += 1

    def open(self, inherited: socket.socket | None = None) -> None:
        """Creates, binds and listens (or adopts an inherited listening socket)."""
        if inherited is not None:
            self.sock = inherited
            self.family = int(inherited.family)
            self.sock.setblocking(False)
            return
        a, b = self.addr, self.bind
        sock = self.rt.registry.socket_in(self.netns, a.family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if a.family == socket.AF_UNIX:
                with contextlib.suppress(FileNotFoundError):
                    if os.path.exists(a.host) and not os.path.isdir(a.host):
                        os.unlink(a.host)
                sock.bind(a.host)
                if b.mode is not None:
                    os.chmod(a.host, b.mode)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if a.family == socket.AF_INET6 and (b.v6only or b.v4v6):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if b.v6only else 0)
                if b.transparent and a.family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
                elif b.transparent:
                    sock.setsockopt(socket.IPPROTO_IP, IP_TRANSPARENT, 1)
                if b.interface:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b.interface.encode())
                host, _, scope = a.host.partition("%")
                # an IPv6 link-local address carries its interface index (bind_wait.py)
                sock.bind((host, a.port, 0, int(scope)) if scope else a.sockaddr())
            fe = self.frontend.cfg
            backlog = b.backlog or fe.backlog or fe.maxconn or self.rt.config.global_.maxconn
            if a.family != socket.AF_UNIX:
                if b.defer_accept:  # as HAProxy: up to one second
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
                if b.tfo:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, backlog)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def resume(self) -> None:
        if self.paused and self.sock is not None and not self.frontend.disabled:
            poller.get(self.rt.loop).set_reader(self.sock.fileno(), self._on_accept)
            self.paused = False

    def pause(self) -> None:
        if not self.paused and self.sock is not None:
            poller.get(self.rt.loop).clear_reader(self.sock.fileno(), sync=True)
            self.paused = True

    def close(self) -> None:
        self.pause()
        if self.sock is not None:
            poller.get(self.rt.loop).forget(self.sock.fileno())
            if self.addr.family == socket.AF_UNIX and not self.rt.fds_exported:
                with contextlib.suppress(OSError):
                    os.unlink(self.addr.host)
            self.sock.close()
            self.sock = None

    def owns(self, addr: object) -> bool:
        """Whether connecting to `addr` would land on this listener (same namespace assumed)."""
        if not isinstance(addr, tuple) or self.sock is None:
            return False
        host, port = str(addr[0]), int(addr[1])
        if port != self.addr.port:
            return False
        return (
            self.addr.host in ("0.0.0.0", "::")
            or self.addr.host == host
            or (host.startswith("::ffff:") and host[7:] == self.addr.host)
        )

    def _on_accept(self, _ev: int = 0) -> None:
        rt = self.rt
        assert self.sock is not None
        # socket.accept() converts family and type to enums for every socket: done once here
        accept, family = self.sock._accept, self.family  # type: ignore[attr-defined]
        ns = self.netns
        for _ in range(_ACCEPT_BATCH):
            if rt.full(self.frontend) or (ns is not None and 0 < ns.maxconn <= ns.conns):
                rt.pause_for_limit(self)
                return
            try:
                fd, peer = accept()
                csock = socket.socket(family, socket.SOCK_STREAM, 0, fd)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    rt.accept_resource_error(self, exc)
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                raise
            rt.accepted(self, csock, peer)
