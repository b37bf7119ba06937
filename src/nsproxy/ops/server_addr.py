"""`set server <backend>/<server> addr <ip> [port <port>]`: a server moves (the OpenShift
router fills its template servers this way), answered with HAProxy 2.6's texts."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket

from nsproxy.addresses import ServerAddr
from nsproxy.runtime.backend import Server

BY = " by 'stats socket command'\n"
USAGE = "set server <b>/<s> addr requires an address and optionally a port.\n"


def _port(text: str) -> int | None:
    """The port as HAProxy reads it (16 bits, wrapping); None when it is not a number."""
    return int(text) % 65536 if text.isascii() and text.isdigit() else None


def set_addr(srv: Server, words: list[str]) -> str:
    """Applies `addr <ip> [port <port>]` (the words after `addr`) and returns the answer."""
    if not words:
        return USAGE
    old = srv.cfg.addr
    if old.family == socket.AF_UNIX or old.host is None:
        return (
            "Update for the current server address family is only supported through "
            "configuration file" + BY
        )
    try:
        ip = ipaddress.ip_address(words[0])
    except ValueError:
        return f"Invalid addr '{words[0]}'" + BY
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    host, port = str(ip), old.port
    if host == old.host and family == old.family:
        parts = ["no need to change the addr"]
    else:
        parts = [f"IP changed from '{old.host}' to '{host}'"]
    if len(words) > 2 and words[1] == "port":
        new_port = _port(words[2])
        if new_port is None:
            parts.append(f"problem converting port '{words[2]}' to an int")
        elif new_port == old.port:
            parts.append("no need to change the port")
        else:
            parts.append(f"port changed from '{old.port}' to '{new_port}'")
            port = new_port
    elif len(words) > 1 and words[1] == "port":
        parts.append("problem converting port '' to an int")
    addr = ServerAddr(family, host, port, old.port_mode)
    srv.cfg = dataclasses.replace(srv.cfg, addr=addr)
    return ", ".join(parts) + BY
