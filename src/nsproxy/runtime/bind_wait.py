"""Template binds waiting in a namespace for their address, retried on rtnetlink address events."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from nsproxy.addresses import SockAddr
from nsproxy.config.model import BindCfg
from nsproxy.netns import Namespace
from nsproxy.ops import log
from nsproxy.runtime import dynamic, rtnl

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

_GROUPS = rtnl.RTMGRP_IPV4_IFADDR | rtnl.RTMGRP_IPV6_IFADDR


def needs_scope(bind: BindCfg) -> bool:
    """An IPv6 link-local address with no interface: it is bound on the interface that has it."""
    a = bind.addrs[0]
    if a.family != socket.AF_INET6 or "%" in a.host or bind.interface:
        return False
    return ipaddress.IPv6Address(a.host).is_link_local


def _same(a: str, b: str) -> bool:
    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


class BindWait:
    """The single-address binds of one namespace whose address is not there yet.

    One NETLINK_ROUTE socket made inside the namespace listens to its address changes; every
    change retries the binds still pending, and the socket is closed when none is left.
    """

    def __init__(
        self,
        rt: Runtime,
        ns: Namespace,
        pending: list[tuple[str, BindCfg]],
        done: Callable[[BindWait], None],
    ) -> None:
        self.rt = rt
        self.ns = ns
        self.pending = pending
        self.done = done
        self.sock: socket.socket | None = None

    def start(self) -> None:
        """Subscribes to the namespace's address events, then asks for the addresses it has."""
        sock = self.rt.registry.socket_in(
            self.ns, socket.AF_NETLINK, socket.SOCK_RAW, rtnl.NETLINK_ROUTE
        )
        try:
            sock.setblocking(False)
            sock.bind((0, _GROUPS))
            sock.send(rtnl.dump_request())
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.rt.loop.add_reader(sock.fileno(), self._on_read)

    def close(self) -> None:
        if self.sock is not None:
            self.rt.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def _on_read(self) -> None:
        events: list[rtnl.AddrEvent] = []
        redump = False
        while self.sock is not None:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                redump = True  # events were dropped: ask for the whole list again
                continue
            events.extend(rtnl.parse(data))
        self.retry(events)
        if redump and self.sock is not None:
            self.sock.send(rtnl.dump_request())

    def retry(self, events: list[rtnl.AddrEvent]) -> None:
        """Tries the pending binds again; those whose address is still missing stay pending."""
        still: list[tuple[str, BindCfg]] = []
        for template, bind in self.pending:
            if needs_scope(bind):
                a = bind.addrs[0]
                found = sorted(
                    {
                        e.ifindex
                        for e in events
                        if e.usable and e.family == a.family and _same(e.address, a.host)
                    }
                )
                if not found:
                    still.append((template, bind))
                for ifindex in found:
                    scoped = SockAddr(a.family, f"{a.host}%{ifindex}", a.port)
                    self._bind(template, dataclasses.replace(bind, addrs=(scoped,)))
            elif not self._bind(template, bind):
                still.append((template, bind))
        self.pending = still
        if not still:
            self.close()
            self.done(self)

    def _bind(self, template: str, bind: BindCfg) -> bool:
        """Whether the bind is done with (made, or failed for another reason than the address)."""
        try:
            dynamic.add_bind(self.rt, template, "", self.ns.name, template=bind)
        except dynamic.DynamicError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return False
            log.alert(f"namespace-pattern: cannot serve namespace '{self.ns.name}': {exc}")
        return True
