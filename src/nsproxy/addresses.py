"""HAProxy address syntax: "ADDR:PORT", ranges, "*", "ipv4@"/"ipv6@"/"unix@" and UNIX paths."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from enum import Enum


class AddressError(ValueError):
    """An address that does not parse."""


@dataclass(frozen=True, slots=True)
class SockAddr:
    """A concrete socket address: IPv4/IPv6 host and port, or a UNIX path (port 0)."""

    family: int
    host: str
    port: int

    def sockaddr(self) -> tuple[str, int] | str:
        return self.host if self.family == socket.AF_UNIX else (self.host, self.port)

    def __str__(self) -> str:
        if self.family == socket.AF_UNIX:
            return self.host
        if self.family == socket.AF_INET6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


class PortMode(Enum):
    FIXED = "fixed"
    SAME = "same"
    OFFSET = "offset"


@dataclass(frozen=True, slots=True)
class ServerAddr:
    """Where a server is: a fixed address, or (host None) the client connection's destination.

    With PortMode.SAME the client's destination port is used, with OFFSET that port + port.
    """

    family: int
    host: str | None
    port: int
    port_mode: PortMode

    @property
    def uses_client_dst(self) -> bool:
        return self.host is None

    def __str__(self) -> str:
        host = "*" if self.host is None else self.host
        if self.family == socket.AF_UNIX:
            return host
        if self.port_mode is PortMode.SAME:
            return host
        if self.port_mode is PortMode.OFFSET:
            return f"{host}:{self.port:+d}"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


_ANY4 = ("*", "0.0.0.0", "")
_ANY6 = ("::", "[::]")


def _split_prefix(text: str) -> tuple[str | None, str]:
    if "@" in text:
        prefix, _, rest = text.partition("@")
        prefix = prefix.lower()
        if prefix not in ("ipv4", "ipv6", "unix"):
            raise AddressError(f"unsupported address family prefix '{prefix}@' in '{text}'")
        return prefix, rest
    return None, text


def _split_host_port(text: str) -> tuple[str, str | None]:
    """'h:p' → (h, p); '[v6]:p' → (v6, p); a bare IPv6 address keeps its last group as port
    only when HAProxy would (the text after the last colon)."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise AddressError(f"missing ']' in '{text}'")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise AddressError(f"invalid characters after ']' in '{text}'")
        return host, rest[1:]
    if ":" not in text:
        return text, None
    host, _, port = text.rpartition(":")
    return host, port


def _resolve(host: str, family: int | None, where: str) -> tuple[int, str]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        fam = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        if family is not None and family != fam:
            raise AddressError(f"invalid address: '{host}' in '{where}'")
        return fam, str(ip)
    want = socket.AF_UNSPEC if family is None else family
    try:
        infos = socket.getaddrinfo(host, None, want, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressError(f"invalid address: '{host}' in '{where}'") from exc
    fam, _, _, _, sa = infos[0]
    return int(fam), str(sa[0])


def _port(text: str, where: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise AddressError(f"invalid port '{text}' in '{where}'")
    return int(text)


def parse_bind(text: str) -> list[SockAddr]:
    """A `bind` argument: 'ADDR:PORT[-PORT]' (comma-separated list), ':80', 'unix@p', '/p'."""
    out: list[SockAddr] = []
    for item in text.split(","):
        prefix, rest = _split_prefix(item)
        if prefix == "unix" or (prefix is None and rest.startswith("/")):
            if not rest:
                raise AddressError(f"missing UNIX socket path in '{item}'")
            out.append(SockAddr(socket.AF_UNIX, rest, 0))
            continue
        host, port = _split_host_port(rest)
        if port is None or port == "":
            raise AddressError(f"missing port number: '{item}'")
        low, dash, high = port.partition("-")
        lo = _port(low, item)
        hi = _port(high, item) if dash else lo
        if hi < lo or lo == 0:
            raise AddressError(f"invalid port range '{port}' in '{item}'")
        family: int | None = {"ipv4": 2, "ipv6": 10}.get(prefix or "")
        if host in _ANY4 and family != socket.AF_INET6:
            fam, ip = int(socket.AF_INET), "0.0.0.0"
        elif host in _ANY6 or (host in _ANY4 and family == socket.AF_INET6):
            fam, ip = socket.AF_INET6, "::"
        else:
            fam, ip = _resolve(host, family, item)
        out.extend(SockAddr(fam, ip, p) for p in range(lo, hi + 1))
    return out


def parse_server(text: str) -> ServerAddr:
    """A `server` address: 'ADDR[:PORT]', '*', '*:80', '*:+N', '0.0.0.0', 'ipv4@', 'unix@p'."""
    prefix, rest = _split_prefix(text)
    if prefix == "unix" or (prefix is None and rest.startswith("/")):
        if not rest:
            raise AddressError(f"missing UNIX socket path in '{text}'")
        return ServerAddr(socket.AF_UNIX, rest, 0, PortMode.FIXED)
    family: int | None = {"ipv4": 2, "ipv6": 10}.get(prefix or "")
    if rest in _ANY6 or rest == "":
        host, port = rest, None
    else:
        host, port = _split_host_port(rest)
        # bare IPv6 ("::1", "::1:80"): HAProxy takes the text after the last colon as port
        bare_v6 = host.count(":") >= 1 and not rest.startswith("[") and port is not None
        if bare_v6 and port and not (port.isdigit() or port[:1] in "+-"):
            host, port = rest, None
    if port is None or port == "":
        mode, num = PortMode.SAME, 0
    elif port[0] in "+-":
        if not port[1:].isdigit():
            raise AddressError(f"invalid port '{port}' in '{text}'")
        mode, num = PortMode.OFFSET, int(port)
    else:
        mode, num = PortMode.FIXED, _port(port, text)
        if num == 0:
            mode = PortMode.SAME
    if host in _ANY4 or host in _ANY6:
        fam = family or int(socket.AF_INET6 if host in _ANY6 else socket.AF_INET)
        return ServerAddr(fam, None, num, mode)
    if mode is not PortMode.FIXED:
        # a fixed server address with no port: HAProxy uses the client's destination port
        fam, ip = _resolve(host, family, text)
        return ServerAddr(fam, ip, num, mode)
    fam, ip = _resolve(host, family, text)
    return ServerAddr(fam, ip, num, mode)


def parse_source(text: str) -> SockAddr:
    """A `source`/`usesrc` address: 'ADDR[:PORT]' (port 0 = kernel chooses)."""
    prefix, rest = _split_prefix(text)
    family: int | None = {"ipv4": 2, "ipv6": 10}.get(prefix or "")
    host, port = _split_host_port(rest)
    if host.count(":") >= 1 and not rest.startswith("[") and port and not port.isdigit():
        host, port = rest, None
    num = _port(port, text) if port else 0
    if host in _ANY4:
        return SockAddr(family or socket.AF_INET, "0.0.0.0", num)
    if host in _ANY6:
        return SockAddr(socket.AF_INET6, "::", num)
    fam, ip = _resolve(host, family, text)
    return SockAddr(fam, ip, num)
