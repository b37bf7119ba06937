"""Tenant changes without reload: namespaces, binds and servers added or removed at runtime."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from nsproxy.addresses import AddressError, SockAddr, parse_bind, parse_server
from nsproxy.config.model import BindCfg, ServerCfg, Where
from nsproxy.netns import Namespace, NetnsError
from nsproxy.ops.runtime_api import ADMIN, CliError, Session, command
from nsproxy.runtime.backend import Backend, Server
from nsproxy.runtime.listener import Listener
from nsproxy.runtime.objects import Frontend

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

RUNTIME_WHERE = Where("runtime", 0)


class DynamicError(Exception):
    """A runtime change that cannot be made; the message is what the runtime API prints."""


def add_netns(rt: Runtime, name: str) -> Namespace:
    """Opens /var/run/netns/NAME (the registry keeps one fd for it)."""
    if rt.registry.get(name) is not None:
        raise DynamicError(f"Namespace '{name}' is already added.")
    try:
        return rt.registry.open(name)
    except NetnsError as exc:
        raise DynamicError(f"Cannot open namespace '{name}'.") from exc


def del_netns(rt: Runtime, name: str, *, kill: bool = False) -> int:
    """Closes NAME's listeners and releases its fd; returns how many listeners were closed.

    Established connections are left to finish (their sockets keep the namespace alive in the
    kernel until they end); with `kill` they are closed at once. Servers that live in NAME
    must be deleted first.
    """
    ns = rt.registry.get(name)
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
        raise DynamicError(f"Cannot bind socket ({exc.strerror}) for [{addr_text}]") from None
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
        raise DynamicError(f"No such backend '{name}'.")
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
    be = _backend(rt, backend)
    if be.server(name) is not None:
        raise DynamicError("Already exists a server with the same name in backend.")
    try:
        addr = parse_server(addr_text)
    except AddressError as exc:
        raise DynamicError(f"Invalid address '{addr_text}': {exc}") from None
    ns: Namespace | None = None
    if netns is not None and netns != "*":
        ns = rt.registry.get(netns) or add_netns(rt, netns)
    cfg = ServerCfg(
        RUNTIME_WHERE,
        name,
        addr,
        puid=max((s.puid for s in be.servers), default=0) + 1,
        namespace=None if netns == "*" else netns,
        use_client_netns=netns == "*",
        disabled=not enabled,
        weight=weight,
    )
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
    be.set_servers([s for s in be.servers if s is not srv])


# -- runtime API commands (admin level) --------------------------------------------------------
def _cli(fn: Callable[[Runtime, list[str]], str]) -> Callable[[Session, list[str]], str]:
    def handler(session: Session, args: list[str]) -> str:
        session.need(ADMIN)
        try:
            return fn(session.rt, args)
        except DynamicError as exc:
            raise CliError(f"{exc}\n") from None

    return handler


def _opt(args: list[str], start: int, names: tuple[str, ...]) -> dict[str, str]:
    """`keyword value` pairs after the positional words (`enabled` takes no value)."""
    out: dict[str, str] = {}
    i = start
    while i < len(args):
        word = args[i]
        if word == "enabled" and "enabled" in names:
            out[word] = ""
            i += 1
        elif word in names and i + 1 < len(args):
            out[word] = args[i + 1]
            i += 2
        else:
            raise DynamicError(f"'{word}' : unknown or incomplete keyword.")
    return out


def _need(args: list[str], n: int, usage: str) -> None:
    if len(args) < n:
        raise DynamicError(f"Usage: {usage}")


def _cli_add_netns(rt: Runtime, args: list[str]) -> str:
    _need(args, 3, "add netns <name>")
    add_netns(rt, args[2])
    return "New namespace registered.\n"


def _cli_del_netns(rt: Runtime, args: list[str]) -> str:
    _need(args, 3, "del netns <name>")
    del_netns(rt, args[2])
    return "Namespace deleted.\n"


def _cli_bind(add: bool) -> Callable[[Runtime, list[str]], str]:
    def run(rt: Runtime, args: list[str]) -> str:
        verb = "add" if add else "del"
        _need(args, 4, f"{verb} bind <frontend> <addr> [namespace <name>]")
        ns = _opt(args, 4, ("namespace",)).get("namespace")
        if add:
            add_bind(rt, args[2], args[3], ns)
            return "New bind registered.\n"
        del_bind(rt, args[2], args[3], ns)
        return "Bind deleted.\n"

    return run


def _split_srv(text: str) -> tuple[str, str]:
    be, slash, srv = text.partition("/")
    if not slash or not be or not srv:
        raise DynamicError("Require 'backend/server'.")
    return be, srv


def _cli_add_server(rt: Runtime, args: list[str]) -> str:
    _need(args, 4, "add server <bk>/<srv> <addr> [namespace <name>] [weight <w>] [enabled]")
    be, name = _split_srv(args[2])
    opts = _opt(args, 4, ("namespace", "weight", "enabled"))
    weight = opts.get("weight", "1")
    if not weight.isdigit() or int(weight) > 256:
        raise DynamicError(f"invalid weight '{weight}'.")
    add_server(
        rt, be, name, args[3], opts.get("namespace"), weight=int(weight), enabled="enabled" in opts
    )
    return "New server registered.\n"


def _cli_del_server(rt: Runtime, args: list[str]) -> str:
    _need(args, 3, "del server <bk>/<srv>")
    del_server(rt, *_split_srv(args[2]))
    return "Server deleted.\n"


command("add", "netns", usage="add netns <name>", help="open a network namespace")(
    _cli(_cli_add_netns)
)
command("del", "netns", usage="del netns <name>", help="close a namespace and its listeners")(
    _cli(_cli_del_netns)
)
command("add", "bind", usage="add bind <fe> <addr> [namespace <ns>]", help="add a listener")(
    _cli(_cli_bind(True))
)
command("del", "bind", usage="del bind <fe> <addr> [namespace <ns>]", help="remove a listener")(
    _cli(_cli_bind(False))
)
command("add", "server", usage="add server <bk>/<srv> [args]*", help="create a new server")(
    _cli(_cli_add_server)
)
command("del", "server", usage="del server <bk>/<name>", help="remove a server")(
    _cli(_cli_del_server)
)
