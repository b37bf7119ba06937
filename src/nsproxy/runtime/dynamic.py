"""Tenant changes without reload: namespaces, binds and servers added or removed at runtime."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from nsproxy.addresses import AddressError, SockAddr, parse_bind, parse_server
from nsproxy.config.model import BindCfg, ServerCfg, Where
from nsproxy.netns import Namespace, NetnsError
from nsproxy.runtime.backend import Backend, Server
from nsproxy.runtime.listener import Listener
from nsproxy.runtime.objects import Frontend

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

RUNTIME_WHERE = Where("runtime", 0)


class DynamicError(Exception):
    """A runtime change that cannot be made; the message is what the runtime API prints."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno  # the system error behind it (a failed bind), or 0


def add_netns(rt: Runtime, name: str) -> Namespace:
    """Opens /var/run/netns/NAME (the registry keeps one fd for it)."""
    if rt.registry.get(name) is not None:
        raise DynamicError(f"Namespace '{name}' is already added.")
    try:
        return rt.registry.open(name)
    except NetnsError as exc:
        raise DynamicError(f"Cannot open namespace '{name}'.") from exc


def del_netns(rt: Runtime, name: str, *, kill: bool = False, keep_counters: bool = False) -> int:
    """Closes NAME's listeners and releases its fd; returns how many listeners were closed.

    Established connections are left to finish (their sockets keep the namespace alive in the
    kernel until they end); with `kill` they are closed at once. Servers that live in NAME
    must be deleted first. `keep_counters` keeps NAME listed with its counters
    (`NamespaceRegistry.retire`); for a name kept that way, it clears those counters.
    """
    ns = rt.registry.get(name)
    if ns is None and rt.registry.forget(name):
        return 0
    if ns is None:
        raise DynamicError(f"No such namespace '{name}'.")
    users = [
        f"{be.name}/{s.name}" for be in rt.backends.values() for s in be.servers if s.netns is ns
    ]
    if users:
        raise DynamicError(f"Namespace '{name}' is used by server {users[0]}; delete it first.")
    closed = _drop_listeners(rt, [li for li in rt.listeners if li.netns is ns])
    if kill:
        for stream in [s for s in rt.streams if s.netns is ns]:
            stream.close()
    if keep_counters:
        rt.registry.retire(name)
    else:
        rt.registry.close(name)
    return closed


def _drop_listeners(rt: Runtime, doomed: list[Listener]) -> int:
    gone = set(doomed)
    for li in doomed:
        li.close()
        li.frontend.listeners.remove(li)
    rt.listeners[:] = [li for li in rt.listeners if li not in gone]
    rt.paused_for_limit[:] = [li for li in rt.paused_for_limit if li not in gone]
    return len(doomed)


def _frontend(rt: Runtime, name: str) -> Frontend:
    fe = rt.frontends.get(name)
    if fe is None:
        raise DynamicError(f"No such frontend '{name}'.")
    return fe


def _addrs(addr_text: str) -> list[SockAddr]:
    try:
        return parse_bind(addr_text)
    except AddressError as exc:
        raise DynamicError(f"Invalid address '{addr_text}': {exc}") from None


def add_bind(
    rt: Runtime,
    frontend: str,
    addr_text: str,
    netns: str | None = None,
    *,
    template: BindCfg | None = None,
) -> list[Listener]:
    """Listens on ADDR inside NETNS for FRONTEND now (the namespace is opened if needed).

    `template` supplies the bind options (backlog, accept-proxy, ...) of a configured bind.
    """
    fe = _frontend(rt, frontend)
    addrs = _addrs(addr_text) if template is None else list(template.addrs)
    ns: Namespace | None = None
    opened = False
    if netns is not None:
        ns = rt.registry.get(netns)
        if ns is None:
            ns, opened = add_netns(rt, netns), True
    for li in fe.listeners:
        if li.netns is ns and li.addr in addrs:
            raise DynamicError(f"Frontend '{frontend}' already listens on {li.addr} there.")
    first = max((li.id for li in fe.listeners), default=0) + 1
    base = template or BindCfg(RUNTIME_WHERE, tuple(addrs))
    bind = dataclasses.replace(base, namespace=netns, id=first)
    new = [Listener(rt, fe, bind, a, first + i, ns) for i, a in enumerate(addrs)]
    try:
        for li in new:
            li.open()
    except OSError as exc:
        for li in new:
            li.close()
        if opened and netns is not None:
            rt.registry.close(netns)
        where = addr_text or ",".join(str(a) for a in addrs)
        raise DynamicError(
            f"Cannot bind socket ({exc.strerror}) for [{where}]", exc.errno or 0
        ) from None
    fe.listeners.extend(new)
    rt.listeners.extend(new)
    if not rt.stopping:
        for li in new:
            li.resume()
    return new


def del_bind(rt: Runtime, frontend: str, addr_text: str, netns: str | None = None) -> int:
    """Stops listening on ADDR inside NETNS for FRONTEND; connections already accepted go on."""
    fe = _frontend(rt, frontend)
    addrs = _addrs(addr_text)
    ns = rt.registry.get(netns) if netns is not None else None
    doomed = [
        li
        for li in fe.listeners
        if li.addr in addrs and (li.netns is ns if netns is not None else li.netns is None)
    ]
    if not doomed or (netns is not None and ns is None):
        raise DynamicError(f"Frontend '{frontend}' has no bind {addr_text} there.")
    return _drop_listeners(rt, doomed)


def _backend(rt: Runtime, name: str) -> Backend:
    be = rt.backends.get(name)
    if be is None:
        raise DynamicError("No such backend.")
    return be


def add_server(
    rt: Runtime,
    backend: str,
    name: str,
    addr_text: str,
    netns: str | None = None,
    *,
    weight: int = 1,
    enabled: bool = False,
) -> Server:
    """Adds server NAME at ADDR (inside NETNS; '*' = the client's namespace) to BACKEND.

    As HAProxy's `add server`, the new server starts in maintenance unless `enabled`.
    """
    try:
        addr = parse_server(addr_text)
    except AddressError as exc:
        raise DynamicError(f"Invalid address '{addr_text}': {exc}") from None
    cfg = ServerCfg(
        RUNTIME_WHERE,
        name,
        addr,
        namespace=None if netns == "*" else netns,
        use_client_netns=netns == "*",
        disabled=not enabled,
        weight=weight,
    )
    return add_server_cfg(rt, backend, cfg)


def add_server_cfg(rt: Runtime, backend: str, cfg: ServerCfg) -> Server:
    """Adds the server `cfg` describes to BACKEND, opening its namespace if needed.

    A `puid` of 0 takes the next free id; a given one must be unused (HAProxy's message).
    """
    be = _backend(rt, backend)
    if be.server(cfg.name) is not None:
        raise DynamicError("Already exists a server with the same name in backend.")
    if cfg.puid:
        other = next((s for s in be.servers if s.puid == cfg.puid), None)
        if other is not None:
            raise DynamicError(
                f"'id' : custom id {cfg.puid} already used at {other.cfg.where} "
                f"('server {other.name}')."
            )
    else:
        cfg = dataclasses.replace(cfg, puid=max((s.puid for s in be.servers), default=0) + 1)
    ns: Namespace | None = None
    if cfg.namespace is not None:
        ns = rt.registry.get(cfg.namespace) or add_netns(rt, cfg.namespace)
    srv = Server(cfg, be, ns)
    be.set_servers([*be.servers, srv])
    return srv


def del_server(rt: Runtime, backend: str, name: str) -> None:
    """Removes server NAME: as HAProxy, only from maintenance and with no connection left."""
    be = _backend(rt, backend)
    srv = be.server(name)
    if srv is None:
        raise DynamicError("No such server.")
    if not srv.admin_maint:
        raise DynamicError("Only servers in maintenance mode can be deleted.")
    if srv.cur_conns > 0 or any(s.server is srv for s in rt.streams):
        raise DynamicError("Server still has connections attached to it, cannot remove it.")
    srv.deleted = True
    rt.idle_pool.drop(srv)
    be.set_servers([s for s in be.servers if s is not srv])
