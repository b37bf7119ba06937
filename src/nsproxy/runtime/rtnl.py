"""Sans-I/O rtnetlink: the address dump request and RTM_NEWADDR/RTM_DELADDR messages decoded."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

NETLINK_ROUTE = 0
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_FLAGS = 8
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08

_NLMSG = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")
_U32 = struct.Struct("=I")


@dataclass(frozen=True, slots=True)
class AddrEvent:
    """One interface address added (`new`) or removed, as the kernel reports it."""

    new: bool
    family: int
    ifindex: int
    address: str
    flags: int

    @property
    def usable(self) -> bool:
        """Whether a socket can bind it now (an IPv6 address is not while DAD runs)."""
        return self.new and not self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)


def _align(n: int) -> int:
    return (n + 3) & ~3


def dump_request(seq: int = 1) -> bytes:
    """An RTM_GETADDR dump request for every address of every family."""
    body = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    return (
        _NLMSG.pack(_NLMSG.size + len(body), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
    )


def _attrs(data: bytes, off: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while off + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, off)
        if length < _RTATTR.size or off + length > end:
            break
        out.setdefault(kind, data[off + _RTATTR.size : off + length])
        off += _align(length)
    return out


def _address(family: int, attrs: dict[int, bytes]) -> str | None:
    # IPv4: IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on a p-t-p link)
    raw = attrs.get(IFA_LOCAL) if family == socket.AF_INET else None
    raw = raw or attrs.get(IFA_ADDRESS)
    size = 4 if family == socket.AF_INET else 16
    if raw is None or len(raw) != size:
        return None
    return socket.inet_ntop(family, raw)


def parse(data: bytes) -> list[AddrEvent]:
    """The address events in one datagram read from a NETLINK_ROUTE socket; others are skipped."""
    events: list[AddrEvent] = []
    off = 0
    while off + _NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, off)
        if length < _NLMSG.size or off + length > len(data):
            break
        body = off + _NLMSG.size
        if kind in (RTM_NEWADDR, RTM_DELADDR) and body + _IFADDRMSG.size <= off + length:
            family, _plen, flags, _scope, index = _IFADDRMSG.unpack_from(data, body)
            if family in (socket.AF_INET, socket.AF_INET6):
                attrs = _attrs(data, body + _IFADDRMSG.size, off + length)
                addr = _address(family, attrs)
                if IFA_FLAGS in attrs and len(attrs[IFA_FLAGS]) == 4:
                    flags = _U32.unpack(attrs[IFA_FLAGS])[0]
                if addr is not None:
                    events.append(AddrEvent(kind == RTM_NEWADDR, family, index, addr, flags))
        off += _align(length)
    return events
