"""`set server <backend>/<server> addr <ip> [port <port>]`: a server moved at runtime, with
HAProxy 2.6's report of what changed (how ingress controllers follow their endpoints)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
from typing import TYPE_CHECKING

from nsproxy.addresses import PortMode, ServerAddr

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Server
    from nsproxy.runtime.process import Runtime

UPDATER = "stats socket command"
USAGE = "set server <b>/<s> addr requires an address and optionally a port.\n"


def _port_text(a: ServerAddr) -> str:
    if a.port_mode is PortMode.FIXED:
        return str(a.port)
    return f"+{a.port}" if a.port >= 0 else str(a.port)


def set_addr(rt: Runtime, srv: Server, addr: str, port: str | None) -> str:
    """Moves `srv` to `addr` (and `port`); returns HAProxy's message. Its idle connections
    are closed: new requests connect to the new address."""
    by = f" by '{UPDATER}'\n"
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return f"Invalid addr '{addr}'{by}"
    cur = srv.cfg.addr
    cur_host = cur.host if cur.host is not None else "0.0.0.0"
    new = cur
    if ipaddress.ip_address(cur_host.strip("[]")) != ip:
        msg = f"IP changed from '{cur_host}' to '{addr}'"
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        new = dataclasses.replace(new, family=family, host=str(ip))
    else:
        msg = "no need to change the addr"
    if port is not None:
        if re.fullmatch(r"[+-]?\d+", port) is None:
            msg += f", problem converting port '{port}' to an int"
        else:
            value = int(port) & 0xFFFF
            if cur.port_mode is PortMode.FIXED and cur.port == value:
                msg += ", no need to change the port"
            else:
                msg += f", port changed from '{_port_text(cur)}' to '{value}'"
                new = dataclasses.replace(new, port=value, port_mode=PortMode.FIXED)
    if new != cur:
        srv.cfg = dataclasses.replace(srv.cfg, addr=new)
        rt.idle_pool.drop(srv)
    return msg + by
